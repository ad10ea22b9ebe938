"""The paper's and the recommendations' figures (tacsol.claims, data/claims.json): every figure names a source in the
repository, the figures are the ones notebooks 01, 02, 06 and the evaluation figures showed before they moved here,
and the tables built on them read them."""
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from tacsol import claims
from tacsol import profile as PR

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "profile" / "pairs.jsonl"

# The figures as vram.RECOMMENDATION_ROWS / RECOMMENDED_32B_BREAKDOWN / THROUGHPUT_MEASUREMENTS, profile.PAPER_ENTROPY,
# compare.PAPER_* and plots.PAPER held them before they moved to data/claims.json.
BEFORE = {
    "paper.similarity_mean": 0.82,
    "paper.similarity_shares": {"0.7": 0.90, "0.8": 0.783, "0.85": 0.50, "0.9": 0.452},
    "paper.edit_lt_0_4": [0.825, 0.60],
    "paper.edit_box": {"median": 0.3, "q1": 0.2, "q3": 0.45},
    "paper.length_diff": {"median": 5, "std": 254.18, "within_50": 0.6764, "min": -2897, "max": 16434},
    "paper.r_edit_similarity": -0.72,
    "paper.r_length": 0.89,
    "paper.by_length": {"<1000": 0.85, ">=1000": 0.70},
    "paper.entropy": {"solidity": 4.22, "tac": 5.78, "bytecode": 6.30},
    "recommendations.similarity_32b": [0.88, 0.92],
}
BUDGET_BEFORE = [  # (config, claimed GB, claimed verdict, model, plan)
    ("3B (paper baseline, 4-bit)", (2, 4), "✅ Trivially", "Llama-3.2-3B", {"method": "qlora"}),
    ("8B (4-bit LoRA)", (6, 8), "✅ Trivially", "Llama-3.1-8B", {"method": "qlora"}),
    ("14B (4-bit LoRA)", (10, 12), "✅ Easily", "Phi-3-medium-4k", {"method": "qlora"}),
    ("32B (4-bit LoRA)", (20, 24), "✅ Single GPU", "Qwen2.5-Coder-32B", {"method": "qlora"}),
    ("70B (4-bit LoRA)", (40, 48), "✅ 1–2 GPUs", "Llama-3.1-70B", {"method": "qlora"}),
    ("70B (full bf16, LoRA)", (140, 140), "✅ Across 4 GPUs", "Llama-3.1-70B",
     {"method": "lora", "sharding": "zero3", "n_gpus": 4}),
    ("72B (4-bit LoRA, training)", (80, 100), "✅ Across 2–3 GPUs", "Qwen2.5-72B",
     {"method": "qlora", "sharding": "zero3", "n_gpus": 2}),
    ("405B (4-bit)", (200, 250), "❌ Too tight", "Llama-3.1-405B", {"method": "qlora", "sharding": "zero3", "n_gpus": 4}),
]
THROUGHPUT_BEFORE = {"torchtune-8b-qlora-rtx4090": 2413, "torchtune-8b-lora-a6000": 4699,
                     "torchtune-70b-lora-8xa100": 3497 / 8, "rtx8000-qwen7b-qlora-8192": 8192 / 33.6}
VRAM_CLAIMS_BEFORE = [
    "32B 4-bit weights ≈ 18 GB", "32B 4-bit LoRA training uses ~24 GB, fits one GPU (4,096 tokens, batch 2)",
    "32B at 4,096 tokens, batch 4: 30–34 GB, fits a single RTX 8000", "70B 4-bit LoRA ≈ 40–48 GB (fits 1–2 GPUs)",
    "DeepSeek-Coder-V2-Lite-Instruct is a 33B dense variant", "DeepSeek-V3 in 4-bit ≈ 80–100 GB on 2–3 GPUs",
    "Qwen2.5-Coder-32B has 128K context natively", 'DeepSpeed `"bf16": {"enabled": true}` on RTX 8000',
    "Going to 8,192 tokens doubles memory per sample", "405B 4-bit: too tight for 4× RTX 8000"]
