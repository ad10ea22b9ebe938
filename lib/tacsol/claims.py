"""The paper's and the training recommendations' figures in one place, and the tables that check them.

The figures and their sources are in ``data/claims.json`` (copied from docs/references.md and
docs/training-recommendations.md). The tools measure (``vram`` estimates, ``profile`` counts, ``compare`` collects
runs); this module sets what they measured beside what was claimed: notebook 01's data claims, notebook 02's
recommendations table, VRAM claims, 32B breakdown and throughput check, notebook 06's expected-vs-measured rows, and
the paper's reference lines in the evaluation figures (``tacsol.plots``). Tolerances are the kit's, stated here."""
from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import hardware as hwmod
from . import models as mm
from . import profile, vram
from .vram import GB, Plan, estimate

DATA = Path(__file__).resolve().parent / "data" / "claims.json"
PAPER = "paper (arXiv:2506.19624)"
RECOMMENDATIONS = "training-recommendations.md"
GB_TOLERANCE = 0.15  # a claimed memory figure holds within ±15% of the estimate (the calibration's band)


@functools.cache
def _entries() -> dict[str, dict[str, Any]]:
    return json.loads(DATA.read_text(encoding="utf-8"))["claims"]


def entries() -> dict[str, dict[str, Any]]:
    """Every claim: {key: {"value", "source", optional "note"}}."""
    return copy.deepcopy(_entries())


def value(key: str) -> Any:
    """The figure of one claim, as its source states it (a copy: callers may change it)."""
    return copy.deepcopy(_entries()[key]["value"])


def _span(lo_hi: Sequence[float]) -> str:
    lo, hi = lo_hi
    return f"{lo}–{hi}"


# ------------------------------------------------------------------------------------------- figures' markers
def paper_markers() -> dict[str, Any]:
    """The paper's figures that the evaluation figures draw as reference lines (tacsol.plots)."""
    out = {k: value(f"paper.{k}") for k in ("similarity_mean", "edit_box", "length_diff", "r_edit_similarity",
                                             "by_length", "security_tokens_within")}
    out["similarity_shares"] = {float(t): s for t, s in value("paper.similarity_shares").items()}
    out["edit_lt_0_4"] = tuple(value("paper.edit_lt_0_4"))
    return out


# ------------------------------------------------------------------------------------- notebook 01: the data
@dataclass
class Claim:
    claim: str
    source: str
    measured: str
    holds: str      # "yes" | "no" | "n/a"
    how: str


