"""Which instances print as blocks, in what order and under which labels: jump threading past empty forwarding
blocks, inline merging of single-predecessor successors, and one copy of identical variable-free halting blocks."""
from __future__ import annotations

from dataclasses import dataclass

from .ir import FunctionIR

MAX_HOPS = 64


@dataclass
class Layout:
    heads: list[int]          # instances that start a printed block, in print order
    label: dict[int, str]     # instance -> label
    forward: set[int]         # empty forwarding instances, skipped by the jumps into them
    merged: set[int]          # printed inline after their only predecessor (no label, no goto)
    alias: dict[int, int]     # halting instance -> the identical one printed instead

    def final(self, fn: FunctionIR, n: int, t: int) -> tuple[int, int]:
        """The jump n -> t after skipping forwarding instances: (last instance jumped from, real target)."""
        hops = 0
        while t in self.forward and hops < MAX_HOPS:
            n, t = t, fn.graph.edges[t].trues[0]
            hops += 1
        return n, t


def plan_layout(fn: FunctionIR, labels: str) -> Layout:
    kept = [n for n in fn.ids if n not in fn.removed]
    order = fn.entries + sorted((n for n in kept if n not in fn.entries), key=lambda n: (fn.block_of(n), n))
    # Jump threading: an instance with one predecessor, no surviving line and one plain successor is skipped
    # (its edge arguments are values already visible to the predecessor).
    forward = {n for n in kept if n in fn.single and fn.graph.edges[n].plain_jump not in (None, n)
               and not any(fn.live[n])}
    lay = Layout([], _offset_labels(fn), forward, set(), {})
    lay.merged = _merged(fn, lay)
    lay.heads = [n for n in order if n not in forward and n not in lay.merged]
    lay.alias = _halt_aliases(fn, lay.heads)
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
        if fn.graph.edges[n].kind != "halt" or fn.syms[n].term.kind != "halt" or (n not in fn.single and fn.params[n]):
            continue
        kept = [s for k, s in enumerate(fn.body[n]) if fn.live[n][k]]
        if any(s.dest is not None or any(a[0] in ("t", "p") for a in s.args) for s in kept):
            continue
        key = tuple((s.op, tuple(s.args)) for s in kept)
        if key in seen:
            alias[n] = seen[key]
        else:
            seen[key] = n
    return alias
