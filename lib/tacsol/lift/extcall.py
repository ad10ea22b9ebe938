"""Level 3: an external call with the compiler's checks around it is one statement, `checked call(...)`.

Solidity's high-level call `T(t).f(x)` (solc 0.4.22-0.7; 0.8 keeps the code check where no return data is expected)
surrounds the call with three checks:

    require(extcodesize(t))                       revert() when t has no code
    ok = call(gas(), t, v, 0xsel(x), p, n)
    require(ok) else revert(returndata)           a failed call passes its revert data on
    q = mload(64)
    require(returndatasize() >= n)                (n > 0) fewer bytes back than the return values' head: revert()

They print as one line, `checked call(t, v, 0xsel(x), p, n)` (`checked staticcall(t, 0xsel(x), p, n)`, delegatecall
alike): the call with all the gas left, its output written at p as the call writes it (the first n bytes of the
return data), and the three checks, in that order. The input is any the call takes (`0xsel(words)` or a memory range).
Exact: the statements between the checks and the call only compute or read (no write, no call, so moving the code
check past them, or the size check before them, changes nothing but which revert comes first when both would fail,
and the reads cannot fail); the call's success value is used by its check alone; each check's other side only
reverts as said (empty, or with the return data); and the size check compares with the call's own output size n,
or there is none and n is 0. A call without all of its checks (another gas, a revert message, a check that returns
false) stays as it is."""
from __future__ import annotations

from .abi import negated
from .inline import is_pure
from .ir import CHECKED_CALLS, FunctionIR, Operand, Stmt, merged_pcs
from .layout import failing_path
from .rewrite import Constants, branches, chain_pcs, decide, definitions
from .simplify import value_uses
from .values import Values

CALLS = {call: checked for checked, call in CHECKED_CALLS.items()}   # a call -> its checked construct
_QUIET = ("MLOAD", "SLOAD", "RETURNDATASIZE", "GAS")   # reads a check may move past


def fold_checked_calls(fn: FunctionIR, values: Values) -> int:
    """Fold each call and its code, success and size checks into `checked call(...)` (see the module docstring);
    callers prune. Runs on live statements (after eliminate_dead). Returns how many folded."""
    if not any(s.op in CALLS for n in fn.ids if n not in fn.removed for s in fn.body[n]):
        return 0
    defs = definitions(fn)
    const = Constants(defs)
    folded, uses = 0, [None]   # _Uses, built when first needed
    for x, _, _ in list(branches(fn)):
        folded += _fold(fn, values, defs, const, uses, x)
    return folded


def _check(fn: FunctionIR, values: Values, defs, n: int, fails_with: str) -> tuple[Operand, bool, int] | None:
    """(the condition's operand without its negations, the truth it has when the check passes, the passing side)
    when branch n is a check one side of which only fails with `fails_with`."""
    e = fn.graph.edges[n]
    if n in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 or e.false is None or e.trues[0] == e.false:
        return None
    yes, no = e.trues[0], e.false
    on_yes, on_no = _fails(fn, yes), _fails(fn, no)
    if (on_yes, on_no) == (fails_with, None):
        passes_on_true, passing = False, no
    elif (on_yes, on_no) == (None, fails_with):
        passes_on_true, passing = True, yes
    else:
        return None
    base, negative = negated(values.condition(n), defs)
    return base, passes_on_true != negative, passing


def _fails(fn: FunctionIR, t: int) -> str | None:
    path = failing_path(fn, t)
    if path is None:
        return None
    body = [s for k, s in enumerate(fn.body[path[-1]]) if fn.live[path[-1]][k]]
    return body[-1].op


def _next(fn: FunctionIR, n: int, t: int) -> bool:
    """t is entered from n alone."""
    return t in fn.single and t not in fn.entries and fn.preds[t] == [n]


