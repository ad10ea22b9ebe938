"""CPU training throughput of the embedded model, measured (issue 12): tokens/s of forward + backward + optimizer
step for SmolLM2-135M at a given sequence length, per configuration, in one run so the figures compare as ratios.

    .venv/bin/python tools/bench_train.py --seq-len 1024 --steps 4
    .venv/bin/python tools/bench_train.py --configs lora-bf16 lora-fp32 full-bf16 --json out.json
    .venv/bin/python tools/bench_train.py --configs lora-bf16 --seq-len 448 --batch 4 --mask   # a training batch

Configurations: lora-{bf16,fp32} (LoRA r=16 on the seven projections, gradient checkpointing, as notebook 03) and
full-{bf16,fp32} (every weight trains). bf16 = CPU autocast, weights fp32, as `cpu_autocast: auto` does on a CPU with
bf16 units. Threads: `tacsol.train.set_cpu_threads(0)` unless --threads. Prints one line per configuration; the
machine's load is printed beside, since other work on the cores changes the figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def measure(config: str, seq_len: int, batch: int, steps: int, threads: int, mask: bool = False,
            checkpointing: bool = True, target_share: float = 1.0, target_logits: bool = False) -> dict:
    import torch

    from tacsol import train

    method, precision = config.split("-")
    p = train.load_params({"lora_r": 16, "gradient_checkpointing": checkpointing, "max_seq_length": seq_len,
                           "batch_size": batch})
    n = train.set_cpu_threads(threads)
    if method == "lora":
        model, _ = train.build_model(p)
    else:
        from tacsol import loading

        model = loading.load_model(p["model"], hardware_profile="cpu").model
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW([w for w in model.parameters() if w.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (batch, seq_len), generator=g)
    att = None
    if mask:  # as the training collator pads: rows of different lengths, right-padded, padding masked
        att = torch.ones_like(ids)
        for row in range(1, batch):
            att[row, seq_len - seq_len * row // (4 * batch):] = 0
    labels = ids.clone() if att is None else ids.masked_fill(att == 0, -100)
    if target_share < 1.0:   # as training masks the prompt: only each row's last share of tokens is a target
        real = (att.sum(1) if att is not None else torch.full((batch,), seq_len)).tolist()
        for row, k in enumerate(real):
            labels[row, :k - max(1, round(k * target_share))] = -100
    keep = train.target_positions(labels) if target_logits else None
    times = []
    for i in range(steps + 1):  # the first step warms up (allocations, oneDNN kernels) and is not counted
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            if target_logits:   # as the Trainer does (train.target_positions / target_loss)
                loss = train.target_loss(model(input_ids=ids, attention_mask=att, logits_to_keep=keep), labels)
            else:
                loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t0)
    s = sum(times) / len(times)
    trainable = sum(w.numel() for w in model.parameters() if w.requires_grad)
    return {"config": config, "seq_len": seq_len, "batch": batch, "mask": mask, "threads": n, "steps": steps,
            "checkpointing": checkpointing, "target_share": target_share, "target_logits": target_logits,
            "s_per_step": s, "tokens_per_s": batch * seq_len / s, "trainable_params": trainable,
            "bf16_units": train.cpu_bf16_supported(), "loadavg_1m": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per configuration (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=0, help="0 = tacsol.train.set_cpu_threads auto choice")
    ap.add_argument("--configs", nargs="+", default=["lora-bf16", "lora-fp32"],
                    choices=["lora-bf16", "lora-fp32", "full-bf16", "full-fp32"])
    ap.add_argument("--mask", action="store_true",
                    help="pass an attention mask with padded rows, as training batches of different lengths do")
    ap.add_argument("--no-checkpointing", action="store_true",
                    help="keep activations instead of recomputing them in backward (params: gradient_checkpointing)")
    ap.add_argument("--target-share", type=float, default=1.0,
                    help="share of each row's tokens that are target tokens (the rest is prompt, masked as training "
                         "masks it); 1.0 = every token, as a plain language-model step")
    ap.add_argument("--logits", choices=["full", "target", "both"], default="target",
                    help="project every position onto the vocabulary (the model's own loss) or only the positions "
                         "before a target token (train.target_positions, what training does); both = one after the "
                         "other in this run, for their ratio")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)
    rows = []
    for c in a.configs:
        for target_logits in {"full": [False], "target": [True], "both": [True, False]}[a.logits]:
            r = measure(c, a.seq_len, a.batch, a.steps, a.threads, a.mask, not a.no_checkpointing,
                        a.target_share, target_logits)
            rows.append(r)
            print(f"{c:10s} seq {r['seq_len']} x{r['batch']}{' masked' if a.mask else ''}"
                  f"{'' if r['checkpointing'] else ' no-ckpt'} target {a.target_share:.0%}"
                  f" {'target' if target_logits else 'full'}-logits  {r['tokens_per_s']:7.1f} tokens/s"
                  f"  {r['s_per_step']:.2f} s/step  threads {r['threads']}  trainable {r['trainable_params']:,}"
                  f"  load {r['loadavg_1m']:.1f}", flush=True)
    if len(rows) > 1:
        name = lambda r: f"{r['config']} {'target' if r['target_logits'] else 'full'}-logits"  # noqa: E731
        print(f"ratio {name(rows[0])} / {name(rows[1])}: {rows[0]['tokens_per_s'] / rows[1]['tokens_per_s']:.2f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
