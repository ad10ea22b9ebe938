"""The contract as evmole sees it: instructions, basic blocks and their successors, block sets reachable from
entries by the path rule, and the constant stack the dispatcher leaves at each block."""
from __future__ import annotations


from dataclasses import dataclass

import evmole

from ..evm import OPCODES, TERMINATORS, Instr, disassemble
from .block import sym_block
from .ir import BlockSym
from .budget import clock

JUMPDEST = 0x5B
MAX_OFFSET = 1 << 64   # evmole's block offsets are 64-bit: a larger constant target is no offset of any code


@dataclass(frozen=True)
class FoundBlock:
    """A block evmole's graph leaves out (Program.discover), with evmole's Block fields."""
    id: int
    start: int
    end: int
    btype: object


class Program:
    def __init__(self, raw: bytes, code_end: int, info):
        self.raw = raw
        self.instrs = disassemble(raw, code_end)
        self.index = {ins.pc: k for k, ins in enumerate(self.instrs)}
        self.blocks = {b.id: b for b in info.control_flow_graph.blocks}
        self.entries = {f.bytecode_offset for f in (info.functions or [])}
        self.sym_cache: dict[int, BlockSym] = {}
        self.entry_stack: dict[int, tuple] = {}
        self._branches_to: dict[int, list[int]] | None = None

    def discover(self) -> int:
        """Level 3: make blocks of the code evmole's graph leaves out, a run from each JUMPDEST no block covers to
        its jump or halt (or to the next JUMPDEST, falling through). evmole stops following a path past its own
        limits, so the continuation an internal function returns to can be missing (VRFCoordinatorTestV2's
        fulfillRandomWords: the return address 0x378a, pushed as a constant, jumped to as nowhere, the function
        partial). A found block's jump to a constant is a Jump (Jumpi), any other a DynamicJump with no targets
        (only a tracked stack resolves it). Returns how many blocks were added."""
        covered: set[int] = set()
        for blk in self.blocks.values():
            lo, hi = self.index.get(blk.start), self.index.get(blk.end)
            if lo is not None and hi is not None:
                covered.update(ins.pc for ins in self.instrs[lo:hi + 1])
        added = 0
        for k, ins in enumerate(self.instrs):
            if ins.op != JUMPDEST or ins.pc in covered or ins.pc in self.blocks:
                continue
            j = k   # the run: to its jump or halt, or to the instruction before the next JUMPDEST or block
            while not _ends_block(self.instrs[j]) and j + 1 < len(self.instrs) and \
                    self.instrs[j + 1].op != JUMPDEST and self.instrs[j + 1].pc not in self.blocks:
                j += 1
            nxt = self.instrs[j + 1] if j + 1 < len(self.instrs) else None
            sb = sym_block(self.instrs[k:j + 1])
            self.blocks[ins.pc] = FoundBlock(ins.pc, ins.pc, self.instrs[j].pc, _block_type(sb, nxt))
            self.sym_cache[ins.pc] = sb
            added += 1
        return added

    def branches_to(self, target: int) -> list[int]:
        """The blocks whose conditional jump (evmole's Jumpi: a constant destination) has `target` as a side."""
        if self._branches_to is None:
            self._branches_to = {}
            for bid, blk in self.blocks.items():
                if type(blk.btype).__name__ == "Jumpi":
                    for t in {blk.btype.true_to, blk.btype.false_to}:
                        self._branches_to.setdefault(t, []).append(bid)
        return self._branches_to.get(target, [])

    def block_instrs(self, bid: int) -> list[Instr]:
        blk = self.blocks[bid]
        lo, hi = self.index.get(blk.start), self.index.get(blk.end)
        return self.instrs[lo:hi + 1] if lo is not None and hi is not None else []

    def sym(self, bid: int) -> BlockSym:
        s = self.sym_cache.get(bid)
        if s is None:
            s = self.sym_cache[bid] = sym_block(self.block_instrs(bid))
        return s

    def kind(self, bid: int) -> str:
        """evmole's block type: Jump, Jumpi, DynamicJump, DynamicJumpi, Terminate."""
        return type(self.blocks[bid].btype).__name__

    def is_jumpdest(self, v: int) -> bool:
        return v in self.blocks and v < len(self.raw) and self.raw[v] == 0x5B

    def succs(self, bid: int, in_set) -> list[int]:
        """Successors; a dynamic target counts only when the block that pushed it (path[-1]) is in `in_set`."""
        bt = self.blocks[bid].btype
        kind = self.kind(bid)
        if kind == "Jump":
            return [bt.to]
        if kind == "Jumpi":
            return [bt.true_to, bt.false_to]
        if kind in ("DynamicJump", "DynamicJumpi"):
            dyn = bt.to if kind == "DynamicJump" else bt.true_to
            out = []
            for d in dyn:
                if d.to is not None and d.path and d.path[-1] in in_set and d.to not in out:
                    out.append(d.to)
            if kind == "DynamicJumpi":
                out.append(bt.false_to)
            return out
        return []

    def block_set(self, starts: list[int], stop: set[int] = frozenset(), deadline: float = float("inf")) -> list[int]:
        """Blocks reachable from `starts`; a dynamic target is followed only when the block that pushed the return
        address (path[-1]) is already in the set; repeated to a fixed point (docs/references.md, Offline assets)."""
        seen: set[int] = set(starts)
        order = list(starts)
        changed = True
        while changed:
            changed = False
            work = list(order)
            while work:
                b = work.pop()
                for t in self.succs(b, seen):
                    if t not in seen and t not in stop and t in self.blocks:
                        seen.add(t)
                        order.append(t)
                        work.append(t)
                        changed = True
            if clock() >= deadline:
                raise TimeoutError
        return order

    def dispatcher_stacks(self, deadline: float) -> None:
        """Constant stack contents on entry to each block reachable from offset 0 up to the public-function entries
        (e.g. viaIR keeps the free-memory pointer 0x80 on the stack for every function)."""
        if 0 not in self.blocks:
            return
        state: dict[int, tuple] = {0: ()}
        work = [0]
        steps = 0
        while work and steps < 20000:
            steps += 1
            b = work.pop()
            if b in self.entries and b != 0:
                continue
            ex = _constant_exit(self.sym(b), state[b])
            for t in self.succs(b, state):
                if t not in self.blocks:
                    continue
                old = state.get(t)
                new = ex if old is None else tuple(x if x == y else None for x, y in zip(old, ex))
                if new != old:
                    state[t] = new
                    work.append(t)
            if clock() >= deadline:
                raise TimeoutError
        self.entry_stack = state


