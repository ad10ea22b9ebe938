"""Level 2: internal functions, found once per contract. A plain jump whose stack holds a jump destination below
some words is a call-site candidate (that destination its return address, the words its arguments). Every block
of a function's body is such a jump target too (its stack holds the function's return address): of the targets
reached with the same set of two or more return addresses, the entry is the one with the fewest words above them,
and a target inside another's body is not an entry. An entry is an internal function when its code, explored from
a frame of those words and a return marker, is clean: it never touches the stack below its frame, never reaches an
unresolved jump, always returns (if it returns at all) by jumping to the marker with the same number of words left,
its entry is not re-entered, and it is not small. Functions are numbered f1, f2, ... by entry offset."""
from __future__ import annotations

import collections
import dataclasses
import re

from .abi import Abi
from .cfg import Program
from .cse import PURE
from .emit import CONST, Rendered
from .instances import RET, Callee, explore
from .ir import Graph
from .render import render
from .result import SUMMARY_MARK

MIN_CALL_SITES = 2   # called from one place only, a function is printed once anyway: inline it
RECURSIVE_FID = 1    # a recursive function's calls of itself while it is verified (the real fid comes later)
# A callee's unit that would take an example past this many characters is summarized (the default of lift's
# callee_budget). 3,584 puts 96.3% of the level-3 corpus's pairs within 2,048 tokens, Wilson [95.9, 96.7] (4,096:
# 95.2% [94.7, 95.7]; 8,192: 94.0%), and the summaries it adds cost no held-out loss (docs/tac-format.md, "The
# callee budget at 3,584"). 4,096 from 2026-12-06 to 2026-12-07; datasets record the budget they were built with
CALLEE_BUDGET_CHARS = 3584
# The default until 2026-12-06: what a dataset whose manifest predates the callee_budget key was lifted with
LEGACY_CALLEE_BUDGET_CHARS = 8192
# A smaller one (an ABI decoder, a panic helper) costs less inline than as a call and a unit, unless inlining it
# leaves a function partial (a CBOR builder calling a 10-statement helper from ~60 contexts, past MAX_NODES
# instances; a small recursive function): such a function is tried again with the small ones as calls too
# (Internals.select(small=True))
MIN_STATEMENTS = 16
DEEP_ROUNDS = 4   # find_callees at level 3: explorations again with the functions found so far as calls


def find_callees(prog: Program, entries: list[int], deadline: float, level: int = 2
                 ) -> tuple[dict[int, Callee], dict[int, Graph], dict[int, Callee]]:
    """entry offset → Callee, for the internal functions the public functions starting at `entries` call; the
    level-1 graph of each of those public functions (explored to count call sites, reused when one calls none); and
    the clean ones under MIN_STATEMENTS (numbered after the others, called only where inlining them fails).
    Level 3 explores paths with `negations` (instances.explore) and marks a function that only decodes an argument
    from calldata (decodes_calldata) `decodes`, for Internals.select to inline it where it folds into the caller's
    own decoding. A public function whose exploration passed MAX_NODES instances leaves its later call sites
    unseen (context-free instances track no return address), and the functions called only there unfound
    (Chainlink's request builders: 20-40 nested CBOR calls per function): at level 3 it is explored again with the
    functions found so far as calls, and so is each of those functions' own unit, until no new function is found
    (DEEP_ROUNDS at most)."""
    sites: dict[tuple[int, int], set[int]] = collections.defaultdict(set)

    def observe(t: int, k: int, r: int) -> None:
        sites[(t, k)].add(r)

    neg = level >= 3
    graphs = {e: explore(prog, [e], deadline=deadline, observe=observe, precise=True, negations=neg)
              for e in entries}
    verified: dict[int, tuple[Callee, set[int], frozenset]] = {}
    small: dict[int, tuple[Callee, frozenset]] = {}
    tried: dict[tuple[int, int], tuple | None] = {}
    _verify_groups(prog, sites, deadline, verified, small, tried, neg)
    cut = [e for e in entries if graphs[e].partial]
    explored: set[int] = set()
    for _ in range(DEEP_ROUNDS if level >= 3 else 0):
        if not cut:
            break
        known = {u: dataclasses.replace(c, fid=i + 1) for i, (u, c) in
                 enumerate([*((u, c) for u, (c, _, _) in verified.items()), *((u, c) for u, (c, _) in small.items())])}
        before = len(verified) + len(small)
        cut = [e for e in cut if explore(prog, [e], deadline=deadline, calls=known, observe=observe,
                                         precise=True, negations=neg).partial]
        for u in sorted(set(known) - explored):   # sites inside a callee, now a call instance, not inlined
            explored.add(u)
            explore(prog, [u], deadline=deadline, frame=known[u].frame, calls=known, observe=observe, precise=True,
                    negations=neg)
        _verify_groups(prog, sites, deadline, verified, small, tried, neg)
        if len(verified) + len(small) == before:
            break
    if level >= 3:
        verified = {t: (dataclasses.replace(c, decodes=decodes_calldata(prog, body)), body, rets)
                    for t, (c, body, rets) in verified.items()}
    entries_ = sorted(t for t, (_, _, rets) in verified.items() if not _inside(t, rets, verified))
    smalls = sorted(t for t, (_, rets) in small.items() if not _inside(t, rets, verified))
    callees = {t: dataclasses.replace(verified[t][0], fid=i + 1) for i, t in enumerate(entries_)}
    return callees, graphs, {t: dataclasses.replace(small[t][0], fid=len(callees) + i + 1)
                             for i, t in enumerate(smalls)}


