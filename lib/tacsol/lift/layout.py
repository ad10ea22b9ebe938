"""Which instances print as blocks, in what order and under which labels: jump threading past empty forwarding
blocks, inline merging of single-predecessor successors, one copy of identical variable-free halting blocks, and at
level 3 the checks (a conditional jump one side of which only fails prints as `require(c)`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .ir import CHECKED_CALLS, STRING_STORES, FunctionIR
from .rewrite import live_statements

MAX_HOPS = 64


@dataclass
class Layout:
    heads: list[int]          # instances that start a printed block, in print order
    label: dict[int, str]     # instance -> label
    forward: set[int]         # empty forwarding instances, skipped by the jumps into them
    merged: set[int]          # printed inline after their only predecessor (no label, no goto)
    alias: dict[int, int]     # halting instance -> the identical one printed instead
    # level 3: conditional jump -> (whether its true side fails, failing edge target, continuing edge target), both
    # as the jump names them (before threading); printed `require(c) [else <halt>]`, then the continuation
    checks: dict[int, tuple[bool, int, int]] = field(default_factory=dict)

    def final(self, fn: FunctionIR, n: int, t: int) -> tuple[int, int]:
        """The jump n -> t after skipping forwarding instances: (last instance jumped from, real target)."""
        return self.hops(fn, n, t)[-1]

    def hops(self, fn: FunctionIR, n: int, t: int) -> list[tuple[int, int]]:
        """Each edge of the jump n -> t through the forwarding instances skipped, in order (the last one's target
        is `final`'s)."""
        out = [(n, t)]
        while t in self.forward and len(out) <= MAX_HOPS:
            n, t = t, fn.graph.edges[t].trues[0]
            out.append((n, t))
        return out


def plan_layout(fn: FunctionIR, labels: str, checks: bool = False) -> Layout:
    kept = [n for n in fn.ids if n not in fn.removed]
    order = fn.entries + sorted((n for n in kept if n not in fn.entries), key=lambda n: (fn.block_of(n), n))
    # Jump threading: an instance with one predecessor, no surviving line and one plain successor is skipped
    # (its edge arguments are values already visible to the predecessor).
    forward = {n for n in kept if n in fn.single and fn.graph.edges[n].plain_jump not in (None, n)
               and not any(fn.live[n])}
    if checks:   # level 3: also an empty instance several jumps enter, when its target declares parameters (the
        # jumps into it pass their arguments on through its own: emit's `target` composes them)
        forward |= {n for n in kept if n not in fn.entries and n not in fn.single and not any(fn.live[n])
                    and fn.graph.edges[n].plain_jump not in (None, n)
                    and fn.graph.edges[n].plain_jump not in fn.single}
    lay = Layout([], _offset_labels(fn), forward, set(), {})
    lay.merged = _merged(fn, lay)
    if checks:
        lay.checks = _checks(fn, lay)
        for n, (_, _, cont) in lay.checks.items():   # the continuation of a check goes on inline when it can
            _, t = lay.final(fn, n, cont)
            if t in fn.single and t not in fn.entries and t != n and t not in forward:
                lay.merged.add(t)
    lay.heads = [n for n in order if n not in forward and n not in lay.merged]
    lay.alias = _halt_aliases(fn, lay.heads)
    if lay.checks:   # a failing block every jump into folds is not printed
        refs = _referenced(fn, lay)
        folded = {lay.final(fn, n, f)[1] for n, (_, f, _) in lay.checks.items()}
        lay.heads = [h for h in lay.heads if h not in folded or h in refs or h in fn.entries]
    if labels == "seq":   # b0, b1, ... in print order: offsets carry no meaning for the model and cost tokens
        for i, n in enumerate(h for h in lay.heads if h not in lay.alias):
            lay.label[n] = f"b{i}"
    return lay


def _offset_labels(fn: FunctionIR) -> dict[int, str]:
    """block_0x1a, block_0x1a_1 for the second instance of the same block, ..."""
    inst: dict[int, int] = {}
    label: dict[int, str] = {}
    for n in sorted(fn.ids, key=lambda n: (fn.block_of(n), n)):
        bid = fn.block_of(n)
        k = inst[bid] = inst.get(bid, -1) + 1
        label[n] = (f"block_{bid:#x}" if bid >= 0 else f"call_f{-bid}") + (f"_{k}" if k else "")
    return label


def _merged(fn: FunctionIR, lay: Layout) -> set[int]:
    """A successor with this block as its only predecessor is printed inline (no label, no goto)."""
    merged: set[int] = set()
    for n in fn.ids:
        if n in fn.removed:
            continue
        t = fn.graph.edges[n].plain_jump
        if n not in lay.forward and t is not None:
            _, t = lay.final(fn, n, t)
            if t in fn.single and t not in fn.entries and t != n and t not in lay.forward:
                merged.add(t)
    return merged


def _halt_aliases(fn: FunctionIR, heads: list[int]) -> dict[int, int]:
    """Identical halting blocks that use no variables (revert(0x0, 0x0), panic codes) are printed once."""
    alias: dict[int, int] = {}
    seen: dict[tuple, int] = {}
    for n in heads:
        if not fn.ends_call(n) or (n not in fn.single and fn.params[n]):
            continue
        kept = live_statements(fn, n)
        if any(s.dest is not None or any(a[0] in ("t", "p") for a in s.args) for s in kept):
            continue
        key = tuple((s.op, tuple(s.args)) for s in kept)
        if key in seen:
            alias[n] = seen[key]
        else:
            seen[key] = n
    return alias


FAILS = frozenset({"revert_empty", "revert_returndata", "revert_msg", "revert_string", "revert_err", "panic",
                   "INVALID", "REVERT"})


def failing_statement(fn: FunctionIR, n: int):
    """The one statement instance n prints when all it does is fail (a revert, panic or invalid, no parameters,
    no other line); None otherwise."""
    if n in fn.entries or not fn.ends_call(n):
        return None
    if n not in fn.single and fn.params[n]:
        return None
    kept = [s for k, s in enumerate(fn.body[n]) if fn.live[n][k] and ("t", n, s.dest) not in fn.inlined]
    return kept[0] if len(kept) == 1 and kept[0].op in FAILS else None


# what a failing path may not do before it fails (its memory writes and reads vanish with the revert)
EFFECTS = frozenset({"SSTORE", "sstore_field", *STRING_STORES, "TSTORE", "CALL", "CALLCODE", "DELEGATECALL",
                     "STATICCALL", "CREATE", "CREATE2", "SELFDESTRUCT", "RETURN", "STOP", "icall", "call_abi",
                     "staticcall_abi", "delegatecall_abi", *CHECKED_CALLS,
                     *(f"LOG{i}" for i in range(5))})


def failing_path(fn: FunctionIR, t: int) -> list[int] | None:
    """The instances from t through plain jumps to a halt, when they have no effect (EFFECTS) and the last
    statement fails (a revert, panic or invalid; the halt shared with other checks or not); None otherwise."""
    path = []
    while len(path) < MAX_HOPS and t not in path and t not in fn.entries:
        path.append(t)
        body = live_statements(fn, t)
        if any(s.op in EFFECTS for s in body):
            return None
        if fn.ends_call(t):
            return path if body and body[-1].op in FAILS else None
        t = fn.graph.edges[t].plain_jump
        if t is None:
            return None
    return None


def _checks(fn: FunctionIR, lay: Layout) -> dict[int, tuple[bool, int, int]]:
    """Conditional jumps exactly one side of which only fails (Layout.checks)."""
    out = {}
    for n in fn.ids:
        e = fn.graph.edges[n]
        if n in fn.removed or n in lay.forward or e.kind != "jumpi" or len(e.trues) != 1 or e.false is None:
            continue
        t, f = e.trues[0], e.false
        ft = failing_statement(fn, lay.final(fn, n, t)[1]) is not None
        ff = failing_statement(fn, lay.final(fn, n, f)[1]) is not None
        if ft != ff:
            out[n] = (True, t, f) if ft else (False, f, t)
    return out


def _referenced(fn: FunctionIR, lay: Layout) -> set[int]:
    """Instances some printed jump names (its target after threading, and the halt printed in its stead), the
    failing sides of checks excepted."""
    refs: set[int] = set()
    for n in fn.ids:
        if n in fn.removed or n in lay.forward:
            continue
        e = fn.graph.edges[n]
        folded = lay.checks[n][1] if n in lay.checks else None
        for t in [*e.trues, *([e.false] if e.false is not None else [])]:
            if t == folded:
                continue
            _, t = lay.final(fn, n, t)
            refs.add(t)
            refs.add(lay.alias.get(t, t))
    return refs
