"""The learning curve over a whole stratum (issue 12): every saved checkpoint of a finished 03 run generates on all the
functions its evaluation scored in one stratum, not only on the curve's fixed subset, so that the curve can resolve
gains that a subset of ~40 functions cannot (one function moves a rate by 2.3 points there).

    .venv/bin/python tools/score_checkpoints.py --run outputs/reference-l3-long/03_baseline_3b

Reads the run's eval/selection.json, checkpoints/ and adapter; scores each checkpoint with the checks the run's
evaluation used (behaviour included) into eval/curve-<stratum>/step-<N>/ and writes eval/curve-<stratum>/curve.json
and its plot, learning_curve.png.
The final step reuses the fine-tuned model's generations for that stratum. Generation is resumable: a killed run goes
on from where it stopped. Prints one line per checkpoint, then each checkpoint's paired difference from the final
adapter (bootstrap 95% CI over the same functions) for behaviour and selector match.
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", required=True, help="phase folder of a finished 03 run (with checkpoints/)")
    ap.add_argument("--stratum", default="contract_heldout", choices=["contract_heldout", "package_heldout"])
    ap.add_argument("--params", default="", help="params file for evaluation keys the run's params.yaml lacks")
    ap.add_argument("--limit", type=int, default=0, help="first N functions of the stratum (0 = all; a smoke run)")
    ap.add_argument("--steps", type=int, nargs="+", help="only these checkpoints (default: every one; the final "
                    "adapter is always scored)")
    a = ap.parse_args(argv)

    import pandas as pd

    from tacsol import compare, infer, paths, plots
    from tacsol.evaluate import behaviour, suite
    from tacsol.evaluate.aggregate import rate_text
    from tacsol.ioutil import atomic_write_json

    run = paths.resolve(a.run)
    if not suite.checkpoints(run):
        print(f"{run}: no checkpoints/checkpoint-<step>/ with an adapter; nothing to score", file=sys.stderr)
        return 2
    p, scored = suite.evaluated_records(run, a.params or None)
    recs = scored.get(a.stratum) or []
    if a.limit:
        recs = recs[: a.limit]
    if not recs:
        print(f"{run}: eval/selection.json has no {a.stratum} functions", file=sys.stderr)
        return 2
    tuned = suite.tuned_system(p["eval_prefill"])
    final = int(json.loads((run / "train_log.json").read_text())["steps"])
    known = {final: {k: v["generated"] for k, v in
                     infer.read_done(suite.generations_path(run, a.stratum, tuned)).items()}}
    name = f"curve-{a.stratum}"
    points = suite.learning_curve(run, recs, base_model=p["model"], tokenizer_dir=run / "adapter",
                                  max_new_tokens=p["max_new_tokens"], batch_size=p["eval_batch_size"], known=known,
                                  prefill=p["eval_prefill"], stratum=name, steps=a.steps,
                                  **{**suite.eval_kwargs(p, behaviour.Harness()), "figures": False})
    print(f"{name}: {len(recs)} functions")
    print("step  train_tokens  similarity  selector  behaviour [95% CI]  degenerate")
    for pt in points:
        print(f"{pt['step']:>4}  {pt['train_tokens']:>12,}  {rate_text(pt['similarity_mean'])}       "
              f"{rate_text(pt['selector_match_rate'])}     {rate_text(pt['behaviour_rate'])} "
              f"[{rate_text(pt['behaviour_ci_low'])}, {rate_text(pt['behaviour_ci_high'])}]  "
              f"{rate_text(pt['degenerate_rate'])}")
    # paired against the final adapter: the curve's question is whether the last steps still helped
    tables = {pt["step"]: pd.read_parquet(suite.eval_dir(run, name, f"step-{pt['step']}") / "functions.parquet")
              for pt in points}
    last = max(tables)
    paired = []
    for step in sorted(tables)[:-1]:
        for r in compare.paired(tables[step], tables[last], metrics=("behaviour_equivalent", "selector_match")):
            paired.append({"step": step, "final_step": last, **r})
            print(f"step {last} - step {step}: {r['metric']:20s} n {r['n']}  {r['difference']:+.3f} "
                  f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]")
    atomic_write_json(run / "eval" / name / "paired_with_final.json", {"n": len(recs), "paired": paired})
    fig = plots.learning_curve(points, title=f"Quality vs training tokens, every {a.stratum} function")
    fig.savefig(run / "eval" / name / "learning_curve.png", dpi=120, bbox_inches="tight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
