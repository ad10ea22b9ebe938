"""GPU evidence for the estimator and the training path (issues 2, 5, 7): one prepared script for a lent GPU.

Two steps:

    python tools/gpu_evidence.py prepare            # here (CPU): writes .gpu/ (tokenizer + long real pairs)
    python tools/gpu_evidence.py run --out DIR      # on the GPU machine: stages below, results appended as they finish

Stages of ``run`` (each isolated: a failure is recorded and the next stage runs):

* ``env``     torch / CUDA / GPU / bf16 / package versions.
* ``pytest``  the tests behind the ``gpu`` marker.
* ``peaks``   ``tacsol.vram.measure_peak`` on random-initialised, reduced-depth models of the real architectures
              (real widths, heads and vocabulary; 2 decoder layers): torch.cuda.max_memory_allocated of AdamW steps
              beside the estimator's allocated bytes for the same reduced model; bf16 vs fp16; LoRA vs NF4 QLoRA.
* ``train``   the notebook 03/04 training path itself (``python -m tacsol.train --params``, one process per run) on a
              random-initialised reduced-depth model saved to disk, real corpus pairs of 3.4k–4.1k (and 7k–8.2k)
              tokens: measured peak memory and tokens/s beside the estimator's numbers for the longest planned batch.

No weights are reachable from the GPU machine (no hub), hence random initialisation; the tokenizer is SmolLM2's (ids
fit inside every target vocabulary), so sequence lengths are SmolLM2 token counts of real pairs. Results:
``DIR/gpu_evidence.json`` (rewritten after every stage) and ``DIR/gpu_evidence.log``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
PREP = ROOT / ".gpu"
GB = 1e9

# (registry model, method, seq_len, micro_batch, dtype): the plans of phases 03/04/05 at reduced depth
PEAK_PLANS = [
    ("Llama-3.2-3B", "lora", 4096, 1, "bf16"),
    ("Llama-3.2-3B", "lora", 4096, 1, "fp16"),
    ("Qwen2.5-Coder-32B", "qlora", 4096, 1, "bf16"),
    ("Qwen2.5-Coder-32B", "qlora", 4096, 2, "bf16"),
    ("Qwen2.5-Coder-32B", "qlora", 8192, 1, "bf16"),
    ("Llama-3.1-70B", "qlora", 4096, 1, "bf16"),
]

# (label, registry model, quantization, dtype, records file, max_seq_length, batch_size)
TRAIN_RUNS = [
    ("llama3b_lora_bf16_4k", "Llama-3.2-3B", "none", "bfloat16", "long4k.jsonl", 4096, 2),
    ("llama3b_lora_fp16_4k", "Llama-3.2-3B", "none", "float16", "long4k.jsonl", 4096, 2),
    ("qwen32b_qlora_bf16_4k", "Qwen2.5-Coder-32B", "nf4", "bfloat16", "long4k.jsonl", 4096, 2),
    ("qwen32b_qlora_bf16_8k", "Qwen2.5-Coder-32B", "nf4", "bfloat16", "long8k.jsonl", 8192, 1),
]
DEADLINE = [float("inf")]  # time.time() after which no new run / plan / stage starts (--budget-s)


def _left() -> float:
    return DEADLINE[0] - time.time()


def _timeout() -> float | None:
    """Subprocess limit: what is left of the budget (at least 30 s), none without a budget."""
    left = _left()
    return None if left == float("inf") else max(30.0, left)


# ----------------------------------------------------------------------------------------------------- prepare
def prepare(n_train: int = 48, n_val: int = 8) -> None:
    """Tokenizer files + jsonl of real corpus pairs whose prompt+target is close to 4,096 / 8,192 tokens."""
    from tacsol import loading, pairs, prompt

    PREP.mkdir(exist_ok=True)
    src = loading.embedded_tokenizer_dir()
    tokdir = PREP / "tokenizer"
    tokdir.mkdir(exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (src / f).is_file():
            shutil.copy(src / f, tokdir / f)
    tok = loading.load_tokenizer("embedded:smollm2-135m")
    dd = pairs.load("corpus")
    for name, lo, hi in (("long4k.jsonl", 3400, 4096), ("long8k.jsonl", 7000, 8192)):
        rows = []
        for split, want in (("train", n_train), ("validation", n_val)):
            got = 0
            for r in dd[split]:
                ex = prompt.tokenize_example(r, tok, hi)
                if ex is not None and len(ex["input_ids"]) > lo:
                    rows.append({**{k: v for k, v in dict(r).items() if isinstance(v, (str, int, float, bool))},
                                 "split": split})
                    got += 1
                    if got >= want:
                        break
        with open(PREP / name, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
        print(f"{name}: {len(rows)} records in ({lo}, {hi}] SmolLM2 tokens")


# ----------------------------------------------------------------------------------------------------- run
class Recorder:
    def __init__(self, out: Path):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.doc: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "stages": {}}
        self.log = open(out / "gpu_evidence.log", "a", encoding="utf-8")

    def say(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def put(self, stage: str, value) -> None:
        self.doc["stages"][stage] = value
        tmp = self.out / "gpu_evidence.json.tmp"
        tmp.write_text(json.dumps(self.doc, indent=1, default=str))
        os.replace(tmp, self.out / "gpu_evidence.json")


def stage_env(rec: Recorder, device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), total_memory_gb=p.total_memory / GB,
                    sms=p.multi_processor_count, bf16_supported=torch.cuda.is_bf16_supported())
    for mod in ("transformers", "peft", "accelerate", "bitsandbytes", "datasets"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001 - record what is missing
            info[mod] = f"missing: {exc}"
    return info


def stage_pytest(rec: Recorder, device: str) -> dict:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/test_vram.py", "-s"], cwd=ROOT, capture_output=True, text=True, timeout=_timeout())
    tail = (proc.stdout + proc.stderr)[-3000:]
    rec.say(tail)
    return {"returncode": proc.returncode, "wall_s": round(time.time() - t0, 1), "tail": tail}


def stage_peaks(rec: Recorder, device: str, plans=PEAK_PLANS, num_layers: int = 2) -> list:
    from tacsol import vram as V

    rows = []
    for model, method, seq, mb, dt in plans:
        if _left() < 20:
            rows.append({"model": model, "seq_len": seq, "micro_batch": mb, "dtype": dt, "skipped": "time budget"})
            continue
        plan = V.Plan(method=method, seq_len=seq, micro_batch=mb, dtype=dt, attn_implementation="sdpa",
                      gradient_checkpointing=True)
        t0 = time.time()
        try:
            r = V.measure_peak(model, plan, num_layers=num_layers, device=device, steps=2)
            r.update(dtype=dt, wall_s=round(time.time() - t0, 1))
            rec.say(f"peak {model} {plan.describe()} {dt}: measured {r['measured_peak_gb']:.3f} GB, "
                    f"estimate {r['estimate_allocated_gb']:.3f} GB ({r['rel_error']:+.1%})")
        except Exception as exc:  # noqa: BLE001 - one failed plan must not lose the others
            r = {"model": model, "plan": plan.describe(), "dtype": dt, "error": f"{type(exc).__name__}: {exc}"[:500]}
            rec.say(f"peak {model} {plan.describe()} FAILED: {r['error']}")
        rows.append(r)
        rec.put("peaks", rows)
        _free()
    return rows


def _free() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _device_profile() -> str:
    import torch

    from tacsol import hardware

    return hardware.profile_for_device(torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def make_random_model(model: str, num_layers: int, dst: Path, device: str) -> dict:
    """Random-initialised reduced-depth copy of a registry architecture, saved with the carried tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from tacsol import models as mm

    if (dst / "config.json").is_file():
        return json.loads((dst / "tacsol_random.json").read_text())
    spec = mm.resolve(model).with_config(num_hidden_layers=num_layers)
    cfg = mm.hf_config(spec)
    torch.manual_seed(0)
    with torch.device(device):
        net = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(tmp)
    for f in (PREP / "tokenizer").iterdir():
        shutil.copy(f, tmp / f.name)
    meta = {"model": spec.name, "num_layers": num_layers, "params": sum(p.numel() for p in net.parameters()),
            "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size}
    (tmp / "tacsol_random.json").write_text(json.dumps(meta))
    del net
    _free()
    os.replace(tmp, dst)
    return meta


def stage_train(rec: Recorder, device: str, runs=TRAIN_RUNS, num_layers: int = 2, max_steps: int = 12,
                work: Path = Path("/tmp/tacsol_gpu")) -> list:
    import yaml

    from tacsol import launch, loading
    from tacsol import models as mm
    from tacsol import train as T
    from tacsol import vram as V

    hw = _device_profile()
    rows = []
    for label, model, quant, dtype, records, max_len, bs in runs:
        t0 = time.time()
        if _left() < 60:
            rows.append({"label": label, "skipped": "time budget"})
            rec.put("train", rows)
            continue
        row: dict = {"label": label, "model": model, "quantization": quant, "dtype": dtype, "max_seq_length": max_len,
                     "batch_size": bs, "num_layers": num_layers, "hardware_profile": hw}
        try:
            mdir = work / f"{model}-{num_layers}l"
            row["random_model"] = make_random_model(model, num_layers, mdir, device)
            out = work / "runs" / label
            shutil.rmtree(out, ignore_errors=True)
            p = {"run_name": label, "output_dir": str(out), "smoke": True, "model": str(mdir),
                 "dataset": str(PREP / records), "hardware_profile": hw, "dtype": dtype, "quantization": quant,
                 "max_seq_length": max_len, "batch_size": bs, "grad_accum": 1, "max_steps": max_steps,
                 "max_train_tokens": 0, "epochs": 1.0, "learning_rate": 2e-4, "warmup_ratio": 0.1,
                 "save_steps": 1000, "logging_steps": 1, "eval_split": "validation", "eval_examples": 4,
                 "resume": False, "n_samples": 0}
            pf = work / f"{label}.yaml"
            pf.write_text(yaml.safe_dump(p))
            proc = subprocess.run([sys.executable, "-m", "tacsol.train", "--params", str(pf)], cwd=ROOT,
                                  capture_output=True, text=True, timeout=_timeout(),
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                      [str(ROOT / "lib")] + [x for x in os.environ.get("PYTHONPATH", "").split(os.pathsep) if x])})
            row["returncode"] = proc.returncode
            if proc.returncode != 0:
                row["error_tail"] = (proc.stdout + proc.stderr)[-2500:]
                rec.say(f"train {label} FAILED rc={proc.returncode}\n{row['error_tail']}")
            else:
                log = json.loads((out / "train_log.json").read_text())
                # the longest planned micro-batch sets the peak: recompute the plan with the same tokenizer
                tok = loading.load_tokenizer(str(mdir))
                recs = T.load_records(str(PREP / records))
                ex, _ = T._tokenize_all(recs["train"], tok, max_len)
                plan = T.plan_schedule([e["length"] for e in ex], T.load_params(p))
                longest = max(max(ex[i]["length"] for i in mb) for mb in plan["micro_batches"])
                run_plan = launch.memory_plan(T.load_params(p))  # the plan 03/04/05 estimate for this run
                vplan = V.Plan(**{**run_plan, "seq_len": longest, "lora_targets": tuple(run_plan["lora_targets"])})
                small = mm.resolve(model).with_config(num_hidden_layers=num_layers)
                est = V.estimate(small, vplan, hw)
                row.update({k: log.get(k) for k in ("steps", "train_tokens", "padding_share", "heldout_loss_before",
                                                    "heldout_loss_after", "tokens_per_s", "s_per_step",
                                                    "cuda_peak_gb", "params_total", "params_trainable",
                                                    "attn_implementation", "dtype")})
                row.update(longest_micro_batch_tokens=longest, estimate_allocated_gb=est.allocated_bytes / GB,
                           estimate_terms_gb={k: round(v / GB, 3) for k, v in est.terms.items()},
                           estimate_rel_error=(est.allocated_bytes / GB - log["cuda_peak_gb"]) / log["cuda_peak_gb"]
                           if log.get("cuda_peak_gb") else None,
                           estimator_tokens_per_s=V.throughput(small, vplan, hw),
                           loss_first=log["curve"][0]["loss"] if log["curve"] else None,
                           loss_last=log["curve"][-1]["loss"] if log["curve"] else None,
                           curve=[(c["step"], round(c["loss"], 4)) for c in log["curve"]])
                rec.say(f"train {label}: peak {row['cuda_peak_gb']} GB vs estimate {row['estimate_allocated_gb']:.3f} GB"
                        f" (longest batch {longest} tokens), {row['tokens_per_s']} tok/s, loss {row['loss_first']}"
                        f" -> {row['loss_last']}, held-out {row['heldout_loss_before']} -> {row['heldout_loss_after']}")
        except Exception as exc:  # noqa: BLE001
            row["error"] = f"{type(exc).__name__}: {exc}"[:800]
            row["traceback"] = traceback.format_exc()[-2000:]
            rec.say(f"train {label} FAILED: {row['error']}")
        row["wall_s"] = round(time.time() - t0, 1)
        rows.append(row)
        rec.put("train", rows)
    return rows


