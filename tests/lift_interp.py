"""A small interpreter for tacsol TAC (docs/tac-format.md), used by the lift tests to check that lifted code
computes what the EVM computes. It covers arithmetic/comparison/bitwise/shift ops, calldata, memory, storage,
keccak, logs, jumps with block arguments, return/revert/stop, and every level-2 construct (named arguments, the
folded callvalue check, casts, fields, mapping/array slots, decoded reverts, word returns, logs of words, calls
whose input prints as 0xsel(words)); anything else raises NotImplementedError."""
from __future__ import annotations

import json
import re

from tacsol.evm import keccak256
from tacsol.lift.abi import Abi

M = 1 << 256
ERROR, PANIC = 0x08C379A0, 0x4E487B71
_LABEL = re.compile(r"^(b\d+|block_0x[0-9a-f]+(?:_\d+)?)(?:\((.*)\))?:$")
_TARGET = re.compile(r"(b\d+|block_0x[0-9a-f]+(?:_\d+)?)(?:\(([^)]*)\))?")
_STRING_STORE = re.compile(r"(checked |legacy |masked )?storagestring\((.+)\) = ([^=]+)")
_FIELD_STORE = re.compile(r"sstore\(((?:[^()]|\([^()]*(?:\([^()]*\)[^()]*)*\))*)\)\[(\d+):(\d+)\] = (.+)")
_HEADER = re.compile(r"function (\S+?)\((.*)\)(?: (\w+))?$")   # level 3 leaves out `nonpayable`
_CAST = re.compile(r"(uint|int|bytes)(\d+)|bool")


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


