#!/usr/bin/env python
"""Functions longer than a run's training context (issue 12, "a longer context"): two or more finished 03 runs that
differ in max_seq_length generate on the same held-out functions whose prompt + target fit the longest run's
context but not the shortest's, and are scored and paired there, with retrieval beside them.

    .venv/bin/python tools/eval_long.py --out outputs/long-1024-2048 --n 100 \\
        --runs outputs/reference-l3-long/03_baseline_3b outputs/reference-l3-ctx2048/03_baseline_3b

An evaluation with `eval_same_as` pairs two runs on the functions both contexts hold; this tool scores what only
the longer one was trained for. Functions: distinct contract-held-out test functions (holdout_packages left out),
stratified by complexity (tacsol.evaluate.selection), with min_tokens < prompt + target <= max_tokens, counted with
the first run's tokenizer and prompt as training counts them; with --strata package_heldout also (or instead) the
holdout_packages' functions whose near-duplicate group was never trained on. The runs must share their prompt
format (dataset, hints, neighbours), so that the same prompt goes to each. Per stratum S, each run's answers and
per-function table go to OUT/<run name>/eval/S_long/ (resumable: a killed run goes on from where it stopped),
OUT/S_long/selection.json names the functions, and OUT/long.json holds per stratum each system's rates and each
pair's paired difference, b - a (bootstrap 95% CI; system_a and system_b name the pair, a and b are their means)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

PROMPT_KEYS = ("model", "dataset", "holdout_packages", "signature_hints", "signature_sources", "train_hints",
               "event_names", "retrieval_prompts", "retrieval_max_chars", "train_new_tokens", "eval_prefill")
LONG = "{}_long"   # a stratum's band of long functions: its own folder beside the stratum's


def run_params(run: Path) -> dict:
    """suite.run_params of a finished run with its adapter (keys added since the run take their defaults, so that
    runs from before a key compare equal where they did the same)."""
    from tacsol.evaluate import suite

    if not (run / "params.yaml").is_file():
        raise SystemExit(f"{run}: no params.yaml (not a finished 03 run's phase folder)")
    if not (run / "adapter" / "adapter_config.json").is_file():
        raise SystemExit(f"{run}: no adapter/adapter_config.json (training has not finished)")
    return suite.run_params(run)


def check_same_prompts(runs: list[Path], params: list[dict]) -> None:
    """The runs differ in what they trained, never in the prompt they are given."""
    for k in PROMPT_KEYS:
        values = {repr(p.get(k)) for p in params}
        if len(values) > 1:
            raise SystemExit(f"runs differ in parameter {k!r} ({', '.join(f'{r}: {p.get(k)!r}' for r, p in zip(runs, params))}):"
                             " their prompts differ, so they cannot be scored on the same prompts")


def in_band(tok, min_tokens: int, max_tokens: int):
    """Eligibility: prompt + target longer than min_tokens and within max_tokens, counted as training counts an
    example (prompt.tokenize_example), once per record."""
    from tacsol import prompt

    def ok(r) -> bool:
        return min_tokens < len(prompt.tokenize_example(dict(r), tok)["input_ids"]) <= max_tokens

    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--runs", nargs="+", required=True, help="phase folders of finished 03 runs (with adapter/)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--n", type=int, default=100, help="distinct functions to score (default 100)")
    ap.add_argument("--min-tokens", type=int, default=0,
                    help="only functions longer than this (default: the shortest run's max_seq_length)")
    ap.add_argument("--max-tokens", type=int, default=0,
                    help="only functions within this (default: the longest run's max_seq_length)")
    ap.add_argument("--strata", nargs="+", default=["contract_heldout"], choices=["contract_heldout", "package_heldout"],
                    help="where the functions come from (default contract_heldout; package_heldout: the "
                         "holdout_packages' functions no trained near-duplicate group has)")
    ap.add_argument("--max-new-tokens", type=int, default=0,
                    help="generation budget (default: each run's max_new_tokens); a long function's target can "
                         "pass the 256 the reference runs use, and an answer cut there is scored as it stands")
    ap.add_argument("--no-retrieval", action="store_true", help="skip the retrieval baseline")
    ap.add_argument("--seed", type=int, default=0, help="selection seed (default: the first run's seed)")
    a = ap.parse_args(argv)

    from transformers import AutoTokenizer

    from tacsol import infer, paths
    from tacsol.evaluate import behaviour, suite
    from tacsol.ioutil import atomic_write_json
    from tacsol.train import run_records, trained_on

    runs = [paths.resolve(r) for r in a.runs]
    params = [run_params(r) for r in runs]
    check_same_prompts(runs, params)
    names = [r.parent.name if r.name == "03_baseline_3b" else r.name for r in runs]
    if len(set(names)) < len(names):
        raise SystemExit(f"two runs share the name {names}: give phase folders of differently named runs")
    lo = a.min_tokens or min(p["max_seq_length"] for p in params)
    hi = a.max_tokens or max(p["max_seq_length"] for p in params)
    if hi <= lo:
        raise SystemExit(f"--max-tokens {hi} <= --min-tokens {lo}: no band of lengths to score (give runs of "
                         "different max_seq_length, or both flags)")
    p0 = params[0]
    out = paths.resolve(a.out)
    tok = AutoTokenizer.from_pretrained(runs[0] / "adapter")
    recs = run_records(dict(p0))
    held = p0.get("holdout_packages", [])
    train = trained_on(recs, held)
    budget = {name: a.max_new_tokens or p["max_new_tokens"] for p, name in zip(params, names)}
    harness = behaviour.Harness()
    models = {}
    result = {"band": [lo, hi], "runs": a.runs, "strata": {}}
    for base in a.strata:
        stratum = LONG.format(base)
        pool, left_out = suite.stratum_pool(recs, base, held)
        chosen, report = suite.selection.select(pool, a.n, seed=a.seed or p0["seed"], eligible=in_band(tok, lo, hi))
        report.update(left_out)
        print(f"{stratum}: {len(chosen)} functions with {lo} < tokens <= {hi} (of {report['distinct_functions']} "
              f"distinct, {report['eligible']} in the band)")
        if not chosen:
            print(f"{stratum}: no function in the band; nothing to score", file=sys.stderr)
            continue
        done = out / stratum / "selection.json"
        before = json.loads(done.read_text()).get("max_new_tokens", budget) if done.is_file() else budget
        if before != budget:
            raise SystemExit(f"{done}: its answers were generated with max_new_tokens {before}, not {budget}: "
                             "resuming would mix the two; give another --out")
        atomic_write_json(done, {"report": report, "band": [lo, hi], "runs": a.runs, "max_new_tokens": budget,
                                 "ids": [r["id"] for r in chosen]}, indent=1)
        tables = {}
        for run, p, name in zip(runs, params, names):
            if name not in models:
                models[name] = infer.load(run / "adapter", base=p["model"])[0]
            system = suite.tuned_system(p["eval_prefill"])
            gens, timing = suite.model_generations(models[name], tok, chosen, out / name, stratum, system,
                                                   max_new_tokens=budget[name], batch_size=p["eval_batch_size"],
                                                   prefill=p["eval_prefill"])
            suite.score(chosen, gens, out / name, stratum, system,
                        extra={"run": str(run), "max_seq_length": p["max_seq_length"], "generation": timing,
                               "max_new_tokens": budget[name]},
                        **{**suite.eval_kwargs(p, harness), "figures": False})
            tables[name] = suite.eval_dir(out / name, stratum, system) / "functions.parquet"
        if not a.no_retrieval:
            suite.run_baselines(["retrieval"], stratum, chosen, train, out / "retrieval",
                                **{**suite.eval_kwargs(p0, harness), "figures": False})
            tables["retrieval"] = suite.eval_dir(out / "retrieval", stratum, "retrieval-tfidf") / "functions.parquet"
        result["strata"][stratum] = compared(tables, report)
    atomic_write_json(out / "long.json", result, indent=1)
    print(f"wrote {out / 'long.json'}")
    return 0


def compared(tables: dict, report: dict) -> dict:
    """Each system's rates (compare.PAIRED_METRICS) and each pair's paired difference on one stratum's tables."""
    import pandas as pd

    from tacsol import compare

    dfs = {k: pd.read_parquet(v) for k, v in tables.items()}
    result = {"n": report["selected"], "selection": report, "systems": {}, "paired": []}
    for k, df in dfs.items():
        rates = {m: float(fn(df).mean()) for m, fn in compare.PAIRED_METRICS.items()}
        result["systems"][k] = {"n": len(df), **rates}
        print(f"{k:24s} n {len(df)}  " + "  ".join(f"{m} {v:.3f}" for m, v in rates.items()))
    keys = list(dfs)
    for i, x in enumerate(keys):
        for y in keys[i + 1:]:
            for r in compare.paired(dfs[x], dfs[y]):
                result["paired"].append({"system_a": x, "system_b": y, **r})
                print(f"{y} - {x}  {r['metric']:20s} n {r['n']:3d}  {r['difference']:+.3f} "
                      f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]  b higher {r['b_higher']}, a higher {r['a_higher']}")
    return result


if __name__ == "__main__":
    raise SystemExit(main())
