"""Level 3: checked arithmetic. solc 0.8 guards each unsigned `+`, `-`, `*` with a comparison and a jump to
panic(0x11), and each `/` and `%` with a jump to panic(0x12) when the divisor is zero: a source's one operator is
three to five TAC lines. When the guard is exactly the overflow (or zero-divisor) test of one operation next to it,
the operation prints as `checked(a + b)` and the branch goes (docs/tac-format.md, Level 3).

Exact: `checked(a OP b)` panics (0x11, 0x12 for `/` and `%`) when the unbounded result is not a uint256 (or the
divisor is zero), else it is `a OP b`. The guard may stand before the operation (solc 0.8.0-0.8.x's
`if gt(x, sub(MAX, y))`, `if lt(x, y)`, `if iszero(y)`, `increment`'s `if eq(x, MAX)`) or after it (later releases'
`if gt(x, sum)`, `if gt(diff, x)`, `iszero(or(iszero(x), eq(y, div(product, x))))`), with operands either way round
where the operation commutes. The panic then happens at the operation's line instead of at the guard's: the lines
between them may not call an internal function (which could halt first); anything else they do the panic reverts.
"""
from __future__ import annotations

from .ir import CHECKED_OPS, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, branches, decide, line, live_statements
from .simplify import M
from .values import Values

MAX = M - 1
_CODE = {"ADD": 0x11, "SUB": 0x11, "MUL": 0x11, "DIV": 0x12, "MOD": 0x12}   # the panic each operation's guard raises
_CHECKED = {op: name for name, op in CHECKED_OPS.items()}
MAX_HOPS = 64


def fold_checked_arithmetic(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt]) -> int:
    """Fold each guard of one unsigned operation into that operation (`checked_add`, ...); the guards' branches are
    settled (callers prune and drop the dead comparisons). Runs on live statements (after eliminate_dead).
    Returns how many folded."""
    const = Constants(defs)
    folded = 0
    for n, yes, no in branches(fn):
        for fails_on_true, fail, cont in ((True, yes, no), (False, no, yes)):
            path = _panic_path(fn, fail)
            if path is None:
                continue
            code = path[1]
            used: list[Stmt] = []
            pred = _failure(values.condition(n), fails_on_true, defs, used)
            s = _guarded_after(fn, n, pred, code, defs, const, used) or _guarded_before(fn, n, cont, pred, code,
                                                                                       defs, const, used)
            if s is None:
                continue
            s.op = _CHECKED[s.op]
            # provenance: the guard's comparisons, its JUMPI, and the failing blocks (labels and statements)
            s.absorb(*used, *(t for m in path[0] for t in fn.body[m]))
            s.pcs = merged_pcs(s.pcs, [fn.syms[n].last_pc] if fn.syms[n].last_pc is not None else [],
                               [fn.block_of(m) for m in path[0] if fn.block_of(m) >= 0])
            fn.absorbed.update(path[0])
            decide(fn, n, cont)
            folded += 1
            break
    return folded


def _panic_path(fn: FunctionIR, t: int) -> tuple[list[int], int] | None:
    """(the instances from t through empty forwarding jumps to an instance whose one line is panic(0x11) or
    panic(0x12), that code), or None."""
    path = []
    for _ in range(MAX_HOPS):
        path.append(t)
        body = live_statements(fn, t)
        nxt = fn.graph.edges[t].plain_jump
        if body or nxt is None or t in fn.entries:
            break
        t = nxt
    e = fn.graph.edges[t]
    if t in fn.entries or e.kind != "halt" or fn.syms[t].term.kind != "halt" or len(body) != 1:
        return None
    s = body[0]
    if s.op != "panic" or len(s.args) != 1 or s.args[0] not in (("c", 0x11), ("c", 0x12)):
        return None
    return path, s.args[0][1]


def _failure(o: Operand, positive: bool, defs: dict[Operand, Stmt], used: list[Stmt]) -> tuple:
    """What `o != 0` (positive) or `o == 0` says, normalized: ("lt", a, b), ("ge", a, b), ("eq", a, b), ("ne", a, b),
    ("nz", x), ("z", x); negations and `bool` casts looked through, `a - b` as a truth value read as `a != b`,
    comparisons with 0 as ("z"/"nz", x). The statements read go to `used`."""
    for _ in range(MAX_HOPS):
        s = defs.get(o)
        if s is None or s.op not in ("ISZERO", "bool"):
            break
        used.append(s)
        positive = positive if s.op == "bool" else not positive
        o = s.args[0]
    s = defs.get(o)
    if s is not None and s.op in ("LT", "GT"):
        used.append(s)
        a, b = s.args if s.op == "LT" else s.args[::-1]
        return ("lt" if positive else "ge", a, b)
    if s is not None and s.op in ("EQ", "SUB"):   # SUB as a truth value: a != b
        used.append(s)
        a, b = s.args
        eq = (s.op == "EQ") == positive
        if ("c", 0) in (a, b):
            x = b if a == ("c", 0) else a
            return ("z" if eq else "nz", x)
        return ("eq" if eq else "ne", a, b)
    return ("nz" if positive else "z", o)


def _same_pair(p: tuple, q: tuple) -> bool:
    """Equalities compare both ways round."""
    return p[0] == q[0] and (p[1:] == q[1:] or (p[0] in ("eq", "ne") and p[1:] == q[2:0:-1]))


def _pairs(s: Stmt):
    """The operand orders to try: both for the commuting ADD and MUL."""
    x, y = s.args
    return [(x, y), (y, x)] if s.op in ("ADD", "MUL") and x != y else [(x, y)]


