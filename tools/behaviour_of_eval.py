"""Behavioural equivalence of an evaluation that was scored before the metric existed (issue 13).

Reads the generations of each system from its functions.parquet (`id`, `generated`), finds the records by id in a
built dataset, runs the behaviour harness on them and prints and writes, per system, the three results with the
behaviour rate and its bootstrap 95% interval (over all matched functions; untestable counts as not shown
equivalent) and over the testable ones.

    python tools/behaviour_of_eval.py docs/evidence/reference/03_baseline_3b/eval --dataset ref \\
        --out docs/evidence/behaviour/reference_run.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", help="an eval/ folder: functions.parquet, and baselines/<name>/functions.parquet")
    ap.add_argument("--dataset", required=True, help="the dataset the evaluation ran on (name under outputs/data/)")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()

    import pandas as pd

    from tacsol import pairs
    from tacsol.evaluate import behaviour as B
    from tacsol.ioutil import atomic_write_json

    ev = Path(args.eval_dir)
    systems = {"fine-tuned": ev / "functions.parquet"}
    systems.update({p.parent.name: p for p in sorted((ev / "baselines").glob("*/functions.parquet"))})
    ds = pairs.load(args.dataset)
    by_id = {r["id"]: dict(r) for split in ds for r in ds[split]}
    h = B.Harness()
    figures: dict = {"eval_dir": str(ev), "dataset": args.dataset, "machine": f"{os.cpu_count()} CPU cores",
                     "systems": {}}
    for name, path in systems.items():
        df = pd.read_parquet(path)
        rows = [(by_id[i], g) for i, g in zip(df["id"], df["generated"]) if i in by_id]
        t0 = time.perf_counter()
        res = h.check_many([r for r, _ in rows], [g for _, g in rows], progress=True)
        s = B.summarize(res)
        s.update({"n_scored": len(df), "n_matched": len(rows), "wall_s": time.perf_counter() - t0,
                  "differs_examples": [x.detail for x in res if x.status == "differs"][:5],
                  "equivalent_ids": [r["id"] for (r, _), x in zip(rows, res) if x.status == "equivalent"][:50]})
        figures["systems"][name] = s
        ci = s["behaviour_ci"]
        print(f"{name:18s} n={len(rows)}/{len(df)}  equivalent {s['equivalent']}  differs {s['differs']}  "
              f"untestable {s['untestable']} {s['untestable_reasons']}  rate {s['behaviour_rate']:.3f} "
              f"[{ci[0]:.3f}, {ci[1]:.3f}]")
    if args.out:
        atomic_write_json(args.out, figures)
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
