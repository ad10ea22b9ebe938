"""The behaviour harness's fused opcodes (tacsol.evaluate.execution.fused_opcodes) against py-evm's own opcode
table: the same outcome (success, return or revert data, error class, storage writes, logs, calls, and what the
searches record: comparisons, branches, first-read values) on random programs at every gas level that matters,
and on the shipped sample's compiled originals over the harness's own cases and searches."""
from __future__ import annotations

import random

import pytest

from tacsol.evaluate import abi, behaviour as B
from tacsol.evaluate import cases as CS, trace as TR
from tacsol.evaluate.execution import execute, fused_opcodes, valid_jumpdests

CALLER = bytes.fromhex("a1" * 20)

# what the random programs are made of: every opcode fused_opcodes replaces, and a few it leaves to py-evm
FUSED = ([0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1B, 0x1C, 0x50,
          0x5B, 0x35, 0x51, 0x52] + list(range(0x80, 0x90)) + list(range(0x90, 0xA0)))
OTHERS = [0x36, 0x54, 0x55, 0x06, 0x0A, 0x1D]   # CALLDATASIZE, SLOAD, SSTORE, MOD, EXP, SAR


BINARY = [0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1B, 0x1C, 0x06, 0x0A, 0x1D]
UNARY = [0x15, 0x19, 0x35, 0x54]   # ISZERO, NOT, CALLDATALOAD, SLOAD


def _program(rng: random.Random, n: int) -> bytes:
    """Random code that mostly runs to its end (a model of the stack depth picks operands that exist): pushes,
    every fused opcode and a few others, forward jumps to the tail, and with small probability a fault (an
    opcode on too short a stack, a jump into push data or past the end, a PUSH32 cut off by the end of the
    code). The tail stores the top of the stack and returns it."""
    out, depth, patches = bytearray(), 0, []
    for _ in range(n):
        r = rng.random()
        if r < 0.03 or depth == 0 and r < 0.05:   # a fault on purpose
            out.append(rng.choice(FUSED + OTHERS))
            continue
        if depth < 2 or r < 0.3:
            k = rng.choice([1, 1, 1, 2, 2, 4, 20, 32])
            out += bytes([0x5F + k]) + rng.randbytes(k)
            depth += 1
        elif r < 0.36:   # JUMPI (the condition is on the stack) or JUMP to the tail, or somewhere random
            dest = rng.randrange(0, len(out) + 3) if rng.random() < 0.1 else None
            op = rng.choice([0x56, 0x57])
            if dest is None:
                patches.append(len(out) + 1)
            out += bytes([0x61]) + (dest or 0).to_bytes(2, "big") + bytes([op])
            depth -= op == 0x57
        elif r < 0.5:
            i = rng.randrange(1, min(depth, 16) + 1)
            out.append(0x7F + i)   # DUPi
            depth += 1
        elif r < 0.6 and depth >= 2:
            out.append(0x8F + rng.randrange(1, min(depth - 1, 16) + 1))   # SWAPi
        elif r < 0.68:
            out.append(0x50)   # POP
            depth -= 1
        elif r < 0.72:
            out.append(0x5B)
        elif r < 0.75:
            op = rng.choice([0x52, 0x51])
            out += bytes([0x60, rng.randrange(0, 4) * 32, op])   # MSTORE / MLOAD at 0..96
            depth += -1 if op == 0x52 else 1
        elif r < 0.78:
            out += bytes([0x60, rng.randrange(0, 4), 0x55])   # SSTORE to slots 0..3
            depth -= 1
        elif r < 0.82:
            out.append(rng.choice(UNARY))
        else:
            out.append(rng.choice(BINARY))
            depth -= 1
        depth = max(depth, 0)
    tail = len(out)
    for at in patches:
        out[at:at + 2] = tail.to_bytes(2, "big")
    out += bytes([0x5B, 0x80, 0x60, 0x00, 0x52, 0x60, 0x01, 0x55, 0x60, 0x20, 0x60, 0x00, 0xF3])
    if rng.random() < 0.2:
        out += bytes([0x7F]) + rng.randbytes(rng.randrange(0, 32))
    return bytes(out)


