"""Level 3: a bytes or string in memory written to storage (`name = s;`) as one statement, `storagestring(slot) =
src` (strings.py folds the read, `p = storagestring(slot)`).

solc 0.4-0.7 (with and without the optimizer) writes the new length and data, then clears the old data's words past
the new ones:

    x:  a = sload(S); base = array(S)            (n = mload(src), data = src + 32, computed before or here)
        if 31 < n goto LONG else SHORT
    SHORT:  sstore(S, (n + n) | bytes31(mload(data)));  goto CLR(base)
    LONG:   sstore(S, 1 + (n + n));  if n goto L0 else CLR(base)
    L0:     goto LOOP(base, data)
    LOOP(i, p):  if data + n > p goto BODY else CLR(i)
    BODY:   sstore(i, mload(p));  goto LOOP(i + 1, p + 32)
    CLR(k): if base + (31 + old) / 32 > k goto Z else END          (reached through an empty join, or not)
    Z:      sstore(k, 0);  goto CLR(k + 1)

where old = length(a), the old length (strings.py's forms). solc 0.8.0-0.8.12 decodes the old length with its
encoding check first (`panic(0x22)`: strings.py's _decode08) and writes an empty value as `sstore(S, 0)`:

    x:  a = sload(S); (the checked decoding of old)   then:  base = array(S); if n goto B else E0
    E0: sstore(S, 0);  goto CLR(base)                         B:  if 31 < n goto LONG else SHORT   (as above)

solc 0.7 writes an empty value as a zero word too (x: ... base = array(S); if n goto B else E0), without the check.
solc 0.8.13+ (copy_byte_array_to_storage) checks the old length the same way, then clears first and masks what it
writes (with the optimizer, shifts for the multiplications and divisions by powers of two):

    y:  if old > 31 goto CLEAN else W
    CLEAN:  base = array(S); if n < 32 goto J(base) else J(base + (n + 31) / 32)
    J(k) ... CLR(k): if base + (old + 31) / 32 > k goto Z else W          Z: sstore(k, 0); goto CLR(k + 1)
    W:  if (31 < n) == 1 goto LONG else SHORT
    SHORT:  if n goto VALUE else WORD(0)      VALUE: goto WORD(mload(src + 32))
    WORD(v):  sstore(S, (v & ~(~0 >> 8n)) | 2n); goto END
    LONG:  goto L(0, array(S), 32)
    L(i, d, o):  if i < n & ~31 goto BODY else TAIL
    BODY:  sstore(d, mload(src + o)); goto L(i + 32, d + 1, o + 32)
    TAIL:  if n & ~31 < n goto LAST else LENGTH     LAST: sstore(d, mload(src + o) & ~(~0 >> 8(n & 31)))
    LENGTH:  sstore(S, 2n + 1); goto END

`legacy storagestring(S) = src` (0.4-0.6), `storagestring(S) = src` (0.7), `checked storagestring(S) = src`
(0.8.0-0.8.12) and `masked storagestring(S) = src` (0.8.13+) stand for all of it, in that order: the slot's old
word read, for 0.8 its check, base = array(S) (the scratch words written), the slot and data words written, the old
words past the new ones cleared while base + (31 + old) / 32 > k (the sums wrap as the code's do; 0.8.13+ clears
first). END takes no parameter; nothing after the region reads its values, and the words END reads from the stack
are pinned to what they were before (the stack at x is not the stack at END)."""
from __future__ import annotations

from functools import cache

from .cse import PURE, _CAST
from .ir import Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, decide, fold_each, line, live_preds, live_statements, onto, reachable, two_way
from .strings import _LENGTHS, Trees, _decode08, _read_outside, norm
from .simplify import M
from .values import Values

_S, _N, _SRC, _BASE, _OLD, _A, _I, _P, _K = (("S",), ("n",), ("src",), ("base",), ("old",), ("a",), ("i",), ("p",),
                                               ("k",))
_DATA = norm("ADD", _SRC, 32)
_SOURCES = ("MLOAD", "CALLDATALOAD")   # where the new value is read from: memory, or a calldata argument
_OVER_31 = {norm("LT", 31, _N), norm("GT", _N, 31)}


