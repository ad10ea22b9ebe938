"""The held-out evaluation of a training run: the same functions for the fine-tuned model, its checkpoints (the
learning curve) and every baseline, in two strata (issue 12).

- ``contract_heldout``: distinct functions of the test split (contracts never trained on), stratified by complexity,
  minus the held-out packages;
- ``package_heldout``: distinct functions of packages kept out of training entirely (``holdout_packages``), from
  every split: held-out is not out-of-distribution, and the gap between the strata is one of the study's findings.

Generation is batched and resumable (``infer.generate_to_file``): a killed evaluation goes on from where it stopped.
Layout under ``<output_dir>/eval/`` (what 06_compare and the HTML report read)::

    summary.json, functions.parquet            fine-tuned, contract-held-out
    baselines/<name>/                          each baseline on the same functions
    package_heldout/ (+ baselines/<name>/)     the same for the package-held-out stratum
    curve/step-<N>/                            a checkpoint on the curve functions (a fixed subset)
    curve-<stratum>/step-<N>/                  a checkpoint on a whole stratum (tools/score_checkpoints.py)
    selection.json                             which functions, per stratum, and what was left out
    generations/<stratum>/<system>.jsonl       generation files (the resume state)
"""
from __future__ import annotations

import collections
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .. import paths
from ..ioutil import atomic_write_json
from . import selection

STRATA = ("contract_heldout", "package_heldout")
# what identifies a function in a per-function table (functions.parquet) across builds: profile.LEVEL_KEY's part
# those tables hold (record ids hash the TAC, so two builds of one function differ in id)
TABLE_KEY = ["package", "contract", "selector", "settings"]


def table_key(row: Mapping[str, Any]) -> str:
    """A function's TABLE_KEY as one string (the id two builds' rows meet by)."""
    return "|".join(str(row[k]) for k in TABLE_KEY)


# Notebook 03's evaluation parameters (the rest of its parameters cell is tacsol.train.DEFAULTS; a test checks both).
DEFAULTS: dict[str, Any] = {
    "eval_functions": 24,          # distinct contract-held-out functions scored by every system (>= 300 for a claim)
    "eval_package_functions": 0,   # distinct functions of holdout_packages (the package-held-out stratum)
    "curve_functions": 0,          # the learning curve's fixed subset of eval_functions (0: no curve)
    "eval_batch_size": 8,
    "eval_compile": "stub",        # compile check: stub | original | auto | none
    "eval_behaviour": True,        # behavioural equivalence against the original bytecode (py-evm)
    "eval_prefill": "none",        # the fine-tuned model's header prefill (infer.PREFILL_MODES), curve included
    "eval_same_as": "",            # a finished run whose functions to score again (paired across TAC levels)
    "baselines": ["retrieval", "base_model", "sevm"],
}
SYSTEMS = ("retrieval", "base_model", "sevm", "panoramix")
# the systems as their evaluation folders are named (eval_dir): the fine-tuned model, then each baseline
# retrieval-gate: the fine-tuned model's and retrieval's answers, chosen per function (baselines.gated_table)
EVAL_SYSTEMS = ("fine-tuned", "retrieval-tfidf", "base_model", "sevm", "panoramix", "retrieval-gate")


def tuned_system(prefill: str = "none") -> str:
    """The fine-tuned model's system name for a header-prefill mode: its generation file and tables go by it."""
    return "fine-tuned" if prefill == "none" else f"fine-tuned-prefill-{prefill}"


def stratum_pool(dataset: Mapping[str, list[dict]], stratum: str, holdout_packages: Sequence[str]
                 ) -> tuple[list[dict], dict[str, Any]]:
    """The records a stratum draws its functions from, and what the draw left out: "contract_heldout" is the test
    split outside holdout_packages; "package_heldout" every split's records of holdout_packages whose near-duplicate
    group was never trained on (a held-out package vendors code of the trained ones: Chainlink ships OpenZeppelin's
    Ownable, ERC20...; such a function is not held out)."""
    from ..train import drop_packages, in_packages, trained_on

    if stratum == "contract_heldout":
        return drop_packages(dataset.get("test", []), holdout_packages)[0], {}
    if stratum != "package_heldout":
        raise ValueError(f"stratum {stratum!r}: choose from {list(STRATA)}")
    trained = {selection.group_of(r) for r in trained_on(dataset, holdout_packages)}
    pool = [r for s in ("train", "validation", "test") for r in dataset.get(s, []) if in_packages(r, holdout_packages)]
    unseen = [r for r in pool if selection.group_of(r) not in trained]
    return unseen, {"packages": list(holdout_packages), "records_seen_in_training": len(pool) - len(unseen)}


