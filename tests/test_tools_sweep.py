"""tools/sweep_lr.py: each rate trains the same recipe for the same short budget, the held-out losses are read back
and a rerun trains nothing again."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sweep_trains_each_rate_once_and_ranks_by_heldout_loss(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"dataset": "sample", "max_seq_length": 384, "batch_size": 2, "eval_examples": 2,
                                      "logging_steps": 1, "cpu_threads": 1}))
    out = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "tools" / "sweep_lr.py"), "--params", str(params), "--lrs", "1e-5", "3e-3",
           "--steps", "3", "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert [r["learning_rate"] for r in runs] == [1e-5, 3e-3] and all(r["steps"] == 3 for r in runs)
    assert runs[0]["train_tokens"] == runs[1]["train_tokens"] > 0              # the same data, the same budget
    assert runs[0]["heldout_loss_before"] == pytest.approx(runs[1]["heldout_loss_before"], abs=1e-3)
    # 3 steps at 1e-5 barely move the model; at 3e-3 the held-out loss falls clearly further
    assert runs[1]["heldout_loss_after"] < runs[0]["heldout_loss_after"] - 0.05
    assert "lowest held-out loss after 3 steps: lr 0.003" in first.stdout
    logs = {r["folder"]: (Path(r["folder"]) / "train_log.json").stat().st_mtime for r in runs}
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and "$ " not in again.stdout                   # nothing trained again
    assert all((Path(f) / "train_log.json").stat().st_mtime == t for f, t in logs.items())
