"""A small interpreter for tacsol TAC (docs/tac-format.md), used by the lift tests to check that lifted code
computes what the EVM computes. It covers arithmetic/comparison/bitwise/shift ops, calldata, memory, storage,
keccak, jumps with block arguments, return/revert/stop; anything else raises NotImplementedError."""
from __future__ import annotations

import re

from tacsol.evm import keccak256

M = 1 << 256
_LABEL = re.compile(r"^(b\d+|block_0x[0-9a-f]+(?:_\d+)?)(?:\((.*)\))?:$")
_TARGET = re.compile(r"(b\d+|block_0x[0-9a-f]+(?:_\d+)?)(?:\(([^)]*)\))?")


def _s(x: int) -> int:
    return x - M if x >> 255 else x


def _sar(shift: int, value: int) -> int:
    return (_s(value) >> min(shift, 256)) % M


def _signextend(b: int, x: int) -> int:
    if b >= 31:
        return x
    bit = b * 8 + 7
    mask = (1 << (bit + 1)) - 1
    return (x | (M - 1 - mask)) if (x >> bit) & 1 else (x & mask)


def _sdiv(a: int, b: int) -> int:
    if b == 0:
        return 0
    q = abs(_s(a)) // abs(_s(b))
    return (q if (_s(a) < 0) == (_s(b) < 0) else -q) % M


def _smod(a: int, b: int) -> int:
    if b == 0:
        return 0
    r = abs(_s(a)) % abs(_s(b))
    return (-r if _s(a) < 0 else r) % M


INFIX = {
    "+": lambda a, b: (a + b) % M, "-": lambda a, b: (a - b) % M, "*": lambda a, b: (a * b) % M,
    "/": lambda a, b: a // b if b else 0, "%": lambda a, b: a % b if b else 0, "**": lambda a, b: pow(a, b, M),
    "<": lambda a, b: int(a < b), ">": lambda a, b: int(a > b), "==": lambda a, b: int(a == b),
    "&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b,
    "<<": lambda v, s: (v << s) % M if s < 256 else 0, ">>": lambda v, s: v >> s if s < 256 else 0,
}
FUNCS = {
    "sdiv": _sdiv, "smod": _smod, "slt": lambda a, b: int(_s(a) < _s(b)), "sgt": lambda a, b: int(_s(a) > _s(b)),
    "sar": _sar, "signextend": _signextend, "iszero": lambda a: int(a == 0),
    "byte": lambda i, x: (x >> (8 * (31 - i))) & 0xFF if i < 32 else 0,
    "addmod": lambda a, b, n: (a + b) % n if n else 0, "mulmod": lambda a, b, n: (a * b) % n if n else 0,
}


class Halt(Exception):
    def __init__(self, kind: str, data: bytes = b""):
        self.kind, self.data = kind, data


class TacFunction:
    def __init__(self, tac: str):
        self.blocks: dict[str, tuple[list[str], list[str]]] = {}
        self.order: list[str] = []
        cur = None
        for line in tac.splitlines()[1:]:
            m = _LABEL.match(line)
            if m:
                cur = m.group(1)
                params = [p.strip() for p in m.group(2).split(",")] if m.group(2) else []
                self.blocks[cur] = (params, [])
                self.order.append(cur)
            else:
                self.blocks[cur][1].append(line.strip())

    def run(self, calldata: bytes = b"", env: dict | None = None, storage: dict | None = None, max_steps=100_000):
        env = {"callvalue": 0, "calldatasize": len(calldata), "caller": int("22" * 20, 16), **(env or {})}
        storage = {} if storage is None else storage
        mem = bytearray()
        logs = self.logs = []
        vals: dict[str, int] = {}

        def val(a: str) -> int:
            a = a.strip()
            if a.startswith("0x"):
                return int(a, 16)
            if a in vals:
                return vals[a]
            if a in env:
                return env[a]
            raise NotImplementedError(f"unknown operand {a!r}")

        def grow(off: int, n: int) -> None:
            if n and off + n > len(mem):
                mem.extend(b"\0" * (off + n - len(mem)))

        def mread(off: int, n: int) -> bytes:
            grow(off, n)
            return bytes(mem[off:off + n])

        def call(name: str, args: list[int]) -> int | None:
            if name in FUNCS:
                return FUNCS[name](*args)
            if name == "calldataload":
                return int.from_bytes(calldata[args[0]:args[0] + 32].ljust(32, b"\0"), "big")
            if name == "mload":
                return int.from_bytes(mread(args[0], 32), "big")
            if name == "mstore":
                grow(args[0], 32)
                mem[args[0]:args[0] + 32] = args[1].to_bytes(32, "big")
                return None
            if name == "mstore8":
                grow(args[0], 1)
                mem[args[0]] = args[1] & 0xFF
                return None
            if name == "sload":
                return storage.get(args[0], 0)
            if name == "sstore":
                storage[args[0]] = args[1]
                return None
            if name == "keccak256":
                return int.from_bytes(keccak256(mread(args[0], args[1])), "big")
            if name == "calldatacopy":
                grow(args[0], args[2])
                mem[args[0]:args[0] + args[2]] = calldata[args[1]:args[1] + args[2]].ljust(args[2], b"\0")
                return None
            if name.startswith("log"):
                logs.append((mread(args[0], args[1]), args[2:]))
                return None
            if name == "return":
                raise Halt("return", mread(args[0], args[1]))
            if name == "revert":
                raise Halt("revert", mread(args[0], args[1]))
            raise NotImplementedError(name)

        def expr(e: str) -> int | None:
            if e == "stop":
                raise Halt("stop")
            if e == "invalid" or e.startswith("invalid_"):
                raise Halt("invalid")
            m = re.fullmatch(r"([a-z0-9_]+)\((.*)\)", e)
            if m:
                args = [val(a) for a in m.group(2).split(",")] if m.group(2) else []
                return call(m.group(1), args)
            if e.startswith("~"):
                return (M - 1) ^ val(e[1:])
            a, op, b = e.split(" ")
            return INFIX[op](val(a), val(b))

        def enter(target: str) -> str:
            m = _TARGET.fullmatch(target.strip())
            label = m.group(1)
            args = [val(a) for a in m.group(2).split(",")] if m.group(2) else []
            params = self.blocks[label][0]
            assert len(params) == len(args), (label, params, args)
            new = dict(zip(params, args))
            vals.update(new)
            return label

        label = self.order[0]
        steps = 0
        try:
            while True:
                for line in self.blocks[label][1]:
                    steps += 1
                    if steps > max_steps:
                        raise Halt("steps")
                    if line.startswith("goto "):
                        rest = line[5:]
                        if rest.startswith("v") and "[" in rest:
                            v, lst = rest.split(" ", 1)
                            dest = val(v)
                            cands = [t for t in _TARGET.finditer(lst) if int(t.group(1)[6:].split("_")[0], 16) == dest]
                            label = enter(cands[0].group(0))
                        else:
                            label = enter(rest)
                        break
                    if line.startswith("if "):
                        m = re.fullmatch(r"if (\S+) goto (.+) else (.+)", line)
                        label = enter(m.group(2) if val(m.group(1)) else m.group(3))
                        break
                    if " = " in line:
                        dest, e = line.split(" = ", 1)
                        vals[dest] = expr(e)
                    else:
                        expr(line)
                else:
                    raise Halt("fell_off")
        except Halt as h:
            return h.kind, h.data, storage
