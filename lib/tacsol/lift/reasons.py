"""Level 3: a catch clause's decoding of an `Error(string)` reason (`catch Error(string memory reason)`) as one
statement, `v = error_message(returndata)`: solc's `try_decode_error_message`, inlined after a failed call.

solc 0.6-0.7 tests the return data's size and selector inside it; every failing test joins X with 0:

    E:  if returndatasize() < 68 goto X(0) else A
    A:  returndatacopy(0, 0, 4)
        if (mload(0) >> 224) == 0x8c379a0 goto B else X(0)
    B:  p = mload(64)
        returndatacopy(p, 4, returndatasize() - 4)
        o = mload(p)
        if (o > 2**64 - 1) | (o + 36 > returndatasize()) goto X(0) else C
    C:  s = p + o
        n = mload(s)
        if n > 2**64 - 1 goto X(0) else D
    D:  if s + 32 + n > p + returndatasize() goto X(0) else F
    F:  mstore(64, s + 32 + ceil32(n))
        goto X(s)

`v = error_message(returndata)` stands for E to F, v being what X receives. solc 0.8 tests the selector before
(`returndatasize() > 3`, the selector copied to scratch), so its region starts at the size test; the string must end
within the data after the selector (p + returndatasize() - 4), and the new free pointer, p + ceil32(o + 32 + n), is
checked (`panic(0x41)` past 2**64 - 1 or below p): `v = checked error_message(returndata)`. Either way X must be
entered from the region alone (its one parameter then is v), and nothing after the region reads its values. The
instructions may spread over more or fewer instances, in any order the data allows; the checks and stores must be
these, compared as canonical trees (additions flattened, constants summed, `a < b` as `b > a`).

solc 0.6.6 reads p (and zeroes the word there) before the call, moves the free pointer to ceil32(s + 32 + n), and
sends every failing test straight to the catch-all clause; on success s reaches the test that chooses the clause,
in the same instance or through a join X whose other ways in are never taken: `v = legacy error_message(returndata,
p)` stands for the decoding, and the test then reads v (the catch-all clause when 0, as before: s is the test's own
operand). Copies of the catch-all clause's halting code (the size test may get its own) count as one."""
from __future__ import annotations

from .cse import COMMUTATIVE, PURE
from .ir import FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, decide, fold_each, live_preds, live_statements, onto, reachable, replace, reread, \
    two_way
from .simplify import M
from .strings import Trees, _follow, _read_outside
from .values import Values

ERROR_SELECTOR = 0x08C379A0
_B64 = (1 << 64) - 1
_R, _P, _O, _N, _M0 = ("rds",), ("p",), ("o",), ("n",), ("m0",)   # leaves: returndatasize, free pointer, offset,
MAX_CHAIN = 12                                                     # length, scratch word 0


def _node(op: str, *args):
    """A canonical tree: ADD flattened with its constants summed, SUB of a constant an addition, `a < b` as
    `b > a`, commutative operands sorted."""
    if op == "SUB" and isinstance(args[1], int):
        return _node("ADD", args[0], (M - args[1]) % M)
    if op == "LT":
        return _node("GT", args[1], args[0])
    if op == "ADD":
        flat, c = [], 0
        for x in args:
            for y in (x[1:] if isinstance(x, tuple) and x and x[0] == "ADD" else [x]):
                if isinstance(y, int):
                    c = (c + y) % M
                else:
                    flat.append(y)
        args = tuple(flat) + ((c,) if c or not flat else ())
        if len(args) == 1:
            return args[0]
    if op in COMMUTATIVE:
        args = tuple(sorted(args, key=repr))
    return (op, *args)


def _ceil32(x):
    return _node("AND", _node("ADD", x, 31), M - 32)