def fold_storage_string_writes(fn: FunctionIR, values: Values) -> int:
    """Fold each write of the forms above into `storagestring(S) = src`; returns how many. Runs on live statements;
    callers prune and drop what became dead."""
    if not any(s.op == "array" for b in fn.body for s in b):
        return 0

    def apply(x: int, at: int, stmt: Stmt, end: int | str) -> None:
        fn.body[x] = fn.body[x][:at] + [stmt]
        fn.live[x] = fn.live[x][:at] + [True]
        if end == RET:   # an internal function's unit that is the write: it returns (no results) after it
            fn.graph.edges[x] = Edges("ret", [])
            fn.decided.add(x)
            values.forget()
            return
        for j in sorted(fn.params[end]):   # pin what END reads from the stack: x's stack is not CLR's
            v = values.resolve(end, ("p", j))
            if v != ("p", end, j):
                values.folded[("p", end, j)] = v
        values.walks_changed()
        decide(fn, x, end)
        fn.preds[end] = [x]
        values.forget()

    return fold_each(fn, values, list(fn.ids), _match, apply)


class _Tree(Trees):
    """Operands as canonical trees (strings.Trees) through casts and memory reads too (nothing in the region writes
    memory); the slot written and the empty instances the region's edges go through (rewrite.onto)."""

    def __init__(self, defs: dict[Operand, Stmt]):
        super().__init__(defs)
        self.slot = None
        self.passed: list[int] = []
        # what the new value is read with, named where its length is found: MLOAD (a string in memory) or
        # CALLDATALOAD (a `bytes calldata` / `string calldata` argument, the same code with calldataload)
        self.source = "MLOAD"

    def reads(self, o: Operand, s: Stmt) -> bool:
        return s.op in PURE or s.op == self.source or bool(_CAST.fullmatch(s.op))

    def from_source(self, s: Stmt | None) -> bool:
        """s reads the new value's length (`mload(src)`, `calldataload(src)`): the source is named by it."""
        if s is None or s.op not in _SOURCES:
            return False
        self.source = s.op
        return True

    def node(self, o: Operand, s: Stmt, args: list):
        """A shift by a constant as the multiplication or division it is (the optimizer writes `n << 1` for
        `n * 2`, `x >> 5` for `x / 32`)."""
        if s.op in ("SHL", "SHR") and isinstance(args[0], int) and args[0] < 256:
            return norm("MUL" if s.op == "SHL" else "DIV", args[1], 1 << args[0])
        return norm("MLOAD" if s.op == self.source else s.op, *args)   # the patterns read the value as MLOAD


def _match(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], x: int):
    """(position in x where the write starts, `storagestring(S) = src`, END) when instance x starts a write of the
    forms above; else None."""
    e = fn.graph.edges[x]
    if e.kind not in ("jump", "jumpi") or x in fn.decided:
        return None
    body = fn.body[x]
    live = [k for k in range(len(body)) if fn.live[x][k]]
    loads = [k for k in live if body[k].op == "SLOAD"]
    if not loads:
        return None
    at = loads[-1]
    slot, a = body[at].args[0], ("t", x, body[at].dest)
    tree = _Tree(defs)
    tree.slot = tree.consts(slot)   # a constant slot compares as its value, else as the leaf S
    if tree.slot is None:
        tree.leaves[slot], tree.slot = _S, _S
    tree.leaves[a] = _A
    region: set[int] = set()
    consts = Constants(defs)
    first = _decode08(fn, values, defs, consts, x if e.kind == "jumpi" else e.plain_jump)
    if first is not None and first[0] == a:   # 0.8.0-0.8.12: the old length decoded and checked
        _, old, y, passed = first
        region |= passed - {x}
        tree.leaves[old] = _OLD
        rest = [k for k in live if k > at and body[k].op not in ("AND", "DIV", "SHR")]
        if rest or y in region or y == x or y not in fn.single or \
                any(t.op not in PURE and t.op != "array" for t in live_statements(fn, y)):
            return None
        if _base_and_branch(fn, values, tree, y, slot) is None:   # 0.8.13+: the old words cleared first
            got = _masked(fn, values, tree, y)
            if got is None:
                return None
            end, more = got
            return _region_write(fn, values, tree, x, at, live, slot, region | more, end, "masked")
        got = _empty_branch(fn, values, tree, y)
        if got is None:
            return None
        branch, e0, clears = got
        region |= {y, branch, e0}
        bounds = [norm("ADD", _BASE, norm("DIV", norm("ADD", _OLD, 31), 32))]
        form = "checked"
    else:
        rest = [k for k in live if k > at and body[k].op not in PURE and body[k].op != "array" and
                body[k].op not in _SOURCES]
        if e.kind != "jumpi" or rest or _base_and_branch(fn, values, tree, x, slot, after=at) is None:
            return None
        bounds = [norm("ADD", _BASE, norm("DIV", norm("ADD", old, 31), 32)) for old in _LENGTHS]
        got = _empty_branch(fn, values, tree, x)
        if got is not None:   # 0.7: an empty value first
            branch, e0, clears = got
            region |= {branch, e0}
            form = ""
        else:                 # 0.4-0.6: straight to the length's form
            branch, clears, form = x, [], "legacy"
    got = _long_and_short(fn, values, tree, branch)
    if got is None:
        return None
    more, joins = got
    region |= more
    clears += joins
    got = _clear_loop(fn, values, tree, clears, bounds)
    if got is None:
        return None
    end, more = got
    return _region_write(fn, values, tree, x, at, live, slot, region | more, end, form)


