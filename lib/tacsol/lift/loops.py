"""Level 2: the compiler's word-by-word memory copy loops (ABI encoding of bytes and strings, their copies for
revert reasons and events) as one statement, `copy(dst, src, n)`:

    L(i):  if i < n goto B else X          B:  mstore(dst + i, mload(src + i))
                                               goto L(i + 0x20)
entered as L(0x0) from one place. `copy(dst, src, n)` means that loop: for i = 0, 32, ... while i < n,
mstore(dst + i, mload(src + i)). The copy takes the loop's place; the code after it (X) must not read i."""
from __future__ import annotations

from .cse import PURE
from .ir import Edges, FunctionIR, Operand, Stmt, merged_pcs
from .rewrite import live_preds, prune
from .values import Values


def fold_copy_loops(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt]) -> None:
    found = False
    for head in (n for n in fn.ids if n not in fn.single):   # a loop's head has two predecessors
        loop = _copy_loop(fn, values, defs, head)
        if loop is not None:
            enter, body, out, stmt = loop
            fn.body[enter].append(stmt)
            fn.graph.edges[enter] = Edges("jump", [out])
            fn.preds[out] = [enter]
            found = True
    if found:
        values.forget()
        prune(fn)


def _copy_loop(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], head: int):
    """(instance entering the loop, the body, the exit, the copy statement) when `head` heads a copy loop."""
    e = fn.graph.edges[head]
    if head in fn.removed or head in fn.single or head in fn.decided or e.kind != "jumpi" or len(e.trues) != 1 \
            or e.false is None:
        return None
    params = values.params(head)
    preds = live_preds(fn, head)
    body, out = e.trues[0], e.false
    if len(params) != 1 or len(preds) != 2 or body not in preds or out not in fn.single:
        return None
    i = params[0]
    enter = preds[0] if preds[1] == body else preds[1]
    cond = defs.get(values.condition(head))
    if cond is None or cond.op != "LT" or cond.args[0] != i or fn.graph.edges[enter].plain_jump != head:
        return None
    n = cond.args[1]
    copied = _copy_body(fn, values, defs, body, head, i)
    if copied is None or values.edge_args(enter, head) != [("c", 0)]:
        return None
    dst, src = copied
    inside = [("t", m, s.dest) for m in (head, body) for s in fn.body[m] if s.dest is not None]
    if not all(s.op in PURE for s in fn.body[head]) or any(_reads(fn, values, out, x) for x in [i] + inside):
        return None
    if any(x == i or x in inside for x in (dst, src, n)):
        return None
    # the copy stands for the whole loop: the head's test and branch, the body's load, store, step and jump back
    pcs = merged_pcs(*(s.pcs for m in (head, body) for s in fn.body[m]),
                     *((fn.syms[m].last_pc,) for m in (head, body) if fn.syms[m].last_pc is not None))
    return enter, body, out, Stmt(None, "copy", [dst, src, n], 1, pcs)


def _copy_body(fn: FunctionIR, values: Values, defs: dict[Operand, Stmt], body: int, head: int, i: Operand):
    """(dst, src) when `body` is mstore(dst + i, mload(src + i)) and jumps back with i + 0x20; else None."""
    if body not in fn.single or fn.graph.edges[body].plain_jump != head:
        return None
    stmts = fn.body[body]
    stores = [s for s in stmts if s.dest is None]
    if len(stores) != 1 or stores[0].op != "MSTORE" or any(s.op not in PURE and s.op != "MLOAD" for s in stmts
                                                              if s.dest is not None):
        return None
    nxt = values.edge_args(body, head)
    step = defs.get(nxt[0]) if len(nxt) == 1 else None
    if step is None or step.op != "ADD" or sorted(step.args) != sorted([i, ("c", 0x20)]):
        return None
    dst = _plus(defs.get(stores[0].args[0]), i)
    load = defs.get(stores[0].args[1])
    src = _plus(defs.get(load.args[0]), i) if load is not None and load.op == "MLOAD" else None
    return (dst, src) if dst is not None and src is not None else None


def _plus(s: Stmt | None, i: Operand) -> Operand | None:
    """x when s is x + i."""
    if s is None or s.op != "ADD" or i not in s.args:
        return None
    return s.args[1] if s.args[0] == i else s.args[0]


def _reads(fn: FunctionIR, values: Values, n: int, i: Operand) -> bool:
    """Code from the loop's exit n on reads i."""
    seen, work = set(), [n]
    while work:
        m = work.pop()
        if m in seen:
            continue
        seen.add(m)
        if any(i in s.args for s in fn.body[m]):
            return True
        if fn.graph.edges[m].kind == "jumpi" and values.condition(m) == i:
            return True
        for t in fn.graph.edges[m].succ:
            if i in values.edge_args(m, t):
                return True
            work.append(t)
    return False
