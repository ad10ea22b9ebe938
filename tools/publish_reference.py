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


def partial_summary(run: Path) -> None:
    """summary.json for a run whose notebook is still evaluating: training figures and the finished evaluations."""
    import yaml

    from tacsol import summary
    from tacsol.evaluate import suite

    log = json.loads((run / "train_log.json").read_text())
    params = yaml.safe_load((run / "params.yaml").read_text())
    main_m = json.loads((run / "eval" / "summary.json").read_text())["metrics"]
    headline = {k: log[k] for k in ("model", "params_total", "max_seq_length", "lora_r", "quantization", "n_processes",
                                    "train_tokens", "steps", "heldout_loss_before", "heldout_loss_after",
                                    "tokens_per_s", "s_per_step", "peak_memory_gb", "padding_share", "cpu_threads",
                                    "train_examples", "dropped_too_long", "dropped_holdout_packages")}
    headline.update(hardware_profile=params["hardware_profile"], wall_hours=log["train_wall_s"] / 3600, gpu_hours=0.0,
                    **{f"eval_{k}": main_m.get(k) for k in ("n_functions", "n_distinct", "similarity_mean",
                                                            "similarity_ci_low", "similarity_ci_high",
                                                            "selector_match_rate", "compile_rate", "degenerate_rate",
                                                            "grounding_recall", "similarity_ceiling")},
                    evaluation=suite.summary_table(run))
    summary.write_summary(run, phase="03_baseline_3b", headline=headline, params=params, smoke=False,
                          partial="published while the notebook was still evaluating: see docs/reference-run.md")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", default="outputs/reference/03_baseline_3b")
    ap.add_argument("--evidence", default="docs/evidence")
    ap.add_argument("--max-mb", type=float, default=12.0)
    ap.add_argument("--no-adapter", action="store_true", help="publish the evidence only")
    ap.add_argument("--partial", action="store_true",
                    help="the notebook has not finished: write summary.json from train_log.json and the finished "
                         "evaluations, marked partial")
    a = ap.parse_args(argv)

    from tacsol import infer, paths

    run = paths.resolve(a.run)
    if not (run / "summary.json").is_file() and not a.partial:
        print(f"{run}: no summary.json (the run has not finished; --partial publishes what is there)", file=sys.stderr)
        return 2
    if a.partial and not (run / "summary.json").is_file():
        partial_summary(run)
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
        total = sizes["adapter_model.safetensors"] / 1e6  # the weights; the tokenizer is the base model's + markers
        print(f"adapter: {infer.SHIPPED_ADAPTER} (weights {total:.1f} MB): {sizes}")
        if total > a.max_mb:
            shutil.rmtree(infer.SHIPPED_ADAPTER)
            print(f"adapter is {total:.1f} MB, over --max-mb {a.max_mb}: not shipped", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
