"""tools/retrieval_gate.py: the gated system answers with retrieval's scored row where the recomputed TAC cosine
reaches tau and with the model's elsewhere; tau is chosen on one stratum; a retrieval answer that cannot be
reproduced is refused where the gate would use it."""
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import retrieval_gate as G  # noqa: E402
from tacsol import baselines, train  # noqa: E402

RECORDS = "tests/fixtures/train/records.jsonl"


def make_run(tmp_path: Path, model_right: set[int], retrieval_right: set[int]) -> tuple[Path, list[dict]]:
    """A finished run over the fixture's test split: per-function tables whose verdicts are given by position."""
    run = tmp_path / "run" / "03_baseline_3b"
    p = {"dataset": RECORDS, "holdout_packages": [], "max_seq_length": 1024}
    (run / "eval" / "baselines" / "retrieval-tfidf").mkdir(parents=True)
    (run / "params.yaml").write_text(yaml.safe_dump(p))
    test = train.run_records(p)["test"]
    (run / "eval" / "selection.json").write_text(json.dumps({"ids": {"contract_heldout": [r["id"] for r in test]}}))
    rows = baselines.retrieve(train.run_records(p)["train"], test)

    def table(answers, right):
        return pd.DataFrame({"id": [r["id"] for r in test], "generated": answers,
                             "reference": [r["solidity"] for r in test],
                             "behaviour": ["equivalent" if i in right else "differs" for i in range(len(test))],
                             "selector_match": [True] * len(test), "degenerate": [""] * len(test),
                             "tac_storage_write": [0] * len(test), "tac_external_call": [0] * len(test)})

    table([f"model answer {i}" for i in range(len(test))], model_right).to_parquet(run / "eval" / "functions.parquet")
    table([r["generated"] for r in rows], retrieval_right).to_parquet(
        run / "eval" / "baselines" / "retrieval-tfidf" / "functions.parquet")
    return run, rows


