"""Level 3: a storage bytes or string read into memory (`return _name;`) as one statement, `p = storagestring(slot)`.

solc 0.4-0.7 (with and without the optimizer) decodes the length from the slot word, allocates at the free pointer,
stores the length, decodes it again and copies the data:

    a = sload(S); n = length(a); p = mload(0x40); mstore(0x40, p + 32 + ceil32(n)); mstore(p, n)
    n2 = length(sload(S))           (unoptimized code only: the optimizer reuses n)
    if n2 goto A else E             A:  if 31 < n2 goto C else B
    B:  mstore(p + 32, (sload(S) / 256) * 256); goto E
    C:  storagecopy(p + 32, array(S), n2); goto E

where length(a) = ((256 * iszero(a & 1) - 1) & a) / 2 (the short form keeps its length in the low byte, the long
form in the whole word). `p = storagestring(S)` stands for all of it, in that order. E takes no parameter, and no
value of the region but p is read after it.

solc 0.8 branches on the flag and checks the encoding (a short form's length under 32, a long form's 32 or more)
each time it decodes:

    f = a & 1; if f goto J(a / 2) else K         K:  goto J(a[1:7])          (a >> 1 with the optimizer)
    J(n):  if f == (n < 32) goto panic(0x22) else R   (later 0.8: if f - (n < 32) goto R else panic(0x22))
and allocates and decodes again in R before the same copies: `p = checked storagestring(S)` is the read with that
check (panic 0x22 on an invalid encoding, before anything is written)."""
from __future__ import annotations

from .cse import COMMUTATIVE, PURE
from .ir import Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, definitions, live_statements, reachable
from .simplify import M
from .values import Values

_A, _P = ("a",), ("p",)   # the slot word a length is decoded from; the free pointer


def norm(op: str, *args):
    """An operation over canonical operands, canonical: ADD chains flattened, commutative operands sorted."""
    if op == "ADD":
        flat = []
        for x in args:
            flat.extend(x[1:] if isinstance(x, tuple) and x and x[0] == "ADD" else [x])
        args = tuple(flat)
    if op in COMMUTATIVE:
        args = tuple(sorted(args, key=repr))
    return (op, *args)


# length(a) as the compilers write it: 0.4-0.7 without and with the optimizer
_LENGTHS = {
    norm("DIV", norm("AND", norm("SUB", norm("MUL", norm("ISZERO", norm("AND", _A, 1)), 256), 1), _A), 2),
    norm("DIV", norm("AND", norm("ADD", norm("MUL", norm("ISZERO", norm("AND", _A, 1)), 256), M - 1), _A), 2),
}


class Trees:
    """Operands as canonical trees (norm) over named leaves (`leaves`: operand -> leaf) and constants, through pure
    operations; None where an operand reads anything else. The level-3 region matchers (stringstore, reasons) widen
    what a tree may read (`reads`) or how a node is built (`node`)."""
    LIMIT = 12   # the depth past which an operand is not followed

    def __init__(self, defs: dict[Operand, Stmt], leaves: dict[Operand, tuple] | None = None,
                 consts: Constants | None = None):
        self.defs, self.leaves = defs, dict(leaves or {})
        self.consts = consts if consts is not None else Constants(defs)

    def reads(self, o: Operand, s: Stmt) -> bool:
        return s.op in PURE

    def node(self, o: Operand, s: Stmt, args: list):
        return norm(s.op, *args)

    def __call__(self, o: Operand, depth: int = 0):
        if o in self.leaves:
            return self.leaves[o]
        c = self.consts(o)
        if c is not None:
            return c
        s = self.defs.get(o)
        if s is None or depth > self.LIMIT or not self.reads(o, s):
            return None
        args = [self(x, depth + 1) for x in s.args]
        return None if None in args else self.node(o, s, args)


