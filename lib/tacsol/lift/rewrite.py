"""What level-2 passes share: where each value is defined, replacing a value everywhere, settling a branch, dropping
what no longer runs, and the straight-line chains of instances that memory patterns live in."""
from __future__ import annotations

from .ir import Edges, FunctionIR, Operand, Stmt
from .simplify import FOLDABLE, M, fold
from .values import Values


def definitions(fn: FunctionIR) -> dict[Operand, Stmt]:
    """("t", n, i) → the statement that defines it, over reachable instances."""
    removed, body = fn.removed, fn.body   # (locals: a level-3 lift builds this map thousands of times)
    return {("t", n, s.dest): s for n in fn.ids if n not in removed for s in body[n] if s.dest is not None}


def fold_each(fn: FunctionIR, values: Values, candidates, match, apply) -> int:
    """Try match(fn, values, defs, n) on each candidate instance n still in the function and apply(n, *hit) to each
    hit. The definitions are read once and again after each fold (read per instance, they were 6% of a level-3
    lift). Returns how many folded."""
    folded, defs = 0, definitions(fn)
    for n in candidates:
        if n in fn.removed:
            continue
        got = match(fn, values, defs, n)
        if got is not None:
            apply(n, *got)
            defs = definitions(fn)
            folded += 1
    return folded


class Constants:
    """Constant values of operands, through statements of constants that stayed as lines because their value is
    long to print (0x461bcd << 0xe5, ~0x1f)."""

    def __init__(self, defs: dict[Operand, Stmt]):
        self.defs = defs
        self.memo: dict[Operand, int | None] = {}

    def __call__(self, o: Operand, depth: int = 0) -> int | None:
        if o[0] == "c":
            return o[1]
        if o[0] != "t" or depth > 16:
            return None
        if o not in self.memo:
            s = self.defs.get(o)
            v = None
            if s is not None and (s.op in FOLDABLE or s.op == "NOT"):
                a = [self(x, depth + 1) for x in s.args]
                v = None if None in a else (M - 1) ^ a[0] if s.op == "NOT" else fold(s.op, a)
            self.memo[o] = v
        return self.memo[o]


def linear(defs: dict[Operand, Stmt], o: Operand, depth: int = 0) -> tuple[tuple, int]:
    """o as its terms (sorted) plus a constant, through additions a few levels deep."""
    if o[0] == "c":
        return (), o[1]
    s = defs.get(o)
    if s is None or s.op != "ADD" or depth > 3:
        return (o,), 0
    (ta, ca), (tb, cb) = (linear(defs, a, depth + 1) for a in s.args)
    return tuple(sorted(ta + tb)), (ca + cb) % M


def linear_minus(defs: dict[Operand, Stmt], a: Operand, b: Operand) -> tuple[list[Operand], int] | None:
    """(a's terms less b's, a's constant less b's) when every term of b is among a's (linear); else None."""
    (ta, ca), (tb, cb) = linear(defs, a), linear(defs, b)
    rest = list(ta)
    for t in tb:
        if t not in rest:
            return None
        rest.remove(t)
    return rest, (ca - cb) % M


def chain_pcs(o: Operand, defs: dict[Operand, Stmt], ops, out: set[int], depth: int = 0) -> set[int]:
    """Add to `out` the pcs of the statements computing o, as far as they are ops in `ops` (the part of a condition
    a pass folds away: the negations of a branch, a call check's comparison and calldatasize arithmetic)."""
    s = defs.get(o)
    if s is not None and s.op in ops and depth <= 16:
        out.update(s.pcs)
        for a in s.args:
            chain_pcs(a, defs, ops, out, depth + 1)
    return out


def chase(values: Values, o: Operand) -> Operand:
    while o in values.folded:
        o = values.folded[o]
    return o