def choose_functions(dataset: Mapping[str, list[dict]], *, n: int, n_package: int, holdout_packages: Sequence[str],
                     n_curve: int, seed: int = 0, eligible: Callable[[Mapping[str, Any]], bool] | None = None
                     ) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """{stratum: records} (+ "curve": the first n_curve contract-held-out functions, stratified too) and the
    selection report."""
    chosen, report = {}, {}
    test, _ = stratum_pool(dataset, "contract_heldout", holdout_packages)
    chosen["contract_heldout"], report["contract_heldout"] = selection.select(test, n, seed=seed, eligible=eligible)
    if holdout_packages and n_package > 0:
        unseen, left_out = stratum_pool(dataset, "package_heldout", holdout_packages)
        chosen["package_heldout"], report["package_heldout"] = selection.select(unseen, n_package, seed=seed,
                                                                                eligible=eligible)
        report["package_heldout"].update(left_out)
    if n_curve > 0:
        chosen["curve"], report["curve"] = selection.select(chosen["contract_heldout"], n_curve, seed=seed + 1)
    return chosen, report


def same_functions(run_dir, records: Mapping[str, list[dict]]) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """The functions a finished run scored (its eval/selection.json, every list), found in `records` by
    ``profile.LEVEL_KEY``: the paired comparison of two runs whose datasets differ in TAC level only. A function
    the other build lacks (an exact duplicate of another contract's function at this level, which the build keeps
    once, or a lift error) is reported by id, never silently replaced."""
    from ..pairs import DatasetError
    from ..profile import LEVEL_KEY, complexity_bucket

    try:
        _, theirs = evaluated_records(run_dir)
        fields = LEVEL_KEY
    except DatasetError:   # their build is gone or rebuilt since: their per-function tables still name each one
        theirs, fields = scored_keys(run_dir), TABLE_KEY

    def function_key(rec: Mapping[str, Any]) -> tuple:
        return tuple(rec[k] for k in fields)

    by_key = {}
    for r in (r for split in records.values() for r in split):
        by_key.setdefault(function_key(r), r)   # the first of a key (TABLE_KEY may repeat where LEVEL_KEY does not)
    chosen: dict[str, list[dict]] = {}
    report: dict[str, Any] = {}
    for name, recs in theirs.items():
        chosen[name] = [by_key[function_key(r)] for r in recs if function_key(r) in by_key]
        missing = [r["id"] for r in recs if function_key(r) not in by_key]
        strata = collections.Counter(complexity_bucket(r) for r in chosen[name])
        report[name] = {"same_as": str(run_dir), "requested": len(recs), "selected": len(chosen[name]),
                        "missing": len(missing), "missing_ids": missing,
                        "strata": {b: {"selected": k} for b, k in sorted(strata.items())}}
    if not any(chosen.values()):
        raise ValueError(f"parameter 'eval_same_as': none of the functions {run_dir} scored is in this dataset")
    return chosen, report


def scored_keys(run_dir) -> dict[str, list[dict]]:
    """Per list of a finished run's eval/selection.json, each function as its TABLE_KEY fields, read from the run's
    per-function tables (for a run whose dataset is not on this machine)."""
    import pandas as pd

    run = paths.resolve(run_dir)
    ids = json.loads((run / "eval" / "selection.json").read_text())["ids"]
    tables = [eval_dir(run, s) / "functions.parquet" for s in ("contract_heldout", "package_heldout")]
    tables += sorted((run / "eval" / "curve").glob("*/functions.parquet"))
    rows: dict[str, dict] = {}
    for t in tables:
        if t.is_file():
            for r in pd.read_parquet(t, columns=["id", *TABLE_KEY]).to_dict("records"):
                rows.setdefault(r["id"], r)
    lost = sorted({i for chosen in ids.values() for i in chosen} - set(rows))
    if lost:
        raise ValueError(f"parameter 'eval_same_as': {run}: {len(lost)} scored functions are in no per-function "
                         f"table (first: {lost[0]})")
    return {name: [rows[i] for i in chosen] for name, chosen in ids.items()}


