"""Level 2: masks, sign-extensions and double negations as casts (uint160(x), int8(x), bytes4(x), bool(x)), shifted
masks as fields (x[8:160], sload(slot)[8:160] for packed storage); a cast that cannot change its operand (an
address argument, caller, a narrower cast) disappears."""
from __future__ import annotations

import re

from .ir import STRING_STORES, Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, branches, chase, replace
from .values import Values

M = 1 << 256
ADDRESS_ENV = ("address", "origin", "caller", "coinbase")
ONE_BIT = ("ISZERO", "LT", "GT", "SLT", "SGT", "EQ", "bool")
WRITES_STORAGE = ("SSTORE", "sstore_field", *STRING_STORES,   # a call may re-enter
                  "CALL", "CALLCODE", "DELEGATECALL", "CREATE", "CREATE2", "call_abi", "delegatecall_abi",
                  "checked_call", "checked_call_abi", "checked_delegatecall", "checked_delegatecall_abi")
_UINT = re.compile(r"uint(\d+)")
_INT = re.compile(r"int(\d+)")
_BYTES = re.compile(r"bytes(\d+)")


def _low_mask_bits(c: int) -> int | None:
    """k when c = 2**k - 1 (k >= 1)."""
    return c.bit_length() if c and c & (c + 1) == 0 else None


def _high_mask_bytes(c: int) -> int | None:
    """N when c keeps the top N bytes (bytesN's mask, N < 32)."""
    low = (M - 1) ^ c
    k = _low_mask_bits(low)
    return (256 - k) // 8 if k is not None and k % 8 == 0 and 0 < k < 256 else None


class Ranges:
    """What is known of a value's bits: an unsigned bound, a sign-extended width, zero low bits. Arguments are
    words of calldata, whatever evmole guessed for their type: the compiler's own casts say what they hold."""

    def __init__(self, defs: dict[Operand, Stmt], consts: Constants, fits: dict[int, str] | None = None):
        self.defs, self.consts = defs, consts
        self.fits = fits or {}   # level 3: arguments validated against their declared type (FunctionIR.fits)

    def bits(self, o: Operand, depth: int = 0) -> int:
        """The value is below 2**bits."""
        c = self.consts(o)
        if c is not None:
            return c.bit_length()
        if o[0] == "e":
            return 160 if o[1] in ADDRESS_ENV else 256
        if o[0] == "a" and o[1] in self.fits:
            cast = self.fits[o[1]]
            m = _UINT.fullmatch(cast)
            return 1 if cast == "bool" else int(m.group(1)) if m else 256
        s = self.defs.get(o)
        if s is None or depth > 8:
            return 256
        return min(256, self._stmt_bits(s, depth + 1))

    def _stmt_bits(self, s: Stmt, depth: int) -> int:
        if s.op in ONE_BIT:
            return 1
        m = _UINT.fullmatch(s.op)
        if m:
            return int(m.group(1))
        if s.op in ("field", "sload_field"):
            return s.args[-1][1]
        if s.op == "BYTE":
            return 8
        if s.op == "AND":
            return min(self.bits(a, depth) for a in s.args)
        if s.op in ("OR", "XOR"):
            return max(self.bits(a, depth) for a in s.args)
        sh = _right_shift(s, self.consts)
        if sh is not None:
            return max(0, self.bits(sh[1], depth) - sh[0])
        if s.op == "MOD" and self.consts(s.args[1]):
            return (self.consts(s.args[1]) - 1).bit_length()
        return 256

    def signed(self, o: Operand) -> int | None:
        """The value is a K-bit two's-complement number sign-extended to 256 bits: K, else None."""
        s = self.defs.get(o)
        m = _INT.fullmatch(s.op) if s is not None else None
        return int(m.group(1)) if m else None

    def low_zeros(self, o: Operand, depth: int = 0) -> int:
        """The low bits known to be zero."""
        c = self.consts(o)
        if c is not None:
            return (c & -c).bit_length() - 1 if c else 256
        s = self.defs.get(o)
        if s is None or depth > 8:
            return 0
        m = _BYTES.fullmatch(s.op)
        if m:
            return 256 - 8 * int(m.group(1))
        if s.op == "AND":
            return max(self.low_zeros(a, depth + 1) for a in s.args)
        if s.op == "SHL" and self.consts(s.args[0]) is not None:
            return min(256, self.consts(s.args[0]) + self.low_zeros(s.args[1], depth + 1))
        return 0


def _right_shift(s: Stmt, consts: Constants) -> tuple[int, Operand] | None:
    """(shift, value) of value >> shift or value / 2**shift with a constant shift."""
    if s.op == "SHR" and consts(s.args[0]) is not None:
        return consts(s.args[0]), s.args[1]
    d = consts(s.args[1]) if s.op == "DIV" else None
    if d and d & (d - 1) == 0:
        return d.bit_length() - 1, s.args[0]
    return None