def canon(o: Operand, defs: dict[Operand, Stmt], leaves: dict[Operand, tuple], consts: Constants):
    """Operand o as a canonical tree (norm) over `leaves` and constants; None where it reads anything else."""
    return Trees(defs, leaves, consts)(o)


def fold_storage_strings(fn: FunctionIR, values: Values) -> int:
    """Fold each storage string read of the forms above into `p = storagestring(slot)` (`p = checked
    storagestring(slot)` for 0.8's); returns how many. Runs after storagecopy; callers prune and drop what became
    dead."""
    if not any(s.op == "storagecopy" for b in fn.body for s in b):
        return 0
    folded = 0
    reach, defs = reachable(fn), definitions(fn)   # other folds of this pass left instances behind: prune runs later
    for x in list(fn.ids):
        if x not in reach:
            continue
        got = _match(fn, values, defs, x, reach) or _match08(fn, values, defs, x, reach)
        if got is None:
            continue
        for at, (i0, stmt, to) in got.items():   # instance -> (statements kept, the new one or None, next)
            fn.body[at] = fn.body[at][:i0] + ([stmt] if stmt is not None else [])
            fn.live[at] = fn.live[at][:i0] + ([True] if stmt is not None else [])
            fn.graph.edges[at] = Edges("jump", [to])
        reach = reachable(fn)
        for at, (_, _, to) in got.items():
            fn.preds[to] = [m for m in fn.preds[to] if m in reach and to in fn.graph.edges[m].succ and m not in got] \
                + [at]
        values.forget()
        defs = definitions(fn)
        folded += 1
    return folded


def _follow(fn: FunctionIR, n: int, passed: set[int]) -> int:
    """Through empty instances that only jump on: the first that does something (those passed are added)."""
    on_the_way: set[int] = set()
    while not fn.body[n] and fn.graph.edges[n].plain_jump is not None and n not in on_the_way:
        on_the_way.add(n)
        n = fn.graph.edges[n].plain_jump
    passed |= on_the_way
    return n


def _match(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], x: int, reach: set[int]):
    """{x: (position of the read's first statement in x, `p = storagestring(slot)`, the join E)} when instance x ends
    with solc 0.4-0.7's read of a storage string (module docstring); else None."""
    e = fn.graph.edges[x]
    if e.kind != "jumpi" or x in fn.decided or len(e.trues) != 1 or e.false is None:
        return None
    body = fn.body[x]
    loads = [k for k, s in enumerate(body) if s.op == "SLOAD"]
    if not loads:
        return None
    i0, slot = loads[0], body[loads[0]].args[0]
    consts = Constants(defs)
    if consts(slot) is None:
        return None
    region_stmts = body[i0:]
    frees = [s for s in region_stmts if s.op == "MLOAD"]
    mstores = [s for s in region_stmts if s.op == "MSTORE"]
    if len(frees) != 1 or consts(frees[0].args[0]) != 0x40 or len(mstores) != 2 or \
            any(s.op not in PURE and s.op not in ("SLOAD", "MLOAD", "MSTORE") for s in region_stmts) or \
            any(s.op == "SLOAD" and s.args[0] != slot for s in region_stmts):
        return None
    p = ("t", x, frees[0].dest)
    first = ("t", x, body[i0].dest)
    bump, length_store = mstores
    if consts(bump.args[0]) != 0x40 or length_store.args[0] != p or body.index(bump) > body.index(length_store):
        return None
    n = length_store.args[1]
    length = canon(n, defs, {first: _A}, consts)
    if length not in _LENGTHS or canon(bump.args[1], defs, {first: _A, p: _P}, consts) != \
            norm("ADD", _P, 32, norm("MUL", norm("DIV", norm("ADD", length, 31), 32), 32)):
        return None
    # the test of the length: the second decoding (unoptimized) or n itself
    cond = values.condition(x)
    n2, long_side, empty_side = cond, e.trues[0], e.false
    c = defs.get(cond)
    if c is not None and c.op == "ISZERO":
        n2, long_side, empty_side = c.args[0], e.false, e.trues[0]
    if n2 != n:
        loads2 = [s for s in region_stmts if s.op == "SLOAD" and ("t", x, s.dest) != first]
        if len(loads2) != 1 or canon(n2, defs, {("t", x, loads2[0].dest): _A}, consts) not in _LENGTHS:
            return None
    dst = next((s for s in region_stmts if s.op == "ADD" and consts(s.args[0] if s.args[1] == p else s.args[1]) == 32
                and p in s.args), None)
    tail = _copy_tail(fn, values, defs, consts, long_side, empty_side, ("t", x, dst.dest), slot, n2) \
        if dst is not None else None
    if tail is None:
        return None
    end, region = tail
    if values.params(end) or end in region or x in region:
        return None
    mine = {("t", x, s.dest) for s in region_stmts if s.dest is not None} - {p}
    mine |= {("t", m, s.dest) for m in region for s in fn.body[m] if s.dest is not None}
    before = [s for k, s in enumerate(body) if fn.live[x][k] and k < i0]
    if _read_outside(fn, values, mine, reach - region, x, before):
        return None
    pcs = merged_pcs(*(s.pcs for s in region_stmts), *(s.pcs for m in region for s in fn.body[m]),
                     *[(fn.syms[m].last_pc,) for m in {x} | region if fn.syms[m].last_pc is not None])
    return {x: (i0, Stmt(frees[0].dest, "storagestring", [slot], 1, pcs), end)}


