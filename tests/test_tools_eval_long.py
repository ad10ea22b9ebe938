"""tools/eval_long.py: runs that differ in context are scored on the held-out functions only the longer context
holds, with the same prompt to each, and paired there."""
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import eval_long as E  # noqa: E402
from tacsol import prompt, train  # noqa: E402

RECORDS = "tests/fixtures/train/records.jsonl"


def make_run(folder: Path, adapter: str, **params) -> Path:
    run = folder / "03_baseline_3b"
    shutil.copytree(adapter, run / "adapter")
    base = json.loads((run / "adapter" / "tacsol_train.json").read_text())["params"]["model"]
    p = {"model": base, "dataset": RECORDS, "holdout_packages": [], "seed": 3, "max_new_tokens": 6,
         "eval_batch_size": 4, "eval_compile": "none", "eval_behaviour": False, **params}
    (run / "params.yaml").write_text(yaml.safe_dump(p))
    return run


def test_two_contexts_are_scored_on_the_functions_only_the_longer_one_holds(tiny_adapter, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(Path(tiny_adapter))
    test = train.load_records(RECORDS)["test"]
    lengths = sorted(len(prompt.tokenize_example(dict(r), tok)["input_ids"]) for r in test)
    lo, hi = lengths[1], lengths[-2]          # a band that leaves functions out on both sides
    short = make_run(tmp_path / "short", tiny_adapter, max_seq_length=lo)
    long = make_run(tmp_path / "long", tiny_adapter, max_seq_length=hi)
    out = tmp_path / "out"
    assert E.main(["--runs", str(short), str(long), "--out", str(out), "--n", "50"]) == 0

    stratum = E.LONG.format("contract_heldout")
    sel = json.loads((out / stratum / "selection.json").read_text())
    assert sel["band"] == [lo, hi]           # the shorter run's context excluded, the longer one's included
    in_band = {r["id"] for r in test
               if lo < len(prompt.tokenize_example(dict(r), tok)["input_ids"]) <= hi}
    ids = sel["ids"]
    assert ids and set(ids) <= in_band       # one per near-duplicate group, all within the band
    assert len({r["group"] for r in test if r["id"] in ids}) == len(ids)

    result = json.loads((out / "long.json").read_text())["strata"][stratum]
    assert set(result["systems"]) == {"short", "long", "retrieval"}
    assert all(s["n"] == len(ids) for s in result["systems"].values())
    pairs = {(r["system_a"], r["system_b"]) for r in result["paired"]}
    assert pairs == {("short", "long"), ("short", "retrieval"), ("long", "retrieval")}
    same = [r for r in result["paired"] if (r["system_a"], r["system_b"]) == ("short", "long")]
    # the same adapter behind both names: the same greedy answers, so no difference on any metric
    assert all(r["difference"] == 0 and r["n"] == len(ids) for r in same)
    # a rerun resumes: nothing is generated again, the result is the same
    assert E.main(["--runs", str(short), str(long), "--out", str(out), "--n", "50"]) == 0
    assert json.loads((out / "long.json").read_text())["strata"][stratum]["systems"] == result["systems"]
    gens = out / "short" / "eval" / "generations" / stratum / "fine-tuned.jsonl"
    assert len(gens.read_text().splitlines()) == len(ids)
    # answers of another generation budget are never mixed into these
    with pytest.raises(SystemExit, match="max_new_tokens"):
        E.main(["--runs", str(short), str(long), "--out", str(out), "--n", "50", "--max-new-tokens", "9"])


def test_the_package_held_out_stratum_draws_from_every_split_of_the_held_out_packages(tiny_adapter, tmp_path):
    """With the fixture's one package held out, nothing was trained on, so every split's functions are drawn."""
    held = {"holdout_packages": ["tacsol-fixture"]}
    a = make_run(tmp_path / "a", tiny_adapter, max_seq_length=64, **held)
    b = make_run(tmp_path / "b", tiny_adapter, max_seq_length=4096, **held)
    out = tmp_path / "out"
    assert E.main(["--runs", str(a), str(b), "--out", str(out), "--n", "8", "--strata", "package_heldout",
                   "--no-retrieval"]) == 0
    sel = json.loads((out / E.LONG.format("package_heldout") / "selection.json").read_text())
    splits = {r["id"]: s for s, v in train.load_records(RECORDS).items() for r in v}
    assert len(sel["ids"]) == 8 and "train" in {splits[i] for i in sel["ids"]}
    assert sel["report"]["records_seen_in_training"] == 0
    result = json.loads((out / "long.json").read_text())["strata"]
    assert list(result) == [E.LONG.format("package_heldout")]
    assert set(result[E.LONG.format("package_heldout")]["systems"]) == {"a", "b"}


def test_runs_with_different_prompts_are_refused_by_the_key(tiny_adapter, tmp_path):
    a = make_run(tmp_path / "a", tiny_adapter, max_seq_length=256)
    b = make_run(tmp_path / "b", tiny_adapter, max_seq_length=512, retrieval_prompts=True)
    with pytest.raises(SystemExit, match="retrieval_prompts"):
        E.main(["--runs", str(a), str(b), "--out", str(tmp_path / "out")])
    # a run from before a key existed did what its default says: it is not refused for lacking the key
    c = make_run(tmp_path / "c", tiny_adapter, max_seq_length=512, retrieval_prompts=False)
    E.check_same_prompts([a, c], [E.run_params(a), E.run_params(c)])


def test_equal_contexts_leave_no_band(tiny_adapter, tmp_path):
    a = make_run(tmp_path / "a", tiny_adapter, max_seq_length=512)
    b = make_run(tmp_path / "b", tiny_adapter, max_seq_length=512)
    with pytest.raises(SystemExit, match="no band"):
        E.main(["--runs", str(a), str(b), "--out", str(tmp_path / "out")])