def stage_launch(rec: Recorder, device: str, model: str = "Qwen2.5-Coder-32B", num_layers: int = 2,
                 max_steps: int = 8, work: Path = Path("/tmp/tacsol_gpu")) -> dict:
    """Notebook 04's path: tacsol.launch.launch_training → `accelerate launch --config_file ddp_1gpu.yaml -m
    tacsol.train` as a subprocess, log streamed, fit check first, artifacts read back."""
    import torch

    from tacsol import launch as L

    gpu = torch.cuda.is_available() and device != "cpu"
    hw = _device_profile() if gpu else "cpu"
    mdir = work / f"{model}-{num_layers}l"
    make_random_model(model, num_layers, mdir, device)
    params = {"run_name": "launch_04", "output_dir": str(work / "runs" / "launch_04"), "smoke": True,
              "model": str(mdir), "dataset": str(PREP / "long4k.jsonl"), "hardware_profile": hw, "dtype": "auto",
              "quantization": "nf4" if gpu else "none", "max_seq_length": 4096, "batch_size": 2, "grad_accum": 2,
              "max_steps": max_steps, "max_train_tokens": 0, "epochs": 1.0, "learning_rate": 2e-4,
              "save_steps": 4, "logging_steps": 1, "eval_split": "validation", "eval_examples": 4, "resume": True,
              "n_samples": 0, "launcher": "accelerate", "n_processes": 1,
              "accelerate_config": "params/accelerate/ddp_1gpu.yaml" if gpu else "", "zero3_plan": "none",
              "deepspeed": "", "timeout_minutes": max(1, int(_left() / 60)) if _left() != float("inf") else 0}
    t0 = time.time()
    res = L.launch_training(params, echo=lambda line: None)
    art = res["artifacts"]
    out = {"command": res["command"], "fit": {k: res["fit"].get(k) for k in ("fits", "per_gpu_gb", "capacity_gb", "message")},
           "seconds": round(time.time() - t0, 1), "log_tail": "\n".join(str(res.get("log", "")).splitlines()[-15:])[-2000:],
           **{k: art.get(k) for k in ("steps", "train_tokens", "tokens_per_s", "cuda_peak_gb", "peak_memory_gb",
                                     "heldout_loss_before", "heldout_loss_after", "quantization", "dtype",
                                     "adapter_files", "train_loss")}}
    rec.say(f"launch: {out['command']}\n  fit: {out['fit']['message']}\n  steps {out['steps']}, "
            f"{out['tokens_per_s']} tok/s, peak {out['cuda_peak_gb']} GB, held-out {out['heldout_loss_before']} -> "
            f"{out['heldout_loss_after']}, {out['seconds']} s")
    return out


