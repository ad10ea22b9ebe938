"""tacsol.lift on real solc output (fixtures compiled once by tests/fixtures/lift/gen.js) and on bad input."""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import evmole
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lift_interp import M, TacFunction  # noqa: E402

from tacsol.lift import LiftError, lift  # noqa: E402
from tacsol.lift.cfg import Program  # noqa: E402
from tacsol.lift.render import render  # noqa: E402

FIXDIR = Path(__file__).parent / "fixtures" / "lift"
FIX = json.loads((FIXDIR / "contracts.json").read_text())
VYPER = json.loads((FIXDIR / "vyper.json").read_text())   # gen_vyper.py: contract V (A's functions), every mode
IDS = [c["id"] for c in FIX]
BY_ID = {c["id"]: c for c in FIX + VYPER}
WITH_A_BODIES = [i for i in IDS if i.startswith("A@")] + [c["id"] for c in VYPER if c["settings"] == "none"]


@pytest.fixture(scope="module")
def lifted():
    return {c["id"]: lift(c["runtime"]) for c in FIX + VYPER}


def _abi(sel: str, *args: int) -> bytes:
    return bytes.fromhex(sel) + b"".join(a.to_bytes(32, "big") for a in args)


@pytest.mark.parametrize("cid", IDS)
def test_selectors_match_solc_method_identifiers(cid, lifted):
    c = next(x for x in FIX if x["id"] == cid)
    got = {f.selector for f in lifted[cid].functions}
    want = {"0x" + s for s in c["method_identifiers"].values()}
    assert want <= got and got - want <= {"fallback", "receive"}
    if c["contract"] == "A":   # A has payable fallback (0.4/0.5) or receive + fallback (0.6+)
        assert "fallback" in got
        assert ("receive" in got) == (not c["solc"].startswith(("0.4.", "0.5.")))
        fb = lifted[cid].function("fallback")   # payable in 0.4/0.5 (old syntax), non-payable `fallback()` after
        assert fb.mutability == ("payable" if c["solc"].startswith(("0.4.", "0.5.")) else "nonpayable"), fb.tac
    assert all(f.status == "ok" for f in lifted[cid].functions), lifted[cid].warnings
    assert lifted[cid].metadata_len > 0


def test_binary_search_dispatcher_has_all_18_selectors(lifted):
    for cid in ("B@0.6.12/opt200", "B@0.8.26/opt200", "B@0.8.26/viair-opt200"):
        assert len([f for f in lifted[cid].functions if f.selector.startswith("0x")]) == 18


@pytest.mark.parametrize("cid", WITH_A_BODIES)
def test_bodies_show_effects_and_nothing_else(cid, lifted):
    c = BY_ID[cid]
    ids = c["method_identifiers"]
    res = lifted[cid]
    tac = {sig: res.function(sel).tac for sig, sel in ids.items()}
    ops = {sig: res.function(sel).ops for sig, sel in ids.items()}
    assert "log2(" in tac["setTotal(uint256)"] and ops["setTotal(uint256)"].get("LOG2") == 1
    assert "sstore(" in tac["setTotal(uint256)"] and "sstore(" in tac["store(uint256)"]
    assert "call(" in tac["callOther(address,uint256)"] and ops["callOther(address,uint256)"].get("CALL") == 1
    for sig in ("sub(uint256,uint256)", "total()", "bal(address)", "sumTo(uint256)", "callOther(address,uint256)"):
        assert "return(" in tac[sig], sig
    for sig in ("sub(uint256,uint256)", "div(uint256,uint256)", "lt(uint256,uint256)", "sumTo(uint256)",
                "useHelper1(uint256)"):
        assert not any(k in tac[sig] for k in ("sstore(", "log", "call(")), sig
    assert "sstore(" in res.function("receive" if c.get("solc", "") >= "0.6" else "fallback").tac


@pytest.mark.parametrize("cid", IDS)
def test_isolation_blocks_stay_inside_the_path_rule_set(cid):
    """Every block a function's TAC uses lies in its evmole path-rule block set (docs/references.md, Offline assets), and no other
    function's entry is reached."""
    c = next(x for x in FIX if x["id"] == cid)
    raw = bytes.fromhex(c["runtime"])
    info = evmole.contract_info(raw, selectors=True, control_flow_graph=True, metadata=True)
    con = Program(raw, info.metadata.bytecode_offset, info)
    entries = {f.bytecode_offset for f in info.functions}
    for f in info.functions:
        path_rule = set(con.block_set([f.bytecode_offset]))
        used = render(con, "h", [f.bytecode_offset], float("inf")).used_blocks
        assert used <= path_rule, (f.selector, sorted(used - path_rule))
        assert not (used & (entries - {f.bytecode_offset})), f.selector


@pytest.mark.parametrize("cid", WITH_A_BODIES)
def test_loops_and_internal_calls_execute_correctly(cid, lifted):
    """sumTo (a loop) and useHelper1/2 (one internal function, two callers) run in the TAC interpreter."""
    c = BY_ID[cid]
    ids, res = c["method_identifiers"], lifted[cid]
    rng = random.Random(3)
    for n in (0, 1, 5, 17):
        kind, out, _ = TacFunction(res.function(ids["sumTo(uint256)"]).tac).run(_abi(ids["sumTo(uint256)"], n))
        assert kind == "return" and int.from_bytes(out, "big") == n * (n - 1) // 2
    for _ in range(5):
        x = rng.getrandbits(64)
        for sig, want in (("useHelper1(uint256)", x * 3 + 3), ("useHelper2(uint256)", (x * 3 + 1) ^ 5)):
            kind, out, _ = TacFunction(res.function(ids[sig]).tac).run(_abi(ids[sig], x))
            assert kind == "return" and int.from_bytes(out, "big") == want % M, (sig, x)
    kind, _, st = TacFunction(res.function(ids["setTotal(uint256)"]).tac).run(_abi(ids["setTotal(uint256)"], 42))
    assert kind == "stop" and st == {0: 42}