def test_the_gate_takes_retrieval_where_the_neighbour_is_near_and_the_model_elsewhere(tmp_path):
    run, rows = make_run(tmp_path, model_right={0}, retrieval_right={1, 2})
    cos = [r["tac_similarity"] for r in rows]
    tau = sorted(cos)[len(cos) // 2]        # about half of the functions go to retrieval
    out = tmp_path / "gate.json"
    assert G.main(["--runs", str(run), "--tau", str(tau), "--json", str(out), "--out", str(tmp_path / "t")]) == 0
    res = next(r for r in json.loads(out.read_text())["results"] if r["rule"] == "gate")
    gated = pd.read_parquet(tmp_path / "t" / "run" / "contract_heldout-gate.parquet")
    want = ["retrieval" if c >= tau else "fine-tuned" for c in cos]
    assert gated["gate_source"].tolist() == want
    expected = [(i in {1, 2}) if w == "retrieval" else (i == 0) for i, w in enumerate(want)]
    assert res["behaviour"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    assert res["from_retrieval"] == want.count("retrieval") and res["n"] == len(rows)
    assert gated["generated"].tolist() == [rows[i]["generated"] if w == "retrieval" else f"model answer {i}"
                                           for i, w in enumerate(want)]


def test_tau_is_chosen_on_the_grid_with_ties_to_the_higher_tau(tmp_path):
    run, rows = make_run(tmp_path, model_right=set(), retrieval_right=set())
    ft, rt = G.tables(run, "contract_heldout")
    tau, grid = G.choose_tau(ft, rt, {r["id"]: r for r in rows})
    assert tau == 1.0 and set(grid.values()) == {0.0}          # nothing right anywhere: no copy is chosen
    run2, rows2 = make_run(tmp_path / "b", model_right=set(), retrieval_right=set(range(len(rows))))
    ft, rt = G.tables(run2, "contract_heldout")
    tau, grid = G.choose_tau(ft, rt, {r["id"]: r for r in rows2})
    # retrieval always right: the rate falls as tau rises, so the choice is the highest tau still at the grid's best
    assert grid[f"{tau:.2f}"] == max(grid.values()) == grid["0.50"] > 0
    assert all(rate < grid[f"{tau:.2f}"] for t, rate in grid.items() if float(t) > tau)


def test_a_retrieval_answer_that_is_not_reproduced_is_refused_only_where_the_gate_uses_it(tmp_path):
    run, rows = make_run(tmp_path, model_right={0}, retrieval_right={1})
    table = run / "eval" / "baselines" / "retrieval-tfidf" / "functions.parquet"
    df = pd.read_parquet(table)
    top = max(range(len(rows)), key=lambda i: rows[i]["tac_similarity"])
    df.loc[top, "generated"] = "function other() {}"
    df.to_parquet(table)
    ft, rt = G.tables(run, "contract_heldout")
    by_id = {r["id"]: r for r in rows}
    G.gated_table(ft, rt, by_id, 2.0, "above every cosine")        # the model answers everywhere: fine
    with pytest.raises(ValueError, match=rf"function {rows[top]['id']} .*cannot be reused"):
        G.gated_table(ft, rt, by_id, 0.0, "below every cosine")
    assert G.mismatches(rt, by_id) == 1


def test_the_guarded_rule_keeps_a_model_answer_with_the_right_selector_over_a_copy_without_it(tmp_path):
    run, rows = make_run(tmp_path, model_right={0}, retrieval_right={1, 2})
    for name in ("functions.parquet", "baselines/retrieval-tfidf/functions.parquet"):
        path = run / "eval" / name
        df = pd.read_parquet(path)
        df["selector_match"] = [True, False, True] + [False] * (len(df) - 3) if "baselines" not in name else \
            [False, False, False] + [True] * (len(df) - 3)
        df.to_parquet(path)
    ft, rt = G.tables(run, "contract_heldout")
    by_id = {r["id"]: r for r in rows}
    plain = G.gated_table(ft, rt, by_id, 0.0, "all near")
    guarded = G.gated_table(ft, rt, by_id, 0.0, "all near", "guarded")
    assert plain["gate_source"].tolist() == ["retrieval"] * len(rows)
    # functions 0 and 2: the model names them and the copy does not, so the model's answer stays
    assert guarded["gate_source"].tolist() == ["fine-tuned", "retrieval", "fine-tuned"] + ["retrieval"] * (len(rows) - 3)
    with pytest.raises(ValueError, match="rule 'best'"):
        G.gated_table(ft, rt, by_id, 0.0, "all near", "best")


def test_the_gate_over_another_decodings_table_and_its_grounding_paired(tmp_path):
    """--tuned gates a verifier table (eval/NAME/) instead of greedy answers, on the stratum it covers; where the
    tables carry the effect columns, grounding recall is paired against retrieval too."""
    run, rows = make_run(tmp_path, model_right={0}, retrieval_right={1, 2})
    effects = {f"{side}_{c}": [1] * len(rows) for side in ("tac", "out") for c in ("event", "storage_write")}
    effects.update({f"{side}_{c}": [0] * len(rows) for side in ("tac", "out") for c in ("external_call", "revert")})
    for name in ("functions.parquet", "baselines/retrieval-tfidf/functions.parquet"):
        df = pd.read_parquet(run / "eval" / name).assign(**effects)
        if "baselines" in name:
            df["out_event"] = 0                                   # retrieval shows half of the TAC's effects
        df.to_parquet(run / "eval" / name)
    ver = run / "eval" / "verifier-contract_heldout" / "grounded-N4"
    ver.mkdir(parents=True)
    df = pd.read_parquet(run / "eval" / "functions.parquet")
    df["generated"] = [f"ranked answer {i}" for i in range(len(df))]
    df["behaviour"] = ["equivalent"] * len(df)
    df.to_parquet(ver / "functions.parquet")
    out = tmp_path / "gate.json"
    assert G.main(["--runs", str(run), "--tau", "2.0", "--tuned", "verifier-contract_heldout/grounded-N4",
                   "--json", str(out), "--out", str(tmp_path / "t")]) == 0
    res = json.loads(out.read_text())
    assert res["tuned"] == "verifier-contract_heldout/grounded-N4"
    row = next(r for r in res["results"] if r["rule"] == "gate")
    assert row["behaviour"] == 1.0 and row["from_retrieval"] == 0                 # tau above every cosine
    gated = pd.read_parquet(tmp_path / "t" / "run" / "contract_heldout-gate.parquet")
    assert gated["generated"].tolist() == [f"ranked answer {i}" for i in range(len(rows))]
    g = row["vs_retrieval"]["grounding_recall"]
    assert g["difference"] == pytest.approx(0.5) and g["ci_low"] == pytest.approx(0.5)
    with pytest.raises(SystemExit):
        G.main(["--runs", str(run), "--tau", "0.6", "--tuned", "verifier-contract_heldout/none"])


def test_the_gate_reads_the_cosines_a_retrieval_table_kept_without_the_dataset(tmp_path):
    """A retrieval table with its neighbour and cosine columns (evaluations from 2026-12-07 on) gates without a
    second retrieval: the same result with the run's dataset gone."""
    run, rows = make_run(tmp_path, model_right={0}, retrieval_right={1, 2})
    tau = sorted(r["tac_similarity"] for r in rows)[len(rows) // 2]
    recomputed = tmp_path / "recomputed.json"
    assert G.main(["--runs", str(run), "--tau", str(tau), "--json", str(recomputed)]) == 0
    path = run / "eval" / "baselines" / "retrieval-tfidf" / "functions.parquet"
    rt = pd.read_parquet(path)
    kept = baselines.retrieval_columns(rows)
    for col in baselines.RETRIEVAL_COLUMNS:
        rt[col] = [kept[i][col] for i in rt["id"]]
    rt.to_parquet(path)
    (run / "params.yaml").write_text(yaml.safe_dump({"dataset": str(tmp_path / "gone.jsonl"), "holdout_packages": []}))
    with pytest.raises(Exception):
        train.run_records(yaml.safe_load((run / "params.yaml").read_text()))
    from_table = tmp_path / "from_table.json"
    assert G.main(["--runs", str(run), "--tau", str(tau), "--json", str(from_table)]) == 0
    assert json.loads(from_table.read_text())["results"] == json.loads(recomputed.read_text())["results"]
