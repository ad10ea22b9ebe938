"""Context-sensitive block instances of one function: internal calls and returns resolved by tracking return
addresses on the stack."""
from __future__ import annotations

import time

from .cfg import Program
from .ir import BlockSym, Edges, Graph, Operand

MAX_NODES = 1000
MAX_TRACKED_SLOTS = 128


def explore(prog: Program, starts: list[int], stop=frozenset(), deadline: float = float("inf"),
            max_nodes: int = MAX_NODES) -> Graph:
    """Walk blocks from `starts`, tracking which stack slots hold jump-destination constants. A block reached with a
    different stack of return addresses (another call site of an internal function) becomes another instance, so
    every internal return resolves to its caller's continuation; a loop re-enters the same instance. Recursion (a
    return address on the stack 3 times, or more than 128 tracked slots) switches to one context-free instance per
    block (stack None) whose dynamic jumps take evmole's targets restricted to this function's path-rule block set;
    such TAC is marked partial."""
    return _Explorer(prog, starts, stop, deadline).run(max_nodes)


class _Explorer:
    def __init__(self, prog: Program, starts: list[int], stop, deadline: float):
        self.prog, self.starts, self.stop, self.deadline = prog, starts, stop, deadline
        self.nodes: list[tuple[int, tuple | None]] = []
        self.key2id: dict = {}
        self.work: list[int] = []
        self.allowed: set[int] | None = None   # the path-rule block set, computed on first need
        self.partial = False

    def run(self, max_nodes: int) -> Graph:
        edges: dict[int, Edges] = {}
        for b in self.starts:
            if b in self.prog.blocks:
                self.instance(b, ())
        while self.work:
            if len(self.nodes) > max_nodes:
                self.partial = True
                break
            if time.monotonic() > self.deadline:
                raise TimeoutError
            nid = self.work.pop()
            edges[nid] = self.edges(*self.nodes[nid])
        return Graph(self.nodes, [edges.get(n, Edges("halt", [])) for n in range(len(self.nodes))], self.partial)

    def instance(self, bid: int, st: tuple | None) -> int:
        key = (bid, st)
        nid = self.key2id.get(key)
        if nid is None:
            nid = self.key2id[key] = len(self.nodes)
            self.nodes.append(key)
            self.work.append(nid)
        return nid

    def dest(self, o: Operand, st: tuple | None) -> int | None:
        """The jump destination an operand holds on a tracked stack, else None."""
        if st is None:
            return None
        if o[0] == "c":
            return o[1] if self.prog.is_jumpdest(o[1]) else None
        if o[0] == "p":
            return st[o[1]] if o[1] < len(st) else None
        return None

    def exit_stack(self, sb: BlockSym, st: tuple | None) -> tuple | None:
        """The block's own top values over the untouched rest of the entry stack; None once context is lost."""
        if st is None:
            return None
        h_out = len(st) - sb.consumed + len(sb.exit_top)
        ex = tuple(self.dest(o, st) for o in sb.exit_top) + st[sb.consumed:] if h_out >= 0 else ()
        if h_out > MAX_TRACKED_SLOTS or _recursive(ex):
            self.partial = True
            return None
        return ex

    def edges(self, bid: int, st: tuple | None) -> Edges:
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
            trues = [tv] if tv is not None else self.evmole_targets(bt, kind)
            false = bt.false_to if kind == "DynamicJumpi" else None
        tn = [self.instance(t, ex) for t in trues if t in prog.blocks and t not in self.stop]
        fn = self.instance(false, ex) if false is not None and false in prog.blocks and false not in self.stop else None
        return Edges("jumpi" if sb.term.kind == "jumpi" else "jump", tn, fn)

    def evmole_targets(self, bt, kind: str) -> list[int]:
        """A destination not tracked on our stack: evmole's targets inside the path-rule set, and say so."""
        if self.allowed is None:
            self.allowed = set(self.prog.block_set(list(self.starts), stop=self.stop, deadline=self.deadline))
        dyn = bt.to if kind == "DynamicJump" else bt.true_to
        self.partial = True
        return sorted({d.to for d in dyn if d.to is not None and d.to in self.allowed
                       and d.path and d.path[-1] in self.allowed})


def _recursive(st: tuple) -> bool:
    seen: dict[int, int] = {}
    for v in st:
        if v is not None:
            seen[v] = seen.get(v, 0) + 1
            if seen[v] >= 3:
                return True
    return False
