"""tools/rescore_effects.py: a published table's tac_* columns recomputed from the dataset's TAC (by id, else by
package/contract/selector/settings), its summary's grounding following them; an unmatched row is reported and kept,
and a table whose effect the TAC lacks is never written."""
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import rescore_effects as R  # noqa: E402
from tacsol.evaluate.aggregate import grounding  # noqa: E402

STRING_SETTER = "function 0x1(arg0: string) nonpayable\nb0:\n  masked storagestring(0xd) = calldata(4 + arg0)\n  stop"
SUMMARIZED = ("function 0x2() nonpayable\nb0:\n  v1 = icall f2(0x80)\n  stop\n\n"
              "function f2(arg0) internal  // summary of 30 lines\n  calls call 0xa9059cbb\n  logs log1\n  returns 0")
KEY = {"package": "p", "contract": "C", "settings": "noopt"}


def _records(tmp_path: Path) -> Path:
    rows = [{"id": "a", "selector": "0x1", "tac": STRING_SETTER, "split": "test", **KEY},
            {"id": "b-rebuilt", "selector": "0x2", "tac": SUMMARIZED, "split": "test", **KEY}]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _table(tmp_path: Path, **old) -> Path:
    """A run folder with one table as the old metric scored it: no effect seen in either TAC."""
    cols = {f"{s}_{c}": 0 for s in ("tac", "out", "ref") for c in R.EFFECTS}
    rows = [{"id": "a", "selector": "0x1", **KEY, **cols, "out_storage_write": 1, "ref_storage_write": 1},
            {"id": "b", "selector": "0x2", **KEY, **cols, "out_external_call": 1, "ref_event": 1},   # found by key
            {"id": "c", "selector": "0x3", **KEY, **cols, **old}]                                    # not in the data
    run = tmp_path / "run" / "eval"
    run.mkdir(parents=True)
    df = pd.DataFrame(rows)
    df.to_parquet(run / "functions.parquet", index=False)
    g = grounding(df)
    (run / "summary.json").write_text(json.dumps({"system": "fine-tuned", "aggregates": {"grounding": g},
                                                  "metrics": {"grounding_precision": g["precision"],
                                                              "grounding_recall": g["recall"]}}))
    return tmp_path / "run"


def test_rescore_writes_the_new_tac_columns_and_the_summary_grounding(tmp_path, capsys):
    run, data = _table(tmp_path), _records(tmp_path)
    assert R.main([str(run), "--dataset", str(data), "--json", str(tmp_path / "r.json")]) == 0   # a dry run
    before = pd.read_parquet(run / "eval" / "functions.parquet")
    assert before["tac_storage_write"].sum() == 0
    report = json.loads((tmp_path / "r.json").read_text())["tables"][str(run / "eval" / "functions.parquet")]
    assert report["unmatched"] == ["c"] and report["counts_changed"] == 2
    assert report["presence_gained"] == {"event": ["b"], "storage_write": ["a"], "external_call": ["b"]}
    assert report["grounding_out"]["before"]["precision"] == 0.0
    assert report["grounding_out"]["after"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "event_tac_has": 1, "storage_write_tac_has": 1,
         "external_call_tac_has": 1, "revert_tac_has": 0})
    assert R.main([str(run), "--dataset", str(data), "--write"]) == 0
    after = pd.read_parquet(run / "eval" / "functions.parquet")
    assert after.set_index("id")[["tac_storage_write", "tac_external_call", "tac_event"]].to_dict("index") == {
        "a": {"tac_storage_write": 1, "tac_external_call": 0, "tac_event": 0},
        "b": {"tac_storage_write": 0, "tac_external_call": 1, "tac_event": 1},
        "c": {"tac_storage_write": 0, "tac_external_call": 0, "tac_event": 0}}
    assert list(after.columns) == list(before.columns)
    summary = json.loads((run / "eval" / "summary.json").read_text())
    assert summary["metrics"]["grounding_recall"] == pytest.approx(2 / 3)
    assert summary["aggregates"]["grounding_reference"]["event"]["tp"] == 1
    assert "rows, 1 unmatched, 2 with new counts" in capsys.readouterr().out


def test_rescore_refuses_to_write_an_effect_the_tac_lacks(tmp_path):
    run, data = _table(tmp_path), _records(tmp_path)
    df = pd.read_parquet(run / "eval" / "functions.parquet")
    df.loc[df["id"] == "a", "tac_event"] = 2     # the old table saw a log that the dataset's TAC does not hold
    df.to_parquet(run / "eval" / "functions.parquet", index=False)
    with pytest.raises(SystemExit, match="refusing to write.*'event': \\['a'\\]"):
        R.main([str(run), "--dataset", str(data), "--write"])
    assert pd.read_parquet(run / "eval" / "functions.parquet")["tac_event"].tolist() == [2, 0, 0]
    with pytest.raises(SystemExit, match="no functions.parquet"):
        R.main([str(tmp_path / "nowhere"), "--dataset", str(data)])


def test_refresh_derived_copies_each_folders_grounding_into_curve_and_verifier_files(tmp_path):
    """curve.json (per checkpoint, step-N/) and verifier.json (per rule and N: N4/, grounded-N8/) keep copies of
    their folders' summary metrics; refresh_derived reads them again, and leaves the other figures."""
    curve, ver = tmp_path / "eval" / "curve", tmp_path / "eval" / "verifier"
    for folder, recall in ((curve / "step-70", 0.5), (ver / "N4", 0.25), (ver / "grounded-N8", 0.75)):
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"metrics": {"grounding_recall": recall,
                                                                     "grounding_precision": 1.0}}))
    (curve / "curve.json").write_text(json.dumps([{"step": 70, "grounding_recall": 0.1, "similarity_mean": 0.6},
                                                  {"step": 0, "grounding_recall": 0.0}]))
    (ver / "verifier.json").write_text(json.dumps({"subset": None, "results": [
        {"rule": "checks", "n": 4, "grounding_recall": 0.1, "grounding_precision": 0.1, "behaviour_rate": 0.2},
        {"rule": "grounded", "n": 8, "grounding_recall": 0.1, "grounding_precision": 0.1}]}))
    assert len(R.refresh_derived(tmp_path)) == 2
    assert json.loads((curve / "curve.json").read_text()) == [
        {"step": 70, "grounding_recall": 0.5, "similarity_mean": 0.6}, {"step": 0, "grounding_recall": 0.0}]
    rows = json.loads((ver / "verifier.json").read_text())["results"]
    assert [(r["grounding_recall"], r["grounding_precision"]) for r in rows] == [(0.25, 1.0), (0.75, 1.0)]
    assert rows[0]["behaviour_rate"] == 0.2
