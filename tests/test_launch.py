"""The launcher builds the right command for 1, 2 and 4 GPUs (and CPU smoke, multi-node), picks DeepSpeed JSONs by
plan and hardware, refuses inconsistent or over-budget plans with the numbers, streams logs and reports failures
with the log tail. Pure and fast except the two tiny subprocess tests (a few seconds)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tacsol import launch
from tacsol import params as P
from tacsol import paths
from tacsol.train import run_choices

ROOT = paths.repo_root()
TRAIN_PARAMS = sorted((ROOT / "params").glob("0[45]_*.yaml"))


def _cmd(**kw) -> launch.Command:
    kw.setdefault("master_port", 29511)
    kw.setdefault("script_args", ["--params", "x.yaml"])
    return launch.build_command(launch.LaunchSpec(**kw))


def _after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_single_process_is_plain_python_module():
    c = _cmd(launcher="python")
    assert c.argv[:3] == [sys.executable, "-m", "tacsol.train"]
    assert c.argv[3:] == ["--params", "x.yaml"]
    assert "DS_ACCELERATOR" not in c.env and "CUDA_VISIBLE_DEVICES" not in c.env


@pytest.mark.parametrize("n", [1, 2, 4])
def test_accelerate_ddp_for_1_2_4_gpus(n):
    c = _cmd(launcher="accelerate", n_processes=n)
    a = c.argv
    assert Path(a[0]).name == "accelerate" and a[1] == "launch"
    assert _after(a, "--num_processes") == str(n) and _after(a, "--num_machines") == "1"
    assert ("--multi_gpu" in a) == (n > 1)
    assert "--use_deepspeed" not in a and "--cpu" not in a
    assert a[-4:] == ["--module", "tacsol.train", "--params", "x.yaml"]
    assert _after(a, "--main_process_port") == "29511"


@pytest.mark.parametrize("n", [1, 2, 4])
def test_torchrun_and_deepspeed_for_1_2_4_gpus(n):
    t = _cmd(launcher="torchrun", n_processes=n).argv
    assert Path(t[0]).name == "torchrun" and _after(t, "--nproc_per_node") == str(n)
    assert t[-4:] == ["-m", "tacsol.train", "--params", "x.yaml"]
    d = _cmd(launcher="deepspeed", n_processes=n, deepspeed_config="params/deepspeed/zero3_fp16.json").argv
    assert Path(d[0]).name == "deepspeed" and _after(d, "--num_gpus") == str(n)
    assert d[-4:] == ["--module", "tacsol.train", "--params", "x.yaml"]


def test_accelerate_zero3_passes_the_json_and_zero3_init():
    a = _cmd(launcher="accelerate", n_processes=4, deepspeed_config="params/deepspeed/zero3_fp16.json").argv
    assert "--use_deepspeed" in a and "--multi_gpu" not in a
    assert _after(a, "--deepspeed_config_file") == str(ROOT / "params/deepspeed/zero3_fp16.json")
    assert _after(a, "--zero3_init_flag") == "true"
    z2 = _cmd(launcher="accelerate", n_processes=4, deepspeed_config="params/deepspeed/zero2_fp16.json").argv
    assert _after(z2, "--zero3_init_flag") == "false"


def test_cpu_smoke_environment():
    c = _cmd(launcher="accelerate", n_processes=2, cpu=True)
    assert c.env["ACCELERATE_USE_CPU"] == "true" and c.env["CUDA_VISIBLE_DEVICES"] == ""
    assert "--multi_gpu" in c.argv and "DS_ACCELERATOR" not in c.env
    z = _cmd(launcher="torchrun", n_processes=2, cpu=True, deepspeed_config="params/deepspeed/zero3_cpu_smoke.json")
    assert z.env["DS_ACCELERATOR"] == "cpu"
    assert "ACCELERATE_USE_CPU" not in z.env  # it would make the Trainer drop DeepSpeed
    assert z.env["TORCH_EXTENSIONS_DIR"].startswith(str(paths.outputs_dir() / "cache"))
    assert "DS_ACCELERATOR=cpu" in z.shell() and "torchrun" in z.shell()


def test_multinode_commands():
    a = _cmd(launcher="accelerate", n_processes=4, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1",
             accelerate_config="params/accelerate/multinode_2x4gpu_zero3.yaml").argv
    assert _after(a, "--num_processes") == "8" and _after(a, "--num_machines") == "2"
    assert _after(a, "--machine_rank") == "1" and _after(a, "--main_process_ip") == "10.0.0.1"
    t = _cmd(launcher="torchrun", n_processes=4, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1").argv
    assert _after(t, "--nnodes") == "2" and _after(t, "--node_rank") == "1" and _after(t, "--master_addr") == "10.0.0.1"
    d = _cmd(launcher="deepspeed", n_processes=4, num_machines=2, hostfile="params/deepspeed/hostfile.example").argv
    assert _after(d, "--hostfile").endswith("hostfile.example") and _after(d, "--num_nodes") == "2"


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="launcher 'python' runs one process"):
        _cmd(launcher="python", n_processes=2)
    with pytest.raises(ValueError, match="launcher 'mpirun'"):
        _cmd(launcher="mpirun")


def test_deepspeed_jsons_are_valid_and_turing_is_never_bf16():
    for f in (ROOT / "params/deepspeed").glob("*.json"):
        cfg = json.loads(f.read_text())
        assert cfg["zero_optimization"]["stage"] in (2, 3), f.name
        assert cfg["train_micro_batch_size_per_gpu"] == "auto", f.name
    # fp16 files are for Turing (RTX 8000): bf16 must be off there, and the launcher refuses the opposite pairing.
    assert launch.deepspeed_config_problems("params/deepspeed/zero3_fp16.json", "float16") == []
    assert any("bf16" in p for p in launch.deepspeed_config_problems("params/deepspeed/zero3_bf16.json", "float16"))
    assert launch.offload_mode("params/deepspeed/zero3_offload_fp16.json") == "optimizer+params"
    smoke = json.loads((ROOT / "params/deepspeed/zero3_cpu_smoke.json").read_text())
    assert smoke["optimizer"]["params"]["torch_adam"] is True


def test_accelerate_yamls_parse():
    for f in (ROOT / "params/accelerate").glob("*.yaml"):
        cfg = yaml.safe_load(f.read_text())
        assert cfg["num_processes"] >= 1 and "distributed_type" in cfg, f.name
        ds = (cfg.get("deepspeed_config") or {}).get("deepspeed_config_file")
        if ds:
            assert (ROOT / ds).is_file(), f"{f.name} names a missing {ds}"


def test_hardware_profile_chooses_precision_and_zero3_json():
    assert run_choices({"hardware_profile": "rtx8000"}).torch_dtype == "float16"
    assert run_choices({"hardware_profile": "h100"}).torch_dtype == "bfloat16"
    p = {"zero3_plan": "qlora_quant_storage", "deepspeed": ""}
    assert launch.resolve_deepspeed(p, "float16").endswith("zero3_fp16.json")
    assert launch.resolve_deepspeed(p, "bfloat16").endswith("zero3_bf16.json")
    assert launch.resolve_deepspeed({**p, "zero3_plan": "lora16_offload"}, "float16").endswith("zero3_offload_fp16.json")


def _nb_params(stem: str, path: Path | None = None) -> dict:
    nb = paths.notebook_path(stem)
    spec = P.notebook_parameters(nb)
    return P.validate(P.load_yaml(path) if path else {}, spec, where=stem)


@pytest.mark.parametrize("path", TRAIN_PARAMS, ids=lambda p: p.name)
def test_each_params_file_builds_its_command_and_fits(path, tmp_path):
    p = _nb_params(path.name[:2], path)
    p["output_dir"] = str(tmp_path)
    plan = launch.prepare(p)
    argv = plan["command"].argv
    n = p["n_processes"]
    assert plan["fit"]["fits"] is True, plan["fit"]["message"]
    assert plan["fit"]["per_gpu_gb"] < plan["fit"]["capacity_gb"]
    if p["launcher"] == "accelerate":
        assert _after(argv, "--num_processes") == str(n * p["num_machines"])
    elif p["launcher"] == "torchrun":
        assert _after(argv, "--nproc_per_node") == str(n)
    assert argv[-2:] == ["--params", str(tmp_path / "train_params.yaml")]
    tp = plan["train_params"]
    from tacsol.train import DEFAULTS, load_params

    assert set(tp) <= set(DEFAULTS)
    load_params(tp)  # the training module accepts what the launcher writes
    if p["hardware_profile"] == "rtx8000" and plan["deepspeed"]:
        assert json.loads(paths.resolve(plan["deepspeed"]).read_text())["bf16"]["enabled"] is False
    if plan["deepspeed"] and launch.zero_stage(plan["deepspeed"]) == 3 and p["quantization"] != "none":
        assert p["zero3_plan"] == "qlora_quant_storage"


def test_over_budget_is_refused_with_numbers_unless_allowed(tmp_path):
    p = _nb_params("04", ROOT / "params/04_train_32b_8k.yaml")
    p.update(output_dir=str(tmp_path), batch_size=4)  # 32B at 8,192 tokens × 4 per GPU cannot fit 48 GB
    plan = launch.prepare(p)
    assert plan["fit"]["fits"] is False
    with pytest.raises(launch.OverBudgetError, match=r"estimated \d+\.\d GB per GPU vs capacity 5\d\.\d GB"):
        launch.require_fit(p, plan["fit"])
    launch.require_fit({**p, "allow_over_budget": True}, plan["fit"])


def test_inconsistent_zero3_plans_are_refused(tmp_path):
    p = _nb_params("05", ROOT / "params/05_train_70b_zero3.yaml")
    p["output_dir"] = str(tmp_path)
    with pytest.raises(ValueError, match="needs zero3_plan 'qlora_quant_storage'"):
        launch.prepare({**p, "zero3_plan": "none", "deepspeed": "params/deepspeed/zero3_fp16.json"})
    with pytest.raises(ValueError, match="set quantization: none"):
        launch.prepare({**p, "zero3_plan": "lora16_offload"})
    with pytest.raises(ValueError, match="enables bf16"):
        launch.prepare({**p, "deepspeed": "params/deepspeed/zero3_bf16.json"})


def test_cpu_accelerate_config_on_a_gpu_profile_is_refused(tmp_path):
    p = _nb_params("04", ROOT / "params/04_train_32b.yaml")
    p["output_dir"] = str(tmp_path)
    with pytest.raises(ValueError, match="cpu_smoke_2proc.yaml.*use_cpu: true.*rtx8000"):
        launch.prepare({**p, "accelerate_config": "params/accelerate/cpu_smoke_2proc.yaml"})
    with pytest.raises(ValueError, match="not found"):
        launch.prepare({**p, "accelerate_config": "params/accelerate/nope.yaml"})
    cpu = _nb_params("04", None)
    cpu["output_dir"] = str(tmp_path)
    with pytest.raises(ValueError, match="use_cpu: false but hardware_profile is 'cpu'"):
        launch.prepare({**cpu, "accelerate_config": "params/accelerate/ddp_4gpu.yaml"})
    assert launch.prepare(cpu)["command"].argv.count("--config_file") == 1  # the notebook default is consistent


def test_streaming_logs_every_line_and_raises_with_the_tail(tmp_path):
    seen: list[str] = []
    ok = launch.run_streaming([sys.executable, "-c", "print('a'); print('b', flush=True)"],
                              log_path=tmp_path / "ok.log", echo=seen.append)
    assert seen == ["a", "b"] and ok["returncode"] == 0
    assert (tmp_path / "ok.log").read_text().splitlines()[1:] == ["a", "b"]
    code = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with pytest.raises(launch.LaunchError, match=r"(?s)exited with code 3.*line 99"):
        launch.run_streaming([sys.executable, "-c", code], log_path=tmp_path / "bad.log", echo=False, tail_lines=5)
    with pytest.raises(launch.LaunchError, match="stopped after"):
        launch.run_streaming([sys.executable, "-c", "import time\nprint('x', flush=True)\ntime.sleep(30)\nprint('y')"],
                             log_path=tmp_path / "slow.log", echo=False, timeout_s=1)


def test_read_artifacts_from_a_train_log(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    doc = {"curve": [{"step": 1, "loss": 3.0, "rss_gb": 1.0}, {"step": 2, "loss": 2.5, "rss_gb": 1.1}],
           "tokens_per_s": 50.0, "s_per_step": 7.0, "peak_memory_gb": 2.0, "n_processes": 2}
    (tmp_path / "train_log.json").write_text(json.dumps(doc))
    art = launch.read_artifacts(tmp_path)
    assert art["train_loss"] == [(1, 3.0), (2, 2.5)] and art["tokens_per_s"] == 50.0
    assert art["adapter_files"] == {"adapter_config.json": 2}


def test_launcher_plans_with_the_choices_training_makes(monkeypatch):
    """The launcher used to take dtype and attention from the bare profile (FlashAttention-2 on an H100, the params'
    dtype ignored) while training loaded with the params' dtype and SDPA where flash_attn is missing: the recorded
    choices, the DeepSpeed JSON and the fit estimate could describe another run than the one started."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "flash_attn" else real(n, *a))
    p = {"hardware_profile": "h100", "dtype": "float16", "quantization": "nf4", "deepspeed": ""}
    ch = run_choices(p)
    assert (ch.torch_dtype, ch.attn_implementation) == ("float16", "sdpa")
    plan = launch.memory_plan(p)
    assert (plan["dtype"], plan["attn_implementation"], plan["weights"]) == ("fp16", "sdpa", "nf4")
    assert launch.resolve_deepspeed({"zero3_plan": "qlora_quant_storage"}, ch.torch_dtype).endswith("zero3_fp16.json")


