"""The figures of a verifier measurement (tools/bench_verifier.py) as one evidence file: per stratum and ranking rule,
the functions the choice makes behaviourally equivalent with their Wilson interval, getters and setters, degenerate
outputs, selector match, and paired bootstrap differences against greedy decoding, retrieval and the same rule
measured before (an earlier copy of the tables); the grounding the `grounded` rule ranks for; and how check 5's
verdicts on every candidate (runs.jsonl) compare with the harness's verdicts on the same candidates (candidates/k*).

    .venv/bin/python tools/verifier_evidence.py --run outputs/reference-l3-rag900/03_baseline_3b \\
        --before docs/evidence/reference-l3-rag900/03_baseline_3b/eval --out docs/evidence/x.json

Untestable counts as not equivalent, as everywhere in the kit.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

STRATA = {"contract_heldout": "", "package_heldout": "package_heldout"}


def _stratum_dir(eval_dir: Path, subset: str) -> Path:
    return eval_dir / STRATA[subset] if STRATA[subset] else eval_dir


def rule_figures(df, greedy, retrieval, before, rule: str) -> dict:
    """One rule's choice: counts, intervals, and paired differences (b - a: the choice minus the other system)."""
    from tacsol import compare
    from tacsol.evaluate import kinds
    from tacsol.evaluate.aggregate import wilson

    eq = df["behaviour"] == "equivalent"
    kind = kinds.table_kinds(df)
    gs = [k in ("getter", "setter") for k in kind]
    n_gs, k_gs = sum(gs), int(sum(e for e, g in zip(eq, gs) if g))

    def versus(other):
        return None if other is None else compare.paired(other, df, metrics=("behaviour_equivalent",))[0]

    out = {"n": len(df), "equivalent": int(eq.sum()), "rate": round(float(eq.mean()), 4),
           "wilson": [round(x, 4) for x in wilson(int(eq.sum()), len(df))],
           "getters_setters": [k_gs, n_gs], "getters_setters_wilson": [round(x, 4) for x in wilson(k_gs, n_gs)],
           "degenerate": int((df["degenerate"].astype(str) != "").sum()) if "degenerate" in df else None,
           "selector_match": round(float(df["selector_match"].mean()), 4),
           "minus_greedy": versus(greedy), "minus_retrieval": versus(retrieval), "minus_before": versus(before)}
    if rule == "grounded" and retrieval is not None:
        out["grounding_minus_retrieval"] = compare.paired_grounding(retrieval, df)
    return out


def run_check_agreement(vdir: Path, n: int) -> dict:
    """Check 5's verdict on each candidate against the harness's on the same candidate (candidates/k<i>)."""
    import pandas as pd

    runs = {json.loads(line)["id"]: json.loads(line)["runs"] for line in (vdir / "runs.jsonl").read_text().splitlines()}
    table = collections.Counter()
    n = min(n, sum((vdir / "candidates" / f"k{k}" / "functions.parquet").is_file() for k in range(n)))
    for k in range(n):
        df = pd.read_parquet(vdir / "candidates" / f"k{k}" / "functions.parquet")
        for i, b in zip(df["id"], df["behaviour"]):
            if i in runs and k < len(runs[i]):
                table[f"{runs[i][k][0] or 'no verdict'} / {b}"] += 1
    return {"candidates_per_function": n, "check5 / harness": dict(sorted(table.items()))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", required=True, help="phase folder of a 03 run (its eval/ holds the verifier tables)")
    ap.add_argument("--before", default="", help="an eval/ folder with the same tables measured before (paired)")
    ap.add_argument("--retrieval", default="", help="a folder of retrieval tables scored by the same harness as the "
                    "verifier's, <subset>.parquet (default: the run's own eval/.../baselines/retrieval-tfidf)")
    ap.add_argument("--tables", nargs="+", default=["N4", "consensus-N4", "grounded-N4"])
    ap.add_argument("--agreement-n", type=int, default=8, help="candidates per function to compare check 5 on (at "
                    "most those the harness scored: candidates/k*)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    import pandas as pd

    from tacsol import paths
    from tacsol.ioutil import atomic_write_json

    ev = paths.resolve(a.run) / "eval"
    before = Path(a.before) if a.before else None
    out = {"run": a.run, "before": a.before, "retrieval": a.retrieval, "strata": {}}
    for subset in STRATA:
        vdir = ev / f"verifier-{subset}"
        if not vdir.is_dir():
            continue
        sd = _stratum_dir(ev, subset)
        # greedy as the verifier's harness scored it (N1: candidate 0), else the run's own table
        greedy = pd.read_parquet(vdir / "N1" / "functions.parquet" if (vdir / "N1").is_dir() else
                                 sd / "functions.parquet")
        rp = Path(a.retrieval) / f"{subset}.parquet" if a.retrieval else \
            sd / "baselines" / "retrieval-tfidf" / "functions.parquet"
        retrieval = pd.read_parquet(rp) if rp.is_file() else None
        rules = {}
        for name in a.tables:
            p = vdir / name / "functions.parquet"
            if not p.is_file():
                continue
            bp = before / f"verifier-{subset}" / name / "functions.parquet" if before else None
            rules[name] = rule_figures(pd.read_parquet(p), greedy, retrieval,
                                       pd.read_parquet(bp) if bp and bp.is_file() else None,
                                       name.split("-")[0] if "-" in name else "checks")
            r = rules[name]
            print(f"{subset} {name}: {r['equivalent']}/{r['n']} [{r['wilson'][0]:.3f}, {r['wilson'][1]:.3f}]  "
                  f"getters+setters {r['getters_setters'][0]}/{r['getters_setters'][1]}  minus retrieval "
                  f"{r['minus_retrieval']['difference']:+.3f} [{r['minus_retrieval']['ci_low']:+.3f}, "
                  f"{r['minus_retrieval']['ci_high']:+.3f}]" if r["minus_retrieval"] else "", flush=True)
        out["strata"][subset] = {
            "greedy": int((greedy["behaviour"] == "equivalent").sum()),
            "retrieval": int((retrieval["behaviour"] == "equivalent").sum()) if retrieval is not None else None,
            "rules": rules,
            "run_check": run_check_agreement(vdir, a.agreement_n) if (vdir / "runs.jsonl").is_file() else None}
    atomic_write_json(Path(a.out), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
