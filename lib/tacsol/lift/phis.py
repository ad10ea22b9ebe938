"""Level 2: block parameters that carry one value. A parameter whose every incoming argument is the same value (or
the parameter itself, round a loop) is that value; a join left with one predecessor and no parameter is entered
straight (printed inline after it). Sound for SSA: the one value is defined on every path into the block."""
from __future__ import annotations

from .ir import FunctionIR
from .rewrite import live_preds, replace
from .values import Values


def fold_block_params(fn: FunctionIR, values: Values) -> None:
    changed = True
    while changed:
        changed = False
        for t in fn.ids:
            if t in fn.removed or t in fn.single or t in fn.entries:
                continue
            preds = live_preds(fn, t)
            for p in values.params(t):
                incoming = {values.resolve(n, fn.syms[n].exit(p[2])) for n in preds} - {p}
                if len(incoming) == 1:
                    replace(values, p, incoming.pop())
                    changed = True
    _straighten(fn, values)


def _straighten(fn: FunctionIR, values: Values) -> None:
    """A join with one live predecessor and no parameter left becomes a single-predecessor instance."""
    for t in fn.ids:
        if t in fn.removed or t in fn.single or t in fn.entries:
            continue
        preds = live_preds(fn, t)
        if len(preds) == 1 and preds[0] != t and not values.params(t):
            fn.single.add(t)
            fn.preds[t] = preds
