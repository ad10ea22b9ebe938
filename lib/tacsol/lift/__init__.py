"""EVM runtime bytecode → three-address code (TAC) per public function, fallback and receive.

evmole supplies selectors, argument types, mutability, the metadata boundary and the control-flow graph (with
dynamic jump targets and the call path that produced each). Everything else is ours: the per-function block sets,
a symbolic stack per basic block (named temporaries, Yellow-Paper operand order), block parameters where the
stack flows in from several predecessors (so internal-function returns and loops are resolved by tracking the
stack, never by the nearest PUSH), dead-code removal and the rendering documented in docs/tac-format.md."""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..evm import OPCODES, Instr, disassemble

__all__ = ["lift", "LiftError", "LiftedContract", "LiftedFunction", "build_parser", "main"]


class LiftError(ValueError):
    """Bytecode that cannot be lifted; `.reason` is a short machine key for rejects files."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class LiftedFunction:
    selector: str          # "0xa9059cbb", or "fallback" / "receive"
    tac: str
    blocks: int
    instructions: int
    ops: dict[str, int]
    status: str            # "ok" | "partial" | "timeout"
    arguments: str
    mutability: str
    pcs: list[int] = field(default_factory=list, repr=False)   # offsets of every instruction in the covered blocks


@dataclass
class LiftedContract:
    functions: list[LiftedFunction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metadata_len: int = 0
    code_size: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def function(self, selector: str) -> LiftedFunction:
        key = _norm_selector(selector)
        for f in self.functions:
            if f.selector == key:
                return f
        raise KeyError(f"no function {selector!r} in lifted contract")

    def tac(self) -> str:
        return "\n\n".join(f.tac for f in self.functions)


def _norm_selector(s: str) -> str:
    s = s.strip().lower()
    if s in ("fallback", "receive"):
        return s
    s = s[2:] if s.startswith("0x") else s
    return "0x" + s.rjust(8, "0")


# ---------------------------------------------------------------------------------------------- input checks
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_EIP1167 = re.compile(rb"\x36\x3d\x3d\x37\x3d\x3d\x3d\x36\x3d(\x73.{20}|\x6f.{16})\x5a\xf4\x3d\x82\x80\x3e\x90\x3d\x91", re.S)
_PROLOGUES = (b"\x60\x80\x60\x40\x52", b"\x60\x60\x60\x40\x52")


def _parse_code(code: str | bytes | bytearray) -> bytes:
    if isinstance(code, (bytes, bytearray)):
        raw = bytes(code)
        # Bytes that spell hex text (e.g. a file read in binary mode) are decoded as hex.
        if raw and re.fullmatch(rb"\s*(0x)?[0-9a-fA-F]+\s*", raw):
            return _parse_code(raw.decode())
    elif isinstance(code, str):
        text = "".join(code.split())
        if text[:2].lower() == "0x":
            text = text[2:]
        if not _HEX.match(text):
            bad = next(i for i, ch in enumerate(text) if ch not in "0123456789abcdefABCDEF")
            raise LiftError("malformed_hex", f"bytecode is not hex: character {text[bad]!r} at position {bad}")
        if len(text) % 2:
            raise LiftError("malformed_hex", f"bytecode hex has an odd number of digits ({len(text)})")
        if "__" in text:
            raise LiftError("malformed_hex", "bytecode contains unlinked library placeholders")
        raw = bytes.fromhex(text)
    else:
        raise LiftError("malformed_hex", f"bytecode must be hex text or bytes, got {type(code).__name__}")
    if not raw:
        raise LiftError("empty_code", "bytecode is empty (an account without code, or an abstract contract)")
    return raw


def _looks_like_creation(raw: bytes, instrs: list[Instr]) -> bool:
    """Constructor code copies an embedded runtime (which starts with its own free-memory prologue) and returns it."""
    names = {OPCODES[i.op].name for i in instrs[:400] if i.op in OPCODES}
    if not {"CODECOPY", "RETURN"} <= names:
        return False
    return any(raw.find(p, 1) > 0 for p in _PROLOGUES)


# ---------------------------------------------------------------------------------------------- symbolic blocks
# Operands: ("c", int) constant, ("e", name) transaction/block constant folded inline, ("t", i) temp i of the
# block, ("p", j) the j-th stack slot (0 = top) at block entry. Lines: (dest temp index or None, op, operands).
_FOLD_ENV = {"ADDRESS", "ORIGIN", "CALLER", "CALLVALUE", "CALLDATASIZE", "CODESIZE", "GASPRICE", "COINBASE",
             "TIMESTAMP", "NUMBER", "PREVRANDAO", "GASLIMIT", "CHAINID", "BASEFEE", "BLOBBASEFEE"}
_IMPURE_VALUE = {"CALL", "CALLCODE", "DELEGATECALL", "STATICCALL", "CREATE", "CREATE2"}
_HALT = {"STOP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT"}
_SKIP_COUNT = {"JUMPDEST", "POP"}
_EFFECT_FAMILIES = ("SSTORE", "TSTORE", "LOG", "CALL", "CALLCODE", "DELEGATECALL", "STATICCALL", "CREATE",
                    "CREATE2", "SELFDESTRUCT")


class _BlockSym:
    __slots__ = ("lines", "exit_top", "consumed", "term", "reads", "ntemps", "counts", "undefined", "target_read")

    def exit(self, j: int):
        n = len(self.exit_top)
        return self.exit_top[j] if j < n else ("p", j - n + self.consumed)


def _sym_block(instrs: list[Instr]) -> _BlockSym:
    stack: list = []          # stack[-1] is the top
    consumed = 0
    lines: list = []
    reads: set[int] = set()
    counts: dict[str, int] = {}
    ntemps = 0
    undefined = None
    term = ("fall",)

    def ensure(n: int) -> None:
        nonlocal consumed
        while len(stack) < n:
            stack.insert(0, ("p", consumed))
            consumed += 1

    def pop_n(n: int, count: bool = True) -> list:
        ensure(n)
        args = [stack.pop() for _ in range(n)]   # args[0] = former top
        if count:
            for a in args:
                if a[0] == "p":
                    reads.add(a[1])
        return args

    for ins in instrs:
        op = OPCODES.get(ins.op)
        if op is None:
            undefined = ins.op
            lines.append((None, f"invalid_0x{ins.op:02x}", []))
            term = ("halt",)
            break
        name = op.name
        if name.startswith("PUSH"):
            stack.append(("c", ins.arg))
            continue
        if name.startswith("DUP"):
            ensure(op.n_in)
            stack.append(stack[-op.n_in])
            continue
        if name.startswith("SWAP"):
            ensure(op.n_in)
            stack[-1], stack[-op.n_in] = stack[-op.n_in], stack[-1]
            continue
        if name == "POP":
            ensure(1)
            stack.pop()
            continue
        if name == "JUMPDEST":
            continue
        counts[name] = counts.get(name, 0) + 1
        if name == "PC":
            stack.append(("c", ins.pc))
            continue
        if name in _FOLD_ENV:
            stack.append(("e", name.lower()))
            continue
        if name == "JUMP":
            (t,) = pop_n(1, count=False)   # a jump target is a read only when it stays unresolved (see render)
            term = ("jump", t)
            break
        if name == "JUMPI":
            t, c = pop_n(2, count=False)
            if c[0] == "p":
                reads.add(c[1])
            term = ("jumpi", t, c)
            break
        args = pop_n(op.n_in)
        if op.n_out:
            lines.append((ntemps, name, args))
            stack.append(("t", ntemps))
            ntemps += 1
        else:
            lines.append((None, name, args))
        if name in _HALT:
            term = ("halt",)
            break
    b = _BlockSym()
    b.lines, b.exit_top, b.consumed, b.term, b.reads = lines, stack[::-1], consumed, term, reads
    b.ntemps, b.counts, b.undefined = ntemps, counts, undefined
    b.target_read = term[1][1] if term[0] in ("jump", "jumpi") and term[1][0] == "p" else None
    return b


# ---------------------------------------------------------------------------------------------- rendering
_INFIX = {"ADD": "+", "MUL": "*", "SUB": "-", "DIV": "/", "MOD": "%", "EXP": "**", "LT": "<", "GT": ">",
          "EQ": "==", "AND": "&", "OR": "|", "XOR": "^"}
_NAMES = {"SHA3": "keccak256", "PREVRANDAO": "prevrandao"}


_M = 1 << 256
_FOLD = {"ADD", "SUB", "MUL", "DIV", "MOD", "EXP", "LT", "GT", "EQ", "ISZERO", "AND", "OR", "XOR", "SHL", "SHR",
         "BYTE"}


def _fold(name: str, a: list[int]) -> int | None:
    """Value of a pure op on constants (Yellow-Paper order: a[0] was the top of the stack)."""
    if name == "ADD":
        return (a[0] + a[1]) % _M
    if name == "SUB":
        return (a[0] - a[1]) % _M
    if name == "MUL":
        return (a[0] * a[1]) % _M
    if name == "DIV":
        return a[0] // a[1] if a[1] else 0
    if name == "MOD":
        return a[0] % a[1] if a[1] else 0
    if name == "EXP":
        return pow(a[0], a[1], _M) if a[1] < 512 else None
    if name == "LT":
        return int(a[0] < a[1])
    if name == "GT":
        return int(a[0] > a[1])
    if name == "EQ":
        return int(a[0] == a[1])
    if name == "ISZERO":
        return int(a[0] == 0)
    if name == "AND":
        return a[0] & a[1]
    if name == "OR":
        return a[0] | a[1]
    if name == "XOR":
        return a[0] ^ a[1]
    if name == "SHL":
        return (a[1] << a[0]) % _M if a[0] < 256 else 0
    if name == "SHR":
        return a[1] >> a[0] if a[0] < 256 else 0
    if name == "BYTE":
        return (a[1] >> (8 * (31 - a[0]))) & 0xFF if a[0] < 32 else 0
    return None


def _identity(name: str, a: list):
    """The operand an op returns unchanged (x + 0 = x, x * 1 = x, ...), or None."""
    zero, one = ("c", 0), ("c", 1)
    if name in ("ADD", "OR", "XOR"):
        if a[0] == zero:
            return a[1]
        if a[1] == zero:
            return a[0]
    elif name == "MUL":
        if a[0] == one:
            return a[1]
        if a[1] == one:
            return a[0]
    elif name in ("SUB", "DIV") and a[1] == (one if name == "DIV" else zero):
        return a[0]
    elif name in ("SHL", "SHR", "SAR") and a[0] == zero:
        return a[1]
    return None


def _recursive(st: tuple) -> bool:
    seen: dict[int, int] = {}
    for v in st:
        if v is not None:
            seen[v] = seen.get(v, 0) + 1
            if seen[v] >= 3:
                return True
    return False


def _offset_of(add_args, x):
    """c when add_args is [c, x] or [x, c] (an ADD of constant c to x), else None."""
    if add_args is None:
        return None
    a, b = add_args
    if b == x and a[0] == "c":
        return a[1]
    if a == x and b[0] == "c":
        return b[1]
    return None


def _compact(v: int) -> bool:
    """Constants cheap to print: below 2**64, all-ones masks (2**k - 1) and their complements (~0x1f)."""
    return v < 1 << 64 or (v & (v + 1)) == 0 or (((_M - 1) ^ v) & (((_M - 1) ^ v) + 1)) == 0


def _const(v: int) -> str:
    return hex(v)


class _Contract:
    def __init__(self, raw: bytes, code_end: int, info):
        self.raw = raw
        self.instrs = disassemble(raw, code_end)
        self.index = {ins.pc: k for k, ins in enumerate(self.instrs)}
        self.blocks = {b.id: b for b in info.control_flow_graph.blocks}
        self.entries = {f.bytecode_offset for f in (info.functions or [])}
        self.sym_cache: dict[int, _BlockSym] = {}
        self.unresolved: set[int] = set()
        self.entry_stack: dict[int, tuple] = {}

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
            st = state[b]
            if b in self.entries and b != 0:
                continue
            sb = self.sym(b)
            h = min(32, len(st) - sb.consumed + len(sb.exit_top))

            def cv(o):
                if o[0] == "c":
                    return o[1]
                if o[0] == "p":
                    return st[o[1]] if o[1] < len(st) else None
                return None

            ex = tuple(cv(sb.exit(j)) for j in range(max(h, 0)))
            for t in self.succs(b, state):
                if t not in self.blocks:
                    continue
                old = state.get(t)
                new = ex if old is None else tuple(x if x == y else None for x, y in zip(old, ex))
                if new != old:
                    state[t] = new
                    work.append(t)
            if time.monotonic() > deadline:
                raise TimeoutError
        self.entry_stack = state

    def sym(self, bid: int) -> _BlockSym:
        s = self.sym_cache.get(bid)
        if s is None:
            blk = self.blocks[bid]
            lo, hi = self.index.get(blk.start), self.index.get(blk.end)
            seq = self.instrs[lo:hi + 1] if lo is not None and hi is not None else []
            s = self.sym_cache[bid] = _sym_block(seq)
        return s

    def succs(self, bid: int, in_set) -> list[int]:
        bt = self.blocks[bid].btype
        kind = type(bt).__name__
        if kind == "Jump":
            return [bt.to]
        if kind == "Jumpi":
            return [bt.true_to, bt.false_to]
        if kind in ("DynamicJump", "DynamicJumpi"):
            dyn = bt.to if kind == "DynamicJump" else bt.true_to
            out = []
            for d in dyn:
                if d.to is None:
                    self.unresolved.add(bid)
                elif d.path and d.path[-1] in in_set and d.to not in out:
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
            if time.monotonic() > deadline:
                raise TimeoutError
        return order

    # ------------------------------------------------------------------ context-sensitive block instances
    def explore(self, starts: list[int], stop=frozenset(), deadline: float = float("inf"), max_nodes: int = 1000):
        """Walk blocks from `starts`, tracking which stack slots hold jump-destination constants. A block reached
        with a different stack of return addresses (another call site of an internal function) becomes another
        instance, so every internal return resolves to its caller's continuation; a loop re-enters the same
        instance. Returns (nodes [(block id, abstract stack)], targets {node: (kind, [true nodes], false node)},
        partial). Recursion (a return address on the stack 3 times, or more than 128 tracked slots) switches to one
        context-free instance per block (stack None) whose dynamic jumps take evmole's targets restricted to this
        function's path-rule block set; such TAC is marked partial."""
        nodes: list[tuple[int, tuple]] = []
        allowed: set[int] | None = None
        key2id: dict = {}
        targets: dict[int, tuple] = {}
        work: list[int] = []
        partial = False
        raw = self.raw

        def get(bid: int, st: tuple) -> int:
            key = (bid, st)
            nid = key2id.get(key)
            if nid is None:
                nid = key2id[key] = len(nodes)
                nodes.append(key)
                work.append(nid)
            return nid

        for b in starts:
            if b in self.blocks:
                get(b, ())
        while work:
            if len(nodes) > max_nodes:
                partial = True
                break
            if time.monotonic() > deadline:
                raise TimeoutError
            nid = work.pop()
            bid, st = nodes[nid]
            sb = self.sym(bid)
            bt = self.blocks[bid].btype
            kind = type(bt).__name__

            def val(o):
                if st is None:
                    return None
                if o[0] == "c":
                    v = o[1]
                    return v if v in self.blocks and v < len(raw) and raw[v] == 0x5B else None
                if o[0] == "p":
                    return st[o[1]] if o[1] < len(st) else None
                return None

            if st is None:
                ex = None
            else:
                h_out = len(st) - sb.consumed + len(sb.exit_top)
                # exit stack = the block's own top values over the untouched rest of the entry stack
                ex = tuple(val(o) for o in sb.exit_top) + st[sb.consumed:] if h_out >= 0 else ()
                if h_out > 128 or _recursive(ex):
                    ex = None
                    partial = True
            tm = sb.term
            trues: list[int] = []
            false = None
            if tm[0] == "halt" or kind == "Terminate":
                targets[nid] = ("halt", [], None)
                continue
            if kind in ("Jump", "Jumpi"):
                trues = [bt.to] if kind == "Jump" else [bt.true_to]
                false = bt.false_to if kind == "Jumpi" else None
            else:
                tv = val(tm[1]) if tm[0] in ("jump", "jumpi") else None
                if tv is not None:
                    trues = [tv]
                else:   # not tracked on our stack: fall back to evmole's targets and say so
                    if allowed is None:
                        allowed = set(self.block_set(list(starts), stop=stop, deadline=deadline))
                    dyn = bt.to if kind == "DynamicJump" else bt.true_to
                    trues = sorted({d.to for d in dyn if d.to is not None and d.to in allowed
                                    and d.path and d.path[-1] in allowed})
                    partial = True
                false = bt.false_to if kind == "DynamicJumpi" else None
            tn = [get(t, ex) for t in trues if t in self.blocks and t not in stop]
            fn = get(false, ex) if false is not None and false in self.blocks and false not in stop else None
            targets[nid] = ("jumpi" if tm[0] == "jumpi" else "jump", tn, fn)
        for nid in range(len(nodes)):
            targets.setdefault(nid, ("halt", [], None))
        return nodes, targets, partial

    # ------------------------------------------------------------------ one function (or region) → TAC text
    def render(self, header: str, starts: list[int], deadline: float, stop=frozenset(), labels: str = "seq"):
        nodes, targets, partial = self.explore(starts, stop, deadline)
        ids = range(len(nodes))
        entries = [n for n in ids if nodes[n][0] in starts and nodes[n][1] == ()]
        succ = {n: targets[n][1] + ([targets[n][2]] if targets[n][2] is not None else []) for n in ids}
        preds: dict[int, list[int]] = {n: [] for n in ids}
        for n in ids:
            for t in succ[n]:
                if n not in preds[t]:
                    preds[t].append(n)
        subst = {n for n in ids if n not in entries and len(preds[n]) == 1 and preds[n][0] != n}
        syms = {n: self.sym(nodes[n][0]) for n in ids}
        # Parameters an instance needs: the slots it reads plus those it passes on to needing successors.
        need = {n: set(syms[n].reads) for n in ids}
        for n in ids:   # an unresolved (multi-target) jump prints its target value, so it needs that slot
            if len(targets[n][1]) > 1 and syms[n].target_read is not None:
                need[n].add(syms[n].target_read)
        work = list(ids)
        queued = set(work)
        while work:   # worklist: when a block needs more slots, its predecessors must supply them
            t = work.pop()
            queued.discard(t)
            for n in preds[t]:
                sb = syms[n]
                grew = False
                for j in list(need[t]):
                    o = sb.exit(j)
                    if o[0] == "p" and o[1] < 64 and o[1] not in need[n]:
                        need[n].add(o[1])
                        grew = True
                if grew and n not in queued:
                    work.append(n)
                    queued.add(n)
            if time.monotonic() > deadline:
                raise TimeoutError
        # Dispatcher constants hold only when the entry is not also re-entered from inside the function.
        known = {n: self.entry_stack.get(nodes[n][0], ()) for n in entries if not preds[n]}
        folded: dict = {}

        walked: dict = {}

        def resolve(n: int, o):
            if o[0] == "p" and n in subst:   # follow single-predecessor chains up to the defining block (memoized)
                key = (n, o[1])
                hit = walked.get(key)
                if hit is None:
                    m, q = n, o
                    while q[0] == "p" and m in subst:
                        p = preds[m][0]
                        q = syms[p].exit(q[1])
                        m = p
                    hit = walked[key] = (m, q)
                n, o = hit
            if o[0] == "p" and n in known and o[1] < len(known[n]) and known[n][o[1]] is not None:
                return ("c", known[n][o[1]])
            if o[0] == "t":
                o = ("t", n, o[1])
                while o in folded:
                    o = folded[o]
                return o
            if o[0] == "p":
                o = ("p", n, o[1])
                while o in folded:
                    o = folded[o]
                return o
            return o

        def edge_args(n: int, t: int) -> list:
            if t in subst:
                return []
            return [resolve(n, syms[n].exit(j)) for j in sorted(need[t]) if resolve(t, ("p", j))[0] == "p"]

        # Fold pure operations on constants when the result stays short (0x4 + 0x20 -> 0x24); long results such as
        # selector << 0xe0 stay as written because the long hex would cost more tokens than the line.
        changed, passes = True, 0
        defs: dict = {}   # temp -> resolved operands of the ADD that defined it
        big: dict = {}   # constant results too long to print (1 << 0xa0): kept as lines, but usable for folding
        while changed and passes < 3:   # ids are in discovery order, so one pass settles almost everything
            changed, passes = False, passes + 1
            for n in ids:
                for d, name, args in syms[n].lines:
                    key = ("t", n, d)
                    if d is None or key in folded or key in big or name not in _FOLD:
                        continue
                    r = [resolve(n, a) for a in args]
                    r = [("c", big[x]) if x in big else x for x in r]
                    if name == "ADD":
                        defs[key] = r
                    elif name == "SUB" and r[0] != r[1]:   # (c + x) - x = c, (c1 + x) - (c2 + x) = c1 - c2
                        c1 = _offset_of(defs.get(r[0]), r[1])
                        if c1 is not None:
                            r = [("c", c1), ("c", 0)]
                        elif r[0] in defs and r[1] in defs:
                            a, b = defs[r[0]], defs[r[1]]
                            for xa in a:
                                if xa[0] != "c" and xa in b:
                                    ca, cb = _offset_of(a, xa), _offset_of(b, xa)
                                    if ca is not None and cb is not None:
                                        r = [("c", ca), ("c", cb)]
                                    break
                    same = _identity(name, r)
                    if same is not None:   # x + 0, x - 0, x * 1, x | 0, x ^ 0, x << 0, ... are x
                        if same[0] == "c" and not _compact(same[1]):
                            big[key] = same[1]
                        else:
                            folded[key] = same
                        changed = True
                    elif all(x[0] == "c" for x in r):
                        v = _fold(name, [x[1] for x in r])
                        if v is not None:
                            if _compact(v):
                                folded[key] = ("c", v)
                            else:
                                big[key] = v
                            changed = True
        body = {n: [(d, name, [resolve(n, a) for a in args]) for d, name, args in syms[n].lines] for n in ids}
        used: dict = {}

        def count_uses(delta: int, ops) -> None:
            for o in ops:
                if o[0] in ("t", "p"):
                    used[o] = used.get(o, 0) + delta

        for n in ids:
            for d, name, args in body[n]:
                count_uses(1, args)
            tm = syms[n].term
            if tm[0] == "jumpi":
                count_uses(1, [resolve(n, tm[2])])
            if tm[0] in ("jump", "jumpi") and len(targets[n][1]) > 1:
                count_uses(1, [resolve(n, tm[1])])
            for t in succ[n]:
                count_uses(1, edge_args(n, t))
        live = {n: [True] * len(body[n]) for n in ids}
        where = {("t", n, d): (n, k) for n in ids for k, (d, _, _) in enumerate(body[n]) if d is not None}
        work = [k for k, v in where.items() if not used.get(k) or k in folded]
        while work:   # drop pure values nobody uses (stack plumbing, unused loads), then what only they used
            key = work.pop()
            n, k = where[key]
            d, name, args = body[n][k]
            if not live[n][k] or name in _IMPURE_VALUE or (used.get(key) and key not in folded):
                continue
            live[n][k] = False
            count_uses(-1, args)
            work.extend(a for a in args if a in where and not used.get(a))

        inst: dict[int, int] = {}
        label: dict[int, str] = {}
        for n in sorted(ids, key=lambda n: (nodes[n][0], n)):
            bid = nodes[n][0]
            k = inst[bid] = inst.get(bid, -1) + 1
            label[n] = f"block_{bid:#x}" + (f"_{k}" if k else "")
        order = entries + sorted((n for n in ids if n not in entries), key=lambda n: (nodes[n][0], n))
        names: dict = {}

        def nm(o) -> str:
            if o[0] == "c":
                return _const(o[1])
            if o[0] == "e":
                return o[1]
            v = names.get(o)
            if v is None:
                v = names[o] = f"v{len(names) + 1}"
            return v

        # Jump threading: an instance with one predecessor, no surviving line and one plain successor is skipped
        # (its edge arguments are values already visible to the predecessor).
        forward = {n for n in ids if n in subst and targets[n][0] == "jump" and len(targets[n][1]) == 1
                   and not any(live[n]) and targets[n][1][0] != n}

        def final(n: int, t: int) -> tuple[int, int]:
            hops = 0
            while t in forward and hops < 64:
                n, t = t, targets[t][1][0]
                hops += 1
            return n, t

        # Block merging: a successor with this block as its only predecessor is printed inline (no label, no goto).
        merged: set[int] = set()
        for n in ids:
            if n not in forward and targets[n][0] == "jump" and len(targets[n][1]) == 1:
                _, t = final(n, targets[n][1][0])
                if t in subst and t not in entries and t != n and t not in forward:
                    merged.add(t)
        heads = [n for n in order if n not in forward and n not in merged]
        # Identical halting blocks that use no variables (revert(0x0, 0x0), panic codes) are printed once.
        alias: dict[int, int] = {}
        seen_halts: dict[tuple, int] = {}
        for n in heads:
            if targets[n][0] != "halt" or syms[n].term[0] != "halt" or (n not in subst and need[n]):
                continue
            lines = [(name, tuple(args)) for k, (d, name, args) in enumerate(body[n]) if live[n][k]]
            if any(d is not None for k, (d, _, _) in enumerate(body[n]) if live[n][k]) or \
                    any(a[0] in ("t", "p") for _, args in lines for a in args):
                continue
            key = tuple(lines)
            if key in seen_halts:
                alias[n] = seen_halts[key]
            else:
                seen_halts[key] = n
        if labels == "seq":   # b0, b1, ... in print order: offsets carry no meaning for the model and cost tokens
            for i, n in enumerate(h for h in heads if h not in alias):
                label[n] = f"b{i}"

        def target(n: int, t: int) -> str:
            n, t = final(n, t)
            if t in alias:
                return label[alias[t]]
            a = edge_args(n, t)
            return label[t] + (f"({', '.join(nm(x) for x in a)})" if a else "")

        out = [header]
        n_instr = 0
        n_blocks = 0
        counts: dict[str, int] = {}
        seen_blocks: set[int] = set()
        for h in heads:
            if time.monotonic() > deadline:
                raise TimeoutError
            if h in alias:
                continue
            params = [] if h in subst else [("p", h, j) for j in sorted(need[h]) if resolve(h, ("p", j))[0] == "p"]
            out.append(label[h] + (f"({', '.join(nm(p) for p in params)})" if params else "") + ":")
            n_blocks += 1
            n = h
            while True:
                sb = syms[n]
                if nodes[n][0] not in seen_blocks:   # opcode counts per distinct block, not per instance
                    seen_blocks.add(nodes[n][0])
                    for k, v in sb.counts.items():
                        counts[k] = counts.get(k, 0) + v
                for k, (d, name, args) in enumerate(body[n]):
                    if live[n][k]:
                        out.append("  " + self._line(d, n, name, args, nm))
                        n_instr += 1
                kind, tn, fn = targets[n]
                tm = sb.term
                if kind == "jump" and len(tn) == 1:
                    last, t = final(n, tn[0])
                    if t in merged:
                        n = t
                        continue
                break
            if kind == "halt":
                if tm[0] != "halt":   # jump into nowhere (stop set / unknown): keep the fact visible
                    out.append("  goto ?")
                continue
            if len(tn) == 1:
                tt = target(n, tn[0])
            elif tn:
                tt = f"{nm(resolve(n, tm[1]))} [{', '.join(target(n, t) for t in tn)}]"
            else:
                tt = "?"
            if kind == "jumpi":
                out.append(f"  if {nm(resolve(n, tm[2]))} goto {tt} else {target(n, fn) if fn is not None else '?'}")
            else:
                out.append(f"  goto {tt}")
            n_instr += 1
        for n in forward:   # forwarded blocks still count towards the opcode families they contain
            if nodes[n][0] not in seen_blocks:
                seen_blocks.add(nodes[n][0])
                for k, v in syms[n].counts.items():
                    counts[k] = counts.get(k, 0) + v
        return "\n".join(out), n_blocks, n_instr, counts, partial, {nodes[n][0] for n in ids}

    @staticmethod
    def _line(d, b, name, args, nm) -> str:
        a = [nm(x) for x in args]
        if name in _INFIX:
            expr = f"{a[0]} {_INFIX[name]} {a[1]}"
        elif name == "SHL":
            expr = f"{a[1]} << {a[0]}"
        elif name == "SHR":
            expr = f"{a[1]} >> {a[0]}"
        elif name == "NOT":
            expr = f"~{a[0]}"
        elif name == "STOP" or name == "INVALID":
            expr = name.lower()
        else:
            expr = f"{_NAMES.get(name, name.lower())}({', '.join(a)})"
        return f"{nm(('t', b, d))} = {expr}" if d is not None else expr