def _split_const(args: list[Operand], consts: Constants) -> tuple[int, Operand] | None:
    """(constant, other operand) of a binary op with exactly one constant side."""
    a, b = consts(args[0]), consts(args[1])
    if a is not None and b is None:
        return a, args[1]
    if b is not None and a is None:
        return b, args[0]
    return None


class _Caster:
    def __init__(self, ranges: Ranges):
        self.r = ranges

    def __call__(self, s: Stmt) -> Operand | None:
        """Rewrite s in place as a cast or field; or return the operand it always equals."""
        if s.op == "AND":
            cx = _split_const(s.args, self.r.consts)
            return self.mask(s, *cx) if cx else None
        b = self.r.consts(s.args[0]) if s.op == "SIGNEXTEND" else None
        if b is not None and b < 31:
            k = 8 * (b + 1)
            x = s.args[1]
            if (self.r.signed(x) or 257) <= k or self.r.bits(x) < k:
                return x
            s.op, s.args = f"int{k}", [x]
        elif s.op == "EQ" and ("c", 0) in s.args:
            s.op, s.args = "ISZERO", [s.args[1] if s.args[0] == ("c", 0) else s.args[0]]
            return self(s)
        elif s.op == "ISZERO":
            inner = self.r.defs.get(s.args[0])
            if inner is not None and inner.op == "ISZERO":
                s.op, s.args = "bool", [inner.args[0]]
                s.absorb(inner)
                return self(s)
            if inner is not None and inner.op == "bool":
                s.args = [inner.args[0]]
                s.absorb(inner)
        elif s.op == "bool" and self.r.bits(s.args[0]) <= 1:
            return s.args[0]
        elif s.op == "SUB":   # (a + b) - a = b: a length from an end pointer and its start
            d = self.r.defs.get(s.args[0])
            if d is not None and d.op == "ADD" and s.args[1] in d.args:
                return d.args[1] if d.args[0] == s.args[1] else d.args[0]
        return None

    def mask(self, s: Stmt, c: int, x: Operand) -> Operand | None:
        k = _low_mask_bits(c)
        if k is not None:
            if self.r.bits(x) <= k:
                return x
            d = self.r.defs.get(x)
            sh = _right_shift(d, self.r.consts) if d is not None else None
            if sh is not None:
                s.op, s.args = "field", [sh[1], ("c", sh[0]), ("c", k)]
                s.absorb(d)
            elif k % 8 == 0:
                s.op, s.args = f"uint{k}", [x]
            return None
        n = _high_mask_bytes(c)
        if n is not None:
            if self.r.low_zeros(x) >= 256 - 8 * n:
                return x
            s.op, s.args = f"bytes{n}", [x]
        return None


def fold_casts(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt]) -> None:
    cast = _Caster(Ranges(defs, Constants(defs)))
    folded = values.folded.keys()
    for _ in range(2):   # instances are mostly in definition order; a second sweep catches loop-carried uses
        for n in fn.ids:
            if n in fn.removed:
                continue
            for s in fn.body[n]:
                if s.dest is None:
                    continue
                if not folded.isdisjoint(s.args):
                    s.args = [chase(values, a) for a in s.args]
                same = cast(s)
                if same is not None:
                    replace(values, ("t", n, s.dest), chase(values, same))


def merge_storage_fields(fn: FunctionIR, used: dict[Operand, int]) -> None:
    """v = sload(slot) read only by a field or cast after it (no storage write between) prints as one line:
    sload(slot)[offset:bits]. `used`: the uses eliminate_dead left."""
    for n in fn.ids:
        body, live = fn.body[n], fn.live[n]
        for k, s in enumerate(body):
            offset_bits = _field_of(s) if live[k] else None
            if offset_bits is None:
                continue
            j = next((j for j in range(k) if live[j] and body[j].dest is not None
                      and ("t", n, body[j].dest) == s.args[0]), None)
            if (j is not None and body[j].op == "SLOAD" and used.get(s.args[0]) == 1
                    and not any(b.op in WRITES_STORAGE for b, on in zip(body[j + 1:k], live[j + 1:k]) if on)):
                s.op, s.args = "sload_field", [body[j].args[0], *offset_bits]
                s.absorb(body[j])
                live[j] = False


def _field_of(s: Stmt) -> list[Operand] | None:
    """[offset, bits] of x[offset:bits] or uintK(x) (offset 0)."""
    if s.op == "field":
        return s.args[1:]
    m = _UINT.fullmatch(s.op)
    return [("c", 0), ("c", int(m.group(1)))] if m else None


def fold_negations(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt]) -> None:
    """`if iszero(x) goto A else B` tests x with the branches swapped (`if x goto B else A`), `if bool(x)` tests x:
    the negation's line goes when nothing else reads it."""
    for n, yes, no in branches(fn):
        cond, swap = values.condition(n), False
        s = defs.get(cond)
        tested = set(fn.jump_pcs.get(n, ()))
        while s is not None and s.op in ("ISZERO", "bool"):
            cond, swap = s.args[0], swap != (s.op == "ISZERO")
            tested.update(s.pcs)   # the negations the jump line now tests through
            s = defs.get(cond)
        fn.conds[n] = cond
        if tested:
            fn.jump_pcs[n] = tuple(tested)
        if swap:
            fn.graph.edges[n] = Edges("jumpi", [no], yes)


