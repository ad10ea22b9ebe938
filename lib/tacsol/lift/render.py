"""One function (or the receive/fallback region) → TAC text: the passes in order, each over the function's IR."""
from __future__ import annotations

from .cfg import Program
from .emit import Rendered, emit
from .instances import explore
from .layout import plan_layout
from .simplify import eliminate_dead, fold_constants, resolve_bodies
from .values import Values, build_ir, infer_params


def render(prog: Program, header: str, starts: list[int], deadline: float, stop=frozenset(),
           labels: str = "seq") -> Rendered:
    graph = explore(prog, starts, stop, deadline)    # block instances per call context
    fn = build_ir(prog, graph, starts)                # their statements, predecessors, entries
    infer_params(fn, deadline)                        # block parameters: slots flowing in from several predecessors
    values = Values(fn, prog)                         # operands → SSA values (and dispatcher constants)
    fold_constants(fn, values)
    resolve_bodies(fn, values)
    eliminate_dead(fn, values)
    layout = plan_layout(fn, labels)                  # threading, merging, shared halts, labels
    return emit(fn, values, layout, header, deadline)
