"""Start the training module on 1..N processes: build `accelerate launch` / `torchrun` / `deepspeed` commands, check
the memory plan first, stream the log live, read the run's artifacts back.

The same path serves a 4-GPU ZeRO-3 run and its CPU smoke test: on CPU the launcher sets ``ACCELERATE_USE_CPU`` /
``DS_ACCELERATOR=cpu``, the gloo backend and a torch-extensions cache under outputs/cache, and the DeepSpeed JSON uses
torch's Adam (no fused-op build). Notebooks 04 and 05 call :func:`launch_training`; ``python -m tacsol.launch
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

from . import paths
from .ioutil import atomic_write_json, atomic_write_text

LAUNCHERS = ("python", "accelerate", "torchrun", "deepspeed")
ZERO3_PLANS = ("qlora_quant_storage", "lora16_offload", "lora16")

# Keys of the 04/05 parameters cells that steer the launcher; every other key is the training module's (03's names).
LAUNCH_KEYS = {
    "run_name", "output_dir", "smoke", "launcher", "n_processes", "cpu", "accelerate_config", "deepspeed_config",
    "hardware_profile", "allow_over_budget", "zero3_plan", "train_module", "timeout_minutes", "master_port",
    "num_machines", "machine_rank", "main_process_ip", "hostfile", "evaluate", "eval_limit", "eval_split",
}

# Used only while tacsol.hardware is not importable: (dtype, attention) by GPU family.
_FALLBACK_CHOICES = {
    "cpu": ("float32", "sdpa"),
    "rtx8000": ("float16", "sdpa"), "t4": ("float16", "sdpa"), "v100": ("float16", "sdpa"),
    "a100": ("bfloat16", "flash_attention_2"), "a6000": ("bfloat16", "flash_attention_2"),
    "h100": ("bfloat16", "flash_attention_2"), "h200": ("bfloat16", "flash_attention_2"),
    "rtx4090": ("bfloat16", "flash_attention_2"),
}


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
    nodes = spec.num_machines
    if spec.launcher == "python":
        if spec.n_processes != 1 or nodes != 1:
            raise ValueError("launcher 'python' runs one process; use accelerate, torchrun or deepspeed for more")
        argv = [sys.executable, *(["-m", spec.module, *spec.script_args] if not spec.script else _target(spec, "-m"))]
    elif spec.launcher == "accelerate":
        argv = [_bin("accelerate"), "launch"]
        if spec.accelerate_config:
            argv += ["--config_file", str(paths.resolve(spec.accelerate_config))]
        argv += ["--num_processes", str(spec.n_processes * nodes), "--num_machines", str(nodes)]
        if spec.deepspeed_config:
            argv += ["--use_deepspeed", "--deepspeed_config_file", str(paths.resolve(spec.deepspeed_config))]
        elif spec.n_processes * nodes > 1:
            argv += ["--multi_gpu"]
        if spec.cpu and spec.n_processes * nodes == 1:
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


def training_choices(profile: str) -> dict[str, str]:
    """Compute dtype and attention implementation for a hardware profile (tacsol.hardware decides; fallback table)."""
    try:
        from . import hardware  # type: ignore[attr-defined]

        ch = hardware.training_choices(profile)
        ch = ch if isinstance(ch, dict) else vars(ch)
        dtype = ch.get("dtype") or ch.get("compute_dtype")
        attn = ch.get("attn_implementation") or ch.get("attention")
        if dtype and attn:
            return {"dtype": str(dtype).replace("torch.", ""), "attn_implementation": str(attn)}
    except ImportError:
        pass
    key = profile.lower().split("_")[0].split("-")[0].split("x")[0] if profile else "cpu"
    for name, (dtype, attn) in _FALLBACK_CHOICES.items():
        if key.startswith(name):
            return {"dtype": dtype, "attn_implementation": attn}
    raise ValueError(f"hardware_profile {profile!r}: unknown (known: {', '.join(_FALLBACK_CHOICES)})")


def deepspeed_config_problems(ds_path: str | None, dtype: str) -> list[str]:
    """A DeepSpeed JSON must agree with the hardware's dtype: bf16 on Turing is refused, not silently emulated."""
    if not ds_path:
        return []
    path = paths.resolve(ds_path)
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        return [f"deepspeed_config {ds_path!r}: file not found"]
    except json.JSONDecodeError as exc:
        return [f"deepspeed_config {ds_path!r}: not valid JSON ({exc})"]
    problems = []
    bf16 = (cfg.get("bf16") or {}).get("enabled") is True
    fp16 = (cfg.get("fp16") or {}).get("enabled") is True
    if bf16 and dtype != "bfloat16":
        problems.append(f"deepspeed_config {ds_path!r} enables bf16 but the hardware profile computes in {dtype} "
                        "(no bf16 before compute capability 8.0: use zero3_fp16.json)")
    if fp16 and dtype != "float16":
        problems.append(f"deepspeed_config {ds_path!r} enables fp16 but the hardware profile computes in {dtype}")
    if "zero_optimization" not in cfg:
        problems.append(f"deepspeed_config {ds_path!r}: no zero_optimization section")
    return problems


