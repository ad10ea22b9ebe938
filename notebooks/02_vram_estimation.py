# %% [markdown]
# # 02 · VRAM estimation — which models, sequence lengths and plans fit on 4× RTX 8000?
#
# The recommendations' hardware-budget table was written by hand. This phase replaces it with an estimator
# (`tacsol.vram`): per-GPU memory as separate terms (weights by precision, LoRA, gradients, optimizer states,
# activations, sharding) for registry architectures whose parameter counts come from instantiating them on
# the meta device (`tacsol.models`). Each estimate has three views per GPU: **allocated** (live tensors,
# `torch.cuda.max_memory_allocated`), **reserved** (+ what the caching allocator cannot hand back: segment rounding,
# one stranded segment of the step's largest transient, DeepSpeed buckets; `max_memory_reserved`) and **device**
# (+ CUDA context and NCCL buffers: what nvidia-smi shows). Every verdict here — and the fit check before a launch —
# is device ≤ (1 − margin) × the card. It reads no data and loads no weights; it writes figures, tables (CSV) and
# `summary.json` into `output_dir`. The defaults are the real phase and run on a CPU in well under a minute;
# `params/02_vram_estimation.yaml` only restates them. On a GPU machine, `measure_gpu = True` adds measured peaks of
# random-initialised reduced-depth models.

# %% tags=["parameters"]
# Embedded default = the real phase (pure estimation, CPU, < 1 min). `-f params/02_vram_estimation.yaml` restates it.
run_name = "demo"
output_dir = "outputs/demo/02_vram_estimation"
smoke = False
hardware = "rtx8000"
gpus = 4
seq_len = 4096
micro_batch = 1
margin = 0.05
lora_rank = 16
heatmap_models = ["Llama-3.2-3B", "Llama-3.1-8B", "StarCoder2-15B", "Qwen2.5-Coder-32B", "CodeLlama-34B", "Llama-3.1-70B"]
heatmap_seq_lens = [512, 1024, 2048, 4096, 8192, 16384]
heatmap_micro_batches = [1, 2, 4, 8]
maxlen_models = ["SmolLM2-135M", "Llama-3.2-3B", "Llama-3.1-8B", "Phi-3-medium-4k", "StarCoder2-15B", "Codestral-22B", "DeepSeek-Coder-V2-Lite", "Qwen2.5-Coder-32B", "CodeLlama-34B", "Llama-3.1-70B", "Qwen2.5-72B"]
gpu_hours_models = ["Llama-3.2-3B", "Llama-3.1-8B", "Qwen2.5-Coder-32B", "Llama-3.1-70B"]
train_pairs = 238446
eval_pairs = 9731
mean_tokens_per_pair = 600
mean_generated_tokens = 250
epochs = 3
mfu = 0.15
tokens_per_s = None
measure_gpu = False

# %%
import tacsol.params
params = tacsol.params.check_notebook(globals(), "02")   # refuses unknown / mistyped keys
import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tacsol import hardware as hwmod
from tacsol import claims, models, paths, summary, vram
from tacsol.ioutil import atomic_write_json

out = paths.resolve(output_dir); out.mkdir(parents=True, exist_ok=True)
HW_LINE = summary.hardware_line()
print("computed on:", HW_LINE)
pd.set_option("display.width", 220); pd.set_option("display.max_colwidth", 80)
choices = hwmod.choices(hardware)
profile = hwmod.load_profile(hardware)
print(f"target: {gpus}× {profile.display} → training dtype {choices.dtype} "
      f"(loss scaling: {choices.loss_scaling}), attention {choices.attn_implementation}")
BASE = vram.Plan(method="qlora", lora_rank=lora_rank, seq_len=seq_len, micro_batch=micro_batch)
CAPTION = f"estimates by tacsol.vram for {profile.display} ({choices.dtype}, {choices.attn_implementation}); computed on {HW_LINE}"

def save_table(df, name):
    df.to_csv(out / f"{name}.csv", index=False)
    return df


# %% [markdown]
# ## Parameter counts (meta device) vs published totals

# %%
reg = save_table(pd.DataFrame(models.registry_table()), "registry")
reg

