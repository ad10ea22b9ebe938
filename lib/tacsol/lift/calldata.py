"""Level 3: a dynamic argument copied from calldata to memory, `p = memory(argK)`.

A public function's `bytes memory` or `string memory` argument (and, under the legacy decoder, an array of one-word
values) is decoded by copying it to a fresh allocation: its length n is read at 4 + argK, the free pointer moves
on by 32 + n rounded up to a word, n is stored at p, the n bytes (32n for an array) are copied after it and the word
after them is cleared. Solc 0.6+'s decoder (abicoder v2) checks the new pointer first:

    v3 = mload(64)
    v4 = v3 + (((v2 + 0x1f) & ~0x1f) + 32)
    require(!((v4 > 0xffffffffffffffff) | (v4 < v3))) else panic(0x41)
    mstore(64, v4)
    mstore(v3, v2)
    calldatacopy(v3 + 32, v1 + 32, v2)
    mstore((v3 + 32) + v2, 0)

Ten lines with the length's load; they print as `v3 = memory(arg2)` (docs/tac-format.md, Level 3). abicoder v2
copies an array of one-word values word by word (loops.fold_calldata_word_loops makes that a calldatacopy) and
clears no word after it: `v = memory_words(argK)`. Exact but for
the allocation check, which is dropped: it fails only when the free pointer plus 32 + n passes 2**64 - 1, and the
decoder's own checks keep n within calldatasize: no transaction carries 2**64 bytes of calldata (4 gas a byte) and
solc keeps its free pointer far below 2**64, so no call reaches that panic."""
from __future__ import annotations

from .abi import negated, static_words
from .inline import is_pure
from .ir import FunctionIR, Operand, Stmt, merged_pcs
from .layout import failing_path
from .loops import word_count
from .rewrite import Constants, chain_pcs, chains, decide, definitions, line, linear, linear_minus
from .simplify import M
from .values import Values

_BOUND = (1 << 64) - 1        # the decoder's bound on the new free pointer
_WORD_MASK = M - 32           # ~0x1f
_CHECK_OPS = ("ISZERO", "OR", "GT", "LT")


def element_width(t: str) -> int | None:
    """Bytes per element an argument of type t copies as one block: 1 for bytes and string, 32 for an array of
    one-word values; None for other types."""
    if t in ("bytes", "string"):
        return 1
    return 32 if t.endswith("[]") and static_words(t[:-2]) == 1 else None


def fold_calldata_copies(fn: FunctionIR, values: Values, types: tuple[str, ...]) -> int:
    """Fold each copy of a dynamic argument (of the header's `types`) to memory into `p = memory(argK)` where the
    free pointer is read; a branch of its allocation check is settled (callers prune and drop the dead values).
    Runs on live statements (after eliminate_dead), along straight lines of instances (the unoptimized code puts
    each step in its own block). Returns how many folded."""
    if not any(element_width(t) for t in types):
        return 0
    defs = definitions(fn)
    const = Constants(defs)
    folded = 0
    for chain in chains(fn):
        while True:
            seq = [(n, k) for n in chain for k, s in enumerate(fn.body[n]) if fn.live[n][k]]
            if not any(_fold(fn, values, types, defs, const, seq, c)
                       for c, (n, k) in enumerate(seq) if fn.body[n][k].op == "CALLDATACOPY"):
                break
            folded += 1   # and again: the positions after it moved
    return folded


def _argument(defs: dict[Operand, Stmt], o: Operand, off: int) -> int | None:
    """K when o is argK + off (argK a dynamic argument's offset, relative to the arguments after the selector)."""
    terms, c = linear(defs, o)
    return terms[0][1] if len(terms) == 1 and terms[0][0] == "a" and c == off else None


def _length(defs: dict[Operand, Stmt], ln: Operand, k: int, width: int) -> Operand | None:
    """The length word n that the copy's size ln stands for (ln = n, or n * 32 for an array), read at 4 + argK."""
    n = ln if width == 1 else word_count(defs, ln)
    s = defs.get(n) if n is not None else None
    return n if s is not None and s.op == "CALLDATALOAD" and _argument(defs, s.args[0], 4) == k else None


