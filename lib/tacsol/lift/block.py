"""Stack → SSA for one basic block: a symbolic stack turns PUSH/DUP/SWAP/POP into operand renaming and every
other opcode into a statement over named temporaries and the block's entry slots (Yellow-Paper operand order:
args[0] was the top of the stack)."""
from __future__ import annotations

from ..evm import OPCODES, Instr, Op
from .ir import BlockSym, Operand, Stmt, Term

# Transaction/block constants: folded inline as operands, never printed as lines.
FOLD_ENV = {"ADDRESS", "ORIGIN", "CALLER", "CALLVALUE", "CALLDATASIZE", "CODESIZE", "GASPRICE", "COINBASE",
            "TIMESTAMP", "NUMBER", "PREVRANDAO", "GASLIMIT", "CHAINID", "BASEFEE", "BLOBBASEFEE"}
HALT = {"STOP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT"}


class _Stack:
    """The symbolic stack of one block; values below what the block pushed are its entry slots ("p", j)."""
    __slots__ = ("items", "consumed", "reads")

    def __init__(self):
        self.items: list[Operand] = []   # items[-1] is the top
        self.consumed = 0
        self.reads: set[int] = set()

    def ensure(self, n: int) -> None:
        while len(self.items) < n:
            self.items.insert(0, ("p", self.consumed))
            self.consumed += 1

    def pop(self, n: int, read: bool = True) -> list[Operand]:
        self.ensure(n)
        args = [self.items.pop() for _ in range(n)]   # args[0] = former top
        if read:
            self.reads.update(a[1] for a in args if a[0] == "p")
        return args

    def shuffle(self, op: Op, ins: Instr) -> bool:
        """Apply a PUSH/DUP/SWAP/POP/JUMPDEST (they only move operands); False for any other opcode. (By opcode
        range, not name prefix: it runs once per instruction of every block translated.)"""
        code = op.code
        if 0x5F <= code <= 0x7F:     # PUSH0 .. PUSH32
            self.items.append(("c", ins.arg))
        elif 0x80 <= code <= 0x8F:   # DUP1 .. DUP16
            self.ensure(op.n_in)
            self.items.append(self.items[-op.n_in])
        elif 0x90 <= code <= 0x9F:   # SWAP1 .. SWAP16
            self.ensure(op.n_in)
            self.items[-1], self.items[-op.n_in] = self.items[-op.n_in], self.items[-1]
        elif code == 0x50:           # POP
            self.ensure(1)
            self.items.pop()
        elif code != 0x5B:           # JUMPDEST
            return False
        return True


def _jump(stack: _Stack, name: str) -> Term:
    """A jump target is a read only when it stays unresolved (render counts it then)."""
    if name == "JUMP":
        (t,) = stack.pop(1, read=False)
        return Term("jump", t)
    t, c = stack.pop(2, read=False)
    if c[0] == "p":
        stack.reads.add(c[1])
    return Term("jumpi", t, c)


def sym_block(instrs: list[Instr]) -> BlockSym:
    stack = _Stack()
    stmts: list[Stmt] = []
    counts: dict[str, int] = {}
    ntemps = 0
    undefined = None
    term = Term("fall")
    for ins in instrs:
        op = OPCODES.get(ins.op)
        if op is None:
            undefined = ins.op
            stmts.append(Stmt(None, f"invalid_0x{ins.op:02x}", [], 1, (ins.pc,)))
            term = Term("halt")
            break
        if stack.shuffle(op, ins):
            continue
        name = op.name
        counts[name] = counts.get(name, 0) + 1
        if name == "PC":
            stack.items.append(("c", ins.pc))
        elif name in FOLD_ENV:
            stack.items.append(("e", name.lower()))
        elif name in ("JUMP", "JUMPI"):
            term = _jump(stack, name)
            break
        else:
            args = stack.pop(op.n_in)
            if op.n_out:
                stmts.append(Stmt(ntemps, name, args, 1, (ins.pc,)))
                stack.items.append(("t", ntemps))
                ntemps += 1
            else:
                stmts.append(Stmt(None, name, args, 1, (ins.pc,)))
            if name in HALT:
                term = Term("halt")
                break
    last_pc = ins.pc if instrs else None   # the loop ends on the block's last instruction or on its jump/halt
    return BlockSym(stmts, stack.items[::-1], stack.consumed, term, stack.reads, counts, undefined, last_pc)
