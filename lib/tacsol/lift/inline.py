"""Level 2: a pure value read once, later in the straight line of code that computes it, is written where it is read
instead of on a line of its own (`mstore(v1 + 0x4, arg1)`, `if arg1 > v3 goto b1 else b2`, `return (uint160(v2))`).
Exact:
a pure operation's operands are SSA values, unchanged between its line and its one use."""
from __future__ import annotations

from .cse import pure_op
from .ir import FunctionIR, Operand, Stmt
from .rewrite import chains
from .values import Values


def inline_single_uses(fn: FunctionIR, values: Values, used: dict[Operand, int], anywhere: bool = False) -> None:
    """Mark in fn.inlined the live pure statements whose one use comes later in the straight line of instances they
    are printed in (an instance and the ones merged after it); with `anywhere` (level 3), wherever that use is:
    in SSA the use lies where the definition dominates, so the operands there are the values it read."""
    if anywhere:
        for n in fn.ids:
            if n not in fn.removed:
                for k, s in enumerate(fn.body[n]):
                    key = ("t", n, s.dest) if s.dest is not None else None
                    if fn.live[n][k] and key is not None and used.get(key) == 1 and is_pure(s):
                        fn.inlined[key] = s
        return
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
                if key is not None and used.get(key) == 1 and key in later and is_pure(s):
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


def is_pure(s: Stmt) -> bool:
    """No effect, and a value that depends on its operands alone (no state read)."""
    return pure_op(s.op)   # (PURE holds bool and field)


# Statements without effects whose value depends on state (memory, storage, gas, return data, other accounts):
# they may move only where nothing that could change that state runs in between.
READS = {"MLOAD", "SLOAD", "TLOAD", "GAS", "EXTCODESIZE", "EXTCODEHASH", "BALANCE", "SELFBALANCE",
         "RETURNDATASIZE", "SHA3", "BLOCKHASH", "BLOBHASH", "mapping", "array", "sload_field"}


def inline_adjacent_reads(fn: FunctionIR, values: Values, used: dict[Operand, int]) -> None:
    """Level 3: a read (READS) or mapping/array slot whose one use is in the next printed line of its instance (its
    jump when it is the last) is written there: `require(sload(mapping(0x2)[caller]) >= arg1)`, `staticcall(gas(),
    ...)`. Exact: every statement between the two is inlined into some line and so prints nowhere in between, and
    what is inlined is pure or a read: the read sees the same state, only later in the same line. Runs after
    inline_single_uses, from the end of each instance, so a read can move past another read moved before it."""
    for chain in chains(fn):
        nxt: set[Operand] | None = None   # what the next printed line reads
        for n in reversed(chain):
            later = _later_reads(fn, values, n)
            if later or nxt is None:   # n's jump prints (a plain jump into the next instance prints nothing)
                nxt = _expand(fn, later)
            body, live = fn.body[n], fn.live[n]
            for k in range(len(body) - 1, -1, -1):
                s = body[k]
                key = ("t", n, s.dest) if s.dest is not None else None
                if not live[k] or key in fn.inlined:
                    continue   # prints nowhere here (a pure value prints in the line that reads it)
                if (s.op in READS and s.ndest == 1 and used.get(key) == 1 and key in nxt
                        and not _order_matters(fn, s, key, nxt)):
                    fn.inlined[key] = s
                    nxt |= _expand(fn, s.args)
                else:
                    nxt = _expand(fn, s.args)   # s prints: the next printed line of the statements before it


_SCRATCH_WRITERS = {"mapping", "array"}   # they hash in the scratch words, writing them first
_MEMORY_READS = {"MLOAD", "SHA3"}


def _order_matters(fn: FunctionIR, s: Stmt, key: Operand, line: set[Operand]) -> bool:
    """Whether moving s into the line could change what it or a value already written there sees: a slot construct
    writes the scratch words a memory read could read, and a line evaluates an operation's operands before the
    operation but sibling operands in argument order. s comes before everything already in the line, so a
    conflicting pair keeps the statements' order only when s is among the other's operands."""
    for o in line:
        t = fn.inlined.get(o)
        if t is not None and (s.op in _SCRATCH_WRITERS and t.op in _MEMORY_READS
                              or s.op in _MEMORY_READS and t.op in _SCRATCH_WRITERS) \
                and key not in _expand(fn, t.args):
            return True
    return False


def _expand(fn: FunctionIR, operands) -> set[Operand]:
    """The operands a printed line reads, through the values inlined into it."""
    out: set[Operand] = set()
    todo = list(operands)
    while todo:
        o = todo.pop()
        if o in out:
            continue
        out.add(o)
        s = fn.inlined.get(o)
        if s is not None:
            todo.extend(s.args)
    return out