# %% [markdown]
# ## The recommendations' hardware-budget table, recomputed
# Each row at the recommended 4,096 tokens (capped at the model's positions), micro-batch 1, gradient checkpointing,
# and the RTX 8000's dtype/attention. "claim holds" = the estimate over the GPUs the row uses lies within the
# claimed range ±15%. "fits 4×" = it fits on 4 cards as stated or after the listed changes. `per_gpu_gb` is the device view
# (nvidia-smi: reserved + CUDA context) that the verdict uses; `allocated_gb` and `reserved_gb` are the torch views.

# %%
rec = save_table(pd.DataFrame(claims.recommendations_table(hardware, gpus=gpus, seq_len=seq_len, micro_batch=micro_batch, margin=margin)), "recommendations_recomputed")
rec["fits on 4× RTX 8000"] = rec.apply(lambda r: ("✅ " if r.fits_4x else "❌ ") + r.plan_that_fits, axis=1)
rec[["config", "claimed_gb", "claimed_fits", "weights_gb", "allocated_gb", "reserved_gb", "per_gpu_gb", "gpus", "total_gb",
     "claim_holds", "fits on 4× RTX 8000", "fit_per_gpu_gb"]]

# %% [markdown]
# ## Qwen2.5-Coder-32B at 4,096 tokens: the recommendations' breakdown beside the estimate

# %%
views = claims.breakdown_32b_views(hardware)
b4 = views["batch4"]
fig, ax = plt.subplots(figsize=(8, 4.2))
cols = {"weights": "#4c72b0", "lora_and_optimizer": "#dd8452", "activations": "#55a868", "allocator_gap": "#c44e52",
        "context_and_nccl": "#8c8c8c"}
bars = views["bars"]
for i, (label, d) in enumerate(bars.items()):
    left = 0
    for k in claims.BREAKDOWN_TERMS:
        ax.barh(i, d.get(k, 0), left=left, color=cols[k], label=k if i == 0 else None)
        left += d.get(k, 0)
    ax.text(left + 0.5, i, f"{left:.1f} GB", va="center")
ax.axvline(profile.memory_mib * 2**20 / 1e9, color="red", ls="--", label=f"capacity {profile.memory_mib * 2**20 / 1e9:.1f} GB")
ax.axvline(profile.memory_mib * 2**20 / 1e9 * (1 - margin), color="red", ls=":", label=f"limit (margin {margin:.0%})")
ax.set_yticks(range(len(bars))); ax.set_yticklabels(list(bars)); ax.set_xlabel("GB per GPU (device view)")
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
ax.set_title("Qwen2.5-Coder-32B QLoRA r=16, 4,096 tokens, checkpointing")
fig.text(0.01, -0.02, CAPTION, fontsize=7)
fig.tight_layout(); fig.savefig(out / "breakdown_32b_4k.png", dpi=120, bbox_inches="tight"); plt.show()
bd = save_table(pd.DataFrame(views["table"]), "breakdown_32b_4k")
print("activation parts at batch 4 (GB):", b4["estimate"].detail["activation_parts_gb"])
print("largest transient at batch 4:", b4["estimate"].detail["largest_transient"])
bd

# %% [markdown]
# ## Memory over sequence length × micro-batch (one GPU, QLoRA r=16, checkpointing)
# Numbers are the device view (reserved + CUDA context). Cells above the card after the margin are marked ✗;
# sequence lengths beyond a model's positions are blank.

# %%
heat = save_table(pd.DataFrame(vram.memory_grid(heatmap_models, heatmap_seq_lens, heatmap_micro_batches, BASE,
                                                hardware, margin)), "heatmap_grid")