def replace(values: Values, old: Operand, new: Operand, walks: bool = True) -> None:
    """Every use of `old` (statements, conditions, jump arguments) reads `new`: callers then run `reread`.
    `walks=False`: the caller knows no memoized walk passes `old` (a parameter of a join, phis.fold_block_params)."""
    if old != new:
        values.folded[old] = new
        values.forget()
        if old[0] == "p" and walks:   # walks through single-predecessor chains stop at a folded parameter now
            values.walks_changed()


def reread(fn: FunctionIR, values: Values) -> None:
    """Statement operands after `replace`: conditions and jump arguments resolve through Values when printed."""
    folded = values.folded.keys()
    for n in fn.ids:
        for s in fn.body[n]:
            if not folded.isdisjoint(s.args):   # (in C: this scan is most of a pass's reread)
                s.args = [chase(values, a) for a in s.args]


def decide(fn: FunctionIR, n: int, taken: int) -> None:
    """A conditional jump whose condition is known: it becomes a plain jump to `taken`."""
    fn.graph.edges[n] = Edges("jump", [taken])
    fn.decided.add(n)


def two_way(fn: FunctionIR, n: int) -> tuple[int, int] | None:
    """(true successor, false successor) when instance n is a two-way branch not yet settled, else None."""
    e = fn.graph.edges[n]
    if n not in fn.removed and n not in fn.decided and e.kind == "jumpi" and len(e.trues) == 1 \
            and e.false is not None:
        return e.trues[0], e.false
    return None


def branches(fn: FunctionIR):
    """(instance, true successor, false successor) of every two-way branch not yet settled."""
    for n in fn.ids:
        sides = two_way(fn, n)
        if sides is not None:
            yield n, *sides


def reachable(fn: FunctionIR) -> set[int]:
    """The instances an entry reaches by the graph's edges now."""
    seen = set(fn.entries)
    work = list(fn.entries)
    while work:
        for t in fn.graph.edges[work.pop()].succ:
            if t not in seen:
                seen.add(t)
                work.append(t)
    return seen


def prune(fn: FunctionIR) -> None:
    """Instances no entry reaches any more (the other side of a settled branch) are removed."""
    fn.removed = set(fn.ids) - reachable(fn)


def live_statements(fn: FunctionIR, n: int) -> list[Stmt]:
    """Instance n's statements that dead-code elimination kept."""
    return [s for k, s in enumerate(fn.body[n]) if fn.live[n][k]]


def onto(fn: FunctionIR, n: int, t: int, passed: list[int]) -> tuple[int, int]:
    """(where the edge n -> t leads through empty instances entered from one place that only jump on, the instance
    entering it); the empty instances are added to `passed`."""
    seen = {n}
    while t not in seen and t in fn.single and not any(fn.live[t]) and fn.graph.edges[t].plain_jump is not None:
        seen.add(t)
        if t not in passed:
            passed.append(t)
        n, t = t, fn.graph.edges[t].plain_jump
    return t, n


def live_preds(fn: FunctionIR, t: int) -> list[int]:
    return [n for n in fn.preds[t] if n not in fn.removed and t in fn.graph.edges[n].succ]


def chain_next(fn: FunctionIR, n: int) -> int | None:
    """The instance that n flows straight into (a plain jump to an instance with no other predecessor)."""
    t = fn.graph.edges[n].plain_jump
    return t if t is not None and t != n and t in fn.single and t not in fn.entries else None


def line(fn: FunctionIR, n: int) -> list[int]:
    """n and the instances it flows straight into, in order."""
    out, seen = [], set()
    t: int | None = n
    while t is not None and t not in seen:
        out.append(t)
        seen.add(t)
        t = chain_next(fn, t)
    return out


def chains(fn: FunctionIR) -> list[list[int]]:
    """Maximal straight lines of instances (each entered only from the one before): code that runs in sequence."""
    inner = {t for n in fn.ids if n not in fn.removed for t in [chain_next(fn, n)] if t is not None}
    return [line(fn, n) for n in fn.ids if n not in fn.removed and n not in inner]
