"""Level 2: what compilers do in memory, named. Along each straight line of instances a symbolic model of memory
(addresses as base + offset, the free-memory pointer followed through allocations) recognises
  keccak256 of scratch words key, slot     → mapping(slot)[key]
  keccak256 of the scratch word slot       → array(slot)
  logN of whole words at the free pointer  → logN(topics; words)
  return of whole words                    → return (words)
  revert of Error(string)                  → revert("text")
  revert of Panic(uint256)                 → panic(code)
  revert of another selector and words     → revert 0xsel(words)
  revert(x, 0x0)                           → revert()
  a call whose input is a selector and words
  built at the free pointer                → call(gas, addr, value, 0xsel(words), out, n) (staticcall,
                                             delegatecall alike)
Each construct stands for the memory operations it replaces (docs/tac-format.md, Level 2); a store it absorbs is
dropped when no other statement reads those bytes before the construct rewrites them or the line halts. Addresses
follow solc's layout: scratch 0x0-0x3f, the free-memory pointer at 0x40, free memory from 0x80."""
from __future__ import annotations

import json
from dataclasses import dataclass

from .inline import READS, is_pure
from .ir import STRING_STORES, Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, chain_next, chains, definitions, linear_minus, prune

M = 1 << 256
FREE = 0x80
ERROR, PANIC = 0x08C379A0, 0x4E487B71
ANY = ("any",)                     # the base of an address nothing is known about
UNBOUNDED = 1 << 64
HALTS = ("RETURN", "REVERT", "STOP", "INVALID", "SELFDESTRUCT")
ABSORBABLE = ("MSTORE", "MSTORE8", "CODECOPY")
_READS = {"MLOAD": (0, None), "SHA3": (0, 1), "RETURN": (0, 1), "REVERT": (0, 1), "CREATE": (1, 2),
          "CREATE2": (1, 2), "CALL": (3, 4), "CALLCODE": (3, 4), "DELEGATECALL": (2, 3), "STATICCALL": (2, 3),
          "MCOPY": (1, 2), **{f"LOG{i}": (0, 1) for i in range(5)}}   # (address, size) argument (None: 32)
# calls whose ABI-encoded input is printed as 0xsel(words): op -> (the construct, index of the input argument)
ABI_CALLS = {"CALL": ("call_abi", 3), "STATICCALL": ("staticcall_abi", 2), "DELEGATECALL": ("delegatecall_abi", 2)}
ABI_CALL_INPUT = {c: at for c, at in ABI_CALLS.values()}   # construct -> index of its selector argument
ABI_CALL_OPS = set(ABI_CALL_INPUT)
MAX_CALL_WORDS = 16
_CALLS = {"CALL", "CALLCODE", "DELEGATECALL", "STATICCALL", "CREATE", "CREATE2", "icall", *ABI_CALL_OPS}   # they set
                                                                                                          # returndata
_CONSTRUCTS = {"SHA3", "RETURN", "REVERT", *ABI_CALLS, *(f"LOG{i}" for i in range(5))}   # statements a construct may
                                                                                        # replace
# what makes a line worth a model
_MEMORY = {"SHA3", "RETURN", "REVERT", "MSTORE", "MSTORE8", "CODECOPY", *(f"LOG{i}" for i in range(5))}
_WRITES = {"CALL": (5, 6), "CALLCODE": (5, 6), "DELEGATECALL": (4, 5), "STATICCALL": (4, 5), "MCOPY": (0, 2),
           "CALLDATACOPY": (0, 2), "RETURNDATACOPY": (0, 2), "CODECOPY": (0, 2), "EXTCODECOPY": (1, 3)}

# the statements _Line.step looks at: the free-memory pointer's reads and arithmetic, constructs, reads, writes
_MODELLED = frozenset({"MLOAD", "ADD", "SUB", "icall", "MSTORE", "MSTORE8", *_CONSTRUCTS, *_READS, *_WRITES,
                       *ABI_CALL_OPS})


def _free(base) -> bool:
    """Whether an address base is a free-memory pointer the model named (("F", k))."""
    return isinstance(base, tuple) and len(base) == 2 and base[0] == "F"


def _signed(x: int) -> int:
    x %= M
    return x - M if x >> 255 else x


@dataclass
class Span:
    """Bytes [lo, hi) from `base` (None: absolute; ("F", k): the k-th unknown free-memory pointer; an operand)."""
    pos: int
    base: object
    lo: int
    hi: int
    content: object = None   # a write's: bytes, a symbolic 32-byte word (operand), or None (unknown)

    def overlaps(self, o: "Span") -> bool:
        if self.base is ANY or o.base is ANY:
            return True
        if self.base == o.base:
            return self.lo < o.hi and o.lo < self.hi
        for a, b in ((self, o), (o, self)):   # free memory never holds the scratch words or the pointer
            if a.base is None and a.hi <= FREE and _free(b.base) and b.lo >= 0:
                return False
        return True

    def covers(self, o: "Span") -> bool:
        return self.base == o.base and self.base is not ANY and self.lo <= o.lo and o.hi <= self.hi


@dataclass
class Construct:
    pos: int
    stmt: Stmt               # the replacement
    span: Span | None        # the bytes its macro writes (None: a halt, whose memory nobody reads again)