def fits(tokenizer, max_tokens: int) -> Callable[[Mapping[str, Any]], bool]:
    """Eligibility: prompt + target within max_tokens (the rule training used to keep an example)."""
    from .. import prompt

    def ok(rec: Mapping[str, Any]) -> bool:
        return prompt.tokenize_example(dict(rec), tokenizer, max_tokens) is not None

    return ok


def is_curve(stratum: str) -> bool:
    """A learning-curve folder: "curve" (the fixed subset) or "curve-<stratum>" (every function of a stratum)."""
    return stratum == "curve" or stratum.startswith("curve-")


def eval_dir(output_dir, stratum: str, system: str | None = None) -> Path:
    base = paths.resolve(output_dir) / "eval"
    if is_curve(stratum):
        return base / stratum / (system or "")
    if stratum != "contract_heldout":
        base = base / stratum
    return base if system in (None, "fine-tuned") else base / "baselines" / system


def scored_systems(output_dir, stratum: str = "contract_heldout") -> list[str]:
    """The systems a run's evaluation scored on `stratum` (a summary.json in their eval_dir): "fine-tuned" first,
    then the baselines and other decodings by name."""
    base = eval_dir(output_dir, stratum)
    found = ["fine-tuned"] if (base / "summary.json").is_file() else []
    if not is_curve(stratum):
        found += sorted(d.name for d in (base / "baselines").glob("*") if (d / "summary.json").is_file())
    return found


def generations_path(output_dir, stratum: str, system: str) -> Path:
    return paths.resolve(output_dir) / "eval" / "generations" / stratum / f"{system}.jsonl"


def score(records: list[dict], gens, output_dir, stratum: str, system: str, *, extra: dict | None = None,
          **eval_kw) -> dict:
    from . import evaluate_run

    return evaluate_run(records, gens, output_dir, system=system, eval_dir=eval_dir(output_dir, stratum, system),
                        extra={"stratum": stratum, **(extra or {})}, **eval_kw)


def model_generations(model, tok, records, output_dir, stratum: str, system: str, *, max_new_tokens: int,
                      batch_size: int, progress: bool = True, prefill: str = "none"
                      ) -> tuple[dict[str, str], dict[str, float]]:
    from .. import infer

    t0 = time.perf_counter()
    # generations of another decoding are kept apart: a resumed run must not mix them
    path = generations_path(output_dir, stratum, system if prefill == "none" else f"{system}-prefill-{prefill}")
    gens = infer.generate_to_file(model, tok, records, path, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  progress=progress, desc=f"{stratum}/{system}", prefill=prefill)
    rows = infer.read_done(path)
    gen_s = sum(float(rows[str(r["id"])].get("seconds", 0.0)) for r in records if str(r["id"]) in rows)
    return gens, {"generate_s": gen_s, "wall_s": time.perf_counter() - t0,
                  "seconds_per_function": gen_s / len(records) if records else None}


def checkpoint_tokens(train_log: Mapping[str, Any], step: int) -> int:
    """Training tokens seen by optimizer step `step`: the run's total at its last step (the steps after the last
    logging interval are in no curve point), else the logged curve's tokens per logging interval up to `step`."""
    if train_log.get("steps") and step >= train_log["steps"] and train_log.get("train_tokens"):
        return int(train_log["train_tokens"])
    return int(sum(c.get("tokens") or 0 for c in train_log.get("curve", []) if c["step"] <= step))


def checkpoints(run_dir) -> list[tuple[int, Path]]:
    ck = paths.resolve(run_dir) / "checkpoints"
    out = [(int(d.name.split("-")[-1]), d) for d in ck.glob("checkpoint-*")
           if d.name.split("-")[-1].isdigit() and (d / "adapter_config.json").is_file()]
    return sorted(out)