def _read_outside(fn: FunctionIR, values: Values, mine: set[Operand], outside: set[int], x: int,
                  before: list[Stmt]) -> bool:
    """Whether code outside the region reads a value of the region (`mine`): a live statement of an instance of
    `outside` (of x, where the read starts: only `before`, its statements ahead of the read), a condition or a jump
    argument of one of them but x."""
    for m in outside:
        if any(o in mine for s in (before if m == x else live_statements(fn, m)) for o in s.args):
            return True
        if m != x and ((fn.graph.edges[m].kind == "jumpi" and values.condition(m) in mine) or
                       any(o in mine for t in fn.graph.edges[m].succ for o in values.edge_args(m, t))):
            return True
    return False


def _copy_tail(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], consts: Constants, long_side: int,
               empty_side: int, dst: Operand, slot: Operand, n: Operand) -> tuple[int, set[int]] | None:
    """(the join E, the instances before it) when the test of the length n goes on to `long_side` (A: if 31 < n, the
    long copy `storagecopy(dst, array(slot), n)`, else the short one, mstore(dst, (sload(slot) / 256) * 256)), both
    then to E, where `empty_side` (n = 0) leads too; else None."""
    region: set[int] = set()
    end = _follow(fn, empty_side, region)
    a = _follow(fn, long_side, region)
    ea = fn.graph.edges[a]
    lt = defs.get(values.condition(a)) if ea.kind == "jumpi" else None
    if lt is None or a == end or len(ea.trues) != 1 or ea.false is None or \
            any(s is not lt for s in live_statements(fn, a)) or not _over_31(lt, n, consts):
        return None
    region.add(a)
    long_, short = _follow(fn, ea.trues[0], region), _follow(fn, ea.false, region)
    if not _copies(fn, defs, consts, long_, dst, slot, n) or not _short_copy(fn, defs, consts, short, dst, slot):
        return None
    region |= {long_, short}
    for m in (long_, short):
        after = fn.graph.edges[m].plain_jump
        if after is None or _follow(fn, after, region) != end:
            return None
    return end, region


def _over_31(s: Stmt, n: Operand, consts: Constants) -> bool:
    """s is 31 < n (LT(31, n) or GT(n, 31))."""
    return (s.op == "LT" and consts(s.args[0]) == 31 and s.args[1] == n) or \
        (s.op == "GT" and s.args[0] == n and consts(s.args[1]) == 31)