ncol = 3
nrow = int(np.ceil(len(heatmap_models) / ncol))
fig, axes = plt.subplots(nrow, ncol, figsize=(4.3 * ncol, 3.8 * nrow), squeeze=False, constrained_layout=True)
cap_gb = profile.memory_mib * 2**20 / 1e9
for ax, name in zip(axes.flat, heatmap_models):
    cells = heat[heat.model == name]
    grid = cells.pivot(index="micro_batch", columns="seq_len", values="total_gb").reindex(
        index=heatmap_micro_batches, columns=heatmap_seq_lens)
    im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=2 * cap_gb, aspect="auto", origin="lower")
    for r in cells.itertuples():
        ax.text(heatmap_seq_lens.index(r.seq_len), heatmap_micro_batches.index(r.micro_batch),
                f"{r.total_gb:.0f}" + ("" if r.fits else "✗"), ha="center", va="center", fontsize=7,
                color="white" if r.total_gb < cap_gb else "black")
    ax.set_xticks(range(len(heatmap_seq_lens))); ax.set_xticklabels(heatmap_seq_lens, fontsize=7, rotation=45)
    ax.set_yticks(range(len(heatmap_micro_batches))); ax.set_yticklabels(heatmap_micro_batches, fontsize=7)
    ax.set_title(name, fontsize=9); ax.set_xlabel("sequence length", fontsize=8); ax.set_ylabel("micro-batch", fontsize=8)
for ax in list(axes.flat)[len(heatmap_models):]:
    ax.axis("off")
fig.colorbar(im, ax=axes, shrink=0.6, label="GB per GPU (device view)")
fig.suptitle(f"Per-GPU memory, QLoRA r={lora_rank}, checkpointing — ✗ = over {profile.display} minus {margin:.0%}")
fig.text(0.01, -0.01, CAPTION, fontsize=7)
fig.savefig(out / "heatmaps.png", dpi=110, bbox_inches="tight"); plt.show()

# %% [markdown]
# ## Allocated, reserved and nvidia-smi per plan — which 4× RTX 8000 plans change verdict
# Every documented 4× RTX 8000 plan (the 04/05 params files as the launch fit check sees them, notebook 02's base plans,
# the measured Qwen2.5-Coder-7B 8,192-token run, the recommendations' rows) in its three views, with the verdict before
# issue 17 (allocated × 1.05 + 0.5 GiB) and now (device view, 5% margin). **What changes (docs/vram.md):** the three
# Qwen2.5-Coder-32B launch plans — `04_train_32b` (4,096 × 2, DDP × 4), `04_train_32b_1gpu` (4,096 × 2) and
# `04_train_32b_8k` (8,192 × 1, DDP × 4) — move from "fits" to "does not fit": their 5 GB fp32 loss buffer leaves no
# room for a stranded segment on a 48 GB card. 4,096 × 1 (with gradient accumulation 2) or ZeRO-3 over the four cards
# fits. The measured 7B run at batch 2 now reads "does not fit", as the hardware said; batch 1 still fits. No plan in
# this table moves the other way. In the heatmap above, StarCoder2-15B at 16,384 × 2, 8,192 × 4 and 4,096 × 8 lose
# "fits" and Llama-3.1-70B on one card at 1,024 × 1 and 512 × 2 gain it (the old flat 5% reserve was larger than
# the modelled gap there); the longest Qwen2.5-Coder-32B sequence on one card drops from 9,728 to 8,448 tokens.

# %%
plans = save_table(pd.DataFrame(vram.rtx8000_plans_table(hardware, gpus=gpus, margin=margin)), "plans_allocated_reserved")
fig, ax = plt.subplots(figsize=(9, 0.32 * len(plans) + 1.2))
y = np.arange(len(plans))
for off, col, lab, c in ((-0.27, "allocated_gb", "allocated", "#4c72b0"), (0.0, "reserved_gb", "reserved", "#dd8452"),
                         (0.27, "device_gb", "device (nvidia-smi)", "#55a868")):
    ax.barh(y + off, plans[col], 0.27, label=lab, color=c)
ax.axvline(plans.limit_gb.iloc[0], color="red", ls=":", label=f"limit ({margin:.0%} margin)")
ax.axvline(profile.memory_mib * 2**20 / 1e9, color="red", ls="--", label="capacity")
for i, r in plans.iterrows():
    mark = "✓" if r.fits else "✗"
    ax.text(min(r.device_gb, 95) + 0.5, i, mark + (" (changed)" if r.change != "unchanged" else ""), va="center", fontsize=7)
