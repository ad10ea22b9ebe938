"""Creation (deployment) code → the runtime its constructor returns.

A constructor ends by CODECOPYing the runtime out of its own code into memory and RETURNing it (solc legacy and
via-IR, Vyper). The copy's offset and size are constants pushed shortly before the CODECOPY, so a short constant
stack simulation over each basic block finds them without running the constructor (which may need arguments, other
contracts or a particular sender). Bytes after the runtime are the appended constructor arguments (what a deployment
transaction's input carries)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..evm import OPCODES, TERMINATORS, disassemble

_DEPTH = 32  # a block starts with unknown values this deep; deeper reads are unknown too


@dataclass(frozen=True)
class CreationParts:
    """Byte ranges [start, end) of a creation input."""
    constructor: tuple[int, int]
    runtime: tuple[int, int]
    constructor_args: tuple[int, int]
    code_size: int

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def describe(self) -> str:
        (c0, c1), (r0, r1), (a0, a1) = self.constructor, self.runtime, self.constructor_args
        text = f"creation code: constructor [{c0:#x}, {c1:#x}), runtime [{r0:#x}, {r1:#x}) ({r1 - r0} bytes)"
        return text + (f", constructor arguments [{a0:#x}, {a1:#x}) ({a1 - a0} bytes)" if a1 > a0 else
                       ", no appended constructor arguments")


def _codecopies(raw: bytes) -> list[tuple[int, int, int]]:
    """(pc, offset, size) of every CODECOPY whose source offset and size are constants within its block."""
    found = []
    stack: list[int | None] = [None] * _DEPTH
    for ins in disassemble(raw):
        op = OPCODES.get(ins.op)
        if op is None or op.name == "JUMPDEST":
            stack = [None] * _DEPTH  # a new block (or data): nothing is known
            continue
        if op.name.startswith("PUSH"):
            stack.append(ins.arg if op.name != "PUSH0" else 0)
        elif op.name.startswith("DUP"):
            stack.append(stack[-op.n_in] if len(stack) >= op.n_in else None)
        elif op.name.startswith("SWAP"):
            n = op.n_in - 1
            if len(stack) > n:
                stack[-1], stack[-1 - n] = stack[-1 - n], stack[-1]
        else:
            args = [stack.pop() if stack else None for _ in range(op.n_in)]
            if op.name == "CODECOPY" and args[1] is not None and args[2]:
                found.append((ins.pc, args[1], args[2]))
            stack += [None] * op.n_out
            if op.name in TERMINATORS:
                stack = [None] * _DEPTH
        if len(stack) < _DEPTH:
            stack = [None] * (_DEPTH - len(stack)) + stack
    return found


def find_runtime(raw: bytes) -> CreationParts | None:
    """The embedded runtime of creation code: the largest constant CODECOPY region that lies after the copying
    instruction and inside the input. None when there is none (then the input is not creation code we can open)."""
    best = None
    for pc, offset, size in _codecopies(raw):
        end = offset + size
        if offset <= pc or end > len(raw) or size < 2:
            continue
        if best is None or size > best[1] - best[0]:
            best = (offset, end)
    if best is None:
        return None
    return CreationParts(constructor=(0, best[0]), runtime=best, constructor_args=(best[1], len(raw)),
                         code_size=len(raw))