def _region_write(fn: FunctionIR, values: Values, tree: _Tree, x: int, at: int, live: list[int], slot: Operand,
                  region: set[int], end: int, form: str):
    """_match's answer for a write whose instances after x are `region` and whose code goes on at `end`, when
    nothing enters the region from elsewhere and nothing after it reads its values; else None."""
    body = fn.body[x]
    region = region | set(tree.passed)
    if end in region or end == x:
        return None
    if any(set(live_preds(fn, m)) - region - {x} for m in region if fn.graph.edges[m].kind != "halt"):
        return None   # (a panic may be shared with other checks)
    mine = {("t", m, s.dest) for m in region for s in fn.body[m] if s.dest is not None}
    mine |= {("t", x, body[k].dest) for k in live if k >= at and body[k].dest is not None}
    mine |= {p for m in region for p in values.params(m)}
    if _read_outside(fn, values, mine, reachable(fn) - region, x, [body[k] for k in live if k < at]):
        return None
    pcs = merged_pcs(*(body[k].pcs for k in live if k >= at), *(s.pcs for m in region for s in fn.body[m]),
                     *((fn.syms[m].last_pc,) for m in region | {x} if fn.syms[m].last_pc is not None))
    src = next(o for o, leaf in tree.leaves.items() if leaf == _SRC)
    op = "storagestring_store" + (f"_{form}" if form else "") + ("_calldata" if tree.source == "CALLDATALOAD" else "")
    return at, Stmt(None, op, [slot, src], 1, pcs), end


def _empty_branch(fn: FunctionIR, values: Values, tree: _Tree, y: int):
    """(B, E0, [the edge from E0 into the clearing]) when instance y tests n, going to B when it is not 0 and to E0,
    sstore(S, 0), when it is (0.7 and 0.8.0-0.8.12); else None."""
    ey = fn.graph.edges[y]
    if ey.kind != "jumpi" or y in fn.decided or tree(values.condition(y)) != _N or len(ey.trues) != 1:
        return None
    b, e0 = ey.trues[0], ey.false
    if e0 not in fn.single or b not in fn.single:
        return None
    empty = _store_then_clear(fn, values, tree, e0, 0)
    return None if empty is None else (b, e0, [empty])


