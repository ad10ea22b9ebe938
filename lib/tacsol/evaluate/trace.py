"""The runs of the behaviour harness (stage 4): the original over the fixed cases (trace_original) and those two
searches find, and a candidate over the same cases (compare_candidate). The state search (search_success) sets the
inputs an original that reverts on every case compares (arguments, caller, value, slots) to the other operands until
it returns; the branch search (search_branches) adds cases that take a branch no case took in their storage state.
Both are bounded by runs and jumps executed, never by wall time."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

from .. import evm
from . import abi
from .cases import CALLERS, RESPONDERS, Case, _fmt, compare, seed_code, seed_value, seeds_search
from .execution import CONTRACT, ORIGINAL, Outcome, execute


@dataclass
class Trace:
    """The original's run over the cases: its outcome per case. Every slot and called address has one value per
    storage state (seed_value, seed_code: a pure function, applied when first touched) under the case's explicit
    slots, so a run's outcome does not depend on which runs came before: the candidate's comparison reuses these
    outcomes."""
    status: str                       # "ok" | "reference_timeout"
    detail: str
    outcomes: list[Outcome]
    cases: list[Case] = field(default_factory=list)   # the fixed cases, then those search_success found
    shapes: dict | None = None
    sel: str = ""                      # the selector the original was called with
    searched: int = 0                  # runs of the original search_success spent (0: a fixed case returned)
    branch_runs: int = 0               # runs of the original search_branches spent
    branches_pending: bool = False     # made with branches=False: search_branches not run yet (extend_branches)
    explored: bool = False             # the outcomes still hold what only the searches read (cmps, branches)


def trace_original(code: bytes, sel: str, types: list[abi.AbiType], cases: list[Case], *, seed: int,
                   time_limit_s: float = 20.0, shapes: dict | None = None, payable: bool = False,
                   search: bool = True, branches: bool = True) -> Trace:
    """Run the original on every case, each from its storage state; when none returns, search_success looks for
    states and arguments that reach the success path; then search_branches looks for cases that take branches no
    case took. The cases they find are added (both sides run them). `branches=False` leaves the branch search
    for later (extend_branches): a candidate that already differs on these cases needs none."""
    deadline = time.thread_time() + time_limit_s
    outs: list[Outcome] = []
    for i, c in enumerate(cases):
        a = _run(code, sel, types, c, seed, shapes, deadline, explore=search)
        if a.timeout:
            return Trace("reference_timeout", f"case {i}", outs, cases[:i], shapes, sel)
        outs.append(a)
        if time.thread_time() > deadline:
            return Trace("ok", f"time limit after {i + 1} cases", _plain(outs), cases[:i + 1], shapes, sel)
    t = Trace("ok", "", outs, list(cases), shapes, sel, explored=search)
    if search and outs and not any(o.success for o, c in zip(outs, cases) if seeds_search(c)):
        stop = min(deadline, time.thread_time() + SEARCH_S)
        found, t.searched = search_success(
            lambda c: _run(code, sel, types, c, seed, shapes, stop, explore=True), cases, outs, types, payable, stop)
        for c, o in found:
            t.cases.append(c)
            t.outcomes.append(o)
    t.branches_pending = search and any(o.success for o in t.outcomes)
    if t.branches_pending and branches:
        return extend_branches(t, code, types, seed=seed, payable=payable,
                               time_limit_s=max(0.0, deadline - time.thread_time()))
    return t if t.branches_pending else plain_trace(t)


def extend_branches(t: Trace, code: bytes, types: list[abi.AbiType], *, seed: int, payable: bool = False,
                    time_limit_s: float = 20.0) -> Trace:
    """A trace made with branches=False, with the cases search_branches finds added (unchanged when none is
    pending). Its cases run again, as explore runs, when it no longer holds what the search reads (a trace read
    back from the disk cache): a run's outcome is a pure function of its case."""
    if not t.branches_pending:
        return t
    deadline = time.thread_time() + time_limit_s
    outs = t.outcomes if t.explored else [_run(code, t.sel, types, c, seed, t.shapes, deadline, explore=True)
                                          for c in t.cases]
    stop = min(deadline, time.thread_time() + BRANCH_S)
    found, runs = search_branches(lambda c: _run(code, t.sel, types, c, seed, t.shapes, stop, explore=True),
                                  t.cases, outs, types, payable, stop)
    return plain_trace(replace(t, cases=t.cases + [c for c, _ in found], outcomes=t.outcomes + [o for _, o in found],
                               branch_runs=runs, branches_pending=False))