def _constant(sb: BlockSym, o, depth: int = 0) -> int | None:
    """The constant an operand of the block holds, folding its pure statements (solc 0.8 without the optimizer
    masks a jump target: `and(tag, 0xffffffff)`, which evmole's Jump resolves too), else None."""
    from .simplify import fold   # simplify needs values, which needs this module

    if o[0] == "c":
        return o[1]
    if o[0] != "t" or depth > 8:
        return None
    s = next((x for x in sb.stmts if x.dest == o[1]), None)
    if s is None:
        return None
    args = [_constant(sb, a, depth + 1) for a in s.args]
    return fold(s.op, args) if None not in args else None


def _ends_block(ins: Instr) -> bool:
    op = OPCODES.get(ins.op)
    return op is None or op.name in TERMINATORS


def _block_type(sb: BlockSym, nxt: Instr | None):
    """evmole's BlockType of a found block whose symbolic form is `sb`, `nxt` the instruction after it."""
    kinds = evmole.BlockType
    t = sb.term
    if t.kind in ("jump", "jumpi"):
        to = _constant(sb, t.target)
        if to is not None and to >= MAX_OFFSET:   # as evmole does with such a target: a dynamic jump
            to = None
        if t.kind == "jump":
            return kinds.Jump(to=to) if to is not None else kinds.DynamicJump(to=[])
        if nxt is None:   # a JUMPI that ends the code (evmole: a block that fails)
            return kinds.Terminate(success=False)
        return kinds.Jumpi(true_to=to, false_to=nxt.pc) if to is not None else \
            kinds.DynamicJumpi(true_to=[], false_to=nxt.pc)
    if t.kind == "fall" and nxt is not None:
        return kinds.Jump(to=nxt.pc)
    return kinds.Terminate(success=bool(sb.stmts) and sb.stmts[-1].op in ("STOP", "RETURN", "SELFDESTRUCT"))


def _constant_exit(sb: BlockSym, st: tuple) -> tuple:
    """The constants (None where unknown) on the top 32 stack slots when a block entered with `st` exits."""
    def cv(o):
        if o[0] == "c":
            return o[1]
        if o[0] == "p":
            return st[o[1]] if o[1] < len(st) else None
        return None

    h = min(32, len(st) - sb.consumed + len(sb.exit_top))
    return tuple(cv(sb.exit(j)) for j in range(max(h, 0)))