def _base_and_branch(fn: FunctionIR, values: Values, tree: _Tree, m: int, slot: Operand, after: int = -1):
    """(base, n) when instance m computes base = array(S) (after position `after`) and n = mload(src) is the
    length its branch tests (n itself, or 31 < n); the leaves base, n and src named."""
    body = fn.body[m]
    arrays = [k for k in range(len(body)) if fn.live[m][k] and k > after and body[k].op == "array"]
    if len(arrays) != 1 or len(body[arrays[0]].args) != 1 or tree(body[arrays[0]].args[0]) != tree.slot:
        return None
    base = ("t", m, body[arrays[0]].dest)
    tree.leaves[base] = _BASE
    if fn.graph.edges[m].kind != "jumpi":
        return None
    c = values.condition(m)
    cs = tree.defs.get(c)
    n = c if cs is not None and cs.op in _SOURCES else \
        next((x for x in (cs.args if cs is not None and cs.op in ("LT", "GT") else []) if tree.consts(x) is None), None)
    ns = tree.defs.get(n) if n is not None else None
    if not tree.from_source(ns):
        return None
    tree.leaves[ns.args[0]] = _SRC
    tree.leaves[n] = _N
    return base, n


def _long_and_short(fn: FunctionIR, values: Values, tree: _Tree, b: int):
    """(the instances of the two writes and the copy loop, [(instance, edge into the clearing) ...]) when branch b
    tests 31 < n and its sides are LONG (with the loop) and SHORT; else None."""
    eb = fn.graph.edges[b]
    if eb.kind != "jumpi" or b in fn.decided or len(eb.trues) != 1 or tree(values.condition(b)) not in _OVER_31:
        return None
    long_, short = eb.trues[0], eb.false
    if long_ not in fn.single or short not in fn.single:
        return None
    s = _store_then_clear(fn, values, tree, short, norm("OR", norm("ADD", _N, _N), norm("bytes31", norm(
        "MLOAD", _DATA))))
    if s is None or len(_stores(fn, long_)) != 1 or tree(_stores(fn, long_)[0].args[1]) != norm("ADD", _N, _N, 1) \
            or tree(_stores(fn, long_)[0].args[0]) != tree.slot:
        return None
    el = fn.graph.edges[long_]
    if el.kind != "jumpi" or long_ in fn.decided or tree(values.condition(long_)) != _N or len(el.trues) != 1:
        return None
    t, via = onto(fn, long_, el.false, tree.passed)
    l0, skip = el.trues[0], (via, t)
    if not _arg_is(values, tree, skip, _BASE) or l0 not in fn.single or \
            any(t.op not in PURE for t in live_statements(fn, l0)):   # (the loop's end may be computed there)
        return None
    head = fn.graph.edges[l0].plain_jump
    if head is None:
        return None
    init = dict(zip(values.params(head), values.edge_args(l0, head)))
    if len(init) != 2:
        return None
    i = next((p for p, v in init.items() if tree(v) == _BASE), None)
    p = next((q for q, v in init.items() if tree(v) == _DATA), None)
    if i is None or p is None or i == p:
        return None
    tree.leaves[i], tree.leaves[p] = _I, _P
    eh = fn.graph.edges[head]
    if eh.kind != "jumpi" or head in fn.decided or len(eh.trues) != 1 or \
            tree(values.condition(head)) not in (norm("GT", norm("ADD", _DATA, _N), _P),
                                                 norm("LT", _P, norm("ADD", _DATA, _N))):
        return None
    t, via = onto(fn, head, eh.false, tree.passed)
    body, exit_ = eh.trues[0], (via, t)
    st = _stores(fn, body) if body in fn.single else []
    if len(st) != 1 or tree(st[0].args[0]) != _I or tree(st[0].args[1]) != norm("MLOAD", _P) or \
            fn.graph.edges[body].plain_jump != head or any(t.op not in PURE and t.op not in _SOURCES and t is not st[0]
                                                          for t in live_statements(fn, body)):
        return None
    step = dict(zip(values.params(head), values.edge_args(body, head)))
    if tree(step[i]) != norm("ADD", _I, 1) or tree(step[p]) != norm("ADD", _P, 32) or \
            not _arg_is(values, tree, exit_, _I) or not all(t.op in PURE for t in live_statements(fn, head)):
        return None
    if sorted(live_preds(fn, head)) != sorted([l0, body]):
        return None
    return {long_, short, l0, head, body}, [s, skip, exit_]


def _stores(fn: FunctionIR, m: int) -> list[Stmt]:
    return [t for t in live_statements(fn, m) if t.dest is None]


