"""tools/estimate_callee_rules.py: replaying the "any" rule at P on printed examples gives what the lifter prints with
callee_budget=P, and "pure" spares the callees that touch storage, call out, create or log."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import estimate_callee_rules as E  # noqa: E402
from tacsol.lift import lift  # noqa: E402

LEVEL2 = {c["id"]: c for c in json.loads((ROOT / "tests" / "fixtures" / "lift" / "level2.json").read_text())}


@pytest.mark.parametrize("level", [2, 3])
def test_replaying_any_rule_equals_the_lifters_callee_budget(level):
    c = LEVEL2["E@0.6.12/noopt"]
    sel = c["method_identifiers"]["twoSubs(uint256,uint256)"]
    full = lift(c["runtime"], level=level).function(sel).tac
    own = full.split("\n\nfunction f")[0]
    assert "\n\nfunction f" in full                       # the example carries a callee unit to summarize
    for budget in (len(own) + 10, len(full) - 1, len(full)):
        want = lift(c["runtime"], level=level, callee_budget=budget).function(sel).tac
        assert E.replay(full, budget, "any") == want, budget
    assert E.replay(full, len(full), "pure") == full      # nothing past the limit: nothing summarized


def test_pure_means_no_storage_external_call_create_or_log():
    memory_only = "function f2(arg0) internal\nb0:\n  mstore(arg0, 0x20)\n  v1 = icall f3(arg0)\n  ret(v1)"
    assert E.is_pure(memory_only)
    for effect in ("v2 = sload(0x1)", "sstore(0x1, arg0)", "v2 = call(gas(), arg0, 0x0, 0x0, 0x0, 0x0)",
                   "v2 = staticcall(gas(), arg0, 0x70a08231(arg0), v3, 0x20)", "v2 = create(0x0, 0x0, 0x0)",
                   "log1(0xddf252ad; arg0)", "storagestring(0x3) = arg0"):
        assert not E.is_pure(memory_only.replace("  ret(v1)", f"  {effect}\n  ret(v1)")), effect
    example = "function 0x1() view\nb0:\n  v1 = icall f2(0x80)\n  ret(v1)\n\n" + memory_only
    pure_limit = len(example.split("\n\n")[0]) + 10   # the own unit fits, no callee does
    summarized = E.replay(example, pure_limit, "pure")
    assert summarized.split("\n\n")[1].startswith("function f2(arg0) internal  // summary of ")
    impure = example.replace("  mstore(arg0, 0x20)", "  sstore(0x1, arg0)")
    assert E.replay(impure, pure_limit, "pure") == impure   # a callee with effects keeps its body
    assert E.replay(impure, pure_limit, "any") != impure
