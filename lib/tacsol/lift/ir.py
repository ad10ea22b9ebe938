"""The lifter's intermediate representation, from one basic block's stack translation to one function's
statements ready to print.

Operands are small tagged tuples (hashable and cheap, as millions are made per corpus build):
  ("c", value)      a constant                     ("e", name)   a transaction/block constant (callvalue, ...)
  ("t", i)          temp i defined in the block    ("p", j)      the j-th stack slot (0 = top) at block entry
Once a function is resolved (values.Values), temps and slots name their block instance:
  ("t", n, i)       temp i of instance n           ("p", n, j)   parameter j of instance n
Level 2 (compact.py) adds ("a", k), the k-th argument (of the call's calldata, or of an internal function), ("s",
text), a string, and ("f", k), internal function fk.

Provenance (docs/tac-format.md, Provenance): every statement carries the bytecode offsets (pcs) of the instructions
it stands for, a sorted tuple of ints. A block's translation makes one 1-tuple per statement, shared by every
instance's copy of it; a level-2 pass that folds statements into one makes the union (`merged_pcs`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

Operand = tuple

# level 3's checked arithmetic (checked.py): `checked(a + b)` panics where solc's guard did
CHECKED_OPS = {"checked_add": "ADD", "checked_sub": "SUB", "checked_mul": "MUL", "checked_div": "DIV",
               "checked_mod": "MOD"}
# level 3's checked external calls (extcall.py): `checked call(...)`, the call with its code, success and size checks
CHECKED_CALLS = {"checked_call": "CALL", "checked_staticcall": "STATICCALL", "checked_delegatecall": "DELEGATECALL",
                 "checked_call_abi": "call_abi", "checked_staticcall_abi": "staticcall_abi",
                 "checked_delegatecall_abi": "delegatecall_abi"}
# level 3's string written to storage (stringstore.py), as solc 0.4-0.6 (legacy), 0.7, 0.8.0-0.8.12 (checked) and
# 0.8.13+ (masked) write it, from memory or (_calldata) from a calldata argument
STRING_STORES = tuple(f"storagestring_store{form}{source}" for form in ("_legacy", "", "_checked", "_masked")
                      for source in ("", "_calldata"))


@dataclass(slots=True)
class Stmt:
    """One TAC line: `dest = op(args)` when dest is a temp index, else an effect."""
    dest: int | None
    op: str                # mnemonic (SSTORE, LOG2), invalid_0xNN for an undefined opcode byte, or a level-2
                           # construct in lowercase (uint160, mapping, revert_msg, icall, ...: emit._level2)
    args: list[Operand]
    ndest: int = 1         # temps dest, dest + 1, ... it defines (an internal call's results)
    pcs: tuple[int, ...] = ()   # offsets of the instructions it stands for, sorted (provenance)

    def absorb(self, *others: "Stmt") -> None:
        """This statement now also stands for `others` (a level-2 pass folded them into it)."""
        self.pcs = merged_pcs(self.pcs, *(o.pcs for o in others))


def merged_pcs(*groups) -> tuple[int, ...]:
    """The sorted union of several groups of pcs."""
    out: set[int] = set()
    for g in groups:
        out.update(g)
    return tuple(sorted(out))


@dataclass(slots=True, frozen=True)
class Term:
    """How a basic block ends: "fall" (into the next block), "jump", "jumpi" or "halt"."""
    kind: str
    target: Operand | None = None   # jump destination
    cond: Operand | None = None     # jumpi condition


@dataclass(slots=True)
class BlockSym:
    """A basic block translated from stack code to statements over its entry slots."""
    stmts: list[Stmt]
    exit_top: list[Operand]   # what the block leaves on top of the stack at exit, [0] = top
    consumed: int             # entry slots the block popped
    term: Term
    reads: set[int]           # entry slots read by a statement or a jumpi condition
    counts: dict[str, int]    # opcode mnemonics, without PUSH/DUP/SWAP/POP/JUMPDEST
    undefined: int | None     # an undefined opcode byte that ends the block (executes as INVALID)
    last_pc: int | None = None   # the last instruction it runs: its JUMP/JUMPI, halting op, or the one before a
                                 # fall into the next block (None: no instruction)

    def exit(self, j: int) -> Operand:
        """Stack slot j at exit: one of the block's own values, or an entry slot it left in place."""
        n = len(self.exit_top)
        return self.exit_top[j] if j < n else ("p", j - n + self.consumed)

    @property
    def target_read(self) -> int | None:
        """The entry slot a jump takes its destination from (a return address), if any."""
        t = self.term.target
        return t[1] if t is not None and t[0] == "p" else None