def _store_then_clear(fn: FunctionIR, values: Values, tree: _Tree, m: int, value):
    """(m, the edge on) when instance m is sstore(S, value) and pure statements and jumps on with base."""
    st = _stores(fn, m)
    if len(st) != 1 or st[0].op != "SSTORE" or tree(st[0].args[0]) != tree.slot or tree(st[0].args[1]) != value or \
            fn.graph.edges[m].plain_jump is None or \
            any(t.op not in PURE and t.op not in _SOURCES and not _CAST.fullmatch(t.op) and t is not st[0]
                for t in live_statements(fn, m)):
        return None
    t, via = onto(fn, m, fn.graph.edges[m].plain_jump, tree.passed)
    return (via, t) if _arg_is(values, tree, (via, t), _BASE) else None


def _arg_is(values: Values, tree: _Tree, edge: tuple[int, int], leaf) -> bool:
    """The edge passes one value, `leaf` (the clearing's start)."""
    args = values.edge_args(*edge)
    return len(args) == 1 and tree(args[0]) == leaf


def _clear_loop(fn: FunctionIR, values: Values, tree: _Tree, edges: list[tuple[int, int]], bounds: list,
                shared_end: bool = False):
    """(END, the loop's instances) when every edge enters the clearing loop CLR(k) (through one join that passes
    its parameter on and computes only pure values, or directly): `if bound > k goto Z else END`, Z: sstore(k, 0)
    (unoptimized 0.8.13+: sstore(k, sload(k) & 0)), on with k + 1. With `shared_end` END may be entered from
    elsewhere too (0.8.13+ clears before it writes, and only when the old value was long)."""
    targets = {t for _, t in edges}
    if len(targets) != 1:
        return None
    c, region = targets.pop(), set()
    if all(t.op in PURE for t in live_statements(fn, c)) and fn.graph.edges[c].plain_jump is not None and \
            len(values.params(c)) == 1 and \
            set(live_preds(fn, c)) == {m for m, _ in edges}:
        nxt, via = onto(fn, c, fn.graph.edges[c].plain_jump, tree.passed)
        while nxt in fn.single and not values.params(nxt) and fn.graph.edges[nxt].plain_jump is not None and \
                all(t.op in PURE for t in live_statements(fn, nxt)):   # the loop's bound computed on the way
            region.add(nxt)
            via, nxt = nxt, fn.graph.edges[nxt].plain_jump
        if values.edge_args(via, nxt) != values.params(c):
            return None
        region.add(c)
        edges, c = [(via, nxt)], nxt
    params = values.params(c)
    ec = fn.graph.edges[c]
    if len(params) != 1 or ec.kind != "jumpi" or c in fn.decided or len(ec.trues) != 1 or ec.false is None:
        return None
    k = params[0]
    tree.leaves[k] = _K
    z, end = ec.trues[0], ec.false
    cond = tree(values.condition(c))
    if not any(cond in (norm("GT", bound, _K), norm("LT", _K, bound)) for bound in bounds):
        return None
    zs = line(fn, z) if z in fn.single else [z]
    stmts = [t for m in zs for t in live_statements(fn, m)]
    st = [t for t in stmts if t.dest is None]
    z = zs[-1]
    if len(st) != 1 or st[0].op != "SSTORE" or tree(st[0].args[0]) != _K or not _zero(tree, st[0].args[1]) or \
            fn.graph.edges[z].plain_jump != c or \
            any(t.op not in PURE and not (t.op == "SLOAD" and tree(t.args[0]) == _K) for t in stmts if t is not st[0]):
        return None
    if tree(values.edge_args(z, c)[0]) != norm("ADD", _K, 1) or not all(t.op in PURE for t in live_statements(fn, c)):
        return None
    if sorted(live_preds(fn, c)) != sorted({m for m, _ in edges} | {z}) or values.params(end) or \
            (end not in fn.single and not shared_end):
        return None
    return end, region | {c} | set(zs)


def _zero(tree: _Tree, v: Operand) -> bool:
    """v is 0: a constant, or a word and'ed with 0 (unoptimized 0.8.13+ clears a word as sload(k) & ~(2**256 - 1))."""
    if tree(v) == 0:
        return True
    s = tree.defs.get(v)
    return s is not None and s.op == "AND" and 0 in (tree.consts(s.args[0]), tree.consts(s.args[1]))


