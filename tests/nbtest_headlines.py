"""Headline numbers of the notebooks nbval just executed (copied into .nbtest/ by `python -m tacsol.nbtest prepare`,
collected after the notebooks, which sort before it). nbval in lax mode only proves that the notebooks run; these
read each notebook's summary.json and assert what it claims."""
import json
from pathlib import Path

import pytest

OUT = Path(__file__).resolve().parent / "outputs"


def headline(stem: str) -> dict:
    p = OUT / stem / "summary.json"
    assert p.is_file(), f"{stem} wrote no summary.json (did the notebook run?)"
    return json.loads(p.read_text())["headline"]


def test_01_no_leaked_bodies():
    assert headline("01_data_profiling")["leaked_bodies"] == 0


def test_02_calibration_share_at_least_documented():
    # docs/vram.md: 13 of 21 published measurements within ±15%
    h = headline("02_vram_estimation")
    assert h["calibration_rows"] >= 21 and h["calibration_share_within_15pct"] >= round(13 / 21, 3) - 1e-9


def test_03_heldout_loss_falls_and_the_evaluation_scored_its_functions():
    h = headline("03_baseline_3b")
    assert h["heldout_loss_after"] < h["heldout_loss_before"]
    assert h["dropped_too_long"] >= 0 and h["heldout_dropped_too_long"] >= 0
    assert h["eval_n_functions"] == 4 and 0 <= h["eval_degenerate_rate"] <= 1
    systems = {(r["stratum"], r["system"]) for r in h["evaluation"]}
    assert {("contract_heldout", "fine-tuned"), ("contract_heldout", "retrieval-tfidf"),
            ("contract_heldout", "base_model")} <= systems
    assert h["curve"] and all(p["n_functions"] == 2 for p in h["curve"])


def test_05_zero3_engaged():
    h = headline("05_train_70b_zero3")
    assert h["zero_stage"] == 3 and h["deepspeed_engaged"] is True
    assert h["dropped_too_long"] >= 0 and h["heldout_dropped_too_long"] >= 0  # read back from train_log.json


def test_06_every_run_present():
    written = [d for d in OUT.glob("0[0-5]_*") if (d / "summary.json").is_file()]
    h = headline("06_compare")
    assert written and h["phases_found"] >= len(written)
    assert "similarity" in h["complexity_heatmaps"]  # 03-05 evaluated: the by-complexity heatmap is drawn