def _plain(outcomes: list[Outcome]) -> list[Outcome]:
    return [replace(o, cmps=[], read_values={}, branches=set(), cmp_jumps=[]) for o in outcomes]


def plain_trace(t: Trace) -> Trace:
    """The trace without what only the searches read: what the comparison needs, small enough to cache."""
    return replace(t, outcomes=_plain(t.outcomes), explored=False) if t.explored else t



@dataclass
class _Budget:
    """What a search may spend: runs and jumps executed, so that the same search stops at the same run on any
    machine and under any load (a CPU-time budget found fewer cases with the workers sharing a core's
    siblings), and thread CPU time as a safety net."""
    runs: int
    steps: int
    stop: float
    spent_runs: int = 0
    spent_steps: int = 0

    def left(self) -> bool:
        return self.spent_runs < self.runs and self.spent_steps < self.steps and time.thread_time() < self.stop

    def charge(self, o: Outcome) -> Outcome:
        self.spent_runs += 1
        self.spent_steps += o.steps
        return o


SEARCH_RUNS = 96         # runs of the original the state search may spend on one function
SEARCH_STEPS = 200_000   # and jumps executed (about 6 CPU s of py-evm on 2026 cores)
SEARCH_S = 12.0          # and CPU seconds: a safety net only, the step budget binds first
SEARCH_FOUND = 3    # returning cases it stops at
_PER_PARENT = 16    # proposals drawn from one run's comparisons


def _word_of(t: abi.AbiType, v) -> int:
    if t.base == "bytesN":
        return int.from_bytes(bytes(v).ljust(32, b"\0")[:32], "big")
    return int(v) & abi.M256   # uint, int (two's complement), address, bool


def _value_of(t: abi.AbiType, w: int):
    """The ABI value of type `t` whose calldata word is `w`; None when no valid value has that word."""
    if t.base == "uint":
        return w if w < 1 << t.bits else None
    if t.base == "int":
        v = w - (1 << 256) if w >> 255 else w
        return v if -(1 << (t.bits - 1)) <= v < 1 << (t.bits - 1) else None
    if t.base == "address":
        return w if w < 1 << 160 else None
    if t.base == "bool":
        return bool(w) if w in (0, 1) else None
    if t.base == "bytesN":
        b = w.to_bytes(32, "big")
        return b[:t.bits] if not any(b[t.bits:]) else None
    return None


_HEADS = {"head4": 4, "head32": 32}   # leading bytes of a `bytes` argument a comparison may read (a selector, a word)


def _leaves(types: list[abi.AbiType], values: list, path: tuple = ()):
    """(path, "word" | "len" | "head4" | "head32", type, word) of every argument value a comparison can read:
    elementary values, the lengths of dynamic bytes, strings and arrays, and the first 4 and 32 bytes of a
    `bytes` value, as `bytes4 x := mload(add(data, 32))` reads them (a LINK token's transferAndCall payload must
    start with a whitelisted selector)."""
    for k, (t, v) in enumerate(zip(types, values)):
        p = path + (k,)
        if t.item is not None:
            if t.length is None:
                yield p, "len", t, len(v)
            yield from _leaves([t.item] * len(v), list(v), p)
        elif t.base == "tuple":
            yield from _leaves(list(t.fields), list(v), p)
        elif t.base in ("bytes", "string"):
            yield p, "len", t, len(v)
            if t.base == "bytes":
                word = int.from_bytes(bytes(v)[:32].ljust(32, b"\0"), "big")
                for kind, n in _HEADS.items():
                    yield p, kind, t, word >> (256 - 8 * n) << (256 - 8 * n)
        else:
            yield p, "word", t, _word_of(t, v)


def _set_at(values: list, path: tuple, new) -> list:
    out = list(values)
    out[path[0]] = new if len(path) == 1 else _set_at(out[path[0]], path[1:], new)
    return out


def _get_at(values: list, path: tuple):
    for k in path:
        values = values[k]
    return values


