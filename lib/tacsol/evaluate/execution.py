"""One call of runtime bytecode in py-evm, from a given storage, with everything observable recorded.

The behaviour harness (tacsol.evaluate.behaviour) runs the original and the recompiled runtime through `execute`
from the same state and compares the `Outcome`s. Tracing wraps four opcodes of the Cancun computation:
SLOAD (slots read, so the harness can seed them), SSTORE (slots written), SHA3 (mapping/array slot preimages,
so a slot can be traced back to its declared base slot) and JUMP/JUMPI (a wall-clock deadline: gas bounds the
work, the deadline bounds py-evm's slowness on cheap loops). With `explore=True` a run also records what the
harness's state search (behaviour.search_success) steers by: the operands of every comparison, the value each
slot held when first read, and the branches taken."""
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
    steps: int = 0                                 # jumps taken (how far the run got)
    # explore=True only: (op, a, b) of EQ/LT/GT/SLT/SGT (ISZERO as ("ISZERO", a, 0); a SUB that feeds a JUMPI as
    # ("EQ", a, b): solc's peephole form of `a == b` in a condition) in execution order, the
    # value of each slot at its first read, and the (pc, taken) of every JUMPI
    cmps: list[tuple[str, int, int]] = field(default_factory=list)
    read_values: dict[int, int] = field(default_factory=dict)
    branches: set[tuple[int, bool]] = field(default_factory=set)
    cmp_jumps: list[int] = field(default_factory=list)   # per comparison, the pc of the JUMPI after it (-1: none)


def _traced_opcodes(base: dict, trace: dict, explore: bool = False):
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
        first = False
        if c.msg.storage_address == CONTRACT:
            seed(c, slot)
            if slot not in trace["read_set"]:
                first = True
                trace["read_set"].add(slot)
                trace["reads"].append(slot)
                trace["acc"].append(("r", slot))
        c.stack_push_int(slot)
        op(computation=c)
        if first and explore:
            v = c.stack_pop1_int()
            trace["rvals"][slot] = v
            c.stack_push_int(v)

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
        if trace["jumps"] % 512 == 0 and time.thread_time() > trace["deadline"]:
            raise Deadline()
        op(computation=c)

    def jumpi(op, c):
        trace["jumps"] += 1
        if trace["jumps"] % 512 == 0 and time.thread_time() > trace["deadline"]:
            raise Deadline()
        if explore and len(trace["branches"]) < 4096:
            dest, cond = c.stack_pop1_int(), c.stack_pop1_int()
            pc = c.code.program_counter
            trace["branches"].add((pc, bool(cond)))
            trace["cjump"] += [pc] * (len(trace["cmps"]) - len(trace["cjump"]))   # the comparisons that fed it
            c.stack_push_int(cond)
            c.stack_push_int(dest)
        op(computation=c)

    def compare2(op, c):   # a op b with a on top of the stack
        a, b = c.stack_pop1_int(), c.stack_pop1_int()
        if len(trace["cmps"]) < 4096:
            trace["cmps"].append((op.mnemonic, a, b))
        c.stack_push_int(b)
        c.stack_push_int(a)
        op(computation=c)

    def sub(op, c):   # solc's peephole turns `EQ ISZERO PUSH tag JUMPI` into `SUB PUSH tag JUMPI`: an equality too
        pc = c.code.program_counter
        try:
            nxt = c.code[pc]
            at = pc + 1 + (nxt - 0x5F) if 0x60 <= nxt <= 0x7F else pc
            branch = c.code[at] == 0x57   # JUMPI
        except IndexError:
            branch = False
        if not branch or len(trace["cmps"]) >= 4096:
            op(computation=c)
            return
        a, b = c.stack_pop1_int(), c.stack_pop1_int()
        trace["cmps"].append(("EQ", a, b))
        c.stack_push_int(b)
        c.stack_push_int(a)
        op(computation=c)

    def iszero(op, c):
        a = c.stack_pop1_int()
        if len(trace["cmps"]) < 4096:
            trace["cmps"].append(("ISZERO", a, 0))
        c.stack_push_int(a)
        op(computation=c)

    ops = dict(base)
    hooks = {"SLOAD": sload, "SSTORE": sstore, "SHA3": sha3, "JUMP": jump, "JUMPI": jumpi,
             "EXTCODESIZE": probe(0), "EXTCODEHASH": probe(0), "CALL": probe(1), "CALLCODE": probe(1),
             "DELEGATECALL": probe(1), "STATICCALL": probe(1)}
    if explore:
        hooks.update({k: compare2 for k in ("EQ", "LT", "GT", "SLT", "SGT")}, ISZERO=iszero, SUB=sub)
    for name, hook in hooks.items():
        code = BY_NAME[name].code
        ops[code] = Traced(base[code], hook)
    return ops


