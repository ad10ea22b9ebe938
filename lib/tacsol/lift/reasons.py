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
these, compared as canonical trees (additions flattened, constants summed, `a < b` as `b > a`)."""
from __future__ import annotations

from .cse import COMMUTATIVE, PURE
from .ir import FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, decide, fold_each, live_preds, live_statements, onto, reachable, replace, reread
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
_FREE = {"legacy": _node("ADD", S, 32, _ceil32(_N)), "checked": _Q08}
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

    return fold_each(fn, values, list(fn.ids), _match, apply)


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
    if family == "legacy":
        (_, scratch), (m0, load0), *steps = steps
        if [canon(a) for a in scratch.args] != [0, 0, 4] or canon(load0.args[0]) != 0:
            return False
        canon.leaves[m0] = _M0
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