def rounded(defs: dict[Operand, Stmt], const: Constants, o: Operand) -> tuple[tuple, int] | None:
    """x (as linear terms and constant) when o is x rounded up to a multiple of 32: (x + 31) & ~31, or
    ((x + 31) / 32) * 32."""
    s = defs.get(o)
    if s is None:
        return None
    y = None
    if s.op == "AND":
        y = next((b for a, b in (s.args, s.args[::-1]) if const(a) == _WORD_MASK), None)
    elif s.op == "MUL" and ("c", 32) in s.args:
        q = defs.get(s.args[1] if s.args[0] == ("c", 32) else s.args[0])
        y = q.args[0] if q is not None and q.op == "DIV" and q.args[1] == ("c", 32) else None
    if y is None:
        return None
    terms, c = linear(defs, y)
    return terms, (c - 31) % M


def _is_size(defs: dict[Operand, Stmt], const: Constants, size: tuple[tuple, int], ln: Operand, width: int) -> bool:
    """size (linear terms, constant) is 32 + ln rounded up to a word: ln rounded, plus 32, maybe rounded again (an
    array's ln, a multiple of 32, need not be rounded)."""
    def round_of_ln(r: Operand) -> bool:
        return (width == 32 and r == ln) or rounded(defs, const, r) == ((ln,), 0)

    terms, c = size
    if len(terms) != 1:
        return False
    if c == 32:
        return round_of_ln(terms[0])
    inner = rounded(defs, const, terms[0]) if c == 0 else None
    return inner is not None and len(inner[0]) == 1 and inner[1] == 32 and round_of_ln(inner[0][0])


def _next_effect(fn: FunctionIR, seq: list[tuple[int, int]], c: int, step: int) -> int | None:
    """The index in seq of the first statement from c on (walking by step) that is not pure; None past the end."""
    while 0 <= c < len(seq):
        n, k = seq[c]
        if not is_pure(fn.body[n][k]):
            return c
        c += step
    return None


def _fold(fn: FunctionIR, values: Values, types, defs, const, seq: list[tuple[int, int]], c: int) -> bool:
    """Fold the copy at seq[c] when it is one of `p = memory(argK)`'s statements (see the module docstring)."""
    def at(i: int) -> Stmt:
        return fn.body[seq[i][0]][seq[i][1]]

    dst, src, ln = at(c).args
    k = _argument(defs, src, 36)
    width = element_width(types[k]) if k is not None and k < len(types) else None
    n = _length(defs, ln, k, width) if width else None
    dterms, doff = linear(defs, dst)
    if n is None or len(dterms) != 1 or doff != 32:
        return False
    p = dterms[0]
    z, w = _next_effect(fn, seq, c + 1, 1), _next_effect(fn, seq, c - 1, -1)
    cleared = z is not None and _is_store(at(z), (tuple(sorted((p, ln))), 32), defs, ("c", 0))
    if w is None or not (cleared or width == 32):   # abicoder v2 clears no word after an array's words
        return False
    # the length's store; absent when nothing reads it (memory.dead_stores), and then writing it changes nothing
    a = _next_effect(fn, seq, w - 1, -1) if at(w).op == "MSTORE" and at(w).args == [p, n] else w
    if a is None or at(a).op != "MSTORE" or at(a).args[0] != ("c", 0x40):
        return False
    size = linear_minus(defs, at(a).args[1], p)
    if size is None or not _is_size(defs, const, (tuple(sorted(size[0])), size[1]), ln, width):
        return False
    read = _free_pointer_read(fn, values, defs, const, seq, a, p, at(a).args[1])
    if read is None:
        return False
    m, i, check = read
    load = fn.body[m][i]
    folded = sorted({a, w, c, z} if cleared else {a, w, c}, key=lambda q: seq[q], reverse=True)
    pcs = [at(q).pcs for q in folded]
    if check is not None:
        j, fail, cond = check
        pcs.append(tuple(chain_pcs(cond, defs, _CHECK_OPS, set())))
        own = [t for t in fail if t in fn.single]   # a failure shared with other checks still prints there
        pcs += [s.pcs for t in own for s in fn.body[t]]
        pcs.append(tuple(q for q in [fn.syms[j].last_pc, *(fn.block_of(t) for t in own)] if q is not None and q >= 0))
        fn.absorbed.update(own)
        decide(fn, j, seq[0][0])
    op = "memory" if cleared else "memory_words"
    fn.body[m][i] = defs[p] = Stmt(load.dest, op, [("a", k)], 1, merged_pcs(load.pcs, *pcs))
    for q in folded:
        del fn.body[seq[q][0]][seq[q][1]], fn.live[seq[q][0]][seq[q][1]]
    return True