def _fold(fn: FunctionIR, values: Values, defs, const: Constants, uses: list, x: int) -> bool:
    code = _check(fn, values, defs, x, "revert_empty")
    if code is None or not code[1]:
        return False
    size_of, _, y = code
    s = defs.get(size_of)
    if s is None or s.op != "EXTCODESIZE" or not _next(fn, x, y):
        return False
    body = [st for k, st in enumerate(fn.body[y]) if fn.live[y][k]]
    at = [k for k, st in enumerate(body) if st.op in CALLS]
    if len(at) != 1:
        return False
    call = body[at[0]]
    if call.dest is None or call.args[1] != s.args[0] or defs.get(call.args[0]) is None \
            or defs[call.args[0]].op != "GAS":
        return False
    if not all(is_pure(st) or st.op in _QUIET for st in body[:at[0]]):
        return False
    ok = ("t", y, call.dest)
    bubble = _check(fn, values, defs, y, "revert_returndata")
    if bubble is None or bubble[0] != ok or not bubble[1] or not _next(fn, y, bubble[2]):
        return False
    chain = _negations(defs, values.condition(y), ok)   # ok, iszero(ok), ...: used by the check alone
    after = body[at[0] + 1:]
    if chain is None or {("t", y, st.dest) for st in after} != set(chain[1:]):
        return False
    if uses[0] is None:
        uses[0] = _Uses(fn, values)
    if not uses[0].by_check_alone(chain):
        return False
    n = const(call.args[-1])
    if n is None:
        return False
    z = bubble[2]
    decisions = [(x, y), (y, z)]
    if n:
        size = _check(fn, values, defs, z, "revert_empty")
        if size is None or not _next(fn, z, size[2]):
            return False
        zbody = [st for k, st in enumerate(fn.body[z]) if fn.live[z][k]]
        if not all(is_pure(st) or st.op in _QUIET for st in zbody) or not _fewer(defs, const, size[0], size[1], n):
            return False
        decisions.append((z, size[2]))
    pcs: set[int] = set(call.pcs)
    chain_pcs(values.condition(x), defs, {"ISZERO", "EXTCODESIZE"}, pcs)
    for d, _ in decisions[1:]:
        chain_pcs(values.condition(d), defs, {"ISZERO", "LT", "GT", "RETURNDATASIZE"}, pcs)
    pcs.update(fn.syms[d].last_pc for d, _ in decisions if fn.syms[d].last_pc is not None)
    fn.body[y][next(k for k, st in enumerate(fn.body[y]) if st is call)] = Stmt(
        None, CALLS[call.op], call.args[1:], 0, merged_pcs(pcs))
    for d, taken in decisions:
        decide(fn, d, taken)
    return True


class _Uses:
    """Who reads each value, computed once per function when a call is first found with its checks: statements
    (how many reads), and the jumps whose arguments carry it (into which parameter is looked up when asked)."""

    def __init__(self, fn: FunctionIR, values: Values):
        self.values = values
        self.used = value_uses(fn, values)
        self.reads: dict[Operand, int] = {}
        self.carried: dict[Operand, list[tuple[int, int]]] = {}   # value -> (target instance, argument index)
        for n in fn.ids:
            if n in fn.removed:
                continue
            for k, st in enumerate(fn.body[n]):
                if fn.live[n][k]:
                    for a in st.args:
                        self.reads[a] = self.reads.get(a, 0) + 1
            for t in fn.graph.edges[n].succ:
                for i, a in enumerate(values.edge_args(n, t)):
                    self.carried.setdefault(a, []).append((t, i))

    def by_check_alone(self, chain: list[Operand]) -> bool:
        """The success value and its negations are read by the next negation and the branch alone: no other
        statement, and a jump argument only into a parameter nobody reads (the stack the compiler left it on)."""
        if sum(self.reads.get(v, 0) for v in chain) != len(chain) - 1:
            return False
        return not any(self.used.get(self.values.params(t)[i], 0) for v in chain for t, i in self.carried.get(v, ()))


def _negations(defs, c: Operand, ok: Operand) -> list[Operand] | None:
    """[ok, iszero(ok), ..., c] when c is ok under ISZEROs; None otherwise."""
    chain = [c]
    while chain[-1] != ok:
        s = defs.get(chain[-1])
        if s is None or s.op != "ISZERO":
            return None
        chain.append(s.args[0])
    return chain[::-1]


def _fewer(defs, const: Constants, base: Operand, truth: bool, n: int) -> bool:
    """base, with the truth it has when the check passes, says `returndatasize() >= n`: it is returndatasize() < n
    (false then) or n > returndatasize() (false then)."""
    s = defs.get(base)
    if s is None or truth or s.op not in ("LT", "GT"):
        return False
    size, bound = s.args if s.op == "LT" else s.args[::-1]
    rds = defs.get(size)
    return rds is not None and rds.op == "RETURNDATASIZE" and const(bound) == n
