"""tacsol.evm: keccak-256, selectors, hex text, disassembly and library placeholders."""
from __future__ import annotations

from tacsol import evm


def test_keccak256_known_digests():
    assert evm.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    # the ERC-20 Transfer event topic
    assert evm.keccak256(b"Transfer(address,address,uint256)").hex() == \
        "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def test_selector_known_values():
    assert evm.selector("transfer(address,uint256)") == "0xa9059cbb"
    assert evm.selector("balanceOf(address)") == "0x70a08231"
    assert evm.selector("set(uint256)") == "0x60fe47b1"


def test_hex_bytes_with_and_without_prefix():
    assert evm.hex_bytes("0x6001") == evm.hex_bytes("0X6001") == evm.hex_bytes("6001") == b"\x60\x01"
    assert evm.hex_bytes("0xa9059cbb") == bytes.fromhex("a9059cbb")
    assert evm.strip_0x("0xab") == evm.strip_0x("ab") == "ab"


def test_disassemble_push32_at_the_end_and_truncated_push():
    word = bytes(range(1, 33))
    ins = evm.disassemble(b"\x60\x01\x7f" + word)          # PUSH1 1; PUSH32 <word> ending the code
    assert [(i.pc, evm.OPCODES[i.op].name, i.truncated) for i in ins] == [(0, "PUSH1", False), (2, "PUSH32", False)]
    assert ins[1].arg == int.from_bytes(word, "big")
    cut = evm.disassemble(b"\x00\x7f\xaa\xbb")             # STOP; PUSH32 with 2 of its 32 bytes
    assert [i.pc for i in cut] == [0, 1] and cut[1].truncated
    assert cut[1].arg == int.from_bytes(b"\xaa\xbb".ljust(32, b"\0"), "big")  # zero-padded on the right
    assert evm.disassemble(b"\x5f\xfe\x0c") == [evm.Instr(0, 0x5F, 0, False), evm.Instr(1, 0xFE, None, False),
                                                 evm.Instr(2, 0x0C, None, False)]  # PUSH0, INVALID, undefined byte


def test_instruction_offsets_skip_push_data():
    # PUSH2 0x5b5b (data that looks like JUMPDESTs); JUMPDEST; PUSH1 0x60; STOP
    assert evm.instruction_offsets(bytes.fromhex("615b5b5b606000")) == [0, 3, 4, 6]
    assert evm.instruction_offsets(b"") == []


def test_library_placeholders_are_linked_to_stand_in_addresses():
    from tacsol.lift import lift

    ph05 = "__$" + "ab" * 17 + "$__"            # solc >= 0.5 placeholder (40 characters)
    ph04 = "__contracts/L.sol:L" + "_" * 21         # solc 0.4 placeholder, padded to 40
    assert len(ph05) == len(ph04) == 40
    # PUSH20 <lib>; PUSH20 <lib2>; STOP
    code = "73" + ph05 + "73" + ph04 + "00"
    linked = evm.link_placeholders(code)
    assert "_" not in linked and len(linked) == len(code)
    a, b = linked[2:42], linked[44:84]
    assert a != b and int(a, 16) and int(b, 16)
    assert evm.link_placeholders(code) == linked                  # deterministic
    assert evm.link_placeholders("6001600055") == "6001600055"    # nothing to link: unchanged
    lift(linked)                                                  # now valid bytecode for the lifter
    # the behaviour harness's own linker left the 40th character of a 0.4 placeholder behind (odd hex)
    assert len(evm.hex_bytes(evm.link_placeholders("73" + ph04 + "00"))) == 22


def test_split_types_splits_an_abi_type_list_at_the_top_level():
    """The one splitter of ABI type lists (lift's argument layout, the behaviour harness's signatures)."""
    assert evm.split_types("address,(uint256,(bool,bytes))[],bytes32[2]") == \
        ["address", "(uint256,(bool,bytes))[]", "bytes32[2]"]
    assert evm.split_types("") == [] and evm.split_types("uint8") == ["uint8"]
