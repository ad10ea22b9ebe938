#!/usr/bin/env python
"""Two finished 03 runs scored on the same functions, side by side and paired (tacsol.compare.paired), per stratum
and system. Runs on datasets of different TAC levels (`eval_same_as`) give the same function different record ids
(ids hash the TAC), so functions are matched by package, contract, selector and settings:

    .venv/bin/python tools/compare_runs.py docs/evidence/reference-l2-hints/03_baseline_3b \\
        outputs/reference-l3/03_baseline_3b --json docs/evidence/reference-l3/l3_vs_l2.json

Per (stratum, system) both runs hold: n, each run's rate of behaviourally equivalent, degenerate, selector-matching
functions and mean similarity, then b - a per metric with its bootstrap 95% CI and the functions each side wins."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol import compare, paths  # noqa: E402
from tacsol.ioutil import atomic_write_json  # noqa: E402
from tacsol.evaluate import suite  # noqa: E402

KEY = suite.TABLE_KEY


def tables(run: Path) -> dict[tuple[str, str], "object"]:
    """{(stratum, system): per-function table} of a run's eval/ (fine-tuned and each baseline)."""
    import pandas as pd

    out = {}
    for stratum in suite.STRATA:
        base = suite.eval_dir(run, stratum)
        for system, d in [("fine-tuned", base), *((p.name, p) for p in sorted((base / "baselines").glob("*")))]:
            f = d / "functions.parquet"
            if f.exists():
                out[stratum, system] = pd.read_parquet(f)
    return out


def keyed(df):
    """The table with `id` replaced by the function's key, so that two builds' rows meet."""
    if df.duplicated(KEY).any():
        raise ValueError(f"two rows share a {KEY} key: {df[df.duplicated(KEY)][KEY].head(3).to_dict('records')}")
    return df.assign(id=[suite.table_key(r) for r in df[KEY].to_dict("records")])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="a finished run's output_dir (or its published evidence)")
    ap.add_argument("b", help="the other run, scored on the same functions")
    ap.add_argument("--json", help="also write the comparison here")
    args = ap.parse_args(argv)
    a, b = tables(paths.resolve(args.a)), tables(paths.resolve(args.b))
    rows = []
    for k in sorted(set(a) & set(b)):
        for r in compare.paired(keyed(a[k]), keyed(b[k])):
            rows.append({"stratum": k[0], "system": k[1], **r})
            print(f"{k[0]:17s} {k[1]:16s} {r['metric']:20s} n {r['n']:3d}  a {r['a']:.3f}  b {r['b']:.3f}  "
                  f"b-a {r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]  "
                  f"b higher {r['b_higher']}, a higher {r['a_higher']}")
    if args.json:
        atomic_write_json(args.json, {"a": args.a, "b": args.b, "key": KEY, "paired": rows}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
