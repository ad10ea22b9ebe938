"""tacsol.evaluate: metrics on hand-made pairs with known answers, the objective checks, aggregates, bad input."""
import json
from pathlib import Path

import numpy as np
import pytest

from tacsol import corpus, evaluate, evm
from tacsol.evaluate import solidity as sol

FIXTURE = Path(__file__).parent / "fixtures" / "eval" / "records.jsonl"

TRANSFER = """function transfer(address to, uint256 amount) public returns (bool) {
    require(balances[msg.sender] >= amount, "balance");
    balances[msg.sender] -= amount;
    balances[to] += amount;
    emit Transfer(msg.sender, to, amount);
    return true;
}"""
RENAMED = TRANSFER.replace("amount", "value")
UNRELATED = """function getReserves() public view returns (uint112 r0, uint112 r1, uint32 ts) {
    r0 = reserve0;
    r1 = reserve1;
    ts = blockTimestampLast;
}"""
DECL = """mapping(address => uint256) balances;
uint112 reserve0; uint112 reserve1; uint32 blockTimestampLast;
event Transfer(address indexed from, address indexed to, uint256 value);"""


@pytest.fixture(scope="module")
def records():
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def embedder():
    return evaluate.get_embedder()


def test_similarity_and_distance_known_pairs(embedder):
    sims = embedder.similarity([TRANSFER, RENAMED, UNRELATED], [TRANSFER, TRANSFER, TRANSFER])
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert evaluate.edit_distance(TRANSFER, TRANSFER) == 0.0
    assert sims[1] > 0.9
    assert evaluate.edit_distance(RENAMED, TRANSFER) < 0.15
    assert sims[2] < 0.6 and sims[2] < sims[1] - 0.3
    assert evaluate.edit_distance(UNRELATED, TRANSFER) > 0.6
    assert embedder.describe()["embedder"] == evaluate.DEFAULT_EMBEDDER


def test_edit_distance_collapses_whitespace_and_length_diff():
    assert evaluate.edit_distance("a  b\n\n c", "a b c") == 0.0
    assert evaluate.edit_distance("abcd", "abce") == pytest.approx(0.25)
    assert evaluate.edit_distance("", "") == 0.0
    assert evaluate.edit_distance("", "abc") == 1.0
    assert evaluate.length_diff("x" * 30, "y" * 20) == 10


def test_construct_counts():
    c = evaluate.construct_counts(TRANSFER)
    assert c["function"] == 1 and c["require"] == 1 and c["msg.sender"] == 3 and c["emit"] == 1
    assert c["uint256"] == 1 and c["address"] == 1 and c["mapping"] == 0
    f = evaluate.construct_frequencies([TRANSFER, TRANSFER])
    assert f["require"] == pytest.approx(1000 * 2 / (2 * len(TRANSFER)))


def test_selector_known_signatures():
    fn = evaluate.find_function("// leading prose\n```solidity\n" + TRANSFER.replace("uint256", "uint") + "\n```")
    assert evaluate.canonical_signature(fn) == "transfer(address,uint256)"
    assert evm.selector(evaluate.canonical_signature(fn)) == "0xa9059cbb"
    # public state variables: the getter solc generates (mapping keys and array indexes become parameters)
    getter = evaluate.find_function("mapping(address => mapping(address => uint256)) public allowance;")
    assert getter.kind == "getter" and evaluate.canonical_signature(getter) == "allowance(address,address)"
    assert evaluate.canonical_signature(evaluate.find_function('string public constant NAME = "x";')) == "NAME()"


def test_selector_matches_solc_for_structs_enums_arrays_contracts():
    src = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;