def zero_stage(ds_path: str | None) -> int:
    if not ds_path:
        return 0
    return int(json.loads(paths.resolve(ds_path).read_text()).get("zero_optimization", {}).get("stage", 0))


def _offloads(ds_path: str | None) -> bool:
    if not ds_path:
        return False
    z = json.loads(paths.resolve(ds_path).read_text()).get("zero_optimization", {})
    return any((z.get(k) or {}).get("device") in ("cpu", "nvme") for k in ("offload_param", "offload_optimizer"))


def memory_plan(params: dict[str, Any]) -> dict[str, Any]:
    """The training plan in the estimator's terms (tacsol.vram)."""
    ds = params.get("deepspeed_config")
    return {
        "quantization": params.get("quantization", "nf4"),
        "double_quant": params.get("double_quant", True),
        "lora_r": params.get("lora_r", 16),
        "target_modules": params.get("target_modules"),
        "max_seq_length": params.get("max_seq_length"),
        "per_device_batch_size": params.get("per_device_batch_size", 1),
        "gradient_accumulation_steps": params.get("gradient_accumulation_steps", 1),
        "gradient_checkpointing": params.get("gradient_checkpointing", True),
        "n_gpus": params.get("n_processes", 1) * params.get("num_machines", 1),
        "zero_stage": zero_stage(ds),
        "offload": _offloads(ds),
        "quant_storage": params.get("quant_storage"),
    }


def _get(obj: Any, *names: str) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return None


def fit_check(params: dict[str, Any]) -> dict[str, Any]:
    """Run the VRAM estimator on the plan; returns {fits, per_gpu_gb, budget_gb, detail, message}.

    CPU smoke runs have no VRAM budget: the real-hardware estimate is still computed when the estimator knows the
    model, and reported, but never blocks a smoke run."""
    plan = memory_plan(params)
    profile = params.get("hardware_profile") or "cpu"
    result: dict[str, Any] = {"hardware_profile": profile, "plan": plan, "fits": None, "per_gpu_gb": None,
                              "budget_gb": None, "detail": None}
    try:
        from . import vram  # type: ignore[attr-defined]
    except ImportError:
        result["message"] = "tacsol.vram is not available: no memory estimate (launch not gated)"
        return result
    try:
        est = vram.estimate(params["model"], plan, profile)
    except Exception as exc:  # unknown model / profile: say so, never pretend it fits
        result["message"] = f"estimate failed for {params.get('model')!r} on {profile!r}: {type(exc).__name__}: {exc}"
        result["fits"] = None if params.get("cpu") else False
        return result
    result["fits"] = _get(est, "fits")
    result["per_gpu_gb"] = _get(est, "per_gpu_gb", "total_gb", "peak_gb")
    result["budget_gb"] = _get(est, "budget_gb", "usable_gb", "gpu_memory_gb")
    detail = _get(est, "breakdown", "components", "parts")
    result["detail"] = dict(detail) if isinstance(detail, dict) else (vars(est) if hasattr(est, "__dict__") else est)
    per, budget = result["per_gpu_gb"], result["budget_gb"]
    verdict = "fits" if result["fits"] else "does NOT fit"
    result["message"] = (f"{params.get('model')} on {profile} × {plan['n_gpus']}: estimated "
                         f"{per if per is None else round(float(per), 1)} GB per GPU vs budget "
                         f"{budget if budget is None else round(float(budget), 1)} GB → {verdict}")
    return result