def _verify_groups(prog: Program, sites: dict[tuple[int, int], set[int]], deadline: float,
                   verified: dict[int, tuple[Callee, set[int], frozenset]],
                   small: dict[int, tuple[Callee, frozenset]], tried: dict[tuple[int, int], tuple | None],
                   negations: bool = False) -> None:
    """Verify the call-site candidates of `sites` ((target, depth) → return addresses) not verified yet, adding
    each clean function to `verified` (its Callee, body blocks and return addresses) or, under MIN_STATEMENTS,
    to `small`. `tried` remembers each (target, depth) verified before: a small helper is a candidate in every
    group of return addresses it is called with."""
    groups: dict[frozenset, list[tuple[int, int]]] = collections.defaultdict(list)
    for (t, k), rets in sites.items():
        if len(rets) >= MIN_CALL_SITES:
            groups[frozenset(rets)].append((k, t))
    retry: list[tuple[int, int, frozenset]] = []
    for rets in sorted(groups, key=lambda r: (-len(r), sorted(r))):   # outer bodies first: inner blocks see fewer
        cands = groups[rets]
        k0 = min(cands)[0]
        for k, t in sorted(cands):
            if k != k0 or t in verified or _inside(t, rets, verified):
                continue
            if (t, k) not in tried:
                tried[(t, k)] = _verified(prog, t, k, deadline, negations=negations)
            got = tried[(t, k)]
            if got is None:
                retry.append((t, k, rets))
            elif got[2]:
                small[t] = (got[0], rets)
            else:
                verified[t] = (got[0], got[1], rets)
    # Mutual recursion (Buffer.resize calling append, which calls resize): a function whose recursion runs through
    # another one is clean once the functions verified so far are calls in it too.
    for t, k, rets in retry:
        if t not in verified and not _inside(t, rets, verified):
            known = {u: Callee(RECURSIVE_FID + 1 + i, u, c.args, c.results, c.returns)
                     for i, (u, (c, _, _)) in enumerate(verified.items())}
            got = _verified(prog, t, k, deadline, known, negations)
            if got is not None and not got[2]:
                verified[t] = (got[0], got[1], rets)


# what an ABI decoder's code does: arithmetic, calldata and memory reads and writes, jumps and failures
_DECODER_OPS = frozenset(PURE) | {"CALLDATASIZE", "CALLDATACOPY", "MLOAD", "MSTORE", "JUMP", "JUMPI", "REVERT",
                                  "INVALID"}


def decodes_calldata(prog: Program, blocks: set[int]) -> bool:
    """The function whose body is `blocks` reads a length from calldata and copies calldata to memory, and does
    nothing else but compute and fail: solc's ABI decoder of a bytes or string argument
    (`abi_decode_t_bytes_memory_ptr(offset, end)`), shared by the optimizer between arguments of one type. (A
    memory struct's zeroing also calls calldatacopy, from calldatasize, and reads no calldata. Word-array decoders,
    which store word by word, are left out: inlined where their loop does not fold, ref_l2_t40's share within 2,048
    tokens fell from 93.1% to 92.9%.)"""
    ops = set().union(*(prog.sym(b).counts for b in blocks))
    return {"CALLDATALOAD", "CALLDATACOPY"} <= ops <= _DECODER_OPS


def _inside(t: int, rets: frozenset, verified: dict) -> bool:
    """t is a block of another verified function's body, reached only from its call sites."""
    return any(t != u and t in body and rets <= r2 for u, (_, body, r2) in verified.items())