def learning_curve(output_dir, records: list[dict], *, base_model: str, tokenizer_dir, max_new_tokens: int,
                   batch_size: int, known: Mapping[int, Mapping[str, str]] | None = None, progress: bool = True,
                   prefill: str = "none", stratum: str = "curve", steps: Sequence[int] | None = None,
                   **eval_kw) -> list[dict]:
    """Every saved checkpoint (and the final adapter) generates on the same `records`; one point per checkpoint:
    training tokens seen, similarity, selector match, compile rate, degenerate rate. ``known``: generations that
    already exist for a step (0 = the untuned model's, the final step = the fine-tuned model's), reused as they are
    when they cover every record. prefill: the checkpoints' decoding (infer.PREFILL_MODES), as the final model's.
    stratum: the folder under eval/ ("curve", or "curve-<stratum>" for a curve over a whole stratum). steps: only
    these checkpoints' points (None: every one; the final step is always scored)."""
    if not is_curve(stratum):
        raise ValueError(f"learning_curve: stratum {stratum!r} is not a curve folder ('curve' or 'curve-<name>')")
    from .. import infer

    out = paths.resolve(output_dir)
    log = json.loads((out / "train_log.json").read_text())
    points = []
    final = int(log["steps"])
    chosen = [(0, None)] + checkpoints(out) + [(final, out / "adapter")]
    if steps is not None:
        keep = set(steps) | {final}
        chosen = [(k, f) for k, f in chosen if k in keep]
    seen = set()
    for step, folder in chosen:
        if step in seen:
            continue
        seen.add(step)
        system = f"step-{step}"
        have = (known or {}).get(step) or {}
        if all(str(r["id"]) in have for r in records):
            gens, timing = {str(r["id"]): have[str(r["id"])] for r in records}, {"reused": True}
        elif folder is None:
            continue  # no untuned generations to reuse: the curve starts at the first checkpoint
        else:
            model, tok = infer.load(folder, base=base_model, tokenizer_dir=tokenizer_dir)
            gens, timing = model_generations(model, tok, records, out, stratum, system, prefill=prefill,
                                             max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
            del model
        s = score(records, gens, out, stratum, system, extra={"step": step, "generation": timing}, **eval_kw)
        m = s["metrics"]
        points.append({"step": step, "train_tokens": checkpoint_tokens(log, step), **{
            k: m.get(k) for k in ("n_functions", "similarity_mean", "similarity_ci_low", "similarity_ci_high",
                                  "selector_match_rate", "compile_rate", "degenerate_rate", "grounding_recall",
                                  "edit_distance_mean", "behaviour_rate", "behaviour_ci_low", "behaviour_ci_high")}})
    # the untuned model is the curve's origin (0 tokens); read from the base_model baseline when it ran
    atomic_write_json(out / "eval" / stratum / "curve.json", points)
    return points


def run_baselines(names: Sequence[str], stratum: str, records: list[dict], train_records: list[dict], output_dir,
                  *, peft_model=None, tok=None, max_new_tokens: int = 256, batch_size: int = 8,
                  panoramix_timeout_s: float = 30.0, progress: bool = True, **eval_kw) -> dict[str, str]:
    """Each baseline on the same records; {name: "ran in N s" | "skipped: reason"} (a baseline that cannot run is
    listed with its reason, never faked)."""
    from .. import baselines as bl

    status: dict[str, str] = {}
    unknown = set(names) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"parameter 'baselines': unknown {sorted(unknown)} (choose from {list(SYSTEMS)})")
    for name in names:
        t0 = time.perf_counter()
        try:
            if name == "retrieval":
                rows = bl.retrieve(train_records, records)
                score(records, {r["id"]: r["generated"] for r in rows}, output_dir, stratum, "retrieval-tfidf",
                      extra={"baseline": {"kind": "retrieval", "method": "tfidf", "n_train": len(train_records)}},
                      columns=bl.retrieval_columns(rows), **eval_kw)
            elif name == "base_model":
                if peft_model is None:
                    raise RuntimeError("no model given")
                with peft_model.disable_adapter():  # the untuned weights, same tokenizer and prompt
                    gens, timing = model_generations(peft_model, tok, records, output_dir, stratum, "base-model",
                                                     max_new_tokens=max_new_tokens, batch_size=batch_size,
                                                     progress=progress)
                score(records, gens, output_dir, stratum, "base_model",
                      extra={"baseline": {"kind": "base_model"}, "generation": timing}, **eval_kw)
            else:
                if name == "panoramix":
                    bl.ensure_panoramix_venv()  # its pip install took 367 s on 2 cores
                code_of, why = bl.bytecode_from_cache(records)
                if not code_of:
                    raise RuntimeError("no runtime bytecode for any function: " + "; ".join(sorted(set(why.values())))[:300])
                gens, runs = bl.decompile_records(name, records, code_of, progress=progress,
                                                  timeout_s=panoramix_timeout_s if name == "panoramix" else 60.0)
                score(records, gens, output_dir, stratum, name,
                      extra={"baseline": {"kind": "decompiler", "tool": name, "contracts": len(runs),
                                          "no_bytecode": len(why)}}, **eval_kw)
            status[name] = f"ran in {time.perf_counter() - t0:.0f} s"
        except Exception as exc:  # recorded as skipped with the reason; the evaluation goes on
            status[name] = f"skipped: {type(exc).__name__}: {str(exc)[:300]}"
    return status


