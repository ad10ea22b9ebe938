"""Profiling computations (tacsol.profile): coverage and max_seq_length on hand-made distributions, entropy on known
distributions, lexers, the full-sequence count against the training tokenization itself, leakage, bad input."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tacsol import claims
from tacsol import profile as PR

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "profile" / "pairs.jsonl"
MODELS = ["meta-llama/Llama-3.2-3B", "Qwen/Qwen2.5-Coder-32B", "smollm2"]
# 100 sequences: 50 × 100, 30 × 3,000, 15 × 5,000, 4 × 10,000, 1 × 30,000 tokens
HAND = [100] * 50 + [3000] * 30 + [5000] * 15 + [10000] * 4 + [30000]


@pytest.fixture(scope="module")
def df():
    return PR.load_pairs(FIXTURE)


def test_coverage_on_hand_made_distribution():
    assert PR.coverage(HAND) == {2048: 0.5, 4096: 0.8, 8192: 0.95, 16384: 0.99, 20000: 0.99}
    assert PR.coverage([4096, 4097], (4096,)) == {4096: 0.5}  # "fits" means ≤


@pytest.mark.parametrize("target,expected,cov", [(0.5, 128, 0.5), (0.8, 3008, 0.8), (0.95, 5056, 0.95),
                                                 (0.99, 10048, 0.99), (0.96, 10048, 0.99), (1.0, 30016, 1.0)])
def test_recommended_max_seq_length(target, expected, cov):
    r = PR.recommend_max_seq_length(np.random.default_rng(0).permutation(HAND), target)
    assert r["max_seq_length"] == expected and r["max_seq_length"] % 64 == 0
    assert r["coverage"] == pytest.approx(cov) and r["coverage"] >= target and not r["capped"]


def test_recommended_max_seq_length_cap_and_errors():
    r = PR.recommend_max_seq_length(HAND, 1.0, cap=16384)
    assert r == {"max_seq_length": 16384, "coverage": 0.99, "quantile_length": 30000, "target": 1.0, "capped": True}
    assert PR.recommend_max_seq_length([1000], 0.99, multiple_of=1)["max_seq_length"] == 1000
    with pytest.raises(PR.ProfileError, match="coverage target"):
        PR.recommend_max_seq_length(HAND, 1.5)
    with pytest.raises(PR.ProfileError, match="empty"):
        PR.recommend_max_seq_length([], 0.99)


def test_entropy_known_distributions():
    assert PR.shannon_entropy(list("abcdefgh") * 5) == pytest.approx(3.0)   # uniform over 8 symbols
    assert PR.shannon_entropy({"a": 2, "b": 1, "c": 1}) == pytest.approx(1.5)
    assert PR.shannon_entropy(["x"] * 10) == 0.0 and PR.shannon_entropy([]) == 0.0


def test_solidity_lexer():
    src = 'function f(uint a) public { // note\n  require(a >= 0x1F, "bad // x"); a **= 2; /* c */ x >>>= 1; }'
    assert PR.solidity_lex(src) == ["function", "f", "(", "uint", "a", ")", "public", "{", "require", "(", "a", ">=",
                                    "0x1F", ",", '"bad // x"', ")", ";", "a", "**", "=", "2", ";", "x", ">>>=", "1",
                                    ";", "}"]
    assert PR.solidity_lex("uint256 x = y + 1;", kinds=True) == ["uint256", "IDENT", "=", "IDENT", "+", "NUMBER", ";"]


def test_tac_operations_on_lifter_rendering():
    tac = ("function 0x1f8d1d50(uint256) nonpayable\nblock_0x172:\n  v1 = iszero(callvalue)\n"
           "  if v1 goto b2 else block_0x17a\nb2(v2, v9):\n  sstore(0x0, v2)\n"
           "  v3 = 0xff & caller\n  v4 = v2 << 0x3\n  v5 = ~v4\n  v6 = v5\n  v7 = keccak256(v6, 0x20)\n"
           "  log2(v6, v7, 0xfd)\n  goto b3(v7, 0x1)\nb3:\n  invalid_0xfe\nblock_0x19d:\n  stop")
    assert PR.tac_operations(tac) == ["ISZERO", "JUMPI", "SSTORE", "AND", "SHL", "NOT", "ASSIGN", "SHA3", "LOG2",
                                      "JUMP", "INVALID", "STOP"]
    assert PR.complexity_bucket({"tac": tac}) == "1-tiny"  # 12 instructions, 4 blocks, counted from the text
    assert PR.tac_operations("function 0x1() view\nb0:\n  checked staticcall(v1, 0x12345678(), v2, 32)\n"
                             "  v3 = checked(v1 + 1)\n  stop") == ["STATICCALL", "CHECKED", "STOP"]


def test_bytecode_opcodes_cut_metadata():
    assert PR.bytecode_opcodes("0x6080604052348015600f57600080fd5b50")[:4] == ["PUSH1", "PUSH1", "MSTORE", "CALLVALUE"]


@pytest.mark.parametrize("instr,blocks,bucket", [(25, 4, "1-tiny"), (26, 1, "2-small"), (10, 13, "3-medium"),
                                                 (200, 30, "3-medium"), (501, 1, "5-huge"), (300, 81, "5-huge")])
def test_complexity_bucket_edges(instr, blocks, bucket):
    assert PR.complexity_bucket({"tac_instructions": instr, "tac_blocks": blocks}) == bucket
    frame = pd.DataFrame({"tac_instructions": [instr], "tac_blocks": [blocks]})
    assert PR.complexity_buckets(frame).tolist() == [bucket]


def test_full_sequence_count_equals_training_tokenization(df):
    """measure()'s smollm2:full equals len(input_ids) of tacsol.prompt.tokenize_example with the tokenizer training
    loads (tacsol.loading.load_tokenizer: markers added as special tokens, EOS appended), and llama3 adds exactly
    one BOS."""
    from tacsol import loading, prompt

    tok = loading.load_tokenizer("embedded:smollm2-135m")
    sub = df.iloc[::25].reset_index(drop=True)
    lengths = PR.measure(sub, ["smollm2", "meta-llama/Llama-3.2-3B"])
    want = [len(prompt.tokenize_example(r, tok)["input_ids"]) for r in sub.to_dict("records")]
    assert lengths["smollm2:full"].tolist() == want
    sol = [len(tok(prompt.build_target(r), add_special_tokens=False)["input_ids"]) for r in sub.to_dict("records")]
    assert lengths["smollm2:sol"].tolist() == sol
    assert (lengths["smollm2:tac"] < lengths["smollm2:prompt"]).all()
    assert (lengths["full_chars"] > lengths["tac_chars"] + lengths["sol_chars"]).all()


def test_profile_on_fixture(df):
    r = PR.profile(df, MODELS, coverage_target=0.99)
    for m in MODELS:
        rec = r["recommended"][m]
        assert rec["coverage"] >= 0.99 and rec["max_seq_length"] % 64 == 0
        assert 1 < r["chars_per_token"][m] < 6
    assert r["hygiene"]["leaked_bodies"] == 0
    assert set(r["composition"]["by"]) == {"package", "solc_version", "optimizer", "visibility", "mutability",
                                           "complexity"}
    assert r["composition"]["by"]["complexity"]["total"].sum() == len(df)


def test_leakage_check_detects_planted_leak(df):
    assert PR.hygiene(df)["leaked_bodies"] == 0
    src = df[df["split"] == "train"].iloc[0].copy()
    # same body, different comments and whitespace, on the test side: normalization must catch it
    src["solidity"] = "// copied\n" + src["solidity"].replace(" ", "  ") + "\n"
    src["split"], src["id"] = "test", "planted-leak"
    h = PR.hygiene(pd.concat([df, src.to_frame().T], ignore_index=True))
    assert h["leaked_bodies"] == 1 and h["leaked_rows"] >= 2
    assert any(r["id"] == "planted-leak" and r["split"] == "test" for r in h["leak_examples"][0]["rows"])


def test_training_and_profiling_count_the_same_smollm2_tokens():
    """Issue 15: training tokenized with the GGUF's tokenizer as transformers converts it (no digit split), profiling
    with the digit split restored, so "a  1" was 4 tokens to one and 3 to the other. Both now come from one converter:
    equal counts on every prompt+target of the shipped sample, and on records with whitespace runs before digits."""
    from tacsol import loading, prompt

    tok = loading.load_tokenizer("embedded:smollm2-135m")
    df = PR.load_pairs("sample")
    digits = df.head(4).assign(solidity=lambda d: d["solidity"] + "\n    uint256[2] memory a = [\n        1,\n        2];",
                               tac=lambda d: d["tac"] + "\n  v9 =  0x20", id=lambda d: d["id"] + "-digits")
    both = pd.concat([df, digits], ignore_index=True)
    lengths = PR.measure(both, ["smollm2"])
    assert lengths["smollm2:full"].tolist() == [len(prompt.tokenize_example(r, tok)["input_ids"])
                                                for r in both.to_dict("records")]


def test_max_seq_length_for_reads_summary(tmp_path):
    doc = {"max_seq_length": {"meta-llama/Llama-3.2-3B": 1024}, "max_seq_length_by_family": {"qwen2.5": 2048}}
    p = tmp_path / "summary.json"
    p.write_text(json.dumps(doc))
    assert PR.max_seq_length_for(p, "meta-llama/Llama-3.2-3B") == 1024
    assert PR.max_seq_length_for(doc, "Qwen/Qwen2.5-Coder-7B") == 2048
    with pytest.raises(KeyError, match="Llama-3.1-8B"):
        PR.max_seq_length_for(doc, "meta-llama/Llama-3.1-8B")


# ---------------------------------------------------------------------------------------------- bad input
def test_empty_dataset_is_refused():
    import datasets

    with pytest.raises(PR.ProfileError, match="empty: 0 rows"):
        PR.load_pairs(pd.DataFrame(columns=["tac", "solidity", "split"]))
    empty = datasets.DatasetDict({s: datasets.Dataset.from_dict({"tac": [], "solidity": []}) for s in PR.SPLITS})
    with pytest.raises(PR.ProfileError, match=r"empty: 0 rows \(train=0, validation=0, test=0\)"):
        PR.load_pairs(empty)


def test_missing_column_is_named():
    with pytest.raises(PR.ProfileError, match=r"missing column\(s\) 'solidity'"):
        PR.load_pairs([{"id": "a", "tac": "  v1 = sload(0x0)"}])


def test_non_utf8_text_names_column_and_row(df, tmp_path):
    rows = df.head(5).to_dict("records")
    rows[3]["tac"] = b"  v1 = sload(0x0)\xff"
    with pytest.raises(PR.ProfileError, match=rf"column 'tac', row 3 \(id '{rows[3]['id']}'\): not valid UTF-8 \(byte 0xff"):
        PR.load_pairs(rows)
    rows[3]["tac"] = b"\xffabc".decode("utf-8", "surrogateescape")  # undecodable byte smuggled into a str
    with pytest.raises(PR.ProfileError, match=r"column 'tac', row 3 .*not valid UTF-8"):
        PR.load_pairs(rows)
    rows[3]["tac"] = "ok"
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_bytes(b'{"id": "a", "tac": "x", "solidity": "y"}\n{"id": "b", "tac": "x", "solidity": "caf\xe9"}\n')
    with pytest.raises(PR.ProfileError, match=r"line 2 \(row 1\), column 'solidity': not valid UTF-8 \(byte 0xe9"):
        PR.load_pairs(bad_file)
    rows[1]["solidity"] = None
    with pytest.raises(PR.ProfileError, match=r"column 'solidity', row 1 .*missing value"):
        PR.load_pairs(rows)


@pytest.mark.parametrize("source", ["fixture", "sample"])
def test_tac_operations_count_equals_lifter_instruction_count(source, df):
    """One operation per instruction the lifter counted (tac_instructions), on the fixture and the shipped sample."""
    data = df if source == "fixture" else PR.load_pairs("sample")
    got = data["tac"].map(lambda t: len(PR.tac_operations(t)))
    assert (got == data["tac_instructions"]).all()


def test_bytecode_entropy_when_bytecode_is_given(df):
    code = "0x6080604052348015600f57600080fd5b50"  # PUSH1 ×4, MSTORE, CALLVALUE, DUP1 ×2, ISZERO, JUMPI, ...
    ops = PR.bytecode_opcodes(code)
    e = PR.entropy_report(df.head(10), bytecode=[code, code])  # the same contract twice counts once
    assert e["bytecode"]["symbols"] == len(ops) and e["bytecode"]["bits"] == pytest.approx(PR.shannon_entropy(ops))
    lengths = PR.measure(df.head(10), ["meta-llama/Llama-3.2-3B"])
    rows = claims.data_claims(lengths, ["meta-llama/Llama-3.2-3B"], e)
    row = next(r for r in rows if "bytecode opcode" in r["claim"])
    assert row["holds"] in ("yes", "no") and f"{e['bytecode']['bits']:.2f}" in row["measured"]


def test_bytecode_file_forms(tmp_path):
    code = "0x6080604052"
    (tmp_path / "b.json").write_text(json.dumps([code, {"runtime": code}, {"bytecode": code}]))
    (tmp_path / "b.jsonl").write_text(f'"{code}"\n\n{{"runtime": "{code}"}}\n')
    assert PR.load_bytecodes(tmp_path / "b.json") == [code] * 3
    assert PR.load_bytecodes(str(tmp_path / "b.jsonl")) == [code] * 2


def test_counting_benchmark_of_notebook_01_and_the_tool(df, tmp_path):
    """Notebook 01 and tools/bench_profile.py time the counting with one function and print one report; the report
    reads a file the tool wrote back."""
    import subprocess
    import sys

    bench = PR.bench_counting(df, MODELS[:1], 2 * len(df) + 3, dataset="fixture")
    assert bench["pairs"] == 2 * len(df) + 3 and bench["base_pairs"] == len(df)
    assert set(bench["pairs_per_s"]) == set(MODELS[:1]) and bench["render_s"] >= 0
    assert bench["extrapolated_100k_s"] == pytest.approx(bench["measure_total_s"] * 100_000 / bench["pairs"])
    out = tmp_path / "bench.json"
    tool = Path(__file__).resolve().parents[1] / "tools" / "bench_profile.py"
    run = subprocess.run([sys.executable, str(tool), "--dataset", str(FIXTURE), "--pairs", "50", "--models", MODELS[0],
                          "--json", str(out)], capture_output=True, text=True, check=True)
    written = json.loads(out.read_text())
    assert run.stdout.strip() == PR.bench_report(written) and written["dataset"] == str(FIXTURE)
    assert "extrapolated to 100,000 pairs" in PR.bench_report(bench)


def test_level_comparison_puts_levels_side_by_side_on_common_functions():
    """Issue 14's table: a dataset whose TAC is half as long reads about half the ratio; 'common' counts only the
    functions both hold."""
    df = PR.load_pairs("sample")
    df.attrs["tac_level"] = 1
    compact = df.iloc[: len(df) // 2].copy()
    compact["tac"] = [t[: len(t) // 2] for t in compact["tac"]]
    compact.attrs["tac_level"] = 2
    rows = {(r["dataset"], r["pairs_in"]): r for r in PR.level_comparison({"l1": df, "l2": compact})}
    assert rows["l1", "all"]["pairs"] == len(df) and rows["l1", "all"]["tac_level"] == 1
    n_common = len(compact.drop_duplicates(list(PR.LEVEL_KEY)))
    assert rows["l1", "common"]["pairs"] == rows["l2", "common"]["pairs"] == n_common
    ratio = rows["l2", "common"]["median_ratio"] / rows["l1", "common"]["median_ratio"]
    assert 0.4 < ratio < 0.6
    assert rows["l2", "common"]["within_2048"] >= rows["l1", "common"]["within_2048"]


def test_tail_report_counts_what_lies_past_the_limit():
    """Issue 14's 2,048 goal: the pairs past a limit, by package, solc version and contract, each count summing to
    the pairs past it, and how many must come under it for 95% to fit."""
    df = PR.load_pairs(FIXTURE)
    lengths = PR.measure(df, ["llama3"])
    full = lengths["llama3:full"].to_numpy()
    limit = int(np.percentile(full, 80))
    tail = PR.tail_report(df, lengths, limit, top=1000)
    over = full > limit
    assert tail["over"] == int(over.sum()) > 0 and tail["pairs"] == len(df)
    assert tail["within_pct"] == pytest.approx(100 * (1 - over.mean()), abs=0.01)
    assert tail["to_reach_95_pct"] == max(0, int(over.sum()) - int(len(df) * 0.05))
    for key, col in (("by_package", "package"), ("by_solc", "solc_version"), ("by_contract", "contract")):
        assert sum(tail[key].values()) == tail["over"]
        assert tail[key] == df[over][col].value_counts().to_dict()
    assert tail["median_excess_tokens"] == float(np.median(full[over] - limit)) > 0
    assert tail["median_sol_tokens"] == float(np.median(lengths["llama3:sol"].to_numpy()[over]))
    nothing = PR.tail_report(df, lengths, int(full.max()))
    assert nothing["over"] == 0 and nothing["by_package"] == {} and nothing["median_excess_tokens"] is None


def test_tac_token_shares_name_where_the_tokens_go():
    """Issue 14's "what remains" breakdown: shares per operation, labels and headers apart, summing to 1."""
    tac = ("function 0xa9059cbb(arg0: address, arg1: uint256) nonpayable\nb0:\n  v1 = mapping(0x0)[caller]\n"
           "  v2 = sload(v1)\n  require(v2 >= arg1)\n  sstore(v1, v2 - arg1)\n  v3 = checked(arg1 + 0x1)\n"
           "  mstore(0x40, v3)\n  mstore(0x60, v3)\n  return (0x1)")
    shares = PR.tac_token_shares([tac, tac])
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert {"HEADER", "LABEL", "MAPPING", "SLOAD", "REQUIRE", "SSTORE", "CHECKED", "MSTORE", "RETURN"} == set(shares)
    assert shares["MSTORE"] > shares["SLOAD"] > shares["LABEL"]      # two mstore lines against one sload line
    assert PR.tac_token_shares([""]) == {}
    assert set(PR.tac_token_shares(["b0:\n  sstore(mapping(3)[arg0])[8:8] = 1\n  stop"])) == {"LABEL", "SSTORE", "STOP"}
    # level 3's string writes are stores, a catch clause's reason its own operation
    assert PR.tac_operations("  storagestring(0x9) = v1\n  legacy storagestring(v2) = v1\n"
                             "  checked storagestring(mapping(0x3)[arg0]) = v1\n  masked storagestring(0x1) = v2\n"
                             "  v3 = error_message(returndata)\n"
                             "  v4 = checked error_message(returndata)") == ["SSTORE"] * 4 + ["ERROR_MESSAGE"] * 2
