"""Level 2: the compiler's word-by-word memory copy loops (ABI encoding of bytes and strings, their copies for
revert reasons and events) as one statement, `copy(dst, src, n)`:

    L(i):  if i < n goto B else X          B:  mstore(dst + i, mload(src + i))
                                               goto L(i + 0x20)
entered as L(0x0) from one place. `copy(dst, src, n)` means that loop: for i = 0, 32, ... while i < n,
mstore(dst + i, mload(src + i)). The copy takes the loop's place; the code after it (X) must not read i.

solc's `copy_memory_to_memory` (ABI encoding of bytes and strings from 0.5, revert messages) follows the loop with
the padding after the copied bytes:

    X:  if i > n goto Z else J                 Z:  mstore(dst + n, 0x0)
                                                   goto J
which `copypad(dst, src, n)` stands for with the loop: the copy, then, if the loop's last i exceeds n (n is not a
multiple of 32), mstore(dst + n, 0x0). The code from J on must not read i.

Level 3 (`optimized`) also takes the forms solc 0.8's optimizer writes: addresses regrouped with a constant
(`mstore(32 + (i + d), mload(32 + (s + i)))`: dst = d + 32, src = s + 32, computed before the copy), and the
padding test's other side an empty instance of its own that jumps on to J (`if i > n goto Z else Y`, Y: `goto J`)."""
from __future__ import annotations

from .cse import PURE
from .ir import Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import (Constants, decide, fold_each, line, linear, linear_minus, live_preds, live_statements, prune,
                      replace, reread)
from .simplify import M
from .values import Values


def fold_copy_loops(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], optimized: bool = False) -> None:
    found = False
    for head in (n for n in fn.ids if n not in fn.single):   # a loop's head has two predecessors
        loop = _copy_loop(fn, values, defs, head, optimized)
        if loop is not None:
            enter, body, out, stmts = loop
            fn.body[enter].extend(stmts)
            fn.graph.edges[enter] = Edges("jump", [out])
            fn.preds[out] = [enter]
            fn.single.add(out)   # the tail's join (copypad) had two predecessors and no parameter
            found = True
    if found:
        values.forget()
        prune(fn)


def _copy_loop(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], head: int, optimized: bool = False):
    """(instance entering the loop, the body, the exit, the copy statement) when `head` heads a copy loop."""
    e = fn.graph.edges[head]
    if head in fn.removed or head in fn.single or head in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 \
            or e.false is None:
        return None
    params = values.params(head)
    preds = live_preds(fn, head)
    body, out = e.trues[0], e.false
    if len(params) != 1 or len(preds) != 2 or body not in preds or out not in fn.single:
        return None
    i = params[0]
    enter = preds[0] if preds[1] == body else preds[1]
    cond = defs.get(values.condition(head))
    if cond is None or cond.op != "LT" or cond.args[0] != i or fn.graph.edges[enter].plain_jump != head:
        return None
    n = cond.args[1]
    copied = _copy_body(fn, values, defs, body, head, i, optimized)
    if copied is None or values.edge_args(enter, head) != [("c", 0)]:
        return None
    (dst, dst_off), (src, src_off) = copied
    op, blocks = "copy", [head, body]
    tail = _zero_tail(fn, values, defs, out, i, (dst, dst_off), n, optimized)
    if tail is not None:   # copypad: the exit's test and the padding store are part of it; on from the join
        op, blocks, out = "copypad", blocks + tail[0], tail[1]
    inside = [("t", m, s.dest) for m in blocks for s in fn.body[m] if s.dest is not None]
    if not all(s.op in PURE for s in fn.body[head]) or any(_reads(fn, values, out, x) for x in [i] + inside):
        return None
    if any(x == i or x in inside for x in (dst, src, n)):
        return None
    # the copy stands for the whole loop: the head's test and branch, the body's load, store, step and jump back
    # (and for copypad the exit's test, the padding store and their jumps)
    pcs = merged_pcs(*(s.pcs for m in blocks for s in fn.body[m]),
                     *((fn.syms[m].last_pc,) for m in blocks if fn.syms[m].last_pc is not None))
    before, args, top = [], [], fn.next_temp(enter)
    for x, off in ((dst, dst_off), (src, src_off)):   # a regrouped offset: the address computed before the copy
        if off:
            before.append(Stmt(top, "ADD", [x, ("c", off)], 1, pcs))
            x, top = ("t", enter, top), top + 1
        args.append(x)
    return enter, body, out, before + [Stmt(None, op, args + [n], 1, pcs)]


