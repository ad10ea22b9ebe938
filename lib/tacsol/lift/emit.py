"""Print a laid-out function as the TAC text of docs/tac-format.md, counting blocks, lines and opcode families."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .ir import FunctionIR, Operand, Stmt
from .layout import Layout
from .values import Values

INFIX = {"ADD": "+", "MUL": "*", "SUB": "-", "DIV": "/", "MOD": "%", "EXP": "**", "LT": "<", "GT": ">",
         "EQ": "==", "AND": "&", "OR": "|", "XOR": "^"}
NAMES = {"SHA3": "keccak256", "PREVRANDAO": "prevrandao"}


@dataclass
class Rendered:
    tac: str
    blocks: int                       # printed blocks
    instructions: int                 # printed lines other than labels
    ops: dict[str, int]               # opcode counts over the distinct blocks used
    partial: bool
    used_blocks: set[int] = field(default_factory=set)   # evmole block ids the TAC covers


class _Namer:
    """v1, v2, ... in order of first appearance; constants in hex, environment values by name."""

    def __init__(self):
        self.names: dict[Operand, str] = {}

    def __call__(self, o: Operand) -> str:
        if o[0] == "c":
            return hex(o[1])
        if o[0] == "e":
            return o[1]
        v = self.names.get(o)
        if v is None:
            v = self.names[o] = f"v{len(self.names) + 1}"
        return v


def stmt_text(n: int, s: Stmt, nm: _Namer) -> str:
    a = [nm(x) for x in s.args]
    name = s.op
    if name in INFIX:
        expr = f"{a[0]} {INFIX[name]} {a[1]}"
    elif name == "SHL":
        expr = f"{a[1]} << {a[0]}"
    elif name == "SHR":
        expr = f"{a[1]} >> {a[0]}"
    elif name == "NOT":
        expr = f"~{a[0]}"
    elif name == "STOP" or name == "INVALID":
        expr = name.lower()
    else:
        expr = f"{NAMES.get(name, name.lower())}({', '.join(a)})"
    return f"{nm(('t', n, s.dest))} = {expr}" if s.dest is not None else expr


class _Printer:
    def __init__(self, fn: FunctionIR, values: Values, lay: Layout):
        self.fn, self.values, self.lay = fn, values, lay
        self.nm = _Namer()
        self.out: list[str] = []
        self.n_instr = 0
        self.counts: dict[str, int] = {}
        self.seen_blocks: set[int] = set()

    def count_block(self, n: int) -> None:
        """Opcode counts per distinct block, not per instance."""
        bid = self.fn.block_of(n)
        if bid not in self.seen_blocks:
            self.seen_blocks.add(bid)
            for k, v in self.fn.syms[n].counts.items():
                self.counts[k] = self.counts.get(k, 0) + v

    def target(self, n: int, t: int) -> str:
        n, t = self.lay.final(self.fn, n, t)
        if t in self.lay.alias:
            return self.lay.label[self.lay.alias[t]]
        a = self.values.edge_args(n, t)
        return self.lay.label[t] + (f"({', '.join(self.nm(x) for x in a)})" if a else "")

    def head(self, h: int) -> None:
        params = [] if h in self.fn.single else self.values.params(h)
        self.out.append(self.lay.label[h] + (f"({', '.join(self.nm(p) for p in params)})" if params else "") + ":")

    def block(self, h: int) -> None:
        """One printed block: its instance, then the merged instances it flows into, then the jump."""
        n = h
        while True:
            self.count_block(n)
            for k, s in enumerate(self.fn.body[n]):
                if self.fn.live[n][k]:
                    self.out.append("  " + stmt_text(n, s, self.nm))
                    self.n_instr += 1
            t = self.fn.graph.edges[n].plain_jump
            if t is not None:
                _, t = self.lay.final(self.fn, n, t)
                if t in self.lay.merged:
                    n = t
                    continue
            break
        self.jump(n)

    def jump(self, n: int) -> None:
        edges, term = self.fn.graph.edges[n], self.fn.syms[n].term
        if edges.kind == "halt":
            if term.kind != "halt":   # jump into nowhere (stop set / unknown): keep the fact visible
                self.out.append("  goto ?")
            return
        tn = edges.trues
        if len(tn) == 1:
            tt = self.target(n, tn[0])
        elif tn:
            tt = f"{self.nm(self.values.resolve(n, term.target))} [{', '.join(self.target(n, t) for t in tn)}]"
        else:
            tt = "?"
        if edges.kind == "jumpi":
            fn = edges.false
            cond = self.nm(self.values.resolve(n, term.cond))
            self.out.append(f"  if {cond} goto {tt} else {self.target(n, fn) if fn is not None else '?'}")
        else:
            self.out.append(f"  goto {tt}")
        self.n_instr += 1


def emit(fn: FunctionIR, values: Values, lay: Layout, header: str, deadline: float) -> Rendered:
    p = _Printer(fn, values, lay)
    p.out.append(header)
    n_blocks = 0
    for h in lay.heads:
        if time.monotonic() > deadline:
            raise TimeoutError
        if h in lay.alias:
            continue
        p.head(h)
        n_blocks += 1
        p.block(h)
    for n in lay.forward:   # forwarded blocks still count towards the opcode families they contain
        p.count_block(n)
    return Rendered("\n".join(p.out), n_blocks, p.n_instr, p.counts, fn.graph.partial,
                    {fn.block_of(n) for n in fn.ids})
