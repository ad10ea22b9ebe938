"""A whole contract: input checks, evmole's facts, one TAC unit per public function, then receive and fallback."""
from __future__ import annotations

from collections import Counter

from .abi import Abi, function_header, static_words
from .calldata import element_width
from .cfg import Program
from ..evm import disassemble
from .code import (library_address, looks_like_creation, parse_code, proxy_error, reject_clone,
                   reject_not_contract_code, reject_truncated_push, reject_undefined_entry)
from .creation import find_runtime
from .dispatch import callvalue_guard, dispatch_regions, has_effect, selector_compare
from .emit import Rendered
from .functions import CALLEE_BUDGET_CHARS, Internals, find_callees
from .render import render
from .result import LiftedContract, LiftedFunction, LiftError
from .budget import clock

LEVELS = (1, 2, 3)   # 1: the paper-faithful TAC; 2: compact TAC; 3: level 2 with failing branches as `require` and
                     # solc's overflow guards as `checked(a + b)` (docs/tac-format.md, Level 2 and Level 3)


def lift(code: str | bytes, *, time_limit_s: float = 10.0, labels: str = "seq", level: int = 1,
         callee_budget: int = CALLEE_BUDGET_CHARS) -> LiftedContract:
    """Lift runtime bytecode (hex with/without 0x, or raw bytes) to per-function TAC (docs/tac-format.md).

    labels="seq" (the training/inference format) names blocks b0, b1, ... in print order; labels="offset" names
    them by bytecode offset (block_0x1a, block_0x1a_1 for a second call context) for debugging.
    level=1 is the paper-faithful TAC; level=2 the compact TAC (named arguments, casts, decoded reverts, mapping
    slots, returns: docs/tac-format.md, Level 2); level=3 level 2 with each branch that only fails printed as
    `require(c)` and its continuation inline (Level 3). callee_budget (levels 2 and 3): an internal function's unit
    that would take a function's example past this many characters prints as its effect summary.

    Raises LiftError for input that is not liftable runtime code. Functions not finished within time_limit_s
    come back with status "timeout" (and empty TAC) instead of hanging; functions behind a jump-table dispatcher
    with status "unsupported" (empty TAC, the reason in the warnings)."""
    import evmole

    if labels not in ("seq", "offset"):
        raise ValueError(f"labels must be 'seq' or 'offset', got {labels!r}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if not isinstance(callee_budget, int) or callee_budget < 0:
        raise ValueError(f"callee_budget must be a number of characters >= 0, got {callee_budget!r}")
    deadline = clock() + time_limit_s
    raw = parse_code(code)
    reject_not_contract_code(raw)
    reject_clone(raw)
    info = evmole.contract_info(raw, selectors=True, arguments=True, state_mutability=True,
                                control_flow_graph=True, metadata=True)
    code_end = info.metadata.bytecode_offset if info.metadata is not None else len(raw)
    if code_end == 0:
        raise LiftError("metadata_only", f"the input is only a CBOR metadata tail ({len(raw)} bytes: compiler "
                        "version and source hash), no code")
    if not info.functions and looks_like_creation(raw, disassemble(raw, code_end)):
        return _lift_creation(raw, deadline, labels, level, callee_budget)
    lifter = _Lifter(Program(raw, code_end, info), deadline, labels, level, callee_budget,
                     LiftedContract(metadata_len=len(raw) - code_end, code_size=len(raw)))
    funcs = list(info.functions or [])
    lifter.check(funcs)
    if level >= 3:
        lifter.prog.discover()
    if level >= 2:
        lifter.find_internal_functions(funcs)
    if info.metadata is None:
        lifter.res.warnings.append("no CBOR metadata tail found: whole input treated as code")
    lifter.shared = {off for off, k in Counter(f.bytecode_offset for f in funcs).items() if k > 1}
    if lifter.shared:
        lifter.res.warnings.append("several selectors share one entry offset")
    for f in sorted(funcs, key=lambda f: f.selector):
        lifter.public(f)
    lifter.regions(has_public=bool(funcs))
    if not lifter.res.functions:
        raise LiftError("no_functions", "no public function, receive or fallback with an effect was found "
                        "(code only reverts or is not a contract's runtime code)")
    guard = library_address(raw)
    if guard:
        lifter.res.kind = "library"
        lifter.res.details["library_address"] = guard
    return lifter.res


def _lift_creation(raw: bytes, deadline: float, labels: str, level: int, callee_budget: int) -> LiftedContract:
    """Creation code (or a deployment transaction's input): lift the runtime its constructor returns."""
    parts = find_runtime(raw)
    if parts is None:
        raise LiftError("creation_code", "this is creation (deployment) bytecode, but no constant CODECOPY of an "
                        "embedded runtime was found (the constructor builds its runtime another way); pass the "
                        "runtime (deployedBytecode, or eth_getCode of the deployed address) instead")
    res = lift(raw[parts.runtime[0]:parts.runtime[1]], time_limit_s=max(0.0, deadline - clock()),
               labels=labels, level=level, callee_budget=callee_budget)
    res.details["creation"] = parts.to_dict()
    res.warnings.insert(0, f"{parts.describe()}; lifted the runtime (immutable variables, which the constructor "
                        "writes at deployment, read as zero here)")
    return res


_JUMP_TABLE = "a jump-table dispatcher, as in Vyper's -O gas, -O codesize and venom builds"


class _Lifter:
    def __init__(self, prog: Program, deadline: float, labels: str, level: int, callee_budget: int,
                 res: LiftedContract):
        self.prog, self.deadline, self.labels, self.level, self.res = prog, deadline, labels, level, res
        self.callee_budget = callee_budget
        self.shared: set[int] = set()   # entry offsets of several selectors
        self.internals: Internals | None = None   # level 2

    def find_internal_functions(self, funcs: list) -> None:
        entries = [f.bytecode_offset for f in funcs if f.bytecode_offset in self.prog.blocks]
        try:
            callees, graphs, small = find_callees(self.prog, entries, self.deadline, self.level)
        except TimeoutError:
            self.res.warnings.append("finding internal functions timed out: they are inlined")
            callees, graphs, small = {}, {}, {}
        self.internals = Internals(self.prog, self.deadline, self.labels, callees, graphs, small, self.level >= 3,
                                   self.callee_budget)

    def check(self, funcs: list) -> None:
        """Reject what is not runtime code; track the dispatcher's stack constants on the way."""
        prog = self.prog
        try:
            prog.dispatcher_stacks(self.deadline)
        except TimeoutError:
            self.res.warnings.append("dispatcher constant tracking timed out")
        reject_truncated_push(prog, self.deadline)
        reject_undefined_entry(prog)

    def public(self, f) -> None:
        sel, args, mut, entry = "0x" + f.selector, f.arguments or "", f.state_mutability or "", f.bytecode_offset
        if clock() >= self.deadline:
            self.res.functions.append(LiftedFunction(sel, "", 0, 0, {}, "timeout", args, mut))
        elif entry not in self.prog.blocks:
            self.unsupported(sel, args, mut, f"entry {entry:#x} is not in evmole's control-flow graph")
        else:
            self.function(sel, [entry], args, mut, shared=entry in self.shared,
                          header_pcs=selector_compare(self.prog, int(f.selector, 16), entry))

    def rendered(self, header: str, entries: list[int], stop, abi, header_pcs, small: bool = False
                 ) -> Rendered | None:
        """A function's TAC: its unit, and at level 2 the units (or summaries) of the internal functions it calls.
        None: `small` was asked for and does not make the function's own code whole (Internals.select)."""
        flat = abi is not None and all(static_words(t) is not None or element_width(t) for t in abi.types)
        chosen = self.internals.select(entries, stop, small, decoders=not (flat and self.level >= 3)) \
            if self.internals is not None else (None, None)
        if chosen is None:
            return None
        calls, graph = chosen
        r = render(self.prog, header, entries, self.deadline, stop, self.labels, abi, calls=calls, graph=graph,
                   header_pcs=header_pcs, checks=self.level >= 3)
        return self.internals.example(r, calls) if calls else r

    def unsupported(self, selector: str, args: str, mut: str, why: str) -> None:
        self.res.warnings.append(f"{selector}: unsupported: {why} ({_JUMP_TABLE}); not lifted")
        self.res.functions.append(LiftedFunction(selector, "", 0, 0, {}, "unsupported", args, mut))

    def regions(self, has_public: bool) -> None:
        """receive() and a fallback with an effect, from the code the dispatcher reaches outside public functions."""
        prog = self.prog
        try:
            reg = dispatch_regions(prog, self.deadline)
        except TimeoutError:
            self.res.functions.append(LiftedFunction("fallback", "", 0, 0, {}, "timeout", "", ""))
            return
        if reg.receive:
            self.function("receive", reg.receive_entries, "", "payable", frozenset(prog.blocks) - set(reg.receive))
        if reg.fallback and has_effect(prog, reg.fallback):
            mut = "nonpayable" if any(callvalue_guard(prog.sym(b)) for b in reg.fallback) else "payable"
            self.function("fallback", reg.fallback_entries, "", mut, frozenset(prog.blocks) - set(reg.fallback))
        if not has_public and any("DELEGATECALL" in prog.sym(b).counts for b in reg.fallback):
            raise proxy_error(prog.raw)

    def function(self, selector: str, entries: list[int], args: str, mut: str, stop=frozenset(),
                 shared: bool = False, header_pcs: tuple[int, ...] = ()) -> None:
        prog = self.prog
        abi = Abi.of(args, mut) if self.level >= 2 else None
        header = abi.header(selector, self.level) if abi is not None and selector.startswith("0x") else \
            function_header(selector, args, mut, self.level)
        try:
            r = self.rendered(header, entries, stop, abi, header_pcs)
            if r.partial and self.internals is not None and self.internals.small:
                # recursion or MAX_NODES instances with small helpers inlined: try them as calls, kept if whole
                r2 = self.rendered(header, entries, stop, abi, header_pcs, small=True)
                r = r2 if r2 is not None and not r2.partial else r
        except TimeoutError:
            self.res.functions.append(LiftedFunction(selector, "", 0, 0, {}, "timeout", args, mut))
            return
        if shared and r.partial:   # the shared entry is the table lookup, whose jump into the body is unresolved
            self.unsupported(selector, args, mut, f"selectors share entry {entries[0]:#x}, whose jump is unresolved")
            return
        undefined = [b for b in r.used_blocks if prog.sym(b).undefined is not None]
        if undefined:
            self.res.warnings.append(f"{selector}: undefined opcode(s) at block(s) "
                                     f"{', '.join(hex(b) for b in undefined)} (executes as INVALID)")
        if r.partial:
            self.res.warnings.append(f"{selector}: unresolved jump target(s); TAC is partial")
        pcs = [ins.pc for b in sorted(r.used_blocks) for ins in prog.block_instrs(b)]
        self.res.functions.append(LiftedFunction(selector, r.tac, r.blocks, r.instructions, r.ops,
                                                 "partial" if r.partial else "ok", args, mut, pcs, r.line_pcs))
