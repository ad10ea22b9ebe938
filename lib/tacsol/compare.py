"""Collect run folders (outputs/<run>/<NN_stem>/summary.json, eval/…) into tables for 06_compare.

Reads only files, so runs made on a GPU cluster can be copied into outputs/ and compared with local ones. What the
paper and the recommendations expected beside these tables: :func:`tacsol.claims.expected_vs_measured`."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import paths

TRAINING_PHASES = ("03", "04", "05")

# The flat metrics of an evaluation summary (tacsol.evaluate: summary.json "metrics") shown per system.
EVAL_METRICS = ("similarity_mean", "similarity_ci_low", "similarity_ci_high", "similarity_median", "share_sim_gt_0_8",
                "edit_distance_mean", "share_edit_lt_0_4", "compile_rate", "selector_match_rate", "behaviour_rate",
                "behaviour_ci_low", "behaviour_ci_high", "grounding_precision", "grounding_recall", "n_functions",
                "failures", "similarity_floor", "similarity_ceiling")


@dataclass
class Phase:
    run: str
    stem: str
    path: Path
    summary: dict[str, Any]
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)  # system name -> eval summary

    @property
    def number(self) -> str:
        return self.stem.split("_", 1)[0]

    @property
    def headline(self) -> dict[str, Any]:
        return self.summary.get("headline") or {}


def _read_json(p: Path) -> dict[str, Any] | None:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _is_run_dir(d: Path) -> bool:
    return d.is_dir() and any((c / "summary.json").exists() for c in d.glob("[0-9][0-9]_*"))


def discover(root: str | Path = "outputs", runs: Iterable[str] | None = None, *,
             evidence: str | Path | None = None) -> list[Phase]:
    """Every phase folder with a summary.json under root (root itself or its subfolders are run folders), plus the
    committed runs under `evidence` (docs/evidence: the CPU reference run) whose name root does not already hold."""
    phases = _discover(root, runs)
    if evidence is not None and paths.resolve(evidence).is_dir():
        have = {p.run for p in phases}
        phases += [p for p in _discover(evidence, None) if p.run not in have]
    return phases


def _discover(root: str | Path, runs: Iterable[str] | None) -> list[Phase]:
    from .evaluate.suite import eval_dir, scored_systems

    root = paths.resolve(root)
    wanted = set(runs or [])
    run_dirs = [root] if _is_run_dir(root) else sorted(d for d in root.iterdir() if _is_run_dir(d)) if root.is_dir() else []
    phases = []
    for run_dir in run_dirs:
        if wanted and run_dir.name not in wanted:
            continue
        for ph in sorted(run_dir.glob("[0-9][0-9]_*")):
            summ = _read_json(ph / "summary.json")
            if summ is None:
                continue
            phase = Phase(run=run_dir.name, stem=ph.name, path=ph, summary=summ)
            for system in scored_systems(ph):
                ev = _read_json(eval_dir(ph, "contract_heldout", system) / "summary.json")
                if ev is not None:
                    phase.evals[system] = ev
            phases.append(phase)
    return phases


def _gpu_label(hw: dict[str, Any]) -> str:
    gpus = hw.get("gpus") or []
    if gpus:
        return f"{len(gpus)}× {gpus[0].get('name', 'GPU')}"
    return f"CPU ({hw.get('cpu_cores', '?')} cores)"


def runs_table(phases: list[Phase]):
    """One row per training phase: what ran, where, at what cost."""
    import pandas as pd

    rows = []
    for ph in phases:
        if ph.number not in TRAINING_PHASES:
            continue
        h, p = ph.headline, ph.summary.get("params") or {}
        rows.append({
            "run": ph.run,
            "phase": ph.stem,
            "kind": "smoke" if ph.summary.get("smoke") else "full",
            "model": h.get("model") or p.get("model") or p.get("model_name"),
            "params_total": h.get("params_total"),
            "max_seq_length": h.get("max_seq_length") or p.get("max_seq_length"),
            "quantization": h.get("quantization") or p.get("quantization"),
            "hardware": _gpu_label(ph.summary.get("hardware") or {}),
            "n_processes": h.get("n_processes", 1),
            "train_tokens": h.get("train_tokens"),
            "tokens_per_s": h.get("tokens_per_s"),
            "s_per_step": h.get("s_per_step"),
            "peak_memory_gb": h.get("peak_memory_gb"),
            "estimated_memory_gb": h.get("estimated_memory_gb"),
            "wall_hours": h.get("wall_hours"),
            "gpu_hours": h.get("gpu_hours"),
            "heldout_loss_before": h.get("heldout_loss_before"),
            "heldout_loss_after": h.get("heldout_loss_after"),
        })
    return pd.DataFrame(rows)


def eval_table(phases: list[Phase]):
    """One row per (run, phase, system): the fine-tuned model and every baseline evaluated on the same split."""
    import pandas as pd

    rows = []
    for ph in phases:
        for system, ev in ph.evals.items():
            row = {"run": ph.run, "phase": ph.stem, "system": system,
                   "kind": "smoke" if ph.summary.get("smoke") else "full",
                   "model": ph.headline.get("model"), "params_total": ph.headline.get("params_total"),
                   "max_seq_length": ph.headline.get("max_seq_length"), "gpu_hours": ph.headline.get("gpu_hours")}
            row.update({k: ev["metrics"].get(k) for k in EVAL_METRICS})
            rows.append(row)
    return pd.DataFrame(rows)


def per_function(phases: list[Phase]):
    """The per-function tables tacsol.evaluate writes (eval/functions.parquet, eval/baselines/<name>/...) stacked
    with run/phase/system columns and a ``label`` (run/NN system)."""
    import pandas as pd

    frames = []
    from .evaluate.suite import eval_dir

    for ph in phases:
        for system in ph.evals:
            table = eval_dir(ph.path, "contract_heldout", system) / "functions.parquet"
            if table.is_file():
                frames.append(pd.read_parquet(table).assign(run=ph.run, phase=ph.stem, system=system,
                                                            label=f"{ph.run}/{ph.number} {system}"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def by_complexity(per_fn) -> dict[str, Any]:
    """06's heatmaps, system label × complexity bucket (the ``complexity`` column tacsol.evaluate writes): the mean
    ``similarity`` and, where behaviour was checked, the ``behaviour`` match rate (equivalent share; untestable counts
    as not shown, skipped functions are left out). Empty when no per-function table was found."""
    if not len(per_fn):
        return {}
    out = {"similarity": per_fn.pivot_table(index="label", columns="complexity", values="similarity", aggfunc="mean")}
    if "behaviour" not in per_fn:  # the committed reference run predates the behaviour check
        return out
    tested = per_fn[per_fn["behaviour"].fillna("skipped") != "skipped"]
    if len(tested):
        out["behaviour"] = tested.assign(equivalent=tested["behaviour"] == "equivalent").pivot_table(
            index="label", columns="complexity", values="equivalent", aggfunc="mean")
    return out


# Per-function outcomes a paired comparison reads from the tables (1.0 = the good outcome, except degenerate)
PAIRED_METRICS = {
    "behaviour_equivalent": lambda df: (df["behaviour"] == "equivalent").astype(float),
    "selector_match": lambda df: df["selector_match"].astype(float),
    "degenerate": lambda df: (df["degenerate"] != "").astype(float),
    "similarity": lambda df: df["similarity"].astype(float),
}


def paired(a, b, metrics=tuple(PAIRED_METRICS), n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Two systems' per-function tables (what tacsol.evaluate writes) compared on the functions both scored, one
    row per metric: the means, the mean paired difference b - a with its bootstrap 95% CI, and how many functions
    each side wins. Paired, so that two runs scored on the same functions are told apart by their disagreements and
    not by two overlapping marginal intervals."""
    import numpy as np

    from .evaluate.aggregate import bootstrap_ci

    common = sorted(set(a["id"]) & set(b["id"]))
    if not common:
        raise ValueError("the two tables share no function id")
    a, b = a.set_index("id").loc[common].reset_index(), b.set_index("id").loc[common].reset_index()
    rows = []
    for name in metrics:
        x, y = PAIRED_METRICS[name](a).to_numpy(), PAIRED_METRICS[name](b).to_numpy()
        d = y - x
        lo, hi = bootstrap_ci(d, "mean", n_boot, seed)
        rows.append({"metric": name, "n": len(common), "a": float(np.mean(x)), "b": float(np.mean(y)),
                     "difference": float(np.mean(d)), "ci_low": lo, "ci_high": hi,
                     "b_higher": int((d > 0).sum()), "a_higher": int((d < 0).sum())})
    return rows


