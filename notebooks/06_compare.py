# %% [markdown]
# # 06 · Compare — which model size, sequence length and budget buys how much decompilation quality?
#
# Reads every run folder under `outputs/` (or the runs listed in `runs`): each phase's `summary.json`
# (configuration, hardware, estimated and measured memory, throughput, GPU-hours) and its evaluation
# (`eval/summary.json` for the fine-tuned model, `eval/baselines/<name>/` for the untuned base model, retrieval,
# sevm and panoramix on the same held-out split). Runs made on a GPU cluster can be copied into `outputs/`.
#
# Reference lines: the paper's mean similarity 0.82 (Llama-3.2-3B, 9,731 functions) and the recommendations'
# hope of 0.88–0.92 for Qwen2.5-Coder-32B. **Smoke runs** (CPU, embedded 135M model, minutes of training) are
# labelled as such everywhere: they prove the pipeline, not the quality of a large model.

# %% tags=["parameters"]
run_name = "demo"
output_dir = "outputs/demo/06_compare"
runs_root = "outputs"
evidence_root = "docs/evidence"  # committed runs (the CPU reference run) shown beside; "" for none
runs = []
include_smoke = True

# %%
import tacsol.params
params = tacsol.params.check_notebook(globals(), "06")
import math
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import display, Markdown
from tacsol import claims, compare, paths, summary
PAPER_SIMILARITY = claims.value("paper.similarity_mean")
HOPE_32B = claims.value("recommendations.similarity_32b")  # the recommendations' expected range for 32B
out = paths.resolve(output_dir); out.mkdir(parents=True, exist_ok=True)
sns.set_theme(style="whitegrid", context="notebook")
print("this report rendered on:", summary.hardware_line())

# %% [markdown]
# ## The runs found

# %%
phases = [p for p in compare.discover(runs_root, runs or None, evidence=evidence_root or None)
          if include_smoke or not p.summary.get("smoke")]
runs_df = compare.runs_table(phases)
evals_df = compare.eval_table(phases)
print(f"{len(phases)} phase folders under {runs_root} and {evidence_root or 'no evidence folder'}: {sorted({p.run for p in phases})}")
if len(runs_df):
    display(runs_df)
else:
    display(Markdown("**No training phase found.** Run `make demo` or copy run folders into `outputs/`."))


# %% [markdown]
# ## Every committed reference run at a glance
# Per run and stratum, from its evidence: greedy behaviour with its bootstrap 95% interval, retrieval on the same
# functions, selector match, similarity, degenerate outputs, getters + setters. `set`: rows with the same letter
# were scored on the same functions, so only those compare directly (docs/reference-run.md starts with this table).
# The last three columns: the current behaviour harness on the same functions (the latest rescoring), where the
# published figures keep the harness each run was scored with.

# %%
reference_rows = compare.reference_runs(compare.find_reference_runs(evidence_root)) if evidence_root else []
rescored = compare.rescoring(evidence_root) if evidence_root else None
if rescored:
    compare.with_rescoring(reference_rows, rescored)
display(Markdown(compare.reference_markdown(reference_rows) if reference_rows else "no committed reference run"))


# %% [markdown]
# ## Quality of every system on its held-out split
# Mean semantic similarity (all-MiniLM-L6-v2 cosine unless the evaluation records another embedder) with its
# bootstrap 95% interval. The floor is the mean similarity of unrelated function pairs of the same data and the
# ceiling the mean similarity of each function to its nearest other function: a score means something only
# between them.

# %%
def label(r):
    return f"{r['run']}/{r['phase'][:2]} {r['system']}" + (" [smoke]" if r["kind"] == "smoke" else "")

if len(evals_df):
    e = evals_df.copy()
    e["label"] = e.apply(label, axis=1)
    display(e.drop(columns=["label"]))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(e) + 1.8))
    y = range(len(e))
    lo = (e["similarity_mean"] - e["similarity_ci_low"]).fillna(0).clip(lower=0)
    hi = (e["similarity_ci_high"] - e["similarity_mean"]).fillna(0).clip(lower=0)
    ax.barh(list(y), e["similarity_mean"], xerr=[lo, hi], color=["#4c72b0" if s == "fine-tuned" else "#999" for s in e["system"]])
    ax.set_yticks(list(y), e["label"])
    ax.axvline(PAPER_SIMILARITY, color="crimson", ls="--",
               label=f"paper {PAPER_SIMILARITY} (3B, {claims.value('paper.test_functions'):,} fns)")
    ax.axvspan(*HOPE_32B, color="orange", alpha=0.2, label=f"recommendations' 32B hope {HOPE_32B[0]}–{HOPE_32B[1]}")
    if e["similarity_floor"].notna().any():
        ax.axvline(e["similarity_floor"].dropna().mean(), color="k", ls=":", label="floor: unrelated pairs")
    if e["similarity_ceiling"].notna().any():
        ax.axvline(e["similarity_ceiling"].dropna().mean(), color="green", ls=":", label="ceiling: nearest other function")
    ax.set_xlim(0, 1); ax.set_xlabel("mean semantic similarity (95% bootstrap CI)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Quality per system and run ({len(e)} evaluations; hardware: runs table)")
    fig.tight_layout(); fig.savefig(out / "quality_by_system.png", dpi=110); plt.show()
else:
    display(Markdown("No evaluation found yet."))