def _resized(t: abi.AbiType, v, n: int):
    """A dynamic value of type `t` holding `n` items (bytes, characters), keeping those it has."""
    if t.item is not None:
        items = list(v)[:n]
        fill = abi.boundary_values(t.item, [int.from_bytes(c, "big") for c in CALLERS])[1]
        return items + [fill] * (n - len(items))
    if t.base == "string":
        return (str(v) + "a" * n)[:n]
    return (bytes(v) + b"\x01" * n)[:n]


_FIELD_WIDTHS = (160, 64, 8)   # address, uint64, uint8/bool fields of packed slots


def _slot_fields(read_values: dict[int, int]) -> dict[int, list[tuple[int, int, int, int]]]:
    """value -> [(slot, word, shift, mask)]: the slots a run read whose whole word, or else a packed field (the
    lowest offset per field width), holds that value, in read order. One index per run: a run of a loop makes
    thousands of comparisons, each looked up here."""
    index: dict[int, list[tuple[int, int, int, int]]] = {}
    for slot, word in read_values.items():
        if word:
            index.setdefault(word, []).append((slot, word, 0, abi.M256))
        for w in _FIELD_WIDTHS:
            mask, placed = (1 << w) - 1, set()
            for o in range(0, 33 - w // 8):
                f = (word >> (8 * o)) & mask
                if f and f != word and f not in placed:
                    placed.add(f)
                    index.setdefault(f, []).append((slot, word, 8 * o, mask))
    return index


def _targets(op: str, a: int, b: int) -> list[tuple[int, list[int]]]:
    """(operand value, values to give the input that holds it) of one comparison: the other operand (equality),
    either side of it (order), zero or non-zero (ISZERO)."""
    m = abi.M256
    if op == "ISZERO":
        return [(a, [0] if a else [1, int.from_bytes(CALLERS[0], "big")])]
    if op == "EQ":
        return [(a, [b]), (b, [a])] if a != b else [(a, [(a + 1) & m])]
    return [(a, [b, (b + 1) & m, (b - 1) & m]), (b, [a, (a + 1) & m, (a - 1) & m])]


def _proposals(case: Case, out: Outcome, types: list[abi.AbiType], payable: bool, first: set[int] | None = None):
    """Cases one input away from `case`: an argument, the caller, the value or a slot the run read set to the
    other operand of a comparison it took (input-to-state correspondence), latest comparisons first: the
    failing require is usually the last one before the revert. `first`: JUMPI pcs whose comparisons go first
    (the branch search's branches taken one way only)."""
    leaves = list(_leaves(types, case.args))
    fields = _slot_fields(out.read_values)
    zeros = _zero_fields(out.read_values)
    done: set = set()
    made = 0
    if out.probed and case.answer_words == 1:   # a called contract's one-word answer may not decode as a tuple
        made += 1
        yield replace(case, answer_words=ANSWER_WORDS, found=_note(case, f"calls answered with {ANSWER_WORDS} words"))
    for child in _deployed_proposals(case, out, leaves, fields, zeros):
        made += 1
        yield child
    jumps = out.cmp_jumps
    order, pcs = [], set()
    for i in range(len(out.cmps) - 1, -1, -1):   # latest first; a loop's condition once, at its last test
        at = (jumps[i] if i < len(jumps) else -1, out.cmps[i][0])   # (JUMPI, op): `a < b` and its ISZERO both
        if at[0] >= 0 and at in pcs:
            continue
        pcs.add(at)
        order.append(i)
    if first:
        order = [i for i in order if jumps[i] in first] + [i for i in order if jumps[i] not in first]
    for op, a, b in (out.cmps[i] for i in order):
        if (op, a, b) in done:
            continue
        done.add((op, a, b))
        for x, targets in _targets(op, a, b):
            for path, kind, t, w in leaves:
                if w != x:
                    continue
                for y in targets:
                    if kind == "len":
                        if y > 320 or (t.item is None and t.base not in ("bytes", "string")):
                            continue
                        new = _resized(t, _get_at(case.args, path), y)
                    elif kind in _HEADS:
                        n = _HEADS[kind]
                        if y & ((1 << (256 - 8 * n)) - 1):
                            continue
                        old = bytes(_get_at(case.args, path))
                        new = y.to_bytes(32, "big")[:n] + old[n:] if len(old) >= n else y.to_bytes(32, "big")[:n]
                    else:
                        new = _value_of(t, y)
                        if new is None:
                            continue
                    made += 1
                    what = " length" if kind == "len" else f"[:{_HEADS[kind]}]" if kind in _HEADS else ""
                    yield replace(case, args=_set_at(case.args, path, new), found=_note(
                        case, f"arg {'.'.join(map(str, path))}{what} = {hex(y)[:20]}"))
            if x == int.from_bytes(case.caller, "big"):
                for y in targets:
                    if 0 < y < 1 << 160:
                        made += 1
                        yield replace(case, caller=y.to_bytes(20, "big"), found=_note(case, f"caller = {hex(y)}"))
            if payable and x == case.value:
                for y in targets:
                    if y <= BALANCE_LIMIT:
                        made += 1
                        yield replace(case, value=y, found=_note(case, f"value = {y}"))
            for slot, word, shift, mask in fields.get(x, ()) if x else zeros if op == "ISZERO" else ():
                for y in targets:
                    if y & mask != y:
                        continue
                    made += 1
                    yield replace(case, storage={**case.storage, slot: (word & ~(mask << shift)) | (y << shift)},
                                  found=_note(case, f"slot {hex(slot)[:14]} = {hex(y)[:20]}"))
        if made >= _PER_PARENT:
            return


ANSWER_WORDS = 16        # the longer answer of called contracts the search may try (seed_code)
BALANCE_LIMIT = 10**20   # below the callers' balance (execution.BALANCE): a value they can send
DEPLOYED = bytes.fromhex("5e" * 20)   # an address holding code in every state (seed_code): a deployed contract
_ZERO_SLOTS = 2          # zero-valued slots an ISZERO of zero may set (the latest read first)


def _zero_fields(read_values: dict[int, int]) -> list[tuple[int, int, int, int]]:
    """(slot, 0, 0, full mask) of the last _ZERO_SLOTS slots a run read as zero, the latest first: a flag or role
    never set (`require(hasRole(..))` tests it with ISZERO), a contract address never stored. Not indexed by value
    with the others (_slot_fields): in a fresh state every slot is zero, and proposals for each would crowd out
    those of the comparison that failed."""
    return [(s, 0, 0, abi.M256) for s, w in reversed(list(read_values.items())) if not w][:_ZERO_SLOTS]


def _has_code(address: bytes, case: "Case") -> bool:
    return (address == CONTRACT or address in RESPONDERS
            or seed_code(address, case.variant, case.answer_words) is not None)


def _deployed_proposals(case: "Case", out: Outcome, leaves: list, fields: dict, zeros: list):
    """Cases in which an address the run called or asked the code size of, and that held no code (the owner, a
    zero address, a precompile), is the DEPLOYED contract instead: the argument or slot field that held it is
    set. Solidity reverts before calling an address without code, so a token, registry or oracle kept in a
    slot that holds the owner or nothing would otherwise stop every run there. And the other way round, an
    argument that held code is an account without (EOA): a recipient contract must implement a hook (ERC-721's
    onERC721Received, ERC-777's tokensReceived) that the harness's responders do not."""
    d, eoa = int.from_bytes(DEPLOYED, "big"), int.from_bytes(CALLERS[3], "big")
    for a in out.probed:
        x = int.from_bytes(a, "big")
        if _has_code(a, case):
            for path, kind, t, w in leaves:
                if kind == "word" and t.base == "address" and w == x and x != eoa:
                    yield replace(case, args=_set_at(case.args, path, eoa),
                                  found=_note(case, f"arg {'.'.join(map(str, path))} = an account without code"))
            continue
        for path, kind, t, w in leaves:
            if kind == "word" and t.base == "address" and w == x:
                yield replace(case, args=_set_at(case.args, path, d),
                              found=_note(case, f"arg {'.'.join(map(str, path))} = a deployed contract"))
        for slot, word, shift, mask in fields.get(x, ()) if x else zeros:
            if mask >> 159:   # an address-wide field
                yield replace(case, storage={**case.storage, slot: (word & ~(mask << shift)) | (d << shift)},
                              found=_note(case, f"slot {hex(slot)[:14]} = a deployed contract"))


def _note(case: Case, change: str) -> str:
    return f"{case.found}; {change}" if case.found else change


def _case_key(c: Case) -> str:
    return repr((c.args, c.caller, c.value, c.variant, sorted(c.storage.items()), c.answer_words))


def search_success(run: Callable[[Case], Outcome], cases: list[Case], outcomes: list[Outcome],
                   types: list[abi.AbiType], payable: bool, stop: float) -> tuple[list[tuple[Case, Outcome]], int]:
    """Cases on which the original returns, when none of the fixed ones does: ([(case, outcome)], runs spent).

    A guided search over the inputs a run reads: from the deepest reverted case of each storage state, one input
    at a time (an argument, the caller, the value sent, a slot's value) takes the other operand of a comparison
    the run made (the owner stored in a slot, the id a mapping entry holds, the length a signature must have, a
    timestamp just past a deadline). A child that takes a branch no run took before is explored in turn, the
    deepest first. Bounded by SEARCH_RUNS runs, SEARCH_STEPS jumps and `stop` (thread CPU time); only the
    original runs here."""
    import heapq

    best: dict[int, tuple[int, int]] = {}
    for i, o in enumerate(outcomes):
        if not seeds_search(cases[i]):
            continue
        if not o.timeout and (cases[i].variant not in best or o.steps > best[cases[i].variant][0]):
            best[cases[i].variant] = (o.steps, i)
    heap: list = []
    seen: set = set()
    tried = {_case_key(c) for c in cases}
    found: list[tuple[Case, Outcome]] = []
    budget = _Budget(SEARCH_RUNS, SEARCH_STEPS, stop)
    for _, i in sorted(best.values(), reverse=True):
        if not budget.left():
            break
        o = budget.charge(run(cases[i]))
        seen |= o.branches
        heapq.heappush(heap, (-len(o.branches), budget.spent_runs, cases[i], o))
    while heap and len(found) < SEARCH_FOUND and budget.left():
        _, _, parent, po = heapq.heappop(heap)
        for child in _proposals(parent, po, types, payable):
            key = _case_key(child)
            if key in tried:
                continue
            tried.add(key)
            if not budget.left():
                break
            o = budget.charge(run(child))
            if o.timeout:
                continue
            if o.success:
                found.append((child, o))
                if len(found) >= SEARCH_FOUND:
                    break
                continue
            if not o.branches <= seen:
                seen |= o.branches
                heapq.heappush(heap, (-len(o.branches), budget.spent_runs, child, o))
    return found, budget.spent_runs


BRANCH_RUNS = 48         # runs of the original the branch search may spend on one function
BRANCH_STEPS = 100_000   # and jumps executed (about 3 CPU s)
BRANCH_S = 6.0           # and CPU seconds: a safety net only
BRANCH_FOUND = 6    # cases it adds (each takes a branch no earlier case took in its storage state)
BRANCH_NOTE = "new branch: "


def search_branches(run: Callable[[Case], Outcome], cases: list[Case], outcomes: list[Outcome],
                    types: list[abi.AbiType], payable: bool, stop: float) -> tuple[list[tuple[Case, Outcome]], int]:
    """Cases that take a branch (a JUMPI and its direction) that none of `cases` took from the same storage state:
    ([(case, outcome)], runs).

    The fixed cases meet a function's common paths; a candidate that differs only on another one (a changed
    constant in a cap check, a flipped comparison of a limit, an event in an owner-only branch) would pass them.
    From the returning cases (the deepest first), one input at a time takes the other operand of a comparison
    the run made (_proposals, as the state search does; first those of the branches taken one way only); a child
    that reaches a new branch, returning or not, is kept and explored in turn. `outcomes` must come from explore
    runs (their branches). Bounded by BRANCH_RUNS runs, BRANCH_STEPS jumps, BRANCH_FOUND cases and `stop` (thread
    CPU time); only the original runs here."""
    import heapq

    # branches per storage state: a path one state reaches (the owner's revert when a token has no code) is
    # another where the state differs (a token that answers)
    seen: set = {(c.variant, *b) for c, o in zip(cases, outcomes) for b in o.branches}
    heap = [(not o.success, -o.steps, i, c, o) for i, (c, o) in enumerate(zip(cases, outcomes))
            if not o.timeout and seeds_search(c)]
    heapq.heapify(heap)
    tried = {_case_key(c) for c in cases}
    changes: set = set()   # (state, change): the same change from another parent in that state rarely adds a branch
    found: list[tuple[Case, Outcome]] = []
    budget, tick = _Budget(BRANCH_RUNS, BRANCH_STEPS, stop), len(cases)
    while heap and len(found) < BRANCH_FOUND and budget.left():
        *_, parent, po = heapq.heappop(heap)
        v = parent.variant
        one_way = {pc for w, pc, d in seen if w == v and (v, pc, not d) not in seen}
        for child in _proposals(parent, po, types, payable, one_way):
            key, change = _case_key(child), (child.variant, child.found.rsplit("; ", 1)[-1])
            if key in tried or change in changes:
                continue
            tried.add(key)
            changes.add(change)
            if not budget.left():
                break
            o = budget.charge(run(child))
            reached = {(child.variant, *b) for b in o.branches}
            if o.timeout or reached <= seen:
                continue
            seen |= reached
            if not child.found.startswith(BRANCH_NOTE):
                child = replace(child, found=BRANCH_NOTE + child.found)
            found.append((child, o))
            tick += 1
            heapq.heappush(heap, (not o.success, -o.steps, tick, child, o))
            if len(found) >= BRANCH_FOUND:
                break
    return found, budget.spent_runs


def _as_if_called_by(o: Outcome, cand_sel: str, sel: str) -> Outcome:
    """The candidate's outcome with its own selector read as the original's wherever it forwards msg.data or
    msg.sig (in call data, log data, return data): the harness's renaming must not show."""
    if not sel or cand_sel == sel:
        return o
    a, b = evm.hex_bytes(cand_sel), evm.hex_bytes(sel)
    return replace(o, output=o.output.replace(a, b), logs=[(t, d.replace(a, b)) for t, d in o.logs],
                   calls=[(k, t, v, d.replace(a, b)) for k, t, v, d in o.calls])


def _run(code: bytes, sel: str, types: list[abi.AbiType], c: Case, seed: int, shapes: dict | None,
         deadline: float, explore: bool = False, original: bytes | None = None) -> Outcome:
    """`code` called over case `c`; `original`: the runtime the address ORIGINAL holds (check 5's stubs delegate
    the original's other public functions to it)."""
    return execute(code, evm.hex_bytes(sel) + abi.encode_tuple(types, c.args), dict(c.storage),
                   caller=c.caller, value=c.value, responders=RESPONDERS,
                   time_limit_s=max(0.2, min(3.0, deadline - time.thread_time())),
                   storage_default=lambda slot, pre: seed_value(slot, seed, c.variant, shapes, pre),
                   code_default=lambda a: original if original is not None and a == ORIGINAL else
                   seed_code(a, c.variant, c.answer_words), explore=explore)


def compare_candidate(trace: Trace, cand: bytes, cand_sel: str, types: list[abi.AbiType], *,
                      seed: int, time_limit_s: float = 20.0, start: int = 0) -> tuple[str, str, int]:
    """('equivalent' | 'differs', detail, cases compared): the candidate against the traced original, case by
    case, from the same states; from case `start` on (the cases a trace gained since the candidate agreed on
    those before)."""
    deadline = time.thread_time() + time_limit_s
    for i in range(start, len(trace.outcomes)):
        a, c = trace.outcomes[i], trace.cases[i]
        b = _as_if_called_by(_run(cand, cand_sel, types, c, seed, trace.shapes, deadline), cand_sel, trace.sel)
        field_ = compare(a, b)
        if field_:
            how = f", {c.found}" if c.found else ""
            return "differs", (f"case {i} (storage {c.variant}{how}, caller 0x{c.caller.hex()[:6]}…, value "
                               f"{c.value}, args {_fmt_args(c.args)}): {field_} differ — original {_fmt(a)}; "
                               f"generated {_fmt(b)}"), i + 1
        if time.thread_time() > deadline:
            return "differs" if b.timeout else "equivalent", f"time limit after {i + 1} cases", i + 1
    return "equivalent", trace.detail, len(trace.outcomes)


def _fmt_args(args: list) -> str:
    def one(v):
        if isinstance(v, (bytes, bytearray)):
            return "0x" + bytes(v).hex()[:16] + ("…" if len(v) > 8 else "")
        if isinstance(v, int) and v > 10**6:
            return hex(v)[:14] + ("…" if len(hex(v)) > 14 else "")
        if isinstance(v, list):
            return "[" + ", ".join(one(x) for x in v[:3]) + ("…" if len(v) > 3 else "") + "]"
        return repr(v)
    return "(" + ", ".join(one(a) for a in args) + ")"
