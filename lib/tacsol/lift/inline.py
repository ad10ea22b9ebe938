"""Level 2: a pure value read once, later in the straight line of code that computes it, is written where it is read
instead of on a line of its own (`mstore(v1 + 0x4, arg1)`, `if arg1 > v3 goto b1 else b2`, `return (uint160(v2))`).
Exact:
a pure operation's operands are SSA values, unchanged between its line and its one use."""
from __future__ import annotations

import re

from .cse import PURE
from .ir import FunctionIR, Operand, Stmt
from .rewrite import chains
from .values import Values

_CAST = re.compile(r"u?int\d+|bytes\d+")


def inline_single_uses(fn: FunctionIR, values: Values, used: dict[Operand, int]) -> None:
    """Mark in fn.inlined the live pure statements whose one use comes later in the straight line of instances they
    are printed in (an instance and the ones merged after it)."""
    for line in chains(fn):
        later: set[Operand] = set()
        for n in reversed(line):
            later |= _later_reads(fn, values, n)
            body, live = fn.body[n], fn.live[n]
            for k in range(len(body) - 1, -1, -1):
                s = body[k]
                if not live[k]:
                    continue
                key = ("t", n, s.dest) if s.dest is not None else None
                if key is not None and used.get(key) == 1 and key in later and _pure(s):
                    fn.inlined[key] = s
                later.update(a for a in s.args if a[0] == "t")


def _later_reads(fn: FunctionIR, values: Values, n: int) -> set[Operand]:
    """What instance n's jump reads: its condition, jump arguments and returned values."""
    e = fn.graph.edges[n]
    out: set[Operand] = set()
    if e.kind == "jumpi" and n not in fn.decided:
        out.add(values.condition(n))
    for t in e.succ:
        out.update(values.edge_args(n, t))
    if e.kind == "ret":
        out.update(values.results(n))
    return out


def _pure(s: Stmt) -> bool:
    return s.op in PURE or s.op in ("bool", "field") or bool(_CAST.fullmatch(s.op))