def score_gate(output_dir, stratum: str, records: list[dict], train_records: list[dict], *,
               tuned: str = "fine-tuned", figures: bool = True) -> dict | None:
    """The guarded retrieval gate at baselines.GATE_TAU (`tacsol decompile --retrieval-gate`), scored from the answers
    the fine-tuned model and retrieval already have in this stratum (nothing is generated or checked again) and
    written as system baselines.GATE_SYSTEM; None when either table is missing."""
    import pandas as pd

    from .. import baselines as bl
    from . import write_evaluation

    tables = [eval_dir(output_dir, stratum, name) for name in (tuned, "retrieval-tfidf")]
    if not all((t / "functions.parquet").is_file() and (t / "summary.json").is_file() for t in tables):
        return None
    ft, rt = (pd.read_parquet(t / "functions.parquet") for t in tables)
    cosines = bl.table_cosines(rt) or {r["id"]: r["tac_similarity"] for r in bl.retrieve(train_records, records)}
    df = bl.gated_table(ft, rt, cosines, bl.GATE_TAU, "guarded")
    tuned_summary = json.loads((tables[0] / "summary.json").read_text())
    return write_evaluation(df, eval_dir(output_dir, stratum, bl.GATE_SYSTEM), system=bl.GATE_SYSTEM,
                            embedder=tuned_summary.get("embedder") or {}, floor=tuned_summary.get("floor_ceiling") or {},
                            figures=figures, extra={"stratum": stratum, "gate": {
                                "tau": bl.GATE_TAU, "rule": "guarded", "tuned_system": tuned,
                                "from_retrieval": int((df["gate_source"] == "retrieval").sum())}})


def summary_table(output_dir, strata: Sequence[str] = STRATA) -> list[dict]:
    """One row per (stratum, system) with the headline metrics and their intervals, read back from eval/."""
    rows = []
    keys = ("n_functions", "n_distinct", "similarity_mean", "similarity_ci_low", "similarity_ci_high",
            "selector_match_rate", "selector_match_ci_low", "selector_match_ci_high", "compile_rate",
            "compile_ci_low", "compile_ci_high", "compile_rate_where_reference_compiles",
            "n_where_reference_compiles", "grounding_precision", "grounding_recall", "degenerate_rate",
            "edit_distance_mean", "similarity_floor", "similarity_ceiling", "failures", "behaviour_rate",
            "behaviour_ci_low", "behaviour_ci_high", "behaviour_rate_testable", "behaviour_untestable")
    for stratum in strata:
        for name in EVAL_SYSTEMS:
            p = eval_dir(output_dir, stratum, name) / "summary.json"
            if p.is_file():
                m = json.loads(p.read_text())["metrics"]
                rows.append({"stratum": stratum, "system": name, **{k: m.get(k) for k in keys}})
    return rows


def eval_kwargs(p: Mapping[str, Any], harness=None) -> dict[str, Any]:
    """evaluate_run's checks as the evaluation parameters `p` set them (eval_compile, eval_behaviour); pass one
    behaviour.Harness to every call of a run so that each original unit is compiled once."""
    compile_check = p["eval_compile"] != "none"
    return {"compile_check": compile_check, "compile_mode": p["eval_compile"] if compile_check else "stub",
            "behaviour": bool(p.get("eval_behaviour", True)), "harness": harness}


