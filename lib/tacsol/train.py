"""Supervised fine-tuning TAC → Solidity with LoRA / QLoRA (HF Trainer + peft), resumable, measured.

One params dict drives everything; its keys are exactly notebook 03's parameters cell (:data:`DEFAULTS`), so the
notebook, ``tacsol train --params FILE`` and the launchers (``torchrun ... -m tacsol.train --params FILE``) run the
same code. Under torch.distributed every rank runs this module; the HF Trainer does DDP / DeepSpeed (``deepspeed``
= a DeepSpeed JSON) and only rank 0 writes logs, plots and the adapter.

Output folder (``output_dir``)::

    checkpoints/checkpoint-N/   every ``save_steps`` optimizer steps (adapter, optimizer, scheduler, RNG, data position)
    adapter/                    final LoRA adapter + tokenizer (with the prompt's special tokens) + tacsol_train.json
    train_log.json              loss curve, per-step time/tokens, held-out loss before/after, throughput, memory
    loss.png                    the loss curve
    params.yaml                 the resolved parameters

Batches: examples are ordered once, deterministically, into length-grouped batches (shuffle, cut into mega-batches of
50 batches, sort each by length, shuffle the batches) and fed in that order (one "virtual" epoch list per epoch). The
order therefore depends on ``seed`` only — not on the RNG state at resume time — and the padding share of tokens is
known exactly before training (each batch is padded to its longest example).

Resume: a run finds its last checkpoint under ``output_dir/checkpoints`` and continues from it (``resume: true``);
the Trainer restores adapter, optimizer, scheduler and RNG states and skips the batches already seen.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any, Mapping, NoReturn, Sequence

from . import params as P
from . import paths, prompt, signatures
from .ioutil import atomic_write_bytes, atomic_write_json, atomic_write_text

# The notebook 03 parameters cell, key for key (tests/test_train.py checks they agree).
DEFAULTS: dict[str, Any] = {
    "run_name": "demo",
    "output_dir": "outputs/demo/03_baseline_3b",
    "smoke": True,
    "model": "embedded:smollm2-135m",
    "dataset": "sample",
    "hardware_profile": "cpu",
    "dtype": "auto",
    "quantization": "none",
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "train_new_tokens": True,
    "max_seq_length": 640,
    "batch_size": 2,
    "grad_accum": 1,
    "learning_rate": 5e-4,
    "epochs": 2.0,
    "max_steps": -1,
    "max_train_tokens": 10000,
    "warmup_ratio": 0.1,
    "lr_scheduler": "linear",
    "weight_decay": 0.0,
    "seed": 42,
    "gradient_checkpointing": True,
    "save_steps": 10,
    "save_total_limit": 2,
    "logging_steps": 1,
    "eval_split": "validation",
    "eval_examples": 12,
    "resume": True,
    "deepspeed": "",
    "cpu_threads": 0,
    "cpu_autocast": "auto",
    "holdout_packages": [],
    "signature_hints": False,
    "signature_sources": ["standard", "interface", "train"],
    "train_hints": "as_held_out",
    "event_names": False,
    "retrieval_prompts": False,
    "retrieval_max_chars": 1200,
    "n_samples": 3,
    "max_new_tokens": 160,
}
# Which hint a training prompt shows (signature_hints): the table as a held-out function would see it (without the
# function's own near-duplicate group: signatures.hint_train_records), or the whole table (every train function
# named; the reference runs of 2026-12-02/03, params/03_reference_cpu*.yaml).
TRAIN_HINTS = ("as_held_out", "table")
_MEGA = 50  # batches per length-sorting window


def load_params(source: str | Path | dict | None, where: str | None = None) -> dict[str, Any]:
    """Params file / dict → DEFAULTS updated and validated (unknown keys and wrong types refused, named)."""
    if source is None:
        values: dict[str, Any] = {}
        where = "defaults"
    elif isinstance(source, dict):
        values, where = dict(source), where or "params"
    else:
        values, where = P.load_yaml(source), Path(source).name
    where = where or "params"
    merged = P.validate(values, DEFAULTS, where=where)
    if merged["lr_scheduler"] not in ("linear", "cosine", "constant_with_warmup"):
        raise P.ParamsError(f"{where}: parameter 'lr_scheduler' must be linear, cosine or constant_with_warmup")
    if merged["cpu_autocast"] not in ("auto", "bf16", "none"):
        raise P.ParamsError(f"{where}: parameter 'cpu_autocast' must be auto, bf16 or none")
    if merged["quantization"] not in ("none", "nf4", "int8"):
        raise P.ParamsError(f"{where}: parameter 'quantization' must be none, nf4 or int8")
    unknown = sorted(set(merged["signature_sources"]) - set(signatures.SOURCES))
    if unknown:
        raise P.ParamsError(f"{where}: parameter 'signature_sources': unknown {unknown} "
                            f"(choose from {list(signatures.SOURCES)})")
    if merged["train_hints"] not in TRAIN_HINTS:
        raise P.ParamsError(f"{where}: parameter 'train_hints' must be one of {list(TRAIN_HINTS)}, "
                            f"got {merged['train_hints']!r}")
    if merged["event_names"] and not merged["signature_hints"]:
        raise P.ParamsError(f"{where}: parameter 'event_names' needs signature_hints: true (the same table names "
                            "the events)")
    for k in ("lora_r", "batch_size", "grad_accum", "max_seq_length", "save_steps", "retrieval_max_chars"):
        if merged[k] <= 0:
            raise P.ParamsError(f"{where}: parameter {k!r} must be positive, got {merged[k]}")
    return merged


def training_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    """A notebook-03 params file's values without its evaluation's keys (checked here, used by the notebook only)."""
    from .evaluate import suite

    evaluation = {k: v for k, v in values.items() if k in suite.DEFAULTS and k not in DEFAULTS}
    P.validate(evaluation, suite.DEFAULTS, where)
    return {k: v for k, v in values.items() if k not in evaluation}


# ----------------------------------------------------------------------------------------------------- data
def load_records(spec: str) -> dict[str, list[dict]]:
    """Dataset (anything :func:`tacsol.pairs.load` reads: "sample", a name, a folder, a records file with a
    ``split`` column) → {"train"|"validation"|"test": [record dicts]}."""
    from . import pairs

    dd = pairs.load(spec)
    other = sorted(set(dd) - set(pairs.SPLITS))
    if other:
        raise pairs.DatasetError(f"dataset {spec!r}: split(s) {other} are not train/validation/test")
    pairs.require_columns(dd, ("tac", "solidity"), spec)
    return {s: [dict(r) for r in dd[s]] if s in dd else [] for s in pairs.SPLITS}


def check_plan(p: dict[str, Any], where: str | None = None) -> None:
    """What would fail only once the model is loaded, checked on its config: the dataset loads with the columns
    training reads, every LoRA target is a Linear of the model and max_seq_length fits its context. A model the
    registry cannot describe (a hub id it does not list) is left to loading, which checks the targets again."""
    from . import models, pairs

    pairs.check_dataset(p["dataset"], where, columns=("tac", "solidity"))
    try:
        spec = models.resolve(p["model"])
        linear = models.lora_targets_available(spec)
    except models.ModelError:
        return
    missing = [t for t in p["lora_targets"] if t not in linear]
    if missing:
        raise P.param_error(where, "lora_targets", f"{missing} are not Linear modules of {p['model']} (it has "
                            f"{', '.join(linear)})")
    if spec.max_positions and p["max_seq_length"] > spec.max_positions:
        raise P.param_error(where, "max_seq_length", f"{p['max_seq_length']} exceeds the context of {p['model']} "
                            f"(max_position_embeddings {spec.max_positions})")


def check_phase(values: dict[str, Any], where: str) -> None:
    """Notebook 03's parameters (tacsol.params.PLAN_CHECKS): the training plan, and generation with the model it
    trains (the notebook evaluates it)."""
    from . import infer

    p = load_params({k: v for k, v in values.items() if k in DEFAULTS}, where)
    check_plan(p, where)
    infer.check_generation(p["model"], p["quantization"], p["hardware_profile"], where)
    if values.get("eval_prefill", "none") not in infer.PREFILL_MODES:  # before training, not after it
        raise P.param_error(where, "eval_prefill", f"{values['eval_prefill']!r}: choose from {list(infer.PREFILL_MODES)}")


def run_records(p: dict[str, Any]) -> dict[str, list[dict]]:
    """The records a run trains and evaluates on: :func:`load_records` of its dataset; with ``signature_hints``,
    prepared for prompts with the known-signature table (:mod:`tacsol.signatures`) from ``signature_sources``
    minus the held-out packages, so the package-held-out stratum gets no hint from its own packages. Train records
    get the hint per ``train_hints`` (see TRAIN_HINTS); validation and test records the table's. With
    ``event_names`` too, the TAC's known event topics are printed as signatures, by the same rule. With
    ``retrieval_prompts``, every record's prompt shows the nearest trained-on function by TAC
    (:func:`tacsol.baselines.add_neighbours`: never one of its own near-duplicate group)."""
    recs = load_records(p["dataset"])
    if p.get("signature_hints"):
        table = signatures.table_for(p["dataset"], recs).restricted(
            p.get("signature_sources", DEFAULTS["signature_sources"]), p.get("holdout_packages", []))
        as_held_out = p.get("train_hints", "table") == "as_held_out"  # recorded before the key: the whole table
        events = bool(p.get("event_names"))
        recs = {s: signatures.hint_train_records(v, table, events=events) if s == "train" and as_held_out
                else signatures.hint_records(v, table, events=events) for s, v in recs.items()}
    if p.get("retrieval_prompts"):
        return with_neighbours(recs["train"], recs, p)
    return recs


def with_neighbours(train_records: list[dict], groups: dict[str, list[dict]], p: dict[str, Any]
                    ) -> dict[str, list[dict]]:
    """Each group of records with the nearest function of the training records a run with params `p` trains on
    (`train_records` without ``holdout_packages``) in their prompt: the retrieval baseline's answer, given to the
    model (:func:`tacsol.baselines.add_neighbours`)."""
    from . import baselines

    index, _ = drop_packages(train_records, p.get("holdout_packages", []))
    return {s: baselines.add_neighbours(index, v, max_chars=p.get("retrieval_max_chars",
                                                                  DEFAULTS["retrieval_max_chars"]))
            for s, v in groups.items()}


NEIGHBOUR_INDEX = "neighbours.jsonl.gz"   # beside an adapter trained with retrieval_prompts: what its prompts cite
_INDEX_FIELDS = ("id", "group", "package", "license", "tac", "solidity")   # license: its unit's (shipped beside an adapter)


def save_neighbour_index(adapter_dir: Path, p: dict[str, Any]) -> Path:
    """The records a run with ``retrieval_prompts`` draws neighbours from (its train split without the held-out
    packages, TAC as its prompts print it), written beside its adapter, so that decompiling with the adapter needs
    no dataset (0.36 MB for the reference runs' 1,903 functions)."""
    import gzip

    index = trained_on(run_records({**p, "retrieval_prompts": False}), p.get("holdout_packages", []))
    lines = "".join(json.dumps({k: r.get(k) for k in _INDEX_FIELDS}) + "\n" for r in index)
    return atomic_write_bytes(Path(adapter_dir) / NEIGHBOUR_INDEX, gzip.compress(lines.encode(), mtime=0))


def neighbour_index(adapter_dir: Path, p: dict[str, Any]) -> list[dict]:
    """The records an adapter trained with ``retrieval_prompts`` draws neighbours from: the index saved beside it
    (:func:`save_neighbour_index`), else its dataset's train split (which must then be on this machine)."""
    import gzip

    path = Path(adapter_dir) / NEIGHBOUR_INDEX
    if path.is_file():
        out = []
        for i, line in enumerate(gzip.decompress(path.read_bytes()).decode().splitlines()):
            r = json.loads(line)
            missing = [k for k in ("id", "tac", "solidity") if not r.get(k)]
            if missing:
                raise ValueError(f"{path}: line {i + 1} (record {r.get('id')!r}) lacks field(s) {missing}")
            out.append(r)
        return out
    return trained_on(run_records({**p, "retrieval_prompts": False}), p.get("holdout_packages", []))


def in_packages(record: dict, packages) -> bool:
    """Whether a record comes from one of `packages` ("name" matches every version, "name@version" one)."""
    pkg = str(record.get("package") or "")
    name = pkg.rsplit("@", 1)[0] if pkg.count("@") > (1 if pkg.startswith("@") else 0) else pkg
    return any(pkg == want or name == want for want in packages)


def drop_packages(records: list[dict], packages) -> tuple[list[dict], int]:
    """Training records without the held-out packages (the package-held-out stratum of the evaluation)."""
    if not packages:
        return records, 0
    kept = [r for r in records if not in_packages(r, packages)]
    return kept, len(records) - len(kept)


def trained_on(recs: Mapping[str, list[dict]], holdout_packages: Sequence[str]) -> list[dict]:
    """The records a run trains on, from its splits `recs` (:func:`run_records`): the train split without its
    ``holdout_packages``. Retrieval's index, the neighbours of retrieval prompts and the index shipped beside an
    adapter are these records too."""
    return drop_packages(recs.get("train", []), holdout_packages)[0]


def _tokenize_all(records: list[dict], tok, max_len: int) -> tuple[list[dict], int]:
    out, dropped = [], 0
    for r in records:
        ex = prompt.tokenize_example(r, tok, max_len)
        if ex is None:
            dropped += 1
        else:
            ex["length"] = len(ex["input_ids"])
            out.append(ex)
    return out, dropped


def length_grouped_order(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Indices cut into batches of similar length, in a seeded random order (see module docstring)."""
    rng = random.Random(seed)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    batches: list[list[int]] = []
    win = batch_size * _MEGA
    for s in range(0, len(idx), win):
        chunk = sorted(idx[s:s + win], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def plan_schedule(lengths: list[int], p: dict[str, Any], world: int = 1) -> dict[str, Any]:
    """The exact training order: micro-batches (as index lists) for all epochs, cut at max_steps / max_train_tokens
    on an optimizer-step boundary; tokens per optimizer step; padding share."""
    bs, ga = p["batch_size"], p["grad_accum"]
    per_step = bs * ga * world  # examples per optimizer step (all ranks)
    micro: list[list[int]] = []
    n_epochs = max(1, math.ceil(p["epochs"]))
    for e in range(n_epochs):
        b = length_grouped_order(lengths, bs, p["seed"] + e)
        if e == n_epochs - 1 and p["epochs"] < n_epochs:  # fractional last epoch
            b = b[: max(1, round(len(b) * (p["epochs"] - (n_epochs - 1))))]
        micro += b
    steps_micro = [micro[i:i + ga * world] for i in range(0, len(micro), ga * world)]
    # The Trainer runs whole optimizer steps only; a ragged tail becomes a last, smaller step.
    tokens, step_tokens, steps = 0, [], []
    for sm in steps_micro:
        t = sum(lengths[i] for mb in sm for i in mb)
        if p["max_steps"] > 0 and len(steps) >= p["max_steps"]:
            break
        if p["max_train_tokens"] > 0 and tokens >= p["max_train_tokens"]:
            break
        steps.append(sm)
        step_tokens.append(t)
        tokens += t
    flat = [mb for sm in steps for mb in sm]
    real = sum(lengths[i] for mb in flat for i in mb)
    padded = sum(len(mb) * max(lengths[i] for i in mb) for mb in flat)
    return {"micro_batches": flat, "steps": len(steps), "step_tokens": step_tokens, "train_tokens": real,
            "padded_tokens": padded, "padding_share": 1 - real / padded if padded else 0.0,
            "examples_per_step": per_step}


class Collator:
    """Right-pads a micro-batch to its longest example (labels with -100, so padding carries no loss)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, feats: list[dict]) -> dict:
        import torch

        n = max(len(f["input_ids"]) for f in feats)
        ids = torch.full((len(feats), n), self.pad_id, dtype=torch.long)
        lab = torch.full((len(feats), n), prompt.IGNORE_INDEX, dtype=torch.long)
        att = torch.zeros((len(feats), n), dtype=torch.long)
        for i, f in enumerate(feats):
            k = len(f["input_ids"])
            ids[i, :k] = torch.tensor(f["input_ids"])
            lab[i, :k] = torch.tensor(f["labels"])
            att[i, :k] = 1
        return {"input_ids": ids, "labels": lab, "attention_mask": att}


def target_positions(labels):
    """The positions whose next token is a target token: the only logits the loss reads. A TAC prompt is most of an
    example (the target ~1/8 on the reference corpus), so projecting only these onto the vocabulary spares most of
    the lm_head's matmul and the fp32 log-softmax over b x s x V (transformers' `logits_to_keep` with a boolean
    mask: the model returns the kept rows flattened, (n, V), in row-major order)."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != prompt.IGNORE_INDEX
    return keep


def target_loss(outputs, labels, num_items_in_batch=None):
    """The causal-LM loss of transformers (ForCausalLMLoss: labels shifted by one, -100 ignored, summed and divided
    by num_items_in_batch when the Trainer counts it over the accumulated batch, else the mean) on logits kept at
    `target_positions` (the Trainer's compute_loss_func)."""
    import torch.nn.functional as F

    logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
    shifted = labels[:, 1:]
    target = shifted[shifted != prompt.IGNORE_INDEX].to(logits.device)
    loss = F.cross_entropy(logits.float(), target, reduction="sum")
    n = num_items_in_batch if num_items_in_batch is not None else target.numel()
    return loss / (n.to(loss.device) if hasattr(n, "to") else n)


# ----------------------------------------------------------------------------------------------------- model
def build_model(p: dict[str, Any], tokenizer=None):
    """Base model (+ tokenizer with markers) wrapped with LoRA; QLoRA when quantization is nf4/int8."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from . import loading

    loaded = loading.load_model(p["model"], quantization=p["quantization"], hardware_profile=p["hardware_profile"],
                                dtype=p["dtype"], device_map=_device_map(p), tokenizer=tokenizer)
    model = loaded.model
    gc_kwargs = {"use_reentrant": False}
    if p["quantization"] != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=p["gradient_checkpointing"],
                                                gradient_checkpointing_kwargs=gc_kwargs)
    elif p["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
    if p["gradient_checkpointing"]:
        model.enable_input_require_grads()  # checkpointed blocks need a grad-requiring input with frozen embeddings
        model.config.use_cache = False
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Module)}
    missing = [t for t in p["lora_targets"] if t not in names]
    if missing:
        raise P.ParamsError(f"parameter 'lora_targets': {missing} not found in {type(model).__name__}")
    kw: dict[str, Any] = {}
    if p["train_new_tokens"] and loaded.new_token_ids:
        # Only the rows of the added marker tokens train (not the whole embedding): peft TrainableTokens.
        kw["trainable_token_indices"] = {"embed_tokens": loaded.new_token_ids}
    if kw and p["deepspeed"] and not torch.cuda.is_available():
        _peft_trainable_tokens_on_cpu()
    cfg = LoraConfig(r=p["lora_r"], lora_alpha=p["lora_alpha"], lora_dropout=p["lora_dropout"],
                     target_modules=list(p["lora_targets"]), task_type="CAUSAL_LM", bias="none", **kw)
    model = get_peft_model(model, cfg)
    return model, loaded


def _peft_trainable_tokens_on_cpu() -> None:
    """peft's TrainableTokens, under ZeRO-3, gathers the marker rows on rank 0 and broadcasts them into a buffer it
    always allocates on ``cuda`` ("right now, only CUDA is implemented"): on a CPU-only ZeRO-3 run (DS_ACCELERATOR=cpu,
    gloo) allocate that buffer on the CPU instead. Same logic otherwise; only applied without CUDA."""
    import torch
    import torch.distributed as dist
    from peft.tuners.trainable_tokens import layer as tt
    from peft.utils.integrations import gather_params_ctx

    def _collect_token_weights(self, weight, rows, embed_dim):
        with gather_params_ctx([weight], modifier_rank=None):
            if dist.is_available() and dist.is_initialized() and dist.get_rank() == 0:
                token_weights = weight[rows].clone()
            else:
                token_weights = torch.empty((len(rows), embed_dim), dtype=weight.dtype, device="cpu")
        dist.broadcast(token_weights, src=0)
        return token_weights

    tt.TrainableTokensLayer._collect_token_weights = _collect_token_weights


def _device_map(p: dict[str, Any]):
    import torch

    if p["quantization"] != "none" and torch.cuda.is_available() and not p["deepspeed"]:
        return {"": int(os.environ.get("LOCAL_RANK", 0))}
    return None


def run_choices(p: dict[str, Any]):
    """tacsol.hardware.Choices of this run on this machine: the profile's compute dtype (or the params' when not
    "auto") and attention (FlashAttention-2 only where flash_attn is installed). Launcher and notebooks ask this too."""
    from . import hardware

    get = lambda key: p.get(key, DEFAULTS[key])  # noqa: E731 (the launcher's fit check passes partial params)
    return hardware.choices(get("hardware_profile"), dtype=get("dtype"),
                            quantization=get("quantization")).runnable_here()


def _precision_flags(dtype_name: str, cpu_autocast: str = "auto") -> dict[str, bool]:
    """Trainer mixed-precision flags. On CPU, bf16 autocast (weights stay fp32) when the CPU has bf16 units and
    cpu_autocast is "auto", or always with "bf16"; measured on 2 cores with AVX512-BF16: see docs/training.md."""
    import torch

    if not torch.cuda.is_available():
        on = cpu_autocast == "bf16" or (cpu_autocast == "auto" and cpu_bf16_supported())
        return {"fp16": False, "bf16": on}
    return {"fp16": dtype_name == "float16", "bf16": dtype_name == "bfloat16"}


def set_cpu_threads(n: int = 0) -> int:
    """Torch intra-op threads on CPU. 0 = auto: the cores per process (cores // local ranks), minus the cores other
    processes are busy on *now* (system CPU use sampled over half a second). Oversubscribed OpenMP threads
    spin-wait for a core: measured here (2 cores, load 13) a SmolLM2 LoRA step took 80 s wall with 2 threads and
    15 s with 1. The 1-minute load average is not used: it still counts the kit's previous phase for a minute
    after it ended, and put `make demo`'s 03 on one thread on an idle machine (71.6 tokens/s instead of ~200).
    No effect with CUDA."""
    import torch

    if torch.cuda.is_available():
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    if n <= 0:
        n = max(1, min(cores // world, cores - busy_cores()))
    torch.set_num_threads(n)
    return n


def busy_cores(interval_s: float = 0.5) -> int:
    """Cores other processes keep busy right now (rounded down), from system-wide CPU use over `interval_s`."""
    try:
        import psutil
    except ImportError:
        return 0
    used = psutil.cpu_percent(interval=interval_s) / 100 * (os.cpu_count() or 1)
    return int(used + 0.25)  # a core 75% busy counts as busy; brief blips do not


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bf16 matmuls natively (AVX512-BF16 / AMX): then bf16 autocast is faster than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def peak_memory_gb() -> dict[str, float]:
    """Measured peaks: this process's max RSS (CPU) and, with CUDA, max allocated per device."""
    out = {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}
    try:
        import torch

        if torch.cuda.is_available():
            out["cuda_peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    except ImportError:
        pass
    return out


# ----------------------------------------------------------------------------------------------------- run
def make_args(p: dict[str, Any], out: Path, steps: int, dtype_name: str):
    """TrainingArguments. Built *before* the model is loaded: with a ZeRO-3 DeepSpeed config this creates the
    HfDeepSpeedConfig that makes from_pretrained build the model already partitioned (zero.Init) instead of whole
    on every rank (keep the returned object alive until the model is loaded)."""
    import torch
    from transformers import TrainingArguments

    world = int(os.environ.get("WORLD_SIZE", "1"))
    ds_cpu = bool(p["deepspeed"]) and not torch.cuda.is_available()
    if ds_cpu:
        # ACCELERATE_USE_CPU=true (tacsol.launch sets it for CPU runs) makes the Trainer's Accelerator drop the
        # DeepSpeed plugin and run MULTI_CPU DDP on a zero.Init-partitioned model. use_cpu=True alone keeps it: the
        # process group is accelerate's MULTI_CPU gloo one (right world size) and the Accelerator runs DeepSpeed.
        os.environ.pop("ACCELERATE_USE_CPU", None)
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=p["batch_size"], per_device_eval_batch_size=p["batch_size"],
        gradient_accumulation_steps=p["grad_accum"], learning_rate=p["learning_rate"], max_steps=steps,
        num_train_epochs=1, lr_scheduler_type=p["lr_scheduler"], warmup_steps=float(p["warmup_ratio"]),
        weight_decay=p["weight_decay"], optim="adamw_torch", seed=p["seed"], data_seed=p["seed"],
        logging_steps=p["logging_steps"], logging_first_step=True, save_strategy="steps",
        save_steps=p["save_steps"], save_total_limit=p["save_total_limit"], eval_strategy="no",
        report_to="none", remove_unused_columns=False, dataloader_num_workers=0,
        prediction_loss_only=True,   # held-out loss only: evaluate() keeps no logits
        gradient_checkpointing=False,  # enabled on the model in build_model (needs the peft-aware order)
        use_cpu=not torch.cuda.is_available(), disable_tqdm=False, run_name=p["run_name"],
        deepspeed=str(paths.resolve(p["deepspeed"])) if p["deepspeed"] else None,
        ddp_backend="gloo" if (world > 1 and not torch.cuda.is_available()) else None,
        ddp_find_unused_parameters=False if world > 1 else None,
        # DeepSpeed owns precision through its JSON; CPU autocast only for the plain Trainer
        **_precision_flags(dtype_name, "none" if p["deepspeed"] else p["cpu_autocast"]),
    )


def _make_trainer(p, model, tok, train_ds, eval_ds, args, step_tokens: list[int]):
    from transformers import Trainer, TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self):
            self.t0 = None
            self.pending: list[float] = []

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self.t0 is not None:
                self.pending.append(time.perf_counter() - self.t0)

    timer = Timer()

    class TacsolTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if "labels" in inputs:   # logits at target positions only; target_loss (compute_loss_func) reads them
                inputs = {**inputs, "logits_to_keep": target_positions(inputs["labels"])}
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def _get_train_sampler(self, *a, **k):  # the planned order; the Trainer must not reshuffle it
            import torch

            return torch.utils.data.SequentialSampler(self.train_dataset)

        def _save(self, output_dir=None, state_dict=None):
            # The resized embedding is deterministic (seeded mean-resizing) and the marker rows are saved by
            # TrainableTokens, so the full vocab x hidden matrix (0.8 GB for Llama-3.2-3B) stays out of checkpoints.
            m = self.model
            if hasattr(m, "peft_config"):
                orig = m.save_pretrained
                m.save_pretrained = functools.partial(orig, save_embedding_layers=False)
                try:
                    return super()._save(output_dir, state_dict)
                finally:
                    del m.save_pretrained
            return super()._save(output_dir, state_dict)

        def log(self, logs, *args, **kwargs):
            if "loss" in logs and timer.pending:
                g = self.state.global_step
                n = len(timer.pending)
                logs["step_time_s"] = sum(timer.pending) / n
                logs["tokens"] = sum(step_tokens[max(0, g - n):g])
                logs["rss_gb"] = _rss_now_gb()
                timer.pending = []
            super().log(logs, *args, **kwargs)

    trainer = TacsolTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                            data_collator=Collator(tok.pad_token_id), callbacks=[timer],
                            compute_loss_func=target_loss)
    return trainer


