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
value of the region but p is read after it. solc 0.8's decoding branches on the flag and checks the encoding
(panic 0x22): not folded here."""
from __future__ import annotations

from .cse import PURE
from .ir import Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, definitions
from .values import Values

M = 1 << 256
_COMMUTATIVE = {"ADD", "MUL", "AND", "OR", "XOR", "EQ"}
_A, _P = ("a",), ("p",)   # the slot word a length is decoded from; the free pointer


def norm(op: str, *args):
    """An operation over canonical operands, canonical: ADD chains flattened, commutative operands sorted."""
    if op == "ADD":
        flat = []
        for x in args:
            flat.extend(x[1:] if isinstance(x, tuple) and x and x[0] == "ADD" else [x])
        args = tuple(flat)
    if op in _COMMUTATIVE:
        args = tuple(sorted(args, key=repr))
    return (op, *args)


# length(a) as the compilers write it: 0.4-0.7 without and with the optimizer
_LENGTHS = {
    norm("DIV", norm("AND", norm("SUB", norm("MUL", norm("ISZERO", norm("AND", _A, 1)), 256), 1), _A), 2),
    norm("DIV", norm("AND", norm("ADD", norm("MUL", norm("ISZERO", norm("AND", _A, 1)), 256), M - 1), _A), 2),
}


def canon(o: Operand, defs: dict[Operand, Stmt], leaves: dict[Operand, tuple], consts: Constants, depth: int = 0):
    """Operand o as a canonical tree (norm) over `leaves` and constants; None where it reads anything else."""
    if o in leaves:
        return leaves[o]
    c = consts(o)
    if c is not None:
        return c
    s = defs.get(o)
    if s is None or s.op not in PURE or depth > 12:
        return None
    args = [canon(x, defs, leaves, consts, depth + 1) for x in s.args]
    return None if None in args else norm(s.op, *args)


def fold_storage_strings(fn: FunctionIR, values: Values) -> int:
    """Fold each storage string read of the form above into `p = storagestring(slot)`; returns how many. Runs on
    live statements after storagecopy; callers prune and drop what became dead."""
    if not any(s.op == "storagecopy" for b in fn.body for s in b):
        return 0
    folded = 0
    for x in list(fn.ids):
        reach = _reachable(fn)   # other folds of this pass left instances behind: prune runs after them all
        if x not in reach:
            continue
        got = _match(fn, values, definitions(fn), x, reach)
        if got is None:
            continue
        i0, stmt, end, region = got
        fn.body[x] = fn.body[x][:i0] + [stmt]
        fn.live[x] = fn.live[x][:i0] + [True]
        fn.graph.edges[x] = Edges("jump", [end])
        fn.preds[end] = [m for m in fn.preds[end] if m not in region] + [x]
        values.forget()
        folded += 1
    return folded


def _reachable(fn: FunctionIR) -> set[int]:
    seen, work = set(fn.entries), list(fn.entries)
    while work:
        for t in fn.graph.edges[work.pop()].succ:
            if t not in seen:
                seen.add(t)
                work.append(t)
    return seen


def _follow(fn: FunctionIR, n: int, passed: set[int]) -> int:
    """Through empty instances that only jump on: the first that does something (those passed are added)."""
    on_the_way: set[int] = set()
    while not fn.body[n] and fn.graph.edges[n].plain_jump is not None and n not in on_the_way:
        on_the_way.add(n)
        n = fn.graph.edges[n].plain_jump
    passed |= on_the_way
    return n


def _match(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], x: int, reach: set[int]):
    """(position of the first statement folded, the storagestring statement, the join E, the instances the fold
    removes) when instance x ends with a storage string read; else None."""
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
            any(s.op == "SLOAD" and s.args[0] != slot for s in region_stmts) or \
            any(s.op not in PURE and s.dest is None and s.op != "MSTORE" for s in region_stmts):
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
    region: set[int] = set()
    end = _follow(fn, empty_side, region)
    a = _follow(fn, long_side, region)
    ea = fn.graph.edges[a]
    lt = defs.get(values.condition(a)) if ea.kind == "jumpi" else None
    if lt is None or a == end or len(ea.trues) != 1 or ea.false is None or \
            any(s is not lt for s in fn.body[a]) or not _over_31(lt, n2, consts):
        return None
    region.add(a)
    long_, short = _follow(fn, ea.trues[0], region), _follow(fn, ea.false, region)
    dst = next((s for s in region_stmts if s.op == "ADD" and consts(s.args[0] if s.args[1] == p else s.args[1]) == 32
                and p in s.args), None)
    if dst is None or not _copies(fn, defs, consts, long_, ("t", x, dst.dest), slot, n2) or \
            not _short_copy(fn, defs, consts, short, ("t", x, dst.dest), slot):
        return None
    region |= {long_, short}
    for m in (long_, short):
        after = fn.graph.edges[m].plain_jump
        if after is None or _follow(fn, after, region) != end:
            return None
    if values.params(end) or end in region or x in region:
        return None
    mine = {("t", x, s.dest) for s in region_stmts if s.dest is not None} - {p}
    mine |= {("t", m, s.dest) for m in region for s in fn.body[m] if s.dest is not None}
    for m in reach - region:
        stmts = [s for k, s in enumerate(fn.body[m]) if fn.live[m][k] and (m != x or k < i0)]
        if any(o in mine for s in stmts for o in s.args):
            return None
        if m != x and ((fn.graph.edges[m].kind == "jumpi" and values.condition(m) in mine) or
                       any(o in mine for t in fn.graph.edges[m].succ for o in values.edge_args(m, t))):
            return None
    pcs = merged_pcs(*(s.pcs for s in region_stmts), *(s.pcs for m in region for s in fn.body[m]),
                     *[(fn.syms[m].last_pc,) for m in {x} | region if fn.syms[m].last_pc is not None])
    return i0, Stmt(frees[0].dest, "storagestring", [slot], 1, pcs), end, region


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
