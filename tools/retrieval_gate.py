#!/usr/bin/env python
"""A retrieval gate (issue 12, "beat retrieval on behaviour"): answer a function with the Solidity of the nearest
training function by TAC when that neighbour is near (TF-IDF cosine >= tau, the retrieval baseline's own index and
score), and with the fine-tuned model's greedy answer otherwise. The model and retrieval are each right on functions
the other misses; the cosine is known at decompile time, so it can choose between them without the reference.

    .venv/bin/python tools/retrieval_gate.py --runs docs/evidence/reference-l3-long/03_baseline_3b \\
        docs/evidence/reference-l3-w450/03_baseline_3b --json docs/evidence/retrieval_gate.json

tau is chosen once, on the first run's `--choose-on` stratum (default contract_heldout), as the value of a fixed
grid (0.50, 0.55, ..., 1.00; 1.00 and above: never retrieve below an exact TAC match) with the most equivalent
functions under the plain gate, ties to the higher tau (fewer copies); or given with --tau. Every other (run,
stratum) is then scored at that tau without looking: those are the out-of-sample figures, the choosing one is
in-sample. Two rules are scored at that tau: `gate` (the cosine alone) and `guarded` (as `tacsol decompile
--retrieval-gate` does: a copy whose selector is not the bytecode's does not replace a model answer whose selector is).

No answer is generated or scored again: each function's gated answer is one the run's evaluation already scored (the
fine-tuned model's or the retrieval baseline's, per-function tables under eval/), so its verdicts are those. The
cosine is the one the retrieval table kept (`neighbour_id`, `tac_similarity`; evaluations from 2026-12-07 on), else
it is recomputed (tacsol.baselines.retrieve over the run's training pool, prompts as the run was trained with, which
needs the run's dataset as it was), and wherever the gate uses a recomputed answer it must equal the one the
retrieval table scored: a mismatch there is an error naming the function. Per (rule, run, stratum): the gated system's rates and its paired differences
against retrieval and against the fine-tuned model, and the fine-tuned model's against retrieval (behaviour and
selector match by tacsol.compare.paired, grounding recall and precision by compare.paired_grounding; bootstrap 95%
CIs), and with --out the
gated per-function table (OUT/<run>/<stratum>-<rule>.parquet). Untestable counts as not equivalent, as in every
behaviour figure of the kit. Runs evaluated since 2026-12-06 also hold the guarded gate at baselines.GATE_TAU as
their own system `retrieval-gate` (tacsol.evaluate.suite.score_gate). With --tuned NAME the model's side is the
per-function table eval/NAME/ instead of its greedy answers (a verifier-ranked choice written by
tools/bench_verifier.py, for example verifier-contract_heldout/grounded-N8), on the stratum that table covers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol import baselines, compare, train  # noqa: E402
from tacsol.ioutil import atomic_write_json, atomic_write_parquet  # noqa: E402
from tacsol.evaluate.aggregate import grounding, grounding_columns  # noqa: E402
from tacsol.evaluate.kinds import table_kinds  # noqa: E402
from tacsol.evaluate.suite import eval_dir, run_params, scored_records  # noqa: E402

STRATA = ("contract_heldout", "package_heldout")
GRID = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))   # 0.50 ... 1.00


def cosines(run: Path, strata=STRATA) -> dict[str, dict[str, dict]]:
    """stratum -> id -> the retrieval baseline's row (answer, neighbour_id, tac_similarity) for the `strata` the run
    scored: read from its retrieval table where the table kept them (evaluations from 2026-12-07 on), recomputed from
    the run's dataset where it did not."""
    import pandas as pd

    scored = json.loads((run / "eval" / "selection.json").read_text())["ids"]
    strata = [s for s in strata if scored.get(s)]
    out: dict[str, dict[str, dict]] = {}
    for s in strata:
        path = eval_dir(run, s, "retrieval-tfidf") / "functions.parquet"
        rt = pd.read_parquet(path) if path.is_file() else None
        kept = baselines.table_cosines(rt) if rt is not None else None
        if kept is not None:
            out[s] = {str(i): {"id": str(i), "generated": g, "neighbour_id": n, "tac_similarity": kept[str(i)]}
                      for i, g, n in zip(rt["id"], rt["generated"], rt["neighbour_id"])}
    rest = [s for s in strata if s not in out]
    if rest:
        p = run_params(run)
        recs = train.run_records(p)
        pool, chosen = train.trained_on(recs, p.get("holdout_packages", [])), scored_records(run, recs)
        out |= {s: {r["id"]: r for r in baselines.retrieve(pool, chosen[s])} for s in rest if chosen.get(s)}
    return out


