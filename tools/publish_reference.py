"""Publish a finished reference run (issue 12): its evidence into docs/evidence/<run>/ and its adapter into the
package (lib/tacsol/data/adapter/, what `tacsol decompile` uses without --adapter).

    .venv/bin/python tools/publish_reference.py --run outputs/reference/03_baseline_3b

Copies: summary.json, train_log.json, params.yaml, loss.png and, under eval/, every summary.json, per-function table
(functions.parquet), figure, selection.json, the learning curve and the verifier measurement; the rendered notebook.
The adapter is written in bf16 with its recipe (params.yaml) and evaluation table (EVALUATION.md) beside it; the
command refuses an adapter over --max-mb. 06_compare reads docs/evidence/ beside outputs/.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

KEEP = ("summary.json", "train_log.json", "params.yaml", "loss.png", "03_baseline_3b.ipynb", "03_baseline_3b.html")
EVAL_KEEP = ("summary.json", "functions.parquet", "selection.json", "curve.json", "verifier.json", "*.png",
             "contracts.jsonl")


def evaluation_markdown(run: Path) -> str:
    from tacsol.evaluate import suite

    rows = suite.summary_table(run)
    head = ("| stratum | system | n | similarity [95% CI] | selector match [95% CI] | compiles (stub) | degenerate | "
            "grounding P/R |\n|---|---|---|---|---|---|---|---|\n")

    def f(x):
        return "–" if x is None else f"{x:.3f}"

    lines = [f"| {r['stratum']} | {r['system']} | {r['n_functions']} | {f(r['similarity_mean'])} "
             f"[{f(r['similarity_ci_low'])}, {f(r['similarity_ci_high'])}] | {f(r['selector_match_rate'])} "
             f"[{f(r['selector_match_ci_low'])}, {f(r['selector_match_ci_high'])}] | {f(r['compile_rate'])} | "
             f"{f(r['degenerate_rate'])} | {f(r['grounding_precision'])}/{f(r['grounding_recall'])} |" for r in rows]
    return head + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", default="outputs/reference/03_baseline_3b")
    ap.add_argument("--evidence", default="docs/evidence")
    ap.add_argument("--max-mb", type=float, default=12.0)
    ap.add_argument("--no-adapter", action="store_true", help="publish the evidence only")
    a = ap.parse_args(argv)

    from tacsol import infer, paths

    run = paths.resolve(a.run)
    if not (run / "summary.json").is_file():
        print(f"{run}: no summary.json (the run has not finished)", file=sys.stderr)
        return 2
    dest = paths.resolve(a.evidence) / run.parent.name / run.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in KEEP:
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)
    for pattern in EVAL_KEEP:
        for f in (run / "eval").rglob(pattern):
            if "generations" in f.parts:
                continue
            target = dest / f.relative_to(run)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    table = evaluation_markdown(run)
    (dest / "EVALUATION.md").write_text(table, encoding="utf-8")
    print(f"evidence: {dest} ({sum(f.stat().st_size for f in dest.rglob('*') if f.is_file()) / 1e6:.1f} MB)")
    if not a.no_adapter:
        summary = json.loads((run / "summary.json").read_text())
        sizes = infer.ship_adapter(run / "adapter", extra_files={
            "params.yaml": (run / "params.yaml").read_text(),
            "EVALUATION.md": f"# Reference adapter: evaluation\n\nRecipe: params.yaml (params/03_reference_cpu.yaml). "
                             f"Hardware: {summary.get('hardware', {}).get('line', summary.get('hardware'))}. "
                             f"Evidence: docs/evidence/{run.parent.name}/{run.name}/, docs/reference-run.md.\n\n"
                             + table})
        total = sum(sizes.values()) / 1e6
        print(f"adapter: {infer.SHIPPED_ADAPTER} ({total:.1f} MB): {sizes}")
        if total > a.max_mb:
            shutil.rmtree(infer.SHIPPED_ADAPTER)
            print(f"adapter is {total:.1f} MB, over --max-mb {a.max_mb}: not shipped", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