def _zero_tail(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], x: int, i: Operand,
               dst: tuple[Operand, int], n: Operand, optimized: bool = False) -> tuple[list[int], int] | None:
    """([X, Z] (and Y), J) when the loop's exit X is `if i > n goto Z else J` (pure statements only), Z is
    `mstore(dst + n, 0x0); goto J` entered from X alone, and J is a join of X and Z without parameters; with
    `optimized`, X's other side may be Y, entered from X alone, printing nothing, going on to J."""
    e = fn.graph.edges[x]
    if x in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 or e.false is None:
        return None
    z, j = e.trues[0], e.false
    blocks, last = [x, z], x   # last: the instance that enters J from X's side
    if optimized and j in fn.single and not fn.body[j] and fn.graph.edges[j].plain_jump is not None \
            and fn.graph.edges[j].plain_jump == fn.graph.edges[z].plain_jump:
        blocks, last, j = [x, z, j], j, fn.graph.edges[j].plain_jump
    cond = defs.get(values.condition(x))
    if cond is None or cond.op != "GT" or cond.args != [i, n] or not all(s.op in PURE for s in fn.body[x]):
        return None
    if z not in fn.single or fn.graph.edges[z].plain_jump != j or j in fn.single or j in fn.entries:
        return None
    if sorted(live_preds(fn, j)) != sorted([last, z]) or values.params(j):
        return None
    stores = [s for s in fn.body[z] if s.dest is None]
    if len(stores) != 1 or stores[0].op != "MSTORE" or stores[0].args[1] != ("c", 0) or \
            any(s.op not in PURE for s in fn.body[z] if s.dest is not None):
        return None
    addr = defs.get(stores[0].args[0])
    if dst[1]:   # the padding's address regrouped too: (d + n) + 32
        if linear(defs, stores[0].args[0]) != (tuple(sorted([dst[0], n])), dst[1]):
            return None
    elif addr is None or addr.op != "ADD" or sorted(addr.args) != sorted([dst[0], n]):
        return None
    return blocks, j


def _copy_body(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], body: int, head: int, i: Operand,
               optimized: bool = False):
    """((dst, c), (src, c')) when `body` is mstore(dst + c + i, mload(src + c' + i)) and jumps back with i + 0x20
    (the constants 0 unless `optimized`); else None."""
    if body not in fn.single or fn.graph.edges[body].plain_jump != head:
        return None
    stmts = fn.body[body]
    stores = [s for s in stmts if s.dest is None]
    if len(stores) != 1 or stores[0].op != "MSTORE" or any(s.op not in PURE and s.op != "MLOAD" for s in stmts
                                                              if s.dest is not None):
        return None
    nxt = values.edge_args(body, head)
    step = defs.get(nxt[0]) if len(nxt) == 1 else None
    if step is None or step.op != "ADD" or sorted(step.args) != sorted([i, ("c", 0x20)]):
        return None
    dst = _base(defs, stores[0].args[0], i, optimized)
    load = defs.get(stores[0].args[1])
    src = _base(defs, load.args[0], i, optimized) if load is not None and load.op == "MLOAD" else None
    return (dst, src) if dst is not None and src is not None else None


def _base(defs: dict[Operand, Stmt], addr: Operand, i: Operand, optimized: bool) -> tuple[Operand, int] | None:
    """(x, 0) when addr is x + i; with `optimized`, (x, c) when it is x + i + c in any grouping."""
    s = defs.get(addr)
    if s is not None and s.op == "ADD" and i in s.args:
        return (s.args[1] if s.args[0] == i else s.args[0]), 0
    if not optimized:
        return None
    got = linear_minus(defs, addr, i)
    return (got[0][0], got[1]) if got is not None and len(got[0]) == 1 else None



