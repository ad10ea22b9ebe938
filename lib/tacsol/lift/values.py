"""From instances to SSA values: the function's IR, the entry slots each instance takes as block parameters, and the
name every operand resolves to (the defining instance's temp or parameter, or a constant)."""
from __future__ import annotations

import dataclasses

from .cfg import Program
from .ir import FunctionIR, Graph, Operand
from .budget import clock

MAX_PARAM_SLOT = 64


def build_ir(prog: Program, graph: Graph, starts: list[int], frame: tuple = ()) -> FunctionIR:
    # level-2 passes settle and fold jumps in fn.graph.edges: a graph explored once is lowered again (a function
    # retried with its small helpers as calls, a public function's graph kept from counting call sites), so each
    # FunctionIR gets its own edges; a graph folded in place could leave loops of single-predecessor instances
    graph = dataclasses.replace(graph, edges=list(graph.edges))
    ids = range(len(graph.nodes))
    entries = [n for n in ids if graph.nodes[n][0] in starts and graph.nodes[n][1] == frame]
    preds: list[list[int]] = [[] for _ in ids]
    for n in ids:
        for t in graph.edges[n].succ:
            if n not in preds[t]:
                preds[t].append(n)
    single = {n for n in ids if n not in entries and len(preds[n]) == 1 and preds[n][0] != n}
    syms = [graph.calls[n] if n in graph.calls else prog.sym(bid) for n, (bid, _) in enumerate(graph.nodes)]
    fn = FunctionIR(graph, syms, entries, preds, single)
    # a conditional jump the path settled (instances.explore, `precise`) is a plain jump: its test is not printed
    fn.decided = {n for n in ids if syms[n].term.kind == "jumpi" and graph.edges[n].kind == "jump"}
    return fn


def infer_params(fn: FunctionIR, deadline: float) -> None:
    """The slots an instance needs: those it reads plus those it passes on to needing successors."""
    need = [set(sb.reads) for sb in fn.syms]
    results = max(fn.graph.returns, default=0)
    for n in fn.ids:   # an unresolved (multi-target) jump prints its target value, so it needs that slot
        if len(fn.graph.edges[n].trues) > 1 and fn.syms[n].target_read is not None:
            need[n].add(fn.syms[n].target_read)
        if fn.graph.edges[n].kind == "ret":   # an internal function's return reads its results
            need[n].update(o[1] for o in map(fn.syms[n].exit, range(results)) if o[0] == "p" and o[1] < MAX_PARAM_SLOT)
    work = list(fn.ids)
    queued = set(work)
    while work:   # worklist: when a block needs more slots, its predecessors must supply them
        t = work.pop()
        queued.discard(t)
        for n in fn.preds[t]:
            sb = fn.syms[n]
            grew = False
            for j in list(need[t]):
                o = sb.exit(j)
                if o[0] == "p" and o[1] < MAX_PARAM_SLOT and o[1] not in need[n]:
                    need[n].add(o[1])
                    grew = True
            if grew and n not in queued:
                work.append(n)
                queued.add(n)
        if clock() >= deadline:
            raise TimeoutError
    fn.params = need


class Values:
    """Resolves an instance's operand to its SSA value: through single-predecessor chains to the defining
    instance, to a dispatcher constant (an internal function's argument), or to what constant folding replaced it
    with (`folded`)."""

    def __init__(self, fn: FunctionIR, prog: Program, args: int | None = None):
        self.fn = fn
        # Dispatcher constants (an internal function's arguments, when `args` counts them: the word below is its
        # return address) hold only when the entry is not also re-entered from inside the function.
        if args is None:
            self.known = {n: prog.entry_stack.get(fn.block_of(n), ()) for n in fn.entries if not fn.preds[n]}
        else:
            self.known = {n: tuple(("a", args - 1 - j) for j in range(args)) for n in fn.entries if not fn.preds[n]}
        self.folded: dict[Operand, Operand] = {}
        self._walked: dict = {}
        self._edge_args: dict[tuple[int, int], list[Operand]] = {}
        self._declared: dict[int, list[int]] = {}

    def forget(self) -> None:
        """Drop memoized jump arguments and parameters: a level-2 pass changed what values resolve to."""
        self._edge_args.clear()
        self._declared.clear()

    def walks_changed(self) -> None:
        """Drop memoized walks to defining instances (a parameter was folded: a walk stops there now)."""
        self._walked.clear()

    def resolve(self, n: int, o: Operand) -> Operand:
        folded = self.folded
        if o[0] == "p" and n in self.fn.single and ("p", n, o[1]) not in folded:
            n, o = self._defining(n, o)
        tag = o[0]
        if tag == "p":
            known = self.known.get(n)
            if known is not None and o[1] < len(known) and known[o[1]] is not None:
                k = known[o[1]]
                return k if isinstance(k, tuple) else ("c", k)
        elif tag != "t":
            return o   # a constant, or a name level 2 gave: resolves to itself
        o = (tag, n, o[1])
        while o in folded:
            o = folded[o]
        return o

    def _defining(self, n: int, o: Operand) -> tuple[int, Operand]:
        """Follow single-predecessor chains up to the instance that defines slot o (memoized)."""
        key = (n, o[1])
        hit = self._walked.get(key)
        if hit is None:
            m, q, seen = n, o, set()
            single, folded, preds, syms = self.fn.single, self.folded, self.fn.preds, self.fn.syms
            # up to a cycle (only in unreachable code) or a parameter a pass folded (rewrite.replace) before its
            # instance was left with one way in: what the fold says it is, not what the other way passed
            while q[0] == "p" and m in single and m not in seen and ("p", m, q[1]) not in folded:
                seen.add(m)
                p = preds[m][0]
                q = syms[p].exit(q[1])
                m = p
            hit = self._walked[key] = (m, q)
        return hit

    def condition(self, n: int) -> Operand:
        """What instance n's conditional jump tests (level 2 may have rewritten it: FunctionIR.conds)."""
        c = self.fn.conds.get(n)
        if c is None:
            return self.resolve(n, self.fn.syms[n].term.cond)
        while c in self.folded:
            c = self.folded[c]
        return c

    def params(self, n: int) -> list[Operand]:
        """The parameters instance n declares: needed slots that resolve to themselves (no constant, not folded)."""
        return [("p", n, j) for j in self._slots(n)]

    def _slots(self, n: int) -> list[int]:
        """The slots of n's parameters, memoized until `forget` (every edge into n asks for them)."""
        got = self._declared.get(n)
        if got is None:
            got = self._declared[n] = [j for j in sorted(self.fn.params[n]) if self.resolve(n, ("p", j)) == ("p", n, j)]
        return got

    def edge_args(self, n: int, t: int) -> list[Operand]:
        """The values a jump from n passes to t's parameters (none into a single-predecessor instance)."""
        got = self._edge_args.get((n, t))
        if got is None:
            sb = self.fn.syms[n]
            got = self._edge_args[(n, t)] = [] if t in self.fn.single else [
                self.resolve(n, sb.exit(j)) for j in self._slots(t)]
        return got

    def results(self, n: int) -> list[Operand]:
        """What an internal function's return at instance n hands back, first result first (the deepest word)."""
        m = max(self.fn.graph.returns)
        sb = self.fn.syms[n]
        return [self.resolve(n, sb.exit(m - 1 - i)) for i in range(m)]
