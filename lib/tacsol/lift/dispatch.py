"""The code reachable from offset 0 without entering a public function, split into the dispatcher, the receive()
region and the fallback region."""
from __future__ import annotations

from dataclasses import dataclass

from .cfg import Program
from .ir import BlockSym, Operand
from .budget import clock

EFFECTS = ("STOP", "RETURN", "SELFDESTRUCT", "SSTORE", "TSTORE", "CALL", "CALLCODE", "DELEGATECALL", "STATICCALL",
           "CREATE", "CREATE2", "LOG0", "LOG1", "LOG2", "LOG3", "LOG4")
_SIZE_COMPARES = ("LT", "GT", "SLT", "SGT", "EQ", "SUB")


@dataclass
class Regions:
    receive: list[int]           # blocks of receive(), in discovery order
    receive_entries: list[int]
    fallback: list[int]
    fallback_entries: list[int]


@dataclass
class _Region:
    blocks: list[int]
    succ: dict[int, list[int]]
    preds: dict[int, set[int]]


def dispatch_regions(prog: Program, deadline: float) -> Regions:
    """Dispatcher blocks branch on a value derived from the selector (calldataload(0)) or on calldatasize compared
    with 4; a branch on calldatasize alone (or its iszero) splits receive() from the fallback."""
    region = _region(prog, deadline)
    disp = _forwarders(prog, region, _selector_branches(prog, region))
    if clock() >= deadline:
        raise TimeoutError
    recv_entries, fb_entries = _size_branches(prog, region, disp)
    for b in region.blocks:
        if b not in disp and (b == 0 or any(p in disp for p in region.preds[b])):
            if b not in recv_entries and b not in fb_entries:
                fb_entries.append(b)
    keep = set(region.blocks) - disp
    stop = prog.entries | disp
    recv = prog.block_set(recv_entries, stop=stop, deadline=deadline) if recv_entries else []
    fb = prog.block_set(fb_entries, stop=stop, deadline=deadline) if fb_entries else []
    return Regions([b for b in recv if b in keep], recv_entries, [b for b in fb if b in keep], fb_entries)


def _region(prog: Program, deadline: float) -> _Region:
    blocks = prog.block_set([0], stop=prog.entries, deadline=deadline) if 0 in prog.blocks else []
    rset = set(blocks)
    succ = {b: [t for t in prog.succs(b, rset) if t in rset] for b in blocks}
    preds: dict[int, set] = {b: set() for b in blocks}
    for b in blocks:
        for t in succ[b]:
            preds[t].add(b)
    return _Region(blocks, succ, preds)


def _tainted_temps(sb: BlockSym, ptaint: set[int]) -> set[int]:
    """Temps derived from the selector word, a tainted entry slot, or a calldatasize-vs-4 comparison."""
    tt: set[int] = set()
    for s in sb.stmts:
        if s.dest is None:
            continue
        if (s.op == "CALLDATALOAD" and s.args[0] == ("c", 0)) or any(_tainted(a, tt, ptaint) for a in s.args):
            tt.add(s.dest)
        elif s.op in _SIZE_COMPARES and ("e", "calldatasize") in s.args and ("c", 4) in s.args:
            tt.add(s.dest)
    return tt


def _tainted(o: Operand, tt: set[int], ptaint: set[int]) -> bool:
    return (o[0] == "t" and o[1] in tt) or (o[0] == "p" and o[1] in ptaint)


def _selector_branches(prog: Program, region: _Region) -> set[int]:
    """Blocks whose branch condition derives from the selector: entry-slot taint propagated to a fixed point."""
    ptaint: dict[int, set] = {b: set() for b in region.blocks}
    cond_taint: dict[int, bool] = {}
    for _ in range(50):
        changed = False
        for b in region.blocks:
            sb = prog.sym(b)
            tt = _tainted_temps(sb, ptaint[b])
            cond_taint[b] = sb.term.kind == "jumpi" and _tainted(sb.term.cond, tt, ptaint[b])
            depth = min(64, len(sb.exit_top) + max(ptaint[b], default=-1) + 1)
            ex = {j for j in range(depth) if _tainted(sb.exit(j), tt, ptaint[b])}
            for t in region.succ[b]:
                if not ex <= ptaint[t]:
                    ptaint[t] |= ex
                    changed = True
        if not changed:
            break
    return {b for b in region.blocks if cond_taint.get(b)}


def _forwarders(prog: Program, region: _Region, disp: set[int]) -> set[int]:
    """Add empty forwarding blocks between dispatcher blocks (ends of compare chains)."""
    changed = True
    while changed:
        changed = False
        for b in region.blocks:
            sb = prog.sym(b)
            preds = region.preds[b]
            if b not in disp and not sb.stmts and sb.term.kind in ("jump", "fall") and preds and preds <= disp:
                disp.add(b)
                changed = True
    return disp


def _size_branches(prog: Program, region: _Region, disp: set[int]) -> tuple[list[int], list[int]]:
    """A block reached only from the dispatcher that branches on calldatasize (or iszero(calldatasize)) and does
    nothing else joins the dispatcher; its empty-calldata side is receive(), the other the fallback."""
    recv_entries: list[int] = []
    fb_entries: list[int] = []
    for b in region.blocks:
        if b in disp:
            continue
        sb = prog.sym(b)
        preds = region.preds[b]
        if sb.term.kind != "jumpi" or prog.kind(b) != "Jumpi" or (preds and not preds <= disp):
            continue
        cond = sb.term.cond
        bt = prog.blocks[b].btype
        is_size = cond == ("e", "calldatasize")
        is_zero = _defined_as(sb, cond, "ISZERO", ("e", "calldatasize"))
        if (is_size or is_zero) and len(sb.stmts) <= (1 if is_zero else 0):
            recv, fb = (bt.false_to, bt.true_to) if is_size else (bt.true_to, bt.false_to)
            disp.add(b)
            recv_entries.append(recv)
            fb_entries.append(fb)
    return recv_entries, fb_entries


def _defined_as(sb: BlockSym, o: Operand, op: str, arg: Operand) -> bool:
    """o is a temp of this block computed as op(arg)."""
    return o[0] == "t" and any(s.dest == o[1] and s.op == op and s.args == [arg] for s in sb.stmts)


def callvalue_guard(sb: BlockSym) -> bool:
    """solc's non-payable check: a branch on callvalue or iszero(callvalue)."""
    if sb.term.kind != "jumpi":
        return False
    cond = sb.term.cond
    return cond == ("e", "callvalue") or _defined_as(sb, cond, "ISZERO", ("e", "callvalue"))


def has_effect(prog: Program, blocks: list[int]) -> bool:
    return any(k in prog.sym(b).counts for b in blocks for k in EFFECTS)


def selector_compare(prog: Program, selector: int, entry: int) -> tuple[int, ...]:
    """The pcs of the dispatcher's comparison that selects the function at `entry`: in each block branching to it,
    the statements that compare with the selector (EQ, or Vyper's XOR) and the JUMPI. Empty when none is found (a
    jump table; the header then maps to the entry)."""
    pcs: set[int] = set()
    for b in prog.branches_to(entry):
        sb = prog.sym(b)
        hits = [s for s in sb.stmts if ("c", selector) in s.args]
        if hits and sb.last_pc is not None:
            pcs.add(sb.last_pc)
            for s in hits:
                pcs.update(s.pcs)
    return tuple(sorted(pcs))