def paired_grounding(a, b, n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Grounding recall and precision (tacsol.evaluate.aggregate.grounding: effects the output shows against effects
    the TAC shows, micro over the GROUNDED categories) of two per-function tables on the functions both scored, as
    `paired` reports a metric: b - a with a bootstrap 95% CI that resamples functions (both ratios recomputed on each
    resample, since a micro ratio is no mean of per-function values), and how many functions each side wins (more
    true effects for recall, fewer false ones for precision)."""
    import numpy as np

    from .evaluate.aggregate import GROUNDED

    common = sorted(set(a["id"]) & set(b["id"]))
    if not common:
        raise ValueError("the two tables share no function id")

    def counts(df):
        df = df.set_index("id").loc[common]
        t = np.stack([df[f"tac_{c}"].to_numpy() > 0 for c in GROUNDED])
        o = np.stack([df[f"out_{c}"].to_numpy() > 0 for c in GROUNDED])
        return (t & o).sum(0), (t & ~o).sum(0), (~t & o).sum(0)   # per function: tp, fn, fp

    (tp_a, fn_a, fp_a), (tp_b, fn_b, fp_b) = counts(a), counts(b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(common), size=(n_boot, len(common)))

    def ratio(num, den, rows=None):
        n, d = (num.sum(), den.sum()) if rows is None else (num[rows].sum(1), den[rows].sum(1))
        return np.where(d > 0, n / np.maximum(d, 1), np.nan)

    out = []
    for name, (xa, da, xb, db, wins_b, wins_a) in {
            "grounding_recall": (tp_a, tp_a + fn_a, tp_b, tp_b + fn_b, tp_b > tp_a, tp_a > tp_b),
            "grounding_precision": (tp_a, tp_a + fp_a, tp_b, tp_b + fp_b, fp_b < fp_a, fp_a < fp_b)}.items():
        diffs = ratio(xb, db, idx) - ratio(xa, da, idx)
        diffs = diffs[~np.isnan(diffs)]
        va, vb = float(ratio(xa, da)), float(ratio(xb, db))
        out.append({"metric": name, "n": len(common), "a": va, "b": vb, "difference": vb - va,
                    "ci_low": float(np.percentile(diffs, 2.5)) if len(diffs) else float("nan"),
                    "ci_high": float(np.percentile(diffs, 97.5)) if len(diffs) else float("nan"),
                    "b_higher": int(wins_b.sum()), "a_higher": int(wins_a.sum())})
    return out


def paired_against_baselines(per_fn, metric: str = "behaviour_equivalent"):
    """06's paired table: per (run, phase), the fine-tuned model against each baseline on the functions both scored
    (`paired`, one metric). Empty where the tables lack the metric's column (evidence older than the check)."""
    import pandas as pd

    need = {"behaviour_equivalent": "behaviour", "degenerate": "degenerate", "selector_match": "selector_match",
            "similarity": "similarity"}[metric]
    rows = []
    if not len(per_fn) or need not in per_fn:
        return pd.DataFrame(rows)
    for (run, phase), g in per_fn.groupby(["run", "phase"]):
        tuned = g[g["system"] == "fine-tuned"]
        if not len(tuned) or tuned[need].isna().all():
            continue
        for system, other in g[g["system"] != "fine-tuned"].groupby("system"):
            if other[need].isna().all() or not set(other["id"]) & set(tuned["id"]):
                continue
            r = paired(other, tuned, metrics=(metric,))[0]
            rows.append({"run": run, "phase": phase, "baseline": system, "metric": metric, "n": r["n"],
                         "fine_tuned": r["b"], "baseline_value": r["a"], "difference": r["difference"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "fine_tuned_higher": r["b_higher"],
                         "baseline_higher": r["a_higher"]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- every reference run at a glance
# docs/reference-run.md's first table and 06's "every reference run" section: per 03 run and stratum, read from the
# run's own evidence, with a letter per set of scored functions so that only runs on the same functions are read
# side by side (tools/runs_table.py prints it).
REFERENCE_STRATA = ("contract_heldout", "package_heldout")


def find_reference_runs(evidence: str | Path = "docs/evidence") -> list[Path]:
    """Phase folders of 03 runs under `evidence` that hold an evaluation (a partial one, without the phase's
    summary.json, included)."""
    return sorted(p.parent.parent for p in paths.resolve(evidence).glob("*/03_*/eval/summary.json"))


def _params(run: Path) -> dict[str, Any]:
    import yaml

    path = run / "params.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def _tac_level(run: Path) -> int | None:
    for p in (run / "trained" / "adapter" / "tacsol_train.json", run / "adapter" / "tacsol_train.json"):
        if p.is_file():
            return (_read_json(p) or {}).get("tac_level")
    return None


def _selection_key(run: Path, stratum: str) -> str | None:
    """A short hash of the stratum's selected record ids (eval/selection.json)."""
    ids = ((_read_json(run / "eval" / "selection.json") or {}).get("ids") or {}).get(stratum)
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:12] if ids else None


def _getters_setters(table: Path) -> tuple[int, int] | None:
    """(equivalent, n) over the getters and setters of a per-function table."""
    import pandas as pd

    from .evaluate.kinds import table_kinds

    if not table.is_file():
        return None
    df = pd.read_parquet(table)
    if "behaviour" not in df.columns:   # scored before the behaviour metric existed
        return None
    kinds = table_kinds(df)
    mask = [k in ("getter", "setter") for k in kinds]
    sub = df[mask]
    return int((sub["behaviour"] == "equivalent").sum()), len(sub)


def reference_rows(run: Path) -> list[dict]:
    """One row per stratum a finished (or partly evaluated) 03 run scored: what `reference_markdown` prints."""
    from .evaluate.suite import eval_dir

    params, log = _params(run), _read_json(run / "train_log.json") or {}
    common = {"run": run.parent.name, "path": str(run), "dataset": params.get("dataset"), "tac_level": _tac_level(run),
              "max_seq_length": log.get("max_seq_length") or params.get("max_seq_length"),
              "train_tokens": log.get("train_tokens"), "heldout_loss_after": log.get("heldout_loss_after"),
              "retrieval_prompts": bool(params.get("retrieval_prompts")), "smoke": bool(params.get("smoke"))}
    rows = []
    for stratum in REFERENCE_STRATA:
        tuned = (_read_json(eval_dir(run, stratum) / "summary.json") or {}).get("metrics")
        if not tuned:
            continue
        retrieval = (_read_json(eval_dir(run, stratum, "retrieval-tfidf") / "summary.json") or {}).get("metrics") or {}
        gs = _getters_setters(eval_dir(run, stratum) / "functions.parquet")
        rows.append({**common, "stratum": stratum, "selection": _selection_key(run, stratum),
                     "n": tuned.get("n_distinct") or tuned.get("n_functions"),
                     "behaviour": tuned.get("behaviour_rate"),
                     "behaviour_ci": [tuned.get("behaviour_ci_low"), tuned.get("behaviour_ci_high")],
                     "retrieval_behaviour": retrieval.get("behaviour_rate"),
                     "selector_match": tuned.get("selector_match_rate"), "similarity": tuned.get("similarity_mean"),
                     "degenerate": tuned.get("degenerate_rate"), "getters_setters": list(gs) if gs else None})
    return rows


def label_selections(rows: list[dict]) -> None:
    """A letter per selection hash (`set`), in order of first appearance."""
    letters: dict[str, str] = {}
    for r in rows:
        key = r["selection"]
        if key is not None and key not in letters:
            letters[key] = chr(ord("A") + len(letters)) if len(letters) < 26 else key
        r["set"] = letters.get(key, "?")


def reference_runs(run_dirs: Iterable[str | Path]) -> list[dict]:
    """reference_rows of every run, by stratum then run name, with their selection letters."""
    rows = [r for run in run_dirs for r in reference_rows(Path(run))]
    rows.sort(key=lambda r: (REFERENCE_STRATA.index(r["stratum"]), r["run"]))
    label_selections(rows)
    return rows


# the latest scoring of every published run by the current behaviour harness, under the evidence root
# (docs/reference-run.md, "Behaviour scored again: binding by use, no delegation" and the rescorings after it)
RESCORING = Path("behaviour") / "locations_2026-12-07" / "index.json"


def rescoring(evidence_root: str | Path) -> dict | None:
    """The latest rescoring's index under `evidence_root` (RESCORING), or None where it has none."""
    return _read_json(Path(evidence_root) / RESCORING)


def with_rescoring(rows: list[dict], index: dict) -> list[dict]:
    """The rows with the current behaviour harness's verdicts on the same functions beside the published ones: a
    rescoring folder's index.json (docs/evidence/behaviour/<date>/index.json, written with
    tools/behaviour_of_eval.py: runs -> stratum -> system -> {n, equivalent, rate, ci, getters_and_setters}).
    A published figure keeps the harness its run was scored with; this one is what every new evaluation uses."""
    for r in rows:
        systems = ((index.get("runs") or {}).get(r["run"]) or {}).get(r["stratum"]) or {}
        tuned, retrieval = systems.get("fine-tuned"), systems.get("retrieval-tfidf")
        if tuned:
            gs = tuned.get("getters_and_setters") or {}
            r.update(behaviour_now=tuned["rate"], behaviour_now_ci=list(tuned["ci"]), n_now=tuned["n"],
                     retrieval_now=(retrieval or {}).get("rate"),
                     getters_setters_now=[gs["equivalent"], gs["n"]] if gs.get("n") else None)
    return rows


def _fmt(x, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def reference_markdown(rows: list[dict]) -> str:
    """reference_runs' rows as one Markdown table per stratum."""
    out = []
    for stratum in REFERENCE_STRATA:
        mine = [r for r in rows if r["stratum"] == stratum]
        if not mine:
            continue
        now = any("behaviour_now" in r for r in mine)
        out += [f"**{stratum}**", "",
                "| run | dataset | level | context | train tokens | held-out loss | set | n | behaviour [95% CI] "
                "| retrieval | selector | similarity | degenerate | getters + setters |"
                + (" current harness: n, behaviour [95% CI] | retrieval | getters + setters |" if now else ""),
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if now else "")]
        for r in mine:
            lo, hi = r["behaviour_ci"]
            ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
            name = r["run"] + (" (smoke)" if r["smoke"] else "") + \
                (" (retrieval prompts)" if r["retrieval_prompts"] else "")
            gs = f"{r['getters_setters'][0]}/{r['getters_setters'][1]}" if r["getters_setters"] else "–"
            cells = [name, r["dataset"], "?" if r["tac_level"] is None else r["tac_level"], r["max_seq_length"], _fmt(r["train_tokens"], ","),
                     _fmt(r["heldout_loss_after"]), r["set"], r["n"], _pct(r["behaviour"]) + ci,
                     _pct(r["retrieval_behaviour"]), _fmt(r["selector_match"]), _fmt(r["similarity"]),
                     _pct(r["degenerate"]), gs]
            if now and "behaviour_now" in r:
                lo, hi = r["behaviour_now_ci"]
                gs_now = r["getters_setters_now"]
                cells += [f"{r['n_now']}, {_pct(r['behaviour_now'])} [{100 * lo:.1f}, {100 * hi:.1f}]",
                          _pct(r["retrieval_now"]), f"{gs_now[0]}/{gs_now[1]}" if gs_now else "–"]
            elif now:
                cells += ["–", "–", "–"]
            out.append("| " + " | ".join("?" if c is None else str(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out)