def data_claims(lengths, models: Sequence[str], entropy: Mapping[str, Any],
                entropy_tolerance: float = 0.05) -> list[dict[str, str]]:
    """Every quantitative claim the recommendations and the paper make about the data, with the number measured on
    ``lengths`` (tacsol.profile.measure) and ``entropy`` (tacsol.profile.entropy_report). Holds: chars/token within
    3.5–4.5; "most functions" = median inside the range and more than half of pairs in it; coverage claims at the
    stated share; entropy within ``entropy_tolerance`` (relative) of the paper."""
    rows: list[Claim] = []
    rec = RECOMMENDATIONS
    yn = lambda b: "yes" if b else "no"  # noqa: E731
    cpt_claim = value("recommendations.chars_per_token")
    for m in models:
        cpt = lengths["full_chars"].sum() / lengths[f"{m}:full"].sum()
        rows.append(Claim(f"~{cpt_claim} characters per token", rec, f"{cpt:.2f} chars/token ({m}, prompt + target)",
                          yn(3.5 <= cpt <= 4.5), "total characters / total tokens of the full sequences; holds if 3.5–4.5"))
    lo, hi = value("recommendations.function_tokens")
    for part, name in (("tac", "TAC"), ("sol", "Solidity")):
        for m in models:
            x = lengths[f"{m}:{part}"]
            share = float(((x >= lo) & (x <= hi)).mean())
            med = float(x.median())
            rows.append(Claim(f"most functions are {lo}–{hi} tokens of {name}", rec,
                              f"median {med:.0f} tokens, {share:.1%} of pairs in {lo}–{hi} ({m})",
                              yn(lo <= med <= hi and share > 0.5), f"holds if the median is in {lo}–{hi} and > 50% are"))
    cov = value("recommendations.coverage")
    for m in models:
        got = profile.coverage(lengths[f"{m}:full"], (cov["seq_len"],))[cov["seq_len"]]
        rows.append(Claim(f"{cov['seq_len']:,} tokens capture {cov['share']:.0%}+ of functions", rec,
                          f"{got:.2%} fit in {cov['seq_len']:,} ({m})", yn(got >= cov["share"]),
                          f"share of full sequences ≤ {cov['seq_len']:,} tokens"))
    head = value("recommendations.headroom")
    for m in models:
        x = lengths[f"{m}:full"]
        ratio = head["seq_len"] / float(x.median())
        rows.append(Claim(f"{head['seq_len']:,} gives {_span(head['times'])}× headroom", rec,
                          f"{head['seq_len']:,} / median {x.median():.0f} = {ratio:.1f}× ({m})",
                          yn(ratio >= head["times"][0]),
                          f"{head['seq_len']:,} divided by the median full sequence; holds if ≥ {head['times'][0]}×"))
    longest = value("recommendations.longest_fits")
    for m in models:
        mx = int(lengths[f"{m}:full"].max())
        rows.append(Claim(f"{longest:,} captures even the longest functions", rec, f"longest {mx:,} tokens ({m})",
                          yn(mx <= longest), f"holds if no full sequence exceeds {longest:,} tokens"))
    max_len = value("paper.max_seq_length")
    for m in models:
        got = profile.coverage(lengths[f"{m}:full"], (max_len,))[max_len]
        rows.append(Claim(f"max sequence length {max_len:,} tokens", PAPER, f"{got:.2%} fit in {max_len:,} ({m})",
                          yn(got == 1.0), "holds (is sufficient) if every full sequence fits"))
    rows.append(_peak_claim(lengths["sol_chars"]))
    rows += _entropy_claims(entropy, entropy_tolerance)
    n_pairs = len(lengths)
    rows.append(Claim(f"{value('paper.pairs'):,} function pairs", PAPER, f"{n_pairs:,} pairs in this dataset", "n/a",
                      "size of a different corpus; informational"))
    test_pairs = int((lengths["split"] == "test").sum())
    if test_pairs:
        paper_test = value("paper.test_functions")
        rows.append(Claim(f"test set {paper_test:,} functions ({paper_test / value('paper.pairs'):.1%})", PAPER,
                          f"{test_pairs:,} test pairs ({test_pairs / n_pairs:.1%})", "n/a", "informational"))
    return [asdict(r) for r in rows]


def _peak_claim(sol_chars) -> Claim:
    lo, hi = value("recommendations.function_chars")
    counts, edges = np.histogram(sol_chars, bins=np.arange(0, max(int(sol_chars.max()) + 100, 400), 100))
    mode = int(edges[int(np.argmax(counts))])
    share = float(((sol_chars >= lo) & (sol_chars < hi)).mean())
    return Claim(f"most functions in the {lo}–{hi} character range (peak)", RECOMMENDATIONS + " / paper",
                 f"Solidity modal 100-char bin {mode}–{mode + 100}; {share:.1%} in {lo}–{hi}; median {sol_chars.median():.0f}",
                 "yes" if mode == lo else "no", f"holds if the modal 100-character bin of Solidity length is {lo}–{hi}")