def _reads(fn: FunctionIR, values: Values, n: int, i: Operand) -> bool:
    """Code from the loop's exit n on reads i."""
    seen, work = set(), [n]
    while work:
        m = work.pop()
        if m in seen:
            continue
        seen.add(m)
        if any(i in s.args for s in fn.body[m]):
            return True
        if fn.graph.edges[m].kind == "jumpi" and values.condition(m) == i:
            return True
        for t in fn.graph.edges[m].succ:
            if i in values.edge_args(m, t):
                return True
            work.append(t)
    return False


# ------------------------------------------------------------------------------------------- zero padding
def fold_zero_pads(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt]) -> None:
    """solc 0.4-0.7's legacy encoder after copying n bytes to dst clears the rest of the last word and moves on to
    the next word boundary:

        end = n + dst;  r = n & 0x1f;  if r goto B else C(end)
        B:  w = end - r;  mstore(w, ~((0x100 ** (0x20 - r)) - 0x1) & mload(w));  goto C(w + 0x20)
        C(v):

    `v = zeropad(dst, n)` stands for the branch and B: the bytes from dst + n up to dst + n rounded up to a
    multiple of 32 are cleared and v is that rounded address (dst + n when n is a multiple of 32)."""
    from .rewrite import decide, reread

    found = False
    for a in list(fn.ids):
        got = None if a in fn.removed else _zero_pad(fn, values, defs, a)
        if got is None:
            continue
        b, c, param, stmt = got
        fn.body[a].append(stmt)
        decide(fn, a, c)
        replace(values, param, ("t", a, stmt.dest))
        fn.single.add(c)
        fn.preds[c] = [a]
        found = True
    if found:
        prune(fn)
        reread(fn, values)
        values.forget()


def _zero_pad(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], a: int):
    """(B, C, C's parameter, the zeropad statement) when instance a ends the pattern of fold_zero_pads."""
    e = fn.graph.edges[a]
    if a in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 or e.false is None:
        return None
    b, c = e.trues[0], e.false
    r = values.condition(a)
    rd = defs.get(r)
    if rd is None or rd.op != "AND" or ("c", 0x1F) not in rd.args:
        return None
    n = rd.args[1] if rd.args[0] == ("c", 0x1F) else rd.args[0]
    if b not in fn.single or fn.graph.edges[b].plain_jump != c or c in fn.single or c in fn.entries:
        return None
    params = values.params(c)
    if len(params) != 1 or sorted(live_preds(fn, c)) != sorted([a, b]):
        return None
    (end,), (after,) = values.edge_args(a, c) or [None], values.edge_args(b, c) or [None]
    ed = defs.get(end) if end is not None else None
    if ed is None or ed.op != "ADD" or n not in ed.args:
        return None
    dst = ed.args[1] if ed.args[0] == n else ed.args[0]
    stores = [s for s in fn.body[b] if s.dest is None]
    if len(stores) != 1 or stores[0].op != "MSTORE" or any(
            s.op not in PURE and s.op != "MLOAD" for s in fn.body[b] if s.dest is not None):
        return None
    w, val = stores[0].args
    wd, ad = defs.get(w), defs.get(after)
    if wd is None or wd.op != "SUB" or wd.args != [end, r] or ad is None or ad.op != "ADD" or \
            sorted(ad.args) != sorted([w, ("c", 0x20)]):
        return None
    vd = defs.get(val)
    if vd is None or vd.op != "AND":
        return None
    loads = [x for x in vd.args if (defs.get(x) or Stmt(None, "", [])).op == "MLOAD" and defs[x].args == [w]]
    if len(loads) != 1 or not _keeps_first_bytes(defs, vd.args[1] if vd.args[0] == loads[0] else vd.args[0], r):
        return None
    inside = {("t", b, s.dest) for s in fn.body[b] if s.dest is not None}
    for m in fn.ids:   # B's values are read in B and by the jump to C only
        if m != b and m not in fn.removed and any(x in inside for s in fn.body[m] for x in s.args):
            return None
    dest = 1 + max((s.dest + s.ndest - 1 for s in fn.body[a] if s.dest is not None), default=-1)
    dest = max(dest, 1 + max((j for j in fn.params[a]), default=-1), 1000)
    pcs = merged_pcs(*(s.pcs for s in fn.body[b]), *((fn.syms[m].last_pc,) for m in (a, b)
                                                      if fn.syms[m].last_pc is not None), rd.pcs)
    return b, c, params[0], Stmt(dest, "zeropad", [dst, n], 1, pcs)


