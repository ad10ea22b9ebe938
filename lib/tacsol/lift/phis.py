"""Level 2: block parameters that carry one value. A parameter whose every incoming argument is the same value (or
the parameter itself, round a loop) is that value; a join left with one predecessor and no parameter is entered
straight (printed inline after it). Sound for SSA: the one value is defined on every path into the block."""
from __future__ import annotations

from .budget import clock
from .ir import FunctionIR
from .rewrite import live_preds, replace
from .values import Values


def fold_block_params(fn: FunctionIR, values: Values, deadline: float = float("inf")) -> None:
    """Fold each parameter carrying one value into it, then enter joins left with one way in straight. Raises
    TimeoutError past `deadline`."""
    joins = [t for t in fn.ids if t not in fn.removed and t not in fn.single and t not in fn.entries]
    preds = {t: live_preds(fn, t) for t in joins}
    # a worklist: a parameter is looked at again only when one of the parameters among its incoming values folds
    work = [(t, p) for t in reversed(joins) for p in reversed(values.params(t))]
    pending = {p for _, p in work}
    waiting: dict = {}   # parameter → the (block, parameter) whose incoming values include it
    while work:
        if clock() >= deadline:
            raise TimeoutError
        t, p = work.pop()
        pending.discard(p)
        if values.resolve(t, ("p", p[2])) != p:
            continue
        incoming = {values.resolve(n, fn.syms[n].exit(p[2])) for n in preds[t]} - {p}
        if len(incoming) == 1:
            # a join's parameter: walks to defining instances pass only through single-predecessor ones and stop at
            # a join whatever is folded there, so they stay valid (replace would drop them all, for each fold: on
            # long chains folds x chain length, a mutated runtime's function 5 CPU s past a 2 s limit)
            replace(values, p, incoming.pop(), walks=False)
            for tq in waiting.pop(p, ()):
                if tq[1] not in pending:
                    pending.add(tq[1])
                    work.append(tq)
        else:
            for v in incoming:
                if v[0] == "p":
                    waiting.setdefault(v, []).append((t, p))
    _straighten(fn, values, preds)


def _straighten(fn: FunctionIR, values: Values, preds: dict[int, list[int]]) -> None:
    """A join with one live predecessor and no parameter left becomes a single-predecessor instance."""
    for t, ps in preds.items():
        if len(ps) == 1 and ps[0] != t and not values.params(t):
            fn.single.add(t)
            fn.preds[t] = ps
            values.forget()
            values.walks_changed()   # a walk that stopped at t goes on through it now
