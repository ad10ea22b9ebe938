# %% [markdown]
# # 03 · Baseline fine-tune — does LoRA on TAC → Solidity pairs teach a causal LM to decompile?
#
# Reads the dataset (default: the shipped sample, `tacsol.pairs.load("sample")`), renders every function with the one
# prompt template (`tacsol.prompt`: special tokens mark the function, its metadata and the TAC; loss on the Solidity
# target + EOS only), fine-tunes a LoRA adapter with `tacsol.train` (the same module `tacsol train --params` and the
# multi-GPU launchers run), and measures it: held-out loss of the untuned vs fine-tuned model, throughput, memory
# (the `tacsol.vram` estimate beside the measured peak), loss curves, and sample decompilations of held-out functions
# beside their originals, and a held-out evaluation (`tacsol.evaluate.suite`): `eval_functions` distinct test functions
# stratified by complexity (and `eval_package_functions` from packages kept out of training), scored for the
# fine-tuned model, its checkpoints (learning curve) and every baseline (`baselines`: retrieval, the untuned base
# model, sevm, panoramix) on the same functions, with 95% bootstrap intervals and degenerate outputs flagged. Writes `summary.json`, `train_log.json`, `loss.png`, the adapter under
# `output_dir/adapter`, and `eval/` (fine-tuned) + `eval/baselines/<name>/` (what 06_compare reads).
#
# **Defaults** = the embedded CPU run: SmolLM2-135M-Instruct (shipped on PyPI, a `LlamaForCausalLM` like Llama-3.2-3B),
# LoRA r=16 on the seven projections, a token budget that finishes within 15 minutes on 2 CPU cores.
# **`params/03_baseline_3b.yaml`** = the paper's configuration: meta-llama/Llama-3.2-3B in NF4 (QLoRA), r=16, alpha 32,
# 2,048 tokens, batch 4, lr 2e-4, 3 epochs, fp16 on an RTX 8000.

# %% tags=["parameters"]
# Embedded CPU default (plain literals only). `-f params/03_baseline_3b.yaml` runs the paper's 3B configuration.
run_name = "demo"
output_dir = "outputs/demo/03_baseline_3b"
smoke = True
model = "embedded:smollm2-135m"
dataset = "sample"
hardware_profile = "cpu"
dtype = "auto"
quantization = "none"
lora_r = 16
lora_alpha = 32
lora_dropout = 0.05
lora_targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
train_new_tokens = True
max_seq_length = 640
batch_size = 2
grad_accum = 1
learning_rate = 0.0005
epochs = 2.0
max_steps = -1
max_train_tokens = 10000
warmup_ratio = 0.1
lr_scheduler = "linear"
weight_decay = 0.0
seed = 42
gradient_checkpointing = True
save_steps = 10
save_total_limit = 2
logging_steps = 1
eval_split = "validation"
eval_examples = 12
resume = True
deepspeed = ""
cpu_threads = 0
cpu_autocast = "auto"  # bf16 autocast on CPUs with bf16 units (auto), bf16, none
holdout_packages = []  # packages kept out of training: the package-held-out stratum
signature_hints = False  # known signatures (tacsol.signatures) after the TAC header, not the record's own
signature_sources = ["standard", "interface", "train"]  # what the known-signature table is built from
train_hints = "as_held_out"  # train prompts' hint: as_held_out (as a held-out function sees the table) | table
event_names = False  # with signature_hints: known event topics of log statements printed as their signatures
retrieval_prompts = False  # the nearest training function's Solidity (by TAC) in every prompt
retrieval_max_chars = 1200  # that neighbour cut at whole lines to this many characters
n_samples = 3
max_new_tokens = 160
eval_functions = 24  # distinct contract-held-out test functions scored by every system
eval_package_functions = 0  # distinct functions of holdout_packages scored the same way
curve_functions = 0  # learning curve: this many of eval_functions, at every checkpoint
eval_batch_size = 8
eval_compile = "stub"  # compile check: stub | original | auto | none
eval_behaviour = True  # behavioural equivalence against the original bytecode (py-evm)
eval_prefill = "none"  # unnamed functions start as `function unknown_<selector>(`: none | fallback | always
eval_same_as = ""  # a finished run's directory: score its functions again (eval_functions etc. then unused)
baselines = ["retrieval", "base_model", "sevm"]

# %%
import tacsol.params
params = tacsol.params.check_notebook(globals(), "03")   # refuses unknown / mistyped keys
import json
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import display, HTML
from tacsol import paths, summary, train, launch, infer, prompt
out = paths.resolve(output_dir); out.mkdir(parents=True, exist_ok=True)
HW = summary.hardware_line()
print("hardware:", HW)