RET = "ret"   # where a write that ends its internal function's unit goes on (_stores_then): the unit returns
# 0.8.13+'s values (module docstring): the short form's word, the last data word's mask, the long form's word
_V, _D, _O, _E = ("v",), ("d",), ("o",), ("e",)
_ABOVE = norm("AND", _N, M - 32)   # the bytes the long form's loop copies whole: n & ~31


def _kept(bits):
    """x & ~(~0 >> bits): the first bits / 8 bytes of x (solc's mask_bytes_dynamic)."""
    return norm("NOT", norm("SHR", bits, M - 1))


_SHORT_WORD = norm("OR", norm("AND", _V, _kept(norm("MUL", _N, 8))), norm("MUL", _N, 2))


def _word_at(tree: _Tree):
    """The long form's data word at offset o, as the copy loop reads it: mload(src + o) from o = 32 for a string in
    memory, calldataload(src + 32 + o) from o = 0 for a calldata argument (src: its length's offset)."""
    return _word_pattern(tree.source)


def _last_words(tree: _Tree) -> frozenset:
    """The last data word with its bytes past n zeroed, in the two ways the compilers write the mask."""
    return _last_word_patterns(tree.source)


@cache   # two sources, MLOAD and CALLDATALOAD: the patterns are built once each, not per candidate write
def _word_pattern(source: str):
    return norm("MLOAD", norm("ADD", _SRC, _O) if source == "MLOAD" else norm("ADD", _SRC, 32, _O))


@cache
def _last_word_patterns(source: str) -> frozenset:
    return frozenset(norm("AND", _word_pattern(source), _kept(bits))
                     for bits in (norm("MUL", norm("AND", _N, 31), 8), norm("AND", norm("MUL", _N, 8), 248)))


def _masked(fn: FunctionIR, values: Values, tree: _Tree, y: int):
    """(END, the region's instances from y on) when instance y starts solc 0.8.13+'s write (module docstring) after
    the old length's check; else None."""
    ys, y, _ = _step(fn, y, set())
    sides = two_way(fn, y) if ys is not None else None
    if sides is None or tree(values.condition(y)) not in (norm("LT", 31, _OLD), norm("GT", _OLD, 31)):
        return None
    w, _ = onto(fn, y, sides[1], tree.passed)
    ws = _new_length(fn, values, tree, w)
    if ws is None:
        return None
    got = _clean_start(fn, values, tree, sides[0])
    if got is None:
        return None
    cs, edges = got
    bounds = [norm("ADD", _BASE, norm("DIV", norm("ADD", _OLD, 31), 32))]
    got = _clear_loop(fn, values, tree, edges, bounds, shared_end=True)
    if got is None:
        return None
    out, region = got[0], set(ys) | cs | got[1] | set(ws)
    while out != w and out in fn.single and fn.graph.edges[out].plain_jump is not None and not values.params(out) \
            and all(t.op in PURE for t in live_statements(fn, out)):   # the clearing's helpers returning
        region.add(out)
        out = fn.graph.edges[out].plain_jump
    if out != w:
        return None
    got = _write(fn, values, tree, ws[-1])
    if got is None:
        return None
    end, more = got
    return end, region | more


def _step(fn: FunctionIR, m: int, allowed: set[str]):
    """(the instances of m's line (rewrite.line), the last one, their statements) when every statement is pure or
    of an `allowed` operation; else (None, m, [])."""
    ms = line(fn, m)
    stmts = [t for k in ms for t in live_statements(fn, k)]
    if any(k in fn.decided for k in ms) or any(t.op not in PURE and t.op not in allowed for t in stmts):
        return None, m, []
    return ms, ms[-1], stmts


def _name_base(fn: FunctionIR, tree: _Tree, ms: list[int], stmts: list[Stmt]) -> bool:
    """The one `array(S)` among a line's statements names the leaf base; False when there is no such one."""
    arrays = [t for t in stmts if t.op == "array"]
    if len(arrays) != 1 or tree(arrays[0].args[0]) != tree.slot:
        return False
    tree.leaves[next(("t", k, arrays[0].dest) for k in ms if arrays[0] in fn.body[k])] = _BASE
    return True


