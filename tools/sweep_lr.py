"""Learning-rate sweep for a training recipe (issue 12: the reference run's learning rate, measured): the same params
file trained for a short equal budget at each rate, scored by the held-out loss `tacsol train` reports.

    .venv/bin/python tools/sweep_lr.py --params params/03_reference_cpu.yaml --lrs 2e-4 5e-4 2e-3 --steps 16

Each rate runs `tacsol train --params P --set learning_rate=LR --set max_steps=STEPS` into <out>/lr-<LR>/ (its own
output folder and a linear schedule over the short budget; checkpoints off), one after the other on the same data
and seed. A rate whose run finished is not trained again, so a killed sweep goes on where it stopped. Prints one
line per rate (held-out loss before → after, training loss at the end, tokens/s) and writes <out>/sweep.json.

A short sweep ranks rates by how fast they bring the held-out loss down early; it does not show where a long run
ends up. The held-out rows are the recipe's `eval_split` / `eval_examples`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def run_one(params: str, lr: float, steps: int, out: Path, extra: list[str]) -> dict:
    folder = out / f"lr-{lr:g}"
    log = folder / "train_log.json"
    if not log.is_file():
        cmd = [sys.executable, "-m", "tacsol.cli", "train", "--params", params,
               "--set", f"learning_rate={lr:.10f}".rstrip("0"),  # YAML reads 1e-05 as a string, 0.00001 as a float
               "--set", f"max_steps={steps}", "--set", "max_train_tokens=0",
               "--set", f"output_dir={folder}", "--set", f"run_name=lr-sweep-{lr:g}",
               "--set", f"save_steps={steps * 10}", "--set", "resume=false"]
        for kv in extra:
            cmd += ["--set", kv]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    d = json.loads(log.read_text())
    last = [c for c in d.get("curve", []) if c.get("loss") is not None]
    return {"learning_rate": lr, "steps": d["steps"], "train_tokens": d["train_tokens"],
            "heldout_loss_before": d["heldout_loss_before"], "heldout_loss_after": d["heldout_loss_after"],
            "train_loss_last": last[-1]["loss"] if last else None, "tokens_per_s": d["tokens_per_s"],
            "heldout_examples": d.get("heldout_examples"), "folder": str(folder)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--params", default="params/03_reference_cpu.yaml", help="the recipe to sweep")
    ap.add_argument("--lrs", type=float, nargs="+", default=[2e-4, 5e-4, 2e-3], help="learning rates to try")
    ap.add_argument("--steps", type=int, default=16, help="optimizer steps per rate (the equal budget)")
    ap.add_argument("--out", default="outputs/lr-sweep", help="folder of the sweep's runs and sweep.json")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="another override for every run (repeatable)")
    a = ap.parse_args(argv)

    from tacsol import paths
    from tacsol.ioutil import atomic_write_json

    out = paths.resolve(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for lr in a.lrs:
        rows.append(run_one(a.params, lr, a.steps, out, a.extra))
        r = rows[-1]
        print(f"lr {lr:g}: held-out loss {r['heldout_loss_before']:.3f} -> {r['heldout_loss_after']:.3f} "
              f"({r['heldout_examples']} rows), train loss at the end {r['train_loss_last']}, "
              f"{r['train_tokens']} tokens, {r['tokens_per_s']:.1f} tokens/s", flush=True)
        atomic_write_json(out / "sweep.json", {"params": a.params, "steps": a.steps, "overrides": a.extra,
                                               "runs": rows})
    best = min(rows, key=lambda r: r["heldout_loss_after"])
    print(f"lowest held-out loss after {a.steps} steps: lr {best['learning_rate']:g} "
          f"({best['heldout_loss_after']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
