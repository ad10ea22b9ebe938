"""Level 2: the call's ABI. The calldata words of the header's arguments become named operands (arg0, arg1, ...), and
the checks a compiler wraps around decoding are folded into the header: a non-payable function's callvalue check
and the short-calldata check settle their branches. Level-2 TAC describes calls whose calldata holds the header's
arguments, each within its type (docs/tac-format.md, Level 2)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..evm import split_types
from .ir import FunctionIR, Operand, Stmt
from .layout import failing_path
from .rewrite import Constants, branches, chain_pcs, decide, line, replace
from .simplify import M
from .values import Values

NON_PAYABLE = ("nonpayable", "view", "pure")
CHECK_OPS = ("ISZERO", "EQ", "LT", "GT", "SLT", "SGT", "ADD", "SUB", "NOT")   # what a folded check computes


def static_words(t: str) -> int | None:
    """Head words a static type occupies; None for a dynamic type (its head is one offset word)."""
    if t in ("bytes", "string") or t.endswith("[]"):
        return None
    m = re.fullmatch(r"(.+)\[(\d+)\]", t)
    if m:
        inner = static_words(m.group(1))
        return None if inner is None else inner * int(m.group(2))
    if t.startswith("("):
        parts = [static_words(p) for p in split_types(t[1:-1])]
        return None if None in parts else sum(parts)
    return 1


def function_header(name: str, args: str, mutability: str, level: int = 1) -> str:
    """`function name(args) mutability`; at level 3 without `nonpayable`, as Solidity writes it: a function that
    names no mutability is non-payable (the fact stays, in fewer tokens)."""
    return f"function {name}({args})" + ("" if level >= 3 and mutability == "nonpayable" else f" {mutability}")


@dataclass(frozen=True)
class Header:
    """A TAC unit's header line read back (function_header's inverse): `function 0x095ea7b3(arg0: address, arg1:
    uint256) view` has name "0x095ea7b3", params [("arg0", "address"), ("arg1", "uint256")], mutability "view".
    Level 1 lists types only (names ""); level 3 leaves out `nonpayable` (mutability "")."""
    name: str
    params: tuple[tuple[str, str], ...]
    mutability: str

    @property
    def named(self) -> bool:
        """Whether the arguments are named operands (levels 2-3, or no arguments at all)."""
        return all(n for n, _ in self.params)

    @property
    def selector(self) -> str:
        return self.name if re.fullmatch(r"0x[0-9a-f]{8}", self.name) else ""


_HEADER_START = re.compile(r"function\s+([A-Za-z_$0-9][\w$]*)\(")
# a block label as emit prints it: bN, bN(params) at levels 2-3, block_0x1a (labels="offset")
TAC_LABEL = re.compile(r"^\s*(?:b\d+|block_\w+)(?:\(.*\))?:\s*$")


def parse_header(tac: str) -> Header | None:
    """The header of a TAC example's own unit (its first line; a known-signature hint after `  // ` is ignored), or
    None where the first line is not one."""
    line = (tac or "").split("\n", 1)[0].split("  // ", 1)[0].rstrip()
    m = _HEADER_START.match(line)
    if not m:
        return None
    depth, close = 1, -1
    for i in range(m.end(), len(line)):
        depth += (line[i] == "(") - (line[i] == ")")
        if depth == 0:
            close = i
            break
    rest = line[close + 1:].strip() if close >= 0 else "?"
    if close < 0 or not re.fullmatch(r"[a-z ]*", rest):
        return None
    params = []
    for p in split_types(line[m.end():close]):
        name, colon, t = p.partition(":")
        params.append((name.strip(), t.strip()) if colon else ("", name.strip()))
    return Header(m.group(1), tuple(params), rest)


def starts_as_tac(text: str) -> bool:
    """`text` begins as a TAC example does: a unit header (parse_header) or, for a body without one, a block
    label."""
    first = text.lstrip().split("\n", 1)[0]
    return parse_header(first) is not None or bool(TAC_LABEL.match(first))


@dataclass(frozen=True)
class Abi:
    types: tuple[str, ...]
    mutability: str

    @classmethod
    def of(cls, arguments: str, mutability: str) -> "Abi":
        return cls(tuple(split_types(arguments)), mutability)

    def header(self, name: str, level: int = 2) -> str:
        return function_header(name, ", ".join(f"arg{i}: {t}" for i, t in enumerate(self.types)), self.mutability,
                               level)

    @property
    def head_size(self) -> int:
        return 32 * sum(static_words(t) or 1 for t in self.types)

    def word_args(self) -> dict[int, int]:
        """Calldata offset → index of each argument that is one word (a value, or a dynamic argument's offset)."""
        out, off = {}, 4
        for i, t in enumerate(self.types):
            w = static_words(t)
            if w in (None, 1):
                out[off] = i
            off += 32 * (w or 1)
        return out


def name_arguments(fn: FunctionIR, values: Values, abi: Abi) -> None:
    """calldataload(0x4 + 32k) of a one-word argument is that argument: ("a", i), printed argI (the load maps to the
    header, which names it)."""
    where = abi.word_args()
    for n in fn.ids:
        for s in fn.body[n]:
            if s.op == "CALLDATALOAD" and s.args[0][0] == "c" and s.args[0][1] in where:
                replace(values, ("t", n, s.dest), ("a", where[s.args[0][1]]))
                fn.header_pcs.update(s.pcs)


def cleanup_cast(t: str) -> str | None:
    """The cast a compiler's cleanup of an argument of ABI type t computes (the op of `uint160(arg0)`); None for
    types held in a whole word or not one word."""
    if t == "address":
        return "uint160"
    if t == "bool":
        return "bool"
    m = re.fullmatch(r"(uint|int|bytes)(\d+)", t)
    if m is None or t in ("uint256", "int256", "bytes32"):
        return None
    return t


def negated(o: Operand, defs: dict[Operand, Stmt]) -> tuple[Operand, bool]:
    """o with its ISZERO chain stripped, and whether an odd number of ISZEROs negated it: the checks below read a
    condition's value through the compiler's negations."""
    neg, s = False, defs.get(o)
    while s is not None and s.op == "ISZERO":
        o, neg = s.args[0], not neg
        s = defs.get(o)
    return o, neg


def validated_cast(o: Operand, defs: dict[Operand, Stmt], abi: Abi) -> tuple[bool, Operand, Operand] | None:
    """The decoder's validation of an argument, `argK == T(argK)` with T the cast of argK's declared type (or its
    negation): (the condition's value when the argument is within that type, the cast, the argument)."""
    o, neg = negated(o, defs)
    s = defs.get(o)
    if s is None or s.op != "EQ":
        return None
    for arg, cast in ((s.args[0], s.args[1]), (s.args[1], s.args[0])):
        d = defs.get(cast)
        if (arg[0] == "a" and arg[1] < len(abi.types) and d is not None and d.args == [arg]
                and cleanup_cast(abi.types[arg[1]]) == d.op):
            return not neg, cast, arg
    return None


def truth(o: Operand, defs: dict[Operand, Stmt]) -> bool | None:
    """A condition's value when it is x == x or its negation. A constant condition is not settled: it is mostly an
    immutable variable, which deployedBytecode holds as zero until deployment, and the branch it hides is code the
    source has (an external call, an event)."""
    o, neg = negated(o, defs)
    s = defs.get(o)
    return (not neg) if s is not None and s.op == "EQ" and s.args[0] == s.args[1] else None


def check_passes(o: Operand, defs: dict[Operand, Stmt], abi: Abi) -> bool | None:
    """The value of a compiler's call check in every call the header describes: callvalue (non-payable) and
    calldatasize - 4 < K with K within the arguments' head are 0; None when o is neither (or their negation)."""
    o, neg = negated(o, defs)
    if o == ("e", "callvalue"):
        return neg if abi.mutability in NON_PAYABLE else None
    s = defs.get(o)
    if s is not None and s.op in ("LT", "SLT", "GT", "SGT"):
        small, big = (s.args[0], s.args[1]) if s.op in ("LT", "SLT") else (s.args[1], s.args[0])
        if _arguments_size(small, defs) and big[0] == "c" and big[1] <= abi.head_size:
            return neg
    return None


def _arguments_size(o: Operand, defs: dict[Operand, Stmt]) -> bool:
    """o is calldatasize - 4, however the compiler spelled it (calldatasize + ~0x3, (calldatasize - 4 + 4) - 4)."""
    return _past_calldatasize(o, defs, Constants(defs)) == M - 4


def _past_calldatasize(o: Operand, defs: dict[Operand, Stmt], consts: Constants, depth: int = 0) -> int | None:
    """c when o = calldatasize + c (mod 2**256) through additions and subtractions of constants."""
    if o == ("e", "calldatasize"):
        return 0
    s = defs.get(o)
    if s is None or depth > 8 or s.op not in ("ADD", "SUB"):
        return None
    a, b = consts(s.args[0]), consts(s.args[1])
    if s.op == "SUB" and b is not None:
        x = _past_calldatasize(s.args[0], defs, consts, depth + 1)
        return None if x is None else (x - b) % M
    if s.op == "ADD" and (a is None) != (b is None):
        x = _past_calldatasize(s.args[1] if a is not None else s.args[0], defs, consts, depth + 1)
        return None if x is None else (x + (a if a is not None else b)) % M
    return None


def _empty_revert(fn: FunctionIR, n: int) -> bool:
    """n's straight line does nothing but revert(0x0, 0x0)."""
    stmts = [s for m in line(fn, n) for s in fn.body[m]]
    return len(stmts) == 1 and stmts[0].op == "REVERT" and stmts[0].args == [("c", 0), ("c", 0)]


_DECODER_MAX = (1 << 64) - 1   # solc's bound on calldata offsets and lengths
_LEGACY_MAX = 1 << 32          # the legacy decoder's (solc 0.4-0.7 without abicoder v2): `x > 0x100000000` fails


def _derives(o: Operand, defs: dict[Operand, Stmt], leaf, limit: int = 256, past_limit: bool = False) -> bool:
    """Some operand o is computed from satisfies leaf (each definition visited once; past `limit` of them, the
    answer is `past_limit`, whichever is the cautious one for the caller)."""
    todo, seen = [o], {o}
    while todo:
        if len(seen) > limit:
            return past_limit
        x = todo.pop()
        if leaf(x):
            return True
        s = defs.get(x)
        for a in s.args if s is not None else ():
            if a not in seen:
                seen.add(a)
                todo.append(a)
    return False


def decoder_check(o: Operand, defs: dict[Operand, Stmt], abi: Abi) -> bool | None:
    """The value, for calldata that holds the header's arguments, of a check the ABI decoder makes on a dynamic
    argument (bytes, string, T[]): its offset or length at most 2**64 - 1 (`arg2 <= 0xffffffffffffffff`), or an
    offset, a length or their end within calldata (`slt(off + 0x1f, calldatasize)`, `off + 32 * n <= calldatasize`).
    None for anything else: the compared value must come from a dynamic argument's offset or from calldata read at
    an address computed from one, and nothing else in the source compares with calldatasize. The legacy decoder's
    (`x > 0x100000000`, and several such checks or-ed, `(len > 0x100000000) | (end > calldatasize)`) alike: calldata
    is far below 2**32 bytes (its gas)."""
    o, neg = negated(o, defs)
    s = defs.get(o)
    if s is not None and s.op == "OR":   # a check of each: true when either is
        parts = [decoder_check(a, defs, abi) for a in s.args]
        return None if None in parts else any(parts) != neg
    if s is None or s.op not in ("LT", "GT", "SLT", "SGT"):
        return None
    small, big = (s.args[0], s.args[1]) if s.op in ("LT", "SLT") else (s.args[1], s.args[0])

    def dynamic(x: Operand) -> bool:
        return x[0] == "a" and x[1] < len(abi.types) and static_words(abi.types[x[1]]) is None

    def size(x: Operand) -> bool:
        return x == ("e", "calldatasize")

    def decoded(x: Operand) -> bool:   # from a dynamic argument, calldatasize not involved
        return _derives(x, defs, dynamic) and not _derives(x, defs, size, past_limit=True)

    if big == ("c", _DECODER_MAX + 1) and decoded(small) or small in (("c", _DECODER_MAX), ("c", _LEGACY_MAX)) \
            and decoded(big):
        return (big == ("c", _DECODER_MAX + 1)) != neg  # x < 2**64 holds; 2**64 - 1 < x (2**32 < x) does not
    if _derives(big, defs, size) and decoded(small):
        return not neg                                  # within calldata
    if _derives(small, defs, size) and decoded(big):
        return neg
    return None


def fold_checks(fn: FunctionIR, values: Values, abi: Abi, defs: dict[Operand, Stmt], casts: bool = False) -> None:
    """In the entry chain, a callvalue or short-calldata check whose failing side is revert(0x0, 0x0) always passes
    for calls the header describes: its branch is settled (the check is folded into the header). With `casts`
    (level 3), so does the decoder's validation of an argument against its declared type, `require(arg0 ==
    uint160(arg0))` for `arg0: address` (evmole's guess of a type is trusted only where the compiler validates
    exactly that type), and the cast then reads as the argument, and so do the decoder's bounds on a dynamic
    argument's offset and length (`decoder_check`). Branches on x == x are settled anywhere. Callers
    prune what became unreachable. A folded check (its branch, comparison and revert) maps to the header; a
    settled x == x to the jump line left."""
    settled = True
    while settled:   # a settled check extends the entry chain to the next one
        settled = False
        entry = {m for e in fn.entries for m in line(fn, e)}
        for n, yes, no in list(branches(fn)):
            cond = values.condition(n)
            t = truth(cond, defs)
            if t is not None:
                fn.jump_pcs[n] = tuple(chain_pcs(cond, defs, ("ISZERO", "EQ"), set(fn.jump_pcs.get(n, ()))))
            else:
                t = check_passes(cond, defs, abi) if n in entry else None
                validated = decoded = None
                if casts and t is None:   # the decoder's own checks, wherever they stand (no source reads these)
                    validated = validated_cast(cond, defs, abi)
                    decoded = decoder_check(cond, defs, abi) if validated is None else None
                    t = validated[0] if validated is not None else decoded
                fails = (no if t else yes) if t is not None else None
                if t is not None and not (_empty_revert(fn, fails)
                                          or decoded is not None and failing_path(fn, fails) is not None):
                    t = None
                if t is not None:
                    if validated is not None:
                        fn.fits[validated[2][1]] = defs[validated[1]].op
                        fn.header_pcs.update(defs[validated[1]].pcs)
                        replace(values, validated[1], validated[2])
                    chain_pcs(cond, defs, CHECK_OPS, fn.header_pcs)
                    if fn.syms[n].last_pc is not None:
                        fn.header_pcs.add(fn.syms[n].last_pc)
                    fn.header_pcs.update(p for m in line(fn, no if t else yes) for s in fn.body[m] for p in s.pcs)
            if t is not None:
                decide(fn, n, yes if t else no)
                settled = True