def _new_length(fn: FunctionIR, values: Values, tree: _Tree, w: int) -> list[int] | None:
    """W's instances when instance w's line branches on (31 < n) == 1 (or 31 < n), n = mload(src): the leaves n and
    src named."""
    ws, w, _ = _step(fn, w, set())
    if ws is None or fn.graph.edges[w].kind != "jumpi":
        return None
    c = tree.defs.get(values.condition(w))
    if c is not None and c.op == "EQ" and 1 in (tree.consts(c.args[0]), tree.consts(c.args[1])):
        c = tree.defs.get(c.args[1] if tree.consts(c.args[0]) == 1 else c.args[0])
    if c is None or c.op not in ("LT", "GT"):
        return None
    n, k = (c.args[0], c.args[1]) if c.op == "GT" else (c.args[1], c.args[0])
    ns = tree.defs.get(n)
    if not tree.from_source(ns) or tree.consts(k) != 31:
        return None
    tree.leaves[ns.args[0]], tree.leaves[n] = _SRC, _N
    return ws


def _clean_start(fn: FunctionIR, values: Values, tree: _Tree, m: int):
    """(the instances, [the two edges into the clearing]) when instance m's line computes base = array(S) and starts
    the clearing at base when n < 32, else at base + ceil(n / 32); else None."""
    ms, m, stmts = _step(fn, m, {"array"})
    sides = two_way(fn, m) if ms is not None and _name_base(fn, tree, ms, stmts) else None
    if sides is None or tree(values.condition(m)) not in (norm("LT", _N, 32), norm("GT", 32, _N)):
        return None
    short, long_ = onto(fn, m, sides[0], tree.passed), onto(fn, m, sides[1], tree.passed)
    if short[0] != long_[0] or not _arg_is(values, tree, (short[1], short[0]), _BASE) or \
            not _arg_is(values, tree, (long_[1], long_[0]), norm("ADD", _BASE, norm("DIV", norm("ADD", _N, 31), 32))):
        return None
    return set(ms), [(short[1], short[0]), (long_[1], long_[0])]


def _write(fn: FunctionIR, values: Values, tree: _Tree, w: int):
    """(END, the instances) when branch w's sides write the new value: the short form's word (0 for an empty
    value), or the whole data words, the last one masked, and the long form's word; else None."""
    ew = two_way(fn, w)
    if ew is None:
        return None
    # SHORT: if n goto VALUE else WORD(0)   VALUE: goto WORD(mload(src + 32))   WORD(v): sstore(S, short word)
    ss, short, _ = _step(fn, onto(fn, w, ew[1], tree.passed)[0], set())
    es = two_way(fn, short) if ss is not None else None
    if es is None or tree(values.condition(short)) != _N:
        return None
    word, via0 = onto(fn, short, es[1], tree.passed)
    vs, value, _ = _step(fn, es[0], set(_SOURCES))
    if vs is None or fn.graph.edges[value].plain_jump is None:
        return None
    word1, via1 = onto(fn, value, fn.graph.edges[value].plain_jump, tree.passed)
    if word1 != word or not _arg_is(values, tree, (via0, word), 0) or \
            not _arg_is(values, tree, (via1, word), norm("MLOAD", _DATA)) or \
            sorted(live_preds(fn, word)) != sorted({via0, via1}):
        return None
    tree.leaves[values.params(word)[0]] = _V
    got = _stores_then(fn, values, tree, word, [(tree.slot, _SHORT_WORD)])
    if got is None:
        return None
    end, words = got
    region = set(ss) | set(vs) | words
    # LONG: goto L(0, base, 32)   L(i, d, o): if i < n & ~31 goto BODY else TAIL
    ls, long_, stmts = _step(fn, ew[0], {"array"})
    if ls is None or fn.graph.edges[long_].plain_jump is None or not _name_base(fn, tree, ls, stmts):
        return None
    head, via = onto(fn, long_, fn.graph.edges[long_].plain_jump, tree.passed)
    if not _name_counters(fn, values, tree, head, via):
        return None
    eh = two_way(fn, head)
    if eh is None or any(t.op not in PURE for t in live_statements(fn, head)):
        return None
    got = _stores_then(fn, values, tree, eh[0], [(_D, _word_at(tree))], head)
    if got is None:
        return None
    body, back = got[1], line(fn, eh[0])[-1]   # the loop's instances, the one that jumps back to L
    step = {tree.leaves[p]: tree(a) for p, a in zip(values.params(head), values.edge_args(back, head))}
    if step != {_I: norm("ADD", _I, 32), _D: norm("ADD", _D, 1), _O: norm("ADD", _O, 32)} or \
            sorted(live_preds(fn, head)) != sorted([via, back]):
        return None
    # TAIL: if n & ~31 < n goto LAST else LENGTH   LAST: sstore(d, the last word masked)   LENGTH: sstore(S, 2n + 1)
    ts, tail, _ = _step(fn, onto(fn, head, eh[1], tree.passed)[0], set())
    et = two_way(fn, tail) if ts is not None else None
    if et is None or tree(values.condition(tail)) not in (norm("LT", _ABOVE, _N), norm("GT", _N, _ABOVE)):
        return None
    length, via0 = onto(fn, tail, et[1], tree.passed)
    got = _stores_then(fn, values, tree, et[0], [(_D, _last_words(tree))])
    if got is None:
        return None
    length1, last = got
    got = _stores_then(fn, values, tree, length, [(tree.slot, norm("ADD", norm("MUL", _N, 2), 1))])
    if length1 != length or got is None or got[0] != end or \
            sorted(live_preds(fn, length)) != sorted({via0, line(fn, et[0])[-1]}):
        return None
    return end, region | set(ls) | {head} | body | set(ts) | last | got[1]


