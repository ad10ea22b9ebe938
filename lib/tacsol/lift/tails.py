"""Level 3: a revert tail shared by several error builders, copied into each of them.

solc 0.8 with the optimizer builds each `Error(string)`, `Panic(uint256)` or custom
error at the free pointer in its own block, then jumps to one shared tail passing the data's end:

    b2:                                          b1(v1):
      v3 = mload(64)                               v2 = mload(64)
      mstore(v3, 0x461bcd << 229)                  revert(v2, v1 - v2)
      ...
      goto b1(132 + v3)

The memory model sees a message only along one straight line of code (memory.memory_lines), and the tail has
several predecessors, so each builder printed seven lines of hex words. A message required at two sites is
also built once, after each site's selector store, then jumps on to the revert. Copying the tail (at most
MAX_BLOCKS instances of memory stores, reads and pure statements, ending in REVERT) into the builder (its
parameters replaced by the values the jump passes) puts the revert on the builder's line, where it reads
`revert("ERC20: transfer to the zero address")`, and a branch into it folds into `require(c, "...")`. Exact: the
tail only writes memory and reverts, and every value it reads is defined on every path into the builder (what it
reads besides its parameters dominates the tail, so the builder too)."""
from __future__ import annotations

from .inline import is_pure
from .ir import Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, definitions, live_preds, prune
from .values import Values

MAX_TAIL = 12         # statements in a tail worth copying (solc's revert is 3: mload, sub, revert; a shared
                      # message adds its length and words)
MAX_BLOCKS = 3        # instances in a tail: a shared message's words, then the shared revert
MAX_BACK = 16         # instances walked back from a builder to find its selector word
_SELECTOR_BITS = 224  # an error's data starts with a 4-byte selector: stored as a word, its low 224 bits are zero
_TAIL_OPS = ("MLOAD", "MSTORE")


def copy_revert_tails(fn: FunctionIR, values: Values) -> None:
    """Copy each small revert tail with several predecessors into the predecessors that jump to it after storing
    an error selector word (see the module docstring)."""
    consts = None
    for r in fn.ids:
        if r in fn.removed or r in fn.single or r in fn.entries:
            continue
        path = _revert_tail(fn, r)
        if path is None:
            continue
        consts = consts or Constants(definitions(fn))
        for m in live_preds(fn, r):
            if m not in path and fn.graph.edges[m].plain_jump == r and _stores_selector(fn, consts, m):
                _copy_into(fn, values, path, m)
    if consts is not None:
        values.forget()
        prune(fn)


def _revert_tail(fn: FunctionIR, r: int) -> list[int] | None:
    """The instances from r on when they run only pure statements, memory reads and stores and plain jumps, and
    end in a REVERT (MAX_BLOCKS instances, MAX_TAIL statements at most); else None."""
    path, size = [r], 0
    while True:
        n = path[-1]
        body = fn.body[n]
        size += len(body)
        if size > MAX_TAIL or n in fn.entries:
            return None
        if fn.graph.edges[n].kind == "halt":
            ok = fn.syms[n].term.kind == "halt" and body and body[-1].op == "REVERT" and _plain(body[:-1])
            return path if ok else None
        t = fn.graph.edges[n].plain_jump
        if t is None or t in path or len(path) == MAX_BLOCKS or not _plain(body):
            return None
        path.append(t)


def _plain(body: list[Stmt]) -> bool:
    return all(is_pure(s) or s.op in _TAIL_OPS for s in body)


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


def _copy_into(fn: FunctionIR, values: Values, path: list[int], m: int) -> None:
    """m runs the tail's statements itself and halts: each instance's temps renumbered past the ones before, its
    parameters read from the exit of the instance before it (m's, for the first). The revert also stands for the
    jumps it replaces."""
    shifts: dict[int, int] = {}
    top = fn.next_temp(m)
    for n in path:
        shifts[n], top = top, top + fn.next_temp(n)

    def moved(o: Operand) -> Operand:
        if o[0] not in ("t", "p") or len(o) < 3 or o[1] not in shifts:
            return o
        n = o[1]
        if o[0] == "t":
            return ("t", m, o[2] + shifts[n])
        before = m if n == path[0] else path[path.index(n) - 1]   # a parameter: what the jump into n passes
        return moved(values.resolve(before, fn.syms[before].exit(o[2])))

    copies = [Stmt(None if s.dest is None else s.dest + shifts[n], s.op, [moved(a) for a in s.args], s.ndest, s.pcs)
              for n in path for s in fn.body[n]]
    copies[-1].pcs = merged_pcs(copies[-1].pcs, *((fn.syms[n].last_pc,) for n in (m, *path[:-1])
                                                  if fn.syms[n].last_pc is not None))
    fn.body[m].extend(copies)   # (fn.live is rebuilt by the next eliminate_dead; no pass before it reads it)
    fn.graph.edges[m] = Edges("halt", [])
    fn.halts.add(m)
    fn.absorbed.update(path)   # their opcodes still count (emit)