def fold_field_stores(fn: FunctionIR, defs: dict[Operand, Stmt]) -> int:
    """Level 3: a write of one field of a packed storage word, `sstore(s, (x << off) | (~(mask << off) &
    sload(s)))` in any of solc's forms (the kept bits as `bytesN(sload(s))` or an AND with a constant, the new bits
    as a shift, a product by 2**off or a constant, nothing for a cleared field), prints as `sstore(s)[off:bits] =
    x`, the read side's notation: the bits [off, off + bits) of slot s become x, the rest stays. Exact: the kept
    bits are exactly the complement of one run of bits, x is known to fit it (Ranges), and the word read is slot
    s read in the same instance with no storage write or call between. Returns the number folded."""
    consts = Constants(defs)
    ranges = Ranges(defs, consts, fn.fits)
    folded = 0
    for n in fn.ids:
        if n in fn.removed:
            continue
        body, live = fn.body[n], fn.live[n]
        for k, s in enumerate(body):
            if s.op != "SSTORE" or not live[k]:
                continue
            got = _field_store(s, body, live, k, n, defs, consts, ranges)
            if got is not None:
                off, bits, x, parts = got
                body[k] = Stmt(None, "sstore_field", [s.args[0], ("c", off), ("c", bits), x], 1,
                               merged_pcs(s.pcs, *(p.pcs for p in parts)))
                folded += 1
    return folded


def _field_store(s: Stmt, body: list[Stmt], live: list[bool], k: int, n: int, defs: dict[Operand, Stmt],
                 consts: Constants, ranges: Ranges):
    """(off, bits, x, statements it stands for) of SSTORE s, statement k of instance n, when it writes one field
    (fold_field_stores)."""
    slot, value = s.args
    v = defs.get(value)
    if v is None:
        return None
    kept = _kept_bits(v, slot, body, live, k, n, defs, consts)
    if kept is not None:   # the field cleared
        keep, parts = kept
        new, x_parts = ("c", 0), []
    elif v.op == "OR":
        for a, b in (v.args, v.args[::-1]):
            d = defs.get(a)
            kept = _kept_bits(d, slot, body, live, k, n, defs, consts) if d is not None else None
            if kept is not None:
                break
        else:
            return None
        keep, parts = kept
        new, x_parts = b, [v]
    else:
        return None
    run = (M - 1) ^ keep   # the field: one run of ones
    if not run:
        return None
    off = (run & -run).bit_length() - 1
    bits = (run >> off).bit_length()
    if (run >> off) & ((run >> off) + 1):
        return None
    x = _unshifted(new, off, defs, consts)
    if x is None or ranges.bits(x) > bits:
        return None
    return off, bits, x, [*parts, *x_parts, *([defs[new]] if new in defs and x != new else [])]


def _kept_bits(d: Stmt, slot: Operand, body: list[Stmt], live: list[bool], k: int, n: int,
               defs: dict[Operand, Stmt], consts: Constants):
    """(mask of the bits kept, statements) when d keeps some bits of slot's word read earlier in instance n, before
    its statement k (an AND with a constant, bytesN or uintK), else None."""
    if d.op == "AND":
        c0, c1 = consts(d.args[0]), consts(d.args[1])
        keep, word = (c0, d.args[1]) if c0 is not None and c1 is None else (c1, d.args[0]) if c1 is not None \
            and c0 is None else (None, None)
    else:   # bytesN(word) keeps the top N bytes, uintK(word) the low K bits
        m, u = _BYTES.fullmatch(d.op), _UINT.fullmatch(d.op)
        keep, word = ((M - 1) ^ ((1 << (256 - 8 * int(m.group(1)))) - 1), d.args[0]) if m else \
            ((1 << int(u.group(1))) - 1, d.args[0]) if u else (None, None)
    if keep is None or word[0] != "t" or word[1] != n:
        return None
    j = next((j for j in range(k) if body[j].dest is not None and ("t", n, body[j].dest) == word), None)
    if j is None or body[j].op != "SLOAD" or body[j].args[0] != slot:
        return None
    if any(b.op in WRITES_STORAGE or b.op == "icall" for b, on in zip(body[j + 1:k], live[j + 1:k]) if on):
        return None
    return keep, [d, body[j]]


def _unshifted(new: Operand, off: int, defs: dict[Operand, Stmt], consts: Constants) -> Operand | None:
    """x when new = x << off (a shift, a product by 2**off, or a constant whose low off bits are zero)."""
    c = consts(new)
    if c is not None:
        return ("c", c >> off) if c & ((1 << off) - 1) == 0 else None
    if off == 0:
        return new
    d = defs.get(new)
    if d is None:
        return None
    if d.op == "SHL" and consts(d.args[0]) == off:
        return d.args[1]
    if d.op == "MUL":
        for a, b in (d.args, d.args[::-1]):
            if consts(a) == 1 << off:
                return b
    return None
