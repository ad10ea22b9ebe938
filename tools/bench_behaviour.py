"""The behaviour metric's controls and speed on a dataset split (issue 13):

  coverage   share of distinct functions the harness can test with the reference itself (goal >= 90%)
  reference  the reference recompiled in place: share `equivalent` among the testable (goal >= 98%)
  renamed    state variables, internal functions, parameters consistently renamed: share `equivalent` (goal >= 95%)
  mutants    swapped operands, flipped comparison, dropped require, changed constant, removed event, write to
             another variable: share `differs` among testable mutants (goal >= 90%)
  speed      functions per second for the reference control, compilation included (goal >= 5/s on 2 cores)

    python tools/bench_behaviour.py --dataset ref --limit 300 --out docs/evidence/behaviour/ref_test.json
    python tools/bench_behaviour.py --dataset sample
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="sample", help="dataset name under outputs/data/, a folder, or 'sample'")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=300, help="distinct functions (one record per near-dup group)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fetch", action="store_true", help="download packages missing from the npm cache")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--compile-cache", help="a compile cache folder to use instead of outputs/cache/behaviour "
                    "(an empty one measures the speed with every unit compiled)")
    ap.add_argument("--reference-only", action="store_true", help="only the reference control (speed runs)")
    args = ap.parse_args()

    from tacsol import pairs
    from tacsol.evaluate import behaviour as B, controls as C
    from tacsol.ioutil import atomic_write_json

    ds = pairs.load(args.dataset)
    recs, seen = [], set()
    rows = [dict(r) for r in ds[args.split]]
    random.Random(args.seed).shuffle(rows)
    for r in rows:
        g = r.get("group") or r.get("norm_hash") or r["id"]
        if g not in seen:
            seen.add(g)
            recs.append(r)
    recs = recs[: args.limit]
    h = B.Harness(B.record_units(fetch=args.fetch), seed=args.seed)
    if args.compile_cache:
        from pathlib import Path
        h.compiler.dir = Path(args.compile_cache)
    figures: dict = {"dataset": args.dataset, "split": args.split, "n_functions": len(recs),
                     "machine": f"{os.cpu_count()} CPU cores", "seed": args.seed,
                     "compile_cache": "cold (empty)" if args.compile_cache else "outputs/cache/behaviour (may be warm)"}

    t0 = time.perf_counter()
    ref = h.check_many(recs, [r["solidity"] for r in recs], progress=True)
    wall = time.perf_counter() - t0
    s = B.summarize(ref)
    testable = s["n"] - s["untestable"]
    figures["reference"] = {**s, "coverage": testable / max(1, s["n"]),
                            "equivalent_of_testable": s["equivalent"] / max(1, testable),
                            "differs_examples": [x.detail for x in ref if x.status == "differs"][:5],
                            "wall_s": wall, "functions_per_s": len(recs) / wall}
    print(f"reference: coverage {testable}/{s['n']}, equivalent {s['equivalent']}/{testable}, "
          f"{len(recs) / wall:.2f} functions/s (compile cache may be warm)  untestable {s['untestable_reasons']}")

    if args.reference_only:
        if args.out:
            atomic_write_json(args.out, figures)
        return 0
    ok = [(r, h.original(r)) for r, x in zip(recs, ref) if x.status != "untestable"]
    ren = [C.rename_consistently(r["solidity"], [v["label"] for v in o.layout], list(o.functions))[0] for r, o in ok]
    t0 = time.perf_counter()
    rres = h.check_many([r for r, _ in ok], ren, progress=True)
    s2 = B.summarize(rres)
    figures["renamed"] = {**s2, "equivalent_of_reference_testable": s2["equivalent"] / max(1, len(ok)),
                          "wall_s": time.perf_counter() - t0,
                          "not_equivalent_examples": [f"{x.status} {x.reason} {x.detail[:200]}" for x in rres
                                                      if x.status != "equivalent"][:8]}
    print(f"renamed: equivalent {s2['equivalent']}/{len(ok)}, bindings needed {s2['binding_needed']}, "
          f"unbound {s2['binding_failed']}")

    mr, mt, kinds = [], [], []
    for r, o in ok:
        for k, text in C.mutants(r["solidity"], o.layout):
            mr.append(r)
            mt.append(text)
            kinds.append(k)
    t0 = time.perf_counter()
    mres = h.check_many(mr, mt, progress=True)
    by_kind = collections.Counter((k, x.status) for k, x in zip(kinds, mres))
    tm = [x for x in mres if x.status != "untestable"]
    figures["mutants"] = {"n": len(mres), "testable": len(tm), "differs": sum(x.status == "differs" for x in tm),
                          "differs_of_testable": sum(x.status == "differs" for x in tm) / max(1, len(tm)),
                          "by_kind": {f"{k}:{st}": n for (k, st), n in sorted(by_kind.items())},
                          "wall_s": time.perf_counter() - t0}
    print(f"mutants: differs {figures['mutants']['differs']}/{len(tm)} testable ({len(mres)} made)")
    if args.out:
        atomic_write_json(args.out, figures)
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