def _is_not(o: Operand, y: Operand, defs: dict[Operand, Stmt], const: Constants, used: list[Stmt]) -> bool:
    """o is ~y (NOT y, MAX - y, or the constant)."""
    c, cy = const(o), const(y)
    if c is not None and cy is not None:
        return c == MAX - cy
    s = defs.get(o)
    if s is not None and (s.op == "NOT" and s.args[0] == y or s.op == "SUB" and const(s.args[0]) == MAX
                          and s.args[1] == y):
        used.append(s)
        return True
    return False


def _overflow_after(pred: tuple, s: Stmt, r: Operand, defs, used: list[Stmt]) -> bool:
    """pred is the test solc writes after computing r = s (its result)."""
    for x, y in _pairs(s):
        if s.op == "ADD" and _same_pair(pred, ("lt", r, x)):            # x > x + y
            return True
        if s.op == "ADD" and y[0] == "c" and (pred == ("lt", r, y) or y == ("c", 1) and pred == ("z", r)):
            return True                                                  # x + k < k; x + 1 == 0
        if s.op == "SUB" and _same_pair(pred, ("lt", x, r)):            # x - y > x
            return True
        if s.op == "MUL" and pred[0] == "ne" and y[0] == "c" and y[1]:   # x != r / k, k a non-zero constant
            for xx, d in (pred[1:], pred[2:0:-1]):
                dv = defs.get(d)
                if xx == x and dv is not None and dv.op == "DIV" and dv.args == [r, y]:
                    used.append(dv)
                    return True
        if s.op == "MUL" and pred[0] == "z":                             # !(x == 0 || y == r / x)
            o = defs.get(pred[1])
            if o is None or o.op != "OR":
                continue
            for zx, eq in (o.args, o.args[::-1]):
                z, q = defs.get(zx), defs.get(eq)
                if z is None or q is None or z.op != "ISZERO" or z.args[0] != x or q.op != "EQ":
                    continue
                for yy, d in (q.args, q.args[::-1]):
                    dv = defs.get(d)
                    if yy == y and dv is not None and dv.op == "DIV" and dv.args == [r, x]:
                        used.extend((o, z, q, dv))
                        return True
    return False


def _overflow_before(pred: tuple, s: Stmt, defs, const: Constants, used: list[Stmt]) -> bool:
    """pred is the test solc writes before computing s from its operands."""
    for x, y in _pairs(s):
        cy = const(y)
        if s.op == "ADD":
            if pred[0] == "lt" and pred[2] == x and _is_not(pred[1], y, defs, const, used):   # x > ~y
                return True
            if cy == 1 and pred[0] == "eq" and x in pred[1:] and const(pred[2 if pred[1] == x else 1]) == MAX:
                return True                                                               # increment
            if cy is not None and cy > MAX // 2 and (pred == ("lt", x, ("c", M - cy))
                                                     or cy == MAX and pred == ("z", x)):
                s.op, s.args = "SUB", [x, ("c", M - cy)]   # the optimizer's x + ~(k - 1) for x - k: printed x - k
                return True
        elif s.op == "SUB":
            if _same_pair(pred, ("lt", x, y)):                                            # x < y
                return True
            if cy == 1 and pred == ("z", x):                                              # decrement
                return True
        elif s.op == "MUL":
            if cy and pred[0] == "lt" and pred[2] == x and const(pred[1]) == MAX // cy:   # x > MAX / k
                return True
            if pred[0] == "nz" and _mul_guard(pred[1], x, y, defs, const, used):
                return True
        elif s.op in ("DIV", "MOD") and pred == ("z", y):                                 # y == 0
            return True
    return False


def _mul_guard(o: Operand, x: Operand, y: Operand, defs, const: Constants, used: list[Stmt]) -> bool:
    """o is `x != 0 && y > MAX / x` (and(iszero(iszero(x)), gt(y, div(MAX, x))))."""
    a = defs.get(o)
    if a is None or a.op != "AND":
        return False
    for nz, gt in (a.args, a.args[::-1]):
        mine: list[Stmt] = []
        if _failure(nz, True, defs, mine) != ("nz", x):
            continue
        g = defs.get(gt)
        if g is None or g.op not in ("GT", "LT"):
            continue
        big, small = g.args if g.op == "GT" else g.args[::-1]
        d = defs.get(small)
        if big == y and d is not None and d.op == "DIV" and const(d.args[0]) == MAX and d.args[1] == x:
            used.extend((a, *mine, g, d))
            return True
    return False


def _guarded_after(fn: FunctionIR, n: int, pred: tuple, code: int, defs, const, used) -> Stmt | None:
    """The operation in the straight line ending at n whose result pred tests for overflow, when no internal call
    comes between it and the test."""
    if code != 0x11:
        return None
    line_back = [n]
    while len(line_back) < MAX_HOPS:
        m = line_back[-1]
        if m not in fn.single:
            break
        p = fn.preds[m][0]
        if fn.graph.edges[p].plain_jump != m:
            break
        line_back.append(p)
    between = False   # an internal call seen after the candidate (walking back)
    for m in line_back:
        for s in reversed(live_statements(fn, m)):
            if s.op == "icall":
                between = True
            elif s.op in ("ADD", "SUB", "MUL") and s.dest is not None and not between:
                if _overflow_after(pred, s, ("t", m, s.dest), defs, used):
                    return s
    return None


def _guarded_before(fn: FunctionIR, n: int, cont: int, pred: tuple, code: int, defs, const, used) -> Stmt | None:
    """The first operation of the straight line the check continues into that pred guards, when nothing before it
    there is an internal call and the line is entered only from the check."""
    if cont not in fn.single or cont in fn.entries:
        return None
    for m in line(fn, cont):
        for s in live_statements(fn, m):
            if s.op == "icall":
                return None
            if s.dest is not None and _CODE.get(s.op) == code and _overflow_before(pred, s, defs, const, used):
                return s
    return None