def tables(run: Path, stratum: str, tuned: str | None = None):
    """The fine-tuned model's (or, with `tuned`, the per-function table under eval/<tuned>/) and retrieval's
    per-function tables of a stratum, indexed by id, same functions."""
    import pandas as pd

    where = run / "eval" / tuned if tuned else eval_dir(run, stratum)
    ft = pd.read_parquet(where / "functions.parquet").set_index("id")
    rt = pd.read_parquet(eval_dir(run, stratum, "retrieval-tfidf") / "functions.parquet").set_index("id")
    if set(ft.index) != set(rt.index):
        raise ValueError(f"{run} {stratum}: the tables of {where} and retrieval score different functions")
    return ft, rt.loc[ft.index]


def covers(run: Path, stratum: str, tuned: str) -> bool:
    """Whether eval/<tuned>/ scored exactly the functions retrieval scored on `stratum` (a verifier table covers
    the one subset it was run on)."""
    import pandas as pd

    path = run / "eval" / tuned / "functions.parquet"
    retrieved = eval_dir(run, stratum, "retrieval-tfidf") / "functions.parquet"
    if not (path.is_file() and retrieved.is_file()):
        return False
    return set(pd.read_parquet(path, columns=["id"])["id"]) == set(pd.read_parquet(retrieved, columns=["id"])["id"])


RULES = baselines.GATE_RULES


def gated_table(ft, rt, rows: dict[str, dict], tau: float, where: str, rule: str = "gate"):
    """baselines.gated_table over two tables indexed by id, then a check that every retrieval answer it uses is the
    one the retrieval table scored (where the cosines were recomputed, for evaluations that did not keep them)."""
    missing = [i for i in ft.index if i not in rows]
    if missing:
        raise ValueError(f"{where}: function {missing[0]} has no recomputed retrieval row")
    out = baselines.gated_table(ft.reset_index(), rt.reset_index(),
                                {i: rows[i]["tac_similarity"] for i in ft.index}, tau, rule)
    for i in out.loc[out["gate_source"] == "retrieval", "id"]:   # elsewhere retrieval's verdict is not used
        if rows[i]["generated"] != rt.loc[i, "generated"]:
            raise ValueError(f"{where}: function {i} (cosine {rows[i]['tac_similarity']:.3f} >= tau {tau:.2f}): the "
                             f"recomputed retrieval answer (neighbour {rows[i]['neighbour_id']}) is not the one the "
                             "retrieval table scored, so its verdict cannot be reused")
    return out


def equivalent(df) -> float:
    return float((df["behaviour"] == "equivalent").mean())


def choose_tau(ft, rt, rows: dict[str, dict]) -> tuple[float, dict[str, float]]:
    """The grid's tau with the most equivalent gated answers (ties: the higher tau), and the rate at each."""
    rates = {t: equivalent(gated_table(ft, rt, rows, t, "choosing tau")) for t in GRID}
    best = max(GRID, key=lambda t: (round(rates[t], 9), t))
    return best, {f"{t:.2f}": round(r, 4) for t, r in rates.items()}


def mismatches(rt, rows: dict[str, dict]) -> int:
    """Functions whose recomputed retrieval answer is not the scored one (harmless below tau: reported)."""
    return sum(rows[i]["generated"] != rt.loc[i, "generated"] for i in rt.index)


def _recall(df) -> float | None:
    """Grounding recall (events, storage writes, external calls of the TAC the answer shows), micro-averaged."""
    if not grounding_columns() <= set(df.columns):
        return None
    r = grounding(df.reset_index() if "id" not in df.columns else df)["recall"]
    return None if r is None else round(r, 4)


