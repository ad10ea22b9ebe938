"""One function (or the receive/fallback region) → TAC text: the passes in order, each over the function's IR."""
from __future__ import annotations

from .abi import Abi
from .cfg import Program
from .compact import compact
from .emit import Rendered, emit
from .instances import Callee, explore
from .ir import FunctionIR, Graph
from .layout import plan_layout
from .simplify import eliminate_dead, fold_constants, resolve_bodies
from .values import Values, build_ir, infer_params


def lower(prog: Program, starts: list[int], deadline: float, stop=frozenset(), callee: Callee | None = None,
          calls: dict[int, Callee] | None = None, graph: Graph | None = None,
          precise: bool = False, negations: bool = False) -> tuple[FunctionIR, Values]:
    """The function's IR after the level-1 passes: instances, SSA values, folded constants, no dead code. Level 2:
    `callee` lowers that internal function's own unit; jumps into the functions of `calls` become calls; `graph`
    is these instances when already explored; `precise` tracks paths as level 2 does, `negations` as level 3 does
    (instances.explore)."""
    frame = callee.frame if callee is not None else ()
    if graph is None:
        graph = explore(prog, starts, stop, deadline, frame=frame, calls=calls, precise=precise,
                        negations=negations)   # per call context
    fn = build_ir(prog, graph, starts, frame)         # their statements, predecessors, entries
    infer_params(fn, deadline)                        # block parameters: slots flowing in from several predecessors
    values = Values(fn, prog, callee.args if callee is not None else None)   # operands → SSA values
    fold_constants(fn, values)
    resolve_bodies(fn, values)
    eliminate_dead(fn, values)
    return fn, values


def render(prog: Program, header: str, starts: list[int], deadline: float, stop=frozenset(),
           labels: str = "seq", abi: Abi | None = None, callee: Callee | None = None,
           calls: dict[int, Callee] | None = None, graph: Graph | None = None,
           header_pcs: tuple[int, ...] = (), checks: bool = False) -> Rendered:
    """Level 1 TAC; with `abi` (the call's arguments and mutability), level 2's compact TAC, calling the internal
    functions of `calls` (or, with `callee`, the unit of that internal function); with `checks` too, level 3's
    (failing branches as `require`, overflow guards as `checked(a + b)`). The header maps to `header_pcs` (the dispatcher's selector comparison), by
    default to the first instruction of each start."""
    fn, values = lower(prog, starts, deadline, stop, callee, calls, graph, precise=abi is not None, negations=checks)
    if abi is not None:
        compact(fn, values, prog, abi, checks, deadline)   # level 2: arguments, casts, checks, memory constructs
    layout = plan_layout(fn, labels, checks)          # threading, merging, shared halts, checks, labels
    return emit(fn, values, layout, header, deadline, header_pcs or tuple(sorted(set(starts))), decimal=checks)