S = _node("ADD", _P, _O)
_CHECKS = {   # family -> the failing tests, in order: (canonical test, fails when true)
    "legacy": [(_node("GT", 68, _R), True),
               (_node("EQ", _node("SHR", 224, _M0), ERROR_SELECTOR), False),
               (_node("OR", _node("GT", _O, _B64), _node("GT", _node("ADD", _O, 36), _R)), True),
               (_node("GT", _N, _B64), True),
               (_node("GT", _node("ADD", S, 32, _N), _node("ADD", _P, _R)), True)],
    "checked": [(_node("GT", 68, _R), True),
                (_node("OR", _node("GT", _O, _B64), _node("GT", _node("ADD", _O, 36), _R)), True),
                (_node("GT", _N, _B64), True),
                (_node("GT", _node("ADD", S, 32, _N), _node("ADD", _P, _R, M - 4)), True)],
}
_Q08 = _node("ADD", _P, _ceil32(_node("ADD", _O, 32, _N)))
_FREE = {"legacy": _node("ADD", S, 32, _ceil32(_N)), "checked": _Q08,
         "legacy06": _ceil32(_node("ADD", S, 32, _N))}   # solc 0.6.6: the string's end rounded up
_ALLOC_CHECK = _node("OR", _node("GT", _Q08, _B64), _node("GT", _P, _Q08))   # 0.8: panic(0x41) when true
_WRITES_AFTER = {"legacy": [1, 2, 5], "checked": [1, 5]}   # tests passed before each write (RETURNDATACOPY, MSTORE)
_STEPS = {"legacy": ["RETURNDATACOPY", "MLOAD", "MLOAD", "RETURNDATACOPY", "MLOAD", "MLOAD", "MSTORE"],
          "checked": ["MLOAD", "RETURNDATACOPY", "MLOAD", "MLOAD", "MSTORE"]}


def fold_error_messages(fn: FunctionIR, values: Values) -> int:
    """Fold each decoding of an Error(string) reason (module docstring) into `v = error_message(returndata)` (or its
    checked form) at the size test; the region's other instances are left unreachable (callers prune and drop what
    became dead). Runs on live statements. Returns how many folded."""
    if not any(s.op == "RETURNDATACOPY" for b in fn.body for s in b):
        return 0

    def apply(e: int, x: int, family: str, pcs) -> None:
        dest = fn.next_temp(e)
        fn.body[e].append(Stmt(dest, "error_message" if family == "legacy" else "error_message_checked", [], 1,
                               pcs))
        fn.live[e].append(True)
        decide(fn, e, x)   # the size test is part of the statement now
        fn.preds[x] = [e]
        replace(values, values.params(x)[0], ("t", e, dest))
        reread(fn, values)

    def apply_legacy(e: int, x: int | None, last: int, free: Stmt, p: Operand, s_: Operand | None, rebuild, pcs
                     ) -> None:
        reason = ("t", e, fn.next_temp(e))
        fn.body[e].append(Stmt(reason[2], "error_message_legacy", [p], 1, pcs))
        fn.live[e].append(True)
        for t, c, t_pcs in rebuild:   # s + c read after the region: the reason + c
            k = fn.next_temp(e)
            fn.body[e].append(Stmt(k, "ADD", [reason, ("c", c)], 1, t_pcs))
            fn.live[e].append(True)
            replace(values, t, ("t", e, k))
        if x is not None:   # X's parameter is v: its other ways in are never taken
            decide(fn, e, x)
            fn.preds[x] = [e] + [m for m in live_preds(fn, x)
                                 if m != e and m not in fn.removed and fn.graph.edges[m].kind == "jumpi"]
            replace(values, values.params(x)[0], reason)
            reread(fn, values)
            return
        for j in sorted(fn.params[last]):   # pin what `last` and its successors read from the stack: e's differs
            v = values.resolve(last, ("p", j))
            if v != ("p", last, j):
                values.folded[("p", last, j)] = v
        values.walks_changed()
        fn.live[last] = [live and t is not free for t, live in zip(fn.body[last], fn.live[last])]
        decide(fn, e, last)   # the size test is part of the statement; `last` keeps its test of the reason
        fn.preds[last] = [e]
        values.forget()
        replace(values, s_, reason)
        reread(fn, values)

    def match(fn_, values_, defs, e):
        got = _match(fn_, values_, defs, e)
        return got if got is not None else _match_legacy(fn_, values_, defs, e)

    def apply_any(e: int, *got) -> None:
        if got[0] == "legacy":
            apply_legacy(e, *got[1:])
        else:
            apply(e, *got)

    return fold_each(fn, values, list(fn.ids), match, apply_any)


