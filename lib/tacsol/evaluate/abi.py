"""ABI types of a canonical signature, their encoding, and ABI-valid argument values for the behaviour harness.

Only what calldata needs: parse `f(uint256,(address,bytes)[],string)` into types, encode values per the Solidity
ABI spec (head/tail layout), and draw boundary and random values of each type from a seeded generator. No
dependency: py-evm does not bring eth-abi."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .. import evm

M256 = (1 << 256) - 1


@dataclass(frozen=True)
class AbiType:
    base: str                        # uint | int | address | bool | bytesN | bytes | string | tuple | function
    bits: int = 256                  # uintN/intN width; bytesN length in bytes
    item: "AbiType | None" = None    # array element
    length: int | None = None        # fixed array length; None with item = dynamic array
    fields: tuple["AbiType", ...] = ()

    @property
    def dynamic(self) -> bool:
        if self.item is not None:
            return self.length is None or self.item.dynamic
        if self.base == "tuple":
            return any(f.dynamic for f in self.fields)
        return self.base in ("bytes", "string")


def parse_type(t: str) -> AbiType:
    t = t.strip()
    m = re.fullmatch(r"(.*)\[(\d*)\]", t)
    if m:
        return AbiType("array", item=parse_type(m.group(1)), length=int(m.group(2)) if m.group(2) else None)
    if t.startswith("(") and t.endswith(")"):
        return AbiType("tuple", fields=tuple(parse_type(x) for x in evm.split_types(t[1:-1])))
    m = re.fullmatch(r"(u?int)(\d*)", t)
    if m:
        return AbiType(m.group(1), int(m.group(2) or 256))
    m = re.fullmatch(r"bytes(\d+)", t)
    if m:
        return AbiType("bytesN", int(m.group(1)))
    if t in ("address", "bool", "bytes", "string"):
        return AbiType(t, 160 if t == "address" else 256)
    if t == "function":
        return AbiType("bytesN", 24)
    raise ValueError(f"ABI type {t!r}: not a canonical type")


def parse_signature(signature: str) -> tuple[str, list[AbiType]]:
    m = re.fullmatch(r"\s*([\w$]+)\((.*)\)\s*", signature or "")
    if not m:
        raise ValueError(f"signature {signature!r}: expected name(type,...)")
    return m.group(1), [parse_type(x) for x in evm.split_types(m.group(2))]


# ------------------------------------------------------------------------------------------------ encoding
def _word(v: int) -> bytes:
    return (v & M256).to_bytes(32, "big")


def encode_value(t: AbiType, v) -> bytes:
    if t.item is not None:
        items = list(v)
        body = encode_tuple([t.item] * len(items), items)
        return (_word(len(items)) + body) if t.length is None else body
    if t.base == "tuple":
        return encode_tuple(list(t.fields), list(v))
    if t.base in ("bytes", "string"):
        b = v.encode() if isinstance(v, str) else bytes(v)
        return _word(len(b)) + b + b"\0" * (-len(b) % 32)
    if t.base == "bytesN":
        return bytes(v).ljust(32, b"\0")
    if t.base == "bool":
        return _word(int(bool(v)))
    return _word(int(v))  # uint, int (two's complement), address


def encode_tuple(types: list[AbiType], values: list) -> bytes:
    heads, tails = [], []
    head_len = sum(32 if t.dynamic else len(encode_value(t, _zero(t))) for t in types)
    offset = head_len
    for t, v in zip(types, values):
        enc = encode_value(t, v)
        if t.dynamic:
            heads.append(_word(offset))
            tails.append(enc)
            offset += len(enc)
        else:
            heads.append(enc)
    return b"".join(heads) + b"".join(tails)


def _zero(t: AbiType):
    if t.item is not None:
        return [_zero(t.item)] * (t.length or 0)
    if t.base == "tuple":
        return [_zero(f) for f in t.fields]
    if t.base in ("bytes", "string"):
        return b""
    if t.base == "bytesN":
        return b"\0" * t.bits
    return 0


def calldata(selector: str, types: list[AbiType], values: list) -> bytes:
    return evm.hex_bytes(selector) + encode_tuple(types, values)


# ------------------------------------------------------------------------------------------------- values
def boundary_values(t: AbiType, addresses: list[int]) -> list:
    """Edge values of one type: zero, one, max/min, the harness's addresses."""
    if t.item is not None:
        n = t.length
        return [[boundary_values(t.item, addresses)[k % 2]] * (n if n is not None else k) for k in range(3)]
    if t.base == "tuple":
        per = [boundary_values(f, addresses) for f in t.fields]
        return [[p[k % len(p)] for p in per] for k in range(3)]
    if t.base == "uint":
        m = (1 << t.bits) - 1
        return [0, 1, m, m - 1, 2]
    if t.base == "int":
        hi = (1 << (t.bits - 1)) - 1
        return [0, 1, -1, hi, -hi - 1]
    if t.base == "address":
        return [0, *addresses]
    if t.base == "bool":
        return [False, True]
    if t.base == "bytesN":
        return [b"\0" * t.bits, b"\xff" * t.bits, bytes(range(1, t.bits + 1))]
    return [b"", b"a", b"\x01" * 33]


def random_value(t: AbiType, rng: random.Random, addresses: list[int], depth: int = 0):
    if t.item is not None:
        n = t.length if t.length is not None else rng.randrange(0, 4 if depth == 0 else 2)
        return [random_value(t.item, rng, addresses, depth + 1) for _ in range(n)]
    if t.base == "tuple":
        return [random_value(f, rng, addresses, depth + 1) for f in t.fields]
    if t.base == "uint":
        r = rng.random()
        return rng.randrange(0, 256) if r < 0.4 else rng.getrandbits(t.bits) if r < 0.8 else \
            rng.getrandbits(min(t.bits, 64))
    if t.base == "int":
        v = rng.randrange(-1000, 1000) if rng.random() < 0.5 else rng.getrandbits(t.bits - 1)
        return v if rng.random() < 0.7 else -v
    if t.base == "address":
        return rng.choice(addresses) if rng.random() < 0.7 else rng.getrandbits(160)
    if t.base == "bool":
        return rng.random() < 0.5
    if t.base == "bytesN":
        return bytes(rng.getrandbits(8) for _ in range(t.bits))
    n = rng.choice([0, 1, 5, 31, 32, 40, 64])
    if t.base == "string":
        return "".join(rng.choice("abcxyz019 ") for _ in range(n))
    return bytes(rng.getrandbits(8) for _ in range(n))
