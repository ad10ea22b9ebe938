# %% [markdown]
# # 05 · Llama-3.1-70B / Qwen2.5-72B with DeepSpeed ZeRO-3 across 4 GPUs — the largest model the box can train
#
# Same training module as 03/04, launched on 4 processes with DeepSpeed ZeRO-3 (parameters, gradients and
# optimizer state sharded across the GPUs). Two plans, selected by `zero3_plan`:
#
# * `qlora_quant_storage` — NF4 QLoRA whose 4-bit weights ZeRO-3 *can* shard because `bnb_4bit_quant_storage`
#   equals the model dtype (tacsol.loading sets it) and the model is built partitioned (`zero3_init_flag`);
#   `params/05_train_70b_zero3.yaml`, `params/05_train_72b_zero3.yaml`.
# * `lora16_offload` — plain 16-bit LoRA with ZeRO-3 offloading parameters and optimizer state to CPU RAM (no
#   bitsandbytes in the sharded path; needs ~150 GB host RAM for 70B; slower, PCIe-bound);
#   `params/05_train_70b_zero3_offload.yaml`.
#
# The VRAM estimate must fit 4× 48 GB before anything starts (refused with the numbers otherwise).
#
# **Defaults = CPU smoke run**: the embedded SmolLM2-135M, 2 CPU processes under `torchrun` (gloo), 24 steps,
# DeepSpeed ZeRO-3 on CPU (`zero3_plan = "lora16"` → `params/deepspeed/zero3_cpu_smoke.json`, `DS_ACCELERATOR=cpu`)
# through the same `tacsol.train` module; it writes a real run folder for 06_compare and says nothing about a 70B
# model. The probe below reports per rank what really ran and how many parameter elements each rank stored (ZeRO-3:
# ceil(numel / 2) of every parameter). `zero3_plan = "none"` runs the same smoke with plain DDP. Details:
# docs/multi-gpu.md.

# %% tags=["parameters"]
# Embedded CPU default = smoke run (plain literals only). `-f params/05_train_70b_zero3.yaml` runs the real phase.
run_name = "demo"
output_dir = "outputs/demo/05_train_70b_zero3"
smoke = True
model = "embedded:smollm2-135m"   # smoke: the embedded SmolLM2-135M; params/05_train_70b_zero3.yaml: the real model
dataset = "sample"
hardware_profile = "cpu"           # rtx8000: fp16 + SDPA; a100/h100/h200: bf16 + FlashAttention-2; cpu: fp32
dtype = "auto"
quantization = "none"              # nf4 on GPUs (QLoRA); none in the CPU smoke run
lora_r = 16
lora_alpha = 32
lora_dropout = 0.05
lora_targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
train_new_tokens = True
max_seq_length = 384
batch_size = 1                     # per device
grad_accum = 1
learning_rate = 0.0003
epochs = 1.0
max_steps = 24                     # smoke: two dozen ZeRO-3 optimizer steps on 2 CPU processes
max_train_tokens = 0
warmup_ratio = 0.05
lr_scheduler = "linear"
weight_decay = 0.0
seed = 42
gradient_checkpointing = True
save_steps = 50
save_total_limit = 1
logging_steps = 1
eval_split = "test"
eval_examples = 4
resume = False                     # smoke: start fresh (a resumed demo would report the old run)
n_samples = 2
max_new_tokens = 64
# --- launch (tacsol.launch) ---
n_processes = 2                    # processes per machine, one per GPU; CPU smoke: 2 processes, gloo
accelerate_config = ""             # params/accelerate/*.yaml, or empty for command-line flags
allow_over_budget = False          # launch even when the VRAM estimate says it does not fit
train_module = "tacsol.train"
timeout_minutes = 30
master_port = 0                    # 0: a free port
num_machines = 1
machine_rank = 0
main_process_ip = ""
hostfile = ""
probe = True                       # record per rank what distribution the Trainer really used (distributed/)
run_eval = True                    # generate on the eval split with the adapter and score it (tacsol.evaluate)
eval_limit = 3
launcher = "torchrun"               # accelerate | torchrun | deepspeed (GPU only) | python (1 process)
zero3_plan = "lora16"              # qlora_quant_storage | lora16_offload | lora16 (fp32 on CPU) | none (DDP)
deepspeed = ""                     # a DeepSpeed JSON, or empty for the one zero3_plan implies for the dtype

# %%
import tacsol.params
params = tacsol.params.check_notebook(globals(), "05")   # refuses unknown / mistyped keys
import json
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from tacsol import launch, paths, plots, summary
out = paths.resolve(output_dir); out.mkdir(parents=True, exist_ok=True)
print("hardware:", summary.hardware_line())
if smoke:
    display(Markdown(f"> **SMOKE RUN** — `{model}` on {n_processes} CPU processes, {max_steps} steps. This checks "
                     "the launch path end to end; its losses, speed and scores say nothing about the real model."))

# %% [markdown]
# ## Plan, launch, distribution, evaluation
# `tacsol.launch.run_phase`, in order:
# 1. **plan and memory fit**: the hardware profile picks the compute dtype and attention; `zero3_plan` picks the
#    DeepSpeed JSON; the estimator (tacsol.vram) gives the per-GPU peak. A plan that does not fit is refused here,
#    before any process starts;
# 2. **launch**: the log streamed live (also saved to `launch.log` in the output folder);
# 3. **what distribution ran**: the probe's per-rank record written by the training processes;
# 4. **the run read back** from `train_log.json`: steps, tokens, the examples dropped because they exceed
#    `max_seq_length` (train and held-out), losses, memory, throughput, adapter files;
# 5. **evaluation** of the adapter on the test split (tacsol.evaluate, written to `eval/`).

# %%
run = launch.run_phase(params)

# %% [markdown]
# ## Loss, memory and throughput read back from the run

# %%
fig = plots.training_run(run["artifacts"], run["plan"]["fit"].get("per_gpu_gb"), run["title"],
                         cpu=hardware_profile == "cpu")
fig.savefig(out / "training.png", dpi=110); plt.show()

# %% [markdown]
# ## Summary

# %%
summary.write_summary(output_dir, phase="05_train_70b_zero3", headline=run["headline"], params=params, smoke=smoke,
                      **run["summary"])
print(json.dumps(run["headline"], indent=1, default=str))