@pytest.mark.parametrize("path,changes", [(None, {}), (None, {"lora_dropout": 0.0}),
                                          (ROOT / "params/03_baseline_3b.yaml", {}),
                                          (ROOT / "params/03_baseline_3b.yaml", {"quantization": "int8"})])
def test_notebook_03_and_the_launcher_estimate_the_same_run_alike(path, changes, tmp_path):
    """03 built its own memory plan (no fp32 upcast under QLoRA, int8 read as 16-bit weights, the converted GGUF's
    config for the embedded model) and the launcher another (lora_dropout ignored): the paper's 3B run was 21.3 GB in
    03 and 22.1 GB at launch. Now 03's memory cell runs launch.fit_check, and 03's parameters launched through 04's
    path (one process, no DeepSpeed) give the same plan and estimate."""
    import nbformat

    cells = nbformat.read(paths.notebook_path("03"), as_version=4).cells
    assert "launch.fit_check(params)" in next(c.source for c in cells if "estimated_gb =" in c.source)
    p03 = {**_nb_params("03", path), **changes}
    in_03 = launch.fit_check(p03)
    p04 = _nb_params("04")
    p04.update({k: v for k, v in p03.items() if k in p04}, launcher="python", n_processes=1, accelerate_config="",
               output_dir=str(tmp_path))
    at_launch = launch.prepare(p04)["fit"]
    assert in_03["per_gpu_gb"] is not None and at_launch["plan"] == in_03["plan"]
    assert at_launch["per_gpu_gb"] == in_03["per_gpu_gb"]


