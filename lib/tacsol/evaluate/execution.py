"""One call of runtime bytecode in py-evm, from a given storage, with everything observable recorded.

The behaviour harness (tacsol.evaluate.behaviour) runs the original and the recompiled runtime through `execute`
from the same state and compares the `Outcome`s. Tracing wraps four opcodes of the Cancun computation:
SLOAD (slots read, so the harness can seed them), SSTORE (slots written), SHA3 (mapping/array slot preimages,
so a slot can be traced back to its declared base slot) and JUMP/JUMPI (a wall-clock deadline: gas bounds the
work, the deadline bounds py-evm's slowness on cheap loops)."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable

from ..evm import BY_NAME

CONTRACT = bytes.fromhex("c0ffee" + "00" * 17)
GAS = 3_000_000
BALANCE = 10**21
# block context shared by both runs (mainnet-like, fixed so that results reproduce)
BLOCK = {"coinbase": bytes.fromhex("c0" * 20), "timestamp": 1_700_000_000, "number": 18_500_000,
         "prev_randao": 12345, "gas_limit": 30_000_000, "chain_id": 1, "base_fee": 10**9}


# code put at the harness's "contract" addresses: answers any call with the word 1 (true, a nonzero balance, an
# accepted transfer), so that code past an external call (token transfers, oracle reads) is reached and the call
# itself (target, value, calldata) is compared; calls to other addresses meet no code, as on chain
RESPONDER_CODE = bytes.fromhex("600160005260206000f3")   # mstore(0, 1); return(0, 32)
ZERO_RESPONDER_CODE = bytes.fromhex("60206000f3")            # return(0, 32): the word 0 (no implementer, false)


# the 256 previous block hashes (blockhash(n) for the last 256 blocks), distinct and fixed
PREV_HASHES = tuple(hashlib.sha256(f"block {BLOCK['number'] - 1 - d}".encode()).digest() for d in range(256))


class Deadline(Exception):
    """Raised inside py-evm when a call runs past its limit, in CPU seconds of this thread (time.thread_time): a busy
    machine must not turn an equivalent function into a timeout."""


@dataclass
class Outcome:
    success: bool
    output: bytes                                  # return data, or revert data
    error: str = ""                                # py-evm's error class on failure ("Revert", "OutOfGas", ...)
    writes: dict[int, int] = field(default_factory=dict)   # slot -> final value, where it changed
    reads: list[int] = field(default_factory=list)          # slots read, first-read order
    accesses: list[tuple[str, int]] = field(default_factory=list)  # ("r"|"w", slot), first occurrence order
    logs: list[tuple[tuple[int, ...], bytes]] = field(default_factory=list)
    calls: list[tuple[str, bytes, int, bytes]] = field(default_factory=list)  # (kind, target, value, data)
    preimages: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # slot -> (kind, base, key)
    probed: list[bytes] = field(default_factory=list)  # addresses called or asked for their code, first-use order
    timeout: bool = False
    balance: int = 0                               # the contract's balance afterwards


def _traced_opcodes(base: dict, trace: dict, deadline: float):
    import eth.vm.forks.cancun.computation  # noqa: F401

    class Traced:
        __slots__ = ("op", "mnemonic", "hook")

        def __init__(self, op, hook):
            self.op, self.mnemonic, self.hook = op, op.mnemonic, hook

        def __call__(self, computation):
            self.hook(self.op, computation)

    def seed(c, slot):   # first touch of a slot the given storage does not hold: its default value
        if slot not in trace["storage"] and slot not in trace["seeded"] and trace["sdef"]:
            v = trace["seeded"][slot] = trace["sdef"](slot, trace["pre"])
            if v:
                c.state.set_storage(CONTRACT, slot, v)

    def sload(op, c):
        slot = c.stack_pop1_int()
        if c.msg.storage_address == CONTRACT:
            seed(c, slot)
            if slot not in trace["read_set"]:
                trace["read_set"].add(slot)
                trace["reads"].append(slot)
                trace["acc"].append(("r", slot))
        c.stack_push_int(slot)
        op(computation=c)

    def sstore(op, c):
        slot, value = c.stack_pop1_int(), c.stack_pop1_int()
        if c.msg.storage_address == CONTRACT:
            seed(c, slot)
            if slot not in trace["written"]:
                trace["written"].add(slot)
                trace["acc"].append(("w", slot))
        c.stack_push_int(value)
        c.stack_push_int(slot)
        op(computation=c)

    def sha3(op, c):
        start, size = c.stack_pop1_int(), c.stack_pop1_int()
        c.stack_push_int(size)
        c.stack_push_int(start)
        op(computation=c)
        h = c.stack_pop1_int()
        c.stack_push_int(h)
        if size in (32, 64):
            mem = c.memory_read_bytes(start, size)
            if size == 64:   # mapping: keccak(key . base)
                trace["pre"][h] = ("mapping", int.from_bytes(mem[32:], "big"), int.from_bytes(mem[:32], "big"))
            else:            # dynamic array / bytes data: keccak(base)
                trace["pre"][h] = ("array", int.from_bytes(mem, "big"), 0)

    def probe(n_before):   # the address operand sits n_before words below the top of the stack
        def hook(op, c):
            words = [c.stack_pop1_int() for _ in range(n_before + 1)]
            a = (words[-1] & ((1 << 160) - 1)).to_bytes(20, "big")
            for w in reversed(words):
                c.stack_push_int(w)
            if a not in trace["probed_set"]:
                trace["probed_set"].add(a)
                trace["probed"].append(a)
                code = trace["cdef"](a) if trace["cdef"] else None
                if code and not c.state.get_code(a):
                    c.state.set_code(a, code)
            op(computation=c)
        return hook

    def jump(op, c):
        trace["jumps"] += 1
        if trace["jumps"] % 512 == 0 and time.thread_time() > deadline:
            raise Deadline()
        op(computation=c)

    ops = dict(base)
    hooks = {"SLOAD": sload, "SSTORE": sstore, "SHA3": sha3, "JUMP": jump, "JUMPI": jump,
             "EXTCODESIZE": probe(0), "EXTCODEHASH": probe(0), "CALL": probe(1), "CALLCODE": probe(1),
             "DELEGATECALL": probe(1), "STATICCALL": probe(1)}
    for name, hook in hooks.items():
        code = BY_NAME[name].code
        ops[code] = Traced(base[code], hook)
    return ops


def execute(code: bytes, data: bytes, storage: dict[int, int], *, caller: bytes, value: int = 0,
            gas: int = GAS, time_limit_s: float = 2.0, responders: tuple[bytes, ...] = (),
            storage_default: Callable[[int, dict], int] | None = None,
            code_default: Callable[[bytes], bytes | None] | None = None) -> Outcome:
    """Run `code` at CONTRACT with `storage` preloaded, called by `caller` with `data` and `value`; the addresses
    in `responders` hold RESPONDER_CODE. A slot `storage` does not hold takes
    `storage_default(slot, preimages so far)` when first touched, and an address first called or asked for its code size takes
    `code_default(address)`, so a run sees one fixed (conceptually infinite) state whatever path it takes."""
    from eth.constants import BLANK_ROOT_HASH
    from eth.db.atomic import AtomicDB
    from eth.vm.execution_context import ExecutionContext
    from eth.vm.forks.cancun.computation import CancunComputation
    from eth.vm.forks.cancun.state import CancunState
    from eth.vm.message import Message
    from eth.vm.transaction_context import BaseTransactionContext

    trace = {"reads": [], "read_set": set(), "written": set(), "pre": {}, "jumps": 0, "acc": [], "probed": [],
             "probed_set": set(), "storage": storage, "seeded": {}, "sdef": storage_default, "cdef": code_default}
    comp_cls = type("TracedComputation", (CancunComputation,),
                    {"opcodes": _traced_opcodes(CancunComputation.opcodes, trace,
                                                time.thread_time() + time_limit_s)})
    ctx = ExecutionContext(BLOCK["coinbase"], BLOCK["timestamp"], BLOCK["number"], 0,
                           BLOCK["prev_randao"].to_bytes(32, "big"), BLOCK["gas_limit"], PREV_HASHES, BLOCK["chain_id"],
                           base_fee_per_gas=BLOCK["base_fee"], excess_blob_gas=0)
    state = CancunState(AtomicDB(), ctx, BLANK_ROOT_HASH)
    state.set_code(CONTRACT, code)
    state.set_balance(CONTRACT, BALANCE)
    state.set_balance(caller, BALANCE)
    for a in responders:
        state.set_code(a, RESPONDER_CODE)
    for slot, v in storage.items():
        state.set_storage(CONTRACT, slot, v)
    msg = Message(gas=gas, to=CONTRACT, sender=caller, value=value, data=data, code=code)
    try:
        comp = comp_cls.apply_message(state, msg, BaseTransactionContext(gas_price=BLOCK["base_fee"], origin=caller))
    except Deadline:
        return Outcome(False, b"", "Timeout", timeout=True, reads=trace["reads"], accesses=trace["acc"],
                       probed=trace["probed"])
    writes = {}
    for slot in trace["written"]:
        v = state.get_storage(CONTRACT, slot)
        if v != storage.get(slot, trace["seeded"].get(slot, 0)):
            writes[slot] = v
    out = Outcome(success=not comp.is_error, output=bytes(comp.output), reads=trace["reads"], writes=writes,
                  accesses=trace["acc"], preimages=trace["pre"], balance=state.get_balance(CONTRACT),
                  probed=trace["probed"])
    if comp.is_error:
        out.error = type(comp.error).__name__
        out.output = bytes(getattr(comp.error, "args", [b""])[0] or b"") if out.error == "Revert" else b""
        out.writes = {}
    else:
        out.logs = [(tuple(topics), bytes(d)) for _, topics, d in comp.get_log_entries()]
        out.calls = _calls(comp)
    return out


def _calls(comp) -> list[tuple[str, bytes, int, bytes]]:
    out = []
    for ch in comp.children:
        m = ch.msg
        kind = "staticcall" if m.is_static else "delegatecall" if not m.should_transfer_value else "call"
        out.append((kind, bytes(m.code_address or m.to), int(m.value), bytes(m.data)))
    return out