def _keeps_first_bytes(defs: dict[Operand, Stmt], mask: Operand, r: Operand) -> bool:
    """mask is ~((0x100 ** (0x20 - r)) - 0x1): ones over the first r bytes of a word."""
    nd = defs.get(mask)
    sd = defs.get(nd.args[0]) if nd is not None and nd.op == "NOT" else None
    if sd is None or sd.op != "SUB" or sd.args[1] != ("c", 1):
        return False
    xd = defs.get(sd.args[0])
    if xd is None or xd.op != "EXP" or xd.args[0] != ("c", 0x100):
        return False
    td = defs.get(xd.args[1])
    return td is not None and td.op == "SUB" and td.args == [("c", 0x20), r]


# ------------------------------------------------------------------------------------------- legacy memcpy
def fold_memcpy_loops(fn: FunctionIR, values: Values) -> int:
    """Level 3: solc 0.4-0.7's memcpy (abi.encodePacked of bytes, a call's bytes input, string concatenation):

        H(s, d, r):  if r < 32 goto T else B        B:  mstore(d, mload(s))
                                                        goto H(s + 32, d + 32, r - 32)
        T:  m = (256 ** (32 - r)) - 1
            mstore(d, (mload(s) & ~m) | (mload(d) & m))
            ...
    entered as H(src, dst, n) from one place. `memcpy(dst, src, n)` stands for the loop and T's masked store: the
    whole words copied forward, one by one, while 32 bytes or more are left, then the first n % 32 bytes of the next
    word (its other bytes kept). The code from T on must not read s, d or r. Runs on live statements (after
    eliminate_dead); callers prune and drop what became dead. Returns how many folded."""
    if not any(s.op == "EXP" for b in fn.body for s in b):   # the tail's mask: 256 ** (32 - r)
        return 0

    def apply(head: int, enter: int, tail: int, stmt: Stmt, drop: set[int]) -> None:
        for k in sorted(drop, reverse=True):
            del fn.body[tail][k], fn.live[tail][k]
        fn.body[enter].append(stmt)
        fn.live[enter].append(True)
        fn.graph.edges[enter] = Edges("jump", [tail])
        fn.preds[tail] = [enter]

    return _each_loop(fn, values, _memcpy, apply)


def fold_storage_copy_loops(fn: FunctionIR, values: Values) -> int:
    """Level 3: solc's copy of a long storage bytes or string to memory (`return _name;`, every version):

        E:  end = dst + n                      L(p, s):  mstore(p, sload(s))
            goto L(dst, base)                            if end > p + 32 goto L(p + 32, s + 1) else X
    entered from E only (solc tests n > 31 before E). `storagecopy(dst, base, n)` stands for the loop: for i = 0,
    32, ... while i < n, at least once, mstore(dst + i, sload(base + i / 32)). X takes no parameter, and the code
    from X on reads nothing the loop computes. Runs on live statements; callers prune. Returns how many folded."""
    if not any(t.op == "SLOAD" for b in fn.body for t in b):
        return 0

    def apply(head: int, enter: int, out: int, stmt: Stmt) -> None:
        fn.body[enter].append(stmt)
        fn.live[enter].append(True)
        fn.graph.edges[enter] = Edges("jump", [out])
        fn.preds[out] = [enter if m == head else m for m in fn.preds[out]]

    return _each_loop(fn, values, _storage_copy, apply)