class _Machine:
    """A py-evm state holding one runtime at CONTRACT, its balance and the responders' code, reused by every call
    of that runtime: each call runs inside a snapshot that is reverted afterwards (storage, code seeded on first
    use, balances, transient storage, warm accounts and slots), so calls do not see each other and the state,
    code hash and computation class are built once instead of per call."""

    def __init__(self, code: bytes, responders: tuple[bytes, ...]):
        from eth.constants import BLANK_ROOT_HASH
        from eth.db.atomic import AtomicDB
        from eth.vm.execution_context import ExecutionContext
        from eth.vm.forks.cancun.state import CancunState

        ctx = ExecutionContext(BLOCK["coinbase"], BLOCK["timestamp"], BLOCK["number"], 0,
                               BLOCK["prev_randao"].to_bytes(32, "big"), BLOCK["gas_limit"], PREV_HASHES,
                               BLOCK["chain_id"], base_fee_per_gas=BLOCK["base_fee"], excess_blob_gas=0)
        self.code = code
        self.state = CancunState(AtomicDB(), ctx, BLANK_ROOT_HASH)
        self.state.set_code(CONTRACT, code)
        self.state.set_balance(CONTRACT, BALANCE)
        for a in responders:
            self.state.set_code(a, RESPONDER_CODE)
        self.trace: dict = {}          # the current call's trace, read by the hooks
        self._classes: dict = {}

    def computation(self, explore: bool):
        if explore not in self._classes:
            from eth.vm.forks.cancun.computation import CancunComputation

            self._classes[explore] = type("TracedComputation", (CancunComputation,), {
                "opcodes": _traced_opcodes(CancunComputation.opcodes, self.trace, explore)})
        return self._classes[explore]


_MACHINES: dict[tuple[bytes, tuple[bytes, ...]], _Machine] = {}
_MAX_MACHINES = 32


def _machine(code: bytes, responders: tuple[bytes, ...]) -> _Machine:
    key = (code, tuple(responders))
    m = _MACHINES.pop(key, None) or _Machine(code, key[1])
    _MACHINES[key] = m                     # most recently used last
    while len(_MACHINES) > _MAX_MACHINES:
        del _MACHINES[next(iter(_MACHINES))]
    return m


def execute(code: bytes, data: bytes, storage: dict[int, int], *, caller: bytes, value: int = 0,
            gas: int = GAS, time_limit_s: float = 2.0, responders: tuple[bytes, ...] = (),
            storage_default: Callable[[int, dict], int] | None = None,
            code_default: Callable[[bytes], bytes | None] | None = None, explore: bool = False) -> Outcome:
    """Run `code` at CONTRACT with `storage` preloaded, called by `caller` with `data` and `value`; the addresses
    in `responders` hold RESPONDER_CODE. A slot `storage` does not hold takes `storage_default(slot, preimages so
    far)` when first touched, and an address first called or asked for its code size takes `code_default(address)`,
    so a run sees one fixed (conceptually infinite) state whatever path it takes.
    `explore`: also record comparisons, first-read slot values and branches (Outcome.cmps, read_values, branches)."""
    from eth.vm.message import Message
    from eth.vm.transaction_context import BaseTransactionContext

    m = _machine(code, responders)
    trace = m.trace
    trace.clear()
    trace.update({"reads": [], "read_set": set(), "written": set(), "pre": {}, "jumps": 0, "acc": [], "probed": [],
                  "probed_set": set(), "storage": storage, "seeded": {}, "sdef": storage_default,
                  "cdef": code_default, "cmps": [], "rvals": {}, "branches": set(), "cjump": [],
                  "deadline": time.thread_time() + time_limit_s})
    state = m.state
    snap = state.snapshot()
    try:
        state.set_balance(caller, BALANCE)
        for slot, v in storage.items():
            state.set_storage(CONTRACT, slot, v)
        msg = Message(gas=gas, to=CONTRACT, sender=caller, value=value, data=data, code=code)
        try:
            comp = m.computation(explore).apply_message(
                state, msg, BaseTransactionContext(gas_price=BLOCK["base_fee"], origin=caller))
        except Deadline:
            return Outcome(False, b"", "Timeout", timeout=True, reads=trace["reads"], accesses=trace["acc"],
                           probed=trace["probed"], cmps=trace["cmps"], read_values=trace["rvals"],
                           branches=trace["branches"], steps=trace["jumps"], cmp_jumps=_cmp_jumps(trace))
        writes = {}
        for slot in trace["written"]:
            v = state.get_storage(CONTRACT, slot)
            if v != storage.get(slot, trace["seeded"].get(slot, 0)):
                writes[slot] = v
        out = Outcome(success=not comp.is_error, output=bytes(comp.output), reads=trace["reads"], writes=writes,
                      accesses=trace["acc"], preimages=trace["pre"], balance=state.get_balance(CONTRACT),
                      probed=trace["probed"], cmps=trace["cmps"], read_values=trace["rvals"],
                      branches=trace["branches"], steps=trace["jumps"], cmp_jumps=_cmp_jumps(trace))
    finally:
        state.revert(snap)
    if comp.is_error:
        out.error = type(comp.error).__name__
        out.output = bytes(getattr(comp.error, "args", [b""])[0] or b"") if out.error == "Revert" else b""
        out.writes = {}
    else:
        out.logs = [(tuple(topics), bytes(d)) for _, topics, d in comp.get_log_entries()]
        out.calls = _calls(comp)
    return out


def _cmp_jumps(trace: dict) -> list[int]:
    return trace["cjump"] + [-1] * (len(trace["cmps"]) - len(trace["cjump"]))


def _calls(comp) -> list[tuple[str, bytes, int, bytes]]:
    out = []
    for ch in comp.children:
        m = ch.msg
        kind = "staticcall" if m.is_static else "delegatecall" if not m.should_transfer_value else "call"
        out.append((kind, bytes(m.code_address or m.to), int(m.value), bytes(m.data)))
    return out
