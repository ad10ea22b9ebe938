"""Behavioural equivalence of an evaluation scored again by the current harness (issue 13): an evaluation scored
before the metric existed, or one whose harness has since changed (then each function's old and new result are
paired, so that a change of the harness shows function by function).

Reads the generations of each system from its functions.parquet (`id`, `generated`), finds the records in a built
dataset (by id, or with `--match key` by package, contract, selector and settings, for a dataset rebuilt since,
whose ids differ), runs the behaviour harness on them and prints and writes, per system, the three results with
the behaviour rate and its bootstrap 95% interval (over all matched functions; untestable counts as not shown
equivalent) and over the testable ones; per function kind (getter, setter, other); where the table holds an
earlier `behaviour`, the transitions old -> new; and the fine-tuned model's paired difference from each baseline.

    python tools/behaviour_of_eval.py docs/evidence/reference/03_baseline_3b/eval --dataset ref \\
        --out docs/evidence/behaviour/reference_run.json
    python tools/behaviour_of_eval.py docs/evidence/reference-l3/03_baseline_3b/eval --dataset ref_l3_t40 \\
        --match key --out docs/evidence/behaviour/fifth_run_rescored.json

--write-tables DIR writes each system's table with the new verdicts (DIR/functions.parquet,
DIR/baselines/<name>/functions.parquet, the eval/ layout), so that tools/compare_runs.py pairs an older run, scored
again, with a new one scored by the same harness.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", help="an eval/ folder: functions.parquet, and baselines/<name>/functions.parquet")
    ap.add_argument("--dataset", required=True, help="the dataset the evaluation ran on (name under outputs/data/)")
    ap.add_argument("--match", choices=("id", "key"), default="id",
                    help="find records by id (the same build) or by package, contract, selector and settings")
    ap.add_argument("--systems", nargs="*", help="only these systems (fine-tuned, retrieval-tfidf, ...)")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--write-tables", metavar="DIR",
                    help="write each system's table with the new verdicts here, in the eval/ folder's layout")
    args = ap.parse_args()

    import pandas as pd

    from tacsol import pairs
    from tacsol.evaluate import behaviour as B, kinds, suite
    from tacsol.ioutil import atomic_write_json, atomic_write_parquet

    ev = Path(args.eval_dir)
    systems = {"fine-tuned": ev / "functions.parquet"}
    systems.update({p.parent.name: p for p in sorted((ev / "baselines").glob("*/functions.parquet"))})
    if args.systems:
        systems = {k: v for k, v in systems.items() if k in args.systems}
    ds = pairs.load(args.dataset)

    def key(r) -> str:
        return str(r["id"]) if args.match == "id" else suite.table_key(r)

    records = {key(r): dict(r) for split in ds for r in ds[split]}
    rescored = {}   # system -> its table with this harness's verdicts (for the paired comparison)
    h = B.Harness()
    figures: dict = {"eval_dir": str(ev), "dataset": args.dataset, "match": args.match,
                     "machine": f"{os.cpu_count()} CPU cores", "systems": {}}
    for name, path in systems.items():
        df = pd.read_parquet(path)
        df = df.assign(kind=kinds.table_kinds(df))
        rows = [(records[key(r)], r) for r in df.to_dict("records") if key(r) in records]
        t0 = time.perf_counter()
        res = h.check_many([rec for rec, _ in rows], [r["generated"] for _, r in rows], progress=True)
        s = B.summarize(res)
        s.update({"n_scored": len(df), "n_matched": len(rows), "wall_s": time.perf_counter() - t0,
                  "differs_examples": [x.detail for x in res if x.status == "differs"][:5],
                  "equivalent_ids": [r["id"] for (_, r), x in zip(rows, res) if x.status == "equivalent"][:50]})
        s["by_kind"] = {k: B.summarize([x for (_, r), x in zip(rows, res) if r["kind"] == k])
                        for k in sorted({r["kind"] for _, r in rows})}
        if "behaviour" in df:
            moves = collections.Counter(f"{r.get('behaviour') or 'none'} -> {x.status}" for (_, r), x in zip(rows, res))
            s["transitions"] = dict(sorted(moves.items()))
            s["before"] = {"equivalent": sum(r.get("behaviour") == "equivalent" for _, r in rows)}
            s["changed"] = [{"id": r["id"], "function": r["function_name"], "kind": r["kind"],
                             "before": r.get("behaviour"), "after": x.status, "reason": x.reason}
                            for (_, r), x in zip(rows, res) if r.get("behaviour") != x.status]
        verdicts = {r["id"]: x for (_, r), x in zip(rows, res)}
        df = df[df["id"].isin(verdicts)]
        new = pd.DataFrame([verdicts[i].columns() for i in df["id"]], index=df.index)
        rescored[name] = df.assign(**{c: new[c] for c in new.columns})   # every behaviour column, not the verdict alone
        if args.write_tables:
            dest = Path(args.write_tables) / path.relative_to(ev)
            atomic_write_parquet(dest, rescored[name].drop(columns=["kind"]))
        # issue 12's goal (>= 50% of getters and setters equivalent) with its bootstrap interval
        s["getters_and_setters"] = B.summarize([x for (_, r), x in zip(rows, res) if r["kind"] in ("getter", "setter")])
        figures["systems"][name] = s
        ci = s["behaviour_ci"]
        print(f"{name:18s} n={len(rows)}/{len(df)}  equivalent {s['equivalent']}  differs {s['differs']}  "
              f"untestable {s['untestable']} {s['untestable_reasons']}  rate {s['behaviour_rate']:.3f} "
              f"[{ci[0]:.3f}, {ci[1]:.3f}]")
        for k, b in s["by_kind"].items():
            print(f"  {k:8s} {b['equivalent']}/{b['n']}")
        gs = s["getters_and_setters"]
        if gs["n"]:
            print(f"  getters and setters {gs['equivalent']}/{gs['n']} = {gs['behaviour_rate']:.3f} "
                  f"[{gs['behaviour_ci'][0]:.3f}, {gs['behaviour_ci'][1]:.3f}]")
        if "transitions" in s:
            print("  before -> after:", s["transitions"])
    if "fine-tuned" in rescored:   # the model against each baseline on the same functions, paired
        from tacsol import compare

        for name, df in rescored.items():
            if name != "fine-tuned":
                r = compare.paired(df, rescored["fine-tuned"], metrics=("behaviour_equivalent",))[0]
                figures["systems"][name]["fine_tuned_minus_this"] = r
                print(f"fine-tuned - {name}: {r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] "
                      f"(fine-tuned ahead on {r['b_higher']}, {name} on {r['a_higher']})")
    if args.out:
        atomic_write_json(args.out, figures)
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
