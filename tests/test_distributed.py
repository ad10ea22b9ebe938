"""2-process distributed training on CPU: DeepSpeed ZeRO-3 really shards, DDP really synchronises, loss falls.

The file doubles as the worker script: the tests launch ``python tests/test_distributed.py <mode> <out>`` through the
commands :mod:`tacsol.launch` builds (torchrun with ``DS_ACCELERATOR=cpu`` for ZeRO-3, ``accelerate launch`` with
``ACCELERATE_USE_CPU=true`` for DDP), so the launcher path is exercised too. The worker is self-contained (a shrunken
random Llama, a fixed batch); the last test runs the real ``tacsol.train`` module the notebooks use through the same
launcher, with the probe recording what each rank held.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDS = str(ROOT / "tests" / "fixtures" / "train" / "records.jsonl")
STEPS = 12


def _tiny_llama_config():
    from transformers import LlamaConfig

    # Shrunken Llama (same class as the 3B/8B/70B targets); odd sizes on purpose so shards are uneven.
    return LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                       tie_word_embeddings=False)


def _batch(torch, vocab: int, rank: int):
    g = torch.Generator().manual_seed(1234 + rank)  # each rank its own data, as a DistributedSampler would give
    ids = torch.randint(0, vocab, (2, 32), generator=g)
    return ids


def worker_zero3(out: Path) -> None:
    import deepspeed
    import torch
    import torch.distributed as dist
    from transformers import LlamaForCausalLM

    deepspeed.init_distributed(dist_backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg_path = ROOT / "params" / "deepspeed" / "zero3_cpu_smoke.json"
    ds_config = json.loads(cfg_path.read_text())
    # Resolve the "auto" fields the HF Trainer would fill in.
    ds_config.update(train_micro_batch_size_per_gpu=2, gradient_accumulation_steps=1, train_batch_size=2 * world,
                     gradient_clipping=1.0)
    ds_config["optimizer"]["params"].update(lr=3e-3, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.0)
    ds_config["zero_optimization"].update(reduce_bucket_size=50_000, stage3_prefetch_bucket_size=50_000,
                                          stage3_param_persistence_threshold=0)
    ds_config.pop("scheduler", None)
    torch.manual_seed(0)
    with deepspeed.zero.Init(config_dict_or_path=ds_config):
        model = LlamaForCausalLM(_tiny_llama_config())
    shards = {}
    for name, p in model.named_parameters():
        shards[name] = {"ds_numel": int(p.ds_numel), "local_numel": int(p.ds_tensor.numel()),
                        "visible_numel": int(p.numel())}
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=ds_config)
    ids = _batch(torch, model.config.vocab_size, rank)
    losses = []
    t0 = time.perf_counter()
    for _ in range(STEPS):
        loss = engine(input_ids=ids, labels=ids).loss
        engine.backward(loss)
        engine.step()
        losses.append(float(loss.detach()))
    s_per_step = (time.perf_counter() - t0) / STEPS
    opt_state_numel = sum(t.numel() for st in engine.optimizer.optimizer.state.values() for t in st.values()
                          if hasattr(t, "numel") and t.dim() > 0)
    result = {"rank": rank, "world": world, "losses": losses, "shards": shards, "s_per_step": s_per_step,
              "optimizer_state_numel": opt_state_numel,
              "total_numel": sum(s["ds_numel"] for s in shards.values()),
              "local_total": sum(s["local_numel"] for s in shards.values())}
    (out / f"zero3_rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()


def worker_ddp(out: Path) -> None:
    import torch
    from accelerate import Accelerator
    from transformers import LlamaForCausalLM

    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(_tiny_llama_config())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model, opt = acc.prepare(model, opt)
    ids = _batch(torch, 512, acc.process_index)
    losses = []
    for _ in range(STEPS):
        loss = model(input_ids=ids, labels=ids).loss
        acc.backward(loss)
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    inner = acc.unwrap_model(model)
    checksum = float(sum(p.detach().double().sum() for p in inner.parameters()))
    result = {"rank": acc.process_index, "world": acc.num_processes, "losses": losses,
              "param_checksum": checksum, "wrapped": type(model).__name__}
    (out / f"ddp_rank{acc.process_index}.json").write_text(json.dumps(result))
    acc.wait_for_everyone()


def _run(tmp_path: Path, mode: str, launcher: str, ds_config: str | None = None, extra_env: dict | None = None):
    from tacsol import launch

    spec = launch.LaunchSpec(launcher=launcher, n_processes=2, cpu=True,
                             script=str(Path(__file__).resolve()), script_args=[mode, str(tmp_path)],
                             deepspeed_config=ds_config, master_port=launch.free_port())
    cmd = launch.build_command(spec)
    launch.run_streaming(cmd, env=extra_env, log_path=tmp_path / "launch.log", echo=False, timeout_s=240)
    return [json.loads((tmp_path / f"{mode}_rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_zero3_two_cpu_processes_each_hold_only_their_shard(tmp_path):
    ranks = _run(tmp_path, "zero3", "torchrun", ds_config="params/deepspeed/zero3_cpu_smoke.json")
    r0, r1 = ranks
    assert r0["world"] == r1["world"] == 2
    total = r0["total_numel"]
    # Each rank stores ceil(numel / 2) elements of every parameter (DeepSpeed pads to an even split) ...
    for name, s in r0["shards"].items():
        assert s["local_numel"] == -(-s["ds_numel"] // 2), name
        assert s["visible_numel"] == 0, f"{name} should be a placeholder outside forward"
        assert r1["shards"][name]["local_numel"] == s["local_numel"]
    # ... so together the ranks hold the model once, not twice.
    assert r0["local_total"] + r1["local_total"] < total + 2 * len(r0["shards"])
    assert r0["local_total"] <= total / 2 + len(r0["shards"])
    # Optimizer state (Adam m and v, fp32) is partitioned too: 2 × local shard, not 2 × model.
    assert r0["optimizer_state_numel"] <= 2 * r0["local_total"] + 64
    for r in ranks:
        assert r["losses"][-1] < 0.8 * r["losses"][0], r["losses"]
    print(f"\nZeRO-3 on 2 CPU processes: {total:,} parameters, rank 0 holds {r0['local_total']:,}, "
          f"rank 1 holds {r1['local_total']:,}; loss {r0['losses'][0]:.3f} -> {r0['losses'][-1]:.3f}; "
          f"{r0['s_per_step']:.3f} s/step")


@pytest.mark.slow
def test_ddp_two_cpu_processes_stay_in_sync_and_learn(tmp_path):
    ranks = _run(tmp_path, "ddp", "accelerate")
    r0, r1 = ranks
    assert r0["world"] == r1["world"] == 2
    assert r0["wrapped"] == "DistributedDataParallel"
    # Different data per rank, yet all-reduced gradients keep the replicas identical.
    assert r0["losses"][0] != r1["losses"][0]
    assert r0["param_checksum"] == pytest.approx(r1["param_checksum"], rel=1e-9)
    for r in ranks:
        assert r["losses"][-1] < 0.8 * r["losses"][0], r["losses"]


@pytest.mark.slow
def test_real_train_module_under_zero3_plan_on_two_cpu_processes(tmp_path):
    """tacsol.launch (probe on) → torchrun with DS_ACCELERATOR=cpu → the real tacsol.train module with
    zero3_cpu_smoke.json on the shrunken fixture model: the Trainer engages DeepSpeed ZeRO-3 on both ranks, every rank
    stores ceil(numel/2) of every parameter (base weights and LoRA alike), the data is split between the ranks,
    training and held-out losses fall, and the saved adapter holds the whole (gathered) LoRA weights."""
    from safetensors.torch import load_file

    from tacsol import launch
    from tacsol.train import DEFAULTS

    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "train"))
    import tiny

    model_dir = tiny.build(tmp_path / "model")
    p = dict(DEFAULTS)
    p.update(output_dir=str(tmp_path / "run"), model=str(model_dir), dataset=RECORDS, hardware_profile="cpu",
             max_steps=8, batch_size=2, learning_rate=1e-2, warmup_ratio=0.0, eval_examples=6, max_seq_length=512,
             save_steps=100, seed=3, launcher="torchrun", n_processes=2, zero3_plan="lora16", deepspeed="",
             probe=True, timeout_minutes=5, run_eval=False, train_new_tokens=False)
    res = launch.launch_training(p, echo=False)
    assert "DS_ACCELERATOR=cpu" in res["command"]
    assert "zero3_cpu_smoke.json" in (tmp_path / "run" / "train_params.yaml").read_text()
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert log["n_processes"] == 2 and log["steps"] == 8
    assert log["heldout_loss_after"] < log["heldout_loss_before"]
    losses = [c["loss"] for c in log["curve"]]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    d = res["artifacts"]["distributed"]
    print("\nprobe:", d["verdict"])
    assert d["deepspeed_engaged"], d["verdict"]
    r0, r1 = d["ranks"]
    assert [r0["rank"], r1["rank"]] == [0, 1] and r0["world_size"] == r1["world_size"] == 2
    # accelerate sees both ranks (else the Trainer feeds both the same batches and its eval gather breaks)
    assert r0["accelerate_num_processes"] == r1["accelerate_num_processes"] == 2
    assert r0["distributed_type"].endswith("DEEPSPEED") and r0["zero_stage"] == 3
    assert r0["n_sharded"] == r0["n_params"] and r0["partitions"].keys() == r1["partitions"].keys()
    for name, (full, local) in r0["partitions"].items():
        assert local == -(-full // 2), name  # DeepSpeed pads to an even split
        assert r1["partitions"][name] == [full, local], name
    assert r0["local_numel"] + r1["local_numel"] < r0["full_numel"] + 2 * r0["n_params"]
    assert log["params_total"] == r0["full_numel"]
    # the final adapter is gathered from the shards: full-size LoRA matrices, B trained away from zero
    ad = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    assert ad and all(t.numel() > 0 for t in ad.values())
    assert sum(int(t.numel()) for t in ad.values()) == r0["trainable_full_numel"]
    assert any(float(t.abs().sum()) > 0 for k, t in ad.items() if "lora_B" in k)


@pytest.mark.slow
def test_real_train_module_through_the_cpu_smoke_accelerate_yaml(tmp_path):
    """params/accelerate/cpu_smoke_2proc.yaml really launched: `accelerate launch --config_file` it, the real
    tacsol.train module on the shrunken fixture model, 2 processes. The probe shows MULTI_CPU DDP with both ranks
    seen by accelerate, the data split between them, and the loss falls."""
    from tacsol import launch
    from tacsol.train import DEFAULTS

    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "train"))
    import tiny

    model_dir = tiny.build(tmp_path / "model")
    p = dict(DEFAULTS)
    p.update(output_dir=str(tmp_path / "run"), model=str(model_dir), dataset=RECORDS, hardware_profile="cpu",
             max_steps=6, batch_size=2, learning_rate=1e-2, warmup_ratio=0.0, eval_examples=6, max_seq_length=512,
             save_steps=100, seed=3, launcher="accelerate", n_processes=2,
             accelerate_config="params/accelerate/cpu_smoke_2proc.yaml", zero3_plan="none", deepspeed="",
             probe=True, timeout_minutes=5, run_eval=False, train_new_tokens=False)
    res = launch.launch_training(p, echo=False)
    assert "--config_file" in res["argv"] and res["argv"][res["argv"].index("--config_file") + 1].endswith(
        "cpu_smoke_2proc.yaml")
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert log["n_processes"] == 2 and log["steps"] == 6
    assert log["heldout_loss_after"] < log["heldout_loss_before"]
    d = res["artifacts"]["distributed"]
    r0, r1 = d["ranks"]
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["accelerate_num_processes"] == r1["accelerate_num_processes"] == 2
    assert r0["distributed_type"].endswith("MULTI_CPU") and not d["deepspeed_engaged"], d["verdict"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["accelerate", "torchrun"])
def test_multinode_commands_rendezvous_as_two_machines_on_localhost(tmp_path, launcher):
    """The multi-node commands tacsol.launch builds (README "Multi-GPU and multi-node"), run as two 'machines' on
    this host (machine_rank 0 and 1, one process each, main address 127.0.0.1): they meet in one process group of
    2, DDP keeps the replicas identical and both learn."""
    import subprocess

    from tacsol import launch

    port = launch.free_port()
    procs = []
    for rank in (0, 1):
        spec = launch.LaunchSpec(launcher=launcher, n_processes=1, cpu=True, script=str(Path(__file__).resolve()),
                                 script_args=["ddp", str(tmp_path)], master_port=port, num_machines=2,
                                 machine_rank=rank, main_process_ip="127.0.0.1")
        cmd = launch.build_command(spec)
        assert ("--machine_rank" if launcher == "accelerate" else "--node_rank") in cmd.argv
        procs.append(subprocess.Popen(cmd.argv, env={**os.environ, **cmd.env}, cwd=str(ROOT),
                                      stdout=open(tmp_path / f"machine{rank}.log", "w"), stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs = "\n".join((tmp_path / f"machine{r}.log").read_text()[-1500:] for r in (0, 1))
    assert codes == [0, 0], logs
    r0, r1 = (json.loads((tmp_path / f"ddp_rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["param_checksum"] == pytest.approx(r1["param_checksum"], rel=1e-9)
    for r in (r0, r1):
        assert r["losses"][-1] < 0.8 * r["losses"][0], r["losses"]


if __name__ == "__main__":
    mode, out_dir = sys.argv[1], Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    {"zero3": worker_zero3, "ddp": worker_ddp}[mode](out_dir)


def test_training_closes_its_process_group():
    """tacsol.train.main ends by destroying the process group a multi-process run initialized (close_process_group)."""
    import socket

    import torch.distributed as dist

    from tacsol.train import close_process_group

    close_process_group()   # no group: nothing to do
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    assert dist.is_initialized()
    close_process_group()
    assert not dist.is_initialized()


_EXIT_RANK = """
import atexit, glob, os, sys, torch, torch.distributed as dist
from tacsol.train import close_process_group, exit_rank
dist.init_process_group("gloo")
torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 3))(torch.ones(2, 3)).sum().backward()
close_process_group()
threads = sorted(open(f).read().strip() for f in glob.glob("/proc/self/task/*/comm"))
atexit.register(lambda: open(os.path.join(sys.argv[1], "atexit" + os.environ["RANK"]), "w").close())
sys.stdout = open(os.path.join(sys.argv[1], "out" + os.environ["RANK"]), "w")   # buffered: exit_rank flushes it
print("threads", *threads)
exit_rank(int(sys.argv[2]))
"""


@pytest.mark.parametrize("code", [0, 3])
def test_a_rank_that_ended_well_leaves_without_interpreter_teardown(tmp_path, code):
    """exit_rank: after DDP has wrapped a module, its Gloo threads outlive destroy_process_group, and tearing down
    the interpreter around them could abort a rank that had finished (SIGABRT in CI). A multi-process rank that
    ended well therefore leaves by os._exit (no atexit handler runs) with its output flushed and exit code 0; a
    failed rank exits normally with its own code."""
    import subprocess

    from tacsol import launch

    script = tmp_path / "rank.py"
    script.write_text(_EXIT_RANK)
    spec = launch.LaunchSpec(launcher="torchrun", n_processes=2, cpu=True, script=str(script),
                             script_args=[str(tmp_path), str(code)], master_port=launch.free_port())
    cmd = launch.build_command(spec)
    run = subprocess.run(cmd.argv, env={**os.environ, **cmd.env}, cwd=str(ROOT), capture_output=True, text=True,
                         timeout=240)
    outs = [(tmp_path / f"out{r}").read_text() for r in (0, 1)]
    assert all(o.startswith("threads ") for o in outs), (outs, run.stderr[-2000:])
    if code == 0:
        assert run.returncode == 0, run.stderr[-2000:]
        assert not list(tmp_path.glob("atexit*"))
    else:
        assert run.returncode != 0   # the launcher may stop the other rank once one failed: one handler at least
        assert list(tmp_path.glob("atexit*"))
