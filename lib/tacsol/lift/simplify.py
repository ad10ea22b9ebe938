"""Passes that shrink a function's statements without changing what they compute: constant folding with algebraic
identities, and dead-code removal."""
from __future__ import annotations

from collections import Counter
from itertools import chain

from .ir import CHECKED_OPS, FunctionIR, Operand, Stmt
from .values import Values

M = 1 << 256
FOLDABLE = {"ADD", "SUB", "MUL", "DIV", "MOD", "EXP", "LT", "GT", "EQ", "ISZERO", "AND", "OR", "XOR", "SHL", "SHR",
            "BYTE"}
IMPURE_VALUE = {"CALL", "CALLCODE", "DELEGATECALL", "STATICCALL", "CREATE", "CREATE2",
                "call_abi", "staticcall_abi", "delegatecall_abi",
                "mapping", "array", "icall",   # level 2: slot constructs write the scratch words; calls do anything
                *CHECKED_OPS,                  # level 3: checked arithmetic may panic
                "memory", "memory_words", "returndata_bytes",   # level 3: an argument / return data copied
                "error_message", "error_message_checked",   # level 3: a catch clause's reason decoded to memory
                "error_message_legacy",
                "abi_encode"}   # level 3: it allocates, read or not (0.5's ecrecover reads below the pointer)
_BINARY = {"ADD": lambda a, b: (a + b) % M, "SUB": lambda a, b: (a - b) % M, "MUL": lambda a, b: (a * b) % M,
           "DIV": lambda a, b: a // b if b else 0, "MOD": lambda a, b: a % b if b else 0,
           "EXP": lambda a, b: pow(a, b, M) if b < 512 else None, "LT": lambda a, b: int(a < b),
           "GT": lambda a, b: int(a > b), "EQ": lambda a, b: int(a == b), "AND": lambda a, b: a & b,
           "OR": lambda a, b: a | b, "XOR": lambda a, b: a ^ b,
           "SHL": lambda a, b: (b << a) % M if a < 256 else 0, "SHR": lambda a, b: b >> a if a < 256 else 0,
           "BYTE": lambda a, b: (b >> (8 * (31 - a))) & 0xFF if a < 32 else 0}


def fold(name: str, a: list[int]) -> int | None:
    """Value of a pure op on constants (Yellow-Paper order: a[0] was the top of the stack)."""
    if name == "ISZERO":
        return int(a[0] == 0)
    f = _BINARY.get(name)
    return f(a[0], a[1]) if f is not None else None


def identity(name: str, a: list[Operand]) -> Operand | None:
    """The operand an op returns unchanged (x + 0 = x, x * 1 = x, ...), or None."""
    zero, one = ("c", 0), ("c", 1)
    if name in ("ADD", "OR", "XOR"):
        if a[0] == zero:
            return a[1]
        if a[1] == zero:
            return a[0]
    elif name == "MUL":
        if a[0] == one:
            return a[1]
        if a[1] == one:
            return a[0]
    elif name in ("SUB", "DIV") and a[1] == (one if name == "DIV" else zero):
        return a[0]
    elif name in ("SHL", "SHR", "SAR") and a[0] == zero:
        return a[1]
    return None


def compact(v: int) -> bool:
    """Constants cheap to print: below 2**64, all-ones masks (2**k - 1) and their complements (~0x1f)."""
    return v < 1 << 64 or (v & (v + 1)) == 0 or (((M - 1) ^ v) & (((M - 1) ^ v) + 1)) == 0


def _offset_of(add_args, x) -> int | None:
    """c when add_args is [c, x] or [x, c] (an ADD of constant c to x), else None."""
    if add_args is None:
        return None
    a, b = add_args
    if b == x and a[0] == "c":
        return a[1]
    if a == x and b[0] == "c":
        return b[1]
    return None


def _sub_of_offsets(r: list[Operand], adds: dict) -> list[Operand]:
    """(c + x) - x = c, (c1 + x) - (c2 + x) = c1 - c2: SUB operands rewritten to constants where they apply."""
    c1 = _offset_of(adds.get(r[0]), r[1])
    if c1 is not None:
        return [("c", c1), ("c", 0)]
    if r[0] in adds and r[1] in adds:
        a, b = adds[r[0]], adds[r[1]]
        for xa in a:
            if xa[0] != "c" and xa in b:
                ca, cb = _offset_of(a, xa), _offset_of(b, xa)
                if ca is not None and cb is not None:
                    return [("c", ca), ("c", cb)]
                break
    return r


