"""The inputs and states the behaviour harness runs both sides from, and what it compares: the fixed cases
(boundary and random ABI arguments, the owner and other callers, value when payable), the storage states a slot's
value is a pure function of (seed_value) and the code called addresses hold (seed_code), and the comparison of two
outcomes (compare). docs/evaluation.md, "Behaviour"."""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import abi
from .execution import BLOCK, CONTRACT, RESPONDER_CODE, ZERO_RESPONDER_CODE, Outcome

if TYPE_CHECKING:
    from .behaviour import Original


N_CASES = 24      # at least 16 (issue 13); 4 per storage state
N_VARIANTS = 5    # storage states 0-4 (seed_value): case i < ONES_FROM runs from state i % N_VARIANTS
ONES, ONES_FROM = 5, 20   # state 5 (every value 1) runs the cases from 20 on, after the first design's 20 unchanged
PRIVILEGED = (1, 4)   # the states where the first caller owns the contract
CALLERS = [bytes.fromhex(h * 20) for h in ("a1", "b2", "c3", "d4")]  # the first three may own the contract
RESPONDERS = tuple(CALLERS[1:3])   # also hold code that answers every call (execution.RESPONDER_CODE)


@dataclass
class Case:
    args: list
    caller: bytes
    value: int
    variant: int = 0                  # the storage state it runs from (seed_value)
    storage: dict[int, int] = field(default_factory=dict)   # slots set over that state (found by search_success)
    found: str = ""                   # how search_success reached it ("" for the fixed cases)
    answer_words: int = 1             # words the called contracts answer with (seed_code)


