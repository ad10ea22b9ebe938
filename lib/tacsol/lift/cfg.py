"""The contract as evmole sees it: instructions, basic blocks and their successors, block sets reachable from
entries by the path rule, and the constant stack the dispatcher leaves at each block."""
from __future__ import annotations


from ..evm import Instr, disassemble
from .block import sym_block
from .ir import BlockSym
from .budget import clock


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
