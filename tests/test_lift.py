"""tacsol.lift on real solc output (fixtures compiled once by tests/fixtures/lift/gen.js) and on bad input."""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import evmole
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lift_interp import M, TacFunction  # noqa: E402

from tacsol.lift import LiftError, lift  # noqa: E402
from tacsol.lift.cfg import Program  # noqa: E402
from tacsol.lift.render import render  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXDIR = Path(__file__).parent / "fixtures" / "lift"
FIX = json.loads((FIXDIR / "contracts.json").read_text())
VYPER = json.loads((FIXDIR / "vyper.json").read_text())   # gen_vyper.py: contract V (A's functions), every mode
LEVEL2 = json.loads((FIXDIR / "level2.json").read_text())   # gen.js: contracts E and E8, solc 0.4-0.8
IDS = [c["id"] for c in FIX]
BY_ID = {c["id"]: c for c in FIX + VYPER + LEVEL2}
WITH_A_BODIES = [i for i in IDS if i.startswith("A@")] + [c["id"] for c in VYPER if c["settings"] == "none"]
LEVELS = (1, 2, 3)


@pytest.fixture(scope="module")
def by_level():
    """{level: {fixture id: LiftedContract}}: every lifter fixture is checked at every TAC level."""
    return {level: {c["id"]: lift(c["runtime"], level=level) for c in FIX + VYPER + LEVEL2} for level in LEVELS}


@pytest.fixture(scope="module")
def lifted(by_level):
    return by_level[1]


def _abi(sel: str, *args: int) -> bytes:
    return bytes.fromhex(sel) + b"".join(a.to_bytes(32, "big") for a in args)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("cid", IDS)
def test_selectors_match_solc_method_identifiers(cid, level, by_level):
    c = next(x for x in FIX if x["id"] == cid)
    lifted = by_level[level]
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


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("cid", WITH_A_BODIES)
def test_bodies_show_effects_and_nothing_else(cid, level, by_level):
    c = BY_ID[cid]
    ids = c["method_identifiers"]
    res = by_level[level][cid]
    tac = {sig: res.function(sel).tac for sig, sel in ids.items()}
    ops = {sig: res.function(sel).ops for sig, sel in ids.items()}
    assert "log2(" in tac["setTotal(uint256)"] and ops["setTotal(uint256)"].get("LOG2") == 1
    assert "sstore(" in tac["setTotal(uint256)"] and "sstore(" in tac["store(uint256)"]
    assert "call(" in tac["callOther(address,uint256)"] and ops["callOther(address,uint256)"].get("CALL") == 1
    for sig in ("sub(uint256,uint256)", "total()", "bal(address)", "sumTo(uint256)", "callOther(address,uint256)"):
        assert re.search(r"return ?\(", tac[sig]), sig   # return(offset, size) or level 2's return (words)
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


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("cid", WITH_A_BODIES)
def test_loops_and_internal_calls_execute_correctly(cid, level, by_level):
    """sumTo (a loop) and useHelper1/2 (one internal function, two callers) run in the TAC interpreter."""
    c = BY_ID[cid]
    ids, res = c["method_identifiers"], by_level[level][cid]
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


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("cid", [c["id"] for c in VYPER])
def test_vyper_functions_are_lifted_or_unsupported_never_an_empty_ok(cid, level, by_level):
    """Vyper's linear dispatcher (-O none) lifts like solc's; behind a jump-table dispatcher (-O gas, -O codesize,
    venom) evmole's control-flow graph misses the bodies: those functions are `unsupported`, with a warning."""
    c, res = BY_ID[cid], by_level[level][cid]
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