def _storage_copy(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], head: int):
    """(instance entering the loop, its exit, the storagecopy statement) when `head` is solc's storage-to-memory
    word loop (fold_storage_copy_loops); else None."""
    e = fn.graph.edges[head]
    if head in fn.decided or e.kind != "jumpi" or e.trues != [head] or e.false is None or e.false == head:
        return None
    out, params, preds = e.false, values.params(head), live_preds(fn, head)
    if len(params) != 2 or len(preds) != 2 or head not in preds or values.params(out):
        return None
    enter = preds[0] if preds[1] == head else preds[1]
    if fn.graph.edges[enter].plain_jump != head:
        return None
    stmts = fn.body[head]
    stores = [t for t in stmts if t.dest is None]
    loads = [t for t in stmts if t.op == "SLOAD"]
    if len(stores) != 1 or stores[0].op != "MSTORE" or len(loads) != 1 or \
            any(t.dest is not None and t.op not in PURE and t is not loads[0] for t in stmts):
        return None
    p, word = stores[0].args
    s = loads[0].args[0]
    if {p, s} != set(params) or word != ("t", head, loads[0].dest):
        return None
    step = dict(zip(params, values.edge_args(head, head)))
    cond = defs.get(values.condition(head))
    if not (_plus(defs, step[p], p, 32) and _plus(defs, step[s], s, 1)) or cond is None:
        return None
    if cond.op == "GT" and _plus(defs, cond.args[1], p, 32):
        end = cond.args[0]
    elif cond.op == "LT" and _plus(defs, cond.args[0], p, 32):
        end = cond.args[1]
    else:
        return None
    init = dict(zip(params, values.edge_args(enter, head)))
    total = defs.get(end)
    if end in params or (end[0] == "t" and end[1] == head) or total is None or total.op != "ADD" \
            or init[p] not in total.args:
        return None
    n = total.args[1] if total.args[0] == init[p] else total.args[0]
    gone = set(params) | {("t", head, t.dest) for t in stmts if t.dest is not None}
    if any(_reads(fn, values, out, x) for x in gone):
        return None
    jump = fn.syms[head].last_pc
    pcs = merged_pcs(*(t.pcs for t in stmts), *([(jump,)] if jump is not None else []))
    return enter, out, Stmt(None, "storagecopy", [init[p], init[s], n], 1, pcs)


def _each_loop(fn: FunctionIR, values: Values, match, apply) -> int:
    """Try match(fn, values, defs, head) on every join instance (a loop's head has two predecessors) and apply(head,
    *match) to each hit (rewrite.fold_each). Returns how many applied."""
    def then(head: int, *got) -> None:
        apply(head, *got)
        values.forget()

    return fold_each(fn, values, [n for n in fn.ids if n not in fn.single and n not in fn.removed], match, then)


def _memcpy(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], head: int):
    """(instance entering the loop, T, the memcpy statement, positions in T it stands for) when `head` heads a
    legacy memcpy loop (fold_memcpy_loops); else None."""
    e = fn.graph.edges[head]
    if head in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 or e.false is None:
        return None
    params, preds = values.params(head), live_preds(fn, head)
    cond = defs.get(values.condition(head))
    if len(params) != 3 or len(preds) != 2 or cond is None or not all(s.op in PURE for s in fn.body[head]):
        return None
    if cond.op == "LT" and cond.args[1] == ("c", 32):
        r = cond.args[0]
    elif cond.op == "GT" and cond.args[0] == ("c", 32):
        r = cond.args[1]
    else:
        return None
    tail, body = e.trues[0], e.false
    enter = preds[0] if preds[1] == body else preds[1]
    if r not in params or body not in preds or body not in fn.single or tail not in fn.single \
            or tail in fn.entries or fn.graph.edges[body].plain_jump != head \
            or fn.graph.edges[enter].plain_jump != head:
        return None
    moved = _memcpy_body(fn, values, defs, body, head, params, r)
    if moved is None:
        return None
    s, d = moved
    live = [k for k, t in enumerate(fn.body[tail]) if fn.live[tail][k]]
    store = next((k for k in live if not (fn.body[tail][k].op in PURE or fn.body[tail][k].op == "MLOAD")), None)
    if store is None or not _masked_store(defs, fn.body[tail][store], s, d, r):
        return None
    chain = _chain(defs, fn.body[tail][store].args[1], tail)   # the masked store's value, computed in T
    drop = {store} | {k for k in live if ("t", tail, fn.body[tail][k].dest) in chain}
    rest = [fn.body[tail][k] for k in live if k not in drop]
    gone = set(params) | chain
    if any(x in gone for t in rest for x in t.args) or any(_reads(fn, values, x, p) for p in params
                                                           for x in fn.graph.edges[tail].succ):
        return None
    if (fn.graph.edges[tail].kind == "jumpi" and values.condition(tail) in gone) or \
            any(x in gone for t in fn.graph.edges[tail].succ for x in values.edge_args(tail, t)):
        return None
    init = dict(zip(params, values.edge_args(enter, head)))
    pcs = merged_pcs(*(t.pcs for m in (head, body) for t in fn.body[m]), *(fn.body[tail][k].pcs for k in drop),
                     *((fn.syms[m].last_pc,) for m in (head, body) if fn.syms[m].last_pc is not None))
    return enter, tail, Stmt(None, "memcpy", [init[d], init[s], init[r]], 1, pcs), drop


