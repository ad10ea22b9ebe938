#!/usr/bin/env python
"""The TAC side of grounding, recomputed: every per-function table under published run folders gets its tac_*
effect columns from the dataset's TAC with today's `evaluate.solidity.tac_effects`, and the grounding figures of
the summary.json beside it follow (aggregates.grounding, aggregates.grounding_reference, metrics.grounding_*), as do
the copies in curve.json and verifier.json. Figures other tools derive from the tables (tools/retrieval_gate.py,
tools/split_paired.py, tools/compare_runs.py) are not touched: run them again.

    .venv/bin/python tools/rescore_effects.py --dataset ref_l3_t40_w docs/evidence/reference-l3-long/03_baseline_3b \\
        [more run folders] [--write] [--json OUT]

Why: until 2026-12-07 tac_effects read four patterns (log, sstore, call, revert), so a level-3 string write
(`storagestring(s) = p`) and the effects of a callee printed as its summary counted as absent. The out_* and ref_*
columns are computed from Solidity, not TAC, and stay. Rows meet the dataset by id, else by package, contract,
selector and settings (a rebuild of the same corpus; suite.TABLE_KEY); a row found neither way is reported and keeps
its columns. An effect the old column had and the dataset's TAC lacks is reported as `lost` (a rebuild whose TAC
dropped a fact, or a wrong match): --write refuses while any table has one. Without --write nothing is written;
with it each table and summary is replaced atomically, and OUT (--json) says per table what changed."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol.evaluate.aggregate import grounding, grounding_metrics  # noqa: E402
from tacsol.evaluate.solidity import EFFECTS, tac_effects  # noqa: E402
from tacsol.evaluate.suite import TABLE_KEY, table_key  # noqa: E402
from tacsol.evaluate.verify import table_name  # noqa: E402
from tacsol.ioutil import atomic_write_json, atomic_write_parquet  # noqa: E402

COLUMNS = [f"tac_{c}" for c in EFFECTS]


def tac_by_row(dataset) -> tuple[dict[str, str], dict[str, str]]:
    """The dataset's TAC per record id and per TABLE_KEY (the first record of a key)."""
    from tacsol import pairs

    by_id: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for split in pairs.load(dataset).values():
        for r in split.select_columns(["id", "tac", *TABLE_KEY]).to_list():
            by_id[str(r["id"])] = r["tac"] or ""
            by_key.setdefault(table_key(r), r["tac"] or "")
    return by_id, by_key


def rescore_table(df, by_id: dict[str, str], by_key: dict[str, str]):
    """(the table with tac_* recomputed, report). Report: rows, unmatched ids, per category the functions whose
    presence appears or is lost, and grounding before/after for the output and the reference."""
    new = df.copy()
    unmatched, gained, lost = [], {c: [] for c in EFFECTS}, {c: [] for c in EFFECTS}
    for i, row in df.iterrows():
        tac = by_id.get(str(row["id"]))
        if tac is None:
            tac = by_key.get(table_key(row))
        if tac is None:
            unmatched.append(str(row["id"]))
            continue
        for c, n in tac_effects(tac).items():
            old = int(row[f"tac_{c}"])
            new.at[i, f"tac_{c}"] = n
            if n > 0 and old == 0:
                gained[c].append(str(row["id"]))
            elif n == 0 and old > 0:
                lost[c].append(str(row["id"]))
    report = {"rows": int(len(df)), "unmatched": unmatched,
              "presence_gained": {c: v for c, v in gained.items() if v},
              "presence_lost": {c: v for c, v in lost.items() if v},
              "counts_changed": int((new[COLUMNS].to_numpy() != df[COLUMNS].to_numpy()).any(axis=1).sum())}
    for side in ("out", "ref"):
        if f"{side}_event" in df:
            report[f"grounding_{side}"] = {"before": _headline(grounding(df, side)),
                                           "after": _headline(grounding(new, side))}
    return new, report