class _Folder:
    """Constant folding state: `values.folded` maps a temp to its replacement; `big` holds constant results too long
    to print (1 << 0xa0), kept as lines but usable for folding; `adds` the operands of each ADD (for SUB).

    A pass folds a statement from what its operands resolve to when it is visited, so another pass can fold more
    only where an operand a statement left unfolded read gets an entry in one of the three tables later: `read`
    holds those operands (this pass), `stale` says whether that happened."""

    def __init__(self, values: Values):
        self.values = values
        self.big: dict[Operand, int] = {}
        self.adds: dict[Operand, list[Operand]] = {}
        self.read: set[Operand] = set()
        self.stale = False

    def new_pass(self) -> None:
        self.read.clear()
        self.stale = False

    def _enter(self, table: dict, key: Operand, value) -> None:
        if key in self.read:
            self.stale = True
        table[key] = value

    def stmt(self, n: int, s: Stmt) -> bool:
        """Fold one statement; True when it was replaced."""
        if s.op not in FOLDABLE or s.dest is None:   # (tested first: most statements, no key to build)
            return False
        folded, key = self.values.folded, ("t", n, s.dest)
        if key in folded or key in self.big:
            return False
        resolved = [self.values.resolve(n, a) for a in s.args]
        r = [("c", self.big[x]) if x in self.big else x for x in resolved]
        if s.op == "ADD":
            self._enter(self.adds, key, r)
        elif s.op == "SUB" and r[0] != r[1]:
            r = _sub_of_offsets(r, self.adds)
        same = identity(s.op, r)
        if same is not None:   # x + 0, x - 0, x * 1, x | 0, x ^ 0, x << 0, ... are x
            if same[0] == "c" and not compact(same[1]):
                self._enter(self.big, key, same[1])
            else:
                self._enter(folded, key, same)
            return True
        if all(x[0] == "c" for x in r):
            v = fold(s.op, [x[1] for x in r])
            if v is not None:
                if compact(v):
                    self._enter(folded, key, ("c", v))
                else:
                    self._enter(self.big, key, v)
                return True
        self.read.update(resolved)
        return False


def fold_constants(fn: FunctionIR, values: Values) -> None:
    """Fold pure operations on constants when the result stays short (0x4 + 0x20 -> 0x24); long results such as
    selector << 0xe0 stay as written because the long hex would cost more tokens than the line."""
    folder = _Folder(values)
    changed, passes = True, 0
    while changed and passes < 3:   # ids are in discovery order, so one pass settles almost everything
        changed, passes = False, passes + 1
        folder.new_pass()
        for n in fn.ids:
            for s in fn.syms[n].stmts:
                changed |= folder.stmt(n, s)
        changed = changed and folder.stale   # else the next pass would fold nothing (_Folder): it is not run


def resolve_bodies(fn: FunctionIR, values: Values) -> None:
    fn.body = [[Stmt(s.dest, s.op, [values.resolve(n, a) for a in s.args], s.ndest, s.pcs)
                for s in fn.syms[n].stmts] for n in fn.ids]


def _count(used: dict, delta: int, ops) -> None:
    for o in ops:
        if o[0] in ("t", "p"):
            used[o] = used.get(o, 0) + delta


def value_uses(fn: FunctionIR, values: Values) -> dict[Operand, int]:
    """How often each value is used: by statements, jump conditions, printed jump targets and edge arguments."""
    kept = [n for n in fn.ids if n not in fn.removed]
    jumps: list[Operand] = []   # what the jumps read
    all_edges, decided = fn.graph.edges, fn.decided
    for n in kept:
        term, edges = fn.syms[n].term, all_edges[n]
        if term.kind == "jumpi" and n not in decided:
            jumps.append(values.condition(n))
        if term.kind in ("jump", "jumpi") and len(edges.trues) > 1:
            jumps.append(values.resolve(n, term.target))
        for t in edges.succ:
            jumps.extend(values.edge_args(n, t))
        if edges.kind == "ret":
            jumps.extend(values.results(n))
    # every operand counted in C (Counter), then the values kept: a Python loop per operand was most of the time of
    # a level-3 lift's dead-code passes
    counts = Counter(chain(chain.from_iterable(s.args for n in kept for s in fn.body[n]), jumps))
    return {o: k for o, k in counts.items() if o[0] in ("t", "p")}


def eliminate_dead(fn: FunctionIR, values: Values) -> dict[Operand, int]:
    """Drop pure values nobody uses (stack plumbing, unused loads), then what only they used; the uses left."""
    used = value_uses(fn, values)
    folded, removed, body = values.folded, fn.removed, fn.body
    fn.live = [[True] * len(body[n]) for n in fn.ids]
    where = {("t", n, s.dest): (n, k) for n in fn.ids if n not in removed
             for k, s in enumerate(body[n]) if s.dest is not None}
    work = [k for k in where if not used.get(k) or k in folded]
    while work:
        key = work.pop()
        n, k = where[key]
        s = fn.body[n][k]
        if not fn.live[n][k] or s.op in IMPURE_VALUE or (used.get(key) and key not in folded):
            continue
        fn.live[n][k] = False
        _count(used, -1, s.args)
        work.extend(a for a in s.args if a in where and not used.get(a))
    return used
