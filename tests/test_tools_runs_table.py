"""tools/runs_table.py: every published run in one table, read from its evidence; runs scored on the same functions
share a selection letter and runs on other functions do not."""
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import runs_table as T  # noqa: E402
from tacsol import compare  # noqa: E402

GETTER = "function owner() public view returns (address) { return _owner; }"
OTHER = "function swap(uint a) external { for (uint i; i < a; i++) { x.call(\"\"); } }"


def make_run(evidence: Path, name: str, ids: list[str], verdicts: list[str], behaviour: float,
             level: int | None = 3) -> Path:
    run = evidence / name / "03_baseline_3b"
    ev = run / "eval"
    (ev / "baselines" / "retrieval-tfidf").mkdir(parents=True)
    (run / "params.yaml").write_text(f"run_name: {name}\nsmoke: false\ndataset: ds_{name}\nmax_seq_length: 2048\n"
                                     "retrieval_prompts: false\n")
    (run / "train_log.json").write_text(json.dumps({"train_tokens": 12345, "heldout_loss_after": 1.25,
                                                    "max_seq_length": 2048}))
    if level is not None:
        (run / "trained" / "adapter").mkdir(parents=True)
        (run / "trained" / "adapter" / "tacsol_train.json").write_text(json.dumps({"tac_level": level}))
    metrics = {"n_functions": len(ids), "n_distinct": len(ids), "behaviour_rate": behaviour,
               "behaviour_ci_low": behaviour / 2, "behaviour_ci_high": min(1.0, behaviour * 2),
               "selector_match_rate": 0.5, "similarity_mean": 0.6, "degenerate_rate": 0.0}
    (ev / "summary.json").write_text(json.dumps({"metrics": metrics}))
    (ev / "baselines" / "retrieval-tfidf" / "summary.json").write_text(
        json.dumps({"metrics": {**metrics, "behaviour_rate": 0.1}}))
    (ev / "selection.json").write_text(json.dumps({"ids": {"contract_heldout": ids}}))
    refs = [GETTER if i % 2 == 0 else OTHER for i in range(len(ids))]
    pd.DataFrame({"id": ids, "reference": refs, "behaviour": verdicts, "tac_storage_write": [0] * len(ids),
                  "tac_external_call": [0 if r == GETTER else 1 for r in refs]}).to_parquet(ev / "functions.parquet")
    return run


def test_rows_come_from_each_runs_evidence_and_selections_are_labelled(tmp_path, capsys):
    make_run(tmp_path, "a", ["x1", "x2", "x3", "x4"], ["equivalent", "equivalent", "differs", "untestable"], 0.5)
    make_run(tmp_path, "b", ["x4", "x3", "x2", "x1"], ["untestable", "equivalent", "differs", "untestable"], 0.25,
             level=None)
    make_run(tmp_path, "c", ["y1", "y2"], ["equivalent", "differs"], 0.5)
    out = tmp_path / "rows.json"
    assert T.main(["--evidence", str(tmp_path), "--json", str(out)]) == 0
    rows = {r["run"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"]["set"] == rows["b"]["set"] != rows["c"]["set"]   # same ids in another order: same functions
    assert rows["a"]["behaviour"] == 0.5 and rows["a"]["behaviour_ci"] == [0.25, 1.0]
    assert rows["a"]["retrieval_behaviour"] == 0.1
    # the getters are the rows at positions 0 and 2: a's are equivalent and differs, b's untestable and differs
    assert rows["a"]["getters_setters"] == [1, 2] and rows["b"]["getters_setters"] == [0, 2]
    assert rows["c"]["getters_setters"] == [1, 1]
    assert rows["a"]["tac_level"] == 3 and rows["b"]["tac_level"] is None
    assert rows["a"]["train_tokens"] == 12345 and rows["a"]["max_seq_length"] == 2048
    text = capsys.readouterr().out
    assert "| a | ds_a | 3 | 2048 | 12,345 | 1.250 | A | 4 | 50.0% [25.0, 100.0] | 10.0% |" in text
    assert "| b | ds_b | ? |" in text


def test_an_unpublished_run_is_added_and_a_missing_one_is_refused(tmp_path, capsys):
    run = make_run(tmp_path / "outputs", "new", ["x1", "x2"], ["equivalent", "differs"], 0.5)
    (tmp_path / "evidence").mkdir()
    assert T.main(["--evidence", str(tmp_path / "evidence"), "--runs", str(run)]) == 0
    assert "| new | ds_new | 3 | 2048 |" in capsys.readouterr().out
    try:
        T.main(["--evidence", str(tmp_path / "evidence"), "--runs", str(tmp_path / "nope")])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("a missing --runs folder was accepted")
    assert "no such folder" in capsys.readouterr().err


def test_the_published_evidence_reads():
    """Every published run with an evaluation gives a row per stratum it was scored on."""
    runs = compare.find_reference_runs(T.EVIDENCE)
    assert runs, "no published run found under docs/evidence"
    rows = compare.reference_runs(runs)
    assert {r["run"] for r in rows} == {run.parent.name for run in runs}
    assert all(0 <= r["behaviour"] <= 1 for r in rows if r["behaviour"] is not None)


def test_the_current_harness_verdicts_stand_beside_the_published_ones(tmp_path, capsys):
    make_run(tmp_path, "a", ["x1", "x2"], ["equivalent", "differs"], 0.5)
    make_run(tmp_path, "c", ["y1", "y2"], ["equivalent", "differs"], 0.5)
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"runs": {"a": {"contract_heldout": {
        "fine-tuned": {"n": 2, "equivalent": 0, "rate": 0.0, "ci": [0.0, 0.0],
                       "getters_and_setters": {"n": 1, "equivalent": 0}},
        "retrieval-tfidf": {"n": 2, "equivalent": 1, "rate": 0.5, "ci": [0.0, 1.0]}}}}}))
    assert T.main(["--evidence", str(tmp_path), "--rescored", str(index)]) == 0
    text = capsys.readouterr().out
    assert "current harness" in text
    assert "| 1/1 | 2, 0.0% [0.0, 0.0] | 50.0% | 0/1 |" in text   # a: published 1/1 getters, now 0/1
    assert text.count("| – | – | – |") == 1                      # c: not rescored
    assert T.main(["--evidence", str(tmp_path), "--rescored", "none"]) == 0
    assert "current harness" not in capsys.readouterr().out
