"""Print a laid-out function as the TAC text of docs/tac-format.md, counting blocks, lines and opcode families, with
each printed line's provenance: the bytecode offsets (pcs) it maps to (docs/tac-format.md, Provenance)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .ir import CHECKED_CALLS, CHECKED_OPS, FunctionIR, Operand, Stmt, merged_pcs
from .layout import MAX_HOPS, Layout, failing_statement
from .memory import ABI_CALL_INPUT
from .values import Values
from .budget import clock

INFIX = {"ADD": "+", "MUL": "*", "SUB": "-", "DIV": "/", "MOD": "%", "EXP": "**", "LT": "<", "GT": ">",
         "EQ": "==", "AND": "&", "OR": "|", "XOR": "^"}
NAMES = {"SHA3": "keccak256", "PREVRANDAO": "prevrandao"}
LEVEL2_LOGS = {f"log{i}" for i in range(5)}   # logN(topics; data words): lowercase op, unlike the EVM's LOGN


@dataclass
class Rendered:
    tac: str
    blocks: int                       # printed blocks
    instructions: int                 # printed lines other than labels
    ops: dict[str, int]               # opcode counts over the distinct blocks used
    partial: bool
    used_blocks: set[int] = field(default_factory=set)   # evmole block ids the TAC covers
    calls: list[int] = field(default_factory=list)       # level 2: the internal functions it calls (fids), in order
    counted: set[int] = field(default_factory=set)       # the blocks `ops` counts
    line_pcs: list[tuple[int, ...]] = field(default_factory=list)   # per line of `tac`: the pcs it maps to


# a constant token of the TAC at any level: hex, or (level 3) decimal
CONST = r"(?:0x[0-9a-f]+|\d+)"


def const_text(v: int, decimal: bool = False) -> str:
    """A constant as the TAC prints it: hex; with `decimal` (level 3) one below 2**16 in decimal, as offsets, sizes,
    slots and shift counts read in Solidity (`0x20` is three Llama-3 tokens, `32` one), except an all-ones mask
    (`0x1f`, `0xff`), which reads as bits."""
    if decimal and v < 0x10000 and not (v >= 0x1F and (v + 1) & v == 0):
        return str(v)
    return hex(v)


class _Namer:
    """v1, v2, ... in order of first appearance; constants in hex (level 3: const_text), environment values by
    name; a value level 2 inlines (FunctionIR.inlined), its expression, in parentheses when infix. The pcs of the
    inlined statements it prints go to `pcs` (the line being printed maps to them too)."""

    def __init__(self, inlined: dict[Operand, Stmt] | None = None, decimal: bool = False):
        self.names: dict[Operand, str] = {}
        self.inlined = inlined or {}
        self.decimal = decimal
        self.pcs: list[int] = []

    def infix(self, o: Operand) -> bool:
        """o prints as an infix expression (an inlined a + b), so needs parentheses inside another operator."""
        s = self.inlined.get(o)
        return s is not None and (s.op in INFIX or s.op in ("SHL", "SHR"))

    def __call__(self, o: Operand) -> str:
        s = self.inlined.get(o)
        if s is not None:
            self.pcs.extend(s.pcs)
            return expr_text(s, self)
        if o[0] == "c":
            return const_text(o[1], self.decimal)
        if o[0] == "e":
            return o[1]
        if o[0] == "a":
            return f"arg{o[1]}"
        if o[0] == "f":
            return f"f{o[1]}"
        if o[0] == "s":
            return json.dumps(o[1])
        v = self.names.get(o)
        if v is None:
            v = self.names[o] = f"v{len(self.names) + 1}"
        return v


def _level2(name: str, a: list[str], s: Stmt) -> str | None:
    """The text of a level-2 construct (docs/tac-format.md, Level 2); None for casts and EVM mnemonics."""
    if name == "field":
        return f"{a[0]}[{s.args[1][1]}:{s.args[2][1]}]"
    if name == "sload_field":
        return f"sload({a[0]})[{s.args[1][1]}:{s.args[2][1]}]"
    if name == "sstore_field":
        return f"sstore({a[0]})[{s.args[1][1]}:{s.args[2][1]}] = {a[3]}"
    if name in ("mapping", "array"):
        return f"{name}({a[0]})" + "".join(f"[{k}]" for k in a[1:])
    if name == "return_words":
        return f"return ({', '.join(a)})"
    if name == "revert_empty":
        return "revert()"
    if name == "revert_returndata":
        return "revert(returndata)"
    if name == "revert_string":
        return f"revert({a[0]})"
    if name == "return_bytes":
        return f"return bytes({a[0]})"
    if name == "returndata_bytes":
        return "bytes(returndata)"
    if name == "error_message":
        return "error_message(returndata)"
    if name == "error_message_checked":
        return "checked error_message(returndata)"
    if name == "error_message_legacy":   # solc 0.6.6: decoded at a pointer read before the call
        return f"legacy error_message(returndata, {a[0]})"
    if name.startswith("storagestring_store"):   # level 3: legacy (0.4-0.6), plain (0.7), checked (0.8.0-0.8.12),
        # masked (0.8.13+); from memory, or from a calldata argument whose length word is at a[1]
        form = name[len("storagestring_store_"):].removesuffix("calldata").strip("_")
        value = f"calldata({a[1]})" if name.endswith("_calldata") else a[1]
        return f"{form + ' ' if form else ''}storagestring({a[0]}) = {value}"
    if name == "storagestring_checked":
        return f"checked storagestring({a[0]})"
    if name == "abi_encode":
        return f"abi.encode({', '.join(a)})"
    if name == "panic" and s.args[0][0] == "c":   # the code as Solidity's documentation lists it (0x11, 0x32)
        return f"panic({s.args[0][1]:#x})"
    if name in ("revert_msg", "panic"):
        return f"{name.split('_')[0]}({a[0]})"
    if name == "revert_err":
        return f"revert {s.args[0][1]:#010x}({', '.join(a[1:])})"
    if name in ("alloc", "memory", "memory_words"):
        return f"{name}({a[0]})"
    if name == "icall":
        return f"icall {a[0]}({', '.join(a[1:])})"
    if name in CHECKED_OPS:
        return f"checked({a[0]} {INFIX[CHECKED_OPS[name]]} {a[1]})"
    if name in ABI_CALL_INPUT:   # the input: 0xsel(words)
        at = ABI_CALL_INPUT[name]
        data = f"{s.args[at][1]:#010x}({', '.join(a[at + 1:-2])})"
        return f"{name[:-4]}({', '.join(a[:at] + [data] + a[-2:])})"
    if name in CHECKED_CALLS:    # the call without its gas (all of it), with its checks (extcall.py)
        call = CHECKED_CALLS[name]
        if call in ABI_CALL_INPUT:
            at = ABI_CALL_INPUT[call] - 1
            data = f"{s.args[at][1]:#010x}({', '.join(a[at + 1:-2])})"
            return f"checked {call[:-4]}({', '.join(a[:at] + [data] + a[-2:])})"
        return f"checked {call.lower()}({', '.join(a)})"
    if name in LEVEL2_LOGS:
        k = int(name[3])
        return f"{name}({', '.join(a[:k])};{' ' if a[k:] else ''}{', '.join(a[k:])})"
    return None


def _evm(name: str, a: list[str]) -> str:
    if name in INFIX:
        return f"{a[0]} {INFIX[name]} {a[1]}"
    if name == "SHL":
        return f"{a[1]} << {a[0]}"
    if name == "SHR":
        return f"{a[1]} >> {a[0]}"
    if name == "NOT":
        return f"~{a[0]}"
    if name == "STOP" or name == "INVALID":
        return name.lower()
    return f"{NAMES.get(name, name.lower())}({', '.join(a)})"


def expr_text(s: Stmt, nm: _Namer) -> str:
    wrap = s.op in INFIX or s.op in CHECKED_OPS or s.op in ("SHL", "SHR", "NOT", "field")   # operands an infix
    # expression must not split
    a = [f"({nm(x)})" if wrap and nm.infix(x) else nm(x) for x in s.args]
    return (_level2(s.op, a, s) if s.op.islower() else None) or _evm(s.op, a)


_NEGATED = {"LT": ">=", "GT": "<=", "EQ": "!="}   # level 3's negated comparisons (require conditions)


def negated(o: Operand, nm: _Namer) -> str:
    """The text of the condition `o` is zero: a comparison negated (`a >= b` for `a < b`), the operand of an ISZERO,
    else `!o`."""
    s = nm.inlined.get(o)
    if s is not None and s.op in _NEGATED:
        nm.pcs.extend(s.pcs)
        a = [f"({nm(x)})" if nm.infix(x) else nm(x) for x in s.args]
        return f"{a[0]} {_NEGATED[s.op]} {a[1]}"
    if s is not None and s.op == "ISZERO":
        nm.pcs.extend(s.pcs)
        return nm(s.args[0])
    text = nm(o)
    return f"!({text})" if nm.infix(o) else f"!{text}"


def stmt_text(n: int, s: Stmt, nm: _Namer) -> str:
    expr = expr_text(s, nm)
    if s.dest is None:
        return expr
    return f"{', '.join(nm(('t', n, s.dest + i)) for i in range(s.ndest))} = {expr}"


class _Printer:
    def __init__(self, fn: FunctionIR, values: Values, lay: Layout, decimal: bool = False):
        self.fn, self.values, self.lay = fn, values, lay
        self.nm = _Namer(fn.inlined, decimal)
        self.out: list[str] = []
        self.line_pcs: list[tuple[int, ...]] = []
        self.n_instr = 0
        self.counts: dict[str, int] = {}
        self.seen_blocks: set[int] = set()
        self.calls: list[int] = []

    def emit(self, text: str, pcs: tuple[int, ...] | set[int]) -> None:
        """One line, mapped to `pcs` (a sorted tuple, or a set) and to the inlined statements its text printed
        (collected by the namer)."""
        self.out.append(text)
        if self.nm.pcs:
            self.line_pcs.append(merged_pcs(pcs, self.nm.pcs))
            self.nm.pcs = []
        else:   # most lines: a statement's own tuple, shared, not copied
            self.line_pcs.append(pcs if isinstance(pcs, tuple) else tuple(sorted(pcs)))

    def count_block(self, n: int) -> None:
        """Opcode counts per distinct block, not per instance."""
        bid = self.fn.block_of(n)
        if bid not in self.seen_blocks:
            self.seen_blocks.add(bid)
            for k, v in self.fn.syms[n].counts.items():
                self.counts[k] = self.counts.get(k, 0) + v

    def hops(self, n: int, t: int, pcs: set[int]) -> list[tuple[int, int]]:
        """The edges of the jump n -> t through the forwarding instances layout skips (Layout.hops), and their pcs
        added to `pcs`: on each hop the JUMP/JUMPI that takes it, or the JUMPDEST a block falls into."""
        hops = self.lay.hops(self.fn, n, t)
        for m, x in hops:
            sb = self.fn.syms[m]
            if sb.term.kind == "fall" and self.fn.block_of(x) >= 0:
                pcs.add(self.fn.block_of(x))
            elif sb.last_pc is not None:
                pcs.add(sb.last_pc)
        return hops

    def target(self, n: int, t: int, pcs: set[int]) -> str:
        hops = self.hops(n, t, pcs)
        n, t = hops[-1]
        if t in self.lay.alias:
            return self.lay.label[self.lay.alias[t]]
        a = self.values.edge_args(n, t)
        if a and len(hops) > 1:
            a = self.through(hops, a)
        return self.lay.label[t] + (f"({', '.join(self.nm(x) for x in a)})" if a else "")

    def through(self, hops: list[tuple[int, int]], args: list) -> list:
        """The arguments of a jump threaded past forwarding instances that declare parameters (level 3): each
        such parameter stands for what the jump into that instance passes."""
        passed = {}
        for m, x in hops[:-1]:
            if x not in self.fn.single:
                passed.update(zip(self.values.params(x), self.values.edge_args(m, x)))
        out = []
        for a in args:
            for _ in range(len(hops)):
                if a not in passed:
                    break
                a = passed[a]
            out.append(a)
        return out

    def head(self, h: int) -> None:
        params = [] if h in self.fn.single else self.values.params(h)
        bid = self.fn.block_of(h)   # a block's label maps to its first instruction; a call instance's to the call
        pcs = (bid,) if bid >= 0 else self.fn.syms[h].stmts[0].pcs
        self.emit(self.lay.label[h] + (f"({', '.join(self.nm(p) for p in params)})" if params else "") + ":", pcs)

    def block(self, h: int) -> None:
        """One printed block: its instance, then the merged instances it flows into, then the jump."""
        n = h
        while True:
            self.count_block(n)
            for k, s in enumerate(self.fn.body[n]):
                if self.fn.live[n][k] and ("t", n, s.dest) not in self.fn.inlined:
                    self.emit("  " + stmt_text(n, s, self.nm), s.pcs)
                    self.n_instr += 1
                    if s.op == "icall":
                        self.calls.append(s.args[0][1])
            t = self.fn.graph.edges[n].plain_jump
            if t is not None:
                _, t = self.lay.final(self.fn, n, t)
                if t in self.lay.merged:
                    n = t
                    continue
            if n in self.lay.checks:
                t = self.check(n, *self.lay.checks[n])
                if t is not None:
                    n = t
                    continue
                return
            break
        self.jump(n)

    def jump_pcs(self, n: int, own: bool = True) -> set[int]:
        """The pcs a line printing instance n's jump maps to: what level 2 folded into it, and (own) its JUMP/JUMPI."""
        pcs = set(self.fn.jump_pcs.get(n, ()))
        if own and self.fn.syms[n].last_pc is not None:
            pcs.add(self.fn.syms[n].last_pc)
        return pcs

    def check(self, n: int, on_true: bool, fail: int, cont: int) -> int | None:
        """Level 3: `require(c)` for a conditional jump whose `fail` side only fails (`require(c) else <halt>`
        unless that is an empty revert; `!c` when the true side fails), then the continuation: the instance it
        merges into (returned), or a `goto` (None)."""
        fn = self.fn
        pcs = self.jump_pcs(n)
        self.hops(n, fail, pcs)
        _, f = self.lay.final(fn, n, fail)
        self.count_block(f)
        s = failing_statement(fn, f)
        pcs.update(s.pcs)
        if fn.block_of(f) >= 0:
            pcs.add(fn.block_of(f))
        c = self.values.condition(n)
        cond = negated(c, self.nm) if on_true else self.nm(c)
        if s.op == "revert_empty":
            text = f"require({cond})"
        elif s.op == "revert_msg":   # Solidity's own form: require(c, "message")
            text = f"require({cond}, {self.nm(s.args[0])})"
        else:
            text = f"require({cond}) else {stmt_text(f, s, self.nm)}"
        self.emit("  " + text, pcs)
        self.n_instr += 1
        _, t = self.lay.final(fn, n, cont)
        if t in self.lay.merged:
            return t
        jpcs = self.jump_pcs(n)
        self.emit(f"  goto {self.target(n, cont, jpcs)}", jpcs)
        self.n_instr += 1
        return None

    def jump(self, n: int) -> None:
        edges, term = self.fn.graph.edges[n], self.fn.syms[n].term
        pcs = self.jump_pcs(n, own=term.kind != "fall" or not edges.trues)   # a fall maps to the JUMPDEST (hops)
        if edges.kind == "ret":
            self.emit(f"  ret({', '.join(self.nm(x) for x in self.values.results(n))})", pcs)
            self.n_instr += 1
            return
        if edges.kind == "halt":
            if term.kind != "halt" and n not in self.fn.halts:   # jump into nowhere (stop set / unknown): say so
                self.emit("  goto ?", pcs)
            return
        tn = edges.trues
        if len(tn) == 1:
            tt = self.target(n, tn[0], pcs)
        elif tn:
            tt = f"{self.nm(self.values.resolve(n, term.target))} [{', '.join(self.target(n, t, pcs) for t in tn)}]"
        else:
            tt = "?"
        if edges.kind == "jumpi":
            fn = edges.false
            cond = self.nm(self.values.condition(n))
            self.emit(f"  if {cond} goto {tt} else {self.target(n, fn, pcs) if fn is not None else '?'}", pcs)
        else:
            self.emit(f"  goto {tt}", pcs)
        self.n_instr += 1


def emit(fn: FunctionIR, values: Values, lay: Layout, header: str, deadline: float,
         header_pcs: tuple[int, ...] = (), decimal: bool = False) -> Rendered:
    """The function's text and counts; the header maps to `header_pcs` and what level 2 folded into it. `decimal`
    (level 3): small constants in decimal (const_text)."""
    p = _Printer(fn, values, lay, decimal)
    p.emit(header, merged_pcs(header_pcs, fn.header_pcs))
    n_blocks = 0
    for h in lay.heads:
        if clock() >= deadline:
            raise TimeoutError
        if h in lay.alias:
            continue
        p.head(h)
        n_blocks += 1
        p.block(h)
    for n in (*lay.forward, *fn.absorbed):   # forwarded and folded blocks still count towards their opcode families
        p.count_block(n)
    return Rendered("\n".join(p.out), n_blocks, p.n_instr, p.counts, fn.graph.partial,
                    {fn.block_of(n) for n in fn.ids if fn.block_of(n) >= 0}, list(dict.fromkeys(p.calls)),
                    {b for b in p.seen_blocks if b >= 0}, p.line_pcs)