def _verified(prog: Program, entry: int, args: int, deadline: float,
              known: dict[int, Callee] | None = None, negations: bool = False
              ) -> tuple[Callee, set[int], bool] | None:
    """The function at `entry` with `args` argument words, the blocks of its body and whether it is small (under
    MIN_STATEMENTS), if its code is clean (its fid assigned later). A recursive function is explored again with its
    own calls (and those of `known` functions) as calls, returning the number of results its first exploration found
    (the base case returns before the recursion stops the tracking)."""
    frame = (None,) * args + (RET,)
    g = explore(prog, [entry], deadline=deadline, frame=frame, precise=True, negations=negations, until_unclean=True)
    if g.partial and g.clean and len(g.returns) == 1:
        itself = Callee(RECURSIVE_FID, entry, args, min(g.returns))
        g = explore(prog, [entry], deadline=deadline, frame=frame, calls={**(known or {}), entry: itself},
                    precise=True, negations=negations, until_unclean=True)
    if g.partial or not g.clean or len(g.returns) > 1 or any(0 in e.succ for e in g.edges):
        return None
    small = sum(len(prog.sym(bid).stmts) for bid, _ in g.nodes if bid >= 0) < MIN_STATEMENTS
    return (Callee(0, entry, args, min(g.returns, default=0), bool(g.returns)), {bid for bid, _ in g.nodes if bid >= 0},
            small)


class Internals:
    """A contract's internal functions at level 2: which of them one function's example calls, their units, and
    the example (the function's unit, then its callees' units)."""

    def __init__(self, prog: Program, deadline: float, labels: str, callees: dict[int, Callee],
                 graphs: dict[int, Graph], small: dict[int, Callee] | None = None, checks: bool = False,
                 budget: int = CALLEE_BUDGET_CHARS):
        self.prog, self.deadline, self.labels, self.callees, self.graphs = prog, deadline, labels, callees, graphs
        self.budget = budget   # characters of an example past which a callee's unit prints as its summary
        self.checks = checks   # level 3: units print failing branches as `require`
        self.small = small or {}
        self.by_fid = {c.fid: c for c in [*callees.values(), *self.small.values()]}
        self.calls_in: dict[tuple, collections.Counter] = {}   # (fid, small) → its unit's calls (all callable)
        self.units: dict[tuple, Rendered] = {}
        self.unit_graphs: dict[int, list[tuple[Graph, Rendered]]] = {}   # fid → (a graph of its unit, that unit)

    def select(self, starts: list[int], stop=frozenset(), small: bool = False, decoders: bool = True
               ) -> tuple[dict[int, Callee], Graph | None] | None:
        """The callees called twice or more in this example (from its own code or a callee's): a function called
        once costs less inline, where its arguments' values and the caller's checks stay in view. With them, the
        example's graph when one already explored fits (else None). `small`: every callee it reaches, the small
        functions with many call sites included (for an example that is partial without them); None when the
        function's own code is still partial that way (not worth rendering). Without `decoders`, a bytes
        argument's decoder is inlined: where a function's every dynamic argument is bytes, string or a one-word
        array, each inlined copy folds into `p = memory(argK)` (a bytes[] argument's elements would not)."""
        universe = {**self.callees, **self.small} if small else self.callees
        if not decoders:
            universe = {e: c for e, c in universe.items() if not c.decodes}
        level1 = self.graphs.get(starts[0]) if len(starts) == 1 and not stop else None
        if not universe or (level1 is not None and not any(b in universe for b, _ in level1.nodes)):
            return {}, level1
        g = explore(self.prog, starts, stop, self.deadline, calls=universe, precise=True, negations=self.checks)
        if small and g.partial:
            return None
        total = collections.Counter(-b for b, _ in g.nodes if b < 0)   # call instances: block id -fid
        todo, seen = list(total), set(total)
        while todo:
            for fid, k in self._calls_in(todo.pop(), small).items():
                total[fid] += k
                if fid not in seen:
                    seen.add(fid)
                    todo.append(fid)
        least = 1 if small else 2   # an example too big with helpers inlined inlines nothing it can call instead
        chosen = {self.by_fid[f].entry: self.by_fid[f] for f, k in total.items() if k >= least}
        if not chosen:
            return {}, level1
        fids = {c.fid for c in chosen.values()}
        return chosen, g if all(-b in fids for b, _ in g.nodes if b < 0) else None

    def _calls_in(self, fid: int, small: bool = False) -> collections.Counter:
        got = self.calls_in.get((fid, small))
        if got is None:
            c = self.by_fid[fid]
            g = explore(self.prog, [c.entry], deadline=self.deadline, frame=c.frame,
                        calls={**self.callees, **self.small} if small else self.callees, precise=True,
                        negations=self.checks)
            got = self.calls_in[(fid, small)] = collections.Counter(-b for b, _ in g.nodes if b < 0)
        return got

    def unit(self, callee: Callee, calls: dict[int, Callee]) -> Rendered:
        """An internal function's own unit: `function f3(arg0, arg1) internal`, returning with `ret(...)`."""
        key = (callee.fid, frozenset(calls))
        r = self.units.get(key)
        if r is None:
            # the unit depends on `calls` only through its graph (render explores it so): examples calling other
            # sets of functions, among which it calls the same, get the unit rendered once (half the renders of
            # units on the production contracts were such repeats)
            g = explore(self.prog, [callee.entry], frozenset(), self.deadline, frame=callee.frame, calls=calls,
                        precise=True, negations=self.checks)
            same = self.unit_graphs.setdefault(callee.fid, [])
            r = next((u for h, u in same if h == g), None)
            if r is None:
                header = f"function f{callee.fid}({', '.join(f'arg{i}' for i in range(callee.args))}) internal"
                r = render(self.prog, header, [callee.entry], self.deadline, labels=self.labels,
                           abi=Abi((), "internal"), callee=callee, calls=calls, graph=g, checks=self.checks)
                same.append((g, r))
            self.units[key] = r
        return r

    def example(self, r: Rendered, calls: dict[int, Callee]) -> Rendered:
        """One function's example: its unit, then the unit of every internal function it reaches, in order of first
        call; the counts and covered blocks of them all. A callee's unit that would take the example past the
        budget is printed as its effect summary (summarize); the function's own unit never is."""
        units, seen = [r], set()
        for u in units:
            for fid in u.calls:
                if fid not in seen:
                    seen.add(fid)
                    units.append(self.unit(self.by_fid[fid], calls))
        counted = set().union(*(u.counted for u in units))
        ops: dict[str, int] = {}
        for b in counted:
            for k, v in self.prog.sym(b).counts.items():
                ops[k] = ops.get(k, 0) + v
        texts, line_pcs = [r.tac], list(r.line_pcs)
        used = len(r.tac)
        for u in units[1:]:   # the blank line between two units maps to nothing
            if used + 2 + len(u.tac) > self.budget:
                text, pcs = summarize(u.tac, u.line_pcs)
            else:
                text, pcs = u.tac, u.line_pcs
            used += 2 + len(text)
            texts.append(text)
            line_pcs += [()] + list(pcs)
        return Rendered("\n\n".join(texts), sum(u.blocks for u in units),
                        sum(u.instructions for u in units), ops, any(u.partial for u in units),
                        set().union(*(u.used_blocks for u in units)), r.calls, counted, line_pcs)