def _zero3_probe() -> dict:
    ranks = [{"rank": r, "world_size": 2, "distributed_type": "DistributedType.DEEPSPEED", "deepspeed_enabled": True,
              "deepspeed_requested": True, "accelerate_num_processes": 2, "local_numel": 5, "full_numel": 9,
              "partitions": {"w": [9, 5], "b": [1, 1]}} for r in (0, 1)]
    return {"ranks": ranks, "verdict": "DeepSpeed ZeRO-3 engaged on 2 ranks", "deepspeed_engaged": True}


def test_run_phase_reads_the_run_back_into_the_headline(tmp_path, monkeypatch):
    """04/05's body: the headline carries the launch plan, the probe and what train_log.json says, the examples
    dropped for exceeding max_seq_length included (issue 16); the reports print what the notebooks showed."""
    p = _nb_params("05")
    p.update(output_dir=str(tmp_path), run_eval=False)
    log = {"curve": [{"step": 1, "loss": 3.0, "rss_gb": 1.0}, {"step": 2, "loss": 2.0, "rss_gb": 1.2}], "steps": 2,
           "train_examples": 40, "dropped_too_long": 7, "heldout_examples": 4, "heldout_dropped_too_long": 1,
           "heldout_loss_before": 3.1, "heldout_loss_after": 2.4, "peak_memory_gb": 1.3, "total_wall_s": 36.0}

    def fake_launch(params, echo, plan):
        (tmp_path / "train_log.json").write_text(json.dumps(log))
        art = {**launch.read_artifacts(tmp_path), "distributed": _zero3_probe()}
        return {"command": plan["command"].shell(), "seconds": 40.0, "log": "launch.log", "artifacts": art}

    monkeypatch.setattr(launch, "launch_training", fake_launch)
    lines: list[str] = []
    run = launch.run_phase(p, echo=lines.append)
    h = run["headline"]
    assert (h["dropped_too_long"], h["heldout_dropped_too_long"], h["steps"]) == (7, 1, 2)
    assert h["zero_stage"] == 3 and h["deepspeed_engaged"] is True and h["param_elements_per_rank"] == [5, 5]
    assert h["estimated_memory_gb"] == run["plan"]["fit"]["per_gpu_gb"] and h["wall_hours"] == 0.01
    assert h["gpu_hours"] == 0  # CPU processes
    text = "\n".join(lines)
    assert "split into ceil(numel/2) per rank: True" in text and "dropped_too_long         7" in text
    assert "evaluation skipped" in text and run["summary"]["note"].startswith("SMOKE RUN")
    from tacsol import plots

    fig = plots.training_run(run["artifacts"], h["estimated_memory_gb"], run["title"], cpu=True)
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]