@dataclass(slots=True)
class Edges:
    """How a block instance ends: "halt", "jump" (several trues: an unresolved dynamic jump), "jumpi", or "ret"
    (level 2: an internal function returns to its caller)."""
    kind: str
    trues: list[int]
    false: int | None = None

    @property
    def succ(self) -> list[int]:
        return self.trues + ([self.false] if self.false is not None else [])

    @property
    def plain_jump(self) -> int | None:
        """The one successor of a plain (resolved, unconditional) jump."""
        return self.trues[0] if self.kind == "jump" and len(self.trues) == 1 else None


@dataclass
class Graph:
    """Block instances of one function (instances.explore): a block reached with another stack of return
    addresses is another instance; None as the stack marks a context-free instance. Level 2 adds call instances
    (a negative block id: one statement calling an internal function, instances.call_block) and, for an internal
    function's own unit, the stack heights its returns leave (one value: its number of results)."""
    nodes: list[tuple[int, tuple | None]]
    edges: list[Edges]
    partial: bool
    calls: dict[int, BlockSym] = field(default_factory=dict)   # call instance → its one-statement block
    returns: set[int] = field(default_factory=set)
    clean: bool = True      # an internal function's unit: no stack read below its frame, its return address kept


@dataclass
class FunctionIR:
    """One function's instances with the facts the passes add, in pass order (render.render)."""
    graph: Graph
    syms: list[BlockSym]            # per instance: its block's translation
    entries: list[int]              # instances the function starts at
    preds: list[list[int]]
    single: set[int]                # instances with exactly one other predecessor: their slots are its exit values
    params: list[set[int]] = field(default_factory=list)      # entry slots each instance takes (values.infer_params)
    body: list[list[Stmt]] = field(default_factory=list)      # statements over resolved operands
    live: list[list[bool]] = field(default_factory=list)      # per statement: kept (simplify.eliminate_dead)
    decided: set[int] = field(default_factory=set)            # jumpi instances whose branch level 2 settled
    conds: dict[int, Operand] = field(default_factory=dict)   # jumpi instances whose condition level 2 rewrote
    inlined: dict[Operand, Stmt] = field(default_factory=dict)  # values printed where they are read (level 2)
    removed: set[int] = field(default_factory=set)            # instances no longer reachable (level 2)
    halts: set[int] = field(default_factory=set)              # instances a level-2 construct made end the call
    # provenance of what level 2 folds into lines that are no statement: the header (argument loads, call checks)
    # and an instance's jump line (a negation or condition it tests through)
    header_pcs: set[int] = field(default_factory=set)
    jump_pcs: dict[int, tuple[int, ...]] = field(default_factory=dict)
    absorbed: set[int] = field(default_factory=set)   # failing instances a level-3 fold printed into a statement
    fits: dict[int, str] = field(default_factory=dict)   # level 3: argument index -> the cast of its declared type,
                                                         # which the decoder validated (the header's precondition)

    @property
    def ids(self) -> range:
        return range(len(self.graph.nodes))

    def block_of(self, n: int) -> int:
        return self.graph.nodes[n][0]

    def next_temp(self, n: int) -> int:
        """The first temp index instance n defines nothing at (a pass adding statements to n numbers from it)."""
        return 1 + max((s.dest + s.ndest - 1 for s in (*self.body[n], *self.syms[n].stmts) if s.dest is not None),
                       default=-1)

    def ends_call(self, n: int) -> bool:
        """Instance n ends the call: its block halts, or a level-2 construct made it halt (`halts`)."""
        return self.graph.edges[n].kind == "halt" and (self.syms[n].term.kind == "halt" or n in self.halts)