# Effects a summary lists, in this order, each value once: (kind, pattern over a unit's line)
_SLOT_DEF = re.compile(rf"^\s*(v\d+) = ((?:mapping|array)\({CONST}\))")
_SLOT_BASE = re.compile(rf"(?:mapping|array)\({CONST}\)")


def _balanced(depth: int) -> str:
    """A pattern for text whose parentheses balance, nested at most `depth` deep."""
    inner = r"[^()]*"
    for _ in range(depth - 1):
        inner = rf"(?:[^()]|\({inner}\))*"
    return inner


# a slot operand: no top-level comma, parentheses balanced (level 3 prints nested mappings in place:
# `sstore(mapping(mapping(101)[mload(32 + (v5 + v1))])[arg0], v9)`)
_SLOT = rf"((?:[^(),]|\({_balanced(5)}\))*)"
_EFFECTS = [
    ("reads", re.compile(rf"\b(?:sload|storagestring)\({_SLOT}\)")),
    # sstore(s, v); level 3's sstore(s)[off:bits] = v and storagestring(s) = p
    ("writes", re.compile(rf"\bsstore\({_SLOT}(?:,|\)\[)|\bstoragestring\({_SLOT}\) =(?!=)")),
    ("calls", re.compile(r"icall (f\d+)\(|\b((?:static|delegate)?call|callcode)\((?:[^\n]*?, (0x[0-9a-f]{8})\()?")),
    ("creates", re.compile(r"\b(create2?)\(")),
    ("logs", re.compile(r"\blog([0-4])\((0x[0-9a-f]+)?")),
    ("halts", re.compile(r"(revert\(\"[^\"]*\"\)|panic\(0x[0-9a-f]+\)|revert 0x[0-9a-f]{8}|revert\(\)|revert\(|"
                         r"\binvalid\b|selfdestruct)")),
]


