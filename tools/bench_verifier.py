"""Verifier-guided decoding measured (issue 12): greedy (N = 1) vs the best of N = 4 and N = 8 candidates by the
kit's objective checks (tacsol.evaluate.verify), on the same held-out functions, with the time each costs.

    .venv/bin/python tools/bench_verifier.py --run outputs/reference-l2/03_baseline_3b --subset curve

Reads the run's adapter and eval/selection.json (the functions the evaluation scored; --subset picks which list),
generates 8 candidates per function once (greedy + 7 samples at temperature 0.7, seeded), and scores the choice at
N = 1, 4, 8 with tacsol.evaluate (eval/verifier/N<n>/; eval/verifier/consensus-N<n>/ for the consensus rule),
behavioural equivalence included, for each ranking rule of --rules (tacsol.evaluate.verify.RULES: "checks" keeps
the earliest candidate among those equal on the checks, "consensus" the one the others agree with most). The
ranking itself uses only what a decompiler has (the TAC and the candidates); the behaviour check needs the original
source, so it scores the choice and never makes it. Prints one line per N and writes eval/verifier/verifier.json.
The candidate pool is kept (eval/verifier/candidates.jsonl), so a rerun skips generation.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", default="outputs/reference-l2/03_baseline_3b", help="phase folder of a 03 run")
    ap.add_argument("--subset", default="curve", help="selection list: curve | contract_heldout | package_heldout")
    ap.add_argument("--limit", type=int, default=0, help="first N functions of the subset (0 = all)")
    ap.add_argument("--ns", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rules", nargs="+", default=["checks", "consensus"], choices=["checks", "consensus"],
                    help="ranking rules to score (at N = 1 both are greedy decoding: scored once)")
    ap.add_argument("--oracle", action="store_true",
                    help="also behaviour-check every candidate: the share of functions with an equivalent one among "
                         "the first N (what a perfect ranking would reach; not a decoder, it needs the original)")
    a = ap.parse_args(argv)

    from tacsol import infer, paths
    from tacsol.evaluate import behaviour, evaluate_run, suite, verify
    from tacsol.ioutil import atomic_write_json

    run = paths.resolve(a.run)
    p, scored = suite.evaluated_records(run)
    recs = scored[a.subset][: a.limit] if a.limit else scored[a.subset]
    out = run / "eval" / "verifier"
    out.mkdir(parents=True, exist_ok=True)
    pool_path = out / "candidates.jsonl"
    n_max = max(a.ns)
    pools: dict[str, list[str]] = {}
    times: dict[str, float] = {}
    if pool_path.is_file():
        for line in pool_path.read_text().splitlines():
            row = json.loads(line)
            pools[row["id"]] = row["candidates"]
        times = json.loads((out / "generation_times.json").read_text())
    if any(len(pools.get(r["id"], [])) < n_max for r in recs):
        model, tok = infer.load(run / "adapter")
        t0 = time.perf_counter()
        greedy = infer.generate(model, tok, recs, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size,
                                progress=True)
        times = {"greedy_s": time.perf_counter() - t0, "sample_pass_s": []}
        cands = [[g] for g in greedy]
        from transformers import set_seed

        for k in range(1, n_max):
            set_seed(k)
            t0 = time.perf_counter()
            samples = infer.generate(model, tok, recs, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size,
                                     greedy=False, temperature=0.7, progress=True)
            times["sample_pass_s"].append(time.perf_counter() - t0)
            for c, s in zip(cands, samples):
                c.append(s)
        pools = {r["id"]: c for r, c in zip(recs, cands)}
        pool_path.write_text("".join(json.dumps({"id": r["id"], "candidates": pools[r["id"]]}) + "\n" for r in recs))
        atomic_write_json(out / "generation_times.json", times)
    t0 = time.perf_counter()
    checked = {r["id"]: verify.check_candidates(r, pools[r["id"]][:n_max]) for r in recs}
    check_s = time.perf_counter() - t0
    results = []
    harness = behaviour.Harness()  # the originals are compiled and traced once for every N
    for rule, n in [(rule, n) for rule in a.rules for n in a.ns if n > 1 or rule == a.rules[0]]:
        chosen = {}
        for r in recs:
            cs = checked[r["id"]][:n]
            chosen[r["id"]] = cs[verify.best_of(cs, rule)].text
        name = f"N{n}" if rule == "checks" else f"{rule}-N{n}"
        s = evaluate_run(recs, chosen, run, system=f"verifier-{name}", eval_dir=out / name, figures=False,
                         verbose=False, **suite.eval_kwargs(p, harness))  # the checks the run's evaluation used
        m = s["metrics"]
        gen_s = times["greedy_s"] + sum(times["sample_pass_s"][: n - 1])
        row = {"rule": rule, "n": n, "functions": len(recs), **{k: m.get(k) for k in (
            "similarity_mean", "similarity_ci_low", "similarity_ci_high", "selector_match_rate", "compile_rate",
            "compile_ci_low", "compile_ci_high", "degenerate_rate", "grounding_precision", "grounding_recall",
            "behaviour_rate", "behaviour_ci_low", "behaviour_ci_high", "behaviour_untestable")},
            "generate_s": gen_s, "check_s": check_s * n / n_max,
            "seconds_per_function": (gen_s + check_s * n / n_max) / len(recs)}
        results.append(row)
        print(f"{rule} N={n}: similarity {m['similarity_mean']:.3f} [{m['similarity_ci_low']:.3f}, "
              f"{m['similarity_ci_high']:.3f}]  selector {m['selector_match_rate']:.3f}  compiles "
              f"{m['compile_rate']:.3f}  degenerate {m['degenerate_rate']:.3f}  equivalent "
              f"{m['behaviour_rate']:.3f} [{m['behaviour_ci_low']:.3f}, {m['behaviour_ci_high']:.3f}]  "
              f"{row['seconds_per_function']:.1f} s/function", flush=True)
    oracle = None
    if a.oracle:  # every candidate behaviour-checked: how often a right one was in the pool the ranking chose from
        import pandas as pd

        equivalent = {r["id"]: [] for r in recs}
        for k in range(n_max):
            s = evaluate_run(recs, {r["id"]: pools[r["id"]][k] for r in recs}, run, system=f"candidate-{k}",
                             eval_dir=out / "candidates" / f"k{k}", figures=False, verbose=False,
                             **suite.eval_kwargs(p, harness))
            df = pd.read_parquet(out / "candidates" / f"k{k}" / "functions.parquet")
            for i, b in zip(df["id"], df["behaviour"]):
                equivalent[i].append(b == "equivalent")
        oracle = [{"n": n, "any_equivalent": sum(any(v[:n]) for v in equivalent.values()) / len(recs)}
                  for n in a.ns]
        for o in oracle:
            print(f"oracle N={o['n']}: a behaviourally equivalent candidate among the first {o['n']} for "
                  f"{o['any_equivalent']:.3f} of the functions", flush=True)
    atomic_write_json(out / "verifier.json", {"subset": a.subset, "results": results, "generation_times": times,
                                              "check_s_all_candidates": check_s, "oracle": oracle})
    return 0


if __name__ == "__main__":
    sys.exit(main())