class _Canon(Trees):
    """Operands as canonical trees (_node: sums flattened with their constants) over the region's leaves
    (returndatasize reads, p, o, n, the scratch word)."""
    LIMIT = 16

    def __init__(self, defs: dict[Operand, Stmt], inside: list[int]):
        super().__init__(defs)
        self.inside = inside   # the region's instances: a returndatasize read elsewhere is no leaf

    def reads(self, o: Operand, s: Stmt) -> bool:
        return s.op in PURE or (s.op == "RETURNDATASIZE" and o[1] in self.inside)

    def node(self, o: Operand, s: Stmt, args: list):
        if s.op == "RETURNDATASIZE":
            return _R
        if s.op == "ISZERO":
            return ("ISZERO", args[0])
        if s.op == "DIV" and args[1] == 1 << 224:   # 0.6's selector: mload(0) / 2**224
            return _node("SHR", 224, args[0])
        return _node(s.op, *args)


def _test(canon: _Canon, cond: Operand, fail_true: bool):
    """(canonical test, fails when true) with negations taken off; a difference (SUB, XOR) as a failing EQ."""
    t = canon(cond)
    while isinstance(t, tuple) and t[0] == "ISZERO":
        t, fail_true = t[1], not fail_true
    if isinstance(t, tuple) and t[0] in ("SUB", "XOR") and len(t) == 3:
        t, fail_true = _node("EQ", *t[1:]), not fail_true
    return t, fail_true


def _match(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], e: int):
    """(the join X, the family, the pcs folded) when instance e starts a decoding of an Error(string) reason."""
    ee = fn.graph.edges[e]
    if ee.kind != "jumpi" or e in fn.decided or len(ee.trues) != 1 or ee.false is None:
        return None
    if any(not (s.op in PURE or s.op == "RETURNDATASIZE") for s in live_statements(fn, e)):
        return None
    chain: list[int] = [e]
    canon = _Canon(defs, chain)
    first = _test(canon, values.condition(e), True)
    if first != _CHECKS["legacy"][0]:
        return None
    passed: list[int] = []   # empty instances on the way to X (they only jump on)
    x, via = onto(fn, e, ee.trues[0], passed)   # the size test fails to X(0)
    relay = None
    if not values.params(x) and not any(fn.live[x]) and fn.graph.edges[x].plain_jump is not None:
        relay = x   # the optimizer's one `0; goto X` that every failing test jumps to (its entries checked below)
        passed.append(relay)
        x, via = onto(fn, relay, fn.graph.edges[relay].plain_jump, passed)
    if x in fn.single or x in fn.entries or len(values.params(x)) != 1 or values.edge_args(via, x) != [("c", 0)]:
        return None
    tests, panics, alloc, n, end = [], set(), [], ee.false, None
    passed_tests: dict[int, int] = {}   # instance -> tests passed before it (its statements run after them)
    while end is None:
        if n in chain or n == x or n not in fn.single or len(chain) > MAX_CHAIN:
            return None
        chain.append(n)
        passed_tests[n] = 1 + len(tests) + len(alloc)
        en = fn.graph.edges[n]
        if en.kind == "jump" and en.plain_jump is not None:   # on to X, or to the next step
            if onto(fn, n, en.plain_jump, passed)[0] == x:
                end = n
            else:
                n = en.plain_jump
        elif en.kind == "jumpi" and n not in fn.decided and len(en.trues) == 1 and en.false is not None:
            t, f = en.trues[0], en.false
            ends = [onto(fn, n, m, passed) for m in (t, f)]
            fails = [m in (x, relay) for m, _ in ends]
            if any(fails):   # a failing test: X with 0 (or the relay) on one side
                k = 0 if fails[0] else 1
                if all(fails) or (ends[k][0] == x and values.edge_args(ends[k][1], x) != [("c", 0)]):
                    return None
                tests.append((values.condition(n), k == 0))
                n = (t, f)[1 - k]
            else:             # 0.8's allocation check: panic(0x41) on one side
                side = next((k for k, m in enumerate((t, f)) if _panics(fn, defs, _follow(fn, m, set()))), None)
                if side is None:
                    return None
                panics.add(_follow(fn, (t, f)[side], panics))
                alloc.append((values.condition(n), side == 0))
                n = (f, t)[side]
        else:
            return None
    steps = [(("t", m, s.dest), s, passed_tests[m]) for m in chain[1:] for s in live_statements(fn, m)
             if not (s.op in PURE or s.op == "RETURNDATASIZE")]
    family = next((f for f, ops in _STEPS.items() if [s.op for _, s, _ in steps] == ops), None)
    # the writes happen after exactly the tests the statement makes them wait for (loads may come earlier)
    if family is None or [k for _, s, k in steps if s.op != "MLOAD"] != _WRITES_AFTER[family] or \
            not _roles(canon, [step[:2] for step in steps], family):
        return None
    alloc = [_test(canon, c, fails) for c, fails in alloc]   # canonical once p, o and n are named
    checks = [_test(canon, c, fails) for c, fails in tests]
    if [first] + checks != _CHECKS[family] or alloc != ([(_ALLOC_CHECK, True)] if family == "checked" else []):
        return None
    last = onto(fn, end, fn.graph.edges[end].plain_jump, passed)[1]
    region = set(chain) | set(passed)
    if canon(values.edge_args(last, x)[0]) != S or set(live_preds(fn, x)) - region or \
            any(set(live_preds(fn, m)) - region for m in passed):
        return None
    mine = {("t", m, s.dest) for m in chain[1:] for s in fn.body[m] if s.dest is not None}
    if _read_outside(fn, values, mine, reachable(fn) - region - panics, e, live_statements(fn, e)):
        return None
    pcs = merged_pcs(*(s.pcs for m in chain for s in live_statements(fn, m)),
                     *((fn.syms[m].last_pc,) for m in chain if fn.syms[m].last_pc is not None))
    return x, family, pcs