def _memcpy_body(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], body: int, head: int, params, r):
    """(s, d) when `body` is mstore(d, mload(s)) and jumps back with s + 32, d + 32, r - 32."""
    stmts = [t for k, t in enumerate(fn.body[body]) if fn.live[body][k]]
    stores = [t for t in stmts if t.dest is None]
    if len(stores) != 1 or stores[0].op != "MSTORE" or any(t.op not in PURE and t.op != "MLOAD" for t in stmts
                                                              if t.dest is not None):
        return None
    d, load = stores[0].args[0], defs.get(stores[0].args[1])
    s = load.args[0] if load is not None and load.op == "MLOAD" else None
    if s is None or len({s, d, r}) != 3 or s not in params or d not in params:
        return None
    step = dict(zip(params, values.edge_args(body, head)))
    return (s, d) if _plus(defs, step[s], s, 32) and _plus(defs, step[d], d, 32) and (
        _plus(defs, step[r], r, M - 32) or (defs.get(step[r]) is not None and defs[step[r]].op == "SUB"
                                            and defs[step[r]].args == [r, ("c", 32)])) else None


def _plus(defs: dict[Operand, Stmt], o: Operand, x: Operand, c: int) -> bool:
    """o is x + c (c may stand as a line of its own: `~0x1f`)."""
    s = defs.get(o)
    if s is None or s.op != "ADD" or x not in s.args:
        return False
    return Constants(defs)(s.args[1] if s.args[0] == x else s.args[0]) == c


def _masked_store(defs: dict[Operand, Stmt], st: Stmt, s: Operand, d: Operand, r: Operand) -> bool:
    """st is mstore(d, (mload(s) & ~m) | (mload(d) & m)), m = (256 ** (32 - r)) - 1 (either way round)."""
    v = defs.get(st.args[1]) if st.op == "MSTORE" and st.args[0] == d else None
    if v is None or v.op != "OR":
        return False
    parts = [defs.get(x) for x in v.args]
    if None in parts or any(p.op != "AND" for p in parts):
        return False

    def load_of(x: Operand, at: Operand) -> bool:
        ld = defs.get(x)
        return ld is not None and ld.op == "MLOAD" and ld.args == [at]

    def split(p: Stmt, at: Operand):   # (the mask operand) when p is mload(at) & mask
        return next((b for a, b in (p.args, p.args[::-1]) if load_of(a, at)), None)

    for a, b in (parts, parts[::-1]):
        keep, take = split(b, d), split(a, s)   # b keeps d's word under m, a takes s's word under ~m
        if keep is None or take is None:
            continue
        neg = defs.get(take)
        if neg is not None and neg.op == "NOT" and neg.args[0] == keep and _tail_mask(defs, keep, r):
            return True
    return False


def _tail_mask(defs: dict[Operand, Stmt], m: Operand, r: Operand) -> bool:
    """m is (256 ** (32 - r)) - 1: ones under the last 32 - r bytes of a word."""
    md = defs.get(m)
    if md is None:
        return False
    if md.op == "SUB" and md.args[1] == ("c", 1):
        x = md.args[0]
    elif md.op == "ADD" and Constants(defs)(md.args[0]) == M - 1:   # ~0 + 256 ** (32 - r)
        x = md.args[1]
    elif md.op == "ADD" and Constants(defs)(md.args[1]) == M - 1:
        x = md.args[0]
    else:
        return False
    xd = defs.get(x)
    if xd is None or xd.op != "EXP" or xd.args[0] != ("c", 256):
        return False
    td = defs.get(xd.args[1])
    return td is not None and td.op == "SUB" and td.args == [("c", 32), r]


def _chain(defs: dict[Operand, Stmt], o: Operand, n: int) -> set[Operand]:
    """The temps of instance n that o is computed from (o included), through n's own statements."""
    out, work = set(), [o]
    while work:
        x = work.pop()
        if x in out or x[0] != "t" or x[1] != n or x not in defs:
            continue
        out.add(x)
        work.extend(defs[x].args)
    return out