# ---------------------------------------------------------------------------------------------- dispatcher region
def _dispatch_regions(c: _Contract, deadline: float):
    """Split the code reachable from offset 0 (without entering a public function) into the dispatcher, the
    receive() region and the fallback region. Dispatcher blocks branch on a value derived from the selector
    (calldataload(0)) or on calldatasize compared with 4."""
    region = c.block_set([0], stop=c.entries, deadline=deadline) if 0 in c.blocks else []
    rset = set(region)
    succ = {b: [t for t in c.succs(b, rset) if t in rset] for b in region}
    preds: dict[int, set] = {b: set() for b in region}
    for b in region:
        for t in succ[b]:
            preds[t].add(b)
    # Taint: param slot taint per block (fixed point), temps tainted from operands.
    ptaint: dict[int, set] = {b: set() for b in region}
    cond_taint: dict[int, bool] = {}
    exit_taint: dict[int, set] = {}
    for _ in range(50):
        changed = False
        for b in region:
            sb = c.sym(b)
            tt: set[int] = set()

            def tainted(o) -> bool:
                return (o[0] == "t" and o[1] in tt) or (o[0] == "p" and o[1] in ptaint[b])

            for d, name, args in sb.lines:
                if d is None:
                    continue
                if (name == "CALLDATALOAD" and args[0] == ("c", 0)) or any(tainted(a) for a in args):
                    tt.add(d)
                elif name in ("LT", "GT", "SLT", "SGT", "EQ", "SUB") and ("e", "calldatasize") in args \
                        and ("c", 4) in args:
                    tt.add(d)
            cond_taint[b] = sb.term[0] == "jumpi" and tainted(sb.term[2])
            ex = {j for j in range(min(64, len(sb.exit_top) + max(ptaint[b], default=-1) + 1)) if tainted(sb.exit(j))}
            exit_taint[b] = ex
            for t in succ[b]:
                if not ex <= ptaint[t]:
                    ptaint[t] |= ex
                    changed = True
        if not changed:
            break
    disp = {b for b in region if cond_taint.get(b)}
    changed = True
    while changed:   # empty forwarding blocks between dispatcher blocks (ends of compare chains)
        changed = False
        for b in region:
            sb = c.sym(b)
            if b not in disp and not sb.lines and sb.term[0] in ("jump", "fall") and preds[b] and preds[b] <= disp:
                disp.add(b)
                changed = True
    if time.monotonic() > deadline:
        raise TimeoutError
    recv_entries: list[int] = []
    fb_entries: list[int] = []
    for b in region:
        if b in disp:
            continue
        sb = c.sym(b)
        if sb.term[0] == "jumpi" and type(c.blocks[b].btype).__name__ == "Jumpi" and (not preds[b] or preds[b] <= disp):
            cond = sb.term[2]
            bt = c.blocks[b].btype
            is_size = cond == ("e", "calldatasize")
            is_zero = cond[0] == "t" and any(d == cond[1] and n == "ISZERO" and a == [("e", "calldatasize")]
                                              for d, n, a in sb.lines)
            if (is_size or is_zero) and len(sb.lines) <= (1 if is_zero else 0):
                recv, fb = (bt.false_to, bt.true_to) if is_size else (bt.true_to, bt.false_to)
                disp.add(b)
                recv_entries.append(recv)
                fb_entries.append(fb)
    for b in region:
        if b in disp:
            continue
        if b == 0 or any(p in disp for p in preds[b]):
            if b not in recv_entries and b not in fb_entries:
                fb_entries.append(b)
    keep = rset - disp
    recv = c.block_set(recv_entries, stop=c.entries | disp, deadline=deadline) if recv_entries else []
    fb = c.block_set(fb_entries, stop=c.entries | disp, deadline=deadline) if fb_entries else []
    return [b for b in recv if b in keep], recv_entries, [b for b in fb if b in keep], fb_entries