# PUSH0 TLOAD; PUSH1 1 PUSH0 TSTORE; MCOPY(0,0x20,0x20); BLOBHASH(0); BLOBBASEFEE; BASEFEE; SSTOREs; STOP
CANCUN_CODE = "5f5c" + "60015f5d" + "60206020" + "5f5e" + "5f49" + "4a01" + "4801" + "015f5500"


@pytest.mark.parametrize("cid", [c["id"] for c in VYPER])
def test_vyper_functions_are_lifted_or_unsupported_never_an_empty_ok(cid, lifted):
    """Vyper's linear dispatcher (-O none) lifts like solc's; behind a jump-table dispatcher (-O gas, -O codesize,
    venom) evmole's control-flow graph misses the bodies: those functions are `unsupported`, with a warning."""
    c, res = BY_ID[cid], lifted[cid]
    want = {"0x" + s for s in c["method_identifiers"].values()}
    public = [f for f in res.functions if f.selector in want]
    assert len(public) == len(want)
    assert not [f.selector for f in res.functions if f.status == "ok" and not f.instructions]
    if c["settings"] == "none":
        assert all(f.status == "ok" for f in public) and res.function("fallback").status == "ok"
    else:
        assert all(f.status == "unsupported" and f.tac == "" for f in public), [f.status for f in public]
        assert all(any(w.startswith(f"{f.selector}: unsupported: ") for w in res.warnings) for f in public)


def test_cancun_opcodes_render():
    tac = lift(CANCUN_CODE).function("fallback").tac
    for frag in ("tload(0x0)", "tstore(0x0, 0x1)", "mcopy(0x0, 0x20, 0x20)", "blobhash(0x0)", "blobbasefee",
                 "basefee", "sstore(0x0,"):
        assert frag in tac, (frag, tac)


BAD_INPUTS = [
    ("0xzz12", "malformed_hex"), ("abc", "malformed_hex"), ("", "empty_code"), ("0x", "empty_code"),
    ("6001600201" + "7f0011", "truncated_push"), ("0c0d0e0f", "invalid_opcode"),
    ("363d3d373d3d3d363d73" + "be" * 20 + "5af43d82803e903d91602b57fd5bf3", "proxy_eip1167"),
    ("365f5f37" "5f5f365f73" + "be" * 20 + "5af4" "00", "proxy_only"),
    ("60006000fd", "no_functions"), (12, "malformed_hex"),
]


@pytest.mark.parametrize("code,reason", BAD_INPUTS)
def test_bad_input_has_reason(code, reason):
    with pytest.raises(LiftError) as ei:
        lift(code)
    assert ei.value.reason == reason
    assert str(ei.value).startswith(reason + ": ")


def test_recursion_is_partial_with_a_warning():
    """partial.json (gen.js contract C): recursive fact() loses the call context; a plain getter stays ok."""
    for c in json.loads((Path(__file__).parent / "fixtures" / "lift" / "partial.json").read_text()):
        ids, res = c["method_identifiers"], lift(c["runtime"])
        fact = res.function(ids["fact(uint256)"])
        assert fact.status == "partial" and fact.instructions > 0, c["id"]
        assert f"{fact.selector}: unresolved jump target(s); TAC is partial" in res.warnings
        assert res.function(ids["x()"]).status == "ok"


def test_time_limit_reports_timeout_not_hang():
    res = lift(FIX[0]["runtime"], time_limit_s=0.0)
    assert res.functions and all(f.status == "timeout" and f.tac == "" for f in res.functions)


def test_bytes_and_prefix_inputs_agree():
    h = FIX[1]["runtime"]
    a, b, c = lift(h), lift("0x" + h), lift(bytes.fromhex(h))
    assert a.tac() == b.tac() == c.tac() and a.code_size == len(h) // 2


def test_cli_prints_tac_and_json(capsys, tmp_path):
    from tacsol.cli import main

    c = next(x for x in FIX if x["id"] == "A@0.8.26/opt200")
    sel = "0x" + c["method_identifiers"]["sub(uint256,uint256)"]
    assert main(["lift", c["runtime"], "--selector", sel]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"function {sel}(uint256,uint256)") and "return(" in out
    f = tmp_path / "code.hex"
    f.write_text(c["runtime"])
    assert main(["lift", str(f), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {x["selector"] for x in data["functions"]} >= {sel, "fallback", "receive"}
    assert main(["lift", "0xzz"]) == 2  # bad input
    assert "malformed_hex" in capsys.readouterr().err


def test_format_doc_example_is_current_output():
    """docs/tac-format.md shows real lifter output; a format change must update the document."""
    doc = (Path(__file__).parents[1] / "docs" / "tac-format.md").read_text()
    example = doc.split("## Example", 1)[1].split("```\n", 2)[1].rstrip("\n")
    c = next(x for x in FIX if x["id"] == "A@0.8.26/opt200")
    assert lift(c["runtime"]).function(c["method_identifiers"]["sumTo(uint256)"]).tac == example