def test_recursion_is_partial_with_a_warning_at_level_1_and_a_unit_calling_itself_at_levels_2_and_3():
    """partial.json (gen.js contract C): recursive fact() loses the call context at level 1; level 2 prints it as
    an internal function's unit that calls itself (one under 16 statements through the partial fallback:
    functions.MIN_STATEMENTS), else partial; a plain getter stays ok."""
    units = 0
    for c in json.loads((Path(__file__).parent / "fixtures" / "lift" / "partial.json").read_text()):
        for level in LEVELS:
            ids, res = c["method_identifiers"], lift(c["runtime"], level=level)
            fact = res.function(ids["fact(uint256)"])
            assert res.function(ids["x()"]).status == "ok"
            assert fact.instructions > 0
            if fact.status == "ok" and level >= 2:
                own = re.search(r"function (f\d+)\(arg0\) internal\n(?:.+\n)*?.*icall \1\(", fact.tac)
                assert own, (c["id"], fact.tac)
                units += 1
                continue
            assert fact.status == "partial", (c["id"], level)
            assert f"{fact.selector}: unresolved jump target(s); TAC is partial" in res.warnings
    assert units >= 1


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


# ------------------------------------------------------------------------------------------------------ level 2
def _tac(by_id: dict, cid: str, sig: str) -> str:
    return by_id[cid].function(BY_ID[cid]["method_identifiers"][sig]).tac


def _lowered(cid: str, sig: str):
    """(IR after the level-1 passes, its Values, the Program) of one public function of a fixture."""
    from tacsol.lift.compact import keep_live
    from tacsol.lift.render import lower

    c = BY_ID[cid]
    raw = bytes.fromhex(c["runtime"])
    info = evmole.contract_info(raw, selectors=True, control_flow_graph=True, metadata=True)
    prog = Program(raw, info.metadata.bytecode_offset, info)
    prog.dispatcher_stacks(float("inf"))
    entry = next(f.bytecode_offset for f in info.functions if f.selector == c["method_identifiers"][sig])
    fn, values = lower(prog, [entry], float("inf"))
    keep_live(fn)
    return fn, values, prog


def _ops(fn) -> list[str]:
    return [s.op for n in fn.ids if n not in fn.removed for s in fn.body[n]]


def test_level_must_be_a_known_level():
    for level in (0, 4):
        with pytest.raises(ValueError):
            lift(FIX[0]["runtime"], level=level)


@pytest.mark.parametrize("cid", IDS + [c["id"] for c in LEVEL2])
def test_level2_keeps_every_function_and_its_facts(cid, by_level):
    """The same functions, statuses, covered instructions (pairs' isolation check) and effect counts that pairs'
    body checks read, in less text."""
    l1, l2, l3 = by_level[1][cid], by_level[2][cid], by_level[3][cid]
    key = lambda f: (f.selector, f.status, f.arguments, f.mutability, f.pcs)  # noqa: E731
    assert [key(f) for f in l1.functions] == [key(f) for f in l2.functions] == [key(f) for f in l3.functions]
    for f1, f2, f3 in zip(l1.functions, l2.functions, l3.functions):
        for op in ("SSTORE", "LOG0", "LOG1", "LOG2", "LOG3", "LOG4", "CALL", "STATICCALL", "DELEGATECALL", "RETURN"):
            assert bool(f1.ops.get(op)) == bool(f2.ops.get(op)) == bool(f3.ops.get(op)), (cid, f1.selector, op)
        # level 3 counts the opcodes of every failing block it folds into a require; level 2 prints (and counts)
        # one of several identical halting blocks. The revert of the decoder's type validation (`require(arg0 ==
        # uint160(arg0))`) folds into the header at level 3, as level 2 folds the callvalue check's (its pcs map
        # to the header: `pcs` above is the same at every level)
        assert all(f3.ops.get(op, 0) >= k for op, k in f2.ops.items() if op != "REVERT"), \
            (cid, f2.selector, f2.ops, f3.ops)
    assert len(l3.tac()) <= len(l2.tac()) < len(l1.tac())


