"""Start the training module on 1..N processes: build `accelerate launch` / `torchrun` / `deepspeed` commands, check
the memory plan first, stream the log live, read the run's artifacts back.

The same path serves a 4-GPU ZeRO-3 run and its CPU smoke test: on CPU the launcher sets ``ACCELERATE_USE_CPU`` (DDP)
or ``DS_ACCELERATOR=cpu`` (DeepSpeed), the gloo backend and a torch-extensions cache under outputs/cache, and the DeepSpeed JSON uses
torch's Adam (no fused-op build). Notebooks 04 and 05 call :func:`run_phase`; ``python -m tacsol.launch
--params params/05_train_70b_zero3.yaml --dry-run`` prints the command and the fit verdict without running anything.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import params as P
from . import paths
from .ioutil import atomic_write_json, atomic_write_text

LAUNCHERS = ("python", "accelerate", "torchrun", "deepspeed")

# Keys of the 04/05 parameters cells that steer the launcher; every other key is the training module's (03's names).
# Keys of the 04/05 parameters cells that steer the launcher; every other key is the training module's
# (tacsol.train.DEFAULTS, i.e. notebook 03's parameters cell) and is passed through unchanged.
LAUNCH_KEYS = {
    "launcher", "n_processes", "accelerate_config", "zero3_plan", "allow_over_budget", "train_module",
    "timeout_minutes", "master_port", "num_machines", "machine_rank", "main_process_ip", "hostfile",
    "run_eval", "eval_limit", "probe",
}
# zero3_plan → the DeepSpeed JSON picked when `deepspeed` is left empty, by compute dtype.
ZERO3_CONFIGS = {
    ("qlora_quant_storage", "float16"): "params/deepspeed/zero3_fp16.json",
    ("qlora_quant_storage", "bfloat16"): "params/deepspeed/zero3_bf16.json",
    ("qlora_quant_storage", "float32"): "params/deepspeed/zero3_cpu_smoke.json",
    ("lora16_offload", "float16"): "params/deepspeed/zero3_offload_fp16.json",
    ("lora16_offload", "bfloat16"): "params/deepspeed/zero3_offload_bf16.json",
    ("lora16_offload", "float32"): "params/deepspeed/zero3_cpu_smoke.json",
    ("lora16", "float16"): "params/deepspeed/zero3_fp16.json",
    ("lora16", "bfloat16"): "params/deepspeed/zero3_bf16.json",
    ("lora16", "float32"): "params/deepspeed/zero3_cpu_smoke.json",
}
ZERO3_PLANS = ("none", "qlora_quant_storage", "lora16_offload", "lora16")


class LaunchError(RuntimeError):
    """The training subprocess failed; the message carries the return code and the tail of its log."""


class OverBudgetError(RuntimeError):
    """The memory estimate does not fit the hardware profile (set ``allow_over_budget`` to launch anyway)."""


@dataclass
class LaunchSpec:
    launcher: str = "python"                      # python | accelerate | torchrun | deepspeed
    n_processes: int = 1                          # processes (= GPUs) per machine
    cpu: bool = False                             # CPU smoke mode: gloo, no CUDA
    module: str | None = "tacsol.train"           # run as `-m module` ...
    script: str | None = None                     # ... or as a script path
    script_args: list[str] = field(default_factory=list)
    accelerate_config: str | None = None          # params/accelerate/*.yaml
    deepspeed_config: str | None = None           # params/deepspeed/*.json
    master_port: int = 29500
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    hostfile: str | None = None                   # deepspeed multi-node


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str]                           # only what the launcher adds to the caller's environment

    def shell(self) -> str:
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return (envs + " " if envs else "") + shlex.join(self.argv)


def free_port() -> int:
    """A free TCP port for the rendezvous: several runs on one machine must not collide on 29500."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    """The console script next to this interpreter (the venv's), else the bare name for PATH lookup."""
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else name


def _target(spec: LaunchSpec, module_flag: str) -> list[str]:
    if spec.script:
        return [spec.script, *spec.script_args]
    if not spec.module:
        raise ValueError("LaunchSpec needs a module or a script")
    return [module_flag, spec.module, *spec.script_args]


def build_command(spec: LaunchSpec) -> Command:
    """argv + added environment for one launch. Pure: touches neither processes nor files."""
    if spec.launcher not in LAUNCHERS:
        raise ValueError(f"launcher {spec.launcher!r}: expected one of {', '.join(LAUNCHERS)}")
    if spec.n_processes < 1:
        raise ValueError(f"n_processes must be >= 1, got {spec.n_processes}")
    env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    if spec.cpu:
        env.update(CUDA_VISIBLE_DEVICES="", ACCELERATE_USE_CPU="true",
                   TORCH_EXTENSIONS_DIR=str(paths.outputs_dir() / "cache" / "torch_extensions"),
                   OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // spec.n_processes)))
        if spec.deepspeed_config or spec.launcher == "deepspeed":
            env["DS_ACCELERATOR"] = "cpu"
            # ACCELERATE_USE_CPU makes the HF Trainer drop the DeepSpeed plugin (plain MULTI_CPU DDP instead)
            del env["ACCELERATE_USE_CPU"]
    nodes = spec.num_machines
    if spec.launcher == "python":
        if spec.n_processes != 1 or nodes != 1:
            raise ValueError("launcher 'python' runs one process; use accelerate, torchrun or deepspeed for more")
        argv = [sys.executable, *(["-m", spec.module, *spec.script_args] if not spec.script else _target(spec, "-m"))]
    elif spec.launcher == "accelerate":
        argv = [_bin("accelerate"), "launch"]
        n_all = spec.n_processes * nodes
        if spec.accelerate_config:
            # The YAML states the distributed type; the command only adds sizes and the plan's DeepSpeed JSON.
            argv += ["--config_file", str(paths.resolve(spec.accelerate_config))]
            argv += ["--num_processes", str(n_all), "--num_machines", str(nodes)]
            if spec.deepspeed_config:
                argv += ["--deepspeed_config_file", str(paths.resolve(spec.deepspeed_config))]
        else:
            argv += ["--num_processes", str(n_all), "--num_machines", str(nodes)]
            if spec.deepspeed_config:
                argv += ["--use_deepspeed", "--deepspeed_config_file", str(paths.resolve(spec.deepspeed_config)),
                         "--zero3_init_flag", "true" if zero_stage(spec.deepspeed_config) == 3 else "false"]
            elif n_all > 1:
                argv += ["--multi_gpu"]
            elif spec.cpu:
                argv += ["--cpu"]
        if nodes > 1:
            argv += ["--machine_rank", str(spec.machine_rank), "--main_process_ip", spec.main_process_ip or "MAIN_IP"]
        argv += ["--main_process_port", str(spec.master_port)]
        argv += ["--module", spec.module, *spec.script_args] if not spec.script else _target(spec, "--module")
    elif spec.launcher == "torchrun":
        argv = [_bin("torchrun"), "--nproc_per_node", str(spec.n_processes), "--nnodes", str(nodes)]
        if nodes > 1:
            argv += ["--node_rank", str(spec.machine_rank), "--master_addr", spec.main_process_ip or "MAIN_IP"]
        argv += ["--master_port", str(spec.master_port)]
        argv += _target(spec, "-m")
    else:  # deepspeed's own launcher (pdsh/ssh fan-out over a hostfile for multi-node)
        argv = [_bin("deepspeed")]
        if spec.hostfile:
            argv += ["--hostfile", str(paths.resolve(spec.hostfile))]
        if nodes > 1:
            argv += ["--num_nodes", str(nodes)]
        argv += ["--num_gpus", str(spec.n_processes), "--master_port", str(spec.master_port)]
        argv += ["--module", spec.module, *spec.script_args] if not spec.script else _target(spec, "--module")
    return Command(argv=argv, env=env)


# --------------------------------------------------------------------------------------------------- hardware, fit


def deepspeed_config_problems(ds_path: str | None, dtype: str) -> list[str]:
    """A DeepSpeed JSON must agree with the hardware's dtype: bf16 on Turing is refused, not silently emulated."""
    if not ds_path:
        return []
    path = paths.resolve(ds_path)
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        return [f"deepspeed config {ds_path!r}: file not found"]
    except json.JSONDecodeError as exc:
        return [f"deepspeed config {ds_path!r}: not valid JSON ({exc})"]
    problems = []
    bf16 = (cfg.get("bf16") or {}).get("enabled") is True
    fp16 = (cfg.get("fp16") or {}).get("enabled") is True
    if bf16 and dtype != "bfloat16":
        problems.append(f"deepspeed config {ds_path!r} enables bf16 but the hardware profile computes in {dtype} "
                        "(no bf16 before compute capability 8.0: use zero3_fp16.json)")
    if fp16 and dtype != "float16":
        problems.append(f"deepspeed config {ds_path!r} enables fp16 but the hardware profile computes in {dtype}")
    if "zero_optimization" not in cfg:
        problems.append(f"deepspeed config {ds_path!r}: no zero_optimization section")
    return problems


def _ds_json(ds_path: str | None) -> dict[str, Any]:
    return json.loads(paths.resolve(ds_path).read_text()) if ds_path else {}


def zero_stage(ds_path: str | None) -> int:
    return int(_ds_json(ds_path).get("zero_optimization", {}).get("stage", 0))


def offload_mode(ds_path: str | None) -> str:
    """The estimator's offload term for a DeepSpeed JSON: none | optimizer | optimizer+params."""
    z = _ds_json(ds_path).get("zero_optimization", {})
    on = lambda k: (z.get(k) or {}).get("device") in ("cpu", "nvme")  # noqa: E731
    return "optimizer+params" if on("offload_param") else ("optimizer" if on("offload_optimizer") else "none")


def memory_plan(params: dict[str, Any]) -> dict[str, Any]:
    """The training run in tacsol.vram.Plan's terms: the one mapping from training params (tacsol.train's keys, plus
    the launcher's n_processes / num_machines) to the estimator's input, used by notebook 03 and the launcher."""
    from .train import run_choices

    ds = params.get("deepspeed") or None
    n = int(params.get("n_processes", 1)) * int(params.get("num_machines") or 1)
    stage = zero_stage(ds)
    ch = run_choices(params)
    quantized = ch.quantization != "none"
    return {
        "method": "qlora" if quantized else "lora",
        "weights": ch.quantization if quantized else None,
        "double_quant": True,
        "kbit_fp32_upcast": quantized,  # train calls peft's prepare_model_for_kbit_training
        "dtype": ch.dtype,
        "attn_implementation": ch.attn_implementation,
        "lora_rank": int(params.get("lora_r", 16)),
        "lora_targets": list(params.get("lora_targets") or []),
        "lora_dropout": float(params.get("lora_dropout", 0.05)),
        "seq_len": int(params.get("max_seq_length", 1024)),
        "micro_batch": int(params.get("batch_size", 1)),
        "gradient_checkpointing": bool(params.get("gradient_checkpointing", True)),
        "n_gpus": n,
        "sharding": {3: "zero3", 2: "zero2"}.get(stage, "ddp" if n > 1 else "none"),
        "offload": offload_mode(ds),
    }


def fit_check(params: dict[str, Any]) -> dict[str, Any]:
    """Run the VRAM estimator on the plan for ``hardware_profile``. Returns a JSON-able record with the verdict, the
    per-GPU figures (allocated, reserved = what torch's caching allocator holds, per_gpu = reserved + CUDA context +
    NCCL, the nvidia-smi view), the capacity, the limit (capacity less the margin) and the breakdown. The verdict is
    per_gpu ≤ limit. An estimate that cannot be made is reported (fits None)."""
    from . import vram

    profile = params.get("hardware_profile") or "cpu"
    model = params.get("model")
    margin = float(params.get("fit_margin") or vram.DEFAULT_MARGIN)
    rec: dict[str, Any] = {"model": model, "hardware_profile": profile, "plan": None, "fits": None, "margin": margin}
    try:
        plan = rec["plan"] = memory_plan(params)
        est = vram.estimate(model, plan, profile)
    except Exception as exc:  # unknown model or profile, bad plan field: say so, do not pretend it fits
        rec["message"] = f"no estimate for {model!r} on {profile!r}: {type(exc).__name__}: {exc}"
        return rec
    d = est.to_dict(margin)
    rec.update(fits=bool(d["fits"]), per_gpu_gb=d["device_gb"], allocated_gb=d["allocated_gb"],
               reserved_gb=d["reserved_gb"], capacity_gb=d["capacity_gb"], limit_gb=d["limit_gb"],
               headroom_gb=round(d["limit_gb"] - d["device_gb"], 3), terms_gb=d["terms_gb"],
               overhead_gb=d["overhead_gb"], largest_transient=d["detail"].get("largest_transient"),
               notes=d["notes"], plan_text=d["detail"].get("plan_text"))
    rec["message"] = (f"{model} on {profile} × {plan['n_gpus']} ({rec['plan_text']}): estimated "
                      f"{rec['per_gpu_gb']:.1f} GB per {'GPU' if profile != 'cpu' else 'process'} vs capacity "
                      f"{rec['capacity_gb']:.1f} GB (allocated {rec['allocated_gb']:.1f} + allocator "
                      f"{rec['reserved_gb'] - rec['allocated_gb']:.1f} = reserved {rec['reserved_gb']:.1f}, + CUDA context"
                      f"/NCCL; limit {rec['limit_gb']:.1f} GB at margin {margin:.0%}) → "
                      f"{'fits' if rec['fits'] else 'does NOT fit'}")
    return rec


def fit_check_file(path: str | Path) -> dict[str, Any]:
    """The fit check of a phase params file (params/04_*.yaml ...): the notebook's defaults, the file's values and
    the DeepSpeed JSON its zero3_plan implies, as ``prepare`` would use them."""
    from . import params as P
    from .train import run_choices

    stem = Path(path).name[:2]
    p = P.validate(P.load_yaml(paths.resolve(path)), P.notebook_parameters(paths.notebook_path(stem)), where=stem)
    ds = resolve_deepspeed(p, run_choices(p).torch_dtype)
    return {**fit_check({**p, "deepspeed": ds}), "params_file": str(path), "n_processes": p.get("n_processes", 1)}


def require_fit(params: dict[str, Any], fit: dict[str, Any]) -> None:
    """Refuse a launch whose estimate does not fit (or cannot be made for a GPU profile) unless allowed."""
    if params.get("allow_over_budget"):
        return
    if fit["fits"] is False:
        terms = ", ".join(f"{k} {v:.1f}" for k, v in (fit.get("terms_gb") or {}).items() if v)
        raise OverBudgetError(f"{fit['message']}. Per-GPU terms (GB): {terms}. Lower max_seq_length or batch_size, "
                              "pick a ZeRO-3 / offload plan (zero3_plan), or set allow_over_budget: true to launch "
                              "anyway.")
    if fit["fits"] is None and (params.get("hardware_profile") or "cpu") != "cpu":
        raise OverBudgetError(f"{fit['message']}. Set allow_over_budget: true to launch without an estimate.")


# ------------------------------------------------------------------------------------------------- params → launch


def is_cpu(params: dict[str, Any]) -> bool:
    return (params.get("hardware_profile") or "cpu") == "cpu"


def resolve_deepspeed(params: dict[str, Any], dtype: str) -> str:
    """The DeepSpeed JSON to use: ``deepspeed`` when set, else the one ``zero3_plan`` implies for this dtype."""
    plan = params.get("zero3_plan") or "none"
    if plan not in ZERO3_PLANS:
        raise P.param_error(None, "zero3_plan", f"must be one of {', '.join(ZERO3_PLANS)}, got {plan!r}")
    if params.get("deepspeed"):
        return str(params["deepspeed"])
    return ZERO3_CONFIGS[(plan, dtype)] if plan != "none" else ""


def plan_problems(params: dict[str, Any], ds: str, dtype: str) -> list[str]:
    """Inconsistent launch plans, each named: they would fail minutes into a multi-GPU start otherwise."""
    problems = deepspeed_config_problems(ds or None, dtype)
    plan = params.get("zero3_plan") or "none"
    quant = params.get("quantization", "none")
    stage = zero_stage(ds or None) if not problems else 0
    launcher = params.get("launcher", "python")
    n = int(params.get("n_processes", 1))
    if stage == 3 and quant != "none" and plan != "qlora_quant_storage":
        problems.append(f"ZeRO-3 with quantization {quant!r} needs zero3_plan 'qlora_quant_storage' (4-bit weights are "
                        "sharded only when bnb_4bit_quant_storage equals the model dtype); or set quantization: none")
    if plan in ("lora16_offload", "lora16") and quant != "none":
        problems.append(f"zero3_plan {plan!r} trains LoRA on 16-bit weights: set quantization: none")
    if plan == "lora16_offload" and ds and offload_mode(ds) == "none" and dtype != "float32":
        problems.append(f"zero3_plan 'lora16_offload' but deepspeed config {ds!r} offloads nothing")
    if plan != "none" and stage != 3 and ds:
        problems.append(f"zero3_plan {plan!r} but deepspeed config {ds!r} is ZeRO stage {stage}")
    if stage == 3 and n * int(params.get("num_machines") or 1) == 1 and offload_mode(ds) == "none":
        problems.append(f"ZeRO-3 (zero3_plan {plan!r}, deepspeed config {ds!r}) with n_processes 1: ZeRO-3 shards the "
                        "model over processes and one process holds all of it; set n_processes to the GPU count or "
                        "zero3_plan: none")
    if launcher == "python" and (n > 1 or ds):
        problems.append("launcher 'python' runs one process without DeepSpeed: use accelerate, torchrun or deepspeed")
    if launcher == "deepspeed" and is_cpu(params):
        problems.append("launcher 'deepspeed' on CPU: use torchrun (DeepSpeed's launcher expects accelerator devices)")
    acc_cfg = params.get("accelerate_config") or ""
    if acc_cfg and launcher == "accelerate":
        import yaml

        acc_path = paths.resolve(acc_cfg)
        if not acc_path.is_file():
            problems.append(f"parameter 'accelerate_config': {acc_cfg!r} not found")
        else:
            acc_cpu = bool((yaml.safe_load(acc_path.read_text()) or {}).get("use_cpu", False))
            if acc_cpu != is_cpu(params):
                problems.append(f"parameter 'accelerate_config': {acc_cfg!r} has use_cpu: {str(acc_cpu).lower()} but "
                                f"hardware_profile is {params.get('hardware_profile') or 'cpu'!r} (pick a "
                                f"{'GPU' if acc_cpu else 'CPU'} config, e.g. "
                                f"{'params/accelerate/ddp_4gpu.yaml' if acc_cpu else 'params/accelerate/cpu_smoke_2proc.yaml'})")
    if launcher not in LAUNCHERS:
        problems.append(f"parameter 'launcher' must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if n < 1:
        problems.append(f"parameter 'n_processes' must be >= 1, got {n}")
    return problems


def training_params(params: dict[str, Any], ds: str) -> dict[str, Any]:
    """The params file the training module reads: exactly its own keys (tacsol.train.DEFAULTS)."""
    from .train import DEFAULTS

    values = {k: v for k, v in params.items() if k in DEFAULTS}
    values["deepspeed"] = str(paths.resolve(ds)) if ds else ""
    values["output_dir"] = str(paths.resolve(params["output_dir"]))
    return values


def spec_from_params(params: dict[str, Any], train_params_path: Path, ds: str) -> LaunchSpec:
    return LaunchSpec(
        launcher=params.get("launcher", "python"), n_processes=int(params.get("n_processes", 1)),
        cpu=is_cpu(params), module="tacsol.launch" if params.get("probe") else (params.get("train_module") or "tacsol.train"),
        script_args=(["--probe"] if params.get("probe") else []) + ["--params", str(train_params_path)], accelerate_config=params.get("accelerate_config") or None,
        deepspeed_config=ds or None, master_port=int(params.get("master_port") or free_port()),
        num_machines=int(params.get("num_machines") or 1), machine_rank=int(params.get("machine_rank") or 0),
        main_process_ip=params.get("main_process_ip") or None, hostfile=params.get("hostfile") or None)


# ------------------------------------------------------------------------------------------------------ streaming


def _echo_fn(echo: bool | Callable[[str], None]) -> Callable[[str], None]:
    """``echo`` as a line sink: True prints (flushed, so a notebook shows the log live), False drops."""
    return (lambda s: print(s, flush=True)) if echo is True else (echo or (lambda s: None))


def _is_progress(line: str) -> bool:
    return "%|" in line or ("it/s]" in line) or ("s/it]" in line)


def run_streaming(cmd: Command | list[str], *, env: dict[str, str] | None = None, log_path: str | Path,
                  echo: bool | Callable[[str], None] = True, timeout_s: float | None = None,
                  tail_lines: int = 60, progress_every_s: float = 10.0) -> dict[str, Any]:
    """Run, copy every output line to ``log_path`` and (echo) to the notebook as it comes; raise LaunchError with the
    log tail on a non-zero exit or a timeout. Progress-bar redraws are thinned to one every ``progress_every_s``."""
    if isinstance(cmd, Command):
        argv, added = cmd.argv, dict(cmd.env)
    else:
        argv, added = list(cmd), {}
    added.update(env or {})
    full_env = {**os.environ, **added}
    log_path = paths.resolve(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    show = _echo_fn(echo)
    tail: deque[str] = deque(maxlen=tail_lines)
    t0 = time.time()
    last_progress = 0.0
    import threading

    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + Command(argv, added).shell() + "\n")
        log.flush()
        proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, errors="replace", start_new_session=True, cwd=str(paths.repo_root()))
        timed_out = threading.Event()

        def _on_timeout() -> None:
            timed_out.set()
            _stop(proc)

        watchdog = threading.Timer(timeout_s, _on_timeout) if timeout_s else None
        if watchdog:
            watchdog.daemon = True
            watchdog.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:  # universal newlines: tqdm's \r redraws arrive as lines too
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                now = time.time()
                if _is_progress(line):
                    if now - last_progress < progress_every_s:
                        continue
                    last_progress = now
                log.write(line + "\n")
                log.flush()
                tail.append(line)
                show(line)
            proc.wait()
        except KeyboardInterrupt as exc:
            _stop(proc)
            log.write("[tacsol.launch] interrupted\n")
            raise LaunchError(f"{argv[0]} interrupted after {time.time() - t0:.0f} s; last lines of {log_path}:\n"
                              + "\n".join(tail)) from exc
        finally:
            if watchdog:
                watchdog.cancel()
            if proc.poll() is None:
                _stop(proc)
        if timed_out.is_set():
            log.write(f"[tacsol.launch] stopped after the {timeout_s:.0f} s limit\n")
            raise LaunchError(f"{argv[0]} stopped after {time.time() - t0:.0f} s (limit {timeout_s:.0f} s); last "
                              f"lines of {log_path}:\n" + "\n".join(tail))
    seconds = time.time() - t0
    if proc.returncode != 0:
        raise LaunchError(f"training exited with code {proc.returncode} after {seconds:.0f} s; last lines of "
                          f"{log_path}:\n" + "\n".join(tail))
    return {"returncode": proc.returncode, "seconds": round(seconds, 1), "log": str(log_path), "tail": list(tail)}


def _stop(proc: subprocess.Popen) -> None:
    """Stop the launcher and the workers it started (its own session), nothing else."""
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


# ------------------------------------------------------------------------------------------------------ artifacts


def read_artifacts(output_dir: str | Path) -> dict[str, Any]:
    """What a training run left behind (tacsol.train's train_log.json, adapter/): loss curve, held-out losses,
    memory, throughput, adapter files. Missing pieces are simply absent."""
    out = paths.resolve(output_dir)
    art: dict[str, Any] = {"output_dir": str(out)}
    log_file = out / "train_log.json"
    if log_file.exists():
        doc = json.loads(log_file.read_text())
        art["train_log"] = doc
        curve = doc.get("curve") or [h for h in doc.get("log_history", []) if "loss" in h]
        art["train_loss"] = [(c["step"], float(c["loss"])) for c in curve if "loss" in c]
        art["rss_gb"] = [(c["step"], c.get("rss_gb")) for c in curve if c.get("rss_gb") is not None]
        for k in ("model", "dtype", "attn_implementation", "quantization", "hardware_profile", "n_processes",
                  "params_total", "params_trainable", "steps", "train_tokens", "heldout_loss_before",
                  "heldout_loss_after", "tokens_per_s", "s_per_step", "peak_memory_gb", "peak_rss_gb",
                  "cuda_peak_gb", "train_wall_s", "total_wall_s", "max_seq_length", "lora_r", "padding_share",
                  "train_examples", "dropped_too_long", "heldout_examples", "heldout_dropped_too_long"):
            if k in doc:
                art[k] = doc[k]
    adapter = out / "adapter"
    if adapter.is_dir():
        files = sorted(p for p in adapter.rglob("*") if p.is_file())
        art["adapter_dir"] = str(adapter)
        art["adapter_files"] = {str(p.relative_to(adapter)): p.stat().st_size for p in files}
    return art


def evaluate_adapter(params: dict[str, Any], limit: int, max_new_tokens: int | None = None) -> dict[str, Any]:
    """Generate with the trained adapter on the first ``limit`` records of the evaluation split and score them with
    tacsol.evaluate into output_dir/eval (the same path notebook 03 uses, so 06_compare reads it alike)."""
    from . import evaluate, infer
    from .train import run_records

    out = paths.resolve(params["output_dir"])
    recs = run_records(params)
    split = params.get("eval_split", "test")
    records = (recs.get(split) or recs["test"])[: max(0, int(limit))]
    import torch

    threads = torch.get_num_threads()
    if not torch.cuda.is_available() and os.getloadavg()[0] >= (os.cpu_count() or 1):
        # On a CPU already oversubscribed by other jobs, intra-op threads spin against each other: measured here
        # 383 s with 2 threads vs 21 s with 1 for the same 2 × 24-token generation (load average 10 on 2 cores).
        torch.set_num_threads(1)
    try:
        model, tok = infer.load(out / "adapter")
        gens = infer.generate(model, tok, records, batch_size=4, progress=False,
                              max_new_tokens=int(max_new_tokens or params.get("max_new_tokens", 200)))
        del model
    finally:
        torch.set_num_threads(threads)
    return evaluate.evaluate_run(records, gens, out, system="fine-tuned", n_boot=200, progress=False,
                                 extra={"split": split, "n_records": len(records)}, behaviour=True)


# ------------------------------------------------------------------------------------------------------ top level


def checked_plan(params: dict[str, Any], where: str | None = None):
    """(hardware Choices, DeepSpeed JSON) of a launch; an inconsistent plan is a ParamsError naming every problem."""
    from .train import run_choices

    choices = run_choices(params)
    ds = resolve_deepspeed(params, choices.torch_dtype)
    problems = plan_problems(params, ds, choices.torch_dtype)
    if problems:
        raise P.ParamsError(f"{where + ': ' if where else ''}launch plan: " + "; ".join(problems))
    return choices, ds


def check_params(params: dict[str, Any], where: str) -> None:
    """Notebooks 04/05's parameters (tacsol.params.PLAN_CHECKS): the training plan, the launch plan and, when the
    phase evaluates, generation with the trained model."""
    from . import infer, train

    p = train.load_params({k: v for k, v in params.items() if k in train.DEFAULTS}, where)
    train.check_plan(p, where)
    checked_plan(params, where)
    if params.get("run_eval"):
        infer.check_generation(p["model"], p["quantization"], p["hardware_profile"], where)


def prepare(params: dict[str, Any]) -> dict[str, Any]:
    """Everything decided before a launch, no process started: dtype/attention, DeepSpeed JSON, checks, fit
    estimate, the training params and the command. Inconsistent plans raise ParamsError naming the fields."""
    out = paths.resolve(params["output_dir"])
    choices, ds = checked_plan(params)
    fit = fit_check({**params, "deepspeed": ds})
    tp = training_params(params, ds)
    tp_path = out / "train_params.yaml"
    cmd = build_command(spec_from_params(params, tp_path, ds))
    return {"choices": choices.to_dict(), "deepspeed": ds, "fit": fit, "train_params": tp, "train_params_path": tp_path,
            "command": cmd}


def launch_training(params: dict[str, Any], echo: bool | Callable[[str], None] = True,
                    plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit check (refuse unless allowed) → write train_params.yaml → run the launcher, streaming → read artifacts.
    ``plan``: what :func:`prepare` returned for these params (prepared here when absent)."""
    import yaml

    plan = plan or prepare(params)
    require_fit(params, plan["fit"])
    out = paths.resolve(params["output_dir"])
    import shutil

    shutil.rmtree(out / "distributed", ignore_errors=True)  # records of an earlier run must not speak for this one
    atomic_write_text(plan["train_params_path"], yaml.safe_dump(plan["train_params"], sort_keys=False))
    cmd = plan["command"]
    _echo_fn(echo)(f"$ {cmd.shell()}")
    t0 = time.time()
    run = run_streaming(cmd, log_path=out / "launch.log", echo=echo,
                        timeout_s=float(params.get("timeout_minutes") or 0) * 60 or None)
    art = read_artifacts(out)
    art["distributed"] = read_distributed(out)
    record = {"command": cmd.shell(), "argv": cmd.argv, "env": cmd.env, "choices": plan["choices"],
              "fit": plan["fit"], "seconds": round(time.time() - t0, 1), "log": run["log"]}
    atomic_write_json(out / "launch.json", record)
    return {**record, "artifacts": art}


# ------------------------------------------------------------------------------------------------ 04/05's phase

EVAL_SHOWN = ("n_functions", "similarity_mean", "edit_distance_mean", "compile_rate", "selector_match_rate")
EVAL_HEADLINE = ("similarity_mean", "edit_distance_mean", "compile_rate")
ARTIFACTS_SHOWN = ("steps", "train_tokens", "dropped_too_long", "heldout_dropped_too_long", "s_per_step",
                   "tokens_per_s", "peak_memory_gb", "heldout_loss_before", "heldout_loss_after", "params_total",
                   "params_trainable", "dtype", "attn_implementation", "n_processes")


def plan_report(plan: dict[str, Any]) -> str:
    """The decisions before a launch as text: choices, DeepSpeed JSON, the fit verdict with its terms, the command."""
    fit = plan["fit"]
    lines = [f"choices: {plan['choices']}",
             f"deepspeed: {plan['deepspeed'] or 'none'} | ZeRO stage {zero_stage(plan['deepspeed'] or None)}",
             fit["message"]]
    lines += [f"  {k:<16} {v:8.2f} GB" for k, v in (fit.get("terms_gb") or {}).items() if v]
    lines += [f"  note: {note}" for note in fit.get("notes") or []]
    return "\n".join(lines + [f"command: {plan['command'].shell()}"])


def distribution_report(dist: dict[str, Any]) -> str:
    """What the probe saw per rank; under ZeRO-3 also whether every parameter was split evenly (DeepSpeed pads
    each to ceil(numel / world size)) and the largest ones' shards."""
    ranks = dist.get("ranks", [])
    lines = [dist.get("verdict") or ""]
    for r in ranks:
        ds = "on" if r["deepspeed_enabled"] else "off"
        lines.append(f"  rank {r['rank']}: {r['distributed_type']}, DeepSpeed {ds}"
                     f" (requested: {r['deepspeed_requested']}), accelerate sees {r['accelerate_num_processes']} "
                     f"processes; stores {r['local_numel']:,} of {r['full_numel']:,} parameter elements "
                     f"({r['local_numel'] / r['full_numel']:.1%}), trainable {r.get('trainable_local_numel', 0):,} "
                     f"of {r.get('trainable_full_numel', 0):,}")
    if ranks and ranks[0].get("partitions"):
        parts, n = ranks[0]["partitions"], ranks[0]["world_size"]
        even = all(loc == -(-full // n) for r in ranks for full, loc in r["partitions"].values())
        lines.append(f"every one of {len(parts)} parameters split into ceil(numel/{n}) per rank: {even}")
        for name in sorted(parts, key=lambda k: -parts[k][0])[:4]:
            lines.append(f"  {name:<72} full {parts[name][0]:>11,} | "
                         + " | ".join(f"rank {r['rank']} {r['partitions'][name][1]:>10,}" for r in ranks))
    if ranks and ranks[0]["deepspeed_requested"] and not dist.get("deepspeed_engaged"):
        lines.append(f"WARNING: DeepSpeed did not engage in this run: {dist['verdict']}. See docs/multi-gpu.md.")
    return "\n".join(lines)


def artifacts_report(art: dict[str, Any]) -> str:
    """The run's figures read back from train_log.json, and the adapter's weight and config files."""
    files = {k: v for k, v in (art.get("adapter_files") or {}).items() if k.endswith((".safetensors", ".json"))}
    return "\n".join([f"{k:<24} {art.get(k)}" for k in ARTIFACTS_SHOWN] + [f"adapter files: {files}"])


def _phase_eval(params: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any] | None:
    if not (params.get("run_eval") and int(params.get("eval_limit") or 0) > 0):
        say("evaluation skipped (run_eval False)")
        return None
    ev = evaluate_adapter(params, int(params["eval_limit"]))
    say(json.dumps({k: ev["metrics"].get(k) for k in EVAL_SHOWN}, indent=1))
    return ev


def phase_headline(params: dict[str, Any], plan: dict[str, Any], run: dict[str, Any],
                   ev: dict[str, Any] | None) -> dict[str, Any]:
    """summary.json's headline of a launched phase (design.md, summary.json contract), with the examples training
    dropped for exceeding max_seq_length (train and held-out)."""
    art = run["artifacts"]
    dist = art.get("distributed") or {}
    n_gpus = 0 if is_cpu(params) else int(params["n_processes"]) * int(params.get("num_machines") or 1)
    wall_h = (art.get("total_wall_s") or run["seconds"]) / 3600
    headline = {
        "model": params["model"], "params_total": art.get("params_total"),
        "max_seq_length": params["max_seq_length"], "lora_r": params["lora_r"],
        "quantization": params["quantization"], "hardware_profile": params["hardware_profile"],
        "n_processes": art.get("n_processes"), "zero_stage": zero_stage(plan["deepspeed"] or None),
        "zero3_plan": params.get("zero3_plan") or "none", "train_tokens": art.get("train_tokens"),
        "steps": art.get("steps"), "dropped_too_long": art.get("dropped_too_long"),
        "heldout_dropped_too_long": art.get("heldout_dropped_too_long"),
        "heldout_loss_before": art.get("heldout_loss_before"), "heldout_loss_after": art.get("heldout_loss_after"),
        "tokens_per_s": art.get("tokens_per_s"), "s_per_step": art.get("s_per_step"),
        "peak_memory_gb": art.get("peak_memory_gb"), "estimated_memory_gb": plan["fit"].get("per_gpu_gb"),
        "wall_hours": wall_h, "gpu_hours": wall_h * n_gpus,
        "deepspeed_engaged": dist.get("deepspeed_engaged"), "distribution": dist.get("verdict"),
        "param_elements_per_rank": [r["local_numel"] for r in dist.get("ranks", [])],
    }
    if ev:
        headline.update({k: ev["metrics"].get(k) for k in EVAL_HEADLINE})
    return headline


def run_phase(params: dict[str, Any], echo: bool | Callable[[str], None] = True) -> dict[str, Any]:
    """Notebooks 04/05: plan and fit check (refused unless allowed) → launch, log streamed → what distribution
    ran → the run read back → evaluation of the adapter → the headline. Returns ``plan``, ``artifacts``, ``eval``,
    ``headline``, ``title`` (for the figure) and ``summary`` (write_summary's extra fields)."""
    from .summary import hardware_line

    say = _echo_fn(echo)
    plan = prepare(params)
    say(plan_report(plan))
    require_fit(params, plan["fit"])
    run = launch_training(params, echo, plan=plan)
    art = run["artifacts"]
    say(f"finished in {run['seconds']:.0f} s\n{distribution_report(art['distributed'])}\n{artifacts_report(art)}")
    ev = _phase_eval(params, say)
    smoke = bool(params.get("smoke"))
    title = (f"{'SMOKE RUN · ' if smoke else ''}{params['model']}, {params['n_processes']}× "
             f"{params['hardware_profile']}, ZeRO-{zero_stage(plan['deepspeed'] or None)}, seq "
             f"{params['max_seq_length']} · {hardware_line()}")
    launch_record = {"command": run["command"], "deepspeed": plan["deepspeed"], "choices": plan["choices"],
                     "fit": plan["fit"], "log": run["log"]}
    note = "SMOKE RUN: embedded model on CPU processes; checks the launch path only" if smoke else ""
    return {"plan": plan, "artifacts": art, "eval": ev, "headline": phase_headline(params, plan, run, ev),
            "title": title, "summary": {"launch": launch_record, "note": note}}


def probe_and_train(params_path: str) -> int:
    """Run tacsol.train.main on this rank and record what distribution the Trainer really used (rank, world size,
    accelerate's process count, DeepSpeed on/off, ZeRO-3 shard sizes of the model's parameters) into
    ``<output_dir>/distributed/rank<N>.json``. Observation only: the training is the module's own. Started as
    ``-m tacsol.launch --probe --params FILE`` when ``probe`` is set, because a DeepSpeed JSON can be dropped
    silently (e.g. the Trainer's CPU path ignores it) and a smoke run must not claim ZeRO-3 it did not run."""
    import transformers

    from . import train

    p = train.load_params(params_path)
    rec_dir = paths.resolve(p["output_dir"]) / "distributed"
    orig = transformers.Trainer.train

    def train_and_record(self, *a, **k):
        res = orig(self, *a, **k)
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_initialized() else 0
        params = list(self.model.named_parameters())
        sharded = [(n, q) for n, q in params if hasattr(q, "ds_numel")]
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        atomic_write_json(rec_dir / f"rank{rank}.json", {
            "rank": rank, "world_size": dist.get_world_size() if dist.is_initialized() else 1,
            "accelerate_num_processes": self.accelerator.num_processes,
            "distributed_type": str(self.accelerator.distributed_type),
            "deepspeed_requested": bool(p.get("deepspeed")),
            "deepspeed_enabled": bool(getattr(self, "is_deepspeed_enabled", False)),
            "zero_stage": getattr(plugin, "zero_stage", None) if plugin else None,
            "n_params": len(params), "n_sharded": len(sharded),
            "full_numel": int(sum(q.ds_numel if hasattr(q, "ds_numel") else q.numel() for _, q in params)),
            "local_numel": int(sum(q.ds_tensor.numel() if hasattr(q, "ds_numel") else q.numel() for _, q in params)),
            "trainable_full_numel": int(sum(getattr(q, "ds_numel", q.numel()) for _, q in params if q.requires_grad)),
            "trainable_local_numel": int(sum(q.ds_tensor.numel() if hasattr(q, "ds_numel") else q.numel()
                                             for _, q in params if q.requires_grad)),
            # per parameter [full elements, elements this rank stores]: the partition sizes themselves
            "partitions": {n: [int(q.ds_numel), int(q.ds_tensor.numel())] for n, q in sharded},
        })
        return res

    transformers.Trainer.train = train_and_record
    return train.main(train.build_parser().parse_args(["--params", params_path]))


def read_distributed(output_dir: str | Path) -> dict[str, Any]:
    """Per-rank records of :func:`probe_and_train` and a one-line verdict."""
    recs = [json.loads(f.read_text()) for f in sorted((paths.resolve(output_dir) / "distributed").glob("rank*.json"))]
    if not recs:
        return {"ranks": [], "verdict": "no distribution record (probe off)"}
    r0 = recs[0]
    if r0["deepspeed_requested"] and not r0["deepspeed_enabled"]:
        verdict = (f"DeepSpeed was requested but the Trainer ran WITHOUT it ({r0['distributed_type']}, "
                   f"{r0['world_size']} ranks): every rank held the whole model ({r0['local_numel']:,} elements)")
    elif r0["n_sharded"]:
        verdict = (f"DeepSpeed ZeRO-{r0['zero_stage']} engaged on {r0['world_size']} ranks: rank 0 holds "
                   f"{r0['local_numel']:,} of {r0['full_numel']:,} parameter elements")
    else:
        verdict = (f"{r0['distributed_type']} on {r0['world_size']} ranks, no sharding: each rank holds all "
                   f"{r0['full_numel']:,} parameter elements")
    return {"ranks": recs, "verdict": verdict,
            "deepspeed_engaged": bool(r0["deepspeed_enabled"] and r0["n_sharded"])}


def main(argv: list[str] | None = None) -> int:
    from . import params as P

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--probe"]:   # a rank of a training run: it ends like one (tacsol.train.exit_rank)
        from .train import exit_rank

        exit_rank(probe_and_train(argv[argv.index("--params") + 1]))

    ap = argparse.ArgumentParser(prog="python -m tacsol.launch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", required=True, help="params/04_*.yaml or params/05_*.yaml")
    ap.add_argument("--output-dir", default=None)
    ap.add_argument("--dry-run", action="store_true", help="print the fit verdict and the command, start nothing")
    args = ap.parse_args(argv)
    values = P.validate_params_file(args.params)
    if args.output_dir:
        values["output_dir"] = args.output_dir
    if args.dry_run:
        plan = prepare(values)
        print(plan["fit"].get("message"))
        print(plan["command"].shell())
        return 0
    launch_training(values)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
