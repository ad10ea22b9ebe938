"""Level 3: a call's return data copied to memory as bytes, `v = bytes(returndata)`.

`(bool ok, bytes memory data) = target.call(input)` (and OpenZeppelin's `functionCall`, `SafeERC20`) copies the
return data to a fresh allocation when there is any, else takes the empty bytes at 0x60:

    if returndatasize() goto A else X(96)       A:  v = alloc((returndatasize() + 0x3f) & ~0x1f)
                                                    mstore(v, returndatasize())
                                                    returndatacopy(v + 32, 0, returndatasize())
                                                    goto X(v)
Five lines, a label and a jump; they print as `v = bytes(returndata)`, meaning: with no return data, v = 0x60 and
nothing else happens; else v is the free pointer, which moves 32 + returndatasize rounded up to a word on, and
memory at v holds the size, then the return data. Exact: the branch and A are only this (A entered from the branch
alone), and the join X is entered from the two of them (when nothing reads the bytes, X takes no parameter and the
allocation still happens). Where the two sides do more than this (solc 0.8 without the optimizer reads the length
in each of them), the code stays as it is."""
from __future__ import annotations

from .calldata import rounded
from .inline import is_pure
from .ir import FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import Constants, branches, decide, definitions, linear, linear_minus, live_preds, replace
from .values import Values

EMPTY_BYTES = 0x60   # solc's zero-length bytes in memory (the zero slot)


def fold_returndata_copies(fn: FunctionIR, values: Values) -> int:
    """Fold each copy of the return data into `v = bytes(returndata)` at the branch on returndatasize (see the
    module docstring); callers prune. Runs on live statements (after eliminate_dead). Returns how many folded."""
    if not any(s.op == "RETURNDATACOPY" for b in fn.body for s in b):
        return 0
    defs = definitions(fn)
    const = Constants(defs)
    folded = 0
    for j, yes, no in list(branches(fn)):
        got = _copy(fn, values, defs, const, j, yes, no)
        if got is None:
            continue
        via, join, param, pcs = got
        dest = fn.next_temp(j)
        fn.body[j].append(Stmt(dest, "returndata_bytes", [], 1, pcs))
        fn.live[j].append(True)
        decide(fn, j, join if via == j else via)
        if param is not None:
            replace(values, param, ("t", j, dest))
        fn.single.add(join)
        fn.preds[join] = [via]
        values.forget()
        folded += 1
    return folded


def _size(defs: dict[Operand, Stmt], o: Operand) -> bool:
    s = defs.get(o)
    return s is not None and s.op == "RETURNDATASIZE"


def _copy(fn: FunctionIR, values: Values, defs, const: Constants, j: int, a: int, x: int):
    """(the instance entering the join from the no-data side: j or an empty one after it, the join, its parameter
    carrying the bytes or None, the pcs folded) when branch j on returndatasize goes to a copy A of the return data
    on its true side and to the join X on the other, A going on to X."""
    if not _size(defs, values.condition(j)) or a not in fn.single:
        return None
    via = j   # the no-data side enters X from j, or through an empty instance of its own
    if fn.graph.edges[a].plain_jump != x and x in fn.single and not any(fn.live[x]) \
            and fn.graph.edges[x].plain_jump == fn.graph.edges[a].plain_jump:
        via, x = x, fn.graph.edges[x].plain_jump
    if fn.graph.edges[a].plain_jump != x or x in fn.entries or sorted(live_preds(fn, x)) != sorted([via, a]) \
            or a == x:
        return None
    stmts = [s for k, s in enumerate(fn.body[a]) if fn.live[a][k]]
    steps = [s for s in stmts if not (is_pure(s) or s.op == "RETURNDATASIZE")]
    if [s.op for s in steps] != ["MLOAD", "MSTORE", "MSTORE", "RETURNDATACOPY"]:
        return None
    load, bump, length, copy = steps
    p = ("t", a, load.dest)
    if load.args != [("c", 0x40)] or bump.args[0] != ("c", 0x40) or length.args[0] != p \
            or not _size(defs, length.args[1]):
        return None
    size = linear_minus(defs, bump.args[1], p)   # 32 + the size rounded up: (size + 0x3f) & ~0x1f
    got = rounded(defs, const, size[0][0]) if size is not None and len(size[0]) == 1 and size[1] == 0 else None
    if got is None or got[1] != 32 or len(got[0]) != 1 or not _size(defs, got[0][0]):
        return None
    dst, off, n = copy.args
    if linear(defs, dst) != ((p,), 32) or off != ("c", 0) or not _size(defs, n):
        return None
    params = values.params(x)
    param = None
    if params:
        if len(params) != 1:
            return None
        param = params[0]
        if values.edge_args(a, x) != [p] or values.edge_args(via, x) != [("c", EMPTY_BYTES)]:
            return None
    elif any(p in s.args for m in fn.ids if m != a and m not in fn.removed for s in fn.body[m]):
        return None
    inside = {("t", a, s.dest) for s in stmts if s.dest is not None}
    if any(v in inside for m in fn.ids if m != a and m not in fn.removed for s in fn.body[m] for v in s.args):
        return None
    pcs = merged_pcs(*(s.pcs for s in stmts), *((fn.syms[m].last_pc,) for m in (j, a)
                                                 if fn.syms[m].last_pc is not None))
    return via, x, param, pcs