# %% [markdown]
# ## Configuration
# The resolved parameters (also written to `output_dir/params.yaml`, which `tacsol train --params` accepts as is),
# and what the hardware profile chooses for compute dtype and attention.

# %%
choice = train.run_choices(params)
cfg_rows = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in params.items()}
cfg_rows["→ compute dtype (profile)"] = choice.torch_dtype
cfg_rows["→ attention (profile)"] = choice.attn_implementation
display(pd.DataFrame({"value": cfg_rows}).astype(str))
example = train.run_records(params)["test"][0]
print("The prompt template on one held-out function (training appends the Solidity target and EOS):\n")
print(prompt.build_prompt(example))

# %% [markdown]
# ## Memory estimate (before training)
# `tacsol.launch.fit_check`: `tacsol.vram.estimate` on the plan `launch.memory_plan` derives from these parameters,
# the same estimate (and verdict) the launcher of 04/05 makes for the same run. On CPU the measured figure beside
# it is the process's peak RSS (which also holds the Python/torch runtime and the dataset),
# on GPU `torch.cuda.max_memory_allocated`.

# %%
fit = launch.fit_check(params)
estimated_gb = fit.get("per_gpu_gb")
if estimated_gb is None:  # the estimator refuses unknown models/plans with a message; training still runs
    print(fit["message"])
else:
    display(pd.DataFrame({"GB": fit["terms_gb"]}).T)
    print(f"estimated peak: {estimated_gb} GB ({fit['hardware_profile']}, {fit['plan_text']})")

# %% [markdown]
# ## Training
# LoRA (QLoRA when `quantization = "nf4"`) with AdamW, warm-up then `lr_scheduler` decay, length-grouped batches,
# checkpoints every `save_steps` (a killed run started again resumes from the last one). Held-out loss is measured
# before training (LoRA B = 0, i.e. the untuned model) and after, on the same batches.

# %%
# `baselines` is this notebook's own key (used after training); tacsol.train refuses keys it does not know
res = train.run({k: v for k, v in params.items() if k in train.DEFAULTS}, keep_model=True)
peft_model, tok = res.pop("peft_model"), res.pop("tokenizer")

# %%
figs = {k: res[k] for k in ("model", "quantization", "dtype", "params_total", "params_trainable", "train_examples",
                            "dropped_too_long", "steps", "train_tokens", "padding_share", "tokens_per_s",
                            "s_per_step", "cpu_threads", "train_wall_s", "heldout_examples",
                            "heldout_dropped_too_long", "heldout_loss_before", "heldout_loss_after",
                            "peak_memory_gb")}
figs["estimated_memory_gb"] = estimated_gb
display(pd.DataFrame({"value": figs}).astype(str))
print(f"measured on {HW}: {res['tokens_per_s']:.0f} tokens/s, {res['s_per_step']:.2f} s/step, "
      f"padding {res['padding_share']:.1%} of tokens, peak {'RSS' if 'cuda_peak_gb' not in res else 'CUDA'} "
      f"{res['peak_memory_gb']:.2f} GB vs estimated {estimated_gb} GB")

# %% [markdown]
# ## Loss curves
# Training loss per optimizer step (cross-entropy on Solidity target tokens only) and the held-out loss of the untuned
# and fine-tuned model.

# %%
curve = pd.DataFrame(res["curve"])
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(curve["step"], curve["loss"], alpha=0.4, label="train loss")
axes[0].plot(curve["step"], curve["loss"].rolling(5, min_periods=1).mean(), label="train loss (5-step mean)")
axes[0].axhline(res["heldout_loss_before"], ls="--", color="k", label=f"held-out untuned {res['heldout_loss_before']:.3f}")
axes[0].axhline(res["heldout_loss_after"], ls=":", color="g", label=f"held-out fine-tuned {res['heldout_loss_after']:.3f}")
axes[0].set_xlabel("optimizer step"); axes[0].set_ylabel("cross-entropy (target tokens)"); axes[0].legend(fontsize=8)
axes[1].plot(curve["step"], curve["tokens"] / curve["step_time_s"], ".")
axes[1].set_xlabel("optimizer step"); axes[1].set_ylabel("tokens/s (non-padding)")
fig.suptitle(f"{res['model']} · LoRA r={lora_r} · {res['train_examples']} train / {res['heldout_examples']} held-out "
             f"functions ({dataset}) · {HW}", fontsize=9)