def test_name_arguments_names_the_calldata_words():
    from tacsol.lift.abi import Abi, name_arguments
    from tacsol.lift.rewrite import reread

    fn, values, _ = _lowered("A@0.8.26/opt200", "sub(uint256,uint256)")
    name_arguments(fn, values, Abi.of("uint256,uint256", "pure"))
    reread(fn, values)
    subs = [s for n in fn.ids for s in fn.body[n] if s.op == "SUB" and s.args[0][0] == "a"]
    assert subs and subs[0].args == [("a", 0), ("a", 1)]
    assert Abi.of("address,(uint256,bool),bytes,uint8[2]", "view").word_args() == {4: 0, 0x64: 2}
    assert Abi.of("address,uint256", "nonpayable").header("0xa9059cbb") == \
        "function 0xa9059cbb(arg0: address, arg1: uint256) nonpayable"
    # level 3 writes headers as Solidity does: no keyword for the default, non-payable
    assert Abi.of("address,uint256", "nonpayable").header("0xa9059cbb", level=3) == \
        "function 0xa9059cbb(arg0: address, arg1: uint256)"
    assert Abi.of("uint256", "view").header("0x2e1a7d4d", level=3) == "function 0x2e1a7d4d(arg0: uint256) view"


@pytest.mark.parametrize("cid", [i for i in IDS if i.startswith("A@")])
def test_fold_checks_folds_callvalue_and_short_calldata_into_the_header(cid, by_level):
    """Non-payable functions lose their callvalue check, every function its short-calldata check; receive()
    (payable) still reads callvalue, which it adds up."""
    res = by_level[2][cid]
    for f in res.functions:
        assert "calldatasize" not in f.tac, f.tac
        if f.mutability != "payable":
            assert "callvalue" not in f.tac, f.tac
    assert "callvalue" in res.function("fallback" if cid.startswith(("A@0.4", "A@0.5")) else "receive").tac


def test_level_3_prints_small_constants_in_decimal_and_masks_and_hashes_in_hex():
    # offsets, sizes, slots and shift counts read as Solidity writes them (`0x20` is three Llama-3 tokens, `32` one);
    # an all-ones mask reads as bits, a hash or an address as hex; levels 1 and 2 stay in hex
    from tacsol.lift.emit import const_text

    assert [const_text(v, True) for v in (0, 1, 4, 0x20, 0x40, 0x44, 0xE0, 0x100, 0xFFFE)] == \
        ["0", "1", "4", "32", "64", "68", "224", "256", "65534"]
    assert [const_text(v, True) for v in (0x1F, 0xFF, 0xFFFF, 0x10000, 2**160 - 1, 0xA9059CBB)] == \
        ["0x1f", "0xff", "0xffff", "0x10000", hex(2**160 - 1), "0xa9059cbb"]
    assert const_text(0x20) == "0x20" and const_text(0) == "0x0"


def test_level2_keeps_a_branch_on_a_constant():
    """A branch on a constant (an immutable variable reads zero in deployedBytecode) is code the source has: level 2
    keeps both sides and their effects (an earlier build dropped Chainlink's ArbSys call this way). Level 3 keeps
    them where the code may read an immutable (a PUSH32 of zero) and settles the branch where it cannot."""
    import test_lift_semantics as sem

    immutable = bytes([0x7F]) + bytes(32) + sem.asm(6 + 31, "JUMPI", "STOP")   # PUSH32 0: a placeholder
    for code, settled in ((immutable, False), (sem.asm(0, 6, "JUMPI", "STOP"), True)):
        code += bytes([0x5B]) + sem.asm(1, 0, "SSTORE", "STOP")
        for level in LEVELS:
            fb = lift(code, level=level).function("fallback")
            store = "sstore(0, 1)" if level == 3 else "sstore(0x0, 0x1)"   # level 3: small constants in decimal
            assert fb.ops.get("SSTORE") == 1, (level, fb.tac)   # the facts count the side that never runs too
            assert (store not in fb.tac) == (settled and level == 3), (level, fb.tac)


def test_fold_checks_settles_the_branch_and_prune_drops_the_revert():
    from tacsol.lift.abi import Abi, fold_checks
    from tacsol.lift.rewrite import definitions, prune

    fn, values, _ = _lowered("A@0.6.12/noopt", "setTotal(uint256)")
    fold_checks(fn, values, Abi.of("uint256", "nonpayable"), definitions(fn))
    prune(fn)
    assert fn.decided and fn.removed
    assert not any(s.op == "REVERT" for n in fn.ids if n not in fn.removed for s in fn.body[n])