def _copies(fn: FunctionIR, defs, consts: Constants, m: int, dst: Operand, slot: Operand, n: Operand) -> bool:
    """Instance m is storagecopy(dst, array(slot), n) and pure statements."""
    copies = [s for s in fn.body[m] if s.op == "storagecopy"]
    if len(copies) != 1 or any(s.op not in PURE and s.op not in ("storagecopy", "array") for s in fn.body[m]):
        return False
    d, base, k = copies[0].args
    b = defs.get(base)
    return d == dst and k == n and b is not None and b.op == "array" and consts(b.args[0]) == consts(slot)


def _short_copy(fn: FunctionIR, defs, consts: Constants, m: int, dst: Operand, slot: Operand) -> bool:
    """Instance m is mstore(dst, (sload(slot) / 256) * 256) and pure statements."""
    stores = [s for s in fn.body[m] if s.dest is None]
    if len(stores) != 1 or stores[0].op != "MSTORE" or stores[0].args[0] != dst or \
            any(s.op not in PURE and s.op != "SLOAD" for s in fn.body[m] if s.dest is not None):
        return False
    load = next((s for s in fn.body[m] if s.op == "SLOAD"), None)
    if load is None or consts(load.args[0]) != consts(slot):
        return False
    return canon(stores[0].args[1], defs, {("t", m, load.dest): _A}, consts) == norm("MUL", norm("DIV", _A, 256), 256)


def _decode08(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], consts: Constants, d: int):
    """(word a, length n, the instance after the check, the instances of the decoding) when instance d starts solc
    0.8's length decoding (module docstring); else None."""
    e = fn.graph.edges[d]
    if e.kind != "jumpi" or d in fn.decided or len(e.trues) != 1 or e.false is None:
        return None
    f = values.condition(d)
    fs = defs.get(f)
    if fs is None or fs.op != "AND" or [consts(x) for x in fs.args].count(1) != 1:
        return None
    a = fs.args[0] if consts(fs.args[1]) == 1 else fs.args[1]
    j, k = e.trues[0], e.false
    if len(values.params(j)) != 1 or values.params(k) or j == k:
        return None
    n, half = values.params(j)[0], defs.get(values.edge_args(d, j)[0])
    if half is None or not ((half.op == "DIV" and half.args[0] == a and consts(half.args[1]) == 2) or
                            (half.op == "SHR" and consts(half.args[0]) == 1 and half.args[1] == a)):
        return None
    short = live_statements(fn, k)
    if fn.graph.edges[k].plain_jump != j or len(short) != 1 or short[0].op != "field" or short[0].args[0] != a \
            or consts(short[0].args[1]) != 1 or consts(short[0].args[2]) != 7 \
            or values.edge_args(k, j) != [("t", k, short[0].dest)]:
        return None
    ej, check = fn.graph.edges[j], live_statements(fn, j)
    eq = defs.get(values.condition(j)) if ej.kind == "jumpi" else None
    if eq is None or j in fn.decided or len(ej.trues) != 1 or ej.false is None or len(check) != 2 \
            or eq.op not in ("EQ", "SUB", "XOR") or f not in eq.args:
        return None
    lt = defs.get(eq.args[0] if eq.args[1] == f else eq.args[1])
    if lt is None or lt.op != "LT" or lt.args[0] != n or consts(lt.args[1]) != 32 or \
            any(t is not eq and t is not lt for t in check):
        return None
    # EQ (0.8.6): equal flags fail; SUB or XOR (later 0.8): a difference passes
    fail, ok = (ej.trues[0], ej.false) if eq.op == "EQ" else (ej.false, ej.trues[0])
    passed: set[int] = set()
    bad, after = _follow(fn, fail, passed), _follow(fn, ok, passed)
    halt = live_statements(fn, bad)
    if fn.graph.edges[bad].kind != "halt" or len(halt) != 1 or halt[0].op != "panic" or consts(halt[0].args[0]) != 0x22:
        return None
    return a, n, after, {d, k, j, bad} | passed