def _entropy_claims(entropy: Mapping[str, Any], tolerance: float) -> list[Claim]:
    paper = value("paper.entropy")
    rows = []
    for key, label in (("solidity", "bits per Solidity token"), ("tac", "bits per TAC instruction"),
                       ("bytecode", "bits per bytecode opcode")):
        want = paper[key]
        e = entropy.get(key)
        if e is None:
            rows.append(Claim(f"entropy {want} {label}", PAPER, "not measurable: the dataset has no bytecode",
                              "n/a", "needs runtime bytecode (a 'bytecode' column or bytecode file)"))
            continue
        extra = ""
        if key == "solidity" and entropy.get("solidity_kinds"):
            extra = f"; {entropy['solidity_kinds']['bits']:.2f} with identifiers/literals as classes"
        rows.append(Claim(f"entropy {want} {label}", PAPER,
                          f"{e['bits']:.2f} bits over {e['symbols']:,} symbols, vocabulary {e['vocabulary']:,}{extra}",
                          "yes" if abs(e["bits"] - want) <= tolerance * want else "no",
                          f"empirical unigram Shannon entropy; holds within ±{tolerance:.0%}"))
    have = [k for k in ("solidity", "tac", "bytecode") if entropy.get(k)]
    if len(have) >= 2:
        order = sorted(have, key=lambda k: entropy[k]["bits"])
        rows.append(Claim("entropy ordering Solidity < TAC < bytecode", PAPER,
                          " < ".join(f"{k} {entropy[k]['bits']:.2f}" for k in order),
                          "yes" if order == [k for k in ("solidity", "tac", "bytecode") if k in have] else "no",
                          "ordering of the measured entropies"))
    return rows


# --------------------------------------------------------------------------------- notebook 02: memory, speed
def recommendation_rows() -> list[dict[str, Any]]:
    """Rows of the recommendations' "Hardware Budget Analysis" table: config label, claimed GB (low, high), claimed
    verdict, and the registry model and plan changes the kit reads the config as."""
    return [{**r, "claim_gb": tuple(r["claim_gb"])} for r in value("recommendations.budget_rows")]


def _budget_row(config: str) -> dict[str, Any]:
    return next(r for r in recommendation_rows() if r["config"] == config)


def recommendations_table(hardware="rtx8000", gpus: int = 4, seq_len: int = 4096, micro_batch: int = 1,
                          margin: float = vram.DEFAULT_MARGIN) -> list[dict[str, Any]]:
    """Each row of the recommendations' budget table at (seq_len, micro_batch, checkpointing, the hardware's dtype and
    attention): the estimate summed over the GPUs the row uses, whether the claimed range holds (±15%), and whether
    it fits on `gpus` cards — with the plan changes that make it fit when the row's own plan does not. Per-GPU
    figures: allocated, reserved, and per_gpu_gb = the device view (nvidia-smi) the verdict uses."""
    out = []
    for row in recommendation_rows():
        spec = mm.get_model(row["model"])
        s = min(seq_len, spec.max_positions)
        plan = Plan(seq_len=s, micro_batch=micro_batch, **row["plan"])
        est = estimate(spec, plan, hardware)
        n = plan.n_gpus
        total = est.total_bytes * n / GB
        lo, hi = row["claim_gb"]
        fit_plan, changes, fit_est = vram.make_fit(spec, plan, hardware, n_gpus=gpus, margin=margin)
        v = vram.views_gb(est, margin)
        out.append({
            "config": row["config"], "model": spec.name, "claimed_gb": f"{lo}–{hi}" if lo != hi else f"{lo}",
            "claimed_fits": row["claim_fits"], "setting": est.detail["plan_text"], "seq_len": s,
            "allocated_gb": v["allocated_gb"], "reserved_gb": v["reserved_gb"],
            "per_gpu_gb": round(est.total_gb, 1), "gpus": n, "total_gb": round(total, 1),
            "weights_gb": round(est.terms["weights"] * n / GB, 1),
            "claim_holds": lo * (1 - GB_TOLERANCE) <= total <= hi * (1 + GB_TOLERANCE),
            "fits_as_stated": v["fits"], "fits_as_stated_before": v["fits_before"],
            "fits_4x": fit_plan is not None,
            "plan_that_fits": ("as stated" if not changes else " + ".join(changes)) if fit_plan else "none (" + " + ".join(changes) + ")",
            "fit_per_gpu_gb": round(fit_est.total_gb, 1),
        })
    return out


