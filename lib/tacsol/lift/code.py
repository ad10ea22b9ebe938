"""Input checks: hex or bytes to raw code, and the inputs that are not liftable runtime code (LiftError reasons)."""
from __future__ import annotations

import re

from ..evm import OPCODES, Instr
from .cfg import Program
from .result import LiftError

_HEX = re.compile(r"^[0-9a-fA-F]*$")
_EIP1167 = re.compile(rb"\x36\x3d\x3d\x37\x3d\x3d\x3d\x36\x3d(\x73.{20}|\x6f.{16})"   # CALLDATACOPY; PUSH20/16 addr
                      rb"\x5a\xf4\x3d\x82\x80\x3e\x90\x3d\x91", re.S)                   # DELEGATECALL; RETURNDATACOPY
_PROLOGUES = (b"\x60\x80\x60\x40\x52", b"\x60\x60\x60\x40\x52")
_NO_FALL_THROUGH = ("STOP", "JUMP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT")


def parse_code(code: str | bytes | bytearray) -> bytes:
    if isinstance(code, (bytes, bytearray)):
        raw = bytes(code)
        # Bytes that spell hex text (e.g. a file read in binary mode) are decoded as hex.
        if raw and re.fullmatch(rb"\s*(0x)?[0-9a-fA-F]+\s*", raw):
            return parse_code(raw.decode())
    elif isinstance(code, str):
        raw = _parse_hex(code)
    else:
        raise LiftError("malformed_hex", f"bytecode must be hex text or bytes, got {type(code).__name__}")
    if not raw:
        raise LiftError("empty_code", "bytecode is empty (an account without code, or an abstract contract)")
    return raw


def _parse_hex(code: str) -> bytes:
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
    return bytes.fromhex(text)


# EIP-1967's implementation and beacon slots: keccak256("eip1967.proxy.implementation") - 1, "...beacon" - 1
EIP1967_SLOTS = {"implementation": "360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc",
                 "beacon": "a3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50"}


def reject_not_contract_code(raw: bytes) -> None:
    """Inputs that are not legacy contract code, each with its own reason: an address, an EOA's EIP-7702
    delegation, an EOF container."""
    if raw[:3] == b"\xef\x01\x00" and len(raw) == 23:
        raise LiftError("eip7702_delegation", f"an EOA's EIP-7702 delegation designator to 0x{raw[3:].hex()}: the "
                        "account runs that address's code; lift the code at 0x" + raw[3:].hex())
    if raw[:2] == b"\xef\x00":
        version = raw[2] if len(raw) > 2 else None
        raise LiftError("eof_container", f"an EOF container (EIP-3540 magic 0xef00, version {version}): not legacy "
                        "EVM code; the lifter reads legacy bytecode only")
    if len(raw) == 20:
        raise LiftError("address_not_code", f"20 bytes: this looks like an address (0x{raw.hex()}), not bytecode; "
                        "fetch the account's code (eth_getCode) and lift that")


def library_address(raw: bytes) -> str | None:
    """solc libraries start with PUSH20 <own address> ADDRESS EQ: the guard that refuses non-delegate calls to
    state-changing functions. The address is 0 in compiler output and set at deployment."""
    if len(raw) > 22 and raw[0] == 0x73 and raw[21:23] == b"\x30\x14":
        return "0x" + raw[1:21].hex()
    return None


def reject_clone(raw: bytes) -> None:
    m = _EIP1167.search(raw[:64])
    if m and len(raw) <= 64:
        raise LiftError("proxy_eip1167", "EIP-1167 minimal proxy: all calls are delegated to "
                        f"0x{m.group(1)[1:].hex()}; lift the implementation instead")


def proxy_error(raw: bytes) -> LiftError:
    """A runtime with no public function whose fallback DELEGATECALLs: name the EIP-1967 slot when it is there."""
    for kind, slot in EIP1967_SLOTS.items():
        if bytes.fromhex(slot) in raw:
            return LiftError("proxy_eip1967", f"EIP-1967 proxy: every call is delegated to the {kind} address stored "
                             f"in slot 0x{slot}; read that slot (eth_getStorageAt) and lift the implementation")
    return LiftError("proxy_only", "no public functions; the fallback forwards every call with DELEGATECALL "
                     "(a proxy): lift the implementation contract instead")


def looks_like_creation(raw: bytes, instrs: list[Instr]) -> bool:
    """Constructor code copies an embedded runtime (which starts with its own free-memory prologue) and returns it."""
    names = {OPCODES[i.op].name for i in instrs[:400] if i.op in OPCODES}
    if not {"CODECOPY", "RETURN"} <= names:
        return False
    return any(raw.find(p, 1) > 0 for p in _PROLOGUES)


def reject_truncated_push(prog: Program, deadline: float) -> None:
    """solc puts revert strings and other data after the code; only a truncated PUSH that can execute is an error."""
    if not prog.instrs[-1].truncated:
        return
    pc = prog.instrs[-1].pc
    try:
        reach = prog.block_set([0], deadline=deadline) if 0 in prog.blocks else []
    except TimeoutError:  # out of time before it could be decided: the functions report status timeout
        return
    prev = prog.instrs[-2] if len(prog.instrs) > 1 else None
    flows_in = prev is not None and OPCODES.get(prev.op) is not None and OPCODES[prev.op].name not in _NO_FALL_THROUGH

    def covers(b: int, at: int) -> bool:
        return prog.blocks[b].start <= at <= prog.blocks[b].end

    if not reach or any(covers(b, pc) or (flows_in and covers(b, prev.pc)) for b in reach):
        raise LiftError("truncated_push", f"PUSH at offset {pc:#x} runs past the end of the code")


def reject_undefined_entry(prog: Program) -> None:
    if 0 in prog.blocks and prog.sym(0).undefined is not None:
        raise LiftError("invalid_opcode", f"undefined opcode 0x{prog.sym(0).undefined:02x} in the entry block; "
                        "this is not EVM code")
