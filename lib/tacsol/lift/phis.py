"""Level 2: block parameters that carry one value. A parameter whose every incoming argument is the same value (or
the parameter itself, round a loop) is that value; a join left with one predecessor and no parameter is entered
straight (printed inline after it). Sound for SSA: the one value is defined on every path into the block."""
from __future__ import annotations

from .ir import FunctionIR
from .rewrite import live_preds, replace
from .values import Values


def fold_block_params(fn: FunctionIR, values: Values) -> None:
    joins = [t for t in fn.ids if t not in fn.removed and t not in fn.single and t not in fn.entries]
    preds = {t: live_preds(fn, t) for t in joins}
    changed = True
    while changed:   # folding one parameter can make another's incoming values one
        changed = False
        for t in joins:
            for p in values.params(t):
                incoming = {values.resolve(n, fn.syms[n].exit(p[2])) for n in preds[t]} - {p}
                if len(incoming) == 1:
                    replace(values, p, incoming.pop())
                    changed = True
    _straighten(fn, values, preds)


def _straighten(fn: FunctionIR, values: Values, preds: dict[int, list[int]]) -> None:
    """A join with one live predecessor and no parameter left becomes a single-predecessor instance."""
    for t, ps in preds.items():
        if len(ps) == 1 and ps[0] != t and not values.params(t):
            fn.single.add(t)
            fn.preds[t] = ps
            values.forget()