def require_fit(params: dict[str, Any], fit: dict[str, Any]) -> None:
    if params.get("cpu") or fit["fits"] is not False or params.get("allow_over_budget"):
        return
    parts = fit.get("detail")
    raise OverBudgetError(f"{fit['message']}. Breakdown: {json.dumps(parts, default=str)[:1200]}. Lower "
                          "max_seq_length / per_device_batch_size, choose a ZeRO-3/offload plan, or set "
                          "allow_over_budget: true to launch anyway.")


# ------------------------------------------------------------------------------------------------- params → launch


def training_keys() -> set[str] | None:
    """Names the training module accepts: notebook 03's parameters cell (None while 03 does not exist)."""
    from . import params as P

    try:
        return set(P.notebook_parameters(paths.notebook_path("03")))
    except (FileNotFoundError, P.ParamsError):
        return None


def training_params(params: dict[str, Any], choices: dict[str, str]) -> dict[str, Any]:
    """The params file the training module reads: 03's keys only, plus the launch decisions it must honour."""
    dtype = choices["dtype"]
    values = {k: v for k, v in params.items() if k not in LAUNCH_KEYS}
    values.update(output_dir=params["output_dir"], deepspeed=str(paths.resolve(params["deepspeed_config"]))
                  if params.get("deepspeed_config") else None, use_cpu=bool(params.get("cpu")))
    values.setdefault("dtype", dtype)
    values.setdefault("attn_implementation", choices["attn_implementation"])
    if params.get("run_name") is not None:
        values["run_name"] = params["run_name"]
    plan = params.get("zero3_plan")
    if zero_stage(params.get("deepspeed_config")) == 3 and values.get("quantization", "none") != "none":
        if plan == "qlora_quant_storage":
            # ZeRO-3 shards bitsandbytes 4-bit weights only when they are stored in the model's dtype.
            values["quant_storage"] = dtype
        else:
            raise ValueError(f"zero3_plan {plan!r} with quantization {values.get('quantization')!r}: ZeRO-3 cannot "
                             "shard 4-bit weights unless zero3_plan is 'qlora_quant_storage' (or set quantization: none)")
    if plan in ("lora16_offload", "lora16") and values.get("quantization", "none") != "none":
        raise ValueError(f"zero3_plan {plan!r} trains 16-bit weights: set quantization: none")
    keys = training_keys()
    if keys is not None:
        dropped = sorted(set(values) - keys)
        values = {k: v for k, v in values.items() if k in keys}
        if dropped:
            values.setdefault("_dropped_by_launch", dropped) if "_dropped_by_launch" in keys else None
    return values


def spec_from_params(params: dict[str, Any], train_params_path: Path) -> LaunchSpec:
    return LaunchSpec(
        launcher=params.get("launcher", "python"), n_processes=int(params.get("n_processes", 1)),
        cpu=bool(params.get("cpu")), module=params.get("train_module", "tacsol.train"),
        script_args=["--params", str(train_params_path)], accelerate_config=params.get("accelerate_config"),
        deepspeed_config=params.get("deepspeed_config"), master_port=int(params.get("master_port") or free_port()),
        num_machines=int(params.get("num_machines") or 1), machine_rank=int(params.get("machine_rank") or 0),
        main_process_ip=params.get("main_process_ip"), hostfile=params.get("hostfile"))