fig.tight_layout(); plt.show()

# %% [markdown]
# ## Held-out evaluation: the same functions for the fine-tuned model, its checkpoints and every baseline
# `tacsol.evaluate.suite.run_all`: distinct functions (one record per near-duplicate group), stratified by complexity,
# whose prompt + target fit `max_seq_length` (the rule training used); the contract-held-out stratum comes from the
# test split, the package-held-out stratum from `holdout_packages`, which training never saw. Generation is greedy,
# batched and resumable (`eval/generations/`); every system is scored by `tacsol.evaluate` (similarity, edit distance,
# compile check, selector, grounding, degenerate outputs) with 95% bootstrap intervals, per record and per distinct
# function. Baselines that cannot run are listed with the reason. With retrieval among them, `retrieval-gate` is the
# fine-tuned model's and retrieval's answers chosen per function by the nearest training function's TAC cosine
# (`suite.score_gate`, `tacsol decompile --retrieval-gate`), scored from the verdicts both already have.

# %%
from tacsol.evaluate import suite
from tacsol import plots
records = train.run_records(params)
ev = suite.run_all(params, records, peft_model, tok)
display(pd.DataFrame({k: {kk: vv for kk, vv in v.items() if kk != "strata"} for k, v in ev["selection"].items()}).T)
display(pd.DataFrame({(k, s): v for k, rep in ev["selection"].items() for s, v in rep["strata"].items()}).T)
print("baselines:", ev["status"])

# %%
table = pd.DataFrame(ev["table"]).set_index(["stratum", "system"])
display(table.style.format(precision=3, na_rep="–").set_caption(
    f"Every system on the same held-out functions ({dataset}); CI = 95% bootstrap · similarity = MiniLM cosine to "
    f"the original; floor/ceiling = the same references to a random / their nearest other function · {HW}"))
for stratum in table.index.get_level_values(0).unique():
    plots.systems_panel(ev["table"], stratum); plt.show()

# %% [markdown]
# ### Samples and degenerate outputs
# Held-out functions beside the fine-tuned output, then every degenerate output (repetition loops, no function, empty
# body) so that the mean cannot hide them.

# %%
fn_table = pd.read_parquet(out / "eval" / "functions.parquet")
display(HTML(plots.side_by_side_html(fn_table, n_samples, f"fine-tuned {res['model']}")))
degenerate = fn_table[fn_table["degenerate"] != ""]
print(f"degenerate: {len(degenerate)} of {len(fn_table)} ({degenerate['degenerate'].value_counts().to_dict()})")
display(degenerate[["function_name", "degenerate", "generated"]].head(20))

# %% [markdown]
# ## Learning curve
# The checkpoints (every `save_steps`) and the untuned model on the same `curve_functions` functions: quality against
# the training tokens seen.

# %%
if ev.get("curve"):
    display(pd.DataFrame(ev["curve"]).set_index("step"))
    plots.learning_curve(ev["curve"]); plt.show()
else:
    print("no learning curve (curve_functions = 0)")

# %%
main = ev["summaries"].get("contract_heldout", {}).get("metrics", {})
headline = {k: res[k] for k in ("model", "params_total", "max_seq_length", "lora_r", "quantization", "n_processes",
                                "train_tokens", "steps", "heldout_loss_before", "heldout_loss_after", "tokens_per_s",
                                "s_per_step", "peak_memory_gb", "padding_share", "cpu_threads", "train_examples",
                                "dropped_too_long", "heldout_dropped_too_long",
                                "dropped_holdout_packages")}
headline.update(hardware_profile=hardware_profile, estimated_memory_gb=estimated_gb,
                wall_hours=res["train_wall_s"] / 3600,
                gpu_hours=res["train_wall_s"] / 3600 * res["n_processes"] if "cuda_peak_gb" in res else 0.0,
                **{f"eval_{k}": main.get(k) for k in ("n_functions", "n_distinct", "similarity_mean",
                                                       "similarity_ci_low", "similarity_ci_high", "selector_match_rate",
                                                       "compile_rate", "degenerate_rate", "grounding_recall",
                                                       "similarity_ceiling", "behaviour_rate", "behaviour_ci_low",
                                                       "behaviour_ci_high", "behaviour_untestable")},
                evaluation=ev["table"], curve=ev.get("curve"), baselines_status=ev["status"])
summary.write_summary(output_dir, phase="03_baseline_3b", headline=headline, params=params, smoke=smoke,
                      adapter=str(out / "adapter"))
{k: v for k, v in headline.items() if k not in ("evaluation", "curve")}
