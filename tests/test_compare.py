"""06_compare's tables from run folders: discovery, the flat metrics evaluate writes, smoke labelling, verdicts."""
import json

import pandas as pd

from tacsol import claims, compare


def _phase(root, run, stem, headline, smoke, evals=None, per_fn=None, hw=None):
    d = root / run / stem
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"phase": stem, "smoke": smoke, "headline": headline, "params": {},
                                                "hardware": hw or {"cpu_cores": 2, "gpus": []}}))
    for system, ev in (evals or {}).items():
        e = d / "eval" if system == "fine-tuned" else d / "eval" / "baselines" / system
        e.mkdir(parents=True, exist_ok=True)
        (e / "summary.json").write_text(json.dumps(ev))
        if per_fn is not None:
            pd.DataFrame(per_fn).to_parquet(e / "per_function.parquet")
    return d


def test_discover_and_tables(tmp_path):
    _phase(tmp_path, "gpu", "03_baseline_3b", {"model": "meta-llama/Llama-3.2-3B", "params_total": 3.2e9,
           "gpu_hours": 10.0}, smoke=False,
           evals={"fine-tuned": {"metrics": {"similarity_mean": 0.84, "similarity_ci_low": 0.83,
                                             "similarity_ci_high": 0.85, "compile_rate": 0.6}},
                  "retrieval": {"metrics": {"similarity_mean": 0.7}}},
           per_fn={"similarity": [0.8, 0.9], "complexity_bucket": ["small", "large"]},
           hw={"gpus": [{"name": "Quadro RTX 8000", "memory_gib": 47.5}]})
    _phase(tmp_path, "demo", "04_train_32b", {"model": "embedded:smollm2-135m"}, smoke=True,
           evals={"fine-tuned": {"metrics": {"similarity_mean": 0.4}}})
    _phase(tmp_path, "demo", "02_vram_estimation", {"x": 1}, smoke=False)
    (tmp_path / "demo" / "05_broken").mkdir()  # no summary: a failed phase is skipped, not fatal

    phases = compare.discover(tmp_path)
    assert {(p.run, p.stem) for p in phases} == {("gpu", "03_baseline_3b"), ("demo", "04_train_32b"), ("demo", "02_vram_estimation")}
    runs = compare.runs_table(phases)
    assert set(runs["phase"]) == {"03_baseline_3b", "04_train_32b"}  # only training phases
    assert runs.set_index("run").loc["gpu", "hardware"] == "1× Quadro RTX 8000"
    ev = compare.eval_table(phases).set_index(["run", "system"])
    assert ev.loc[("gpu", "fine-tuned"), "similarity_mean"] == 0.84
    assert ev.loc[("gpu", "fine-tuned"), "similarity_ci_high"] == 0.85
    assert ev.loc[("gpu", "retrieval"), "similarity_mean"] == 0.7
    pf = compare.per_function(phases)
    assert len(pf) == 4 and set(pf["system"]) == {"fine-tuned", "retrieval"}

    evm = claims.expected_vs_measured(compare.eval_table(phases), runs).set_index("claim")
    row03 = evm.loc["paper (arXiv:2506.19624): Llama-3.2-3B LoRA mean similarity"]
    assert row03["verdict"] == "meets" and "Quadro RTX 8000" in row03["what ran"]
    row04 = evm.loc["recommendations: Qwen2.5-Coder-32B mean similarity 0.88–0.92"]
    assert row04["verdict"] == "not comparable (smoke run)"

    only = compare.discover(tmp_path, runs=["demo"])
    assert {p.run for p in only} == {"demo"}


def test_eval_table_reads_the_metrics_evaluate_writes():
    """Every column eval_table shows is a flat metric of tacsol.evaluate's summary.json, read as written."""
    from tacsol.evaluate.aggregate import flat_metrics

    ref = compare.discover("docs/evidence")
    s = json.loads((ref[0].path.parent / "03_baseline_3b" / "eval" / "summary.json").read_text())
    assert set(compare.EVAL_METRICS) <= set(flat_metrics(s["aggregates"], s["floor_ceiling"]))
    row = compare.eval_table(ref).set_index(["run", "phase", "system"]).loc[("reference", "03_baseline_3b", "fine-tuned")]
    for k in compare.EVAL_METRICS:
        assert row[k] == s["metrics"][k] if k in s["metrics"] else pd.isna(row[k]), k
