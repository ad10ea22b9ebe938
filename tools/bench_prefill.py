"""Header prefill measured (issue 12): a function the known-signature table does not name is decoded from
`function unknown_<selector>(` (tacsol.prompt.header_prefill) instead of from nothing, on the functions a finished
03 run evaluated, scored with every metric the run used (behaviour included) beside its greedy figures.

    .venv/bin/python tools/bench_prefill.py --run outputs/reference-l2/03_baseline_3b

Why: trained on real names only, the model writes a header with no name (`function public virtual override
returns (uint256)`) for most functions whose name it is not given, and those outputs are degenerate and untestable.
Functions the table names get no prefill, so their greedy generations are reused as they are. Two modes of
tacsol.infer.generate are scored: "always" (every unnamed function prefilled) and "fallback" (only where the greedy
answer has no function in it; the default of tacsol decompile), beside "none" (the run's greedy figures).
Generation is resumable (eval/generations/<stratum>/fine-tuned-prefill.jsonl); the scores go to
eval/decoding/prefill-<mode>/<stratum>/. Prints one line per mode and stratum and writes eval/decoding/prefill.json.
"""
from __future__ import annotations

import argparse
import json
import sys

KEYS = ("similarity_mean", "selector_match_rate", "degenerate_rate", "grounding_precision", "grounding_recall",
        "behaviour_rate", "behaviour_ci_low", "behaviour_ci_high", "behaviour_untestable")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", default="outputs/reference-l2/03_baseline_3b", help="phase folder of a finished 03 run")
    ap.add_argument("--params", default="params/03_reference_cpu.yaml",
                    help="the params file the run was evaluated with (its evaluation keys; '' = defaults)")
    ap.add_argument("--strata", nargs="+", default=["contract_heldout", "package_heldout"])
    a = ap.parse_args(argv)

    from tacsol import infer, paths, prompt, train
    from tacsol.evaluate import behaviour, evaluate_run, suite
    from tacsol.evaluate.degenerate import degenerate_reason
    from tacsol.ioutil import atomic_write_json

    run = paths.resolve(a.run)
    p, scored = suite.evaluated_records(run, a.params or None)
    train.set_cpu_threads(int(p.get("cpu_threads") or 0))
    harness = behaviour.Harness()
    model = tok = None
    report = {}
    for stratum in a.strata:
        chosen = scored.get(stratum, [])
        if not chosen:
            continue
        greedy_rows = infer.read_done(suite.generations_path(run, stratum, "fine-tuned"))
        todo = [r for r in chosen if prompt.header_prefill(r)]
        path = suite.generations_path(run, stratum, "fine-tuned-prefill")
        done = infer.read_done(path)
        if any(str(r["id"]) not in done for r in todo) and model is None:
            model, tok = infer.load(run / "adapter")
        gens = infer.generate_to_file(model, tok, todo, path, max_new_tokens=p["max_new_tokens"],
                                      batch_size=p["eval_batch_size"], prefill="always",
                                      desc=f"{stratum}/prefill") if todo else {}
        greedy = {r["id"]: greedy_rows[str(r["id"])]["generated"] for r in chosen}
        # fallback: the prefilled answer only where the greedy one has no function in it (infer.generate's rule)
        redo = {r["id"] for r in todo if degenerate_reason(greedy[r["id"]]) in ("empty", "no_function")}
        variants = {"always": {i: gens.get(str(i), greedy[i]) for i in greedy},
                    "fallback": {i: gens[str(i)] if i in redo else greedy[i] for i in greedy}}
        before = json.loads((suite.eval_dir(run, stratum, "fine-tuned") / "summary.json").read_text())["metrics"]
        report[stratum] = {"functions": len(chosen), "unnamed": len(todo), "fallback_redone": len(redo),
                           "none": {k: before.get(k) for k in KEYS}}
        for mode, texts in variants.items():
            s = evaluate_run(chosen, texts, run, system=suite.tuned_system(mode),
                             eval_dir=run / "eval" / "decoding" / f"prefill-{mode}" / stratum,
                             extra={"stratum": stratum, "prefill": mode}, figures=False, verbose=False,
                             **suite.eval_kwargs(p, harness))
            report[stratum][mode] = {k: s["metrics"].get(k) for k in KEYS}
        for mode in ("none", "fallback", "always"):
            m = report[stratum][mode]
            print(f"{stratum} prefill={mode:8s} n={len(chosen)} (unnamed {len(todo)}, redone {len(redo)}): "
                  f"similarity {m['similarity_mean']:.3f}  selector {m['selector_match_rate']:.3f}  degenerate "
                  f"{m['degenerate_rate']:.3f}  grounding {m['grounding_precision']:.3f}/{m['grounding_recall']:.3f}"
                  f"  equivalent {m['behaviour_rate']:.3f} [{m['behaviour_ci_low']:.3f}, "
                  f"{m['behaviour_ci_high']:.3f}] (untestable {m['behaviour_untestable']})", flush=True)
        atomic_write_json(run / "eval" / "decoding" / "prefill.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