def _match08(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], x: int, reach: set[int]):
    """{x: its statements before the read, then a jump to R; R: `p = checked storagestring(slot)`, then a jump to E}
    when instance x ends with the load solc 0.8's storage string read starts with (module docstring); else None."""
    consts = Constants(defs)
    body = live_statements(fn, x)
    loads = [k for k, t in enumerate(body) if t.op == "SLOAD" and consts(t.args[0]) is not None]
    if not loads or fn.graph.edges[x].kind not in ("jump", "jumpi"):
        return None
    i = loads[-1]
    slot, a = body[i].args[0], ("t", x, body[i].dest)
    d = x if fn.graph.edges[x].kind == "jumpi" else fn.graph.edges[x].plain_jump
    first = _decode08(fn, values, defs, consts, d) if d is not None else None
    if first is None or first[0] != a:
        return None
    _, n, r, region = first
    if d == x:   # the decoding's own statements follow the load in x
        if any(t.op not in ("AND", "DIV", "SHR") for t in body[i + 1:]):
            return None
        region = region - {x}
    elif i != len(body) - 1:
        return None
    rb = live_statements(fn, r)
    frees = [t for t in rb if t.op == "MLOAD"]
    stores = [t for t in rb if t.op == "MSTORE"]
    loads2 = [t for t in rb if t.op == "SLOAD"]
    if r in region or r == x or len(frees) != 1 or consts(frees[0].args[0]) != 0x40 or len(stores) != 2 \
            or len(loads2) != 1 or loads2[0].args[0] != slot or \
            any(t.op not in PURE and t.op not in ("MLOAD", "MSTORE", "SLOAD") for t in rb):
        return None
    p = ("t", r, frees[0].dest)
    bump, length = stores
    if consts(bump.args[0]) != 0x40 or length.args != [p, n] or canon(bump.args[1], defs, {p: _P, n: _A}, consts) \
            != norm("ADD", _P, 32, norm("MUL", norm("DIV", norm("ADD", _A, 31), 32), 32)):
        return None
    d2 = r if fn.graph.edges[r].kind == "jumpi" else fn.graph.edges[r].plain_jump
    second = _decode08(fn, values, defs, consts, d2) if d2 is not None else None
    if second is None or second[0] != ("t", r, loads2[0].dest) or (d2 != r and rb[-1] is not loads2[0]):
        return None
    _, n2, t, region2 = second
    region |= region2 - {r}
    et = fn.graph.edges[t]
    if et.kind != "jumpi" or t in fn.decided or values.condition(t) != n2 or live_statements(fn, t) or len(et.trues) != 1:
        return None
    region.add(t)
    dst = next((u for u in rb if u.op == "ADD" and p in u.args and consts(u.args[1] if u.args[0] == p else u.args[0])
                == 32), None)
    tail = _copy_tail(fn, values, defs, consts, et.trues[0], et.false, ("t", r, dst.dest), slot, n2) \
        if dst is not None else None
    if tail is None:
        return None
    end, more = tail
    region |= more
    if end in region or end in (x, r) or values.params(end):
        return None
    mine = {("t", m, u.dest) for m in region | {r} for u in fn.body[m] if u.dest is not None} - {p}
    mine |= {a, n, n2} | {("t", x, u.dest) for u in body[i + 1:] if u.dest is not None}
    if _read_outside(fn, values, mine, reach - region - {r}, x, body[:i]):
        return None
    pcs = merged_pcs(*(u.pcs for u in body[i:]), *(u.pcs for m in region | {r} for u in fn.body[m]),
                     *[(fn.syms[m].last_pc,) for m in region | {x, r} if fn.syms[m].last_pc is not None])
    at = next(k for k, u in enumerate(fn.body[x]) if u is body[i])   # the load's place among all statements
    return {x: (at, None, r), r: (0, Stmt(frees[0].dest, "storagestring_checked", [slot], 1, pcs), end)}