def test_fold_casts_names_masks_and_drops_the_ones_that_change_nothing(by_level):
    from tacsol.lift.casts import fold_casts
    from tacsol.lift.rewrite import definitions

    fn, values, _ = _lowered("E@0.6.12/noopt", "setPacked(uint8,bool,address,uint16)")
    fold_casts(fn, values, definitions(fn))
    assert {"uint8", "uint160", "uint16", "bool"} <= set(_ops(fn))
    res = by_level[2]
    assert "uint8(arg0)" in _tac(res, "E@0.6.12/noopt", "setPacked(uint8,bool,address,uint16)")
    assert "int8(arg0)" in _tac(res, "E@0.6.12/noopt", "sdiv(int8,int8)")
    assert "bytes4(arg0)" in _tac(res, "E@0.6.12/noopt", "b4(bytes4)")
    move = _tac(res, "E@0.6.12/noopt", "move(address,uint256)")
    assert "mapping(0x2)[caller]" in move and "0xffffffffffffffffffffffffffffffffffffffff" not in move  # an address


def test_fold_negations_swaps_branches_instead_of_negating():
    from tacsol.lift.casts import fold_negations
    from tacsol.lift.rewrite import definitions

    fn, values, _ = _lowered("E@0.6.12/opt200", "move(address,uint256)")
    n = next(n for n in fn.ids if fn.graph.edges[n].kind == "jumpi")
    before, edges = values.condition(n), fn.graph.edges[n]
    assert definitions(fn)[before].op == "ISZERO"
    fold_negations(fn, values, definitions(fn))
    assert values.condition(n) == definitions(fn)[before].args[0]
    assert (fn.graph.edges[n].trues, fn.graph.edges[n].false) == ([edges.false], edges.trues[0])


def test_merge_storage_fields_reads_packed_fields_in_one_line(by_level):
    tac = _tac(by_level[2], "E@0.6.12/noopt", "getPacked()")
    for field in ("sload(0x0)[0:8]", "sload(0x0)[8:8]", "sload(0x0)[16:160]", "sload(0x0)[176:16]"):
        assert field in tac, tac


def test_fold_block_params_drops_parameters_that_carry_one_value():
    from tacsol.lift.phis import fold_block_params

    fn, values, _ = _lowered("E@0.6.12/noopt", "twoSubs(uint256,uint256)")
    count = lambda: sum(len(values.params(n)) for n in fn.ids if n not in fn.single)  # noqa: E731
    before = count()
    fold_block_params(fn, values)
    assert before >= 12 and count() <= 4   # two copy loops carried 6 values each, only their counter changes


def test_compaction_keeps_the_lifts_time_limit():
    """Level 2/3 passes raise TimeoutError past the deadline (lift turns it into a function's `timeout` status):
    fold_block_params, on a mutated runtime's long chains, ran 5 CPU s past a 2 s limit before it checked."""
    from tacsol.lift.abi import Abi
    from tacsol.lift.compact import compact
    from tacsol.lift.phis import fold_block_params

    fn, values, prog = _lowered("E@0.6.12/noopt", "twoSubs(uint256,uint256)")
    with pytest.raises(TimeoutError):
        fold_block_params(fn, values, deadline=0.0)
    fn, values, prog = _lowered("E@0.6.12/noopt", "twoSubs(uint256,uint256)")
    with pytest.raises(TimeoutError):
        compact(fn, values, prog, Abi.of("uint256,uint256", "nonpayable"), True, deadline=0.0)


def test_name_memory_recognises_slots_reverts_returns_and_logs(by_level):
    from tacsol.lift.memory import name_memory

    fn, values, prog = _lowered("E@0.6.12/noopt", "move(address,uint256)")
    name_memory(fn, prog.raw)
    assert {"mapping", "revert_msg", "log3", "return_words"} <= set(_ops(fn))
    res = by_level[2]
    move = _tac(res, "E@0.6.12/noopt", "move(address,uint256)")
    assert 'revert("E: insufficient balance for this move, sorry")' in move and 'revert("E: zero")' in move
    assert re.search(r"log3\(0x[0-9a-f]+, caller, v\d+; arg1\)", move) and "return (0x1)" in move
    assert "mapping(v2)[v1]" in _tac(res, "E@0.6.12/noopt", "approve2(address,uint256)")
    assert "array(0x4)" in _tac(res, "E@0.6.12/noopt", "push(uint256)")
    assert "revert 0xe8620800(v" in _tac(res, "E8@0.8.26/opt200", "take(uint256)")   # Insufficient(have, want)
    assert "revert 0xe3372e2d()" in _tac(res, "E8@0.8.26/opt200", "deny()")
    assert "panic(0x11)" in _tac(res, "E8@0.8.26/opt200", "add(uint256,uint256)")
    assert "panic(0x12)" in _tac(res, "E8@0.8.26/viair-opt200", "div(uint256,uint256)")