def _cast(name: str, x: int) -> int:
    """uintK(x) = x & (2**K - 1), intK(x) = signextend(K/8 - 1, x), bytesN(x) keeps the top N bytes, bool(x)."""
    m = _CAST.fullmatch(name)
    if m.group(0) == "bool":
        return int(x != 0)
    kind, k = m.group(1), int(m.group(2))
    if kind == "uint":
        return x & ((1 << k) - 1)
    if kind == "int":
        return _signextend(k // 8 - 1, x)
    return x & ~((1 << (256 - 8 * k)) - 1) % M


def _words(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(32, "big") for v in values)


INFIX = {
    "+": lambda a, b: (a + b) % M, "-": lambda a, b: (a - b) % M, "*": lambda a, b: (a * b) % M,
    "/": lambda a, b: a // b if b else 0, "%": lambda a, b: a % b if b else 0, "**": lambda a, b: pow(a, b, M),
    "<": lambda a, b: int(a < b), ">": lambda a, b: int(a > b), "==": lambda a, b: int(a == b),
    ">=": lambda a, b: int(a >= b), "<=": lambda a, b: int(a <= b), "!=": lambda a, b: int(a != b),   # level 3
    "&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b,
    "<<": lambda v, s: (v << s) % M if s < 256 else 0, ">>": lambda v, s: v >> s if s < 256 else 0,
}
FUNCS = {
    "sdiv": _sdiv, "smod": _smod, "slt": lambda a, b: int(_s(a) < _s(b)), "sgt": lambda a, b: int(_s(a) > _s(b)),
    "sar": _sar, "signextend": _signextend, "iszero": lambda a: int(a == 0),
    "byte": lambda i, x: (x >> (8 * (31 - i))) & 0xFF if i < 32 else 0,
    "addmod": lambda a, b, n: (a + b) % n if n else 0, "mulmod": lambda a, b, n: (a * b) % n if n else 0,
}


_UNBOUNDED = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _checked(op: str, a: int, b: int) -> int:
    """Level 3's checked(a OP b): panic(0x11) when the exact result is no uint256, panic(0x12) on a zero divisor."""
    if op in ("/", "%"):
        if b == 0:
            raise Halt("revert", PANIC.to_bytes(4, "big") + _words([0x12]))
        return INFIX[op](a, b)
    exact = _UNBOUNDED[op](a, b)
    if not 0 <= exact < M:
        raise Halt("revert", PANIC.to_bytes(4, "big") + _words([0x11]))
    return exact


class _Abi:
    """A call's input printed as 0xsel(words) (level 2): written at the free pointer when the call runs."""

    def __init__(self, selector: int, words: list[int]):
        self.data = selector.to_bytes(4, "big") + _words(words)


class Halt(Exception):
    def __init__(self, kind: str, data: bytes = b""):
        self.kind, self.data = kind, data


class TacFunction:
    """A lifted function: its unit, then (level 2) the units of the internal functions it calls."""

    def __init__(self, tac: str):
        self.units: dict[str, dict[str, tuple[list[str], list[str]]]] = {}   # name → label → (params, lines)
        self.order: dict[str, list[str]] = {}
        self.entry = ""
        self.mutability, self.level2_args, self.types = "", False, ()
        name = cur = None
        for line in tac.splitlines():
            header = _HEADER.match(line)
            if header:
                name = header.group(1)
                self.units[name], self.order[name] = {}, []
                if not self.entry:
                    self.entry = name
                    self._entry_header(header)
                continue
            m = _LABEL.match(line)
            if m:
                cur = m.group(1)
                params = [p.strip() for p in m.group(2).split(",")] if m.group(2) else []
                self.units[name][cur] = (params, [])
                self.order[name].append(cur)
            elif line.strip():
                self.units[name][cur][1].append(line.strip())

    def _entry_header(self, header: re.Match) -> None:
        self.mutability = header.group(3) or "nonpayable"
        params = header.group(2)
        self.level2_args = ":" in params   # level 2: "arg0: address, arg1: uint256"
        self.types = tuple(p.split(": ", 1)[1] for p in params.split(", ")) if self.level2_args else ()

    def arguments(self, calldata: bytes) -> dict[str, int]:
        """Level 2's argK: the calldata word of each one-word argument (tacsol.lift.abi's layout)."""
        where = Abi(self.types, self.mutability).word_args()
        return {f"arg{i}": int.from_bytes(calldata[off:off + 32].ljust(32, b"\0"), "big") for off, i in where.items()}

    def run(self, calldata: bytes = b"", env: dict | None = None, storage: dict | None = None, max_steps=100_000,
            default=None, code: bytes = b""):
        """(halt kind, return/revert data, storage); `default(slot)` is the value of a slot storage does not hold,
        `code` what codecopy reads."""
        env = {"callvalue": 0, "calldatasize": len(calldata), "caller": int("22" * 20, 16), **(env or {})}
        storage = {} if storage is None else storage
        self.logs = []
        if self.level2_args and self.mutability != "payable" and env["callvalue"]:
            return "revert", b"", storage   # the folded check of a non-payable function
        run = _Run(self, calldata, env, storage, default or (lambda slot: 0))
        run.code = code
        return run.run(max_steps)


class _Run:
    def __init__(self, fn: TacFunction, calldata: bytes, env: dict, storage: dict, default):
        self.fn, self.calldata, self.env, self.storage, self.default = fn, calldata, env, storage, default
        self.mem = bytearray(0x80)
        self.mem[0x5F] = 0x80   # solc's prologue before the dispatcher: the free-memory pointer starts at 0x80
        self.vals: dict[str, int] = fn.arguments(calldata) if fn.level2_args else {}
        self.logs = fn.logs
        self.returndata = b""

    # ------------------------------------------------------------------------------------------------ state
    def val(self, a: str) -> int:
        a = a.strip()
        if a.startswith("0x"):
            return int(a, 16)
        if a.isdigit():   # level 3 prints small constants in decimal
            return int(a)
        if a in self.vals:
            return self.vals[a]
        if a in self.env:
            return self.env[a]
        if a == "codesize":   # `new bytes(n)` clears its data with codecopy(p, codesize, n)
            return len(self.code)
        raise NotImplementedError(f"unknown operand {a!r}")

    def grow(self, off: int, n: int) -> None:
        if n and off + n > 1 << 32:   # the EVM runs out of gas long before
            raise Halt("invalid")
        if n and off + n > len(self.mem):
            self.mem.extend(b"\0" * (off + n - len(self.mem)))

    def mread(self, off: int, n: int) -> bytes:
        self.grow(off, n)
        return bytes(self.mem[off:off + n])

    def mwrite(self, off: int, data: bytes) -> None:
        self.grow(off, len(data))
        self.mem[off:off + len(data)] = data

    def external(self, name: str, args: list[int]) -> int:
        """A call as py-evm runs it in the tests: the identity precompile (0x4) returns its input, bn256Add (0x6)
        fails on an input that is not two curve points (a selector in front never is), an address without code
        succeeds and returns nothing; an address in env["accounts"] (code, succeeds, return data) answers so."""
        at, size, out, out_size = args[-4:]
        data = self.mread(at, size)
        account = self.account(args[1])   # (code, succeeds, return data): a test's callee
        if account is not None:
            self.returndata = account[2]
            if account[1]:
                self.mwrite(out, self.returndata[:out_size])
            return int(account[1])
        self.returndata = data if args[1] == 4 else b""
        if args[1] == 6:
            return 0
        self.mwrite(out, self.returndata[:out_size])
        return 1

    def account(self, address: int) -> tuple | None:
        """A test's callee at `address`: env["accounts"][address], else env["every_account"] for any address but
        the contract, its caller and the precompiles (1-9)."""
        got = self.env.get("accounts", {}).get(address)
        if got is None and address > 9 and address not in (self.env.get("address"), self.env.get("caller")):
            got = self.env.get("every_account")
        return got

    def sload(self, slot: int) -> int:
        return self.storage[slot] if slot in self.storage else self.default(slot)

    def keccak(self, off: int, n: int) -> int:
        return int.from_bytes(keccak256(self.mread(off, n)), "big")

    # ------------------------------------------------------------------------------------------ level 1 ops
    def call(self, name: str, args: list[int]) -> int | None:
        if name in FUNCS:
            return FUNCS[name](*args)
        if _CAST.fullmatch(name):
            return _cast(name, args[0])
        if name == "calldataload":
            return int.from_bytes(self.calldata[args[0]:args[0] + 32].ljust(32, b"\0"), "big")
        if name == "mload":
            return int.from_bytes(self.mread(args[0], 32), "big")
        if name == "mstore":
            self.mwrite(args[0], args[1].to_bytes(32, "big"))
            return None
        if name == "mstore8":
            self.mwrite(args[0], bytes([args[1] & 0xFF]))
            return None
        if name == "sload":
            return self.sload(args[0])
        if name == "sstore":
            self.storage[args[0]] = args[1]
            return None
        if name in ("call", "staticcall", "delegatecall", "callcode"):
            k = next((i for i, a in enumerate(args) if isinstance(a, _Abi)), None)
            if k is not None:   # the construct writes its input at the free pointer, as the compiler did
                at = self.call("mload", [0x40])
                self.mwrite(at, args[k].data)
                args = args[:k] + [at, len(args[k].data)] + args[k + 1:]
            return self.external(name, args)
        if name == "returndatasize":
            return len(self.returndata)
        if name == "returndatacopy":
            if args[1] + args[2] > len(self.returndata):
                raise Halt("invalid")
            self.mwrite(args[0], self.returndata[args[1]:args[1] + args[2]])
            return None
        if name == "gas":
            return 10**6
        if name == "extcodesize":   # as in the py-evm runs of the tests: only the contract itself has code
            account = self.account(args[0])   # (and a test's callees)
            return len(account[0]) if account else len(self.code) if args[0] == self.env.get("address") else 0
        if name in ("copy", "copypad"):   # level 2: the compiler's word-by-word copy loop
            i = 0
            while i < args[2]:
                self.mwrite(args[0] + i, self.mread(args[1] + i, 32))
                i += 32
            if name == "copypad" and i > args[2]:   # then the padding after the copied bytes
                self.mwrite(args[0] + args[2], bytes(32))
            return None
        if name == "memcpy":   # level 3: the legacy word loop, then the first n % 32 bytes of the next word
            dst, src, n = args
            while n >= 32:
                self.mwrite(dst, self.mread(src, 32))
                dst, src, n = dst + 32, src + 32, n - 32
            self.mwrite(dst, self.mread(src, n) + self.mread(dst + n, 32 - n))
            return None
        if name in ("storagestring", "storagestring_checked"):   # level 3: a storage string into a new allocation
            word = self.sload(args[0])
            n = (word if word & 1 else word & 0xFF) // 2
            if name == "storagestring_checked" and (word & 1) == (n < 32):   # 0.8: an invalid encoding
                raise Halt("revert", PANIC.to_bytes(4, "big") + _words([0x22]))
            at = self.call("mload", [0x40])
            self.mwrite(0x40, ((at + 32 + (n + 31) // 32 * 32) % (1 << 256)).to_bytes(32, "big"))
            self.mwrite(at, n.to_bytes(32, "big"))
            if n > 31:
                self.call("storagecopy", [at + 32, self.slot("array", args[0], []), n])   # keccak in scratch
            elif n:
                self.mwrite(at + 32, (word // 256 * 256).to_bytes(32, "big"))
            return at
        if name == "storagecopy":   # level 3: a long storage string's words to memory, at least one
            dst, base, n = args
            i = 0
            while True:
                self.mwrite(dst + i, self.sload((base + i // 32) % (1 << 256)).to_bytes(32, "big"))
                i += 32
                if i >= n:
                    return None
        if name == "zeropad":   # level 2: clear the last word's tail after dst + n, give the next word boundary
            end, r = (args[0] + args[1]) % (1 << 256), args[1] % 32
            if not r:
                return end
            w = end - r
            self.mwrite(w, self.mread(w, 32)[:r] + bytes(32 - r))
            return w + 32
        if name == "alloc":   # level 3: the free pointer, moved n bytes on
            at = self.call("mload", [0x40])
            self.mwrite(0x40, ((at + args[0]) % (1 << 256)).to_bytes(32, "big"))
            return at
        if name == "mcopy":
            self.mwrite(args[0], self.mread(args[1], args[2]))
            return None
        if name == "keccak256":
            return self.keccak(args[0], args[1])
        if name in ("calldatacopy", "codecopy"):
            src = self.calldata if name == "calldatacopy" else self.code
            self.mwrite(args[0], src[args[1]:args[1] + args[2]].ljust(args[2], b"\0"))
            return None
        if name.startswith("log"):
            self.logs.append((self.mread(args[0], args[1]), args[2:]))
            return None
        if name in ("return", "revert"):
            raise Halt(name, self.mread(args[0], args[1]))
        raise NotImplementedError(name)

    # -------------------------------------------------------------------------------------- level 2 constructs
    def slot(self, kind: str, slot: int, keys: list[int]) -> int:
        """mapping(slot)[k1][k2] = keccak256(k2 ‖ keccak256(k1 ‖ slot)), array(slot)[i] = keccak256(slot) + i,
        hashed in the scratch words as the compiler does."""
        if kind == "array":
            self.mwrite(0, slot.to_bytes(32, "big"))
            return (self.keccak(0, 32) + (keys[0] if keys else 0)) % M
        for k in keys:
            self.mwrite(0, _words([k, slot]))
            slot = self.keccak(0, 64)
        return slot

    def statement(self, e: str) -> bool:
        """Run a level-2 statement form (returns, reverts, logs of words); False when e is an expression."""
        if e.startswith("return ("):
            raise Halt("return", _words(self.values(e[len("return ("):-1])))
        if e == "revert()":
            raise Halt("revert")
        if e == "revert(returndata)":
            raise Halt("revert", self.returndata)
        if e.startswith('revert("'):
            text = json.loads(e[len("revert("):-1]).encode()
            raise Halt("revert", ERROR.to_bytes(4, "big") + _words([0x20, len(text)])
                       + text.ljust((len(text) + 31) // 32 * 32, b"\0"))
        m = re.fullmatch(r"revert\((?!\")([^,]+)\)", e)
        if m:   # Error(string) of the length-prefixed string at memory p (a value or, inlined, its read), zero padded
            at = self.expr(m.group(1))
            n = int.from_bytes(self.mread(at, 32), "big")
            raise Halt("revert", ERROR.to_bytes(4, "big") + _words([0x20, n])
                       + self.mread(at + 32, n).ljust((n + 31) // 32 * 32, b"\0"))
        m = re.fullmatch(r"return bytes\(([^,]+)\)", e)
        if m:   # one string or bytes value: its ABI encoding, from the length-prefixed bytes at memory p
            at = self.expr(m.group(1))
            n = int.from_bytes(self.mread(at, 32), "big")
            raise Halt("return", _words([0x20, n]) + self.mread(at + 32, n).ljust((n + 31) // 32 * 32, b"\0"))
        if e.startswith("panic("):
            raise Halt("revert", PANIC.to_bytes(4, "big") + _words(self.values(e[6:-1])))
        m = re.fullmatch(r"revert (0x[0-9a-f]{8})\((.*)\)", e)
        if m:
            raise Halt("revert", bytes.fromhex(m.group(1)[2:]) + _words(self.values(m.group(2))))
        m = re.fullmatch(r"checked (call|staticcall|delegatecall)\((.*)\)", e)
        if m:   # level 3: the call with all the gas, after the code check; a failure or short return data reverts
            args = self.values(m.group(2))
            if not self.call("extcodesize", [args[0]]):
                raise Halt("revert")
            if not self.call(m.group(1), [self.call("gas", [])] + args):
                raise Halt("revert", self.returndata)
            if len(self.returndata) < args[-1]:
                raise Halt("revert")
            return True
        m = re.fullmatch(r"log(\d)\(([^;]*);(.*)\)", e)
        if m:   # the data words go to the free memory, as the compiler wrote them there
            topics, data = self.values(m.group(2)), self.values(m.group(3))
            at = self.call("mload", [0x40])
            self.mwrite(at, _words(data))
            self.logs.append((self.mread(at, 32 * len(data)), topics))
            return True
        return False

    def memstring(self, e: str) -> int:
        """A string literal allocated in memory: its pointer."""
        text = json.loads(e[len("memstring("):-1]).encode()
        at = self.call("mload", [0x40])
        self.mwrite(0x40, (at + 0x20 + (len(text) + 31) // 32 * 32).to_bytes(32, "big"))
        self.mwrite(at, _words([len(text)]) + text.ljust((len(text) + 31) // 32 * 32, b"\0"))
        return at

    def expr(self, e: str) -> int | None:
        if e == "stop":
            raise Halt("stop")
        if e == "invalid" or e.startswith("invalid_"):
            raise Halt("invalid")
        if self.statement(e):
            return None
        if e.startswith('memstring("'):
            return self.memstring(e)
        m = re.fullmatch(r"checked storagestring\((.+)\)", e)
        if m:   # level 3: solc 0.8's read of a storage string, its encoding checked
            return self.call("storagestring_checked", [self.expr(m.group(1))])
        m = re.fullmatch(r"(checked )?error_message\(returndata\)", e)
        if m:   # level 3: a catch clause's Error(string) reason decoded from the return data
            return self.error_message(checked=bool(m.group(1)))
        m = re.fullmatch(r"legacy error_message\(returndata, (.+)\)", e)
        if m:   # level 3, solc 0.6.6: decoded at a pointer read before the call
            return self.error_message(checked=False, at=self.expr(m.group(1)))
        if e == "bytes(returndata)":   # level 3: the return data copied to a fresh allocation (none: 0x60)
            return self.returndata_bytes()
        m = re.fullmatch(r"memory(_words)?\(arg(\d+)\)", e)
        if m:   # level 3: a dynamic argument copied from calldata to a fresh allocation at the free pointer
            return self.copy_argument(int(m.group(2)), clear=not m.group(1))
        if e.startswith("abi.encode("):   # level 3: the words' encoding allocated at the free pointer
            words = self.values(e[len("abi.encode("):-1])
            at = self.call("mload", [0x40])
            self.mwrite(at, _words([32 * len(words)] + words))
            self.mwrite(0x40, (at + 32 + 32 * len(words)).to_bytes(32, "big"))
            return at
        return _Parser(self, e).whole()

    def count_step(self) -> None:
        """One more step of a construct's loop: a run that passes max_steps halts (py-evm runs out of gas)."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise Halt("steps")

    def string_store(self, slot: int, src: int, form: str, load: str = "mload") -> None:
        """storagestring(slot) = src as solc 0.7 writes it (`legacy`, 0.4-0.6: an empty value takes the short form
        too; `checked`, 0.8.0-0.8.12: the old length's encoding checked first, panic(0x22)): the old word's length,
        then the new length and data (the short form keeps its bytes in the slot word, an empty value is a zero
        word), then the old data words past the new ones cleared while base + (31 + old) / 32 > k, the sums wrapping
        as the code's do. `load` reads the value's words: mload from memory, calldataload from a calldata argument
        (`= calldata(src)`: its length word at src, its bytes after it), the same code otherwise."""
        a = self.sload(slot)
        if form in ("checked", "masked"):
            old = a // 2 if a & 1 else (a >> 1) & 0x7F
            if (a & 1) == (old < 32):
                raise Halt("revert", PANIC.to_bytes(4, "big") + _words([0x22]))
            if form == "masked":
                return self.string_store_masked(slot, src, old, load)
        else:
            old = ((((256 * (1 - (a & 1))) - 1) % M) & a) // 2
        n, data = self.call(load, [src]), (src + 32) % M
        base = self.slot("array", slot, [])
        k = base
        if form != "legacy" and n == 0:
            self.storage[slot] = 0
        elif n > 31:
            self.storage[slot] = (1 + n + n) % M
            p = data
            while (data + n) % M > p:
                self.storage[k] = self.call(load, [p])
                k, p = (k + 1) % M, (p + 32) % M
                self.count_step()
        else:
            self.storage[slot] = ((n + n) % M) | (self.call(load, [data]) & ~0xFF % M)
        end = (base + ((31 + old) % M) // 32) % M
        while end > k:
            self.storage[k] = 0
            k = (k + 1) % M
            self.count_step()

    def string_store_masked(self, slot: int, src: int, old: int, load: str = "mload") -> None:
        """`masked storagestring(slot) = src` after the old length's check, as solc 0.8.13+ writes it
        (copy_byte_array_to_storage): when the old value was long, its data words from base (a short new value) or
        base + ceil(n / 32) up to base + ceil(old / 32) cleared first; then the short form's word with the bytes past
        n zeroed (an empty value: 0), or the whole data words, the last one's bytes past n zeroed, and 2n + 1."""
        n, base = self.call(load, [src]), self.slot("array", slot, [])
        if old > 31:
            k = base if n < 32 else (base + ((n + 31) % M) // 32) % M
            while (base + (old + 31) // 32) % M > k:
                self.storage[k] = 0
                k = (k + 1) % M
                self.count_step()
        if n > 31:
            whole, i, d, o = n & (M - 32), 0, base, 32
            while i < whole:
                self.storage[d] = self.call(load, [(src + o) % M])
                i, d, o = (i + 32) % M, (d + 1) % M, (o + 32) % M
                self.count_step()
            if whole < n:
                self.storage[d] = self.call(load, [(src + o) % M]) & ~((M - 1) >> (8 * (n & 31))) % M
            self.storage[slot] = (n * 2 + 1) % M
        else:
            v = self.call(load, [(src + 32) % M]) if n else 0
            self.storage[slot] = (v & ~((M - 1) >> (8 * n)) % M) | (2 * n)

    def error_message(self, checked: bool, at: int | None = None) -> int:
        """error_message(returndata), as solc 0.6-0.7's try_decode_error_message runs it (0.8's `checked`: no
        selector test, the string within the data after the selector, the new free pointer checked; 0.6.6's
        `legacy ...(returndata, p)`: decoded at p, read before the call, and the free pointer moved to the string's
        end rounded up): 0 when the data is no well-formed Error(string), else the string decoded in place at the
        free pointer p."""
        rd, w = self.returndata, (1 << 64) - 1
        size = len(rd)
        if size < 68:
            return 0
        if not checked:
            self.call("returndatacopy", [0, 0, 4])
            if self.call("mload", [0]) >> 224 != 0x08C379A0:
                return 0
        p = self.call("mload", [0x40]) if at is None else at
        self.call("returndatacopy", [p, 4, (size - 4) % M])
        o = self.call("mload", [p])
        if o > w or (o + 36) % M > size:
            return 0
        s = (p + o) % M
        n = self.call("mload", [s])
        if n > w or (s + 32 + n) % M > (p + size - (4 if checked else 0)) % M:
            return 0
        if checked:
            q = (p + (((o + 32 + n + 31) % M) & (M - 32))) % M
            if q > w or q < p:
                raise Halt("revert", PANIC.to_bytes(4, "big") + _words([0x41]))
        elif at is not None:
            q = ((s + 32 + n + 31) % M) & (M - 32)
        else:
            q = (s + 32 + (((n + 31) % M) & (M - 32))) % M
        self.call("mstore", [0x40, q])
        return s

    def returndata_bytes(self) -> int:
        """bytes(returndata): 0x60 when the last call returned nothing; else the free pointer p, moved 32 + the size
        rounded up to a word on, with the size at p and the return data after it."""
        n = len(self.returndata)
        if not n:
            return 0x60
        p = self.call("mload", [0x40])
        self.mwrite(0x40, (p + (n + 0x3F) // 32 * 32).to_bytes(32, "big"))
        self.mwrite(p, n.to_bytes(32, "big") + self.returndata)
        return p

    def copy_argument(self, k: int, clear: bool = True) -> int:
        """memory(argK): the length n at 4 + argK, then n bytes (n words for an array) after it, copied to the free
        pointer p as [n, data], the word after the data cleared (not by memory_words), the pointer moved past the
        data rounded up to words."""
        at = 4 + self.vals[f"arg{k}"]
        n = self.call("calldataload", [at])
        size = n if self.fn.types[k] in ("bytes", "string") else 32 * n
        p = self.call("mload", [0x40])
        self.mwrite(0x40, (p + 32 + (size + 31) // 32 * 32).to_bytes(32, "big"))
        self.mwrite(p, n.to_bytes(32, "big"))
        self.call("calldatacopy", [p + 32, at + 32, size])
        if clear:
            self.mwrite(p + 32 + size, bytes(32))
        return p

    def values(self, text: str) -> list[int]:
        """The values of a comma-separated list of expressions."""
        return _Parser(self, text).list_to_end()

    # ---------------------------------------------------------------------------------------------- control
    def enter(self, target: str) -> str:
        label, args = _Parser(self, target).target()
        params = self.fn.units[self.unit][label][0]
        assert len(params) == len(args), (label, params, args)
        self.vals.update(zip(params, args))
        return label

    def jump(self, line: str) -> str | None:
        if line.startswith("goto "):
            rest = line[5:]
            if rest.startswith("v") and "[" in rest:
                v, lst = rest.split(" ", 1)
                dest = self.val(v)
                cands = [t for t in _TARGET.finditer(lst) if int(t.group(1)[6:].split("_")[0], 16) == dest]
                return self.enter(cands[0].group(0))
            return self.enter(rest)
        if line.startswith("if "):
            cond, _, rest = line[3:].partition(" goto ")
            yes, _, no = rest.partition(" else ")
            return self.enter(yes if _Parser(self, cond).whole() else no)
        return None

    def require(self, line: str) -> None:
        """Level 3: `require(c)` reverts with no data when c is zero; `require(c) else <halt>` runs that halt."""
        depth = 0
        for i, ch in enumerate(line):
            depth += (ch == "(") - (ch == ")")
            if ch == ")" and depth == 0:
                break
        args, rest = _Parser(self, line[len("require("):i]), line[i + 1:]
        ok = args.expr()
        if args.peek() == ",":   # require(c, "message"): Error(string)
            args.take()
            message = args.take()
            assert args.peek() is None and message.startswith('"'), line
            if not ok:
                self.statement(f"revert({message})")
            return
        assert args.peek() is None, line
        if ok:
            return
        if not rest:
            raise Halt("revert")
        assert rest.startswith(" else "), line
        self.expr(rest[len(" else "):])
        raise AssertionError(f"{line}: the else part did not halt")

    def icall(self, name: str, args: list[int]) -> list[int]:
        """Run internal function `name` on its own variables (memory, storage and logs shared) to its ret(...)."""
        outer = self.unit, self.vals
        self.unit, self.vals = name, {f"arg{i}": v for i, v in enumerate(args)}
        try:
            return self.body()
        finally:
            self.unit, self.vals = outer

    def line(self, line: str) -> str | list[int] | None:
        """Execute one line: the label it jumps to, the values a ret(...) returns, or None."""
        nxt = self.jump(line)
        if nxt is not None:
            return nxt
        if line.startswith("ret("):
            return self.values(line[4:-1])
        if line.startswith("require("):
            self.require(line)
            return None
        string = _STRING_STORE.fullmatch(line)
        if string:   # level 3: bytes or a string in memory (or a calldata argument's: calldata(x)) written to storage
            value = string.group(3).strip()
            arg = re.fullmatch(r"calldata\((.+)\)", value)
            self.string_store(self.expr(string.group(2)), self.expr(arg.group(1) if arg else value),
                              (string.group(1) or "").strip(), "calldataload" if arg else "mload")
            return None
        field = _FIELD_STORE.fullmatch(line)
        if field:   # level 3: sstore(s)[off:bits] = x writes bits [off, off + bits) of slot s, keeps the rest
            slot, off, bits, x = field.group(1), int(field.group(2)), int(field.group(3)), field.group(4)
            at, mask = self.expr(slot), ((1 << bits) - 1) << off
            self.storage[at] = (self.sload(at) & ~mask) | ((self.expr(x) << off) & mask)
            return None
        dests, _, e = line.partition(" = ") if re.match(r"v\d+(, v\d+)* = ", line) else ("", "", line)
        m = re.fullmatch(r"icall (f\d+)\((.*)\)", e)
        got = self.icall(m.group(1), self.values(m.group(2))) if m else self.expr(e)
        if dests:
            self.vals.update(zip(dests.split(", "), got if m else [got]))
        return None

    def body(self) -> list[int]:
        """Run the current unit from its first block until it returns (internal) or halts (raises Halt)."""
        label = self.fn.order[self.unit][0]
        while True:
            for text in self.fn.units[self.unit][label][1]:
                self.steps += 1
                if self.steps > self.max_steps:
                    raise Halt("steps")
                got = self.line(text)
                if isinstance(got, list):
                    return got
                if got is not None:
                    label = got
                    break
            else:
                raise Halt("fell_off")

    def run(self, max_steps: int):
        self.unit, self.steps, self.max_steps = self.fn.entry, 0, max_steps
        try:
            self.body()
            raise Halt("fell_off")
        except Halt as h:
            return h.kind, h.data, self.storage


_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|0x[0-9a-f]+|\d+|[A-Za-z_][A-Za-z0-9_]*'
                    r'|\*\*|<<|>>|==|>=|<=|!=|[-+*/%<>&|^~!(),;:\[\]])')


class _Parser:
    """Evaluates one expression of the TAC: an operand, `name(args)`, `a OP b` (an operand that is itself infix is
    parenthesized), `~a`, fields `x[o:b]`, slots `mapping(s)[k1][k2]` / `array(s)[i]`; a label with arguments."""

    def __init__(self, run: "_Run", text: str):
        self.run, self.toks, self.i = run, [], 0
        pos, text = 0, text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise NotImplementedError(f"cannot read {text[pos:]!r}")
            self.toks.append(m.group(1))
            pos = m.end()

    def peek(self, k: int = 0) -> str | None:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, want: str | None = None) -> str:
        t = self.toks[self.i]
        assert want is None or t == want, (want, t, self.toks)
        self.i += 1
        return t

    def whole(self) -> int | None:
        v = self.expr()
        assert self.peek() is None, self.toks
        return v

    def list_to_end(self) -> list[int]:
        out = []
        while self.peek() is not None:
            out.append(self.expr())
            if self.peek() == ",":
                self.take()
        return out

    def expr(self) -> int | None:
        left = self.unary()
        if self.peek() in INFIX:
            op = self.take()
            return INFIX[op](left, self.unary())
        return left

    def unary(self) -> int | None:
        t = self.take()
        if t == "~":
            return (M - 1) ^ self.unary()
        if t == "!":   # level 3: the negated condition of a require
            return int(not self.unary())
        if t == "(":
            v = self.expr()
            self.take(")")
            return self.postfix(v)
        if t == "checked" and self.peek() == "(":   # level 3: checked(a OP b)
            self.take("(")
            a, op, b = self.unary(), self.take(), self.unary()
            self.take(")")
            return self.postfix(_checked(op, a, b))
        if self.peek() == "(" and re.fullmatch(r"0x[0-9a-f]{8}", t):   # a call's input: selector and words
            return _Abi(int(t, 16), self.arguments())
        if self.peek() == "(" and re.fullmatch(r"[A-Za-z_]\w*", t):
            if t in ("mapping", "array"):
                self.take("(")
                slot = self.expr()
                self.take(")")
                keys = []
                while self.peek() == "[":
                    self.take()
                    keys.append(self.expr())
                    self.take("]")
                return self.run.slot(t, slot, keys)
            return self.postfix(self.run.call(t, self.arguments()))
        return self.postfix(self.run.val(t))

    def postfix(self, v: int | None) -> int | None:
        while self.peek() == "[":   # a field: bits [o, o + b)
            self.take()
            o = int(self.take())
            self.take(":")
            b = int(self.take())
            self.take("]")
            v = (v >> o) & ((1 << b) - 1)
        return v

    def arguments(self) -> list:
        """The comma-separated values of `(a, b, ...)`."""
        self.take("(")
        out = []
        while self.peek() != ")":
            out.append(self.expr())
            if self.peek() == ",":
                self.take()
        self.take(")")
        return out

    def target(self) -> tuple[str, list[int]]:
        label = self.take()
        return label, self.arguments() if self.peek() == "(" else []