def _callvalue_guard(sb: _BlockSym) -> bool:
    """solc's non-payable check: a branch on callvalue or iszero(callvalue)."""
    if sb.term[0] != "jumpi":
        return False
    cond = sb.term[2]
    return cond == ("e", "callvalue") or (cond[0] == "t" and any(
        d == cond[1] and n == "ISZERO" and a == [("e", "callvalue")] for d, n, a in sb.lines))


def _nontrivial(c: _Contract, bset: list[int]) -> bool:
    for b in bset:
        sb = c.sym(b)
        if any(k in sb.counts for k in ("STOP", "RETURN", "SELFDESTRUCT", "SSTORE", "TSTORE", "CALL", "CALLCODE",
                                        "DELEGATECALL", "STATICCALL", "CREATE", "CREATE2", "LOG0", "LOG1", "LOG2",
                                        "LOG3", "LOG4")):
            return True
    return False


# ---------------------------------------------------------------------------------------------- public API
def lift(code: str | bytes, *, time_limit_s: float = 10.0, labels: str = "seq") -> LiftedContract:
    """Lift runtime bytecode (hex with/without 0x, or raw bytes) to per-function TAC (docs/tac-format.md).

    labels="seq" (the training/inference format) names blocks b0, b1, ... in print order; labels="offset" names
    them by bytecode offset (block_0x1a, block_0x1a_1 for a second call context) for debugging.

    Raises LiftError for input that is not liftable runtime code. Functions not finished within time_limit_s
    come back with status "timeout" (and empty TAC) instead of hanging."""
    import evmole

    if labels not in ("seq", "offset"):
        raise ValueError(f"labels must be 'seq' or 'offset', got {labels!r}")
    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    raw = _parse_code(code)
    m = _EIP1167.search(raw[:64])
    if m and len(raw) <= 64:
        raise LiftError("proxy_only", "EIP-1167 minimal proxy: all calls are delegated to "
                        f"0x{m.group(1)[1:].hex()}; lift the implementation instead")
    info = evmole.contract_info(raw, selectors=True, arguments=True, state_mutability=True,
                                control_flow_graph=True, metadata=True)
    code_end = info.metadata.bytecode_offset if info.metadata is not None else len(raw)
    c = _Contract(raw, code_end, info)
    res = LiftedContract(metadata_len=len(raw) - code_end, code_size=len(raw))
    if not c.instrs:
        raise LiftError("empty_code", "no instructions before the metadata")
    funcs = list(info.functions or [])
    try:
        c.dispatcher_stacks(deadline)
    except TimeoutError:
        res.warnings.append("dispatcher constant tracking timed out")
    if not funcs and _looks_like_creation(raw, c.instrs):
        raise LiftError("creation_code", "this is creation (deployment) bytecode: it runs a constructor that "
                        "CODECOPYs an embedded runtime and RETURNs it; pass the runtime (deployedBytecode) instead")
    if c.instrs[-1].truncated:
        # solc puts revert strings and other data after the code; only a truncated PUSH that can execute is an error.
        pc = c.instrs[-1].pc
        reach = c.block_set([0], deadline=deadline) if 0 in c.blocks else []
        prev = c.instrs[-2] if len(c.instrs) > 1 else None
        flows_in = prev is not None and OPCODES.get(prev.op) is not None and \
            OPCODES[prev.op].name not in ("STOP", "JUMP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT")
        if not reach or any(c.blocks[b].start <= pc <= c.blocks[b].end or
                            (flows_in and c.blocks[b].start <= prev.pc <= c.blocks[b].end) for b in reach):
            raise LiftError("truncated_push", f"PUSH at offset {pc:#x} runs past the end of the code")
    if 0 in c.blocks and c.sym(0).undefined is not None:
        raise LiftError("invalid_opcode", f"undefined opcode 0x{c.sym(0).undefined:02x} in the entry block; "
                        "this is not EVM code")
    if info.metadata is None:
        res.warnings.append("no CBOR metadata tail found: whole input treated as code")
    if len(c.entries) < len(funcs):
        res.warnings.append("several selectors share one entry offset")

    def one(selector: str, header: str, entries: list[int], args: str, mut: str, stop=frozenset()) -> LiftedFunction:
        try:
            tac, nb, ni, counts, partial, bset = c.render(header, entries, deadline, stop, labels)
        except TimeoutError:
            return LiftedFunction(selector, "", 0, 0, {}, "timeout", args, mut)
        undefined = [b for b in bset if c.sym(b).undefined is not None]
        if undefined:
            res.warnings.append(f"{selector}: undefined opcode(s) at block(s) "
                                f"{', '.join(hex(b) for b in undefined)} (executes as INVALID)")
        if partial:
            res.warnings.append(f"{selector}: unresolved jump target(s); TAC is partial")
        pcs = []
        for b in sorted(bset):
            blk = c.blocks[b]
            lo, hi = c.index.get(blk.start), c.index.get(blk.end)
            if lo is not None and hi is not None:
                pcs.extend(ins.pc for ins in c.instrs[lo:hi + 1])
        return LiftedFunction(selector, tac, nb, ni, counts, "partial" if partial else "ok", args, mut, pcs)

    for f in sorted(funcs, key=lambda f: f.selector):
        sel = "0x" + f.selector
        args = f.arguments or ""
        mut = f.state_mutability or ""
        if time.monotonic() > deadline:
            res.functions.append(LiftedFunction(sel, "", 0, 0, {}, "timeout", args, mut))
            continue
        res.functions.append(one(sel, f"function {sel}({args}) {mut}", [f.bytecode_offset], args, mut))
    try:
        recv, recv_e, fb, fb_e = _dispatch_regions(c, deadline)
    except TimeoutError:
        res.functions.append(LiftedFunction("fallback", "", 0, 0, {}, "timeout", "", ""))
        return res
    if recv:
        res.functions.append(one("receive", "function receive() payable", recv_e, "", "payable", frozenset(c.blocks) - set(recv)))
    if fb and _nontrivial(c, fb):
        mut = "nonpayable" if any(_callvalue_guard(c.sym(b)) for b in fb) else "payable"
        res.functions.append(one("fallback", f"function fallback() {mut}", fb_e, "", mut, frozenset(c.blocks) - set(fb)))
    if not funcs and any("DELEGATECALL" in c.sym(b).counts for b in fb):
        raise LiftError("proxy_only", "no public functions; the fallback forwards every call with DELEGATECALL "
                        "(a proxy): lift the implementation contract instead")
    if not res.functions:
        raise LiftError("no_functions", "no public function, receive or fallback with an effect was found "
                        "(code only reverts or is not a contract's runtime code)")
    return res


