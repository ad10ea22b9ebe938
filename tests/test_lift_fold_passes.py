"""lift.simplify.fold_constants runs another pass over a function only when it could fold more (_Folder.stale): a
statement was visited before a value it reads was folded. No lifter fixture needs a second pass (instances are in
discovery order), so the two cases are built here over a stand-in for Values."""
from __future__ import annotations

from types import SimpleNamespace

from tacsol.lift.ir import Stmt
from tacsol.lift.simplify import _Folder, fold_constants


class _Values:
    """Values.resolve for one instance's temps: the folded chain, else the temp itself."""

    def __init__(self):
        self.folded = {}

    def resolve(self, n, o):
        if o[0] != "t":
            return o
        o = ("t", n, o[1])
        while o in self.folded:
            o = self.folded[o]
        return o


def _fold(*stmts, monkeypatch=None) -> tuple[dict, int]:
    """The folded values and the statement visits of fold_constants over one instance holding `stmts`."""
    visits = []
    stmt = _Folder.stmt
    monkeypatch.setattr(_Folder, "stmt", lambda self, n, s: visits.append(s) or stmt(self, n, s))
    values = _Values()
    fold_constants(SimpleNamespace(ids=range(1), syms=[SimpleNamespace(stmts=list(stmts))]), values)
    return values.folded, len(visits)


def test_a_value_folded_after_it_was_read_gets_another_pass(monkeypatch):
    # v0 = v1 + 1 is visited while v1 = 2 + 3 is not folded yet: the second pass folds it
    folded, visits = _fold(Stmt(0, "ADD", [("t", 1), ("c", 1)]), Stmt(1, "ADD", [("c", 2), ("c", 3)]),
                           monkeypatch=monkeypatch)
    assert folded == {("t", 0, 1): ("c", 5), ("t", 0, 0): ("c", 6)}
    assert visits == 2 * 2   # two passes over both; no third (nothing the second read was folded after)


def test_no_second_pass_when_nothing_read_was_folded_later(monkeypatch):
    folded, visits = _fold(Stmt(0, "ADD", [("c", 2), ("c", 3)]), Stmt(1, "ADD", [("t", 0), ("c", 1)]),
                           monkeypatch=monkeypatch)
    assert folded == {("t", 0, 0): ("c", 5), ("t", 0, 1): ("c", 6)}
    assert visits == 2


def test_a_long_constant_folded_after_it_was_read_gets_another_pass(monkeypatch):
    # v1 = 1 << 0xa0 stays a line (too long to print) but its value folds into v0 = v1 >> 0x9e
    folded, visits = _fold(Stmt(0, "SHR", [("c", 0x9e), ("t", 1)]), Stmt(1, "SHL", [("c", 0xa0), ("c", 1)]),
                           monkeypatch=monkeypatch)
    assert folded == {("t", 0, 0): ("c", 4)}   # once the second pass sees v1's value
    assert visits == 2 * 2
