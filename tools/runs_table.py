#!/usr/bin/env python
"""Every reference run at a glance: one row per run and stratum, read from the runs' own evidence (summary.json of
each system scored, the per-function table, params.yaml, train_log.json), so the table is regenerated, never
typed, when a run lands.

    .venv/bin/python tools/runs_table.py                       # every run under docs/evidence
    .venv/bin/python tools/runs_table.py --runs outputs/reference-l3-ctx2048/03_baseline_3b   # also an unpublished one
    .venv/bin/python tools/runs_table.py --json docs/evidence/runs_table.json

Columns: the run's dataset, TAC level (from its adapter's tacsol_train.json; "?" where no adapter was kept),
training context and tokens, held-out loss after training; per stratum the number of distinct functions, the
fine-tuned model's greedy behaviour rate with its bootstrap 95% CI, retrieval's on the same functions, selector match,
similarity, degenerate rate, and getters + setters equivalent (tacsol.evaluate.kinds). `set` labels the selection:
rows with the same letter were scored on the same functions (the same record ids) and can be compared directly;
rows with different letters cannot, whatever their rates say. Untestable counts as not equivalent, as in every
behaviour figure of the kit. Asserts nothing; prints Markdown."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol.evaluate.kinds import table_kinds  # noqa: E402
from tacsol.evaluate.suite import eval_dir  # noqa: E402

STRATA = ("contract_heldout", "package_heldout")
EVIDENCE = ROOT / "docs" / "evidence"


def find_runs(evidence: Path) -> list[Path]:
    """Phase folders of 03 runs under `evidence` that hold an evaluation."""
    return sorted(p.parent.parent for p in evidence.glob("*/03_baseline_3b/eval/summary.json"))


def _yaml_scalars(path: Path) -> dict[str, str]:
    """The top-level `key: value` lines of a params file (enough for the few keys shown; no YAML dependency)."""
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line and not line.startswith((" ", "-", "#")) and ": " in line:
                k, v = line.split(": ", 1)
                out[k] = v.strip()
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def tac_level(run: Path) -> int | None:
    for p in (run / "trained" / "adapter" / "tacsol_train.json", run / "adapter" / "tacsol_train.json"):
        if p.is_file():
            return _json(p).get("tac_level")
    return None


def selection_key(run: Path, stratum: str) -> str | None:
    """A short hash of the stratum's selected record ids (eval/selection.json)."""
    ids = (_json(run / "eval" / "selection.json").get("ids") or {}).get(stratum)
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:12] if ids else None


def getters_setters(table: Path) -> tuple[int, int] | None:
    """(equivalent, n) over the getters and setters of a per-function table."""
    import pandas as pd

    if not table.is_file():
        return None
    df = pd.read_parquet(table)
    if "behaviour" not in df.columns:   # scored before the behaviour metric existed
        return None
    kinds = table_kinds(df)
    mask = [k in ("getter", "setter") for k in kinds]
    sub = df[mask]
    return int((sub["behaviour"] == "equivalent").sum()), len(sub)


def run_rows(run: Path) -> list[dict]:
    params = _yaml_scalars(run / "params.yaml")
    log = _json(run / "train_log.json")
    common = {"run": run.parent.name, "path": str(run), "dataset": params.get("dataset"), "tac_level": tac_level(run),
              "max_seq_length": log.get("max_seq_length") or params.get("max_seq_length"),
              "train_tokens": log.get("train_tokens"), "heldout_loss_after": log.get("heldout_loss_after"),
              "retrieval_prompts": params.get("retrieval_prompts") == "true",
              "smoke": params.get("smoke") == "true"}
    rows = []
    for stratum in STRATA:
        tuned = _json(eval_dir(run, stratum) / "summary.json").get("metrics")
        if not tuned:
            continue
        retrieval = _json(eval_dir(run, stratum, "retrieval-tfidf") / "summary.json").get("metrics") or {}
        gs = getters_setters(eval_dir(run, stratum) / "functions.parquet")
        rows.append({**common, "stratum": stratum, "selection": selection_key(run, stratum),
                     "n": tuned.get("n_distinct") or tuned.get("n_functions"),
                     "behaviour": tuned.get("behaviour_rate"), "behaviour_ci": [tuned.get("behaviour_ci_low"),
                                                                               tuned.get("behaviour_ci_high")],
                     "retrieval_behaviour": retrieval.get("behaviour_rate"),
                     "selector_match": tuned.get("selector_match_rate"), "similarity": tuned.get("similarity_mean"),
                     "degenerate": tuned.get("degenerate_rate"),
                     "getters_setters": list(gs) if gs else None})
    return rows


def label_selections(rows: list[dict]) -> None:
    """Letters for the selection hashes, in order of first appearance."""
    letters: dict[str, str] = {}
    for r in rows:
        key = r["selection"]
        if key is not None and key not in letters:
            letters[key] = chr(ord("A") + len(letters)) if len(letters) < 26 else key
        r["set"] = letters.get(key, "?")


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def markdown(rows: list[dict]) -> str:
    out = []
    for stratum in STRATA:
        mine = [r for r in rows if r["stratum"] == stratum]
        if not mine:
            continue
        out += [f"**{stratum}**", "",
                "| run | dataset | level | context | train tokens | held-out loss | set | n | behaviour [95% CI] "
                "| retrieval | selector | similarity | degenerate | getters + setters |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            lo, hi = r["behaviour_ci"]
            ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
            gs = r["getters_setters"]
            out.append(
                f"| {r['run']}{' (smoke)' if r['smoke'] else ''}{' (retrieval prompts)' if r['retrieval_prompts'] else ''} "
                f"| {r['dataset']} | {r['tac_level'] if r['tac_level'] is not None else '?'} | {r['max_seq_length']} "
                f"| {r['train_tokens']:,} | "
                f"{'–' if r['heldout_loss_after'] is None else format(r['heldout_loss_after'], '.3f')} | {r['set']} "
                f"| {r['n']} | {_pct(r['behaviour'])}{ci} | {_pct(r['retrieval_behaviour'])} "
                f"| {'–' if r['selector_match'] is None else format(r['selector_match'], '.3f')} "
                f"| {'–' if r['similarity'] is None else format(r['similarity'], '.3f')} | {_pct(r['degenerate'])} "
                f"| {f'{gs[0]}/{gs[1]}' if gs else '–'} |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--evidence", type=Path, default=EVIDENCE, help="folder of published runs (default docs/evidence)")
    ap.add_argument("--runs", type=Path, nargs="*", default=[],
                    help="more 03 phase folders (an unpublished run under outputs/)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    a = ap.parse_args(argv)
    runs = find_runs(a.evidence) + [r for r in a.runs if r.is_dir()]
    missing = [r for r in a.runs if not r.is_dir()]
    if missing:
        ap.error(f"--runs: no such folder: {', '.join(map(str, missing))}")
    rows = [row for run in runs for row in run_rows(run)]
    rows.sort(key=lambda r: (STRATA.index(r["stratum"]), r["run"]))
    label_selections(rows)
    print(markdown(rows))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