def _headline(g: dict) -> dict:
    return {"precision": g["precision"], "recall": g["recall"],
            **{f"{c}_tac_has": g[c]["tac_has"] for c in EFFECTS}}


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def update_summary(path: Path, table) -> bool:
    """summary.json beside a rescored table: its grounding aggregates and flat metrics from the new columns."""
    if not path.is_file():
        return False
    s = json.loads(path.read_text())
    agg = s.get("aggregates") or {}
    agg["grounding"] = grounding(table)
    if "ref_event" in table:
        agg["grounding_reference"] = grounding(table, "ref")
    m = s.get("metrics") or {}
    if "grounding_precision" in m:
        m.update(grounding_metrics(agg))
    atomic_write_json(path, s)
    return True


def refresh_derived(run: Path) -> list[Path]:
    """The copies of summary metrics that curve.json (per checkpoint: `step-N/`) and verifier.json (per rule and N:
    `N4/`, `grounded-N8/`, tools/bench_verifier.py) keep, read again from those folders' summary.json."""
    written = []
    for path in sorted(run.rglob("curve.json")):
        points = json.loads(path.read_text())
        for pt in points:
            m = _metrics(path.parent / f"step-{pt['step']}")
            if m is not None and "grounding_recall" in pt:
                pt["grounding_recall"] = m.get("grounding_recall")
        atomic_write_json(path, points)
        written.append(path)
    for path in sorted(run.rglob("verifier.json")):
        v = json.loads(path.read_text())
        for r in v.get("results", []):
            m = _metrics(path.parent / table_name(r["rule"], r["n"]))
            if m is not None:
                r.update({k: m.get(k) for k in ("grounding_precision", "grounding_recall") if k in r})
        atomic_write_json(path, v)
        written.append(path)
    return written


def _metrics(folder: Path) -> dict | None:
    p = folder / "summary.json"
    return json.loads(p.read_text()).get("metrics") if p.is_file() else None


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("runs", nargs="+", type=Path, help="published run folders (every functions.parquet under each)")
    ap.add_argument("--dataset", required=True, help="the dataset the runs were scored on (a name under outputs/data/ "
                                                     "or a path; pairs.load)")
    ap.add_argument("--write", action="store_true", help="replace the tables' tac_* columns and their summaries' "
                                                         "grounding (refused while an effect would be lost)")
    ap.add_argument("--json", type=Path, help="write the per-table report here")
    a = ap.parse_args(argv)
    by_id, by_key = tac_by_row(a.dataset)
    reports, tables = {}, {}
    for run in a.runs:
        paths = sorted(run.rglob("functions.parquet"))
        if not paths:
            raise SystemExit(f"{run}: no functions.parquet under it (not a published run folder)")
        for p in paths:
            df = pd.read_parquet(p)
            if not set(COLUMNS) <= set(df.columns) or "id" not in df:
                reports[str(p)] = {"skipped": "no tac_* effect columns"}
                continue
            tables[p], reports[str(p)] = rescore_table(df, by_id, by_key)
    lost = {p: r["presence_lost"] for p, r in reports.items() if r.get("presence_lost")}
    for p, r in reports.items():
        if "skipped" in r:
            print(f"{p}: skipped ({r['skipped']})")
            continue
        g = r.get("grounding_out")
        line = (f"{p}: {r['rows']} rows, {len(r['unmatched'])} unmatched, {r['counts_changed']} with new counts, "
                f"presence gained {sum(map(len, r['presence_gained'].values()))}, lost "
                f"{sum(map(len, r['presence_lost'].values()))}")
        if g:
            line += "; " + ", ".join(f"{k} {_fmt(g['before'][k])} -> {_fmt(g['after'][k])}" for k in ("recall", "precision"))
        print(line)
    if a.json:
        atomic_write_json(a.json, {"dataset": str(a.dataset), "tables": reports})
    if a.write:
        if lost:
            raise SystemExit(f"refusing to write: effects the tables had are absent from {a.dataset}'s TAC in "
                             f"{len(lost)} tables (first: {next(iter(lost))}: {next(iter(lost.values()))})")
        for p, table in tables.items():
            atomic_write_parquet(p, table)
            update_summary(p.parent / "summary.json", table)
        derived = [d for run in a.runs for d in refresh_derived(run)]
        print(f"wrote {len(tables)} tables and their summaries; refreshed {len(derived)} curve/verifier files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