# ------------------------------------------------------------------------------------------- calldata words
def fold_calldata_word_loops(fn: FunctionIR, values: Values) -> int:
    """Level 3: abicoder v2 copies an array of one-word values (`uint256[] memory`) from calldata word by word:

        H(s, d):  if s < end goto B else X        B:  mstore(d, calldataload(s))
                                                      goto H(s + 32, d + 32)
    entered as H(src, dst) from one place, end = src + L (L = 32n, the array's bytes). That is `calldatacopy(dst,
    src, L)` before H, whose branch then always exits: calldataload reads zeros past calldatasize as calldatacopy
    does, and src + L does not wrap (the decoder bounds n by 2**64). The code from X on (and the exit's arguments)
    must not read s or d. Runs on live statements; callers prune. Returns how many folded."""
    if not any(s.op == "CALLDATALOAD" for b in fn.body for s in b):
        return 0

    def apply(head: int, enter: int, out: int, stmt: Stmt) -> None:
        fn.body[enter].append(stmt)   # the copy before the head, whose branch now always exits
        fn.live[enter].append(True)
        decide(fn, head, out)

    return _each_loop(fn, values, _calldata_words, apply)


def word_count(defs: dict[Operand, Stmt], o: Operand) -> Operand | None:
    """n when o is n * 32 (or n << 5): the bytes of n words."""
    s = defs.get(o)
    if s is not None and s.op == "MUL" and ("c", 32) in s.args:
        return s.args[1] if s.args[0] == ("c", 32) else s.args[0]
    return s.args[1] if s is not None and s.op == "SHL" and s.args[0] == ("c", 5) else None


def _calldata_words(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], head: int):
    """(instance entering the loop, the exit, the calldatacopy) when `head` heads a word-by-word copy of calldata."""
    e = fn.graph.edges[head]
    if head in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 or e.false is None:
        return None
    params, preds = values.params(head), live_preds(fn, head)
    cond = defs.get(values.condition(head))
    body, out = e.trues[0], e.false
    if len(params) != 2 or len(preds) != 2 or body not in preds or cond is None or cond.op != "LT" \
            or cond.args[0] not in params or not all(s.op in PURE for s in fn.body[head]) \
            or body not in fn.single or fn.graph.edges[body].plain_jump != head:
        return None
    s, end = cond.args
    d = params[0] if params[1] == s else params[1]
    enter = preds[0] if preds[1] == body else preds[1]
    if fn.graph.edges[enter].plain_jump != head:
        return None
    stmts = [t for k, t in enumerate(fn.body[body]) if fn.live[body][k]]
    stores = [t for t in stmts if t.dest is None]
    if len(stores) != 1 or stores[0].op != "MSTORE" or stores[0].args[0] != d \
            or any(t.op not in PURE for t in stmts if t.dest is not None):
        return None
    load = defs.get(stores[0].args[1])
    step = dict(zip(params, values.edge_args(body, head)))
    if load is None or load.op != "CALLDATALOAD" or load.args != [s] or not _plus(defs, step[s], s, 32) \
            or not _plus(defs, step[d], d, 32):
        return None
    init = dict(zip(params, values.edge_args(enter, head)))
    size = linear_minus(defs, end, init[s])   # end = src + L, L = n * 32
    if size is None or len(size[0]) != 1 or size[1] != 0:
        return None
    if word_count(defs, size[0][0]) is None:
        return None
    inside = [("t", m, t.dest) for m in (head, body) for t in fn.body[m] if t.dest is not None]
    if any(_reads(fn, values, out, x) or x in values.edge_args(head, out) for x in [s, d, *inside]):
        return None
    pcs = merged_pcs(*(t.pcs for m in (head, body) for t in fn.body[m]),
                     *((fn.syms[m].last_pc,) for m in (head, body) if fn.syms[m].last_pc is not None))
    return enter, out, Stmt(None, "CALLDATACOPY", [init[d], init[s], size[0][0]], 1, pcs)