ax.set_yticks(y, [f"{p}  [{k.split(' ')[0]}]" for p, k in zip(plans.plan, plans.kind)], fontsize=7)
ax.invert_yaxis(); ax.set_xlim(0, 100); ax.set_xlabel("GB per GPU"); ax.legend(fontsize=7, loc="upper right")
ax.set_title(f"Allocated vs reserved vs device per plan on {profile.display} (✓ fits, ✗ does not)")
fig.text(0.01, -0.01, CAPTION, fontsize=7)
fig.tight_layout(); fig.savefig(out / "plans_allocated_reserved.png", dpi=120, bbox_inches="tight"); plt.show()
changed = plans[plans.change != "unchanged"]
print("verdicts that changed:", "none" if changed.empty else "")
for r in changed.itertuples():
    print(f"  {r.plan}: {r.change} (device {r.device_gb:.1f} GB vs limit {r.limit_gb:.1f}; before {r.before_gb:.1f})")
plans[["plan", "kind", "allocated_gb", "reserved_gb", "device_gb", "limit_gb", "fits_before", "fits", "change", "largest_transient"]]

# %% [markdown]
# ## Longest sequence that fits on one 48 GB card (micro-batch 1, QLoRA r=16, checkpointing)

# %%
ml = save_table(pd.DataFrame(vram.longest_sequence_table(maxlen_models, BASE, hardware, margin)), "longest_sequence")
fig, ax = plt.subplots(figsize=(8, 0.35 * len(ml) + 1))
ax.barh(ml["model"], ml["longest_seq_that_fits"], color=["#55a868" if x == "positions" else "#c44e52" for x in ml["limited_by"]])
for i, r in ml.iterrows():
    ax.text(r.longest_seq_that_fits, i, f" {r.longest_seq_that_fits:,} ({r.limited_by})", va="center", fontsize=8)
ax.set_xscale("symlog", linthresh=1024); ax.set_xlabel("tokens (micro-batch 1)")
ax.set_title(f"Longest training sequence on one {profile.display}")
fig.text(0.01, -0.04, CAPTION, fontsize=7)
fig.tight_layout(); fig.savefig(out / "longest_sequence.png", dpi=120, bbox_inches="tight"); plt.show()
ml

# %% [markdown]
# ## Claims in the recommendations vs the estimate

# %%
claim_table = save_table(pd.DataFrame(claims.vram_claims(hardware)), "claims")
claim_table["verdict"] = claim_table["holds"].map({True: "holds", False: "does not hold"})
claim_table[["claim", "estimate", "verdict", "basis"]]

# %% [markdown]
# ## Calibration: estimate vs every published measurement, like with like
# Plans are the recipe facts of each run (`lib/tacsol/data/vram/calibration.json`); no constant is fitted per row.
# Each row is compared with the quantity its source measured (`measured_as`): `allocated` with
# `torch.cuda.max_memory_allocated`, `reserved` with `max_memory_reserved`, `device` with nvidia-smi (or with a method
# the source does not state). OOM/ran rows are verdicts: they hold when the kit's fit check says "does not fit"/"fits".
# A row outside ±15% carries its named cause (`cause`; docs/vram.md lists them).

# %%
cal = pd.DataFrame(vram.calibration_table(margin=margin))
extra = vram.measured_calibration_rows() if measure_gpu else []
if measure_gpu and not extra:
    print("measure_gpu=True but no CUDA device: skipped")
if extra:
    cal = pd.concat([cal, pd.DataFrame(extra)], ignore_index=True)
save_table(cal, "calibration")
cs = vram.calibration_summary(cal.to_dict("records"))
print(cs)
fig, ax = plt.subplots(figsize=(6.5, 5.5))
num = cal[cal["rel_error"].notna()]
colour = np.where(num["within_15pct"], "#55a868", np.where(num["explained"] == True, "#dd8452", "#c44e52"))  # noqa: E712
markers = {"allocated": "o", "reserved": "s", "device": "^", "weights": "D", "lora": "v"}
for cmp, m in markers.items():
    sel = (num["compare"] == cmp).to_numpy()
    ax.scatter(num["measured_gb"][sel], num["estimate_gb"][sel], c=colour[sel], marker=m, label=cmp)
for _, r in num.iterrows():
    ax.annotate(r["id"], (r["measured_gb"], r["estimate_gb"]), fontsize=5, xytext=(3, 3), textcoords="offset points")
