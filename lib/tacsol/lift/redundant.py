"""Level 3: branches whose outcome is known. A condition that is a constant (`require(1) else panic(0x21)`, `if 0 goto
b6 else b4`, `require(!slt(32, 32))`: unoptimized code's checks of values the compiler knew) settles its branch,
in code that reads no immutable variable (one reads as zero before deployment).
A check that the branch just before it already decided goes too. A loop over an array tests `i < a.length` and
its body reads `a[i]`, which solc guards again with the same comparison (`panic(0x32)`, legacy `invalid`):

    b2(v5):                              b4(v19):
      v6 = v5 < v2                         if v19 < mload(v4) goto b5 else b1
      if v6 goto b3 else b2_exit         b5:
    b3:                                    require(v19 < mload(v4)) else invalid
      require(v6) else panic(0x32)

When the check's instance is reached only through single-predecessor instances (other checks' passing sides
included) from the branch's side that made its condition true (or false), and the check fails on the other truth of
the same condition, the check cannot fail: it goes, and its instructions map to the branch's line. "The same
condition": the same value, or the same operations on the same values where memory and storage reads (`mload(v4)`)
are the same because nothing on the way writes memory or storage (the walk's instances hold only pure statements and
reads). Exact."""
from __future__ import annotations

from ..evm import may_read_immutables
from .abi import negated
from .cse import COMMUTATIVE
from .inline import is_pure
from .ir import FunctionIR, Operand, Stmt
from .layout import failing_path
from .rewrite import Constants, branches, decide, definitions
from .simplify import M
from .values import Values

MAX_HOPS = 8          # single-predecessor instances walked back from a check
_READS = ("MLOAD", "SLOAD")
_DEPTH = 4


def settle_constant_branches(fn: FunctionIR, values: Values, code: bytes) -> int:
    """Each conditional jump whose condition is a constant becomes a plain jump to the side it always takes, unless
    the contract's `code` may read an immutable variable (evm.may_read_immutables: deployedBytecode holds it as zero
    until deployment, and the branch it hides is code the source has); callers prune. Returns how many."""
    if may_read_immutables(code):
        return 0
    defs, const, settled = None, None, 0
    for n, yes, no in branches(fn):
        if defs is None:
            defs = definitions(fn)
            const = Constants(defs)
        v = _constant(defs, const, values.condition(n))
        if v is not None:
            decide(fn, n, yes if v else no)
            settled += 1
    return settled


def _constant(defs: dict[Operand, Stmt], const: Constants, c: Operand) -> int | None:
    """c's value when it is a constant (through iszero and signed comparisons of constants too)."""
    base, negative = negated(c, defs)
    v = const(base)
    s = defs.get(base)
    if v is None and s is not None and s.op in ("SLT", "SGT"):
        a, b = (_signed(const(x)) for x in s.args)
        if a is not None and b is not None:
            v = int(a < b) if s.op == "SLT" else int(a > b)
    return None if v is None else int(bool(v) != negative)


def _signed(v: int | None) -> int | None:
    return None if v is None else v - M if v >> 255 else v


def settle_known_checks(fn: FunctionIR, values: Values) -> int:
    """Settle each check (a conditional jump one side of which only fails, layout.failing_path) whose condition a
    branch before it decided; callers prune. Returns how many."""
    defs = None
    settled = 0
    for n, yes, no in branches(fn):
        for fails_on_true, fail, cont in ((True, yes, no), (False, no, yes)):
            if fail == cont or failing_path(fn, fail) is None:
                continue
            defs = defs if defs is not None else definitions(fn)
            decider = _decided_by(fn, values, defs, n, values.condition(n))
            if decider is not None and decider[1] != fails_on_true:
                p = decider[0]
                pcs = fn.jump_pcs.get(p, ())
                fn.jump_pcs[p] = tuple(sorted({*pcs, *([fn.syms[n].last_pc] if fn.syms[n].last_pc is not None
                                                       else [])}))
                decide(fn, n, cont)
                settled += 1
            break
    return settled


def _decided_by(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], n: int, c: Operand
                ) -> tuple[int, bool] | None:
    """(the branch instance, the truth it gave c) for the nearest branch that n is reached from through
    single-predecessor instances (and the passing sides of other checks) whose condition is c or its negation;
    None when there is none."""
    base, negative = negated(c, defs)
    walked = {n}   # the instances from the branch to the check: reads in them see the same memory and storage
    quiet = _quiet(fn, n)
    t = n
    for _ in range(MAX_HOPS):
        if t not in fn.single or t in fn.entries:
            return None
        p = fn.preds[t][0]
        e = fn.graph.edges[p]
        walked.add(p)
        quiet = quiet and _quiet(fn, p)
        if e.kind == "jumpi" and p not in fn.decided and len(e.trues) == 1 and e.false is not None \
                and e.trues[0] != e.false:
            pbase, pneg = negated(values.condition(p), defs)
            if _same(defs, base, pbase, walked if quiet else set(), 0):
                return p, (t == e.trues[0]) != (negative != pneg)
            if failing_path(fn, e.false if t == e.trues[0] else e.trues[0]) is None:
                return None   # a branch of another condition; past another check, the walk goes on
        elif e.plain_jump != t:
            return None
        t = p
    return None


def _quiet(fn: FunctionIR, n: int) -> bool:
    """Instance n only computes and reads (no memory or storage write, no call)."""
    return all(is_pure(s) or s.op in _READS for k, s in enumerate(fn.body[n]) if fn.live[n][k])


def _same(defs: dict[Operand, Stmt], a: Operand, b: Operand, region: set[int], depth: int) -> bool:
    """a and b hold the same value: the same operand, or the same pure operation on operands that are the same; or
    the same read (mload, sload) of the same address, both made in `region`, where nothing writes."""
    if a == b:
        return True
    sa, sb = defs.get(a), defs.get(b)
    if sa is None or sb is None or sa.op != sb.op or depth >= _DEPTH or sa.ndest != 1 or sb.ndest != 1:
        return False
    if not (is_pure(sa) or (sa.op in _READS and a[1] in region and b[1] in region)) or len(sa.args) != len(sb.args):
        return False
    if all(_same(defs, x, y, region, depth + 1) for x, y in zip(sa.args, sb.args)):
        return True
    return sa.op in COMMUTATIVE and all(_same(defs, x, y, region, depth + 1) for x, y in zip(sa.args, sb.args[::-1]))