def make_cases(types: list[abi.AbiType], payable: bool, seed: int, n: int = N_CASES) -> list[Case]:
    """Case i < ONES_FROM runs from storage state i % N_VARIANTS. The privileged states (PRIVILEGED: the first
    caller owns the contract) meet every boundary value with the owner calling, and once an outsider (state 1) or
    the contract itself (state 4: self-governed contracts), so that guarded code is reached with edge arguments. The
    other states take the first boundary values, then random ones, from rotating callers. The cases from ONES_FROM
    on run from state ONES with the boundary values and rotating callers: added after the others, so that the first
    20 stay what they were."""
    rng = random.Random(seed)
    addrs = [int.from_bytes(c, "big") for c in CALLERS]
    out = []
    for i in range(n):
        variant, k = (i % N_VARIANTS, i // N_VARIANTS) if i < ONES_FROM else (ONES, i - ONES_FROM)
        b = k if variant in PRIVILEGED or variant == ONES else i
        if b < 4:
            args = [abi.boundary_values(t, addrs)[b % len(abi.boundary_values(t, addrs))] for t in types]
        else:
            args = [abi.random_value(t, rng, addrs) for t in types]
        value = (10**18 // (i + 1)) if payable and (i + k) % 2 else 0
        if variant in PRIVILEGED:   # the last case: an outsider, or (state 4) the contract itself (timelocks)
            caller = (CALLERS[3] if variant == 1 else CONTRACT) if k == 3 else CALLERS[0]
        else:
            caller = CALLERS[(k + i) % 4]
        out.append(Case(args, caller, value, variant))
    return out


def seeds_search(c: Case) -> bool:
    """Whether the searches start from (and are triggered by) this case: every case but state ONES's, which only adds
    cases, so that what the searches found before the ones state they find again."""
    return c.variant != ONES


def _shape_of(t: dict, type_id: str, offset: int):
    enc = t.get("encoding", "")
    return offset if type_id == "t_bool" else "array" if enc == "dynamic_array" else "bytes" if enc == "bytes" \
        else None


def slot_shapes(original: "Original") -> dict:
    """What the storage layout says lives where, for seeding: slot -> [byte offsets of packed bool variables,
    "array" for a dynamic array's length slot, "bytes" for a string/bytes slot]; and for a mapping (of mappings)
    whose values are structs, ("member", base slot, mapping depth, member slot) -> the same, for its entries."""
    types = original.types
    out: dict = {}
    for v in original.layout:
        t = types.get(v["type"], {})
        shape = _shape_of(t, v["type"], int(v.get("offset", 0)))
        if shape is not None:
            out.setdefault(int(v["slot"]), []).append(shape)
        depth, vt = 0, v["type"]
        while types.get(vt, {}).get("encoding") == "mapping":
            vt, depth = types[vt].get("value", ""), depth + 1
        for m in types.get(vt, {}).get("members") or [] if depth else []:
            shape = _shape_of(types.get(m["type"], {}), m["type"], int(m.get("offset", 0)))
            if shape is not None:
                out.setdefault(("member", int(v["slot"]), depth, int(m["slot"])), []).append(shape)
    return out


def _entry_of(slot: int, pre: dict) -> tuple[int, int, int] | None:
    """(declared base slot, mapping depth, member slot) of a hashed slot, from the run's SHA3 preimages."""
    for d in range(16):
        h = slot - d
        if h in pre and pre[h][0] == "mapping":
            b, depth = pre[h][1], 1
            while b in pre and pre[b][0] == "mapping" and depth < 8:
                b, depth = pre[b][1], depth + 1
            return b, depth, d
    return None


def seed_value(slot: int, seed: int, variant: int = 1, shapes: dict | None = None, pre: dict | None = None) -> int:
    """The value a slot holds in storage variant `variant`:
    0 a fresh contract (every slot zero);
    1 privileged: every declared slot holds the first caller's address (owners, roles, flags set) and hashed
      slots (mapping entries, array items) hold it or zero, so both sides of an `if (!seen[key])` are met;
    2 a mix of caller addresses, small integers, zero, values just below the block number and timestamp, and
      random words;
    3 numbers only (small, near the block, zero, 64-bit);
    4 privileged with every bool state variable false: paused, locked and initialized flags clear, every hashed
      slot (role membership) set;
    5 ones: every slot holds 1 (a dynamic array one element, a string one byte): each value its smallest nonzero
      one, where `x > 0` and `x > 1` part (a counter at its first step, a timelock's done timestamp, 1 wei).
    shapes (slot_shapes): in every non-zero state a dynamic array's length slot holds 1 to 3 and a string/bytes
    slot a short string (its own per slot and state), so that loops and copies stay within gas as in a deployed
    contract; the same for the members of structs stored in mappings, found through the run's SHA3 preimages
    `pre`."""
    if variant == 0:
        return 0
    h = int.from_bytes(hashlib.sha256(f"{seed}:{variant}:{slot}".encode()).digest(), "big")
    if slot < 1 << 64:
        shape = (shapes or {}).get(slot, [])
    else:   # a mapping entry: a struct member's shape when the preimages say which mapping and member it is
        e = _entry_of(slot, pre) if pre and shapes else None
        shape = shapes.get(("member", *e), []) if e else []
    if variant == ONES:
        return 0x61 << 248 | 2 if "bytes" in shape else 1   # "a": data, then length * 2
    if "array" in shape:
        return 1 + h % 3
    if "bytes" in shape:   # short layout: data, then length * 2; one text per slot and state, so that a getter
        text = f"tacsol{h % 10**6:06d}".encode()   # returning another string variable differs
        return int.from_bytes(text.ljust(31, b"\0"), "big") << 8 | 2 * len(text)
    owner = int.from_bytes(CALLERS[0], "big")
    if variant == 1:
        return owner if slot < 1 << 64 or h & 1 else 0
    if variant == 4:
        for off in shape:
            if isinstance(off, int):
                owner &= ~(0xFF << (8 * off))
        return owner
    r = h % 100
    if variant == 2 and r < 30:
        return int.from_bytes(CALLERS[h % 3], "big")
    if r < 50:
        return (h >> 8) % 100
    if r < 65:
        return 0
    if r < 80:
        return (BLOCK["number"] if h & 256 else BLOCK["timestamp"]) - (h >> 9) % 1000
    if r < 92 or variant == 3:
        return (h >> 8) & ((1 << 64) - 1)
    return h


def _fmt_revert(data: bytes) -> str:
    if data[:4] == bytes.fromhex("08c379a0") and len(data) >= 68:
        n = int.from_bytes(data[36:68], "big")
        return f'Error("{data[68:68 + n].decode(errors="replace")}")'
    if data[:4] == bytes.fromhex("4e487b71") and len(data) >= 36:
        return f"Panic(0x{int.from_bytes(data[4:36], 'big'):x})"
    return "0x" + data.hex() if data else "no data"


def _fmt(o: Outcome) -> str:
    if o.timeout:
        return "ran past the time limit"
    if not o.success:
        return f"reverted {_fmt_revert(o.output)}" if o.error == "Revert" else f"failed ({o.error})"
    parts = [f"returned 0x{o.output.hex()[:130]}" + ("…" if len(o.output) > 65 else "")]
    if o.writes:
        parts.append("wrote " + ", ".join(f"slot {hex(s)[:14]}={hex(v)[:20]}" for s, v in sorted(o.writes.items())[:3]))
    if o.logs:
        parts.append(f"{len(o.logs)} log(s)")
    if o.calls:
        parts.append(f"{len(o.calls)} call(s)")
    return "; ".join(parts)


def compare(a: Outcome, b: Outcome) -> str:
    """'' if the two outcomes agree, else the first field that differs."""
    if a.success != b.success or a.timeout != b.timeout:
        return "success"
    if a.output != b.output:
        return "revert data" if not a.success else "return data"
    if a.writes != b.writes:
        return "storage writes"
    if a.logs != b.logs:
        return "logs"
    if a.calls != b.calls:
        return "external calls"
    if a.balance != b.balance:
        return "balance"
    return ""


_HALT_OK = re.compile(r"^\s*(?:return\b|stop\b|selfdestruct\b)", re.M)
_UNRESOLVED = re.compile(r"\bgoto (?:\?|v\d+ \[)")


def reverts_by_construction(tac: str) -> bool:
    """The function's TAC (lifted from the original's bytecode) halts only by revert or invalid: no return, stop
    or selfdestruct, and every jump resolved. Such a function's behaviour is its revert data on every input."""
    return bool(tac.strip()) and not _HALT_OK.search(tac) and not _UNRESOLVED.search(tac) and \
        re.search(r"^\s*(?:revert|invalid)", tac, re.M) is not None


def seed_code(address: bytes, variant: int, words: int = 1) -> bytes | None:
    """The code an address the function calls (or asks the code size of) gets in storage state `variant`, as
    a deployed singleton (a token, a registry, an oracle) would have on chain: one that answers every call with
    1 in states 1, 2 and 4, with 0 in states 0 and 3 (no interface implementer, a zero balance). The zero address,
    the precompiles, the contract and the harness's callers keep what they have (no code, or a responder).
    `words` > 1 (a case the state search made): the answer is that many words, the first 1 (or 0) and the rest
    zero, so that a call whose result decodes as a tuple (an oracle's getConfig()) gets one."""
    n = int.from_bytes(address, "big")
    if n <= 0x11 or address == CONTRACT or address in CALLERS:
        return None
    if words > 1:   # [mstore(0, 1);] return(0, 32 * words)
        size = (32 * words).to_bytes(2, "big")
        return (bytes.fromhex("6001600052") if variant in (1, 2, 4) else b"") + b"\x61" + size + bytes.fromhex("6000f3")
    return RESPONDER_CODE if variant in (1, 2, 4) else ZERO_RESPONDER_CODE