lim = [0.2, 120]
ax.plot(lim, lim, "k-", lw=0.8); ax.plot(lim, [x * 1.15 for x in lim], "k:", lw=0.6); ax.plot(lim, [x * 0.85 for x in lim], "k:", lw=0.6)
ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlim(lim); ax.set_ylim(lim)
ax.legend(handles=[matplotlib.lines.Line2D([], [], marker=m, ls="", color="grey", label=k) for k, m in markers.items()],
          fontsize=7, title="compared as", title_fontsize=7)
ax.set_xlabel("published measurement (GB)"); ax.set_ylabel("estimate of the same quantity (GB)")
ax.set_title(f"Calibration: {cs['within_15pct']}/{cs['rows']} within ±15% or verdict right; "
             f"{cs['explained_misses']} misses with a named cause", fontsize=9)
fig.text(0.01, -0.02, "green: within ±15%; orange: outside, cause named in the data; red: unexplained. Measurements: QLoRA paper "
         "Fig. 6, torchtune README, Qwen README, PEFT docs, RTX 8000 reimplementation sweep; "
         f"estimates computed on {HW_LINE}", fontsize=6)
fig.tight_layout(); fig.savefig(out / "calibration.png", dpi=120, bbox_inches="tight"); plt.show()
verdicts = cal[cal["oom"] | cal["ran"]]
print("verdict rows (hardware → kit):")
for r in verdicts.itertuples():
    print(f"  {r.id}: {'OOM' if r.oom else 'ran'} → kit says {r.kit_verdict} (device {r.device_gb} GB, limit {r.limit_gb} GB)")
cal[["id", "compare", "measured_as", "measured_gb", "estimate_gb", "rel_error", "within_15pct", "explained", "cause"]]

# %% [markdown]
# ## Measured on a GPU by this kit (H200, reduced depth)
# `lib/tacsol/data/vram/gpu_measurements.json`: `torch.cuda.max_memory_allocated` on one NVIDIA H200 (2026-11-26,
# `tools/gpu_evidence.py`) for random-initialised models of the registry architectures cut to 2 decoder layers (real
# widths, heads, vocabulary: no weights are reachable from that machine). `measure_peak` rows: two AdamW steps on random
# token ids. `train_path` rows: the notebook 03/04 training module itself (`python -m tacsol.train`) on real corpus pairs
# of 4k / 8k tokens. With 2 layers the b·s·V logits/loss buffers dominate: these rows test that term hardest.
# `estimate_before_gb` is what the estimator said before these measurements (its loss term then counted only the forward).

# %%
gpu = save_table(pd.DataFrame(vram.gpu_measurement_table()), "gpu_measurements")
fig, ax = plt.subplots(figsize=(8, 3.6))
lab = [f"{r.model} {r.plan.split(',')[0].split()[0]} {r.plan.split('seq ')[1].split(',')[0]}×{r.plan.split('mb ')[1].split(',')[0]} {r.plan.split(', ')[-1]} [{r.kind}]"
       for r in gpu.itertuples()]
y = np.arange(len(gpu))
ax.barh(y - 0.2, gpu.measured_gb, 0.4, label="measured (H200)", color="#4c72b0")
ax.barh(y + 0.2, gpu.estimate_gb, 0.4, label="estimate", color="#dd8452")
ax.set_yticks(y, lab, fontsize=7); ax.invert_yaxis(); ax.set_xlabel("peak allocated (GB)"); ax.legend(fontsize=8)
ax.set_title("Estimator vs measured peak, 2-layer models of the real architectures")
fig.text(0.01, -0.03, "measured: torch.cuda.max_memory_allocated on 1× NVIDIA H200, torch 2.11+cu130, transformers 5.24, "
         "peft 0.21.2, bitsandbytes 0.50.2, SDPA, checkpointing, LoRA r=16 on 7 projections", fontsize=6)
fig.tight_layout(); fig.savefig(out / "gpu_measurements.png", dpi=120, bbox_inches="tight"); plt.show()
gpu_worst = {k: float(g.rel_error.abs().max()) for k, g in gpu.groupby("kind")}
print("worst |error| by kind:", {k: f"{v:.1%}" for k, v in gpu_worst.items()})
gpu[["kind", "model", "plan", "measured_gb", "estimate_gb", "rel_error", "estimate_before_gb", "tokens_per_s"]]