class _Line:
    """One straight line: the model walked statement by statement, then the constructs and the dead stores."""

    def __init__(self, fn: FunctionIR, code: bytes, consts: Constants, line: list[int], level3: bool = False,
                 clears: bool = False):
        self.code, self.consts = code, consts
        self.level3 = level3   # fresh free bases (store), differences of constants (arith)
        self.stmts = [(n, k, s) for n in line for k, s in enumerate(fn.body[n])]
        # with `clears`: positions of `mstore(dst + n, 0x0)` after copy(dst, src, n) (solc 0.8.13+ clears the word
        # after copied bytes). Such a store lies above the copied bytes, so never on the free-memory pointer: had
        # dst + n wrapped round to it, the copy of n bytes before it would have run out of gas.
        self.above = self._clears() if clears else set()
        last = line[-1]
        self.halts = fn.ends_call(last)
        self.lin: dict[Operand, tuple] = {}
        self.fmp: tuple = (("F", 0), 0)
        self.epochs = 0
        self.writes: list[Span] = []
        self.reads: list[Span] = []       # reads by statements that stay as they are
        self.found: dict[int, Construct] = {}
        self.pointers: list[int] = []     # positions of mload(0x40)
        self.allocated: set[int] = set()  # positions of the stores a construct absorbed (memstring, bubble)
        self.touched: set[int] | None = None   # while a construct is recognised: the writes whose bytes it read

    # ---------------------------------------------------------------------------------------------- the model
    def value(self, o: Operand) -> tuple:
        """(base, offset) of a value: (None, v) for a constant."""
        c = self.consts(o)
        if c is not None:
            return None, c
        return self.lin.get(o, (o, 0))

    def const(self, o: Operand) -> int | None:
        base, off = self.value(o)
        return off if base is None else None

    def span(self, pos: int, addr: Operand, size: Operand | None, content=None) -> Span:
        """The bytes [addr, addr + size) (size None: one word)."""
        base, off = self.value(addr)
        n = 32 if size is None else self.const(size)
        if n is None or n >= UNBOUNDED:
            return Span(pos, ANY, 0, UNBOUNDED)
        return Span(pos, base, off, off + n, content)

    def walk(self) -> None:
        for pos, (n, k, s) in enumerate(self.stmts):
            if s.op in _MODELLED:   # (step does nothing with any other statement)
                self.step(pos, n, s)

    def step(self, pos: int, n: int, s: Stmt) -> None:
        dest = ("t", n, s.dest) if s.dest is not None else None
        if s.op == "MLOAD" and self.value(s.args[0]) == (None, 0x40):
            self.lin[dest] = self.fmp
            self.pointers.append(pos)
        elif s.op in ("ADD", "SUB") and dest is not None:
            self.arith(dest, s)
        found = self.construct(pos, s)
        if found is not None:
            self.found[pos] = found
        elif s.op == "icall":   # an internal function may read and write any memory
            self.reads.append(Span(pos, ANY, 0, UNBOUNDED))
        # an ABI call construct (a later pass's walk) reads only the input it writes itself
        elif s.op in _READS:
            a, b = _READS[s.op]
            self.reads.append(self.span(pos, s.args[a], s.args[b] if b is not None else None))
        self.store(pos, s)

    def arith(self, dest: Operand, s: Stmt) -> None:
        (ba, xa), (bb, xb) = self.value(s.args[0]), self.value(s.args[1])
        if s.op == "ADD" and (ba is None or bb is None):
            base = ba if bb is None else bb
            self.lin[dest] = (None, (xa + xb) % M) if base is None else (base, _signed(xa + xb))
        elif s.op == "SUB" and bb is None and ba is not None:
            self.lin[dest] = (ba, _signed(xa - xb))
        elif s.op == "SUB" and ba == bb and ba is not None:
            self.lin[dest] = (None, (xa - xb) % M)
        elif s.op == "SUB" and ba is None and bb is None and self.level3:   # (end - p) - 32, a length
            self.lin[dest] = (None, (xa - xb) % M)

    def store(self, pos: int, s: Stmt) -> None:
        if s.op == "MSTORE":
            v = self.const(s.args[1])
            w = self.span(pos, s.args[0], None, v.to_bytes(32, "big") if v is not None else s.args[1])
        elif s.op == "MSTORE8":
            v = self.const(s.args[1])
            w = self.span(pos, s.args[0], ("c", 1), bytes([v & 0xFF]) if v is not None else None)
        elif s.op in _WRITES:
            a, b = _WRITES[s.op]
            w = self.span(pos, s.args[a], s.args[b], self.copied(s))
        elif s.op == "icall":
            w = Span(pos, ANY, 0, UNBOUNDED)
        elif s.op in ABI_CALL_OPS:   # its input at the free pointer (selector, words), then its output
            base, off = self.fmp   # args: gas, address, [value,] selector, words, out, out size
            self.writes.append(Span(pos, base, off, off + 4 + 32 * (len(s.args) - ABI_CALL_INPUT[s.op] - 3)))
            w = self.span(pos, s.args[-2], s.args[-1], None)
        else:
            return
        self.writes.append(w)
        if (s.op, w.base, w.lo) == ("MSTORE", None, 0x40):
            base, off = self.value(s.args[1])
            if self.level3 and off == 0 and base is not None and base is not ANY and not _free(base):
                # a pointer the model cannot follow (`p + round_up(returndatasize())`): solc stores only free
                # memory addresses there, so it is a fresh free base, disjoint from the scratch words and 0x40
                self.epochs += 1
                self.lin[s.args[1]] = (("F", self.epochs), 0)
            self.fmp = self.value(s.args[1])
        elif w.overlaps(Span(pos, None, 0x40, 0x60)) and pos not in self.above:
            self.epochs += 1                      # the pointer changed in a way the model does not follow
            self.fmp = (("F", self.epochs), 0)

    def copied(self, s: Stmt) -> bytes | None:
        """codecopy of a constant range: the code bytes (zero past the end, as the EVM reads them)."""
        if s.op != "CODECOPY":
            return None
        src, n = self.const(s.args[1]), self.const(s.args[2])
        if src is None or n is None or n >= UNBOUNDED:
            return None
        return self.code[src:src + n].ljust(n, b"\0")

    def bytes_at(self, base, lo: int, hi: int, upto: int | None = None) -> list:
        """What the model knows of bytes [lo, hi) from base now, or before position `upto` (per byte: int,
        (word, index) or None)."""
        out: list = [None] * (hi - lo)
        todo = [(lo, hi)] if hi > lo else []   # the bytes still unknown, as disjoint ranges (a set of bytes was
        want = Span(-1, base, lo, hi)          # most of name_memory's time)
        for w in reversed(self.writes):
            if not todo:
                break
            if upto is not None and w.pos >= upto:
                continue
            if w.base != base:
                if w.overlaps(want):
                    break                         # a store that may alias: the rest stays unknown
                continue
            wlo, whi = w.lo, w.hi
            if whi <= lo or wlo >= hi:
                continue
            content, left, got = w.content, [], False
            for a, b in todo:
                x, y = max(a, wlo), min(b, whi)
                if x >= y:
                    left.append((a, b))
                    continue
                got = True   # its bytes [x, y) were unknown: as ints, (word, index) of a symbolic word, or None
                if isinstance(content, bytes):
                    part = list(content[x - wlo:y - wlo])
                    out[x - lo:y - lo] = part + [None] * (y - x - len(part))
                elif content is not None:
                    out[x - lo:y - lo] = [(content, k) for k in range(x - wlo, y - wlo)]
                if a < x:
                    left.append((a, x))
                if y < b:
                    left.append((y, b))
            todo = left
            if got and self.touched is not None:
                self.touched.add(w.pos)
        return out

    def word(self, base, off: int, upto: int | None = None) -> Operand | None:
        got = self.bytes_at(base, off, off + 32, upto)
        if all(isinstance(b, int) for b in got):
            return ("c", int.from_bytes(bytes(got), "big"))
        first = got[0]
        if isinstance(first, tuple) and first[1] == 0 and all(b == (first[0], i) for i, b in enumerate(got)):
            return first[0]
        return None

    def words(self, base, lo: int, hi: int) -> list[Operand] | None:
        if (hi - lo) % 32:
            return None
        out = [self.word(base, off) for off in range(lo, hi, 32)]
        return None if None in out else out

    # ------------------------------------------------------------------------------------------- constructs
    def construct(self, pos: int, s: Stmt) -> Construct | None:
        """The construct statement s is, standing for s and the stores whose bytes it reads (their pcs)."""
        if s.op not in _CONSTRUCTS:
            return None
        self.touched = set()
        found = self._construct(pos, s)
        if found is not None:
            found.stmt.pcs = merged_pcs(s.pcs, *(self.stmts[p][2].pcs for p in self.touched))
        self.touched = None
        return found

    def _construct(self, pos: int, s: Stmt) -> Construct | None:
        if s.op == "SHA3":
            return self.slot(pos, s)
        if s.op.startswith("LOG"):
            return self.log(pos, s)
        if s.op in ("RETURN", "REVERT"):
            stmt = self.halt(s) or self.bubble(pos, s)
            return Construct(pos, stmt, None) if stmt is not None else None
        if s.op in ABI_CALLS:
            return self.abi_call(pos, s)
        return None

    def abi_call(self, pos: int, s: Stmt) -> Construct | None:
        """A call whose input is a 4-byte selector and whole words, built at the free pointer (where the compiler
        encodes call data): call(gas, addr, value, 0xsel(words), out, out_size). The construct writes that input
        at the free pointer again (its macro), so the stores building it are dead when nothing else reads them."""
        op, at = ABI_CALLS[s.op]
        base, off = self.value(s.args[at])
        size = self.const(s.args[at + 1])
        if (base, off) != self.fmp or size is None or size < 4 or (size - 4) % 32 or size > 4 + 32 * MAX_CALL_WORDS:
            return None
        sel = self.bytes_at(base, off, off + 4)
        words = self.words(base, off + 4, off + size)
        if words is None or not all(isinstance(b, int) for b in sel):
            return None
        args = s.args[:at] + [("c", int.from_bytes(bytes(sel), "big"))] + words + s.args[at + 2:]
        return Construct(pos, Stmt(s.dest, op, args), Span(pos, base, off, off + size))

    def bubble(self, pos: int, s: Stmt) -> Stmt | None:
        """revert(x, returndatasize()) right after returndatacopy(x, 0x0, returndatasize()), no call between: the
        failed call's revert data passed on, revert(returndata). Absorbs the copy."""
        if s.op != "REVERT" or not self._returndatasize(s.args[1]) or not self.writes:
            return None
        w = self.writes[-1]
        c = self.stmts[w.pos][2]
        if (c.op != "RETURNDATACOPY" or self.value(c.args[0]) != self.value(s.args[0]) or self.const(c.args[1]) != 0
                or not self._returndatasize(c.args[2])
                or any(self.stmts[p][2].op in _CALLS for p in range(w.pos + 1, pos))):
            return None
        self.allocated.add(w.pos)
        self.touched = {w.pos}   # only the copy: what halt() read on the way does not make this construct
        return Stmt(None, "revert_returndata", [])

    def _returndatasize(self, o: Operand) -> bool:
        d = self.consts.defs.get(o)
        return d is not None and d.op == "RETURNDATASIZE"

    def slot(self, pos: int, s: Stmt) -> Construct | None:
        if self.value(s.args[0]) != (None, 0):
            return None
        size = self.const(s.args[1])
        if size == 0x40:
            key, slot = self.word(None, 0), self.word(None, 0x20)
            if key is not None and slot is not None:
                return Construct(pos, Stmt(s.dest, "mapping", [slot, key]), Span(pos, None, 0, 0x40))
        elif size == 0x20:
            slot = self.word(None, 0)
            if slot is not None:
                return Construct(pos, Stmt(s.dest, "array", [slot]), Span(pos, None, 0, 0x20))
        return None

    def log(self, pos: int, s: Stmt) -> Construct | None:
        base, off = self.value(s.args[0])
        size = self.const(s.args[1])
        if (base, off) != self.fmp or size is None or size >= UNBOUNDED:
            return None
        data = self.words(base, off, off + size)
        if data is None:
            return None
        return Construct(pos, Stmt(None, s.op.lower(), s.args[2:] + data), Span(pos, base, off, off + size))

    def halt(self, s: Stmt) -> Stmt | None:
        base, off = self.value(s.args[0])
        size = self.const(s.args[1])
        if size is None or size >= UNBOUNDED:
            return None
        if s.op == "RETURN":
            data = self.words(base, off, off + size)
            return Stmt(None, "return_words", data) if data is not None else None
        if size == 0:
            return Stmt(None, "revert_empty", [])
        sel = self.bytes_at(base, off, off + 4)
        if size < 4 or not all(isinstance(b, int) for b in sel):
            return None
        selector = int.from_bytes(bytes(sel), "big")
        if selector == ERROR:
            text = self.error_text(base, off, size)
            if text is not None:
                return Stmt(None, "revert_msg", [("s", text)])
        data = self.words(base, off + 4, off + size)
        if data is None:
            return None
        if selector == PANIC and len(data) == 1 and data[0][0] == "c":
            return Stmt(None, "panic", data)
        return Stmt(None, "revert_err", [("c", selector)] + data)

    def error_text(self, base, off: int, size: int) -> str | None:
        """The message of Error(string) data: offset word 0x20, length, UTF-8 bytes, zero padding (padding the
        compiler did not write counts as zero)."""
        if self.word(base, off + 4) != ("c", 0x20):
            return None
        length = self.word(base, off + 0x24)
        if length is None or length[0] != "c" or size != 0x44 + (length[1] + 31) // 32 * 32:
            return None
        raw = self.bytes_at(base, off + 0x44, off + size)
        text, pad = raw[:length[1]], raw[length[1]:]
        if not all(isinstance(b, int) for b in text) or any(b not in (0, None) for b in pad):
            return None
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return None

    # --------------------------------------------------------------------------------------- memory messages
    def message(self, fn: FunctionIR, last: int) -> tuple[Operand, set[int], tuple[int, int]] | None:
        """(p, positions of the stores building the data, the instances clearing the tail and reverting) when this
        line builds Error(string) of the string at memory p and its jump goes on to clear the last word's tail and
        revert (name_message_reverts)."""
        cp = next((q for q, (_, _, s) in enumerate(self.stmts) if s.op == "copy"), None)
        if cp is None:
            return None
        dst, src, n = self.stmts[cp][2].args
        (fb, fo), (pb, po) = self.value(dst), self.value(src)
        ln = self.consts.defs.get(n)
        if ln is None or ln.op != "MLOAD" or self.value(ln.args[0]) != (pb, po - 0x20) or fb is None:
            return None
        if (not self._error_head(fb, fo, cp, ln.args[0])
                or any(self.stmts[q][2].dest is None and self.stmts[q][2].op not in ABSORBABLE
                       for q in range(cp + 1, len(self.stmts)))):
            return None
        tail = _ends_in_revert(fn, self.consts, last, fb)
        if tail is None:
            return None
        return ln.args[0], {w.pos for w in self.writes if w.base == fb} | {cp}, tail

    def padded_message(self, returns: bool = False) -> tuple[Operand, set[int], int] | None:
        """(p, positions of the stores and the copypad building the data, position of the REVERT) when this line
        ends `revert(F, F + 0x44 + round32(n) - F)` over Error(string) of the string at memory p built at the free
        pointer F with `copypad(F + 0x44, p + 0x20, n)`, n = mload(p): solc's ABI-encoded revert message (0.5+
        with ABI coder v2, 0.8 without the optimizer). With `returns`, also `return(F, F + 0x40 + round32(n) - F)`
        over the same encoding without the selector: one string or bytes value returned."""
        last = len(self.stmts) - 1
        rv = self.stmts[last][2] if self.stmts else None
        cp = next((q for q, (_, _, s) in enumerate(self.stmts) if s.op in ("copypad", "copy")), None)
        if rv is None or not (rv.op == "REVERT" or returns and rv.op == "RETURN") or cp is None:
            return None
        head = 0x44 if rv.op == "REVERT" else 0x40   # Error's selector, then the offset and length words
        dst, src, n = self.stmts[cp][2].args
        pad = clear = None   # after a plain copy, the legacy encoder's zeropad(dst, n) gives the end, or (solc
        if self.stmts[cp][2].op == "copy":   # 0.8.13+) mstore(dst + n, 0) clears the word after the bytes
            pad = next((q for q in range(cp + 1, last) if self.stmts[q][2].op == "zeropad"
                        and self.stmts[q][2].args == [dst, n]), None)
            if pad is None:
                clear = next((q for q in range(cp + 1, last) if q in self.above and self._clears_after(
                    self.stmts[q][2], dst, n)), None)
                if clear is None:
                    return None
        (fb, fo), (pb, po) = self.value(dst), self.value(src)
        ln, sd = self.consts.defs.get(n), self.consts.defs.get(src)
        if ln is None or ln.op != "MLOAD" or fb is None:
            return None
        after_length = self.value(ln.args[0]) == (pb, po - 0x20) or (   # src = p + 0x20, maybe from another block
            sd is not None and sd.op == "ADD" and sorted(sd.args) == sorted([ln.args[0], ("c", 0x20)]))
        if (not after_length or not self._error_head(fb, fo, cp, ln.args[0], selector=rv.op == "REVERT")
                or any(self.stmts[q][2].dest is None for q in range(cp + 1, last) if q != clear)
                or self.value(rv.args[0]) != (fb, fo - head)
                or not (self._ends_at_pad(rv.args[1], rv.args[0], pad) if pad is not None
                        else self._rounded_end(rv.args[1], rv.args[0], dst, n))):
            return None
        # the encoding's own stores: from its start F up (other objects share F's base below it: a struct built
        # before the encoding and read into what it returns keeps its stores)
        own = {w.pos for w in self.writes if w.base == fb and w.lo >= fo - head}
        return ln.args[0], own | {cp} | {q for q in (pad, clear) if q}, last

    def _clears(self) -> set[int]:
        """Positions of the stores clearing the word after a copy's bytes (`above`)."""
        out, copies = set(), []
        for q, (_, _, s) in enumerate(self.stmts):
            if s.op == "copy":
                copies.append(s.args)
            elif any(self._clears_after(s, dst, n) for dst, _, n in copies):
                out.add(q)
        return out

    def _clears_after(self, s: Stmt, dst: Operand, n: Operand) -> bool:
        """s is mstore(dst + n, 0x0), the sum in any grouping."""
        if s.op != "MSTORE" or self.consts(s.args[1]) != 0:
            return False
        return linear_minus(self.consts.defs, s.args[0], dst) == ([n], 0)

    def _ends_at_pad(self, size: Operand, start: Operand, pad: int) -> bool:
        """size is zeropad's result - start."""
        n, _, z = self.stmts[pad]
        sub = self.consts.defs.get(size)
        return sub is not None and sub.op == "SUB" and sub.args == [("t", n, z.dest), start]

    def _rounded_end(self, size: Operand, start: Operand, dst: Operand, n: Operand) -> bool:
        """size is (dst + ((n + 0x1f) & ~0x1f)) - start, the sum in any grouping (solc 0.8's optimizer writes
        (0x20 + (rounded + dst - 0x20)))."""
        d = self.consts.defs
        sub = d.get(size)
        if sub is None or sub.op != "SUB" or sub.args[1] != start:
            return False
        end = d.get(sub.args[0])
        if end is None or end.op != "ADD":
            return False
        if dst in end.args:
            rounded = end.args[1] if end.args[0] == dst else end.args[0]
        else:   # regrouped: the end's terms are dst's and one more, the constants equal
            got = linear_minus(d, sub.args[0], dst)
            if got is None or got[1] or len(got[0]) != 1:
                return False
            rounded = got[0][0]
        mask = d.get(rounded)
        if mask is None or mask.op != "AND":
            return False
        consts = [self.consts(a) for a in mask.args]
        if M - 32 not in consts:
            return False
        up = d.get(mask.args[1 - consts.index(M - 32)])
        return up is not None and up.op == "ADD" and sorted(up.args) == sorted([n, ("c", 0x1F)])

    def _error_head(self, fb, fo: int, upto: int, p: Operand, selector: bool = True) -> bool:
        """Before position upto, the 0x44 bytes below (fb, fo) are Error(string)'s head: the selector, 0x20 and the
        length read from p (without `selector`: the 0x40 bytes of the offset and the length)."""
        return ((not selector or self.bytes_at(fb, fo - 0x44, fo - 0x40, upto) == list(ERROR.to_bytes(4, "big")))
                and self.word(fb, fo - 0x40, upto) == ("c", 0x20) and self._loads(self.word(fb, fo - 0x20, upto), p))

    def _loads(self, word: Operand | None, at: Operand) -> bool:
        d = self.consts.defs.get(word) if word is not None else None
        return d is not None and d.op == "MLOAD" and d.args[0] == at

    # ---------------------------------------------------------------------------------------- string literals
    def strings(self) -> None:
        """v = mload(0x40); mstore(0x40, v + 0x20 + len rounded up); mstore(v, len); the text's bytes at v + 0x20
        (codecopy or stores of constant words), with nothing else touching memory between: v = memstring("text")."""
        written = {w.pos: w for w in self.writes}
        reads = {r.pos for r in self.reads} | set(self.found)
        for q in self.pointers:
            base, off = self.lin[("t", self.stmts[q][0], self.stmts[q][2].dest)]
            taken, size = self.allocation(q, base, off, written, reads)
            text = self.literal(base, off, taken[-1] + 1) if size else None
            if text is not None and size == 0x20 + (len(text[1]) + 31) // 32 * 32:
                s = self.stmts[q][2]   # the pointer read, the allocation's stores
                pcs = merged_pcs(s.pcs, *(self.stmts[p][2].pcs for p in taken))
                self.found[q] = Construct(q, Stmt(s.dest, "memstring", [("s", text[0])], 1, pcs), None)
                self.allocated.update(taken)

    def encodings(self) -> None:
        """Level 3: `v = mload(0x40); mstore(v, 32k); mstore(0x40, v + 32 + 32k)` (the two stores either way round,
        nothing else touching memory between) with k whole words known at v + 32, ... (stored before or between):
        `v = abi.encode(w1, ..., wk)`, the bytes `abi.encode` leaves in memory (solc 0.4-0.8, optimized or not,
        before a keccak256 or a call that takes bytes). The word stores before it are dead when nothing reads them
        (the construct writes them again)."""
        written = {w.pos: w for w in self.writes}
        reads = {r.pos for r in self.reads} | set(self.found)
        for q in self.pointers:
            if q in self.found:
                continue
            s = self.stmts[q][2]
            base, off = self.lin[("t", self.stmts[q][0], s.dest)]
            taken, size = [], 0
            for p in range(q + 1, len(self.stmts)):   # the length and the pointer bump, nothing else
                w, t = written.get(p), self.stmts[p][2]
                if p in reads or len(taken) == 2 or (w is not None and t.op != "MSTORE"):
                    break
                if w is None:
                    continue
                if (w.base, w.lo) == (None, 0x40):
                    b, o = self.value(t.args[1])
                    size = o - off if b == base else 0
                elif (w.base, w.lo) != (base, off):
                    break
                taken.append(p)
            if len(taken) != 2 or not 0x20 <= size <= 0x20 * (MAX_CALL_WORDS + 1) or size % 0x20:
                continue
            end = taken[-1] + 1
            words = [self.word(base, off + o, end) for o in range(0x20, size, 0x20)]
            if self.word(base, off, end) != ("c", size - 0x20) or None in words:
                continue
            pcs = merged_pcs(s.pcs, *(self.stmts[p][2].pcs for p in taken))
            self.found[q] = Construct(q, Stmt(s.dest, "abi_encode", words, 1, pcs), Span(q, base, off, off + size))
            self.allocated.update(taken)

    def allocation(self, q: int, base, off: int, written: dict[int, Span], reads: set[int]) -> tuple[list[int], int]:
        """The stores after the pointer read at q that allocate (base, off): the pointer bump to it + size, then
        stores inside [off, off + size); stops at anything else that touches memory. (positions, size or 0)"""
        taken, size = [], 0
        for p in range(q + 1, len(self.stmts)):
            w, s = written.get(p), self.stmts[p][2]
            if p in reads or (w is not None and s.op not in ABSORBABLE):
                break
            if w is None:
                continue
            if not size and s.op == "MSTORE" and (w.base, w.lo) == (None, 0x40):
                b, o = self.value(s.args[1])
                size = o - off if b == base and 0x20 <= o - off <= 1 << 16 else 0
                if not size:
                    break
            elif not (size and w.base == base and off <= w.lo and w.hi <= off + size):
                break
            taken.append(p)
        return taken, size

    def literal(self, base, off: int, end: int) -> tuple[str, bytes] | None:
        """(text, bytes) of the length-prefixed UTF-8 string at (base, off) before position `end`."""
        length = self.word(base, off, end)
        if length is None or length[0] != "c" or length[1] > 1 << 16:
            return None
        n = length[1]
        raw = self.bytes_at(base, off + 0x20, off + 0x20 + (n + 31) // 32 * 32, end)
        if not all(isinstance(b, int) for b in raw[:n]) or any(b not in (0, None) for b in raw[n:]):
            return None
        try:
            return bytes(raw[:n]).decode("utf-8"), bytes(raw[:n])
        except UnicodeDecodeError:
            return None

    # --------------------------------------------------------------------------------------------- dead stores
    def dead_stores(self) -> set[int]:
        """Positions of absorbable stores no statement reads any more: a construct rewrites them, a later store
        overwrites them, or the line halts, before anything else reads their bytes."""
        dead = set()
        for w in self.writes:
            if self.stmts[w.pos][2].op in ABSORBABLE and w.base is not ANY and self._dead(w):
                dead.add(w.pos)
        return dead

    def _dead(self, w: Span) -> bool:
        """No read of w's bytes before the first construct or store that rewrites all of them (or the halt). A
        statement that rewrites them reads first: a call reads its input before writing its output there (legacy
        solc's `call(g, a, 0, p + 28, n, p, 32)` reads the selector stored at p), mcopy its source."""
        rewrites = [c.pos for c in self.found.values() if c.pos > w.pos and c.span is not None and c.span.covers(w)]
        rewrites += [x.pos for x in self.writes if x.pos > w.pos and x.covers(w)]
        until = min(rewrites, default=None)
        if until is None and not self.halts:
            return False
        return not any(w.pos < r.pos and (until is None or r.pos <= until) and r.overlaps(w) for r in self.reads)


_READS_MEMORY = {*_READS, *_WRITES, "icall", "copy", "copypad", "zeropad", "memcpy", "storagecopy", "memory",
                 "memory_words", "returndata_bytes", "error_message", "error_message_checked", "error_message_legacy",
                 *STRING_STORES}


def _silent_halt(fn: FunctionIR, consts: Constants, t: int) -> bool:
    """Instance t halts without reading memory: revert(x, 0), invalid, stop."""
    if fn.graph.edges[t].kind != "halt" or t in fn.removed:
        return False
    for s in fn.body[t]:
        if s.op == "REVERT" and consts(s.args[1]) == 0:
            continue
        if s.op in _READS_MEMORY or s.op in HALTS:
            return False
    return True


def guard_next(fn: FunctionIR, consts: Constants, n: int) -> int | None:
    """The instance a conditional jump at n goes on to when its other side halts without reading memory (a guard:
    `if extcodesize(a) goto b2 else b1` with b1: revert()), entered only from n; None otherwise. Memory written
    before the guard and rewritten after it is read on neither side."""
    e = fn.graph.edges[n]
    if e.kind != "jumpi" or len(e.trues) != 1 or e.false is None or e.trues[0] == e.false:
        return None
    for t, other in ((e.trues[0], e.false), (e.false, e.trues[0])):
        if t != n and t in fn.single and t not in fn.entries and _silent_halt(fn, consts, other):
            return t
    return None


def memory_lines(fn: FunctionIR, consts: Constants) -> list[list[int]]:
    """The straight lines (rewrite.chains), each going on through guards (guard_next): where memory patterns
    live, as solc puts a code-size check between a call's encoding and the call."""
    nxt = {n: chain_next(fn, n) or guard_next(fn, consts, n) for n in fn.ids if n not in fn.removed}
    inner = {t for t in nxt.values() if t is not None}
    out = []
    for n in nxt:
        if n in inner:
            continue
        line, t = [], n
        while t is not None and t not in line:
            line.append(t)
            t = nxt.get(t)
        out.append(line)
    return out


def name_memory(fn: FunctionIR, code: bytes, level3: bool = False) -> None:
    """Replace recognised statements by their constructs and drop the stores nobody reads any more. At level 3, a
    free-memory pointer stored from a value the model cannot follow is a new free base (so that a return or log
    built after an ABI decode of return data is recognised), and words encoded into memory are `abi.encode(...)`."""
    consts = Constants(definitions(fn))
    for line in memory_lines(fn, consts):
        if not any(s.op in _MEMORY for n in line for s in fn.body[n]):
            continue
        model = _Line(fn, code, consts, line, level3)
        model.walk()
        model.strings()
        if level3:
            model.encodings()
        if not model.found and not model.halts:
            continue
        dead = model.dead_stores() | model.allocated
        drop = {(model.stmts[p][0], model.stmts[p][1]) for p in dead}
        for c in model.found.values():
            n, k, _ = model.stmts[c.pos]
            fn.body[n][k] = c.stmt
        for n in line:
            fn.body[n] = [s for k, s in enumerate(fn.body[n]) if (n, k) not in drop]


def name_message_reverts(fn: FunctionIR, code: bytes, level3: bool = False) -> None:
    """`require(cond, message)` with a message in memory, as solc 0.4-0.7 encodes it: at the free pointer F the
    Error selector, 0x20 and the message's length, its words copied (copy(F + 0x44, p + 0x20, n)), the bytes past
    its end in the last word cleared, revert(F, 0x44 + n rounded up). Three blocks become revert(p): reverts with
    Error(string) of the length-prefixed string at memory p, padded with zeros. Level 3 also takes the form of solc
    0.8.13+ (copy(F + 0x44, p + 0x20, n), then mstore(F + 0x44 + n, 0x0), in one line), and a return of one
    string or bytes value encoded the same way without the selector: `return bytes(p)`."""
    if not any(s.op in ("copy", "copypad") for n in fn.ids for s in fn.body[n]):
        return
    consts = Constants(definitions(fn))
    for line in chains(fn):
        last = line[-1]
        e = fn.graph.edges[last]
        if e.kind == "halt" and any(s.op in ("copy", "copypad", "zeropad") for n in line for s in fn.body[n]):
            _padded_message_revert(fn, code, consts, line, level3)
            continue
        if e.kind != "jumpi" or last in fn.decided or len(e.trues) != 1 or e.false is None:
            continue
        if not any(s.op == "copy" for n in line for s in fn.body[n]):
            continue
        model = _Line(fn, code, consts, line)
        model.walk()
        found = model.message(fn, last)
        if found is None:
            continue
        p, drop, tail = found
        dropped = {(model.stmts[q][0], model.stmts[q][1]) for q in drop}
        # revert(p) stands for the stores and copy it absorbs, the branch on the tail, the blocks after it
        pcs = merged_pcs(*(model.stmts[q][2].pcs for q in drop), *(s.pcs for m in tail for s in fn.body[m]),
                         *((fn.syms[m].last_pc,) for m in (last, *tail) if fn.syms[m].last_pc is not None))
        for n in line:
            fn.body[n] = [s for k, s in enumerate(fn.body[n]) if (n, k) not in dropped]
        fn.body[last].append(Stmt(None, "revert_string", [p], 1, pcs))
        fn.graph.edges[last] = Edges("halt", [])
        fn.decided.add(last)
        fn.halts.add(last)
    prune(fn)


def _padded_message_revert(fn: FunctionIR, code: bytes, consts: Constants, line: list[int], level3: bool) -> None:
    """The line's ABI-encoded revert message (_Line.padded_message) becomes revert(p); level 3's returned string
    or bytes value, `return bytes(p)`."""
    model = _Line(fn, code, consts, line, clears=level3)
    model.walk()
    found = model.padded_message(returns=level3)
    if found is None:
        return
    p, drop, last = found
    dropped = {(model.stmts[q][0], model.stmts[q][1]) for q in drop | {last}}
    pcs = merged_pcs(*(model.stmts[q][2].pcs for q in drop | {last}))
    for n in line:
        fn.body[n] = [s for k, s in enumerate(fn.body[n]) if (n, k) not in dropped]
    op = "revert_string" if model.stmts[last][2].op == "REVERT" else "return_bytes"
    fn.body[line[-1]].append(Stmt(None, op, [p], 1, pcs))


def _ends_in_revert(fn: FunctionIR, consts: Constants, last: int, fmp) -> tuple[int, int] | None:
    """(M, R) when `last` branches on the message's tail: to R directly, or through one block storing the cleared
    word (M); R reverts from the free pointer to the end it is passed: `F = mload(0x40); revert(F, end - F)`."""
    e = fn.graph.edges[last]
    a, b = e.trues[0], e.false
    for r, m in ((a, b), (b, a)):
        if m in fn.single and fn.graph.edges[m].plain_jump == r and r not in fn.single:
            break
    else:
        return None
    stores = [s for s in fn.body[m] if s.dest is None]
    if [s.op for s in stores] != ["MSTORE"] or sorted(fn.preds[r]) != sorted([last, m]):
        return None
    rev = [s for s in fn.body[r] if s.dest is None]
    if len(rev) != 1 or rev[0].op != "REVERT":
        return None
    start, size = consts.defs.get(rev[0].args[0]), consts.defs.get(rev[0].args[1])
    ok = (start is not None and start.op == "MLOAD" and start.args == [("c", 0x40)] and size is not None
          and size.op == "SUB" and size.args[1] == rev[0].args[0] and size.args[0][:2] == ("p", r))
    return (m, r) if ok else None


# ------------------------------------------------------------------------------------------- allocation
def fold_allocations(fn: FunctionIR, used: dict[Operand, int]) -> None:
    """Level 3: solc's allocation at the free pointer, `p = mload(0x40)` then, later in the same instance,
    `mstore(0x40, p + n)`, prints as one statement where the store was: `p = alloc(n)`, p the free pointer, which
    moves n bytes on. Exact: only pure statements and reads lie between the two (nothing writes the word at 0x40; a
    mapping/array slot hashes in the scratch words below it), none of them but the addition reads p, and n does not
    depend on p; the addition is read by the store alone."""
    for n in fn.ids:
        if n in fn.removed:
            continue
        body, live = fn.body[n], fn.live[n]
        for i, s in enumerate(body):
            if not live[i] or s.op != "MLOAD" or s.args != [("c", 0x40)] or s.dest is None:
                continue
            p = ("t", n, s.dest)
            between: dict[Operand, tuple[int, Stmt]] = {}   # what the statements after the load define
            for j in range(i + 1, len(body)):
                t = body[j]
                if not live[j]:
                    continue
                if t.op == "MSTORE" and t.args[0] == ("c", 0x40):
                    _allocation(fn, n, i, j, p, between, used)
                    break
                if t.dest is None or t.ndest != 1 or not (is_pure(t) or t.op in READS or t.op == "CALLDATALOAD"):
                    break
                between[("t", n, t.dest)] = (j, t)


def _allocation(fn: FunctionIR, n: int, i: int, j: int, p: Operand, between: dict, used: dict[Operand, int]) -> None:
    """Replace the load at i and the store at j by `p = alloc(size)` at j when the store writes p + size (a read
    between may stay before the allocation: it reads no memory the allocation writes, the word at 0x40 included,
    since before the store that word is the same)."""
    at, add = between.get(fn.body[n][j].args[1], (None, None))
    if add is None or add.op != "ADD" or p not in add.args or used.get(("t", n, add.dest)) != 1:
        return
    size = add.args[1] if add.args[0] == p else add.args[0]
    if size == p or any(p in t.args for _, t in between.values() if t is not add):
        return   # the size depends on p, or a statement between reads p (it would read it before it is defined)
    load, store = fn.body[n][i], fn.body[n][j]
    fn.body[n][j] = Stmt(load.dest, "alloc", [size], 1, merged_pcs(load.pcs, add.pcs, store.pcs))
    fn.live[n][i] = fn.live[n][at] = False
    used[p] -= 1
    used.pop(("t", n, add.dest), None)

