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