def _is_store(s: Stmt, at: tuple[tuple, int], defs: dict[Operand, Stmt], value: Operand) -> bool:
    return s.op == "MSTORE" and s.args[1] == value and linear(defs, s.args[0]) == at


def _free_pointer_read(fn: FunctionIR, values: Values, defs, const: Constants, seq: list[tuple[int, int]], a: int,
                       p: Operand, end: Operand) -> tuple[int, int, tuple | None] | None:
    """(instance, position, check) of `p = mload(64)`: on the line seq before its index a, only pure statements
    between (check None); or on the straight line ending in the instance that seq's line is entered from, which
    checks the new free pointer `end` (check: that instance, the instances of its failing side, the condition),
    only pure statements between."""
    if p[0] != "t":
        return None
    m = p[1]
    i = next((q for q, s in enumerate(fn.body[m]) if s.dest == p[2] and fn.live[m][q]), None)
    if i is None or fn.body[m][i].op != "MLOAD" or fn.body[m][i].args != [("c", 0x40)]:
        return None
    if (m, i) in seq:
        j = seq.index((m, i))
        return (m, i, None) if j < a and _next_effect(fn, seq, j + 1, 1) == a else None
    head, run = seq[0][0], line(fn, m)   # the check may end a later instance of the load's straight line
    j = run[-1]
    after = [(m, q) for q in range(i + 1, len(fn.body[m]))] + [(t, q) for t in run[1:] for q in range(len(fn.body[t]))]
    after = [(t, q) for t, q in after if fn.live[t][q]]
    if head not in fn.single or fn.preds[head] != [j] or _next_effect(fn, after, 0, 1) is not None \
            or _next_effect(fn, seq, 0, 1) != a:
        return None
    e = fn.graph.edges[j]
    if e.kind != "jumpi" or j in fn.decided or len(e.trues) != 1 or e.false is None or head not in e.succ:
        return None
    fail = e.false if e.trues[0] == head else e.trues[0]
    path = failing_path(fn, fail)
    if fail == head or path is None \
            or not _allocation_check(defs, const, values.condition(j), fail == e.trues[0], p, end):
        return None
    return m, i, (j, path, values.condition(j))


def _allocation_check(defs, const: Constants, cond: Operand, fails_on_true: bool, p: Operand, end: Operand) -> bool:
    """cond (true, or false when not fails_on_true) exactly when end > 2**64 - 1 or end < p (it wrapped)."""
    base, negative = negated(cond, defs)
    s = defs.get(base)
    if fails_on_true == negative or s is None or s.op != "OR":
        return False
    tests = [defs.get(x) for x in s.args]
    if None in tests:
        return False
    norm = {("gt", *t.args) if t.op == "GT" else ("gt", *t.args[::-1]) for t in tests if t.op in ("GT", "LT")}
    return len(norm) == 2 and any(t[1] == end and const(t[2]) == _BOUND for t in norm) \
        and ("gt", p, end) in norm
