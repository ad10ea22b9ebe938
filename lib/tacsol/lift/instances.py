"""Context-sensitive block instances of one function: internal calls and returns resolved by tracking return
addresses on the stack. Level 2 also explores an internal function as its own unit, from a frame holding its
arguments and a marker (RET) for the address it returns to, and turns a jump into a known internal function into a
call instance that continues at the return address."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .cfg import Program
from .ir import BlockSym, Edges, Graph, Operand, Stmt, Term
from .budget import clock

MAX_NODES = 1000
MAX_TRACKED_SLOTS = 128
RET = -1   # the stack slot that holds an internal function's own return address, in the function's unit
# Level 2: what an edge knows of the word a successor's conditional jump tests (the try/catch join of solc >= 0.6
# tests the call's success word on a stack one word higher on the success path: without it, the join's two sides
# mix the two stack layouts and the returns after it go unresolved). Only that slot is marked, only into that block.
ZERO, NONZERO = -2, -3
REPEATS = 3   # precise: a frame pushed this many times over an earlier stack of the block is recursion
TRUTHS = (ZERO, NONZERO)


@dataclass(frozen=True)
class Callee:
    """An internal function: called by pushing a return address below `args` stack words and jumping to `entry`;
    it returns there leaving `results` words (or never returns: it always halts)."""
    fid: int
    entry: int
    args: int
    results: int
    returns: bool = True
    decodes: bool = False   # level 3: an ABI decoder of a bytes argument (functions.decodes_calldata)

    @property
    def frame(self) -> tuple:
        """The tracked stack its unit starts from: the arguments (unknown), then the return address."""
        return (None,) * self.args + (RET,)


def explore(prog: Program, starts: list[int], stop=frozenset(), deadline: float = float("inf"),
            max_nodes: int = MAX_NODES, *, frame: tuple = (), calls: dict[int, Callee] | None = None,
            observe: Callable[[int, int, int], None] | None = None, precise: bool = False,
            negations: bool = False, until_unclean: bool = False) -> Graph:
    """Walk blocks from `starts`, tracking which stack slots hold jump-destination constants. A block reached with a
    different stack of return addresses (another call site of an internal function) becomes another instance, so
    every internal return resolves to its caller's continuation; a loop re-enters the same instance. Recursion (a
    return address on the stack 3 times, or more than 128 tracked slots) switches to one context-free instance per
    block (stack None) whose dynamic jumps take evmole's targets restricted to this function's path-rule block set;
    such TAC is marked partial.

    Level 2: `frame` is the tracked stack the starts are entered with (an internal function's Callee.frame); a jump
    to the RET marker it holds is a return. A plain jump to the entry of a function in `calls`, with a return
    address at its argument depth, becomes a call instance. `observe(target, depth, address)` sees every jump
    destination constant on the stack of every plain jump (functions.find_callees counts call sites with it).
    `precise` (level 2): a conditional jump whose tested word the path into it settles (a constant, or the word an
    earlier branch tested, as ZERO/NONZERO) takes only that side, its edge a plain jump; recursion is a block
    entered with the same frame (holding a return address) pushed REPEATS times over an earlier stack of it, not a
    return address seen 3 times: optimized code shares one continuation block between the functions of a call
    chain (`supportsInterface` through its overrides), which pushes the same return address once per level; and
    past `max_nodes` instances the rest is explored context-free instead of left out (level 1 stops there).
    `negations` (level 3, with `precise`): a conditional jump on the ISZERO of a word the path settles is settled
    too (solc 0.8's `if iszero(ok)` join after a low-level call, whose success side pushes the constant 1: left
    open, the side that cannot run re-enters the loop around it one word higher every turn, and the function
    ends partial). `until_unclean`: stop as soon as the unit touches its caller's stack, returns unlike a call or
    jumps to a word its tracked stack does not hold (partial however explored: functions._verified rejects it then,
    whatever the rest holds; most candidates it tries are blocks inside a function, entered without its frame), and
    leave context-free instances unexplored (they reach no return and no tracked stack: what _verified reads)."""
    return _Explorer(prog, starts, stop, deadline, frame, calls or {}, observe, precise, negations,
                     until_unclean).run(max_nodes)


def call_block(callee: Callee, ret: int, site: int | None = None) -> BlockSym:
    """The one statement of a call instance: its results over the words below the arguments and return address.
    `site`: the pc of the JUMP into the function, what the call (and its jump on to the return address) maps to."""
    n, m = callee.args, callee.results
    stmt = Stmt(0 if m else None, "icall", [("f", callee.fid)] + [("p", n - 1 - i) for i in range(n)], m,
                (site,) if site is not None else (callee.entry,))
    term = Term("jump", ("c", ret)) if callee.returns else Term("halt")
    return BlockSym([stmt], [("t", m - 1 - j) for j in range(m)], n + 1, term, set(range(n)), {}, None,
                    stmt.pcs[0])


class _Explorer:
    def __init__(self, prog: Program, starts: list[int], stop, deadline: float, frame: tuple,
                 calls: dict[int, Callee], observe, precise: bool = False, negations: bool = False,
                 until_unclean: bool = False):
        self.prog, self.starts, self.stop, self.deadline = prog, starts, stop, deadline
        self.frame, self.calls, self.observe, self.precise = frame, calls, observe, precise
        self.negations, self.until_unclean = negations, until_unclean
        self.stacks: dict[int, set[tuple]] = {}   # precise: the stacks each block was entered with
        self.heights: dict[int, set[int]] = {}    # precise: and their lengths
        self.context_free = False   # precise: past max_nodes, new instances are context-free
        self.tested: dict[int, int | None] = {}   # precise: block -> the entry slot its jumpi tests (tested_slot)
        self.nodes: list[tuple[int, tuple | None]] = []
        self.key2id: dict = {}
        self.work: list[int] = []
        self.allowed: set[int] | None = None   # the path-rule block set, computed on first need
        self.partial = False
        self.call_syms: dict[int, BlockSym] = {}
        self.by_fid: dict[int, Callee] = {}
        self.returns: set[int] = set()
        self.clean = True
        self.lost = False

    def run(self, max_nodes: int) -> Graph:
        edges: dict[int, Edges] = {}
        for b in self.starts:
            if b in self.prog.blocks:
                self.instance(b, self.frame)
        while self.work:
            if self.until_unclean and (not self.clean or self.lost):
                break
            if len(self.nodes) > max_nodes and not self.context_free:
                self.partial = True
                if not self.precise:
                    break
                self.context_free = True   # level 2: the rest context-free, so every reachable block is still lifted
            if clock() >= self.deadline:
                raise TimeoutError
            nid = self.work.pop()
            if self.until_unclean and self.nodes[nid][1] is None:
                continue   # context-free (partial already): it reaches no return and touches no tracked stack
            edges[nid] = self.edges(*self.nodes[nid])
        return Graph(self.nodes, [edges.get(n, Edges("halt", [])) for n in range(len(self.nodes))], self.partial,
                     self.call_syms, self.returns, self.clean)

    def instance(self, bid: int, st: tuple | None) -> int:
        key = (bid, st)
        nid = self.key2id.get(key)   # (looked up once: a stack's hash is not cached and stacks are long)
        if nid is not None:
            return nid
        if self.precise and st is not None and bid >= 0 and (self.context_free or self.grows(bid, st)):
            self.partial = True   # recursion, or too many instances: one context-free instance per block from here
            key = (bid, None)
            nid = self.key2id.get(key)
        if nid is None:
            nid = self.key2id[key] = len(self.nodes)
            self.nodes.append(key)
            self.work.append(nid)
        return nid

    def grows(self, bid: int, st: tuple) -> bool:
        """`bid` entered with the same frame, holding a return address, pushed REPEATS times over an earlier stack
        of it (stack = frame + frame + frame + earlier stack): the frames of a recursive call. Optimized code shares
        call sites between functions, so a block can be entered twice with one frame repeated without recursion."""
        seen = self.stacks.setdefault(bid, set())
        lengths = self.heights.setdefault(bid, set())
        seen.add(st)
        lengths.add(len(st))
        if len(seen) < REPEATS:
            return False
        n = len(st)
        for old_len in lengths:   # a frame is what st has over an earlier stack
            k = n - old_len
            if k <= 0 or REPEATS * k > n:
                continue
            frame = st[:k]
            if any(v is not None and v >= 0 for v in frame) and st[k:] in seen and st[REPEATS * k:] in seen \
                    and all(st[i * k:(i + 1) * k] == frame for i in range(1, REPEATS)):
                return True
        return False

    def dest(self, o: Operand, st: tuple | None) -> int | None:
        """The jump destination an operand holds on a tracked stack, else None."""
        if st is None:
            return None
        tag = o[0]
        if tag == "p":
            v = st[o[1]] if o[1] < len(st) else None
            return None if v == ZERO or v == NONZERO else v
        if tag == "c":
            return o[1] if self.prog.is_jumpdest(o[1]) else None
        return None

    def exit_stack(self, sb: BlockSym, st: tuple | None) -> tuple | None:
        """The block's own top values over the untouched rest of the entry stack; None once context is lost."""
        if st is None:
            return None
        h_out = len(st) - sb.consumed + len(sb.exit_top)
        if sb.consumed > len(st) and self.frame:
            self.clean = False                    # an internal function touching its caller's stack
        rest = st[sb.consumed:]
        if ZERO in rest or NONZERO in rest:       # a settled word's mark ends at the block it was made for
            rest = tuple(None if v in TRUTHS else v for v in rest)
        dest = self.dest
        ex = tuple([dest(o, st) for o in sb.exit_top]) + rest if h_out >= 0 else ()
        if h_out > MAX_TRACKED_SLOTS or (not self.precise and _recursive(ex)):
            self.partial = True
            return None
        return ex

    def edges(self, bid: int, st: tuple | None) -> Edges:
        if bid < 0:   # a call instance: on to the return address, the callee's results on top
            callee = self.by_fid[-bid]
            if not callee.returns:
                return Edges("halt", [])
            after = (None,) * callee.results + st[callee.args + 1:]
            return Edges("jump", [self.instance(st[callee.args], after)])
        prog, sb = self.prog, self.prog.sym(bid)
        ex = self.exit_stack(sb, st)
        bt, kind = prog.blocks[bid].btype, prog.kind(bid)
        if sb.term.kind == "halt" or kind == "Terminate":
            return Edges("halt", [])
        if kind in ("Jump", "Jumpi"):
            trues = [bt.to] if kind == "Jump" else [bt.true_to]
            false = bt.false_to if kind == "Jumpi" else None
        else:
            tv = self.dest(sb.term.target, st) if sb.term.kind in ("jump", "jumpi") else None
            if tv is None and st is not None:
                self.lost = True   # a tracked stack without the target: no exploration of this frame resolves it
                if self.until_unclean:   # rejected: evmole's targets (the path rule over the unit) are not needed
                    self.partial = True
                    return Edges("halt", [])
            trues = [tv] if tv is not None else self.evmole_targets(bt, kind)
            false = bt.false_to if kind == "DynamicJumpi" else None
        if RET in trues:
            return self.ret(sb, ex)
        if self.precise and sb.term.kind == "jumpi":
            known = self.truth_in(sb, st)
            if known is not None:   # the path settles the test: one side, a plain jump
                side = trues if known == NONZERO else [false] if false is not None else []
                return Edges("jump", [self.instance(t, self.into(sb, st, ex, t, None)) for t in side
                                      if t in prog.blocks and t not in self.stop])
        if sb.term.kind == "jump" and len(trues) == 1 and ex is not None:
            if self.observe is not None:
                for k, r in enumerate(ex[:32]):
                    if r is not None and r != RET and r != trues[0]:
                        self.observe(trues[0], k, r)
            call = self.call(trues[0], ex, sb.last_pc)
            if call is not None:
                return Edges("jump", [call])
        cond = sb.term.kind == "jumpi"
        tn = [self.instance(t, self.into(sb, st, ex, t, True if cond else None)) for t in trues
              if t in prog.blocks and t not in self.stop]
        fn = self.instance(false, self.into(sb, st, ex, false, False)) \
            if false is not None and false in prog.blocks and false not in self.stop else None
        return Edges("jumpi" if cond else "jump", tn, fn)

    def truth_in(self, sb: BlockSym, st: tuple | None) -> int | None:
        """ZERO/NONZERO when the entry stack says what this block's conditional jump tests (an entry word or, with
        `negations`, the ISZERO of one), else None."""
        slot = _tested(sb, self.negations)
        if st is None or slot is None or slot[0] >= len(st) or st[slot[0]] not in TRUTHS:
            return None
        truth = st[slot[0]]
        return truth if not slot[1] else ZERO if truth == NONZERO else NONZERO

    def into(self, sb: BlockSym, st: tuple | None, ex: tuple | None, t: int, taken: bool | None) -> tuple | None:
        """The stack a successor `t` is entered with: `ex`, with the word t's own conditional jump tests marked
        ZERO/NONZERO when this edge settles it (level 2: `precise`)."""
        if not self.precise or ex is None:
            return ex
        j = self.tested_slot(t)
        if j is None or j >= len(ex):
            return ex
        truth = _truth(sb, st, sb.exit(j), taken)
        return ex if truth is None else ex[:j] + (truth,) + ex[j + 1:]

    def tested_slot(self, t: int) -> int | None:
        """The entry slot block t's conditional jump tests unchanged (None: it tests a computed word, or no jumpi)."""
        if t not in self.tested:
            slot = _tested(self.prog.sym(t), self.negations) if t in self.prog.blocks else None
            self.tested[t] = slot[0] if slot is not None else None
        return self.tested[t]

    def ret(self, sb: BlockSym, ex: tuple | None) -> Edges:
        """A jump to the unit's own return address: the words left above the caller's are the results."""
        if sb.term.kind != "jump" or ex is None or RET in ex:
            self.clean = False   # a conditional return, or the return address left behind
            return Edges("halt", [])
        self.returns.add(len(ex))
        return Edges("ret", [])

    def call(self, target: int, ex: tuple, site: int | None) -> int | None:
        """The call instance of a plain jump into a known internal function with a return address below its
        arguments; None for any other jump."""
        callee = self.calls.get(target)
        if callee is None or len(ex) <= callee.args:
            return None
        ret = ex[callee.args]
        if ret is None or ret == RET or ret not in self.prog.blocks:
            return None
        self.by_fid[callee.fid] = callee
        nid = self.instance(-callee.fid, ex)
        if nid not in self.call_syms:
            self.call_syms[nid] = call_block(callee, ret, site)
        return nid

    def evmole_targets(self, bt, kind: str) -> list[int]:
        """A destination not tracked on our stack: evmole's targets inside the path-rule set, and say so."""
        if self.allowed is None:
            self.allowed = set(self.prog.block_set(list(self.starts), stop=self.stop, deadline=self.deadline))
        dyn = bt.to if kind == "DynamicJump" else bt.true_to
        self.partial = True
        return sorted({d.to for d in dyn if d.to is not None and d.to in self.allowed
                       and d.path and d.path[-1] in self.allowed})


def _tested(sb: BlockSym, negations: bool) -> tuple[int, bool] | None:
    """(entry slot, negated) when the block's conditional jump tests an entry word unchanged or (`negations`) its
    ISZERO."""
    c = sb.term.cond
    if c is None:
        return None
    if c[0] == "p":
        return c[1], False
    if negations and c[0] == "t":
        s = next((x for x in sb.stmts if x.dest == c[1]), None)
        if s is not None and s.op == "ISZERO" and s.args[0][0] == "p":
            return s.args[0][1], True
    return None


def _truth(sb: BlockSym, st: tuple | None, o: Operand, taken: bool | None) -> int | None:
    """What the edge out of `sb` (its conditional jump `taken` or not; None for a plain jump) knows of operand `o`:
    a constant, a word the entry stack already marks, or the word the jump tested (or the ISZERO of it)."""
    if o[0] == "c":
        return NONZERO if o[1] else ZERO
    if o[0] == "p" and st is not None and o[1] < len(st) and st[o[1]] in TRUTHS:
        return st[o[1]]
    if taken is None:
        return None
    c = sb.term.cond
    if o == c:
        return NONZERO if taken else ZERO
    if c is not None and c[0] == "t":
        s = next((x for x in sb.stmts if x.dest == c[1]), None)
        if s is not None and s.op == "ISZERO" and s.args[0] == o:
            return ZERO if taken else NONZERO
    return None


def _recursive(st: tuple) -> bool:
    seen: dict[int, int] = {}
    for v in st:
        if v is not None and v not in TRUTHS:
            seen[v] = seen.get(v, 0) + 1
            if seen[v] >= 3:
                return True
    return False