def _roles(canon: _Canon, steps: list[tuple[Operand, Stmt]], family: str) -> bool:
    """The memory steps ((value, statement), in order) name p, o, n (and the scratch word) and do what the family
    does."""
    if family in ("legacy", "legacy06"):
        (_, scratch), (m0, load0), *steps = steps
        if [canon(a) for a in scratch.args] != [0, 0, 4] or canon(load0.args[0]) != 0:
            return False
        canon.leaves[m0] = _M0
    if family == "legacy06":   # p was read before the call: the copy's destination
        (_, copy), (o, load_o), (n, load_n), (_, store) = steps
        p = copy.args[0]
    else:
        (p, free), (_, copy), (o, load_o), (n, load_n), (_, store) = steps
        if canon(free.args[0]) != 0x40:
            return False
    canon.leaves[p] = _P
    if [canon(a) for a in copy.args] != [_P, 4, _node("ADD", _R, M - 4)] or canon(load_o.args[0]) != _P:
        return False
    canon.leaves[o] = _O
    if canon(load_n.args[0]) != S:
        return False
    canon.leaves[n] = _N
    return canon(store.args[0]) == 0x40 and canon(store.args[1]) == _FREE[family]


def _panics(fn: FunctionIR, defs: dict[Operand, Stmt], m: int) -> bool:
    """Instance m halts with panic(0x41) and nothing else."""
    halt = live_statements(fn, m)
    return fn.graph.edges[m].kind == "halt" and len(halt) == 1 and halt[0].op == "panic" \
        and Constants(defs)(halt[0].args[0]) == 0x41


_STEPS_06 = ["RETURNDATACOPY", "MLOAD", "RETURNDATACOPY", "MLOAD", "MLOAD", "MSTORE"]