def _rss_now_gb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 1e9
    except ImportError:
        return float("nan")


def last_checkpoint(ckpt_dir: Path) -> str | None:
    """Newest *complete* checkpoint: the Trainer writes trainer_state.json last, so a folder without it is what a
    kill in the middle of saving left behind and is skipped."""
    if not Path(ckpt_dir).is_dir():
        return None
    done = [d for d in Path(ckpt_dir).glob("checkpoint-*")
            if d.name.split("-")[-1].isdigit() and (d / "trainer_state.json").is_file()]
    return str(max(done, key=lambda d: int(d.name.split("-")[-1]))) if done else None


def heldout_loss(trainer, ds) -> float:
    """Mean over held-out batches of the token-mean loss on target tokens (same batches before and after)."""
    return float(trainer.evaluate(eval_dataset=ds)["eval_loss"])


def _heldout_at_start_cls():
    from transformers import TrainerCallback

    class HeldoutAtStart(TrainerCallback):
        """Held-out loss of the untuned model, measured when training begins (DeepSpeed path, see run)."""

        def __init__(self, trainer, ds, path: Path | None):
            self.trainer, self.ds, self.path, self.loss = trainer, ds, path, None

        def on_train_begin(self, args, state, control, **kw):
            if self.loss is None:
                self.loss = heldout_loss(self.trainer, self.ds)
                if self.path is not None:
                    atomic_write_json(self.path, {"heldout_loss_before": self.loss})

    return HeldoutAtStart