def breakdown_32b(hardware="rtx8000", seq_len: int | None = None, micro_batch: int | None = None) -> dict[str, Any]:
    """The recommendations' memory breakdown for Qwen2.5-Coder-32B 4-bit LoRA beside the estimate's terms, at the
    recommendations' 4,096 tokens × batch 4 unless told otherwise."""
    claim = value("recommendations.breakdown_32b")
    plan = Plan(method="qlora", seq_len=seq_len or claim["seq_len"], micro_batch=micro_batch or claim["micro_batch"])
    est = estimate("Qwen2.5-Coder-32B", plan, hardware)
    t, o = est.terms, est.overhead
    ours = {"weights": (t["weights"] + t["quant_workspace"]) / GB,
            "lora_and_optimizer": (t["lora"] + t["gradients"] + t["optimizer"]) / GB,
            "activations": t["activations"] / GB,
            "allocator_gap": sum(o[k] for k in vram.ALLOCATOR_KEYS) / GB,
            "context_and_nccl": sum(o[k] for k in vram.PROCESS_KEYS) / GB,
            "allocated": est.allocated_bytes / GB, "reserved": est.reserved_bytes / GB,
            "total": est.total_gb}
    return {"estimate_gb": {k: round(v, 2) for k, v in ours.items()},
            "recommended_gb": {k: tuple(v) for k, v in claim["gb"].items()},
            "fits": est.fits(), "capacity_gb": round(est.capacity_bytes / GB, 1), "estimate": est}


BREAKDOWN_TERMS = ("weights", "lora_and_optimizer", "activations", "allocator_gap", "context_and_nccl")


def breakdown_32b_views(hardware="rtx8000") -> dict[str, Any]:
    """Notebook 02's 32B breakdown at 4,096 tokens: the recommendations' claim (batch 4, each range's midpoint) beside
    the estimate at batch 4 and 1. ``bars``: label → term → GB (stacked bars); ``table``: one row per term, then
    allocated, reserved and total; ``batch4`` / ``batch1``: :func:`breakdown_32b`'s results."""
    b4 = breakdown_32b(hardware, seq_len=4096, micro_batch=4)
    b1 = breakdown_32b(hardware, seq_len=4096, micro_batch=1)
    claimed = b4["recommended_gb"]
    bars = {"recommendations\n(batch 4, claimed)": {k: float(np.mean(claimed[k])) if k in claimed else 0
                                                     for k in BREAKDOWN_TERMS},
            "estimate\nbatch 4": b4["estimate_gb"], "estimate\nbatch 1": b1["estimate_gb"]}
    table = [{"term": k, "recommendations_gb": str(claimed.get(k, "—")), "estimate_batch4_gb": b4["estimate_gb"][k],
              "estimate_batch1_gb": b1["estimate_gb"][k]} for k in (*BREAKDOWN_TERMS, "allocated", "reserved", "total")]
    return {"batch4": b4, "batch1": b1, "bars": bars, "table": table}


def _within(x: float, want: float) -> bool:
    return abs(x - want) / want <= GB_TOLERANCE