STAGES = {"env": stage_env, "launch": stage_launch, "pytest": stage_pytest, "peaks": stage_peaks, "train": stage_train}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="write .gpu/ here (tokenizer + long real corpus pairs)")
    r = sub.add_parser("run", help="run the stages on the GPU machine")
    r.add_argument("--out", default=os.environ.get("OUT", "outputs/gpu_evidence"))
    r.add_argument("--stages", default="env,train,peaks,pytest")
    r.add_argument("--runs", default="", help="comma-separated TRAIN_RUNS labels (default: all)")
    r.add_argument("--device", default="cuda")
    r.add_argument("--budget-s", type=float, default=0, help="start nothing new after this many seconds (0: no limit)")
    r.add_argument("--cpu-dry-run", action="store_true",
                   help="tiny plans on the CPU, to check this script before spending GPU time")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        prepare()
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    rec = Recorder(Path(a.out))
    if a.budget_s > 0:
        DEADLINE[0] = time.time() + a.budget_s
    for name in a.stages.split(","):
        t0 = time.time()
        if _left() < 15:
            rec.put(name, {"skipped": "time budget"})
            continue
        rec.say(f"stage {name} …")
        try:
            if a.cpu_dry_run and name == "peaks":
                val = stage_peaks(rec, "cpu", [("SmolLM2-135M", "lora", 128, 1, "fp32")], num_layers=1)
            elif a.cpu_dry_run and name == "launch":
                val = stage_launch(rec, "cpu", "SmolLM2-135M", num_layers=1, max_steps=2, work=Path("/tmp/tacsol_gpu_dry"))
            elif a.cpu_dry_run and name == "train":
                val = stage_train(rec, "cpu", [("smol_dry", "SmolLM2-135M", "none", "float32", "long4k.jsonl", 4096, 1)],
                                  num_layers=1, max_steps=2, work=Path("/tmp/tacsol_gpu_dry"))
            else:
                val = (stage_train(rec, a.device, [r for r in TRAIN_RUNS if r[0] in a.runs.split(",")])
                       if name == "train" and a.runs else STAGES[name](rec, a.device))
        except Exception as exc:  # noqa: BLE001
            val = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
            rec.say(f"stage {name} FAILED: {val['error']}")
        if name in ("env", "pytest", "launch"):
            rec.put(name, val)
        rec.say(f"stage {name} done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