# %% [markdown]
# ## Objective checks: compiles, selector match, grounding
# Shares over the evaluated functions; grounding precision counts events, storage writes, external calls and
# reverts in the output that the TAC does not show (hallucinations) against the TAC, not the reference.

# %%
checks = ["behaviour_rate", "compile_rate", "selector_match_rate", "grounding_precision", "grounding_recall", "share_sim_gt_0_8", "share_edit_lt_0_4"]
if len(evals_df) and evals_df[checks].notna().any().any():
    m = evals_df.assign(label=evals_df.apply(label, axis=1)).set_index("label")[checks].astype(float)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(m) + 2))
    sns.heatmap(m, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", ax=ax, cbar_kws={"label": "share"})
    ax.set_title("Objective checks per system (same held-out split within a run)")
    fig.tight_layout(); fig.savefig(out / "objective_checks.png", dpi=110); plt.show()

# %% [markdown]
# ## Quality against model size, sequence length and cost
# Fine-tuned systems only; smoke runs are hollow markers.

# %%
ft = evals_df[evals_df["system"] == "fine-tuned"] if len(evals_df) else evals_df
if len(ft):
    merged = ft.merge(runs_df[["run", "phase", "tokens_per_s", "wall_hours", "peak_memory_gb"]], on=["run", "phase"], how="left")
    merged["cost_hours"] = merged["gpu_hours"].fillna(merged["wall_hours"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, col, xl in zip(axes, ["params_total", "max_seq_length", "cost_hours"],
                           ["parameters (log)", "max sequence length (tokens)", "GPU-hours (CPU hours for smoke)"]):
        for _, r in merged.iterrows():
            x = r[col]
            if x is None or (isinstance(x, float) and math.isnan(x)):
                continue
            smoke = r["kind"] == "smoke"
            ax.scatter([x], [r["similarity_mean"]], s=60, facecolors="none" if smoke else "#4c72b0", edgecolors="#4c72b0")
            ax.annotate(f"{r['run']}/{r['phase'][:2]}", (x, r["similarity_mean"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if col == "params_total":
            ax.set_xscale("log")
        ax.axhline(PAPER_SIMILARITY, color="crimson", ls="--", lw=1)
        ax.axhspan(*HOPE_32B, color="orange", alpha=0.15)
        ax.set_xlabel(xl); ax.set_ylabel("mean similarity"); ax.set_ylim(0, 1)
    fig.suptitle("Fine-tuned quality vs size, context and cost (hollow = smoke run)")
    fig.tight_layout(); fig.savefig(out / "quality_vs_cost.png", dpi=110); plt.show()

# %% [markdown]
# ## Distributions side by side, and by complexity bucket

# %%
pf = compare.per_function(phases)
heat = compare.by_complexity(pf)  # label × the complexity column tacsol.evaluate writes
if len(pf):
    fig, ax = plt.subplots(figsize=(10, 0.5 * pf["label"].nunique() + 2))
    sns.boxplot(data=pf, y="label", x="similarity", ax=ax, color="#a1c9f4", fliersize=2)
    ax.axvline(PAPER_SIMILARITY, color="crimson", ls="--")
    ax.set_title(f"Per-function similarity ({len(pf)} function evaluations)"); ax.set_ylabel("")
    fig.tight_layout(); fig.savefig(out / "similarity_distributions.png", dpi=110); plt.show()
else:
    print("no per-function evaluation tables found")
for key, cmap, title in (("similarity", "magma", "Mean similarity by complexity bucket (TAC instructions and blocks)"),
                         ("behaviour", "viridis", "Behaviour-match rate by complexity bucket (equivalent in py-evm)")):
    if key in heat:
        fig, ax = plt.subplots(figsize=(10, 0.5 * len(heat[key]) + 2))
        sns.heatmap(heat[key], annot=True, fmt=".2f", vmin=0, vmax=1, cmap=cmap, ax=ax)
        ax.set_title(title)
        fig.tight_layout(); fig.savefig(out / f"{key}_by_complexity.png", dpi=110); plt.show()

# %% [markdown]
# ## Paired: the fine-tuned model against each baseline on the same functions
# Behaviourally equivalent share of each, and the mean paired difference (fine-tuned minus baseline) with its
# bootstrap 95% interval: two systems scored on the same functions differ by the functions one gets right and the
# other does not, which overlapping marginal intervals hide.

# %%
paired_df = compare.paired_against_baselines(pf)
display(paired_df if len(paired_df) else "no run with behaviour checked for the fine-tuned model and a baseline")

# %% [markdown]
# ## Expected in the recommendations vs measured here

# %%
evm = claims.expected_vs_measured(evals_df, runs_df)
display(evm)

# %%
best = ft.sort_values("similarity_mean", ascending=False).iloc[0] if len(ft) and ft["similarity_mean"].notna().any() else None
headline = {
    "phases_found": len(phases),
    "evaluations": int(len(evals_df)),
    "best_system": None if best is None else f"{best['run']}/{best['phase']}",
    "best_similarity_mean": None if best is None else best["similarity_mean"],
    "only_smoke_runs": bool(len(runs_df)) and bool((runs_df["kind"] == "smoke").all()),
    "complexity_heatmaps": sorted(heat),
}
summary.write_summary(output_dir, phase="06_compare", headline=headline, params=params,
                      smoke=headline["only_smoke_runs"],
                      tables={"runs": runs_df.to_dict("records"), "evaluations": evals_df.to_dict("records"),
                              "expected_vs_measured": evm.to_dict("records")})
headline
