"""Level 2: common subexpressions. A pure operation computed again on the same operands, where its first
computation dominates it (runs on every path before it), is that first value: `uint160(caller)` or `x & mask`
repeated per use, the same `calldataload` twice. Sound for SSA: an operand names one definition, and a dominating
computation's value is still current wherever it dominates."""
from __future__ import annotations

import re

from .ir import FunctionIR, Operand, Stmt
from .rewrite import chase, replace
from .values import Values

PURE = {"ADD", "SUB", "MUL", "DIV", "SDIV", "MOD", "SMOD", "EXP", "SIGNEXTEND", "LT", "GT", "SLT", "SGT", "EQ",
        "ISZERO", "AND", "OR", "XOR", "NOT", "BYTE", "SHL", "SHR", "SAR", "ADDMOD", "MULMOD", "CALLDATALOAD",
        "bool", "field"}
COMMUTATIVE = {"ADD", "MUL", "EQ", "AND", "OR", "XOR"}
_CAST = re.compile(r"u?int\d+|bytes\d+")


def dominator_tree(fn: FunctionIR) -> dict[int, list[int]]:
    """Children of each reachable instance in the dominator tree (Cooper, Harvey and Kennedy's iteration); the
    entries hang below a virtual root, -1."""
    order: list[int] = []
    seen: set[int] = set()
    for e in fn.entries:   # reverse postorder from the entries
        _postorder(fn, e, seen, order)
    order.reverse()
    index = {n: i for i, n in enumerate(order)}
    preds: dict[int, list[int]] = {n: [] for n in order}
    for n in order:
        for t in fn.graph.edges[n].succ:
            if t in preds:
                preds[t].append(n)
    idom = {n: -1 for n in fn.entries}
    changed = True
    while changed:
        changed = False
        for n in order:
            if n in fn.entries:
                continue
            new = None
            for p in preds[n]:
                if p in idom:
                    new = p if new is None else _meet(idom, index, p, new)
            if new is not None and idom.get(n) != new:
                idom[n] = new
                changed = True
    tree: dict[int, list[int]] = {-1: []}
    for n in order:
        tree.setdefault(idom.get(n, -1), []).append(n)
    return tree


def _postorder(fn: FunctionIR, start: int, seen: set[int], out: list[int]) -> None:
    stack = [(start, iter(fn.graph.edges[start].succ))]
    seen.add(start)
    while stack:
        n, it = stack[-1]
        t = next(it, None)
        if t is None:
            stack.pop()
            out.append(n)
        elif t not in seen:
            seen.add(t)
            stack.append((t, iter(fn.graph.edges[t].succ)))


def _meet(idom: dict[int, int], index: dict[int, int], a: int, b: int) -> int:
    while a != b:
        while a != -1 and (b == -1 or index[a] > index[b]):
            a = idom[a]
        while b != -1 and (a == -1 or index[b] > index[a]):
            b = idom[b]
    return a


def merge_common(fn: FunctionIR, values: Values) -> None:
    tree = dominator_tree(fn)
    table: dict[tuple, tuple[Operand, Stmt]] = {}
    stack: list = [(-1, None)]
    while stack:   # preorder over the dominator tree; a node's entries leave the table after its subtree
        n, undo = stack.pop()
        if undo is not None:
            for key in undo:
                del table[key]
            continue
        added = []
        if n >= 0:
            for s in fn.body[n]:
                key = _key(s, values) if s.dest is not None else None
                if key is None:
                    continue
                if key in table:
                    first, kept = table[key]
                    replace(values, ("t", n, s.dest), first)
                    kept.absorb(s)   # the first computation's line now stands for this one too
                else:
                    table[key] = (("t", n, s.dest), s)
                    added.append(key)
        stack.append((n, added))
        stack.extend((c, None) for c in reversed(tree.get(n, [])))


def pure_op(op: str) -> bool:
    """A pure operation or a cast (memoized: a regex match per statement was a third of merge_common)."""
    got = _PURE_OPS.get(op)
    if got is None:
        got = _PURE_OPS[op] = op in PURE or _CAST.fullmatch(op) is not None
    return got


_PURE_OPS: dict[str, bool] = {}


def _key(s, values: Values) -> tuple | None:
    if not pure_op(s.op):
        return None
    folded = values.folded
    args = tuple(chase(values, a) if a in folded else a for a in s.args)
    return (s.op, tuple(sorted(args)) if s.op in COMMUTATIVE else args)