def _both(code: bytes, data: bytes, **kw):
    a = execute(code, data, {}, caller=CALLER, storage_default=lambda s, pre: (s * 0x9E3779B97F4A7C15) % 2**256,
                fused=True, **kw)
    b = execute(code, data, {}, caller=CALLER, storage_default=lambda s, pre: (s * 0x9E3779B97F4A7C15) % 2**256,
                fused=False, **kw)
    return a, b


@pytest.mark.parametrize("fused", [True, False])
def test_blobhash_and_blobbasefee_run_as_on_a_transaction_without_blobs(fused):
    """Cancun's BLOBHASH read the transaction context's blob hashes, which py-evm's base context does not implement:
    a runtime using blobhash() raised NotImplementedError out of the harness (tools/diff_corpus_tac.py
    --mutations found it). With no blobs, blobhash(i) is 0, and the blob base fee is 1 (excess blob gas 0)."""
    code = bytes.fromhex("600049" "600052" "4a" "602052" "60406000f3")   # mstore(0, blobhash(0)); mstore(32, blobbasefee)
    out = execute(code, b"", {}, caller=bytes.fromhex("22" * 20), fused=fused)
    assert out.success and out.output == (0).to_bytes(32, "big") + (1).to_bytes(32, "big"), (out.error, out.output)


def test_valid_jumpdests_skip_push_data():
    # JUMPDEST at 0; PUSH2 0x5b5b (data, not destinations); JUMPDEST at 4; PUSH1 at the end cut off
    assert valid_jumpdests(bytes([0x5B, 0x61, 0x5B, 0x5B, 0x5B, 0x60])) == {0, 4}


def test_fused_table_replaces_the_frequent_opcodes_with_the_same_gas():
    from eth.vm.forks.cancun.computation import CancunComputation

    base = CancunComputation.opcodes
    fused = fused_opcodes(base)
    for code in FUSED:
        assert fused[code] is not base[code], hex(code)
        assert (fused[code].mnemonic, fused[code].gas_cost) == (base[code].mnemonic, base[code].gas_cost)


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_run_alike_in_both_tables(seed):
    rng = random.Random(seed)
    compared = errors = 0
    for _ in range(40):
        code = _program(rng, rng.randrange(4, 60))
        data = rng.randbytes(rng.choice([0, 4, 36, 68]))
        for explore in (False, True):
            a, b = _both(code, data, explore=explore, gas=100_000)   # a loop ends out of gas, never on the clock
            assert a == b, (code.hex(), explore)
            compared += 1
            errors += not a.success
        # gas: the same outcome at every limit below what the full run needs (out of gas at the same opcode)
        for gas in rng.sample(range(21, 400), 6) + rng.sample(range(400, 30_000), 4):
            a, b = _both(code, data, gas=gas, explore=gas % 2 == 1)   # recorded before the op runs out of gas
            assert a == b, (code.hex(), gas)
    # the programs reach both ends: runs that return and runs that fail (underflow, bad jump, out of gas)
    assert 0 < errors < compared


def test_stack_limits_fail_alike():
    over = bytes([0x60, 0x01] + [0x80] * 1024 + [0x00])   # DUP1 past 1,024 items: FullStack
    under = {op: bytes([op, 0x00]) for op in FUSED if op != 0x5B}   # each fused opcode on an empty stack
    for code in [over, *under.values()]:
        a, b = _both(code, b"")
        assert a == b and not a.success, code[:4].hex()
    a, _ = _both(over, b"")
    assert a.error == "FullStack"


def test_sample_originals_trace_alike_in_both_tables(monkeypatch):
    """The harness's whole trace of each shipped-sample original (20 fixed cases, the state search, the branch
    search) with the fused table equals the trace with py-evm's own."""
    recs, seen = [], set()
    from tacsol import pairs

    for r in pairs.load("sample")["test"]:
        r = dict(r)
        if r.get("group") not in seen:
            seen.add(r.get("group"))
            recs.append(r)
    h = B.Harness(workers=1)
    traced = 0
    import tacsol.evaluate.trace as trace_module   # trace_original runs execute from there

    plain = trace_module.execute
    for r in recs:
        o = h.original(r)
        sel = (r.get("selector") or "").lower()
        if isinstance(o, str) or not sel.startswith("0x"):
            continue
        _, types = abi.parse_signature(r["signature"])
        payable = (r.get("mutability") or "") == "payable"
        runs = {}
        for fused in (True, False):
            monkeypatch.setattr(trace_module, "execute",
                                lambda *a, _f=fused, **k: plain(*a, **{**k, "fused": _f}))
            runs[fused] = TR.trace_original(o.code, sel, types, CS.make_cases(types, payable, 0, CS.N_CASES), seed=0,
                                           shapes=CS.slot_shapes(o), payable=payable)
        assert runs[True].outcomes == runs[False].outcomes and runs[True].cases == runs[False].cases, r["id"]
        traced += 1
    assert traced >= 20


