#!/usr/bin/env python
"""Every reference run at a glance: one row per run and stratum, read from the runs' own evidence (summary.json of
each system scored, the per-function table, params.yaml, train_log.json), so the table is regenerated, never
typed, when a run lands (tacsol.compare.reference_runs; notebook 06 shows the same table).

    .venv/bin/python tools/runs_table.py                       # every run under docs/evidence
    .venv/bin/python tools/runs_table.py --runs outputs/reference-l3-ctx2048/03_baseline_3b   # also an unpublished one
    .venv/bin/python tools/runs_table.py --json docs/evidence/runs_table.json

Columns: the run's dataset, TAC level (from its adapter's tacsol_train.json; "?" where no adapter was kept),
training context and tokens, held-out loss after training; per stratum the number of distinct functions, the
fine-tuned model's greedy behaviour rate with its bootstrap 95% CI, retrieval's on the same functions, selector match,
similarity, degenerate rate, and getters + setters equivalent (tacsol.evaluate.kinds). `set` labels the selection:
rows with the same letter were scored on the same functions (the same record ids) and can be compared directly;
rows with different letters cannot, whatever their rates say. Untestable counts as not equivalent, as in every
behaviour figure of the kit. The published figures keep the behaviour harness each run was scored with; three more
columns give the current harness's verdicts on the same functions from the latest rescoring (--rescored: its
index.json; `n` there counts the functions the rescoring's dataset still holds). Asserts nothing; prints Markdown."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol import compare  # noqa: E402
from tacsol.ioutil import atomic_write_json  # noqa: E402

EVIDENCE = ROOT / "docs" / "evidence"
RESCORED = EVIDENCE / compare.RESCORING


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--evidence", type=Path, default=EVIDENCE, help="folder of published runs (default docs/evidence)")
    ap.add_argument("--runs", type=Path, nargs="*", default=[],
                    help="more 03 phase folders (an unpublished run under outputs/)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--rescored", type=Path, default=RESCORED,
                    help="a rescoring's index.json: the current harness's verdicts as three more columns "
                         f"(default {RESCORED.relative_to(ROOT)}; 'none' for the published figures alone)")
    a = ap.parse_args(argv)
    missing = [r for r in a.runs if not r.is_dir()]
    if missing:
        ap.error(f"--runs: no such folder: {', '.join(map(str, missing))}")
    rows = compare.reference_runs(compare.find_reference_runs(a.evidence) + list(a.runs))
    if str(a.rescored) != "none":
        if not a.rescored.is_file():
            ap.error(f"--rescored: no such file: {a.rescored}")
        compare.with_rescoring(rows, json.loads(a.rescored.read_text()))
    print(compare.reference_markdown(rows))
    if a.json:
        print(f"wrote {atomic_write_json(a.json, rows, indent=1)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