# Keys that do not change what is trained: a finished run with other values for them is still this recipe's
RUN_ONLY_KEYS = {"cpu_threads", "resume", "n_samples", "max_new_tokens", "logging_steps", "save_total_limit", "smoke",
                 "run_name"}


def finished_run(p: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """train_log.json of a finished run of the same recipe in `out` (its adapter saved with the same training
    params), so that rerunning the notebook for its evaluation does not train again; None otherwise (resume off,
    nothing finished, or a recipe that differs: then training starts, or resumes from its checkpoints)."""
    log, meta = out / "train_log.json", out / "adapter" / "tacsol_train.json"
    if not (p["resume"] and log.is_file() and meta.is_file()):
        return None
    recorded = json.loads(meta.read_text()).get("params", {})
    # a key added to DEFAULTS after the run was trained counts as its default
    same = all(recorded.get(k, DEFAULTS.get(k)) == v for k, v in p.items() if k not in RUN_ONLY_KEYS)
    return json.loads(log.read_text()) if same else None


def run(params: dict[str, Any] | str | Path | None = None, *, keep_model: bool = False) -> dict[str, Any]:
    """Train (or resume) one run; returns what train_log.json holds (+ the trained ``peft_model`` and
    ``tokenizer`` objects when keep_model, for in-process inference)."""
    from transformers import set_seed

    from . import loading

    p = load_params(params)
    out = paths.resolve(p["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    done = finished_run(p, out)
    if done is not None:
        print(f"train: {out} holds this recipe's finished run (adapter + train_log.json): not trained again")
        if keep_model:
            from . import infer

            model, tok = infer.load(out / "adapter")
            done = {**done, "peft_model": model, "tokenizer": tok}
        return done
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    set_seed(p["seed"])
    t_start = time.time()
    threads = set_cpu_threads(p["cpu_threads"])
    tok = loading.load_tokenizer(p["model"])
    data = _prepare_data(p, tok, world)
    args = make_args(p, out, data.plan["steps"], run_choices(p).torch_dtype)  # before the model: ZeRO-3 zero.Init (see make_args)
    model, loaded = build_model(p, tokenizer=tok)
    trainer = _make_trainer(p, model, tok, data.train_ds, data.eval_ds, args, data.plan["step_tokens"])
    n_total = sum(_full_numel(x) for x in model.parameters())  # ZeRO-3: the full size, not the local placeholder
    n_train = sum(_full_numel(x) for x in model.parameters() if x.requires_grad)
    last = last_checkpoint(out / "checkpoints") if p["resume"] else None
    before, at_start = _heldout_before(p, trainer, data.eval_ds, out, last, rank)
    if rank == 0:
        atomic_write_text(out / "params.yaml", _yaml(p))
        print(f"train: {len(data.train_ex)} examples ({data.dropped} longer than {p['max_seq_length']} dropped), "
              f"{data.plan['steps']} steps, {data.plan['train_tokens']} tokens, padding {data.plan['padding_share']:.1%}; "
              f"held-out {len(data.eval_ex)} ({p['eval_split']}); trainable {n_train:,} of {n_total:,}"
              + (f"; resuming from {last}" if last else ""))
    t_train = time.time()
    set_seed(p["seed"])
    trainer.train(resume_from_checkpoint=last)
    train_wall = time.time() - t_train
    if at_start is not None:
        before = at_start.loss
    after = heldout_loss(trainer, data.eval_ds) if data.eval_ds is not None else None
    result = {
        "model": p["model"], "model_source": loaded.source, "dtype": loaded.dtype,
        "attn_implementation": loaded.attn_implementation, "quantization": loaded.quantization,
        "hardware_profile": p["hardware_profile"], "n_processes": world, "cpu_threads": threads,
        "params_total": n_total, "params_trainable": n_train,
        "train_examples": len(data.train_ex), "dropped_too_long": data.dropped,
        "holdout_packages": list(p["holdout_packages"]), "dropped_holdout_packages": data.held_out_pkgs,
        "heldout_examples": len(data.eval_ex), "heldout_dropped_too_long": data.eval_dropped,
        "steps": data.plan["steps"], "train_tokens": data.plan["train_tokens"],
        "padded_tokens": data.plan["padded_tokens"], "padding_share": data.plan["padding_share"],
        "max_seq_length": p["max_seq_length"], "lora_r": p["lora_r"],
        "heldout_loss_before": before, "heldout_loss_after": after,
        **_throughput(trainer.state.log_history),
        "train_wall_s": train_wall, "total_wall_s": time.time() - t_start,
        "resumed_from": last, "adapter_dir": str(out / "adapter"),
    }
    mem = peak_memory_gb()
    result.update(peak_memory_gb=mem.get("cuda_peak_gb", mem["peak_rss_gb"]), **mem)
    _save_run(p, trainer, tok, loaded, out, result, rank)
    if keep_model:
        result = {**result, "peft_model": trainer.model, "tokenizer": tok}
    return result


@dataclasses.dataclass
class _RunData:
    """A run's tokenized examples, its schedule and the datasets the Trainer reads."""
    train_ex: list[dict]
    dropped: int
    eval_ex: list[dict]
    eval_dropped: int
    held_out_pkgs: int
    plan: dict[str, Any]
    train_ds: Any
    eval_ds: Any


def _prepare_data(p: dict[str, Any], tok, world: int) -> _RunData:
    """Records → examples (too long ones dropped and counted) → the exact training order and held-out set."""
    import datasets

    recs = run_records(p)
    recs["train"], held_out_pkgs = drop_packages(recs["train"], p["holdout_packages"])
    if not recs["train"]:
        raise P.ParamsError(f"dataset {p['dataset']!r} has no train split records")
    train_ex, dropped = _tokenize_all(recs["train"], tok, p["max_seq_length"])
    held = recs[p["eval_split"]] if recs.get(p["eval_split"]) else recs["validation"] or recs["test"]
    held = sorted(held, key=lambda r: r.get("id", ""))
    random.Random(p["seed"]).shuffle(held)
    eval_ex, eval_dropped = _tokenize_all(held, tok, p["max_seq_length"])
    if p["eval_examples"] > 0:
        eval_ex = eval_ex[: p["eval_examples"]]
    eval_ex.sort(key=lambda e: e["length"])  # similar lengths per eval batch: little padding
    plan = plan_schedule([e["length"] for e in train_ex], p, world)
    # Sequential dataset in planned order; the Trainer splits micro-batches across ranks in turn.
    order = [i for mb in plan["micro_batches"] for i in mb]
    cols = ("input_ids", "labels", "attention_mask")
    train_ds = datasets.Dataset.from_dict({c: [train_ex[i][c] for i in order] for c in cols})
    eval_ds = datasets.Dataset.from_dict({c: [e[c] for e in eval_ex] for c in cols}) if eval_ex else None
    return _RunData(train_ex, dropped, eval_ex, eval_dropped, held_out_pkgs, plan, train_ds, eval_ds)


def _heldout_before(p: dict[str, Any], trainer, eval_ds, out: Path, last, rank: int):
    """Held-out loss of the untuned model: read back on resume, measured at train begin under DeepSpeed, else now.
    Returns (loss or None, the at-start callback whose .loss fills in after train() under DeepSpeed)."""
    before_path = out / "heldout_before.json"
    if eval_ds is None:
        return None, None
    if before_path.is_file() and last:
        return json.loads(before_path.read_text())["heldout_loss_before"], None
    if p["deepspeed"]:
        # Under DeepSpeed, Trainer.evaluate before train() builds an inference engine that train() then does not
        # replace (no optimizer engine: "'NoneType' object has no attribute 'backward'"); measure at train begin,
        # once the training engine exists and before the first step.
        at_start = _heldout_at_start_cls()(trainer, eval_ds, before_path if rank == 0 else None)
        trainer.add_callback(at_start)
        return None, at_start
    before = heldout_loss(trainer, eval_ds)  # LoRA B = 0: this is the untuned model (+ mean-initialised markers)
    if rank == 0:
        atomic_write_json(before_path, {"heldout_loss_before": before})
    return before, None


def _throughput(hist: list[dict]) -> dict[str, Any]:
    """The loss curve and tokens/s, s/step from the Trainer's log history."""
    curve = [{"step": h["step"], "loss": h["loss"], "learning_rate": h.get("learning_rate"),
              "step_time_s": h.get("step_time_s"), "tokens": h.get("tokens"), "rss_gb": h.get("rss_gb")}
             for h in hist if "loss" in h]
    timed = [c for c in curve if c["step_time_s"]]
    # each timed log entry covers logging_steps steps (the last one may cover fewer): weight by the tokens it saw
    n_steps_timed = _steps_covered(curve)
    time_sum = sum(c["step_time_s"] * n for c, n in zip(curve, n_steps_timed) if c["step_time_s"])
    tok_sum = sum(c["tokens"] or 0 for c in timed)
    return {"tokens_per_s": tok_sum / time_sum if time_sum else None,
            "s_per_step": time_sum / sum(n_steps_timed) if n_steps_timed and sum(n_steps_timed) else None,
            "curve": curve}


def _save_run(p: dict[str, Any], trainer, tok, loaded, out: Path, result: dict[str, Any], rank: int) -> None:
    """Adapter (+ tokenizer and recipe), train_log.json and the loss plot."""
    if getattr(trainer, "is_deepspeed_enabled", False):
        # ZeRO-3 partitions the LoRA weights too (each rank's visible tensors are empty outside forward): the
        # Trainer's save gathers them (collective: every rank calls it, the main process writes; _save above).
        trainer.save_model(str(out / "adapter"))
    elif rank == 0:
        trainer.model.save_pretrained(out / "adapter", save_embedding_layers=False)
    if rank == 0:
        from . import pairs

        ad = out / "adapter"
        tok.save_pretrained(ad)
        opts = pairs.lift_options(p["dataset"])
        atomic_write_json(ad / "tacsol_train.json", {"params": p, "model_source": loaded.source,
                                                     "dtype": loaded.dtype, "quantization": loaded.quantization,
                                                     # how decompile must lift for this adapter
                                                     "tac_level": opts["level"],
                                                     "callee_budget": opts["callee_budget"]})
        if p.get("retrieval_prompts"):
            save_neighbour_index(ad, p)
        atomic_write_json(out / "train_log.json", result)
        try:
            plot_loss(result, out / "loss.png")
        except Exception as exc:  # a plot must not lose a finished run
            print(f"loss plot failed: {exc}", file=sys.stderr)


def _full_numel(t) -> int:
    return int(getattr(t, "ds_numel", t.numel()))


def _steps_covered(curve: list[dict]) -> list[int]:
    out, prev = [], 0
    for c in curve:
        out.append(c["step"] - prev if c["step_time_s"] else 0)
        prev = c["step"]
    return out


def _yaml(p: dict) -> str:
    import yaml

    return yaml.safe_dump(p, sort_keys=False)


def plot_loss(result: dict, path: Path, caption: str | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .summary import hardware_line

    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = [c["step"] for c in result["curve"]]
    ax.plot(xs, [c["loss"] for c in result["curve"]], label="train loss (target tokens)")
    for key, style, lab in (("heldout_loss_before", "--", "held-out, untuned"),
                            ("heldout_loss_after", ":", "held-out, fine-tuned")):
        if result.get(key) is not None:
            ax.axhline(result[key], ls=style, color="k" if "before" in key else "g", label=f"{lab} {result[key]:.3f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy")
    ax.legend()
    ax.set_title(caption or f"{result['model']} LoRA r={result['lora_r']} · {hardware_line()}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------------------------------- CLI
def build_parser(ap: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    ap = ap or argparse.ArgumentParser(prog="tacsol train", description=__doc__.split("\n")[0])
    ap.add_argument("--params", required=True, help="params YAML (keys of notebook 03's parameters cell; its "
                                                     "evaluation keys are checked and left to the notebook)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one parameter (YAML value), repeatable")
    return ap


def main(args: argparse.Namespace) -> int:
    values = {**P.load_yaml(args.params), **P.parse_sets(args.set)}
    where = Path(args.params).name
    values = training_values(values, where)
    check_plan(load_params(values, where=where), where)  # refuse bad keys and plans naming the file, before loading
    res = run(values)
    if int(os.environ.get("RANK", "0")) == 0:
        show = {k: res[k] for k in ("steps", "train_tokens", "padding_share", "heldout_loss_before",
                                    "heldout_loss_after", "tokens_per_s", "s_per_step", "peak_memory_gb",
                                    "adapter_dir")}
        print(json.dumps(show, indent=1))
    close_process_group()
    return 0


def close_process_group() -> None:
    """Destroy the process group a multi-process run initialized, once training has ended well on this rank (not
    after an exception: the other ranks may still be in a collective). Not enough on its own: see exit_rank."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def exit_rank(code: int) -> NoReturn:
    """End a training process. A rank of a multi-process run that ended well leaves with os._exit once its output
    is flushed: a module DDP has wrapped keeps its Gloo process group alive past destroy_process_group (torch 2.13:
    after DDP(model) is freed and the group destroyed, the gloo_tcp_loop thread and both pt_gloo_runloop threads
    still run), and at interpreter exit those threads race the C++ static destructors, so a rank could die with
    SIGABRT ("terminate called without an active exception") after its work was done (CI, the DDP and ZeRO-3
    smoke tests, about one run in four; pytorch/pytorch#179291 describes the same teardown). Everything a run leaves
    is written atomically before this point. One process, or a failed rank, exits normally."""
    if code == 0 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    raise SystemExit(code)


if __name__ == "__main__":  # python -m tacsol.train --params FILE (what the launchers start on every rank)
    try:
        code = main(build_parser().parse_args())
    except P.ParamsError as exc:
        print(f"tacsol train: {exc}", file=sys.stderr)
        raise SystemExit(2)
    exit_rank(code)
