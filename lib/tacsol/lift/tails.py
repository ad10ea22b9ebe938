"""Level 3: a revert tail shared by several error builders, copied into each of them.

solc (0.8 with the optimizer, and older versions alike) builds each `Error(string)`, `Panic(uint256)` or custom
error at the free pointer in its own block, then jumps to one shared tail passing the data's end:

    b2:                                          b1(v1):
      v3 = mload(64)                               v2 = mload(64)
      mstore(v3, 0x461bcd << 229)                  revert(v2, v1 - v2)
      ...
      goto b1(132 + v3)

The memory model sees a message only along one straight line of code (memory.memory_lines), and the tail has
several predecessors, so each builder printed seven lines of hex words. Copying the tail into the builder (its
parameters replaced by the values the jump passes) puts the revert on the builder's line, where it reads
`revert("ERC20: transfer to the zero address")`, and a branch into it folds into `require(c, "...")`. Exact: the
tail has no effect but the revert, and every value it reads is defined on every path into the builder (what it
reads besides its parameters dominates the tail, so the builder too)."""
from __future__ import annotations

from .inline import is_pure
from .ir import Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, definitions, live_preds, prune
from .values import Values

MAX_TAIL = 6          # statements in a tail worth copying (solc's is 3: mload, sub, revert)
MAX_BACK = 16         # instances walked back from a builder to find its selector word
_SELECTOR_BITS = 224  # an error's data starts with a 4-byte selector: stored as a word, its low 224 bits are zero


def copy_revert_tails(fn: FunctionIR, values: Values) -> None:
    """Copy each small revert tail with several predecessors into the predecessors that jump to it after storing
    an error selector word (see the module docstring)."""
    consts = None
    for r in fn.ids:
        if r in fn.removed or r in fn.single or r in fn.entries or not _revert_tail(fn, r):
            continue
        consts = consts or Constants(definitions(fn))
        for m in live_preds(fn, r):
            if m != r and fn.graph.edges[m].plain_jump == r and _stores_selector(fn, consts, m):
                _copy_into(fn, values, r, m)
    if consts is not None:
        values.forget()
        prune(fn)


def _revert_tail(fn: FunctionIR, r: int) -> bool:
    """r halts by REVERT after nothing but pure statements and memory reads."""
    body = fn.body[r]
    if fn.graph.edges[r].kind != "halt" or fn.syms[r].term.kind != "halt" or not body or len(body) > MAX_TAIL:
        return False
    return body[-1].op == "REVERT" and all(is_pure(s) or s.op == "MLOAD" for s in body[:-1])


def _stores_selector(fn: FunctionIR, consts: Constants, m: int) -> bool:
    """m, or an instance it follows straight on from, stores a word whose top 4 bytes are nonzero and the rest zero."""
    for _ in range(MAX_BACK):
        for s in fn.body[m]:
            if s.op == "MSTORE":
                v = consts(s.args[1])
                if v and v >> _SELECTOR_BITS and not v & ((1 << _SELECTOR_BITS) - 1):
                    return True
        if m not in fn.single:
            return False
        m = fn.preds[m][0]
    return False


def _copy_into(fn: FunctionIR, values: Values, r: int, m: int) -> None:
    """m runs r's statements itself (r's temps renumbered past m's, its parameters read from m's exit) and halts.
    The revert also stands for m's jump."""
    body, sb = fn.body[m], fn.syms[m]
    shift = 1 + max((s.dest + s.ndest - 1 for s in (*body, *sb.stmts) if s.dest is not None), default=-1)

    def moved(o: Operand) -> Operand:
        if o[0] == "t" and o[1] == r:
            return ("t", m, o[2] + shift)
        if o[0] == "p" and o[1] == r:
            return values.resolve(m, sb.exit(o[2]))
        return o

    copies = [Stmt(None if s.dest is None else s.dest + shift, s.op, [moved(a) for a in s.args], s.ndest, s.pcs)
              for s in fn.body[r]]
    if sb.last_pc is not None:
        copies[-1].pcs = merged_pcs(copies[-1].pcs, (sb.last_pc,))
    body.extend(copies)
    if len(fn.live) > m:
        fn.live[m] = fn.live[m] + [True] * len(copies)
    fn.graph.edges[m] = Edges("halt", [])
    fn.halts.add(m)
    fn.absorbed.add(r)   # its opcodes still count (emit)