def _match_legacy(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], e: int):
    """("legacy", X or None, the test's instance, its free-pointer store, p, s, the pcs folded) when instance e
    starts solc 0.6.6's decoding at a p read before the call (module docstring): every failing test straight to the
    catch-all clause F, and after the free pointer moves to ceil32(s + 32 + n), s tested (F when 0) in the same
    instance, or passed to a join X that tests it (X's other ways in never taken: a constant condition); else None.
    It folds as `v = legacy error_message(returndata, p)`, the test then reading v (0 whenever a test failed)."""
    ee = two_way(fn, e)
    if ee is None:
        return None
    chain: list[int] = [e]   # e's statements stay (p may be read there): the statement goes after them
    canon = _Canon(defs, chain)
    if _test(canon, values.condition(e), True) != _CHECKS["legacy"][0]:
        return None
    passed: list[int] = []
    f = _catch_all(fn, values, ee[0])   # the size test fails to the catch-all clause
    if f is None:
        return None
    tests, n, last, x = [], ee[1], None, None
    passed_tests: dict[int, int] = {}
    while last is None:
        if n in chain or len(chain) > MAX_CHAIN:
            return None
        if n not in fn.single:   # the join X the decoding returns s to
            if not chain or fn.graph.edges[chain[-1]].plain_jump != n or len(values.params(n)) != 1:
                return None
            x, last = n, n
            break
        chain.append(n)
        passed_tests[n] = 1 + len(tests)
        if fn.graph.edges[n].kind == "jump" and fn.graph.edges[n].plain_jump is not None:
            n = fn.graph.edges[n].plain_jump
            continue
        if len(tests) == 4:   # past the failing tests: the instance that tests s (checked below)
            last = n
            break
        en = two_way(fn, n)
        fails = [_catch_all(fn, values, m) == f for m in en] if en is not None else []
        if fails.count(True) != 1:
            return None
        tests.append((values.condition(n), fails[0]))
        n = en[fails[0]]
    el = two_way(fn, last)
    fails = [_catch_all(fn, values, m) == f for m in el] if el is not None else []
    if fails.count(True) != 1:
        return None
    steps = [(("t", m, t.dest), t, passed_tests[m]) for m in chain[1:] for t in live_statements(fn, m)
             if not (t.op in PURE or t.op == "RETURNDATASIZE")]
    if [t.op for _, t, _ in steps] != _STEPS_06 or [k for _, t, k in steps if t.op != "MLOAD"] != [1, 2, 5]:
        return None
    p, store = steps[2][1].args[0], steps[-1][1]
    if not _roles(canon, [st[:2] for st in steps], "legacy06"):
        return None
    if [_test(canon, c, fails_) for c, fails_ in tests] != _CHECKS["legacy"][1:]:
        return None
    region = set(chain) - {last} | set(passed)
    mine = {("t", m, t.dest) for m in region - {e} for t in fn.body[m] if t.dest is not None}
    if x is not None:   # X tests its parameter, which the decoding passes s to
        (param,) = values.params(x)
        arg = values.edge_args(chain[-1], x)[0]
        others = set(live_preds(fn, x)) - {chain[-1]}
        negated = _negated_chain(defs, values.condition(x))   # F must be the side X takes when v is 0
        if canon(arg) != S or param not in negated[:3] or fails[0] != (negated.index(param) % 2 == 1) or \
                any(not _never_to(fn, values, defs, m, x) for m in others) or \
                any(t.dest is not None and any(a == param for a in t.args) and t.op != "ISZERO"
                    for t in live_statements(fn, x)):
            return None
        s_ = None
    else:
        cond = values.condition(last)
        s_ = next((o for o in _negated_chain(defs, cond) if canon(o) == S), None)
        if s_ is None or _test(canon, cond, fails[0]) != (S, False) or s_ not in mine:
            return None
        mine.discard(s_)   # read after the fold as v
        region.discard(last)
    if p in mine or any(set(live_preds(fn, m)) - region for m in region - {e}):
        return None
    # what code after the region reads of it, `last`'s free-pointer store and the values only it reads apart: only
    # s plus a constant (the optimizer shares s + 32 with the clause's code), computed again from v after the fold
    feeds = _feeding(fn, last, store) if x is None else set()
    rebuild = []
    for t in _reads_of(fn, values, mine, reachable(fn) - region,
                       lambda m, u: m == last and (u is store or id(u) in feeds)):
        c = _plus_s(canon(t))
        if c is None:
            return None
        rebuild.append((t, c, defs[t].pcs))
    pcs = merged_pcs(*(t.pcs for m in region for t in live_statements(fn, m)),
                     *((fn.syms[m].last_pc,) for m in region if fn.syms[m].last_pc is not None))
    return "legacy", x, last, store, p, s_, rebuild, pcs