def summarize(gated, ft, rt) -> dict:
    kinds = table_kinds(gated)
    gs = gated[[k in ("getter", "setter") for k in kinds]]
    out = {"n": len(gated), "from_retrieval": int((gated["gate_source"] == "retrieval").sum()),
           "behaviour": round(equivalent(gated), 4), "fine_tuned": round(equivalent(ft), 4),
           "retrieval": round(equivalent(rt), 4),
           "selector_match": round(float(gated["selector_match"].mean()), 4),
           "degenerate": round(float((gated["degenerate"].fillna("") != "").mean()), 4),
           "grounding_recall": {name: _recall(df) for name, df in (("gated", gated), ("fine_tuned", ft),
                                                                    ("retrieval", rt))},
           "getters_setters": [int((gs["behaviour"] == "equivalent").sum()), len(gs)]}
    for name, a, b in (("vs_retrieval", rt, gated), ("vs_fine_tuned", ft, gated), ("fine_tuned_vs_retrieval", rt, ft)):
        a, b = a.reset_index(), b.reset_index() if "id" not in b.columns else b
        out[name] = {row["metric"]: {k: row[k] for k in ("difference", "ci_low", "ci_high", "b_higher", "a_higher")}
                     for row in [*compare.paired(a, b, metrics=("behaviour_equivalent", "selector_match")),
                                 *(compare.paired_grounding(a, b)
                                   if grounding_columns() <= set(a.columns) & set(b.columns) else [])]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--runs", type=Path, nargs="+", required=True,
                    help="finished 03 runs (fine-tuned and retrieval-tfidf tables per stratum); the first chooses tau")
    ap.add_argument("--choose-on", choices=STRATA, default="contract_heldout",
                    help="the first run's stratum that chooses tau (default contract_heldout)")
    ap.add_argument("--tau", type=float, default=None, help="a fixed tau instead of choosing one")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--out", type=Path, default=None, help="write each gated per-function table under this folder")
    ap.add_argument("--tuned", default=None, metavar="NAME",
                    help="gate each run's per-function table eval/NAME/ instead of the fine-tuned model's greedy one, "
                         "on the stratum it covers (e.g. verifier-contract_heldout/grounded-N8, written by "
                         "tools/bench_verifier.py); tau is chosen on it too unless --tau is given")
    a = ap.parse_args(argv)
    for run in a.runs:
        if not (run / "eval" / "selection.json").is_file():
            ap.error(f"--runs: {run} is not a finished 03 run (no eval/selection.json)")
    strata = {run: [s for s in STRATA if not a.tuned or covers(run, s, a.tuned)] for run in a.runs}
    for run, covered in strata.items():
        if not covered:
            ap.error(f"--tuned: {run / 'eval' / a.tuned} does not exist or covers no stratum's functions")
    rows = {run: cosines(run, strata[run]) for run in a.runs}   # only what is gated: a TF-IDF pass per stratum
    first = a.runs[0]
    if a.tau is None:
        if a.choose_on not in rows[first]:
            ap.error(f"--choose-on: {first} did not score {a.choose_on}")
        ft, rt = tables(first, a.choose_on, a.tuned)
        tau, grid = choose_tau(ft, rt, rows[first][a.choose_on])
        chosen_on = {"run": str(first), "stratum": a.choose_on, "grid": grid}
    else:
        tau, chosen_on = a.tau, {"given": True}
    result = {"tau": tau, "chosen_on": chosen_on, "tuned": a.tuned or "fine-tuned", "results": []}
    print(f"tau = {tau:.2f}" + (f" (chosen on {first} {a.choose_on}; that row is in-sample)" if a.tau is None
                                else " (given)"))
    print("rule | run | stratum | n | from retrieval | gated | fine-tuned | retrieval | gated - retrieval [95% CI] "
          "| gated - fine-tuned [95% CI] | selector match (gated - fine-tuned) | getters + setters")
    for rule in RULES:
        for run in a.runs:
            for stratum, by_id in rows[run].items():
                ft, rt = tables(run, stratum, a.tuned)
                gated = gated_table(ft, rt, by_id, tau, f"{run} {stratum}", rule)
                s = summarize(gated, ft, rt)
                s.update(rule=rule, run=str(run), stratum=stratum, retrieval_not_reproduced=mismatches(rt, by_id),
                         in_sample=a.tau is None and run == first and stratum == a.choose_on)
                result["results"].append(s)
                vr, vf = s["vs_retrieval"]["behaviour_equivalent"], s["vs_fine_tuned"]["behaviour_equivalent"]
                vs = s["vs_fine_tuned"]["selector_match"]
                print(f"{rule} | {run.parent.name} | {stratum}{' (in-sample)' if s['in_sample'] else ''} | {s['n']} "
                      f"| {s['from_retrieval']} | {s['behaviour']:.3f} | {s['fine_tuned']:.3f} | {s['retrieval']:.3f} "
                      f"| {vr['difference']:+.3f} [{vr['ci_low']:+.3f}, {vr['ci_high']:+.3f}] "
                      f"| {vf['difference']:+.3f} [{vf['ci_low']:+.3f}, {vf['ci_high']:+.3f}] "
                      f"| {s['selector_match']:.3f} ({vs['difference']:+.3f} [{vs['ci_low']:+.3f}, {vs['ci_high']:+.3f}]) "
                      f"| {s['getters_setters'][0]}/{s['getters_setters'][1]}")
                if a.out:
                    dest = a.out / run.parent.name / f"{stratum}-{rule}.parquet"
                    atomic_write_parquet(dest, gated)
    if a.json:
        print(f"wrote {atomic_write_json(a.json, result, indent=1)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