def test_the_environment_chooses_the_table_for_worker_processes(monkeypatch):
    from tacsol.evaluate import execution as E

    code = bytes([0x60, 0x01, 0x60, 0x02, 0x01, 0x00])   # 1 + 2; STOP
    for env, fused in (("py-evm", False), ("fused", True)):
        monkeypatch.setenv("TACSOL_OPCODES", env)
        E._MACHINES.clear()
        assert execute(code, b"", {}, caller=CALLER).success
        (m,) = E._MACHINES.values()
        assert list(m._classes) == [(False, fused)]


@pytest.mark.parametrize("child_ends, value, sload_gas", [(0xFD, 5, 2100), (0xF3, 7, 100)])
def test_sload_cache_follows_a_reentrant_frame_that_reverts_or_returns(child_ends, value, sload_gas):
    """The fused table's SLOAD answers from a per-run cache; a frame that writes a slot and reverts must leave the
    original value and the slot cold again (EIP-2929), one that returns its write and the slot warm. The contract
    calls itself: the child (no calldata) stores 7 in slot 0, reads it back and reverts or returns; the parent
    then reads slot 0 between two GAS opcodes and returns (gas spent, value)."""
    child = bytes([0x60, 0x07, 0x60, 0x00, 0x55, 0x60, 0x00, 0x54, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00,
                   child_ends])
    head = bytes([0x36, 0x60, 4 + len(child), 0x57])   # CALLDATASIZE PUSH1 parent JUMPI
    parent = bytes([0x5B] + [0x60, 0x00] * 5 + [0x30, 0x5A, 0xF1, 0x50,   # CALL(gas, ADDRESS, 0, 0, 0, 0, 0); POP
                    0x5A, 0x60, 0x00, 0x54, 0x5A,                         # GAS PUSH1 0 SLOAD GAS
                    0x90, 0x60, 0x20, 0x52, 0x90, 0x03,                   # mem[32] = value; g1 - g2
                    0x60, 0x00, 0x52, 0x60, 0x40, 0x60, 0x00, 0xF3])      # mem[0] = gas spent; RETURN 64 bytes
    code = head + child + parent
    a = execute(code, b"\x01", {0: 5}, caller=CALLER, fused=True)
    b = execute(code, b"\x01", {0: 5}, caller=CALLER, fused=False)
    assert a == b and a.success
    assert int.from_bytes(a.output[32:], "big") == value
    assert int.from_bytes(a.output[:32], "big") == sload_gas + 2 + 3   # SLOAD, GAS, PUSH1


def test_memory_growth_costs_alike_at_every_gas_limit():
    """MLOAD/MSTORE far out grow memory at a quadratic price: the fused ops charge it themselves (out of gas at the
    same limits as py-evm's extend_memory), and an offset near 2**256 runs out of gas instead of allocating."""
    for offset in (0, 31, 33, 4_000, 0x10000, 2**255):
        for op in (0x51, 0x52):   # MLOAD, MSTORE
            push = bytes([0x7F]) + offset.to_bytes(32, "big")
            code = (bytes([0x60, 0x2A]) if op == 0x52 else b"") + push + bytes([op, 0x59, 0x60, 0x00, 0x52,
                                                                                0x60, 0x20, 0x60, 0x00, 0xF3])
            full = _both(code, b"", gas=10_000_000)
            assert full[0] == full[1]
            for gas in (30, 100, 500, 3_000, 20_000, 200_000, 2_000_000):
                a, b = _both(code, b"", gas=gas)
                assert a == b, (offset, hex(op), gas)