def summarize(tac: str, line_pcs: list[tuple[int, ...]]) -> tuple[str, list[tuple[int, ...]]]:
    """An internal function's unit as its header and what it does, one line per kind of effect: the storage it
    reads and writes (constant slots, mapping/array bases), the functions and external selectors it calls, the
    logs it emits (topic 0), how it halts (revert messages, panics, custom errors, invalid), and how many values it
    returns (no such line: it never returns). Each line maps to the instructions of the lines it stands for. Not
    executable: a summary says what, not when."""
    lines = tac.split("\n")
    slots: dict[str, str] = {}
    found: dict[str, dict[str, set[int]]] = {kind: {} for kind, _ in _EFFECTS}
    results = 0
    for text, pcs in zip(lines[1:], line_pcs[1:]):
        m = _SLOT_DEF.match(text)
        if m:
            slots[m.group(1)] = m.group(2)
        for kind, pattern in _EFFECTS:
            for g in pattern.finditer(text):
                found[kind].setdefault(_effect_text(kind, g, slots), set()).update(pcs)
        if text.lstrip().startswith("ret("):
            results = max(results, _top_level_args(text.strip()[4:-1]))
    out = [f"{lines[0]}{SUMMARY_MARK}{len(lines) - 1} lines"]
    out_pcs = [line_pcs[0] if line_pcs else ()]
    for kind, _ in _EFFECTS:
        if found[kind]:
            out.append(f"  {kind} " + ", ".join(found[kind]))
            out_pcs.append(tuple(sorted(set().union(*found[kind].values()))))
    rets = [p for t, p in zip(lines, line_pcs) if t.lstrip().startswith("ret(")]
    if rets:   # a unit that never returns (it always halts) says so by having no such line
        out.append(f"  returns {results}")
        out_pcs.append(tuple(sorted(set().union(*rets))))
    return "\n".join(out), out_pcs


def effects(tac: str) -> dict[str, list[str]]:
    """What a TAC example does, per kind of effect a summary lists (reads, writes, calls, creates, logs, halts): a
    value (summarize's: slot or mapping/array base, callee or selector, topic 0, message) for each occurrence in a
    unit printed in full, and each value a summary line lists for a callee printed as its summary."""
    found: dict[str, list[str]] = {kind: [] for kind, _ in _EFFECTS}
    for unit in tac.split("\n\n"):
        lines = unit.split("\n")
        if SUMMARY_MARK in lines[0]:
            for line in lines[1:]:
                kind, _, values = line.strip().partition(" ")
                if kind in found:
                    found[kind] += _listed_values(values)
            continue
        slots: dict[str, str] = {}
        for text in lines:
            m = _SLOT_DEF.match(text)
            if m:
                slots[m.group(1)] = m.group(2)
            for kind, pattern in _EFFECTS:
                found[kind] += [_effect_text(kind, g, slots) for g in pattern.finditer(text)]
    return found


def _listed_values(text: str) -> list[str]:
    """A summary line's values: split at ", " outside brackets and quoted messages."""
    values, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(", ", i):
            values.append(text[start:i])
            start = i + 2
    values.append(text[start:])
    return [v for v in values if v]


def _top_level_args(text: str) -> int:
    """How many comma-separated operands `text` holds outside brackets (`a, f(b, c)` is 2; empty is 0)."""
    if not text.strip():
        return 0
    depth, n = 0, 1
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            n += 1
    return n


def _effect_text(kind: str, g: re.Match, slots: dict[str, str]) -> str:
    if kind in ("reads", "writes"):   # a constant slot, or a mapping/array base (named before or in place)
        slot = next(x for x in g.groups() if x is not None).strip()
        base = _SLOT_BASE.search(slot)   # a nested mapping's innermost base
        return slots.get(slot) or (slot if re.fullmatch(CONST, slot) else base.group(0) if base else "?")
    if kind == "calls":
        return g.group(1) or (f"{g.group(2)} {g.group(3)}" if g.group(3) else g.group(2))
    if kind == "logs":
        return f"log{g.group(1)} {g.group(2)}" if g.group(2) and g.group(1) != "0" else f"log{g.group(1)}"
    return "revert(message)" if g.group(1) == "revert(" else g.group(1)
