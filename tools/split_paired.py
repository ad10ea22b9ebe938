#!/usr/bin/env python
"""Where the fine-tuned model wins and loses: its greedy answers paired with every other system scored on the same
functions (the baselines; verifier-guided decoding where tools/bench_verifier.py ran), within each split of those
functions: prompts that name the function (a known signature) or not (--by hint), or getters, setters, the two
together and the rest (--by kind), or both (--by hint,kind), or whether its answer is retrieval's answer verbatim
(--by copy; up to whitespace: what a run trained with retrieval prompts copies from its prompt).

    .venv/bin/python tools/split_paired.py --run outputs/reference-l3-long/03_baseline_3b --by hint
    .venv/bin/python tools/split_paired.py --run docs/evidence/reference-l3-long/03_baseline_3b --by kind \\
        --json docs/evidence/reference-l3-long/split_by_kind.json

Per split and system: n, the two rates, the paired difference (fine-tuned minus the other) with its bootstrap 95%
CI and how many functions each side wins (tacsol.compare.paired). Untestable counts as not equivalent, as in every
behaviour figure of the kit. Asserts nothing; prints a table, writes JSON with --json."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol import compare  # noqa: E402
from tacsol.evaluate.kinds import table_kinds  # noqa: E402
from tacsol.evaluate.suite import EVAL_SYSTEMS, eval_dir  # noqa: E402


def systems(run: Path, stratum: str) -> dict[str, Path]:
    """name -> per-function table of every system scored on the stratum besides the fine-tuned model's greedy one."""
    out = {name: eval_dir(run, stratum, name) / "functions.parquet" for name in EVAL_SYSTEMS[1:]}
    verifier = run / "eval" / f"verifier-{stratum}"
    if verifier.is_dir():
        out.update({f"verifier {d.name}": d / "functions.parquet" for d in sorted(verifier.iterdir())
                    if d.name != "N1" and (d / "functions.parquet").is_file()})
    return {k: v for k, v in out.items() if v.is_file()}


def splits(df, by: str, retrieved=None) -> dict[str, list[bool]]:
    """split name -> row mask of a per-function table ("hint,kind": every pair of the two; "copy" needs the
    retrieval baseline's table of the same functions, `retrieved`)."""
    if by == "hint,kind":
        return {f"{h} {k}": [a and b for a, b in zip(hm, km)]
                for h, hm in splits(df, "hint").items() for k, km in splits(df, "kind").items()}
    if by == "copy":
        if retrieved is None:
            raise ValueError("--by copy: the stratum has no retrieval baseline table")
        theirs = dict(zip(retrieved["id"], retrieved["generated"].fillna("").map(_squeezed)))
        copied = [theirs.get(i) == _squeezed(g or "") for i, g in zip(df["id"], df["generated"])]
        return {"copies retrieval": copied, "own answer": [not c for c in copied]}
    if by == "hint":
        named = df["signature_hint"].fillna("").astype(str).str.len() > 0
        return {"named": list(named), "unnamed": list(~named)}
    kinds = table_kinds(df)
    out = {k: [x == k for x in kinds] for k in ("getter", "setter", "other")}
    out["getter+setter"] = [x in ("getter", "setter") for x in kinds]
    return out


def _squeezed(text: str) -> str:
    return " ".join(str(text).split())


def split_paired(run: Path, stratum: str, by: str, metric: str) -> list[dict]:
    import pandas as pd

    tuned = pd.read_parquet(eval_dir(run, stratum) / "functions.parquet")
    others = systems(run, stratum)
    retrieved = pd.read_parquet(others["retrieval-tfidf"]) if "retrieval-tfidf" in others else None
    masks = splits(tuned, by, retrieved)
    rows = []
    for name, path in others.items():
        other = pd.read_parquet(path)
        for split, mask in masks.items():
            ids = set(tuned.loc[mask, "id"])
            a, b = other[other["id"].isin(ids)], tuned[tuned["id"].isin(ids)]
            if not len(a):
                continue
            (r,) = compare.paired(a, b, metrics=(metric,))
            rows.append({"split": split, "system": name, "n": r["n"], "fine_tuned": r["b"], "other": r["a"],
                         "difference": r["difference"], "ci": [r["ci_low"], r["ci_high"]],
                         "fine_tuned_wins": r["b_higher"], "other_wins": r["a_higher"]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", required=True, help="a 03 run's output_dir, or its published evidence folder")
    ap.add_argument("--stratum", default="contract_heldout", choices=("contract_heldout", "package_heldout"))
    ap.add_argument("--by", default="hint", choices=("hint", "kind", "hint,kind", "copy"))
    ap.add_argument("--metric", default="behaviour_equivalent", choices=tuple(compare.PAIRED_METRICS))
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args(argv)
    rows = split_paired(Path(a.run), a.stratum, a.by, a.metric)
    if not rows:
        print(f"{a.run}: no system besides the fine-tuned one scored on {a.stratum}", file=sys.stderr)
        return 1
    print(f"{a.metric}, {a.stratum}, fine-tuned (greedy) minus each system, paired [95% CI]")
    print(f"{'split':<22} {'system':<26} {'n':>4} {'tuned':>7} {'other':>7} {'difference':>28} {'wins':>7}")
    for r in rows:
        d = f"{r['difference']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]"
        print(f"{r['split']:<22} {r['system']:<26} {r['n']:>4} {r['fine_tuned']:>7.3f} {r['other']:>7.3f} {d:>28} "
              f"{r['fine_tuned_wins']:>3}:{r['other_wins']:<3}")
    if a.json:
        Path(a.json).write_text(json.dumps({"run": a.run, "stratum": a.stratum, "by": a.by, "metric": a.metric,
                                            "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
