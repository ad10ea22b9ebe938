#!/usr/bin/env python
"""Throughput of data profiling: exact token counts of TAC, Solidity and the full training sequence for N pairs
(default 100,000, made by replicating a dataset) with each tokenizer; prints pairs/s per tokenizer and the total.
The counters keep no text-level cache (SmolLM2 caches BPE lengths per *pre-token*, as it would on real data), so
replicated pairs cost what new ones would of the same size.

    .venv/bin/python tools/bench_profile.py [--dataset sample] [--pairs 100000] [--full]
"""
from __future__ import annotations

import argparse
import sys
import time

from tacsol import paths
from tacsol import profile as PR
from tacsol.ioutil import atomic_write_json

DEFAULT_MODELS = ["meta-llama/Llama-3.2-3B", "Qwen/Qwen2.5-Coder-32B", "smollm2"]


def bench(dataset: str, n: int, models: list[str], full: bool = False) -> dict:
    base = PR.load_pairs(dataset)
    res = PR.bench_counting(base, models, n, dataset=dataset)
    if full:
        t1 = time.perf_counter()
        PR.profile(PR.replicate(base, n), models)
        res["full_profile_s"] = time.perf_counter() - t1
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="sample", help="what tacsol.pairs.load reads (default: the shipped sample)")
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--full", action="store_true", help="also time the whole profile (entropy, hygiene, composition)")
    ap.add_argument("--json", default=PR.BENCH_FILE,
                    help="write the figures here (notebook 01 shows the latest; default: %(default)s)")
    a = ap.parse_args(argv)
    res = bench(a.dataset, a.pairs, a.models, a.full)
    print(PR.bench_report(res))
    if "full_profile_s" in res:
        print(f"  whole profile (lengths + entropy + composition + hygiene): {res['full_profile_s']:.1f} s")
    if a.json:
        atomic_write_json(paths.resolve(a.json), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