DATA_CLAIMS_BEFORE = [
    "~4 characters per token", "most functions are 50–150 tokens of TAC", "most functions are 50–150 tokens of Solidity",
    "4,096 tokens capture 95%+ of functions", "4,096 gives 10–20× headroom", "8,192 captures even the longest functions",
    "max sequence length 20,000 tokens", "most functions in the 200–300 character range (peak)",
    "entropy 4.22 bits per Solidity token", "entropy 5.78 bits per TAC instruction", "entropy 6.3 bits per bytecode opcode",
    "entropy ordering Solidity < TAC < bytecode", "238,446 function pairs", "test set 9,731 functions (4.1%)"]
RESULT_CLAIMS_BEFORE = [
    ("paper (arXiv:2506.19624): Llama-3.2-3B LoRA mean similarity", 0.82),
    ("paper: share with similarity > 0.8", 0.783),
    ("recommendations: Qwen2.5-Coder-32B mean similarity 0.88–0.92", 0.9),
    ("recommendations: 70B ≥ 32B quality (no number given)", None)]


def _sources(entry):
    yield entry["source"]
    rows = entry["value"] if isinstance(entry["value"], list) else []
    yield from (r["source"] for r in rows if isinstance(r, dict) and "source" in r)


@pytest.mark.parametrize("key", sorted(claims.entries()))
def test_every_claim_names_a_source_the_repository_holds(key):
    entry = claims.entries()[key]
    assert entry.get("value") is not None
    for source in _sources(entry):
        docs = re.findall(r"docs/[\w./-]+\.md", source)
        assert docs, f"{key}: source {source!r} names no document of the repository"
        for d in docs:
            assert (ROOT / d).is_file(), f"{key}: {d} is missing"
        if key.startswith("paper."):
            assert "arXiv:2506.19624" in source


def test_throughput_rows_name_their_own_source():
    assert all(r["source"] for r in claims.value("throughput.measurements"))


def test_figures_are_the_ones_shown_before():
    for key, want in BEFORE.items():
        assert claims.value(key) == want, key
    got = [(r["config"], r["claim_gb"], r["claim_fits"], r["model"], r["plan"]) for r in claims.recommendation_rows()]
    assert got == BUDGET_BEFORE
    assert claims.breakdown_32b()["recommended_gb"] == {"weights": (18, 18), "lora_and_optimizer": (4, 4),
                                                        "activations": (8, 12), "total": (30, 34)}
    assert {r["id"]: r["tokens_per_s"] for r in claims.throughput_measurements()} == THROUGHPUT_BEFORE
    markers = claims.paper_markers()
    assert markers["similarity_shares"] == {0.7: 0.90, 0.8: 0.783, 0.85: 0.50, 0.9: 0.452}
    assert markers["edit_lt_0_4"] == (0.825, 0.60) and markers["security_tokens_within"] == 0.02


def test_value_is_a_copy():
    claims.value("paper.entropy")["tac"] = 0
    claims.recommendation_rows()[0]["plan"]["method"] = "lora"
    assert claims.value("paper.entropy")["tac"] == 5.78
    assert claims.recommendation_rows()[0]["plan"] == {"method": "qlora"}


def test_vram_claims_read_the_figures():
    rows = claims.vram_claims("rtx8000")
    assert [r["claim"] for r in rows] == VRAM_CLAIMS_BEFORE
    assert all(isinstance(r["holds"], bool) and r["estimate"] and r["basis"] for r in rows)
    by = {r["claim"]: r["holds"] for r in rows}
    assert not by["DeepSeek-Coder-V2-Lite-Instruct is a 33B dense variant"]
    assert not by['DeepSpeed `"bf16": {"enabled": true}` on RTX 8000']  # sm_75: fp16 with loss scaling