# ---------------------------------------------------------------------------------------------- CLI
def build_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("code", help="runtime bytecode: a file (hex text or raw binary, or a solc JSON artifact with "
                                "deployedBytecode) or a hex string")
    p.add_argument("--json", action="store_true", help="print the LiftedContract as JSON")
    p.add_argument("--selector", action="append", default=[],
                   help="only this function (0xa9059cbb, fallback, receive); repeatable")
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per contract (default 10)")
    p.add_argument("--offsets", action="store_true",
                   help="label blocks by bytecode offset (block_0x1a) instead of b0, b1, ... (debugging)")
    return p


def _read_code_arg(arg: str):
    path = Path(arg)
    if len(arg) < 1024 and path.is_file():
        data = path.read_bytes()
        text = data.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            obj = json.loads(text)
            for keys in (("deployedBytecode", "object"), ("deployedBytecode",), ("evm", "deployedBytecode", "object"),
                         ("runtime",)):
                cur = obj
                for k in keys:
                    cur = cur.get(k) if isinstance(cur, dict) else None
                if isinstance(cur, str):
                    return cur
            raise LiftError("malformed_hex", f"{arg}: JSON without deployedBytecode / runtime field")
        return data
    return arg


def main(args) -> int:
    try:
        res = lift(_read_code_arg(args.code), time_limit_s=args.time_limit,
                   labels="offset" if args.offsets else "seq")
    except LiftError as exc:
        print(f"tacsol lift: {exc}", file=sys.stderr)
        return 1
    if args.selector:
        want = {_norm_selector(s) for s in args.selector}
        missing = want - {f.selector for f in res.functions}
        if missing:
            print(f"tacsol lift: selector(s) not found: {', '.join(sorted(missing))}", file=sys.stderr)
            return 1
        res.functions = [f for f in res.functions if f.selector in want]
    if args.json:
        d = res.to_dict()
        for f in d["functions"]:
            f.pop("pcs", None)
        print(json.dumps(d, indent=1))
    else:
        for w in res.warnings:
            print(f"// warning: {w}")
        print(res.tac())
    return 0
