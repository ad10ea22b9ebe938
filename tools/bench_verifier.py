"""Verifier-guided decoding measured (issue 12): greedy (N = 1) vs the best of N = 4 and N = 8 candidates by the
kit's objective checks (tacsol.evaluate.verify), on the same held-out functions, with the time each costs.

    .venv/bin/python tools/bench_verifier.py --run outputs/reference-l2/03_baseline_3b --subset curve

Reads the run's adapter and eval/selection.json (the functions the evaluation scored; --subset picks which list),
generates 8 candidates per function once (greedy + 7 samples at temperature 0.7, seeded; one resumable file per
candidate under pool/, the greedy one starting from the evaluation's own answers), and scores the choice at
N = 1, 4, 8 with tacsol.evaluate (eval/verifier/N<n>/; eval/verifier/consensus-N<n>/ for the consensus rule),
behavioural equivalence included, for each ranking rule of --rules (tacsol.evaluate.verify.RULES: "checks" keeps
the earliest candidate among those equal on the checks, "consensus" the one the others agree with most, "grounded"
the one whose effects best match the TAC's, then by agreement; eval/verifier/<rule>-N<n>/). The
ranking itself uses only what a decompiler has (the TAC, the original runtime for check 5 and the candidates; each
candidate's check-5 verdict goes to runs.jsonl); the behaviour check needs the original source, so it scores the
choice and never makes it. Prints one line per N and writes eval/verifier/verifier.json.
The candidate pool is kept (eval/verifier/candidates.jsonl), so a rerun skips generation.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from tacsol.evaluate.verify import RULES, table_name  # noqa: E402


def generate_pool(run: Path, out: Path, recs: list[dict], a, n_max: int, greedy_file: Path | None
                  ) -> tuple[dict[str, list[str]], dict]:
    """n_max candidates per record: pass 0 greedy, pass k a sample at temperature 0.7 seeded with k, each pass a
    resumable generation file (out/pool/k<k>.jsonl: a killed run goes on from where it stopped; a resumed sampling
    pass draws its remaining functions from a fresh seed, so its samples differ from an unbroken run's). Pass 0 starts
    from `greedy_file`, the run's own greedy answers for the subset where they were decoded as here (no prefill), so
    that N = 1 is the evaluation's greedy result. Times are the generation seconds each pass's rows record."""
    import shutil

    from transformers import set_seed

    from tacsol import infer

    (out / "pool").mkdir(exist_ok=True)
    first = out / "pool" / "k0.jsonl"
    if not first.is_file() and greedy_file is not None and greedy_file.is_file():
        shutil.copyfile(greedy_file, first)
    model, tok = infer.load(run / "adapter")
    files = []
    for k in range(n_max):
        path = out / "pool" / f"k{k}.jsonl"
        set_seed(k)
        infer.generate_to_file(model, tok, recs, path, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size,
                               greedy=k == 0, temperature=0.7, desc=f"candidate {k}")
        files.append(infer.read_done(path))
    pools = {r["id"]: [f[str(r["id"])]["generated"] for f in files] for r in recs}
    secs = [sum(float(f[str(r["id"])].get("seconds", 0.0)) for r in recs) for f in files]
    return pools, {"greedy_s": secs[0], "sample_pass_s": secs[1:]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", default="outputs/reference-l2/03_baseline_3b", help="phase folder of a 03 run")
    ap.add_argument("--subset", default="curve", help="selection list: curve | contract_heldout | package_heldout "
                    "(results in eval/verifier/ for curve, else eval/verifier-<subset>/)")
    ap.add_argument("--limit", type=int, default=0, help="first N functions of the subset (0 = all)")
    ap.add_argument("--params", default="", help="params file for evaluation keys the run's params.yaml lacks")
    ap.add_argument("--ns", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rules", nargs="+", default=["checks", "consensus"], choices=list(RULES),
                    help="ranking rules to score (tacsol.evaluate.verify.RULES; at N = 1 each is greedy decoding: "
                         "scored once, under the first rule's name)")
    ap.add_argument("--oracle", action="store_true",
                    help="also behaviour-check every candidate: the share of functions with an equivalent one among "
                         "the first N (what a perfect ranking would reach; not a decoder, it needs the original)")
    ap.add_argument("--no-run-check", action="store_true",
                    help="rank without check 5 (the candidate run against the original runtime in a stub: "
                         "tacsol.evaluate.stubrun), as the measurements before 2026-12-07 did")
    a = ap.parse_args(argv)

    from tacsol import paths
    from tacsol.evaluate import behaviour, evaluate_run, suite, verify
    from tacsol.evaluate.aggregate import rate_text
    from tacsol.ioutil import atomic_write_json

    run = paths.resolve(a.run)
    p, scored = suite.evaluated_records(run, a.params or None)
    recs = scored[a.subset][: a.limit] if a.limit else scored[a.subset]
    out = run / "eval" / ("verifier" if a.subset == "curve" else f"verifier-{a.subset}")
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
        own = suite.generations_path(run, a.subset, "fine-tuned") if p["eval_prefill"] == "none" else None
        pools, times = generate_pool(run, out, recs, a, n_max, own)
        pool_path.write_text("".join(json.dumps({"id": r["id"], "candidates": pools[r["id"]]}) + "\n" for r in recs))
        atomic_write_json(out / "generation_times.json", times)
    t0 = time.perf_counter()
    harness = behaviour.Harness()  # the originals are compiled and traced once for every N
    runs = {}
    if not a.no_run_check:   # check 5 against the original runtime: the bytecode a decompiler is given
        from tacsol.evaluate import stubrun

        codes = {r["id"]: o.code for r in recs if not isinstance(o := harness.original(r), str)}
        runs = stubrun.check_all(recs, codes, {r["id"]: pools[r["id"]][:n_max] for r in recs})
        (out / "runs.jsonl").write_text("".join(json.dumps({"id": r["id"], "runs": [[c.verdict, c.reason] for c in
                                                                              runs[r["id"]]]}) + "\n" for r in recs))
    checked = {r["id"]: verify.check_candidates(r, pools[r["id"]][:n_max], runs=runs.get(r["id"])) for r in recs}
    check_s = time.perf_counter() - t0
    results = []
    for rule, n in [(rule, n) for rule in a.rules for n in a.ns if n > 1 or rule == a.rules[0]]:
        chosen = {}
        for r in recs:
            cs = checked[r["id"]][:n]
            chosen[r["id"]] = cs[verify.best_of(cs, rule)].text
        name = table_name(rule, n)
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
        print(f"{rule} N={n}: similarity {rate_text(m['similarity_mean'])} [{rate_text(m['similarity_ci_low'])}, "
              f"{rate_text(m['similarity_ci_high'])}]  selector {rate_text(m['selector_match_rate'])}  compiles "
              f"{rate_text(m.get('compile_rate'))}  degenerate {rate_text(m['degenerate_rate'])}  equivalent "
              f"{rate_text(m.get('behaviour_rate'))} [{rate_text(m.get('behaviour_ci_low'))}, "
              f"{rate_text(m.get('behaviour_ci_high'))}]  "
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
    summary = out / "verifier.json"
    if summary.is_file():   # a run that scores some rules or Ns keeps the rows and oracle of earlier ones
        before = json.loads(summary.read_text())
        if before.get("subset") == a.subset:
            ours = {(r["rule"], r["n"]) for r in results}
            results = [r for r in before.get("results", []) if (r["rule"], r["n"]) not in ours] + results
            oracle = oracle if oracle is not None else before.get("oracle")
    atomic_write_json(summary, {"subset": a.subset, "run_check": not a.no_run_check, "results": results,
                                "generation_times": times,
                                "check_s_all_candidates": check_s, "oracle": oracle})
    return 0


if __name__ == "__main__":
    sys.exit(main())