# %% [markdown]
# ## GPU-hours per phase
# Training: tokens × epochs ÷ throughput; throughput = MFU × the card's peak 16-bit FLOP/s ÷ FLOPs per token
# (6N for LoRA with checkpointing), × 0.6 for 4-bit dequantization. The default MFU 0.15 is what the one RTX 8000
# measurement implies (Qwen2.5-Coder-7B QLoRA, 8,192 tokens at 33.6 s/step); set `tokens_per_s` to override with a
# measured figure. Dataset size: the paper's 238,446 pairs × `mean_tokens_per_pair` (an assumption until 03 measures it).

# %%
tc = save_table(pd.DataFrame(claims.throughput_check(mfu)), "throughput_check")
print(tc.to_string(index=False))
gh = save_table(pd.DataFrame(vram.gpu_hours_table(
    gpu_hours_models, BASE, hardware, n_gpus=gpus, margin=margin, train_tokens=train_pairs * mean_tokens_per_pair,
    epochs=epochs, eval_tokens=eval_pairs * mean_tokens_per_pair, gen_tokens=eval_pairs * mean_generated_tokens,
    mfu=mfu, tokens_per_s=tokens_per_s)), "gpu_hours")
gh

# %%
s32 = rec[rec.model == "Qwen2.5-Coder-32B"].iloc[0]
vr = cal.set_index("id")
headline = {
    "calibration_rows": cs["rows"],
    "calibration_share_within_15pct": cs["share_within_15pct"],
    "calibration_median_abs_rel_error": cs["median_abs_rel_error"],
    "calibration_max_abs_rel_error": cs["max_abs_rel_error"],
    "calibration_explained_misses": cs["explained_misses"],
    "calibration_unexplained_misses": cs["unexplained_misses"],
    "rtx8000_qwen7b_8k_batch1_fits": vr.loc["rtx8000-qwen7b-qlora-8192-b1-ran", "kit_verdict"] == "fits",
    "rtx8000_qwen7b_8k_batch2_fits": vr.loc["rtx8000-qwen7b-qlora-8192-b2-oom", "kit_verdict"] == "fits",
    "plans_changed_to_does_not_fit": [p for p, c in zip(plans.plan, plans.change) if c == "fits → does NOT fit"],
    "gpu_measured_rows": len(gpu),
    "gpu_measure_peak_max_abs_rel_error": gpu_worst.get("measure_peak"),
    "gpu_train_path_max_abs_rel_error": gpu_worst.get("train_path"),
    "qwen32b_4k_mb1_per_gpu_gb": float(s32.per_gpu_gb),
    "qwen32b_4k_mb4_per_gpu_gb": b4["estimate_gb"]["total"],
    "qwen32b_4k_mb4_allocated_gb": b4["estimate_gb"]["allocated"],
    "qwen32b_4k_mb4_reserved_gb": b4["estimate_gb"]["reserved"],
    "qwen32b_4k_mb4_fits_48gb": bool(b4["fits"]),
    "recommendation_rows_claim_holds": int(rec.claim_holds.sum()),
    "recommendation_rows": len(rec),
    "claims_holding": int(claim_table.holds.sum()),
    "claims_checked": len(claim_table),
    "longest_seq_qwen32b_one_card": int(ml.set_index("model").longest_seq_that_fits.get("Qwen2.5-Coder-32B", 0)),
    "train_gpu_hours_qwen32b": float(gh[(gh.model == "Qwen2.5-Coder-32B") & (gh.phase == "train (SFT)")].gpu_hours.sum()) if len(gh) else None,
    "training_dtype": choices.dtype, "attn_implementation": choices.attn_implementation,
    "verdict": "device view (reserved + CUDA context + NCCL) within (1 - margin) of the card", "margin": margin,
}
print(json.dumps(headline, indent=1, ensure_ascii=False))
summary.write_summary(output_dir, phase="02_vram_estimation", headline=headline, params=params, smoke=smoke,
                      target_hardware=f"{gpus}× {profile.display}")
