"""One call of runtime bytecode in py-evm, from a given storage, with everything observable recorded.

The behaviour harness (tacsol.evaluate.behaviour) runs the original and the recompiled runtime through `execute`
from the same state and compares the `Outcome`s. Tracing wraps four opcodes of the Cancun computation:
SLOAD (slots read, so the harness can seed them), SSTORE (slots written), SHA3 (mapping/array slot preimages,
so a slot can be traced back to its declared base slot) and JUMP/JUMPI (a wall-clock deadline: gas bounds the
work, the deadline bounds py-evm's slowness on cheap loops). With `explore=True` a run also records what the
harness's state search (trace.search_success) steers by: the operands of every comparison, the value each
slot held when first read, and the branches taken.

Speed (the harness runs ~60 calls per function): by default the frequent opcodes run fused (fused_opcodes: gas,
stack checks and, with a trace, the recording inline), through a leaner interpreter loop (_apply_computation), and
CONTRACT's SLOAD answers from a per-run cache that any reverted frame clears. `fused=False` runs py-evm's own
table and loop, the oracle that tests/test_behaviour_execution.py compares the fast path with."""
from __future__ import annotations

import hashlib
import os
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
# where check 5's stubs find the original runtime (evaluate.stubrun): a candidate's call of another public function of
# the original is a DELEGATECALL here, which runs the original's code on the stub's own storage, as an internal call
# of that function would run in the original; such a frame is not itself an external call (_calls lists its calls)
ORIGINAL = bytes.fromhex("0a1b1a" + "00" * 17)
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


_VALID_JUMPDESTS: dict[bytes, frozenset[int]] = {}


def valid_jumpdests(code: bytes) -> frozenset[int]:
    """The offsets of JUMPDEST instructions in `code` (not push data): where a JUMP may land. py-evm finds this
    anew for every call (its CodeStream is per call); a runtime's answer is computed once here."""
    got = _VALID_JUMPDESTS.get(code)
    if got is None:
        out, i, n = [], 0, len(code)
        while i < n:
            op = code[i]
            if op == 0x5B:
                out.append(i)
            i += op - 0x5E if 0x60 <= op <= 0x7F else 1   # PUSHn: skip its n data bytes
        if len(_VALID_JUMPDESTS) > 256:
            _VALID_JUMPDESTS.clear()
        got = _VALID_JUMPDESTS[code] = frozenset(out)
    return got