interface IToken { function x() external; }
contract C {
    struct P { uint a; address[] b; bytes32 c; }
    enum E { A, B }
    function f(P memory p, E e, IToken t, uint[3] calldata xs, bytes calldata data, address payable to) external {}
    function g(P[] calldata ps, int i, string memory s) public pure returns (uint) { return 1; }
}"""
    out = evaluate.compile_bytecode(src, "0.8.19")["C"]
    decl = sol.parse_declarations(sol.contract_body(src, "C"))
    for name in ("f", "g"):
        fn = evaluate.find_function(src.split("}\n", 2)[-1], name=name)
        sig = evaluate.canonical_signature(fn, decl)
        assert out["selectors"][sig] == evm.selector(sig), sig


def test_compile_check_valid_and_invalid():
    units = [("good", "0.8.20", evaluate.build_stub(TRANSFER, "0.8.20", DECL)),
             ("undeclared", "0.8.20", evaluate.build_stub(TRANSFER.replace("balances[to]", "balancez[to]"),
                                                           "0.8.20", DECL)),
             ("syntax", "0.8.20", evaluate.build_stub(TRANSFER.replace("-= amount;", "-= amount"), "0.8.20", DECL)),
             ("old", "0.4.24", evaluate.build_stub(TRANSFER, "0.4.24", DECL))]
    res = evaluate.compile_many(units)
    assert res["good"].ok and res["good"].version == "0.8.20"
    assert not res["undeclared"].ok and res["undeclared"].status == "declaration_error"
    assert not res["syntax"].ok and res["syntax"].status == "parser_error"
    assert res["old"].ok and res["old"].version == "0.4.24"
    assert corpus.nearest_installed("0.3.0") is None


def test_grounding_against_handmade_tac():
    tac = ("block_0x0:\n  v1 = calldataload(0x4)\n  sstore(0x0, v1)\n  log1(0x80, 0x20, 0xabc)\n"
           "  if v1 goto block_0x2 else block_0x1\nblock_0x1:\n  revert(0x0, 0x0)\nblock_0x2:\n  stop\n")
    assert sol.tac_effects(tac) == {"event": 1, "storage_write": 1, "external_call": 0, "revert": 1}
    # level 3: a whole string written, a panic, a custom error; a callee's summary lists what it does
    l3 = ("function 0x1(arg0: string) nonpayable\nb0:\n  masked storagestring(0xd) = calldata(4 + arg0)\n"
          "  if arg0 goto b1 else b2\nb1:\n  panic(0x11)\nb2:\n  revert 0x1f2a2005(arg0)\n\n"
          "function f2(arg0) internal  // summary of 30 lines\n  writes mapping(0x3)\n  calls f4, call 0xa9059cbb\n"
          "  logs log3 0xddf252ad\n  halts revert(\"x\")\n  returns 1")
    assert sol.tac_effects(l3) == {"event": 1, "storage_write": 2, "external_call": 1, "revert": 3}
    assert sol.tac_effects("  v1 = storagestring(0xd)\n  checked storagestring(0xd)") == \
        {"event": 0, "storage_write": 0, "external_call": 0, "revert": 0}   # reads, not writes
    out = """function set(uint256 v) external {
        uint256 local = v + 1;
        value = local;
        emit Set(v);
        IOracle(oracle).poke(v);
        payable(msg.sender).transfer(1);
    }"""
    eff = sol.code_effects(out)
    assert eff["storage_write"] == 1 and eff["event"] == 1 and eff["external_call"] == 2
    import pandas as pd

    row = {f"tac_{k}": v for k, v in sol.tac_effects(tac).items()} | {f"out_{k}": v for k, v in eff.items()}
    g = evaluate.grounding(pd.DataFrame([row]))
    # event and storage write grounded; the external call is a hallucination (the TAC has no CALL)
    assert g["precision"] == pytest.approx(2 / 3) and g["recall"] == 1.0
    assert g["external_call"]["fp"] == 1 and g["functions_with_hallucinated_effect"] == 1


def test_bootstrap_interval_contains_mean():
    x = np.random.default_rng(1).normal(0.7, 0.1, 300)
    lo, hi = evaluate.bootstrap_ci(x, "mean", n_boot=500)
    assert lo < x.mean() < hi and hi - lo < 0.05
    d = evaluate.describe(x, n_boot=500)
    assert d["median_ci_low"] <= d["median"] <= d["median_ci_high"]


def test_evaluate_run_outputs_and_bad_input(records, embedder, tmp_path):
    gens = {r["id"]: r["solidity"] for r in records}
    ids = [r["id"] for r in records]
    gens[ids[0]] = records[0]["solidity"].replace("amount", "value")   # renamed variable
    gens[ids[1]] = "   "                                                 # empty
    gens[ids[2]] = b"function balanceOf(address a) public view returns (uint256) { return 1; }\xff"  # not UTF-8
    gens[ids[3]] = "this is not solidity at all"                         # does not parse
    gens[ids[4]] = ("function mint(address to, uint256 amount) public { _balances[to] += amount; "
                    "IERC20(owner).transfer(to, 1); }")                  # hallucinated call, undeclared IERC20
    del gens[ids[5]]                                                     # missing
    s = evaluate.evaluate_run(records, gens, tmp_path, n_boot=200)
    eval_dir = tmp_path / "eval"
    import pandas as pd

    df = pd.read_parquet(eval_dir / "functions.parquet")
    assert len(df) == len(records)  # nothing dropped
    assert list(df.columns) == evaluate.TABLE_COLUMNS
    fails = s["aggregates"]["failures"]["by_reason"]
    assert fails == {"empty": 1, "non_utf8": 1, "unparsable:no_function": 1, "missing": 1}
    assert s["metrics"]["failures"] == 4
    by_id = df.set_index("id")
    identical = by_id.loc[ids[6]]
    assert identical["similarity"] == pytest.approx(1, abs=1e-5) and identical["edit_distance"] == 0
    assert identical["compiles"] and identical["selector_match"] and identical["ref_compiles"]
    assert by_id.loc[ids[0], "similarity"] > 0.9 and by_id.loc[ids[0], "selector_match"]
    assert not by_id.loc[ids[4], "compiles"] and by_id.loc[ids[4], "compile_status"] == "declaration_error"
    assert by_id.loc[ids[4], "out_external_call"] >= 1 and by_id.loc[ids[4], "tac_external_call"] == 0
    m = s["metrics"]
    assert m["selector_match_rate"] == pytest.approx(10 / 14)
    assert m["compile_rate"] == pytest.approx(9 / 14)
    assert 0 < m["similarity_floor"] < m["similarity_ceiling"] < 1
    assert m["similarity_ci_low"] <= m["similarity_mean"] <= m["similarity_ci_high"]
    assert s["embedder"]["embedder"] == evaluate.DEFAULT_EMBEDDER
    assert set(s["timings_s"]) >= {"compile_s", "similarity_s", "total_s"}
    saved = json.loads((eval_dir / "summary.json").read_text())
    assert saved["metrics"] == json.loads(json.dumps(m))
    assert len(list((eval_dir / "figures").glob("*.png"))) == 7


def test_empty_split_reports_zero_functions(embedder, tmp_path):
    s = evaluate.evaluate_run([], {}, tmp_path, embedder=embedder)
    assert s["metrics"]["n_functions"] == 0 and s["metrics"]["similarity_mean"] is None
    assert (tmp_path / "eval" / "functions.parquet").exists()


def test_read_generations_marks_non_utf8(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_bytes(b'{"id": "a", "generated": "function f() public {}"}\n'
                  b'{"id": "b", "generated": "function g() public { x = 1; }\xff"}\n')
    g = evaluate.read_generations(p)
    assert evaluate.normalize_generation(g["a"]) == ("function f() public {}", "")
    assert evaluate.normalize_generation(g["b"])[1] == "non_utf8"
    p.write_text('{"id": "a"}\n')
    with pytest.raises(ValueError, match="g.jsonl: line 1"):
        evaluate.read_generations(p)


def test_cli_scores_a_generations_file(records, embedder, tmp_path):
    pairs = pytest.importorskip("tacsol.pairs")
    cols = set(pairs.COLUMNS)
    ds_dir = tmp_path / "ds"
    ds_dir.mkdir()
    for split in ("train", "validation", "test"):
        rows = [{k: v for k, v in r.items() if k in cols} for r in records if r["split"] == split]
        (ds_dir / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    test = [r for r in records if r["split"] == "test"]
    gen = tmp_path / "gen.jsonl"
    gen.write_text("".join(json.dumps({"id": r["id"], "generated": r["solidity"]}) + "\n" for r in test))
    from tacsol import cli

    rc = cli.main(["evaluate", str(gen), "--dataset", str(ds_dir), "--out", str(tmp_path / "run"),
                   "--no-figures", "--bootstrap", "100"])
    assert rc == 0
    s = json.loads((tmp_path / "run" / "eval" / "summary.json").read_text())
    assert s["metrics"]["n_functions"] == len(test) and s["metrics"]["similarity_mean"] == pytest.approx(1, abs=1e-5)


def test_compile_in_original_unit_on_sample():
    """The generated function in place of the original inside its package's compile unit (inherited names,
    imports and libraries present): the reference compiles, a use of an undeclared name does not."""
    from tacsol import pairs

    test = pairs.load("sample")["test"]
    units = evaluate.OriginalUnits(fetch=False)  # tests never download: needs the package in the npm cache
    recs = [r for r in test if "{" in r["solidity"] and units.sources(r) is not None][:4]
    if not recs:
        pytest.skip("sample package not in outputs/cache/npm (run `tacsol data build` once)")
    for r in recs:  # the first record whose own unit compiles in place (a few sample units need stubs)
        gens = {r["id"]: r["solidity"].replace("{", "{ tacsolUndeclaredName = 1;", 1)}
        df = evaluate.score([r, {**r, "id": "same"}], {**gens, "same": r["solidity"]}, embedder=None,
                            compile_mode="auto").set_index("id")
        if (df["compile_unit"] == "original").all():
            break
    assert (df["compile_unit"] == "original").all() and df["ref_compiles"].all()
    assert df.loc["same", "compiles"] and df.loc["same", "compile_status"] == "ok"
    assert not df.loc[r["id"], "compiles"] and df.loc[r["id"], "compile_status"] == "declaration_error"


def test_checkpoint_tokens_count_the_steps_after_the_last_logged_interval():
    """The final adapter's point of a learning curve has seen every training token, also when the run ended between
    two logging intervals (144 steps logged every 5: steps 141-144 are in no curve point)."""
    from tacsol.evaluate import suite

    log = {"steps": 144, "train_tokens": 450679,
           "curve": [{"step": s, "tokens": 100} for s in range(5, 145, 5)]}
    assert suite.checkpoint_tokens(log, 70) == 1400
    assert suite.checkpoint_tokens(log, 140) == 2800
    assert suite.checkpoint_tokens(log, 144) == 450679
    assert suite.checkpoint_tokens({"curve": log["curve"]}, 144) == 2800   # a log without totals: the curve's