def evaluated_records(run_dir, params_file=None) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """A finished 03 run's parameters (:func:`run_params`) and, per list of its eval/selection.json (contract_heldout,
    package_heldout, curve), the records it scored, prompts as the run was trained with (train.run_records)."""
    from ..train import run_records

    p = run_params(run_dir, params_file)
    return p, scored_records(run_dir, run_records(p))


def run_params(run_dir, params_file=None) -> dict[str, Any]:
    """A finished 03 run's parameters: the training and evaluation defaults, then `params_file`'s keys, then the
    run's own params.yaml, which holds its training keys (a key added to the kit after the run takes its default,
    which is what the run did)."""
    import yaml

    from ..train import DEFAULTS as TRAIN_DEFAULTS

    return {**TRAIN_DEFAULTS, **DEFAULTS,
            **(yaml.safe_load(paths.resolve(params_file).read_text()) if params_file else {}),
            **yaml.safe_load((paths.resolve(run_dir) / "params.yaml").read_text())}


def scored_records(run_dir, recs: Mapping[str, list[dict]]) -> dict[str, list[dict]]:
    """Per list of a run's eval/selection.json, its records among the splits `recs` (train.run_records of the
    run's parameters); a scored id missing from them is an error naming it."""
    by_id = {r["id"]: r for s in recs.values() for r in s}
    path = paths.resolve(run_dir) / "eval" / "selection.json"
    ids = json.loads(path.read_text())["ids"]
    missing = [(name, i) for name, chosen in ids.items() for i in chosen if i not in by_id]
    if missing:   # a DatasetError: the dataset the run was scored on is not there as it was
        from ..pairs import DatasetError

        raise DatasetError(f"{path}: {len(missing)} scored function(s) not in the run's dataset, the first "
                           f"{missing[0][1]!r} (list {missing[0][0]!r}): the dataset changed since the evaluation")
    return {name: [by_id[i] for i in chosen] for name, chosen in ids.items()}


def run_all(p: Mapping[str, Any], records: Mapping[str, list[dict]], peft_model, tok, *, progress: bool = True
            ) -> dict[str, Any]:
    """Notebook 03's evaluation in one call: choose the functions, generate with the fine-tuned model, score it and
    every baseline per stratum, then the learning curve over the checkpoints. Returns what the notebook draws."""
    from . import behaviour

    from ..infer import PREFILL_MODES

    if p["eval_prefill"] not in PREFILL_MODES:
        raise ValueError(f"parameter 'eval_prefill': {p['eval_prefill']!r} (choose from {list(PREFILL_MODES)})")
    eval_kw = dict(figures=True, **eval_kwargs(p, behaviour.Harness()))
    tuned = tuned_system(p["eval_prefill"])
    peft_model.eval()
    if p.get("eval_same_as"):
        chosen, report = same_functions(p["eval_same_as"], records)
    else:
        chosen, report = choose_functions(records, n=p["eval_functions"], n_package=p["eval_package_functions"],
                                          holdout_packages=p["holdout_packages"], n_curve=p["curve_functions"],
                                          seed=p["seed"], eligible=fits(tok, p["max_seq_length"]))
    out = paths.resolve(p["output_dir"])
    atomic_write_json(out / "eval" / "selection.json",
                      {"report": report, "ids": {k: [r["id"] for r in v] for k, v in chosen.items()}})
    from ..train import trained_on

    train_recs = trained_on(records, p["holdout_packages"])
    result: dict[str, Any] = {"selection": report, "status": {}, "summaries": {}}
    for stratum in STRATA:
        recs = chosen.get(stratum) or []
        if not recs:
            continue
        gens, timing = model_generations(peft_model, tok, recs, out, stratum, "fine-tuned",
                                         max_new_tokens=p["max_new_tokens"], batch_size=p["eval_batch_size"],
                                         progress=progress, prefill=p["eval_prefill"])
        result["summaries"][stratum] = score(recs, gens, out, stratum, "fine-tuned",
                                             extra={"generation": timing}, **eval_kw)
        result["status"][stratum] = run_baselines(p["baselines"], stratum, recs, train_recs, out,
                                                  peft_model=peft_model, tok=tok,
                                                  max_new_tokens=p["max_new_tokens"],
                                                  batch_size=p["eval_batch_size"], progress=progress, **eval_kw)
        if "retrieval" in p["baselines"]:
            t0 = time.perf_counter()
            gated = score_gate(out, stratum, recs, train_recs, tuned=tuned, figures=eval_kw.get("figures", True))
            result["status"][stratum]["retrieval-gate"] = "skipped: no fine-tuned or retrieval table" \
                if gated is None else f"ran in {time.perf_counter() - t0:.0f} s"
    if chosen.get("curve"):
        from .. import infer

        final = json.loads((out / "train_log.json").read_text())["steps"]
        known = {0: {k: v["generated"] for k, v in infer.read_done(
                     generations_path(out, "contract_heldout", "base-model")).items()},
                 final: {k: v["generated"] for k, v in infer.read_done(
                     generations_path(out, "contract_heldout", tuned)).items()}}
        result["curve"] = learning_curve(out, chosen["curve"], base_model=p["model"], tokenizer_dir=out / "adapter",
                                         max_new_tokens=p["max_new_tokens"], batch_size=p["eval_batch_size"],
                                         known=known, progress=progress, prefill=p["eval_prefill"],
                                         **{**eval_kw, "figures": False})
    result["table"] = summary_table(out)
    return result


