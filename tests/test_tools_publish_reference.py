"""tools/publish_reference.py --trained / --restore: a finished training (adapter and curve checkpoints in bf16,
logs) and the answers an unfinished evaluation has saved travel to docs/evidence and back, so that a fresh machine
scores the run without training it again or generating what was generated."""
import json
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import publish_reference as P  # noqa: E402


def test_trained_run_and_its_saved_answers_round_trip(tmp_path, tiny_adapter):
    run = tmp_path / "outputs" / "r" / "03_baseline_3b"
    shutil.copytree(tiny_adapter, run / "adapter")
    for step in (5, 9):   # 9 is within half a save interval of the end: the adapter stands for it
        shutil.copytree(tiny_adapter, run / "checkpoints" / f"checkpoint-{step}")
        (run / "checkpoints" / f"checkpoint-{step}" / "optimizer.pt").write_bytes(b"state")
    (run / "train_log.json").write_text(json.dumps({"steps": 10}))
    (run / "params.yaml").write_text(yaml.safe_dump({"save_steps": 5}))
    answers = run / "eval" / "generations" / "contract_heldout" / "fine-tuned.jsonl"
    answers.parent.mkdir(parents=True)
    answers.write_text(json.dumps({"id": "a", "generated": "function f() {}", "seconds": 1.0}) + "\n")
    dest = tmp_path / "evidence" / "r" / "03_baseline_3b" / "trained"
    assert P.publish_trained(run, dest) == 0
    assert sorted(p.name for p in (dest / "checkpoints").iterdir()) == ["checkpoint-5"]
    assert sorted(p.name for p in (dest / "checkpoints" / "checkpoint-5").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors"]
    again = tmp_path / "fresh" / "03_baseline_3b"
    assert P.restore_trained(dest, again) == 0
    assert (again / "eval" / "generations" / "contract_heldout" / "fine-tuned.jsonl").read_text() == \
        answers.read_text()
    assert (again / "adapter" / "adapter_model.safetensors").is_file() and (again / "train_log.json").is_file()
    assert P.restore_trained(tmp_path / "nothing", again) == 2


def test_the_shipped_evaluation_carries_the_current_harness_figures(tmp_path):
    """EVALUATION.md beside a shipped adapter: the run's own tables, then its behaviour by the latest rescoring
    (tacsol.compare.rescoring), fine-tuned minus each baseline; nothing where the rescoring lacks the run."""
    from tacsol import compare

    index = tmp_path / compare.RESCORING
    index.parent.mkdir(parents=True)
    index.write_text(json.dumps({"runs": {"r": {"contract_heldout": {
        "fine-tuned": {"n": 4, "equivalent": 1, "rate": 0.25, "ci": [0.0, 0.75],
                       "getters_and_setters": {"n": 2, "equivalent": 1}},
        "retrieval-tfidf": {"n": 4, "equivalent": 2, "rate": 0.5, "ci": [0.0, 1.0], "getters_and_setters": {},
                            "fine_tuned_minus_this": {"difference": -0.25, "ci_low": -0.75, "ci_high": 0.25}}}}}}))
    text = P.current_harness_markdown("r", tmp_path)
    assert "| contract_heldout | fine-tuned | 4 | 1 = 25.0% [0.0, 75.0] | 1/2 |  |" in text
    assert "| contract_heldout | retrieval-tfidf | 4 | 2 = 50.0% [0.0, 100.0] | –/– | -0.250 [-0.750, +0.250] |" in text
    assert P.current_harness_markdown("other", tmp_path) == ""


def test_the_evaluation_copy_keeps_the_tables_and_gzips_the_candidate_pool(tmp_path):
    """copy_eval: per-function tables and summaries as they are, saved generations left out, and a verifier's
    candidate pool gzipped with the same lines (the form docs/evidence keeps pools in)."""
    import gzip

    run, dest = tmp_path / "run", tmp_path / "evidence"
    pool = '{"id": "a", "candidates": ["x", "y"]}\n'
    for rel, text in (("eval/summary.json", "{}"), ("eval/verifier-contract_heldout/candidates.jsonl", pool),
                      ("eval/verifier-contract_heldout/N4/summary.json", "{}"),
                      ("eval/generations/contract_heldout/fine-tuned.jsonl", "{}\n")):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    P.copy_eval(run, dest)
    ver = dest / "eval" / "verifier-contract_heldout"
    assert gzip.open(ver / "candidates.jsonl.gz", "rt").read() == pool and not (ver / "candidates.jsonl").exists()
    assert (ver / "N4" / "summary.json").is_file() and (dest / "eval" / "summary.json").is_file()
    assert not (dest / "eval" / "generations").exists()
