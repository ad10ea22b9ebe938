"""06_compare's tables from run folders: discovery, the flat metrics evaluate writes, smoke labelling, verdicts, the
by-complexity heatmaps. The run folders hold what tacsol.evaluate really writes, on records of the shipped sample."""
import json
from pathlib import Path

import pandas as pd
import pytest

from tacsol import claims, compare, pairs, profile
from tacsol.evaluate import evaluate_run


def _records(n_per_bucket: int = 2) -> list[dict]:
    """Test-split records of the shipped sample, a few from each complexity bucket."""
    seen: dict[str, int] = {}
    out = []
    for r in pairs.load("sample")["test"]:
        b = profile.complexity_bucket(r)
        if seen.get(b, 0) < n_per_bucket:
            seen[b] = seen.get(b, 0) + 1
            out.append(dict(r))
    return out


def _phase(root, run, stem, headline, smoke, hw=None):
    d = root / run / stem
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"phase": stem, "smoke": smoke, "headline": headline, "params": {},
                                                "hardware": hw or {"cpu_cores": 2, "gpus": []}}))
    return d


def _evaluate(records, gens, phase_dir, system):
    eval_dir = None if system == "fine-tuned" else phase_dir / "eval" / "baselines" / system
    return evaluate_run(records, gens, phase_dir, system=system, eval_dir=eval_dir, compile_check=False,
                        figures=False, n_boot=50, verbose=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A GPU run of 03 (the fine-tuned model returns the references, one function excepted; retrieval returns the
    next function's source), a smoke run of 04, a phase without evaluation and a failed one."""
    root = tmp_path_factory.mktemp("runs")
    recs = _records()
    refs = [r["solidity"] for r in recs]
    gpu03 = _phase(root, "gpu", "03_baseline_3b", {"model": "meta-llama/Llama-3.2-3B", "params_total": 3.2e9,
                   "gpu_hours": 10.0}, smoke=False, hw={"gpus": [{"name": "Quadro RTX 8000", "memory_gib": 47.5}]})
    fine = {r["id"]: ref for r, ref in zip(recs, refs)}
    fine[recs[0]["id"]] = "contract C { }"
    evals = {"fine-tuned": _evaluate(recs, fine, gpu03, "fine-tuned"),
             "retrieval": _evaluate(recs, {r["id"]: refs[i - 1] for i, r in enumerate(recs)}, gpu03, "retrieval")}
    demo04 = _phase(root, "demo", "04_train_32b", {"model": "embedded:smollm2-135m"}, smoke=True)
    _evaluate(recs[:2], {r["id"]: "" for r in recs[:2]}, demo04, "fine-tuned")
    _phase(root, "demo", "02_vram_estimation", {"x": 1}, smoke=False)
    (root / "demo" / "05_broken").mkdir()  # no summary: a failed phase is skipped, not fatal
    return {"root": root, "records": recs, "evals": evals}


def test_discover_and_tables(runs):
    root, evals = runs["root"], runs["evals"]
    phases = compare.discover(root)
    assert {(p.run, p.stem) for p in phases} == {("gpu", "03_baseline_3b"), ("demo", "04_train_32b"),
                                                  ("demo", "02_vram_estimation")}
    table = compare.runs_table(phases)
    assert set(table["phase"]) == {"03_baseline_3b", "04_train_32b"}  # only training phases
    assert table.set_index("run").loc["gpu", "hardware"] == "1× Quadro RTX 8000"
    ev = compare.eval_table(phases).set_index(["run", "system"])
    for system, s in evals.items():
        for k in ("similarity_mean", "similarity_ci_low", "similarity_ci_high", "n_functions"):
            assert ev.loc[("gpu", system), k] == s["metrics"][k], (system, k)
    assert ev.loc[("gpu", "fine-tuned"), "n_functions"] == len(runs["records"])
    pf = compare.per_function(phases)
    assert len(pf) == 2 * len(runs["records"]) + 2 and set(pf["system"]) == {"fine-tuned", "retrieval"}
    assert set(pf["label"]) == {"gpu/03 fine-tuned", "gpu/03 retrieval", "demo/04 fine-tuned"}

    evm = claims.expected_vs_measured(compare.eval_table(phases), table).set_index("claim")
    row03 = evm.loc["paper (arXiv:2506.19624): Llama-3.2-3B LoRA mean similarity"]
    assert row03["verdict"] == "meets" and "Quadro RTX 8000" in row03["what ran"]
    row04 = evm.loc["recommendations: Qwen2.5-Coder-32B mean similarity 0.88–0.92"]
    assert row04["verdict"] == "not comparable (smoke run)"

    only = compare.discover(root, runs=["demo"])
    assert {p.run for p in only} == {"demo"}


def test_by_complexity_heatmap_from_what_evaluate_writes(runs):
    """06's heatmap used to look for a complexity_bucket column that evaluation never writes, so it never appeared;
    on real evaluation tables it has one row per system and one column per complexity bucket of the functions."""
    pf = compare.per_function(compare.discover(runs["root"]))
    heat = compare.by_complexity(pf)
    sim = heat["similarity"]
    buckets = {profile.complexity_bucket(r) for r in runs["records"]}
    assert len(buckets) >= 3 and set(sim.columns) == buckets
    assert set(sim.index) == {"gpu/03 fine-tuned", "gpu/03 retrieval", "demo/04 fine-tuned"}
    fine = pf[pf["label"] == "gpu/03 fine-tuned"]
    for bucket in buckets:
        want = fine[fine["complexity"] == bucket]["similarity"].mean()
        assert sim.loc["gpu/03 fine-tuned", bucket] == pytest.approx(want)
    assert "behaviour" not in heat  # behaviour was not checked in these runs
    checked = pf.assign(behaviour=["equivalent", "different"] * (len(pf) // 2))
    rate = compare.by_complexity(checked)["behaviour"]
    assert rate.shape == sim.shape and rate.stack().dropna().between(0, 1).all()
    assert compare.by_complexity(pd.DataFrame()) == {}


def test_eval_table_reads_the_metrics_evaluate_writes():
    """Every column eval_table shows is a flat metric of tacsol.evaluate's summary.json, read as written."""
    from tacsol.evaluate.aggregate import flat_metrics

    ref = compare.discover("docs/evidence")
    s = json.loads((ref[0].path.parent / "03_baseline_3b" / "eval" / "summary.json").read_text())
    assert set(compare.EVAL_METRICS) <= set(flat_metrics(s["aggregates"], s["floor_ceiling"]))
    row = compare.eval_table(ref).set_index(["run", "phase", "system"]).loc[("reference", "03_baseline_3b", "fine-tuned")]
    for k in compare.EVAL_METRICS:
        assert row[k] == s["metrics"][k] if k in s["metrics"] else pd.isna(row[k]), k


def test_paired_comparison_counts_disagreements_on_common_functions():
    import pandas as pd

    from tacsol.compare import paired

    a = pd.DataFrame({"id": ["f1", "f2", "f3", "f4", "only_a"], "behaviour": ["equivalent", "differs", "untestable",
                                                                             "equivalent", "equivalent"],
                      "selector_match": [True, False, False, True, True], "degenerate": ["", "empty", "", "", ""],
                      "similarity": [0.9, 0.2, 0.5, 0.8, 0.9]})
    b = pd.DataFrame({"id": ["f4", "f3", "f2", "f1"], "behaviour": ["equivalent", "equivalent", "equivalent",
                                                                    "differs"],
                      "selector_match": [True, True, True, True], "degenerate": ["", "", "", ""],
                      "similarity": [0.8, 0.5, 0.6, 0.9]})
    rows = {r["metric"]: r for r in paired(a, b)}
    beh = rows["behaviour_equivalent"]
    assert beh["n"] == 4 and beh["a"] == 0.5 and beh["b"] == 0.75
    assert (beh["b_higher"], beh["a_higher"]) == (2, 1) and beh["difference"] == 0.25
    assert beh["ci_low"] <= 0.25 <= beh["ci_high"] and beh["ci_low"] < 0  # 4 functions: the interval spans 0
    assert rows["degenerate"]["a_higher"] == 1 and rows["degenerate"]["difference"] == -0.25
    assert rows["similarity"]["difference"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="share no function"):
        paired(a.assign(id=["x1", "x2", "x3", "x4", "x5"]), b)


def test_paired_grounding_is_the_micro_ratio_with_a_resampled_interval():
    """Grounding recall/precision pair as ratios of sums over the common functions (what aggregate.grounding
    reports), not as means of per-function ratios; the interval comes from resampling functions."""
    from tacsol.evaluate.aggregate import GROUNDED, grounding

    def table(ids, tac, out):
        rows = []
        for i, t, o in zip(ids, tac, out):
            rows.append({"id": i, **{f"tac_{c}": int(c in t) for c in GROUNDED},
                         **{f"out_{c}": int(c in o) for c in GROUNDED}, "tac_revert": 0, "out_revert": 0})
        return pd.DataFrame(rows)

    ids = [f"f{i}" for i in range(40)]
    tac = [("event", "storage_write")] * 20 + [("external_call",)] * 20
    a = table(ids, tac, [()] * 30 + [("event",)] * 10)                         # 0 true effects on the first 30
    b = table(ids + ["extra"], tac + [("event",)], [("storage_write",)] * 20 + [("external_call", "event")] * 20
              + [("event",)])
    rec, prec = compare.paired_grounding(a, b)
    assert rec["n"] == prec["n"] == 40                                           # "extra" is not in a
    b40 = b[b["id"] != "extra"]
    assert rec["a"] == pytest.approx(grounding(a)["recall"]) and rec["b"] == pytest.approx(grounding(b40)["recall"])
    assert rec["b"] == pytest.approx(40 / 60) and rec["a"] == pytest.approx(0.0)
    assert rec["ci_low"] > 0 and rec["ci_low"] <= rec["difference"] <= rec["ci_high"]
    assert (rec["b_higher"], rec["a_higher"]) == (40, 0)
    assert prec["a"] == pytest.approx(grounding(a)["precision"]) and prec["b"] == pytest.approx(40 / 60)
    with pytest.raises(ValueError, match="share no function"):
        compare.paired_grounding(a, table(["x"], [()], [()]))


def test_paired_against_baselines_per_run():
    import pandas as pd

    from tacsol.compare import paired_against_baselines

    def table(system, beh, run="r1"):
        return pd.DataFrame({"id": ["f1", "f2", "f3"], "behaviour": beh, "run": run, "phase": "03_baseline_3b",
                             "system": system, "selector_match": True, "degenerate": "", "similarity": 0.5})
    pf = pd.concat([table("fine-tuned", ["equivalent", "equivalent", "differs"]),
                    table("retrieval-tfidf", ["equivalent", "differs", "differs"]),
                    table("sevm", ["untestable"] * 3),
                    table("sevm", [None] * 3, run="old")])   # evidence older than the check: no row
    rows = paired_against_baselines(pf).set_index("baseline")
    assert list(rows.index) == ["retrieval-tfidf", "sevm"]
    assert rows.loc["retrieval-tfidf", "difference"] == pytest.approx(1 / 3)
    assert (rows.loc["sevm", "fine_tuned_higher"], rows.loc["sevm", "baseline_higher"]) == (2, 0)
    assert paired_against_baselines(pf.drop(columns=["behaviour"])).empty


def test_split_paired_on_the_reference_evidence():
    """tools/split_paired.py on the shipped reference evidence: each split's functions partition the stratum, and
    each split's rates are the per-function tables' own (untestable counts as not equivalent)."""
    import sys

    sys.path.insert(0, "tools")
    import split_paired

    run = Path("docs/evidence/reference-l3-long/03_baseline_3b")
    tuned = pd.read_parquet(run / "eval" / "functions.parquet")
    rows = split_paired.split_paired(run, "contract_heldout", "hint", "behaviour_equivalent")
    cross = split_paired.split_paired(run, "contract_heldout", "hint,kind", "behaviour_equivalent")
    assert sum(r["n"] for r in cross if r["system"] == "retrieval-tfidf" and r["split"].endswith((" getter", " setter", " other"))) == len(tuned)
    retrieval = {r["split"]: r for r in rows if r["system"] == "retrieval-tfidf"}
    assert set(retrieval) == {"named", "unnamed"} and sum(r["n"] for r in retrieval.values()) == len(tuned)
    named = tuned[tuned["signature_hint"].fillna("").astype(str) != ""]
    assert retrieval["named"]["n"] == len(named)
    assert retrieval["named"]["fine_tuned"] == pytest.approx((named["behaviour"] == "equivalent").mean())
    assert {r["system"] for r in rows} >= {"retrieval-tfidf", "verifier consensus-N4"}
    kinds = {r["split"]: r for r in split_paired.split_paired(run, "contract_heldout", "kind", "behaviour_equivalent")
             if r["system"] == "retrieval-tfidf"}
    assert kinds["getter"]["n"] + kinds["setter"]["n"] == kinds["getter+setter"]["n"]
    assert kinds["getter+setter"]["n"] + kinds["other"]["n"] == len(tuned)
    for r in rows:
        assert r["ci"][0] <= r["difference"] <= r["ci"][1]
    # --by copy: an answer that is retrieval's own (up to whitespace) gets retrieval's verdict, so that split ties
    copy = {r["split"]: r for r in split_paired.split_paired(run, "contract_heldout", "copy", "behaviour_equivalent")
            if r["system"] == "retrieval-tfidf"}
    assert copy["copies retrieval"]["n"] + copy["own answer"]["n"] == len(tuned)
    assert 0 < copy["copies retrieval"]["n"] < len(tuned)
    assert copy["copies retrieval"]["difference"] == 0 and copy["copies retrieval"]["fine_tuned_wins"] == 0 \
        and copy["copies retrieval"]["other_wins"] == 0