def fused_opcodes(base: dict, trace: dict | None = None, explore: bool = False) -> dict:
    """`base` (py-evm's opcode table) with its most frequent opcodes (pushes, dups, swaps, pops, jumps, one-word
    memory and calldata loads and stores, the one-word arithmetic, bitwise and comparison ops: 94% of the
    instructions the harness executes) replaced by
    single functions with the same gas, result and exception: py-evm runs each through five to eight Python calls
    (the opcode object, two gas meters, the logic, the stack's typed push/pop and validators), which is most of
    the behaviour harness's time. Stack items stay what py-evm keeps (int or bytes). Checked against py-evm's
    own table on the corpus's functions in tests/test_behaviour_execution.py.
    With a `trace` (the run's record, as execute() keeps it), the jumps and, when `explore`, the comparisons and
    branches record into it themselves, as _traced_opcodes's hooks do for py-evm's table (same order, same
    values), without a wrapper call around the hottest opcodes; such ops carry `traced = True`."""
    from eth.exceptions import (FullStack, InsufficientStack, InvalidInstruction, InvalidJumpDestination,
                                OutOfGas)
    from eth.vm.computation import memory_gas_cost

    M = (1 << 256) - 1
    S = 1 << 255
    table = dict(base)

    def as_int(x):
        return x if x.__class__ is int else int.from_bytes(x, "big")

    def named(fn, name: str, gas: int):
        fn.mnemonic, fn.gas_cost = name, gas
        return fn

    def traced(fn):   # an op that records into `trace` itself (when there is one): _traced_opcodes leaves it alone
        fn.traced = trace is not None
        return fn

    # Every op below charges its gas, then makes py-evm's stack checks (room for one more item when it pushes
    # without popping, enough items to pop), inline: these few lines run for most instructions the harness executes.
    def out_of_gas(meter, gas: int, name: str) -> OutOfGas:
        return OutOfGas(f"Out of gas: Needed {gas} - Remaining {meter.gas_remaining} - Reason: {name}")

    def short(values: list, need: int) -> InsufficientStack:
        return InsufficientStack(f"Wanted {need} stack items, only had {len(values)}")

    def push(n: int, gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if len(values) > 1023:
                raise FullStack("Stack limit reached")
            code = c.code
            pc = code.program_counter
            raw = code._raw_code_bytes[pc:pc + n]
            code.program_counter = pc + n
            values.append(raw if len(raw) == n else raw.ljust(n, b"\x00"))
        return named(op, name, gas)

    def dup(n: int, gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if len(values) > 1023:
                raise FullStack("Stack limit reached")
            if len(values) < n:
                raise short(values, n)
            values.append(values[-n])
        return named(op, name, gas)

    def swap(n: int, gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if len(values) <= n:
                raise short(values, n + 1)
            values[-1], values[-n - 1] = values[-n - 1], values[-1]
        return named(op, name, gas)

    def pop(gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if not values:
                raise short(values, 1)
            values.pop()
        return named(op, name, gas)

    def nothing(gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
        return named(op, name, gas)

    def unary(f, gas: int, name: str, record: str | None = None):   # record: ISZERO's comparison (explore)
        def op(c):
            if record is not None:
                values, cmps = c._stack.values, trace["cmps"]
                if len(cmps) < 4096 and values:
                    cmps.append((record, as_int(values[-1]), 0))
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if not values:
                raise short(values, 1)
            a = values[-1]
            values[-1] = f(a if a.__class__ is int else int.from_bytes(a, "big"))
        return named(op, name, gas)

    def binary(f, gas: int, name: str, record: str | None = None, peephole: bool = False):   # f(top, second)
        # record: the comparison's name in the trace (explore); peephole: only when a PUSHn JUMPI follows (SUB)
        def op(c):
            if record is not None:
                values, cmps = c._stack.values, trace["cmps"]
                if len(cmps) < 4096 and len(values) >= 2 and (not peephole or jumpi_follows(c)):
                    cmps.append((record, as_int(values[-1]), as_int(values[-2])))
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if len(values) < 2:
                raise short(values, 2)
            a = values.pop()
            b = values[-1]
            values[-1] = f(a if a.__class__ is int else int.from_bytes(a, "big"),
                           b if b.__class__ is int else int.from_bytes(b, "big"))
        return named(op, name, gas)

    def land(computation, dest: int) -> None:
        code = computation.code
        code.program_counter = dest
        if dest not in valid_jumpdests(code._raw_code_bytes):
            if code.peek() != 0x5B:
                raise InvalidJumpDestination("Invalid Jump Destination")
            raise InvalidInstruction("Jump resulted in invalid instruction")

    def jumpi_follows(c) -> bool:   # solc's peephole turns `EQ ISZERO PUSH tag JUMPI` into `SUB PUSH tag JUMPI`
        pc = c.code.program_counter
        code = c.code._raw_code_bytes
        nxt = code[pc] if pc < len(code) else 0
        at = pc + 1 + (nxt - 0x5F) if 0x60 <= nxt <= 0x7F else pc
        return at < len(code) and code[at] == 0x57

    def count_jump() -> None:   # the run's jump counter, and its clock every 512 jumps
        n = trace["jumps"] = trace["jumps"] + 1
        if not n & 511 and time.thread_time() > trace["deadline"]:
            raise Deadline()

    def jump(gas: int, name: str):
        def op(c):
            if trace is not None:
                count_jump()
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if not values:
                raise short(values, 1)
            land(c, as_int(values.pop()))
        return named(op, name, gas)

    def jumpi(gas: int, name: str):
        def op(c):
            if trace is not None:
                count_jump()
                if explore:
                    values, branches = c._stack.values, trace["branches"]
                    if len(branches) < 4096 and len(values) >= 2:
                        pc = c.code.program_counter
                        branches.add((pc, bool(as_int(values[-2]))))
                        cj = trace["cjump"]
                        cj += [pc] * (len(trace["cmps"]) - len(cj))   # the comparisons that fed it
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if len(values) < 2:
                raise short(values, 2)
            dest, cond = values.pop(), values.pop()
            if cond.__class__ is int and cond or cond.__class__ is not int and any(cond):
                land(c, as_int(dest))
        return named(op, name, gas)

    def grown(computation, start: int) -> bytearray:   # memory holding [start, start + 32), grown (and paid)
        memory = computation._memory
        before = len(memory._bytes)   # always a multiple of 32
        if start + 32 > before:   # as py-evm's extend_memory (its gas, then Memory.extend); else no growth, no gas
            after = (start + 63) & ~31
            fee = memory_gas_cost(after) - memory_gas_cost(before)
            meter = computation._gas_meter
            if fee > meter.gas_remaining:
                raise OutOfGas(f"Out of gas: Needed {fee} - Remaining {meter.gas_remaining} - Reason: Expanding "
                               f"memory {before} -> {after}")
            meter.gas_remaining -= fee
            memory.extend(start, 32)
        return memory._bytes

    def mload(gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if not values:
                raise short(values, 1)
            start = as_int(values[-1])
            values[-1] = bytes(grown(c, start)[start:start + 32])
        return named(op, name, gas)

    def mstore(gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if len(values) < 2:
                raise short(values, 2)
            start, v = as_int(values.pop()), values.pop()
            grown(c, start)[start:start + 32] = (v.to_bytes(32, "big") if v.__class__ is int
                                                 else v.rjust(32, b"\x00")[-32:])
        return named(op, name, gas)

    def calldataload(gas: int, name: str):
        def op(c):
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise out_of_gas(meter, gas, name)
            meter.gas_remaining -= gas
            values = c._stack.values
            if not values:
                raise short(values, 1)
            start = as_int(values[-1])
            values[-1] = c.msg.data_as_bytes[start:start + 32].ljust(32, b"\x00").lstrip(b"\x00")
        return named(op, name, gas)

    def signed(x: int) -> int:
        return x - (1 << 256) if x & S else x

    arithmetic = {
        "ADD": lambda a, b: (a + b) & M, "SUB": lambda a, b: (a - b) & M, "MUL": lambda a, b: (a * b) & M,
        "DIV": lambda a, b: (a // b) & M if b else 0,
        "AND": lambda a, b: a & b, "OR": lambda a, b: a | b, "XOR": lambda a, b: a ^ b,
        "EQ": lambda a, b: int(a == b), "LT": lambda a, b: int(a < b), "GT": lambda a, b: int(a > b),
        "SLT": lambda a, b: int(signed(a) < signed(b)), "SGT": lambda a, b: int(signed(a) > signed(b)),
        "SHL": lambda s, v: 0 if s >= 256 else (v << s) & M, "SHR": lambda s, v: 0 if s >= 256 else v >> s,
    }
    recorded = {"EQ", "LT", "GT", "SLT", "SGT"} if explore else set()
    for code, old in base.items():
        name, gas = getattr(old, "mnemonic", None), getattr(old, "gas_cost", None)
        if name is None or gas is None:
            continue
        if name.startswith("PUSH") and name != "PUSH0":
            table[code] = push(int(name[4:]), gas, name)
        elif name.startswith("DUP"):
            table[code] = dup(int(name[3:]), gas, name)
        elif name.startswith("SWAP"):
            table[code] = swap(int(name[4:]), gas, name)
        elif name == "POP":
            table[code] = pop(gas, name)
        elif name == "JUMPDEST":
            table[code] = nothing(gas, name)
        elif name == "JUMP":
            table[code] = traced(jump(gas, name))
        elif name == "JUMPI":
            table[code] = traced(jumpi(gas, name))
        elif name == "ISZERO":
            table[code] = traced(unary(lambda a: int(a == 0), gas, name, "ISZERO" if explore else None))
        elif name == "NOT":
            table[code] = unary(lambda a: M - a, gas, name)
        elif name == "MLOAD":
            table[code] = mload(gas, name)
        elif name == "MSTORE":
            table[code] = mstore(gas, name)
        elif name == "CALLDATALOAD":
            table[code] = calldataload(gas, name)
        elif name in arithmetic:
            if name in recorded:
                table[code] = traced(binary(arithmetic[name], gas, name, name))
            elif name == "SUB" and explore:
                table[code] = traced(binary(arithmetic[name], gas, name, "EQ", peephole=True))
            else:
                table[code] = binary(arithmetic[name], gas, name)
    return table


def _traced_opcodes(base: dict, trace: dict, explore: bool = False, cached_sload: bool = False):
    """`base` with hooks that record the run into `trace` (reads and writes of CONTRACT's storage, hashed
    preimages, probed addresses, jumps; when `explore`, comparisons and branches) around the opcodes that do not
    record themselves (fused_opcodes's with a trace do). `cached_sload`: CONTRACT's SLOAD answers from the run's
    storage cache (execute's "sc" and "sw": values and slots known warm since the last revert) before asking
    py-evm's state, whose journaled trie lookups cost more than the rest of the opcode."""
    import eth.vm.forks.cancun.computation  # noqa: F401
    from eth.exceptions import OutOfGas

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
            trace["sc"][slot] = v

    def peek(c, n: int):   # the top n stack words as ints (top first), or None when the stack is shorter (the op
        values = c._stack.values   # itself then raises py-evm's InsufficientStack)
        if len(values) < n:
            return None
        return [v if v.__class__ is int else int.from_bytes(v, "big") for v in values[:-n - 1:-1]]

    def read(c, slot) -> bool:   # CONTRACT's slot about to be read: seeded, and noted if first; True if first
        seed(c, slot)
        if slot in trace["read_set"]:
            return False
        trace["read_set"].add(slot)
        trace["reads"].append(slot)
        trace["acc"].append(("r", slot))
        return True

    def sload(op, c):
        got = peek(c, 1)
        if got is None:
            return op(c)
        slot = got[0]
        first = c.msg.storage_address == CONTRACT and read(c, slot)
        op(c)
        if first and explore:
            trace["rvals"][slot] = peek(c, 1)[0]

    def sstore(op, c):
        got = peek(c, 2)
        if got is None:
            return op(c)
        slot = got[0]
        if c.msg.storage_address == CONTRACT:
            seed(c, slot)
            if slot not in trace["written"]:
                trace["written"].add(slot)
                trace["acc"].append(("w", slot))
            op(c)
            trace["sc"][slot] = got[1]   # written (the op returned): the value, and the slot is warm
            trace["sw"].add(slot)
            return
        op(c)

    def cached(op):   # SLOAD as py-evm's sload_eip2929 (pop, warm or cold gas, push), CONTRACT's from the cache
        def run(c):
            values = c._stack.values
            if c.msg.storage_address != CONTRACT or not values:
                return sload(op, c)
            slot = values[-1]
            slot = slot if slot.__class__ is int else int.from_bytes(slot, "big")
            first = read(c, slot)
            values.pop()
            warm = trace["sw"]
            if slot in warm:
                gas = 100
            else:
                state = c.state
                gas = 100 if state.is_storage_warm(CONTRACT, slot) else 2100
                if gas == 2100:
                    state.mark_storage_warm(CONTRACT, slot)
                warm.add(slot)
            meter = c._gas_meter
            if gas > meter.gas_remaining:
                raise OutOfGas(f"Out of gas: Needed {gas} - Remaining {meter.gas_remaining} - Reason: SLOAD")
            meter.gas_remaining -= gas
            v = trace["sc"].get(slot)
            if v is None:
                v = trace["sc"][slot] = c.state.get_storage(CONTRACT, slot)
            values.append(v)
            if first and explore:
                trace["rvals"][slot] = v
        run.mnemonic, run.gas_cost = op.mnemonic, op.gas_cost
        return run

    def sha3(op, c):
        got = peek(c, 2)
        op(c)
        if got is None:
            return
        start, size = got
        if size in (32, 64):
            h = peek(c, 1)[0]
            mem = c.memory_read_bytes(start, size)
            if size == 64:   # mapping: keccak(key . base)
                trace["pre"][h] = ("mapping", int.from_bytes(mem[32:], "big"), int.from_bytes(mem[:32], "big"))
            else:            # dynamic array / bytes data: keccak(base)
                trace["pre"][h] = ("array", int.from_bytes(mem, "big"), 0)

    def probe(n_before):   # the address operand sits n_before words below the top of the stack
        def hook(op, c):
            got = peek(c, n_before + 1)
            if got is None:
                return op(c)
            a = (got[-1] & ((1 << 160) - 1)).to_bytes(20, "big")
            if a not in trace["probed_set"]:
                trace["probed_set"].add(a)
                trace["probed"].append(a)
                code = trace["cdef"](a) if trace["cdef"] else None
                if code and not c.state.get_code(a):
                    c.state.set_code(a, code)
            op(c)
        return hook

    def jump(op, c):
        trace["jumps"] += 1
        if trace["jumps"] % 512 == 0 and time.thread_time() > trace["deadline"]:
            raise Deadline()
        op(c)

    def jumpi(op, c):
        trace["jumps"] += 1
        if trace["jumps"] % 512 == 0 and time.thread_time() > trace["deadline"]:
            raise Deadline()
        if explore and len(trace["branches"]) < 4096:
            got = peek(c, 2)
            if got is not None:
                pc = c.code.program_counter
                trace["branches"].add((pc, bool(got[1])))
                trace["cjump"] += [pc] * (len(trace["cmps"]) - len(trace["cjump"]))   # the comparisons that fed it
        op(c)

    def compare2(op, c):   # a op b with a on top of the stack
        if len(trace["cmps"]) < 4096:
            got = peek(c, 2)
            if got is not None:
                trace["cmps"].append((op.mnemonic, got[0], got[1]))
        op(c)

    def sub(op, c):   # solc's peephole turns `EQ ISZERO PUSH tag JUMPI` into `SUB PUSH tag JUMPI`: an equality too
        if len(trace["cmps"]) < 4096:
            pc = c.code.program_counter
            code = c.code._raw_code_bytes
            nxt = code[pc] if pc < len(code) else 0
            at = pc + 1 + (nxt - 0x5F) if 0x60 <= nxt <= 0x7F else pc
            if at < len(code) and code[at] == 0x57:   # JUMPI
                got = peek(c, 2)
                if got is not None:
                    trace["cmps"].append(("EQ", got[0], got[1]))
        op(c)

    def iszero(op, c):
        if len(trace["cmps"]) < 4096:
            got = peek(c, 1)
            if got is not None:
                trace["cmps"].append(("ISZERO", got[0], 0))
        op(c)

    ops = dict(base)
    hooks = {"SLOAD": sload, "SSTORE": sstore, "SHA3": sha3, "JUMP": jump, "JUMPI": jumpi,
             "EXTCODESIZE": probe(0), "EXTCODEHASH": probe(0), "CALL": probe(1), "CALLCODE": probe(1),
             "DELEGATECALL": probe(1), "STATICCALL": probe(1)}
    if explore:
        hooks.update({k: compare2 for k in ("EQ", "LT", "GT", "SLT", "SGT")}, ISZERO=iszero, SUB=sub)
    for name, hook in hooks.items():
        code = BY_NAME[name].code
        if not getattr(base[code], "traced", False):
            ops[code] = Traced(base[code], hook)
    if cached_sload:
        code = BY_NAME["SLOAD"].code
        ops[code] = cached(base[code])
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
        revert = self.state.revert

        def forgetting_revert(snapshot):   # a frame (or the run) undone: what the SLOAD cache knew may be undone too
            if "sc" in self.trace:
                self.trace["sc"].clear()
                self.trace["sw"].clear()
            revert(snapshot)
        self.state.revert = forgetting_revert

    def computation(self, explore: bool, fused: bool = True):
        key = (explore, fused)
        if key not in self._classes:
            from eth.vm.forks.cancun.computation import CancunComputation

            base = (fused_opcodes(CancunComputation.opcodes, self.trace, explore) if fused
                    else CancunComputation.opcodes)
            body = {"opcodes": _traced_opcodes(base, self.trace, explore, cached_sload=fused)}
            if fused:
                body["apply_computation"] = classmethod(_apply_computation)
            self._classes[key] = type("TracedComputation", (CancunComputation,), body)
        return self._classes[key]


def _apply_computation(cls, state, message, transaction_context, parent_computation=None):
    """py-evm's BaseComputation.apply_computation with a leaner loop (the fused table's runs only): the opcode
    found by index in a 256-entry list, called positionally, one `try` around the whole loop for Halt, no
    per-opcode debug check, no CodeStream generator. The same opcodes run in the same order with the same
    program counter (code.program_counter stays the source of truth: the opcodes read and move it)."""
    from eth.exceptions import Halt
    from eth.vm.computation import NO_RESULT
    from eth.vm.logic.invalid import InvalidOpcode

    with cls(state, message, transaction_context) as computation:
        if computation.is_origin_computation:
            computation.contracts_created = []
            if message.is_create:
                cls.consume_initcode_gas_cost(computation)
        if parent_computation is not None:
            computation.contracts_created = parent_computation.contracts_created
        if message.is_create:
            computation.contracts_created.append(message.storage_address)
        precompile = computation.precompiles.get(message.code_address, NO_RESULT)
        if precompile is not NO_RESULT:
            if not message.is_delegation:
                precompile(computation)
            return computation
        table = cls.__dict__.get("_op_list")
        if table is None:
            ops = computation.opcodes
            table = [ops.get(i) or InvalidOpcode(i) for i in range(256)]
            cls._op_list = table
        code = computation.code
        raw = code._raw_code_bytes
        n = len(raw)
        try:
            while True:
                pc = code.program_counter
                code.program_counter = pc + 1
                table[raw[pc] if pc < n else 0](computation)   # past the end: STOP, as py-evm's CodeStream yields
        except Halt:
            pass
    return computation


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
            code_default: Callable[[bytes], bytes | None] | None = None, explore: bool = False,
            fused: bool | None = None) -> Outcome:
    """Run `code` at CONTRACT with `storage` preloaded, called by `caller` with `data` and `value`; the addresses
    in `responders` hold RESPONDER_CODE. A slot `storage` does not hold takes `storage_default(slot, preimages so
    far)` when first touched, and an address first called or asked for its code size takes `code_default(address)`,
    so a run sees one fixed (conceptually infinite) state whatever path it takes.
    `explore`: also record comparisons, first-read slot values and branches (Outcome.cmps, read_values, branches).
    `fused`: run the frequent opcodes through fused_opcodes (False: py-evm's own table only, the oracle of the
    lifter's differential tests and of the fused table's own test; None: fused unless the environment says
    TACSOL_OPCODES=py-evm, which reaches the harness's worker processes: tools/bench_behaviour.py --opcodes)."""
    if fused is None:
        fused = os.environ.get("TACSOL_OPCODES", "fused") != "py-evm"
    from eth.vm.forks.cancun.transaction_context import CancunTransactionContext
    from eth.vm.message import Message

    m = _machine(code, responders)
    trace = m.trace
    trace.clear()
    trace.update({"reads": [], "read_set": set(), "written": set(), "pre": {}, "jumps": 0, "acc": [], "probed": [],
                  "probed_set": set(), "storage": storage, "seeded": {}, "sdef": storage_default,
                  "cdef": code_default, "cmps": [], "rvals": {}, "branches": set(), "cjump": [],
                  "sc": dict(storage), "sw": set(),   # CONTRACT's storage values and warm slots, as far as known
                  "deadline": time.thread_time() + time_limit_s})
    state = m.state
    snap = state.snapshot()
    try:
        state.set_balance(caller, BALANCE)
        for slot, v in storage.items():
            state.set_storage(CONTRACT, slot, v)
        msg = Message(gas=gas, to=CONTRACT, sender=caller, value=value, data=data, code=code)
        try:
            comp = m.computation(explore, fused).apply_message(
                state, msg, CancunTransactionContext(gas_price=BLOCK["base_fee"], origin=caller))   # (the base
            # class raises NotImplementedError at BLOBHASH: a transaction with no blobs, blobhash(i) == 0)
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
    """The external calls a run made: its frame's, with those of a DELEGATECALL into ORIGINAL in its place."""
    out = []
    for ch in comp.children:
        m = ch.msg
        if m.code_address == ORIGINAL and m.to != ORIGINAL:   # a DELEGATECALL (py-evm: no value transfer, to = us)
            out += _calls(ch)
            continue
        kind = "staticcall" if m.is_static else "delegatecall" if not m.should_transfer_value else "call"
        out.append((kind, bytes(m.code_address or m.to), int(m.value), bytes(m.data)))
    return out