def vram_claims(hardware="rtx8000") -> list[dict[str, Any]]:
    """Claims of the recommendations (docs/references.md's list) against what the registry and the estimator say."""
    rows = []

    def add(claim, estimate_text, holds, basis):
        rows.append({"claim": claim, "estimate": estimate_text, "holds": bool(holds), "basis": basis})

    bd = value("recommendations.breakdown_32b")
    w_claim = bd["gb"]["weights"][0]
    w32 = estimate("Qwen2.5-Coder-32B", Plan(method="qlora"), hardware).terms["weights"] / GB
    add(f"32B 4-bit weights ≈ {w_claim} GB", f"{w32:.1f} GB (NF4 4.127 bit + 16-bit embeddings/lm_head)",
        _within(w32, w_claim), "meta-device count × NF4 double-quant bits")
    tr = value("recommendations.32b_training")
    e = estimate("Qwen2.5-Coder-32B", Plan(method="qlora", seq_len=tr["seq_len"], micro_batch=tr["micro_batch"]), hardware)
    add(f"32B 4-bit LoRA training uses ~{tr['gb']} GB, fits one GPU ({tr['seq_len']:,} tokens, batch {tr['micro_batch']})",
        f"{e.total_gb:.1f} GB per GPU", _within(e.total_gb, tr["gb"]) and e.fits(), "estimator, checkpointing on")
    lo, hi = bd["gb"]["total"]
    e4 = estimate("Qwen2.5-Coder-32B", Plan(method="qlora", seq_len=bd["seq_len"], micro_batch=bd["micro_batch"]), hardware)
    add(f"32B at {bd['seq_len']:,} tokens, batch {bd['micro_batch']}: {lo}–{hi} GB, fits a single RTX 8000",
        f"{e4.total_gb:.1f} GB", lo * (1 - GB_TOLERANCE) <= e4.total_gb <= hi * (1 + GB_TOLERANCE) and e4.fits(),
        "estimator, checkpointing on")
    r70 = _budget_row("70B (4-bit LoRA)")
    lo, hi = r70["claim_gb"]
    e70 = estimate(r70["model"], Plan(method="qlora", seq_len=4096), hardware)
    e70s = estimate(r70["model"], Plan(method="qlora", seq_len=512), hardware)
    add(f"70B 4-bit LoRA ≈ {lo}–{hi} GB (fits {r70['claim_fits'].split(' ', 1)[1]})", f"{e70s.total_gb:.1f} GB at 512 tokens; {e70.total_gb:.1f} GB at 4,096",
        e70.total_gb <= hi * (1 + GB_TOLERANCE), "estimator; measured 61–76 GB for Qwen-72B Q-LoRA (calibration)")
    lite = mm.get_model("DeepSeek-Coder-V2-Lite")
    add(f"DeepSeek-Coder-V2-Lite-Instruct is a {value('recommendations.deepseek_lite_dense_b')}B dense variant",
        f"{mm.param_count(lite) / 1e9:.1f}B total, {mm.active_params(lite) / 1e9:.1f}B active, MoE "
        f"({lite.cfg('n_routed_experts')} routed + {lite.cfg('n_shared_experts')} shared experts)", False, "meta-device count")
    v3c = value("recommendations.deepseek_v3_gb")
    lo, hi = v3c["gb"]
    n = v3c["gpus"][1]
    v3 = estimate("DeepSeek-V3", Plan(method="qlora", seq_len=4096, sharding="zero3", n_gpus=n), hardware)
    w_v3 = v3.terms["weights"] * n / GB
    add(f"DeepSeek-V3 in 4-bit ≈ {lo}–{hi} GB on {_span(v3c['gpus'])} GPUs", f"{w_v3:.0f} GB of 4-bit weights alone (> 4 × 48 GB)",
        w_v3 <= hi * (1 + GB_TOLERANCE), "meta-device count 671B × 4.127 bit")
    ctx = value("recommendations.32b_context")
    q = mm.get_model("Qwen2.5-Coder-32B")
    add(f"Qwen2.5-Coder-32B has {ctx // 1024}K context natively", f"config max_position_embeddings = {q.max_positions:,}; "
        f"{ctx:,} needs rope_scaling (YaRN ×4)", q.max_positions >= ctx, "config.json")
    want = value("recommendations.deepspeed_dtype")
    ch = hwmod.choices(hardware)
    add(f"DeepSpeed `\"{want}\": {{\"enabled\": true}}` on RTX 8000", f"{ch.dtype} with loss scaling, attention "
        f"{ch.attn_implementation}", ch.dtype == want, "hardware profile: sm_75, no native bf16")
    longer = value("recommendations.longer_seq_memory")
    a4 = estimate("Qwen2.5-Coder-32B", Plan(method="qlora", seq_len=4096), hardware).terms["activations"]
    a8 = estimate("Qwen2.5-Coder-32B", Plan(method="qlora", seq_len=longer["seq_len"]), hardware).terms["activations"]
    add(f"Going to {longer['seq_len']:,} tokens doubles memory per sample", f"activations ×{a8 / a4:.2f} (sdpa: linear in s); "
        "total memory grows less", abs(a8 / a4 - longer["factor"]) <= 0.3, "estimator")
    r405 = _budget_row("405B (4-bit)")
    e405 = estimate(r405["model"], Plan(seq_len=4096, **r405["plan"]), hardware)
    add("405B 4-bit: too tight for 4× RTX 8000", f"{e405.total_gb:.0f} GB per GPU with ZeRO-3 ×4", not e405.fits(),
        "estimator")
    return rows