def by_kind(output_dir, strata: Sequence[str] = STRATA) -> list[dict]:
    """Per (stratum, system, function kind: getter | setter | other): n, similarity, selector match, compile rate
    where the reference compiles, degenerate rate and, where the behaviour check ran, the share behaviourally
    equivalent (untestable counts as not equivalent) with its CI — read back from the per-function tables."""
    from .kinds import table_kinds

    return _split(output_dir, strata, "kind", table_kinds)


def by_hint(output_dir, strata: Sequence[str] = STRATA, hints: Mapping[str, str] | None = None) -> list[dict]:
    """The same figures per (stratum, system, whether the prompt named the function: "named" | "unnamed"), from
    the tables' signature_hint column, or `hints` (record id -> hint) for tables written before it."""
    def named(df):
        col = df["id"].map(hints) if hints is not None else df.get("signature_hint")
        if col is None:
            raise ValueError(f"{output_dir}: the tables have no signature_hint column; pass hints")
        return col.fillna("").map(lambda h: "named" if h else "unnamed")

    return _split(output_dir, strata, "hint", named)


def _split(output_dir, strata: Sequence[str], key: str, label) -> list[dict]:
    import pandas as pd

    from .aggregate import bootstrap_ci

    rows = []
    for stratum in strata:
        for name in EVAL_SYSTEMS:
            p = eval_dir(output_dir, stratum, name) / "functions.parquet"
            if not p.is_file():
                continue
            df = pd.read_parquet(p)
            df[key] = label(df)
            for value, sub in df.groupby(key):
                sel = sub["selector_match"].astype(float)
                both = sub[sub["ref_compiles"] == True]  # noqa: E712  (column may hold None)
                rows.append({"stratum": stratum, "system": name, key: value, "n": int(len(sub)),
                             "similarity_mean": float(sub["similarity"].mean()),
                             "selector_match_rate": float(sel.mean()),
                             "selector_match_ci": list(bootstrap_ci(sel.to_numpy(), "mean", 1000, 3)),
                             "compile_rate_where_reference_compiles":
                                 float(both["compiles"].astype(float).mean()) if len(both) else None,
                             "degenerate_rate": float((sub["degenerate"] != "").mean()),
                             **_behaviour_by_kind(sub)})
    return rows


def _behaviour_by_kind(sub) -> dict:
    if "behaviour" not in sub or (sub["behaviour"] == "skipped").all():  # the check did not run: no figure
        return {}
    from .aggregate import bootstrap_ci

    eq = (sub["behaviour"] == "equivalent").astype(float).to_numpy()
    return {"behaviour_rate": float(eq.mean()), "behaviour_ci": list(bootstrap_ci(eq, "mean", 1000, 3)),
            "behaviour_testable": int((sub["behaviour"] != "untestable").sum())}