def test_name_memory_allocates_string_literals(by_level):
    """SafeMath-style messages: a string literal stored in freshly allocated memory (codecopy in 0.4-0.7, constant
    words in 0.8) is one memstring line."""
    for cid in ("E@0.4.26/noopt", "E@0.6.12/opt200", "E@0.8.26/opt200"):
        tac = _tac(by_level[2], cid, "twoSubs(uint256,uint256)")
        assert 'memstring("E: first")' in tac, (cid, tac)
        assert 'memstring("E: the second message is longer than thirty-two bytes")' in tac, cid


def test_inline_single_uses_writes_a_value_where_it_is_read(by_level):
    """A pure value read once later in its straight line is written at its use; one read twice keeps its line."""
    move = _tac(by_level[2], "E@0.6.12/opt200", "move(address,uint256)")
    assert "sstore(v4, v5 - arg1)" in move and "if arg1 > v3 goto b1 else b2" in move
    assert "v1 = uint160(arg0)" in move   # read by the check and by the second balance's slot


def test_fold_copy_loops_and_message_reverts(by_level, monkeypatch):
    """SafeMath's sub(a, b, message): the word-by-word copy of the message into the revert data is one copy(...)
    line, and the whole revert (selector, length, copy, cleared tail) is revert(p); a failed call's return data
    passed on is revert(returndata)."""
    import test_lift_semantics as sem
    from tacsol.lift import compact

    c = BY_ID["E@0.6.12/noopt"]
    sig = c["method_identifiers"]["twoSubs(uint256,uint256)"]
    f1 = _tac(by_level[2], "E@0.6.12/noopt", "twoSubs(uint256,uint256)").split("function f1")[1]
    assert "revert(arg2)" in f1 and "mload" not in f1 and f1.count("\n") == 6
    monkeypatch.setattr(compact, "name_message_reverts", lambda fn, code, clears=False: None)
    f1 = lift(c["runtime"], level=2).function(sig).tac.split("function f1")[1]
    assert re.search(r"copy\(.+, 0x20 \+ arg2, v\d+\)", f1) and " < " not in f1
    bubble = lift(sem.MEMORY_PROGRAMS["bubbled revert data"], level=2).function("fallback").tac
    assert bubble.endswith("revert(returndata)") and "returndatacopy" not in bubble


def test_a_graph_lowered_twice_lowers_the_same(monkeypatch):
    """A function's explored graph is lowered again when it is retried (small helpers as calls) or kept from
    counting call sites; level 3's passes fold loops and settle jumps in the FunctionIR's edges, which must not
    reach the shared graph: a copy loop folded in place left its head and body as a cycle of single-predecessor
    instances, and the next lowering of that graph resolved their values forever (a Chainlink contract hung)."""
    import test_lift_semantics as sem
    from tacsol.evaluate import compile_bytecode
    from tacsol.lift.abi import Abi
    from tacsol.lift.instances import explore

    out = compile_bytecode(sem.COPY_SRC.replace("VERSION", "0.8.6"), "0.8.6", optimize=True)["P"]
    raw = bytes.fromhex(out["bytecode"])
    info = evmole.contract_info(raw, selectors=True, control_flow_graph=True, metadata=True, arguments=True,
                                state_mutability=True)
    prog = Program(raw, info.metadata.bytecode_offset, info)
    prog.dispatcher_stacks(float("inf"))
    f = next(x for x in info.functions if "0x" + x.selector == out["selectors"]["h(bytes)"])
    graph = explore(prog, [f.bytecode_offset], precise=True)
    edges = list(graph.edges)
    texts = [render(prog, "h", [f.bytecode_offset], float("inf"), abi=Abi.of(f.arguments, f.state_mutability),
                    graph=graph, checks=True).tac for _ in range(2)]
    assert "return bytes(" in texts[0] and texts[0] == texts[1] and graph.edges == edges