def throughput_measurements() -> list[dict[str, Any]]:
    """Published training throughputs as tokens/s per GPU (each row's figure as its source states it, converted)."""
    out = []
    for r in value("throughput.measurements"):
        if "tokens_per_s_total" in r:
            r["tokens_per_s"] = r.pop("tokens_per_s_total") / r["gpus"]
        elif "s_per_step" in r:
            r["tokens_per_s"] = r.pop("tokens_per_step") / r.pop("s_per_step")
        out.append(r)
    return out


def throughput_check(mfu: float = vram.DEFAULT_MFU) -> list[dict[str, Any]]:
    """Model tokens/s (MFU assumption, checkpointing on) vs published throughputs, with the MFU each implies."""
    out = []
    for r in throughput_measurements():
        plan = Plan(method=r["method"], weights=None if r["method"] == "qlora" else "bf16")
        pred = vram.throughput(r["model"], plan, r["hardware"], mfu)
        out.append({"id": r["id"], "measured_tokens_per_s": round(r["tokens_per_s"], 1),
                    "model_tokens_per_s": round(pred, 1), "ratio": round(pred / r["tokens_per_s"], 2),
                    "implied_mfu": round(mfu * r["tokens_per_s"] / pred, 3), "note": r.get("note", "")})
    return out


# --------------------------------------------------------------------------------- notebook 06: the results
def expected_vs_measured(evals, runs):
    """The numbers the paper and the recommendations expect beside what each run measured, and what the run was
    (``evals``/``runs``: tacsol.compare.eval_table / runs_table)."""
    import pandas as pd

    lo32, hi32 = value("recommendations.similarity_32b")
    # (phase, claim, metric, expected, lowest value that meets it)
    expected = [
        ("03", f"{PAPER}: Llama-3.2-3B LoRA mean similarity", "similarity_mean", value("paper.similarity_mean"), None),
        ("03", "paper: share with similarity > 0.8", "share_sim_gt_0_8", value("paper.similarity_shares")["0.8"], None),
        ("04", f"recommendations: Qwen2.5-Coder-32B mean similarity {lo32}–{hi32}", "similarity_mean",
         (lo32 + hi32) / 2, lo32),
        ("05", "recommendations: 70B ≥ 32B quality (no number given)", "similarity_mean", None, None),
    ]
    rows = []
    for number, claim, metric, want, meets_at in expected:
        sub = evals[(evals["phase"].str[:2] == number) & (evals["system"] == "fine-tuned")] if len(evals) else evals
        if len(sub) == 0:
            rows.append({"claim": claim, "expected": want, "measured": None, "run": None,
                         "what ran": "no run of this phase found", "verdict": "not measured"})
            continue
        for _, r in sub.iterrows():
            measured = r.get(metric)
            what = f"{r['kind']} run: {r.get('model')}"
            rr = runs[(runs["run"] == r["run"]) & (runs["phase"] == r["phase"])] if len(runs) else runs
            if len(rr):
                what += f" on {rr.iloc[0]['hardware']}"
            if r["kind"] == "smoke":
                verdict = "not comparable (smoke run)"
            elif want is None or measured is None or (isinstance(measured, float) and math.isnan(measured)):
                verdict = "no number to compare"
            else:
                verdict = "meets" if measured >= (meets_at if meets_at is not None else want) else "below"
            rows.append({"claim": claim, "expected": want, "measured": measured, "run": r["run"],
                         "what ran": what, "verdict": verdict})
    return pd.DataFrame(rows)