def _reads_of(fn: FunctionIR, values: Values, mine: set[Operand], readers: set[int], skip) -> set[Operand]:
    """The values of `mine` that instances of `readers` read (statements but those skip(instance, statement)
    names, conditions, jump arguments)."""
    out: set[Operand] = set()
    for m in readers:
        out.update(o for t in live_statements(fn, m) if not skip(m, t) for o in t.args if o in mine)
        if fn.graph.edges[m].kind == "jumpi" and m not in fn.decided and values.condition(m) in mine:
            out.add(values.condition(m))
        out.update(o for t in fn.graph.edges[m].succ for o in values.edge_args(m, t) if o in mine)
    return out


def _plus_s(tree) -> int | None:
    """c when a canonical tree is s + c (s = p + o), else None."""
    if not (isinstance(tree, tuple) and tree and tree[0] == "ADD"):
        return None
    consts = [a for a in tree[1:] if isinstance(a, int)]
    rest = sorted(repr(a) for a in tree[1:] if not isinstance(a, int))
    return consts[0] if len(consts) == 1 and rest == sorted([repr(_P), repr(_O)]) else None


def _catch_all(fn: FunctionIR, values: Values, n: int):
    """Where instance n leads through empty instances that only jump on, none of them taking parameters: for an
    instance that halts reading nothing from the stack, its statements (solc 0.6.6 may give the size test its own
    copy of the catch-all clause's code, and copies that do the same are the same), else the instance."""
    seen: set[int] = set()
    while not any(fn.live[n]) and fn.graph.edges[n].plain_jump is not None and n not in seen:
        if values.params(n):
            return None
        seen.add(n)
        n = fn.graph.edges[n].plain_jump
    if values.params(n):
        return None
    if fn.params[n] or fn.graph.edges[n].kind != "halt":
        return n
    stmts = live_statements(fn, n)
    at = {("t", n, t.dest): k for k, t in enumerate(stmts) if t.dest is not None}
    return "halt", tuple((t.op, tuple(("at", at[a]) if a in at else a for a in t.args)) for t in stmts)


def _never_to(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], m: int, x: int) -> bool:
    """Instance m's jump never goes to x: a conditional jump whose constant condition takes the other side."""
    em = fn.graph.edges[m]
    if em.kind != "jumpi" or m in fn.decided or em.false is None or len(em.trues) != 1 or em.trues[0] == em.false:
        return False
    c = Constants(defs)(values.condition(m))
    return c is not None and (em.trues[0] if c else em.false) != x


def _negated_chain(defs: dict[Operand, Stmt], o: Operand, depth: int = 4) -> list[Operand]:
    """o, then what it is the ISZERO of, and so on (`depth` operands at most)."""
    chain = [o]
    while len(chain) < depth and (d := defs.get(chain[-1])) is not None and d.op == "ISZERO":
        chain.append(d.args[0])
    return chain


def _feeding(fn: FunctionIR, n: int, store: Stmt) -> set[int]:
    """ids of instance n's pure statements whose values only the store reads (transitively)."""
    stmts = live_statements(fn, n)
    defs = {("t", n, t.dest): t for t in stmts if t.dest is not None}
    feeds, work = set(), [a for a in store.args if a in defs]
    while work:
        t = defs[work.pop()]
        if id(t) not in feeds and t.op in PURE:
            feeds.add(id(t))
            work.extend(a for a in t.args if a in defs)
    for t in stmts:   # a value read by anything else is not the store's alone
        if id(t) in feeds and any(("t", n, t.dest) in u.args for u in stmts if u is not store and id(u) not in feeds):
            feeds.discard(id(t))
    return feeds