def test_cli_level_option(capsys):
    from tacsol.cli import main

    c = BY_ID["A@0.8.26/opt200"]
    sel = "0x" + c["method_identifiers"]["sub(uint256,uint256)"]
    assert main(["lift", c["runtime"], "--selector", sel, "--level", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"function {sel}(arg0: uint256, arg1: uint256) view") and "return (" in out


def test_format_doc_level2_example_is_current_output():
    """docs/tac-format.md's level-2 example is real output, and its line and token counts are current."""
    from tacsol import tokens

    doc = (Path(__file__).parents[1] / "docs" / "tac-format.md").read_text()
    section = doc.split("## Level 2 (compact TAC)", 1)[1]
    example = section.split("```\n", 2)[1].rstrip("\n")
    c = BY_ID["E@0.6.12/opt200"]
    sel = c["method_identifiers"]["move(address,uint256)"]
    assert lift(c["runtime"], level=2).function(sel).tac == example
    count = tokens.tokenizer_for("llama3").count
    got = [(len(t.splitlines()), count(t)) for t in (lift(c["runtime"], level=lv).function(sel).tac for lv in (1, 2))]
    m = re.search(r"\(level 1: (\d+) lines, ([\d,]+) Llama-3 tokens; level 2: (\d+) lines, ([\d,]+) tokens\)", section)
    assert [(int(m.group(1)), int(m.group(2).replace(",", ""))), (int(m.group(3)), int(m.group(4).replace(",", "")))] \
        == got


def test_find_callees_finds_a_function_called_from_two_places():
    """E.twoSubs calls _sub(a, b, message) twice: one internal function with 3 argument words and 1 result; each
    of its call sites returns to its own address."""
    from tacsol.lift.functions import find_callees

    for cid in ("E@0.4.26/noopt", "E@0.6.12/opt200", "E@0.8.26/noopt"):
        c = BY_ID[cid]
        raw = bytes.fromhex(c["runtime"])
        info = evmole.contract_info(raw, selectors=True, control_flow_graph=True, metadata=True)
        prog = Program(raw, info.metadata.bytecode_offset, info)
        callees, _, _ = find_callees(prog, [f.bytecode_offset for f in info.functions], float("inf"))
        assert [(f.fid, f.args, f.results, f.returns) for f in callees.values()] == [(1, 3, 1, True)], cid


def test_internal_functions_are_called_and_printed_once(by_level):
    """An example carries the unit of each internal function it calls twice or more; one called once stays inline
    (A.useHelper1 calls _helper once); the contract's text prints each unit once."""
    cid = "E@0.6.12/noopt"
    tac = _tac(by_level[2], cid, "twoSubs(uint256,uint256)")
    assert len(re.findall(r"v\d+ = icall f1\(arg\d, arg\d, v\d+\)", tac)) == 2
    assert tac.count("\n\nfunction f1(arg0, arg1, arg2) internal\n") == 1 and "ret(" in tac
    assert "icall" not in _tac(by_level[2], "A@0.6.12/noopt", "useHelper1(uint256)")
    assert by_level[2][cid].tac().count("function f1(") == 1


def test_a_long_example_carries_its_callees_as_effect_summaries():
    """Past lift's callee_budget a callee's unit is printed as its header and its effects (lift.functions.summarize);
    the function's own unit stays whole, each line still maps to instructions, and the contract's text prints the
    unit in full where another example carries it so."""
    c = BY_ID["E@0.6.12/noopt"]
    sel = c["method_identifiers"]["twoSubs(uint256,uint256)"]
    full = lift(c["runtime"], level=2).function(sel)
    own = full.tac.split("\n\nfunction f")[0]
    assert lift(c["runtime"], level=2, callee_budget=len(full.tac)).function(sel).tac == full.tac
    with pytest.raises(ValueError, match="callee_budget"):
        lift(c["runtime"], level=2, callee_budget=-1)
    res = lift(c["runtime"], level=2, callee_budget=len(own) + 10)
    short = res.function(sel)
    assert short.tac.startswith(own + "\n\nfunction f1(arg0, arg1, arg2) internal  // summary of ")
    assert len(short.tac) < len(full.tac) and short.status == "ok"
    assert len(short.line_pcs) == len(short.tac.split("\n")) and all(short.line_pcs[len(own.split("\n")) + 1:])
    summary = short.tac.split("\n\n")[1].split("\n")
    assert summary[-1] == "  returns 1" and any(line.startswith("  halts ") for line in summary), summary
    from tacsol.lift import LiftedContract, LiftedFunction

    both = LiftedContract([LiftedFunction("0x1", short.tac, 0, 0, {}, "ok", "", ""),
                           LiftedFunction("0x2", full.tac.replace(own, "function 0x2() view"), 0, 0, {}, "ok", "", "")])
    text = both.tac()
    assert text.count("function f1(") == 1 and "// summary" not in text and "ret(" in text


def test_summarize_lists_each_effect_once_by_slot_selector_topic_and_message():
    from tacsol.lift.functions import summarize

    tac = "\n".join([
        "function f3(arg0, arg1) internal",
        "b0:",
        "  v1 = mapping(0x2)[arg0]",
        "  v2 = sload(v1)",
        "  if arg1 > v2 goto b1 else b2",
        "b1:",
        '  revert("low")',
        "b2:",
        "  sstore(v1, v2 - arg1)",
        "  v3 = sload(0x5)[0:160]",
        "  v4 = call(gas(), v3, 0x0, 0xa9059cbb(arg0, arg1), v5, 0x20)",
        "  v6 = icall f4(v4)",
        "  log3(0xddf252ad, caller, arg0; arg1)",
        "  sstore(0x5, v6)",
        "  ret(v6, addmod(v2, v3, 0x7))",
    ])
    text, pcs = summarize(tac, [(i,) for i in range(len(tac.split("\n")))])
    assert text.split("\n") == [
        "function f3(arg0, arg1) internal  // summary of 14 lines",
        "  reads mapping(0x2), 0x5",
        "  writes mapping(0x2), 0x5",
        "  calls call 0xa9059cbb, f4",
        "  logs log3 0xddf252ad",
        '  halts revert("low")',
        "  returns 2",
    ]
    assert pcs[1] == (3, 9) and pcs[2] == (8, 13) and pcs[-1] == (14,)


def test_summarize_lists_a_string_write_as_a_read_and_a_write_of_its_slot():
    """Level 3's `storagestring(s) = p` reads the slot's old word and writes the slot (and its data words)."""
    from tacsol.lift.functions import summarize

    tac = "function f2(arg0) internal\nb0:\n  v1 = mapping(0x4)[arg0]\n  checked storagestring(v1) = arg0\n  ret()"
    text, _ = summarize(tac, [(i,) for i in range(5)])
    assert text.split("\n")[1:3] == ["  reads mapping(0x4)", "  writes mapping(0x4)"]


def test_summarize_names_a_slot_computed_in_place_by_its_mapping_base():
    """Level 3 prints a mapping slot in place, nested mappings inside it; the summary still lists the write, by the
    innermost base (before, the slot's parentheses hid it and the write was not listed at all)."""
    from tacsol.lift.functions import summarize

    tac = "\n".join(["function f2(arg0, arg1) internal", "b0:",
                     "  v9 = sload(mapping(0x2)[uint160(arg0)])",
                     "  sstore(mapping(mapping(0x65)[mload(32 + (v5 + arg1))])[arg0], v9)",
                     "  sstore(mapping(0x2)[uint160(arg0)])[0:160] = arg1", "  ret()"])
    text, pcs = summarize(tac, [(i,) for i in range(6)])
    assert text.split("\n")[1:3] == ["  reads mapping(0x2)", "  writes mapping(0x65), mapping(0x2)"]
    assert pcs[2] == (3, 4)


def test_effects_of_a_summarized_callee_are_those_of_its_full_unit():
    """lift.functions.effects reads an example's effects from its lines and from its callees' summaries: each kind
    a callee shows in full is listed when the callee is summarized (every level-2/3 fixture at callee_budget 0)."""
    from tacsol.lift.functions import effects

    summarized = 0
    for c in json.loads((ROOT / "tests" / "fixtures" / "lift" / "level2.json").read_text()):
        full, short = lift(c["runtime"], level=3), lift(c["runtime"], level=3, callee_budget=0)
        for fn in full.functions:
            s = short.function(fn.selector).tac
            summarized += "// summary of" in s
            a, b = effects(fn.tac), effects(s)
            assert {k for k in a if a[k]} == {k for k in b if b[k]}, (c["id"], fn.selector)
            assert {k: set(v) for k, v in a.items() if k != "calls"} == {k: set(v) for k, v in b.items() if k != "calls"}
    assert summarized >= 10
    example = "\n".join(["function 0x1() nonpayable", "b0:", "  v1 = icall f2(0x80)", "  stop", "",
                         "function f2(arg0) internal  // summary of 40 lines", "  reads 0x5, mapping(0x2)",
                         "  writes 0x5", "  calls call 0xa9059cbb, f3, staticcall",
                         "  logs log3 0xddf252ad, log1", '  halts revert("a, b"), panic(0x11)', "  returns 1"])
    got = effects(example)
    assert got["calls"] == ["f2", "call 0xa9059cbb", "f3", "staticcall"]
    assert got["writes"] == ["0x5"] and got["logs"] == ["log3 0xddf252ad", "log1"]
    assert got["halts"] == ['revert("a, b")', "panic(0x11)"] and got["reads"] == ["0x5", "mapping(0x2)"]


def test_merge_common_reuses_a_dominating_computation():
    """calldataload(0x20) twice (tests/test_lift_semantics.py's aliasing-store program) reads it once; a value
    computed on one branch only is not reused on the other."""
    import test_lift_semantics as sem
    from tacsol.lift.cse import dominator_tree

    tac = lift(sem.MEMORY_PROGRAMS["aliasing store"], level=2).function("fallback").tac
    assert tac.count("calldataload(0x20)") == 1, tac
    fn, _, _ = _lowered("E@0.6.12/opt200", "move(address,uint256)")
    tree = dominator_tree(fn)
    assert tree[-1] == fn.entries and sum(len(c) for c in tree.values()) == len(fn.ids)
    branch = next(n for n in fn.ids if fn.graph.edges[n].kind == "jumpi")
    e = fn.graph.edges[branch]
    assert e.false not in tree.get(e.trues[0], []) and e.trues[0] not in tree.get(e.false, [])


def test_phase_clock_times_each_phase_and_restores_the_lifter():
    """tools/bench_production.py --phases: CPU seconds per phase of a lift (the internal-function search, each
    compaction pass, ...), by wrapping the lifter's module attributes; the lifter is the same object afterwards and
    lifts the same TAC as without the clock."""
    sys.path.insert(0, str(ROOT / "tools"))
    import bench_production as B

    from tacsol.lift import compact as CP, contract as C, render as R

    saved = (C.find_callees, R.compact, R.emit, CP.name_memory)
    code = FIX[0]["runtime"]
    plain = lift(code, level=3)
    with B.PhaseClock() as pc:
        timed = lift(code, level=3)
        assert R.emit is not saved[2]
    assert (C.find_callees, R.compact, R.emit, CP.name_memory) == saved
    assert [f.tac for f in timed.functions] == [f.tac for f in plain.functions]
    n = len([f for f in plain.functions if f.status != "unsupported"])
    assert pc.calls["emit"] >= n and pc.calls["compact (level >= 2): all passes"] >= n
    assert pc.calls["find_callees (level >= 2)"] == 1 and pc.calls["evmole.contract_info"] == 1
    assert pc.calls["compact: name_memory"] == pc.calls["compact (level >= 2): all passes"]
    assert all(s >= 0 for s in pc.seconds.values())
    assert pc.seconds["compact: name_memory"] <= pc.seconds["compact (level >= 2): all passes"]
