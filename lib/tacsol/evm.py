"""EVM byte facts: the opcode table through Cancun, hex text to bytes, disassembly, keccak-256, function selectors
and stand-in addresses for unlinked library placeholders.

Opcode table: byte -> (mnemonic, stack inputs, stack outputs). Operand order everywhere in tacsol follows the Yellow
Paper: the first input is the top of the stack (SUB computes input0 - input1, SHL shifts input1 left by input0)."""
from __future__ import annotations

from typing import NamedTuple


class Op(NamedTuple):
    code: int
    name: str
    n_in: int
    n_out: int


_TABLE: list[tuple[int, str, int, int]] = [
    (0x00, "STOP", 0, 0), (0x01, "ADD", 2, 1), (0x02, "MUL", 2, 1), (0x03, "SUB", 2, 1), (0x04, "DIV", 2, 1),
    (0x05, "SDIV", 2, 1), (0x06, "MOD", 2, 1), (0x07, "SMOD", 2, 1), (0x08, "ADDMOD", 3, 1), (0x09, "MULMOD", 3, 1),
    (0x0A, "EXP", 2, 1), (0x0B, "SIGNEXTEND", 2, 1),
    (0x10, "LT", 2, 1), (0x11, "GT", 2, 1), (0x12, "SLT", 2, 1), (0x13, "SGT", 2, 1), (0x14, "EQ", 2, 1),
    (0x15, "ISZERO", 1, 1), (0x16, "AND", 2, 1), (0x17, "OR", 2, 1), (0x18, "XOR", 2, 1), (0x19, "NOT", 1, 1),
    (0x1A, "BYTE", 2, 1), (0x1B, "SHL", 2, 1), (0x1C, "SHR", 2, 1), (0x1D, "SAR", 2, 1),
    (0x20, "SHA3", 2, 1),
    (0x30, "ADDRESS", 0, 1), (0x31, "BALANCE", 1, 1), (0x32, "ORIGIN", 0, 1), (0x33, "CALLER", 0, 1),
    (0x34, "CALLVALUE", 0, 1), (0x35, "CALLDATALOAD", 1, 1), (0x36, "CALLDATASIZE", 0, 1),
    (0x37, "CALLDATACOPY", 3, 0), (0x38, "CODESIZE", 0, 1), (0x39, "CODECOPY", 3, 0), (0x3A, "GASPRICE", 0, 1),
    (0x3B, "EXTCODESIZE", 1, 1), (0x3C, "EXTCODECOPY", 4, 0), (0x3D, "RETURNDATASIZE", 0, 1),
    (0x3E, "RETURNDATACOPY", 3, 0), (0x3F, "EXTCODEHASH", 1, 1),
    (0x40, "BLOCKHASH", 1, 1), (0x41, "COINBASE", 0, 1), (0x42, "TIMESTAMP", 0, 1), (0x43, "NUMBER", 0, 1),
    (0x44, "PREVRANDAO", 0, 1), (0x45, "GASLIMIT", 0, 1), (0x46, "CHAINID", 0, 1), (0x47, "SELFBALANCE", 0, 1),
    (0x48, "BASEFEE", 0, 1), (0x49, "BLOBHASH", 1, 1), (0x4A, "BLOBBASEFEE", 0, 1),
    (0x50, "POP", 1, 0), (0x51, "MLOAD", 1, 1), (0x52, "MSTORE", 2, 0), (0x53, "MSTORE8", 2, 0),
    (0x54, "SLOAD", 1, 1), (0x55, "SSTORE", 2, 0), (0x56, "JUMP", 1, 0), (0x57, "JUMPI", 2, 0), (0x58, "PC", 0, 1),
    (0x59, "MSIZE", 0, 1), (0x5A, "GAS", 0, 1), (0x5B, "JUMPDEST", 0, 0), (0x5C, "TLOAD", 1, 1),
    (0x5D, "TSTORE", 2, 0), (0x5E, "MCOPY", 3, 0), (0x5F, "PUSH0", 0, 1),
    (0xA0, "LOG0", 2, 0), (0xA1, "LOG1", 3, 0), (0xA2, "LOG2", 4, 0), (0xA3, "LOG3", 5, 0), (0xA4, "LOG4", 6, 0),
    (0xF0, "CREATE", 3, 1), (0xF1, "CALL", 7, 1), (0xF2, "CALLCODE", 7, 1), (0xF3, "RETURN", 2, 0),
    (0xF4, "DELEGATECALL", 6, 1), (0xF5, "CREATE2", 4, 1), (0xFA, "STATICCALL", 6, 1), (0xFD, "REVERT", 2, 0),
    (0xFE, "INVALID", 0, 0), (0xFF, "SELFDESTRUCT", 1, 0),
]
_TABLE += [(0x60 + i, f"PUSH{i + 1}", 0, 1) for i in range(32)]
_TABLE += [(0x80 + i, f"DUP{i + 1}", i + 1, i + 2) for i in range(16)]
_TABLE += [(0x90 + i, f"SWAP{i + 1}", i + 2, i + 2) for i in range(16)]