# ------------------------------------------------------------------------------------------------------ streaming


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
    show = (lambda s: print(s, flush=True)) if echo is True else (echo or (lambda s: None))
    tail: deque[str] = deque(maxlen=tail_lines)
    t0 = time.time()
    last_progress = 0.0
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + Command(argv, added).shell() + "\n")
        proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, errors="replace", start_new_session=True, cwd=str(paths.repo_root()))
        timed_out = False
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
                if timeout_s and now - t0 > timeout_s:
                    timed_out = True
                    break
            if timed_out:
                raise subprocess.TimeoutExpired(argv, timeout_s)
            proc.wait(timeout=max(1.0, (timeout_s or 1e9) - (time.time() - t0)))
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
            _stop(proc)
            log.write(f"[tacsol.launch] stopped: {type(exc).__name__}\n")
            raise LaunchError(f"{argv[0]} stopped after {time.time() - t0:.0f} s ({type(exc).__name__}); last lines "
                              f"of {log_path}:\n" + "\n".join(tail)) from exc
        finally:
            if proc.poll() is None:
                _stop(proc)
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
    """What a training run left behind: loss curves, adapter files, memory and throughput."""
    out = paths.resolve(output_dir)
    art: dict[str, Any] = {"output_dir": str(out)}
    log_file = out / "train_log.json"
    if log_file.exists():
        doc = json.loads(log_file.read_text())
        history = doc.get("log_history", doc) if isinstance(doc, dict) else doc
        history = history if isinstance(history, list) else []
        art["train_log"] = doc
        art["train_loss"] = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
        art["eval_loss"] = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h and "step" in h]
        if isinstance(doc, dict):
            for k in ("peak_memory_gb", "tokens_per_s", "s_per_step", "n_processes", "train_tokens", "steps",
                      "heldout_loss_before", "heldout_loss_after", "params_total", "wall_hours"):
                if k in doc:
                    art[k] = doc[k]
        metrics = doc.get("metrics") if isinstance(doc, dict) else None
        if isinstance(metrics, dict):
            for k, v in metrics.items():
                art.setdefault(k, v)
    adapter = out / "adapter"
    if adapter.is_dir():
        files = sorted(p for p in adapter.rglob("*") if p.is_file())
        art["adapter_files"] = {str(p.relative_to(adapter)): p.stat().st_size for p in files}
        cfg = adapter / "adapter_config.json"
        if cfg.exists():
            art["adapter_config"] = json.loads(cfg.read_text())
    return art


# ------------------------------------------------------------------------------------------------------ top level


def prepare(params: dict[str, Any]) -> dict[str, Any]:
    """Everything decided before a launch, no process started: choices, checks, train params file, command."""
    out = paths.resolve(params["output_dir"])
    choices = training_choices("cpu" if params.get("cpu") else params.get("hardware_profile", "cpu"))
    problems = deepspeed_config_problems(params.get("deepspeed_config"), choices["dtype"])
    if params.get("launcher") == "python" and params.get("deepspeed_config"):
        problems.append("deepspeed_config needs launcher accelerate, torchrun or deepspeed, not python")
    if params.get("cpu") and params.get("launcher") == "deepspeed":
        problems.append("launcher deepspeed on CPU: use torchrun (DeepSpeed's launcher expects accelerator devices)")
    if problems:
        raise ValueError("; ".join(problems))
    fit = fit_check(params)
    tp = training_params(params, choices)
    tp_path = out / "train_params.yaml"
    cmd = build_command(spec_from_params(params, tp_path))
    return {"choices": choices, "fit": fit, "train_params": tp, "train_params_path": tp_path, "command": cmd}


def launch_training(params: dict[str, Any], echo: bool | Callable[[str], None] = True) -> dict[str, Any]:
    """Fit check (refuse unless allowed) → write train_params.yaml → run the launcher, streaming → read artifacts."""
    import yaml

    plan = prepare(params)
    require_fit(params, plan["fit"])
    out = paths.resolve(params["output_dir"])
    atomic_write_text(plan["train_params_path"], yaml.safe_dump(plan["train_params"], sort_keys=False))
    cmd = plan["command"]
    (print if echo is True else (echo or (lambda s: None)))(f"$ {cmd.shell()}")
    t0 = time.time()
    run = run_streaming(cmd, log_path=out / "launch.log", echo=echo,
                        timeout_s=float(params.get("timeout_minutes") or 0) * 60 or None)
    art = read_artifacts(out)
    record = {"command": cmd.shell(), "argv": cmd.argv, "env": cmd.env, "choices": plan["choices"],
              "fit": plan["fit"], "seconds": round(time.time() - t0, 1), "log": run["log"]}
    atomic_write_json(out / "launch.json", record)
    return {**record, "artifacts": art}


def main(argv: list[str] | None = None) -> int:
    from . import params as P

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