# ------------------------------------------------------------------------------------------- counted word loops
def fold_counted_word_loops(fn: FunctionIR, values: Values) -> int:
    """Level 3: a word-by-word copy of n words that counts them (the legacy encoder writing a memory `uint256[]`
    into an event, a call or a return; abicoder v2 decoding a calldata `uint256[]` with the optimizer):

        H(i, s, d):  if i < n goto B else X       B:  mstore(d, mload(s))           (or calldataload(s))
                                                      goto H(i + 1, s + 32, d + 32)
    entered as H(0, src, dst) from one place, n computed before the loop. That is `copy(dst, src, w)` (memory) or
    `calldatacopy(dst, src, w)` (calldata) with w = n * 32, before H, whose branch then always exits with the
    loop's last values: i = n, s = src + w, d = dst + w, which the code from X on may read. Exact while n < 2**251,
    where w does not wrap: a longer loop writes memory past any gas limit. calldataload reads zeros past
    calldatasize as calldatacopy does, and the decoder bounds src. Runs on live statements; callers prune.
    Returns how many folded."""
    if not any(s.op in ("MLOAD", "CALLDATALOAD") for b in fn.body for s in b):
        return 0

    def apply(head: int, enter: int, out: int, got) -> None:
        (i, s, d), (n, src, dst), op, pcs = got
        top = fn.next_temp(enter)
        w, s_end, d_end = (("t", enter, top + k) for k in range(3))
        fn.body[enter] += [Stmt(top, "MUL", [n, ("c", 32)], 1, pcs), Stmt(None, op, [dst, src, w], 1, pcs),
                           Stmt(top + 1, "ADD", [src, w], 1, pcs), Stmt(top + 2, "ADD", [dst, w], 1, pcs)]
        fn.live[enter] += [True] * 4
        for param, last in ((i, n), (s, s_end), (d, d_end)):
            replace(values, param, last)
        reread(fn, values)
        decide(fn, head, out)

    return _each_loop(fn, values, _counted_words, apply)


def _counted_words(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], head: int):
    """(instance entering the loop, the exit, ((i, s, d), (n, src, dst), the copy's op, its pcs)) when `head`
    heads a counted word copy (fold_counted_word_loops; its body B may be a straight line of instances); else
    None."""
    e = fn.graph.edges[head]
    if head in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 or e.false is None:
        return None
    params, preds = values.params(head), live_preds(fn, head)
    out = e.false
    body = line(fn, e.trues[0]) if e.trues[0] in fn.single else []
    if len(params) != 3 or len(preds) != 2 or not body or body[-1] not in preds or out == head \
            or fn.graph.edges[body[-1]].plain_jump != head or not all(t.op in PURE for t in fn.body[head]):
        return None
    enter = preds[0] if preds[1] == body[-1] else preds[1]
    cond = defs.get(values.condition(head))
    if cond is None or fn.graph.edges[enter].plain_jump != head:
        return None
    if cond.op == "LT":
        i, n = cond.args
    elif cond.op == "GT":
        n, i = cond.args
    else:
        return None
    stmts = [t for m in body for t in live_statements(fn, m)]
    stores = [t for t in stmts if t.dest is None]
    if i not in params or len(stores) != 1 or stores[0].op != "MSTORE":
        return None
    d, load = stores[0].args[0], defs.get(stores[0].args[1])
    if load is None or load.op not in ("MLOAD", "CALLDATALOAD") or not any(t is load for t in stmts) \
            or any(t.op not in PURE and t is not load for t in stmts if t.dest is not None):
        return None
    s = load.args[0]
    if len({i, s, d}) != 3 or s not in params or d not in params:
        return None
    step = dict(zip(params, values.edge_args(body[-1], head)))
    if not (_plus(defs, step[i], i, 1) and _plus(defs, step[s], s, 32) and _plus(defs, step[d], d, 32)):
        return None
    init = dict(zip(params, values.edge_args(enter, head)))
    loop = [head, *body]
    inside = [("t", m, t.dest) for m in loop for t in fn.body[m] if t.dest is not None]
    if init[i] != ("c", 0) or n in params or n in inside or any(_reads(fn, values, out, x) for x in inside):
        return None
    op = "copy" if load.op == "MLOAD" else "CALLDATACOPY"
    pcs = merged_pcs(*(t.pcs for m in loop for t in fn.body[m]),
                     *((fn.syms[m].last_pc,) for m in loop if fn.syms[m].last_pc is not None))
    return enter, out, ((i, s, d), (n, init[s], init[d]), op, pcs)