OPCODES: dict[int, Op] = {c: Op(c, n, i, o) for c, n, i, o in _TABLE}
BY_NAME: dict[str, Op] = {op.name: op for op in OPCODES.values()}

# Instructions that end a basic block.
TERMINATORS = {"STOP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT", "JUMP", "JUMPI"}


def push_size(code: int) -> int:
    """Number of immediate bytes after a PUSH opcode (0 for everything else)."""
    return code - 0x5F if 0x60 <= code <= 0x7F else 0


class Instr(NamedTuple):
    pc: int
    op: int            # opcode byte (undefined bytes kept as they are)
    arg: int | None    # PUSH immediate
    truncated: bool    # PUSH data runs past the end of the code


def disassemble(code: bytes, end: int | None = None) -> list[Instr]:
    """Linear sweep over code[:end]; undefined bytes stay as single instructions (they behave as INVALID)."""
    end = len(code) if end is None else end
    out: list[Instr] = []
    pc = 0
    while pc < end:
        b = code[pc]
        n = push_size(b)
        if n:
            data = code[pc + 1: pc + 1 + n]
            trunc = pc + 1 + n > end
            # Truncated PUSH data is zero-padded on the right by the EVM.
            out.append(Instr(pc, b, int.from_bytes(data.ljust(n, b"\0"), "big"), trunc))
            pc += 1 + n
        else:
            out.append(Instr(pc, b, 0 if b == 0x5F else None, False))
            pc += 1
    return out


def instruction_offsets(code: bytes) -> list[int]:
    """Offset of every instruction (solc's source maps have one entry per instruction, in this order)."""
    return [i.pc for i in disassemble(code)]


# ------------------------------------------------------------------------------------------------- hex text
def strip_0x(text: str) -> str:
    """Hex text without its 0x / 0X prefix."""
    return text[2:] if text[:2] in ("0x", "0X") else text


def hex_bytes(text: str) -> bytes:
    """Bytes of hex text (code, a selector, a word), with or without 0x."""
    return bytes.fromhex(strip_0x(text))


# ------------------------------------------------------------------------------------------- keccak, selectors
def keccak256(data: bytes) -> bytes:
    from Crypto.Hash import keccak

    return keccak.new(digest_bits=256, data=data).digest()


def selector(signature: str) -> str:
    """The 4-byte selector ("0x" + 8 hex) of a canonical signature such as ``transfer(address,uint256)``."""
    return "0x" + keccak256(signature.encode()).hex()[:8]


def split_types(text: str) -> list[str]:
    """The items of an ABI type list at parenthesis depth 0: ``address,(uint256,bool)[],bytes`` → 3 types."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    return out + [cur] if cur else out


IMMUTABLE_READ = b"\x7f" + bytes(32)   # PUSH32 0: how deployedBytecode reads an immutable variable before deployment


def may_read_immutables(code: bytes) -> bool:
    """Runtime code that may read an immutable variable (solc's PUSH32 of 32 zero bytes, filled at deployment; no
    compiler pushes a zero word that way otherwise), so a constant in it may not be one once deployed."""
    return IMMUTABLE_READ in code


def set_immutables(code: bytes, references: dict, words: dict) -> bytes:
    """Runtime code with its immutable variables set: solc leaves 32 zero bytes where each is read
    (``evm.deployedBytecode.immutableReferences``: AST id -> [{start, length}]) for the constructor to fill at
    deployment. words: AST id (as in references) -> the value; an id it lacks stays zero."""
    out = bytearray(code)
    for ident, spots in (references or {}).items():
        if str(ident) not in words:
            continue
        for spot in spots:
            start, length = int(spot["start"]), int(spot["length"])
            out[start:start + length] = (words[str(ident)] % (1 << (8 * length))).to_bytes(length, "big")
    return bytes(out)


def link_placeholders(code: str) -> str:
    """Runtime code hex with its external-library placeholders linked to stand-in addresses.

    solc leaves a 40-character placeholder where a library's address goes (linked at deployment):
    ``__$<34 hex of keccak(path:Name)>$__`` from 0.5, ``__<path:Name padded with _>`` before. Each becomes the first
    20 bytes of keccak256 of the placeholder text (deterministic, distinct per library), so the contract's own code
    lifts and runs; its library calls read ``delegatecall(gas, 0x<stand-in>, ...)``. Code without placeholders is
    unchanged."""
    if "__" not in code:
        return code
    out, i = [], 0
    while (j := code.find("__", i)) >= 0:
        ph = code[j:j + 40]
        out += [code[i:j], keccak256(ph.encode()).hex()[:40]]
        i = j + 40
    out.append(code[i:])
    return "".join(out)