def _name_counters(fn: FunctionIR, values: Values, tree: _Tree, head: int, via: int) -> bool:
    """Name the copy loop L(i, d, o)'s parameters i, d, o from what the edge `via` enters it with: 0, base and the
    first word's offset (32 from a memory string, 0 from calldata: _word_at), when its condition is i < n & ~31.
    From calldata i and o both start at 0: i is the one the condition tests."""
    params = values.params(head)
    init = [tree(a) for a in values.edge_args(via, head)]
    first = 32 if tree.source == "MLOAD" else 0
    if len(params) != 3 or sorted(map(repr, init)) != sorted(map(repr, [0, _BASE, first])):
        return False
    d = params[init.index(_BASE)]
    starts = [p for p in params if p != d]
    for i, o in (starts, starts[::-1]):
        if init[params.index(i)] != 0 or init[params.index(o)] != first:
            continue
        tree.leaves[i], tree.leaves[d], tree.leaves[o] = _I, _D, _O
        if tree(values.condition(head)) in (norm("LT", _I, _ABOVE), norm("GT", _ABOVE, _I)):
            return True
    for p in params:
        tree.leaves.pop(p, None)
    return False


def _stores_then(fn: FunctionIR, values: Values, tree: _Tree, m: int, stores: list, to: int | None = None):
    """(where instance m's line goes on, its instances) when its statements are these stores ((slot tree, value tree
    or a set of them), in order), pure ones and memory reads, and it ends with a plain jump (through empty instances,
    passing nothing; to `to` when given); else None."""
    ms, m, stmts = _step(fn, m, {*_SOURCES, "SSTORE"})
    st = [t for t in stmts if t.op == "SSTORE"]
    if ms is None or len(st) != len(stores) or \
            (fn.graph.edges[m].plain_jump is None and fn.graph.edges[m].kind != "ret") or \
            any(tree(t.args[0]) != a or tree(t.args[1]) not in (v if isinstance(v, (set, frozenset)) else {v})
                for t, (a, v) in zip(st, stores)):
        return None
    if to is not None:
        return (to, set(ms)) if fn.graph.edges[m].plain_jump == to else None
    if fn.graph.edges[m].kind == "ret" and not max(fn.graph.returns, default=0):   # a unit's return, no results
        return RET, set(ms)
    nxt, via = onto(fn, m, fn.graph.edges[m].plain_jump, tree.passed)
    return None if values.edge_args(via, nxt) else (nxt, set(ms))