def test_recommendations_table_and_breakdown():
    rec = pd.DataFrame(claims.recommendations_table("rtx8000"))
    assert list(rec["config"]) == [r[0] for r in BUDGET_BEFORE]
    assert rec.set_index("config").loc["70B (full bf16, LoRA)", "claimed_gb"] == "140"
    assert rec.set_index("config").loc["3B (paper baseline, 4-bit)", "claimed_gb"] == "2–4"
    b = claims.breakdown_32b("rtx8000")
    assert b["estimate"].plan["seq_len"] == 4096 and b["estimate"].plan["micro_batch"] == 4
    assert b["estimate_gb"]["total"] >= b["estimate_gb"]["reserved"] >= b["estimate_gb"]["allocated"]
    views = claims.breakdown_32b_views("rtx8000")
    assert views["batch4"]["estimate_gb"] == b["estimate_gb"] and views["bars"]["estimate\nbatch 4"] == b["estimate_gb"]
    claimed = views["bars"]["recommendations\n(batch 4, claimed)"]
    assert claimed["weights"] == 18 and claimed["allocator_gap"] == 0  # range midpoints; a term not claimed is 0
    assert [r["term"] for r in views["table"]][-3:] == ["allocated", "reserved", "total"]
    assert views["table"][-1]["estimate_batch1_gb"] == views["batch1"]["estimate_gb"]["total"]


def test_throughput_check_rows():
    rows = claims.throughput_check(0.3)
    assert [r["id"] for r in rows] == list(THROUGHPUT_BEFORE)
    for r in rows:
        assert r["ratio"] == pytest.approx(r["model_tokens_per_s"] / r["measured_tokens_per_s"], abs=0.006)
        assert r["implied_mfu"] == pytest.approx(0.3 * r["measured_tokens_per_s"] / r["model_tokens_per_s"], abs=0.002)


def test_data_claims_on_fixture():
    df = PR.load_pairs(FIXTURE)
    lengths = PR.measure(df, ["smollm2"])
    rows = claims.data_claims(lengths, ["smollm2"], PR.entropy_report(df))
    assert [r["claim"] for r in rows] == DATA_CLAIMS_BEFORE
    assert {r["holds"] for r in rows} <= {"yes", "no", "n/a"}
    assert any("no bytecode" in r["measured"] for r in rows)
    assert rows[-1]["measured"] == f"{(df['split'] == 'test').sum()} test pairs ({(df['split'] == 'test').mean():.1%})"
    no_test = claims.data_claims(lengths[lengths["split"] != "test"], ["smollm2"], PR.entropy_report(df))
    assert [r["claim"] for r in no_test] == DATA_CLAIMS_BEFORE[:-1]  # no test split: no test-size row


def test_expected_vs_measured_reads_the_figures():
    runs = pd.DataFrame([{"run": "gpu", "phase": "04_train_32b", "hardware": "4× RTX 8000"}])
    evals = pd.DataFrame([{"run": "gpu", "phase": "04_train_32b", "system": "fine-tuned", "kind": "full",
                           "model": "Qwen/Qwen2.5-Coder-32B", "similarity_mean": 0.89, "share_sim_gt_0_8": 0.7}])
    t = claims.expected_vs_measured(evals, runs)
    assert [(r.claim, None if r.expected is None or math.isnan(r.expected) else round(r.expected, 6))
            for r in t.itertuples()] == RESULT_CLAIMS_BEFORE
    row = t.set_index("claim").loc["recommendations: Qwen2.5-Coder-32B mean similarity 0.88–0.92"]
    assert row["verdict"] == "meets" and row["what ran"] == "full run: Qwen/Qwen2.5-Coder-32B on 4× RTX 8000"
    assert (t.set_index("claim").loc[RESULT_CLAIMS_BEFORE[0][0], "verdict"]) == "not measured"


def test_repository_cites_no_document_outside_it():
    """Facts are cited from docs/references.md (copied with their original sources), never from the study's brief
    outside the repository (../shared/*.md: reference.md, offline-assets.md, training-recommendations.md)."""
    outside = re.compile(r"\.\./shared|\bshared/[\w-]+\.md|offline-assets\.md|(?<![\w/])" + r"reference\.md")
    files = [ROOT / "README.md"] + [f for d in ("lib", "tests", "tools", "docs", "notebooks", "params")
                                    for f in (ROOT / d).rglob("*")]
    hits = []
    for f in files:
        if f.suffix in (".md", ".py", ".ipynb", ".json", ".yaml", ".yml", ".js") and f != Path(__file__).resolve():
            hits += [f"{f.relative_to(ROOT)}: {m.group(0)}" for m in outside.finditer(f.read_text(errors="replace"))]
    assert not hits
