"""Aggregates of a per-function table: means/medians with bootstrap 95% intervals, threshold shares, buckets,
correlations, grounding precision/recall, failure counts."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .repair import NOTE as REPAIR_NOTE

SIM_THRESHOLDS = (0.7, 0.8, 0.85, 0.9)
EDIT_THRESHOLD = 0.4
LONG_CHARS = 1000
GROUNDED = ("event", "storage_write", "external_call")  # reverts reported apart: compiler checks put them everywhere


def rate_text(x: float | None) -> str:
    """A figure for a printed table: three decimals, or "–" where it was not measured (a check that did not run)."""
    return "–" if x is None else f"{x:.3f}"


def bootstrap_ci(values, stat: str = "mean", n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean or median; (nan, nan) for no data."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return (math.nan, math.nan)
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    step = max(1, 2_000_000 // len(x))  # bound memory: resample in slices
    for s in range(0, n_boot, step):
        k = min(step, n_boot - s)
        idx = rng.integers(0, len(x), size=(k, len(x)))
        samples = x[idx]
        out[s:s + k] = samples.mean(axis=1) if stat == "mean" else np.median(samples, axis=1)
    return (float(np.percentile(out, 100 * alpha / 2)), float(np.percentile(out, 100 * (1 - alpha / 2))))


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of k successes in n (a rate's interval that stays inside [0, 1] and is not empty at
    0 or n); (nan, nan) for n = 0."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    mid, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((mid - half) / (1 + z * z / n), (mid + half) / (1 + z * z / n))


def describe(values, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return {"n": 0, "mean": None, "median": None, "std": None, "ci_low": None, "ci_high": None,
                "median_ci_low": None, "median_ci_high": None, "q1": None, "q3": None}
    lo, hi = bootstrap_ci(x, "mean", n_boot, seed)
    mlo, mhi = bootstrap_ci(x, "median", n_boot, seed + 1)
    return {"n": int(len(x)), "mean": float(x.mean()), "median": float(np.median(x)), "std": float(x.std()),
            "ci_low": lo, "ci_high": hi, "median_ci_low": mlo, "median_ci_high": mhi,
            "q1": float(np.percentile(x, 25)), "q3": float(np.percentile(x, 75)),
            "min": float(x.min()), "max": float(x.max())}


def _pearson(a, b) -> float | None:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return None
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _rate(series) -> float | None:
    s = [bool(x) for x in series if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(s)) if s else None


def grounding_columns(side: str = "out") -> frozenset[str]:
    """The columns `grounding` reads from a per-function table: the TAC's and `side`'s count per category."""
    return frozenset(f"{s}_{c}" for s in ("tac", side) for c in (*GROUNDED, "revert"))


def grounding(df, side: str = "out") -> dict[str, Any]:
    """Micro precision/recall of effects the output shows against effects the TAC shows (category present or not,
    per function). A false positive is a hallucination: the output shows an effect the TAC never performs.
    side="ref" scores the reference the same way (effects in internal callees or modifiers are in the TAC but not
    in the function's own text, so even the reference has recall < 1)."""
    out: dict[str, Any] = {}
    tp = fp = fn = 0
    for cat in (*GROUNDED, "revert"):
        t = df[f"tac_{cat}"].to_numpy() > 0
        o = df[f"{side}_{cat}"].to_numpy() > 0
        c_tp, c_fp, c_fn = int((t & o).sum()), int((~t & o).sum()), int((t & ~o).sum())
        out[cat] = {"tac_has": int(t.sum()), "output_has": int(o.sum()), "tp": c_tp, "fp": c_fp, "fn": c_fn,
                    "precision": c_tp / (c_tp + c_fp) if c_tp + c_fp else None,
                    "recall": c_tp / (c_tp + c_fn) if c_tp + c_fn else None}
        if cat in GROUNDED:
            tp, fp, fn = tp + c_tp, fp + c_fp, fn + c_fn
    out["precision"] = tp / (tp + fp) if tp + fp else None
    out["recall"] = tp / (tp + fn) if tp + fn else None
    halluc = np.zeros(len(df), dtype=bool)
    for cat in GROUNDED:
        halluc |= (df[f"tac_{cat}"].to_numpy() == 0) & (df[f"{side}_{cat}"].to_numpy() > 0)
    out["functions_with_hallucinated_effect"] = int(halluc.sum())
    out["share_functions_with_hallucinated_effect"] = float(halluc.mean()) if len(df) else None
    return out


def aggregate(df, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Everything summary.json reports about one system on one split (without the floor/ceiling, added by the
    caller from the reference embeddings)."""
    n = len(df)
    sim = df["similarity"].to_numpy(float)
    ed = df["edit_distance"].to_numpy(float)
    ld = df["length_diff"].to_numpy(float)
    agg: dict[str, Any] = {"n_functions": n}
    agg["similarity"] = describe(sim, n_boot, seed)
    agg["edit_distance"] = describe(ed, n_boot, seed + 10)
    agg["length_diff"] = {**describe(ld, n_boot, seed + 20),
                          "share_within_50": float(np.mean(np.abs(ld) <= 50)) if n else None}
    agg["shares"] = {f"similarity_gt_{t}": (float(np.mean(sim > t)) if n else None) for t in SIM_THRESHOLDS}
    agg["shares"][f"edit_distance_lt_{EDIT_THRESHOLD}"] = float(np.mean(ed < EDIT_THRESHOLD)) if n else None
    agg["correlations"] = {
        "edit_distance_vs_similarity": _pearson(ed, sim),
        "generated_vs_reference_length": _pearson(df["gen_chars"], df["ref_chars"]),
    }
    groups: dict[str, Any] = {}
    for col in ("complexity", "length_bucket"):
        if col not in df:
            continue
        g = {}
        for key, sub in df.groupby(col, sort=True):
            g[str(key)] = {"n": int(len(sub)), "similarity_mean": float(sub["similarity"].mean()),
                           "similarity_median": float(sub["similarity"].median()),
                           "edit_distance_mean": float(sub["edit_distance"].mean()),
                           "compile_rate": _rate(sub["compiles"]),
                           "selector_match_rate": _rate(sub["selector_match"]),
                           "degenerate_rate": float((sub["degenerate"] != "").mean()) if "degenerate" in sub
                           else None,
                           "behaviour_rate": _behaviour_rate(sub)}
        groups[col] = g
    agg["by"] = groups
    checks: dict[str, Any] = {
        "compile_rate": _rate(df["compiles"]),
        "reference_compile_rate": _rate(df["ref_compiles"]),
        "selector_match_rate": _rate(df["selector_match"]),
    }
    both = df[df["ref_compiles"] == True]  # noqa: E712  (column may hold None)
    for col, key in (("selector_match", "selector_match"), ("compiles", "compile")):
        vals = [float(x) for x in df[col] if x is not None and not (isinstance(x, float) and math.isnan(x))]
        checks[f"{key}_ci"] = list(bootstrap_ci(vals, "mean", n_boot, seed + 40)) if vals else [None, None]
    checks["compile_rate_where_reference_compiles"] = _rate(both["compiles"]) if len(both) else None
    checks["n_where_reference_compiles"] = int(len(both))
    checks["compile_status"] = {str(k): int(v) for k, v in df["compile_status"].value_counts().items()}
    agg["checks"] = checks
    agg["grounding"] = grounding(df)
    if "ref_event" in df:
        agg["grounding_reference"] = grounding(df, "ref")
    fails = df["failure"][df["failure"] != ""]
    agg["failures"] = {"n": int(len(fails)), "by_reason": {str(k): int(v) for k, v in fails.value_counts().items()}}
    agg["degenerate"] = degenerate_summary(df)
    agg["distinct"] = distinct(df, n_boot, seed)
    agg["behaviour"] = behaviour_summary(df, n_boot, seed)
    return agg


def _behaviour_rate(df) -> float | None:
    if "behaviour" not in df:
        return None
    b = df["behaviour"][df["behaviour"] != "skipped"]
    return float((b == "equivalent").mean()) if len(b) else None


def behaviour_summary(df, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Behavioural equivalence (tacsol.evaluate.behaviour): counts per result and untestable reason, the
    equivalent rate over all functions (untestable counts as not shown equivalent) and over the testable ones,
    each with a bootstrap CI, and how often names had to be bound."""
    if "behaviour" not in df or not len(df) or (df["behaviour"] == "skipped").all():
        return {"n": 0}
    d = df[df["behaviour"] != "skipped"]
    eq = (d["behaviour"] == "equivalent").to_numpy(float)
    testable = (d["behaviour"] != "untestable").to_numpy(bool)
    lo, hi = bootstrap_ci(eq, "mean", n_boot, seed + 50)
    tlo, thi = bootstrap_ci(eq[testable], "mean", n_boot, seed + 51) if testable.any() else (None, None)
    unt = d[d["behaviour"] == "untestable"]
    diff = d[d["behaviour"] == "differs"]
    repaired = d["behaviour_bindings"].astype(str).str.contains(REPAIR_NOTE, regex=False)
    return {"n": int(len(d)), "equivalent": int(eq.sum()), "differs": int(len(diff)), "untestable": int(len(unt)),
            "rate": float(eq.mean()), "ci_low": lo, "ci_high": hi,
            "rate_testable": float(eq[testable].mean()) if testable.any() else None,
            "ci_low_testable": tlo, "ci_high_testable": thi,
            "untestable_reasons": {str(k): int(v) for k, v in unt["behaviour_reason"].value_counts().items()},
            "binding_needed": int((d["behaviour_bindings"] != "").sum()),
            "binding_failed": int((d["behaviour_reason"] == "unbound_name").sum()),
            # type-only repairs (evaluate.repair): how many functions compiled only through one, and how they came out
            "repaired": int(repaired.sum()),
            "repaired_equivalent": int((repaired & (d["behaviour"] == "equivalent")).sum()),
            "examples_differs": [{"id": r["id"], "detail": r["behaviour_detail"][:400]}
                                 for _, r in diff.head(5).iterrows()]}


def degenerate_summary(df, n_examples: int = 5) -> dict[str, Any]:
    """Rate of degenerate outputs (evaluate.degenerate) with a CI, counts per reason, and examples to show."""
    if "degenerate" not in df or not len(df):
        return {"n": 0, "rate": None, "ci_low": None, "ci_high": None, "by_reason": {}, "examples": []}
    flag = (df["degenerate"] != "").to_numpy(float)
    lo, hi = bootstrap_ci(flag, "mean", 1000, 7)
    bad = df[df["degenerate"] != ""]
    return {"n": int(flag.sum()), "rate": float(flag.mean()), "ci_low": lo, "ci_high": hi,
            "by_reason": {str(k): int(v) for k, v in bad["degenerate"].value_counts().items()},
            "examples": [{"id": r["id"], "reason": r["degenerate"], "generated": str(r["generated"])[:400]}
                         for _, r in bad.head(n_examples).iterrows()]}


def distinct(df, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The same metrics counted once per distinct function (near-duplicate ``group``): a function compiled under
    several settings is several records, and would otherwise weigh several times."""
    if "group" not in df or not len(df):
        return {"n_distinct": int(len(df))}
    num = df.assign(
        selector_match=df["selector_match"].astype(float),
        compiles=df["compiles"].map(lambda x: math.nan if x is None else float(x)),
        degenerate_flag=(df["degenerate"] != "").astype(float) if "degenerate" in df else math.nan)
    g = num.groupby("group").agg({"similarity": "mean", "edit_distance": "mean", "selector_match": "mean",
                                  "compiles": "mean", "degenerate_flag": "mean"})
    out: dict[str, Any] = {"n_distinct": int(len(g)), "n_records": int(len(df))}
    for col in ("similarity", "edit_distance", "selector_match", "compiles", "degenerate_flag"):
        d = describe(g[col].to_numpy(float), n_boot, seed + 30)
        out[col] = {k: d[k] for k in ("n", "mean", "ci_low", "ci_high")}
    return out


def grounding_metrics(agg: dict[str, Any]) -> dict[str, Any]:
    """The flat metrics of grounding (one home: flat_metrics, and tools/rescore_effects when only they change)."""
    g = agg["grounding"]
    return {"grounding_precision": g["precision"], "grounding_recall": g["recall"],
            "grounding_recall_reference": (agg.get("grounding_reference") or {}).get("recall")}


def flat_metrics(agg: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """The flat metrics of summary.json (tacsol.compare reads EVAL_METRICS of them)."""
    s, e, c = agg["similarity"], agg["edit_distance"], agg["checks"]
    return {
        "n_functions": agg["n_functions"],
        "similarity_mean": s["mean"], "similarity_ci_low": s["ci_low"], "similarity_ci_high": s["ci_high"],
        "similarity_median": s["median"],
        "share_sim_gt_0_7": agg["shares"]["similarity_gt_0.7"],
        "share_sim_gt_0_8": agg["shares"]["similarity_gt_0.8"],
        "share_sim_gt_0_85": agg["shares"]["similarity_gt_0.85"],
        "share_sim_gt_0_9": agg["shares"]["similarity_gt_0.9"],
        "edit_distance_mean": e["mean"], "edit_distance_median": e["median"],
        "share_edit_lt_0_4": agg["shares"]["edit_distance_lt_0.4"],
        "length_diff_median": agg["length_diff"]["median"],
        "compile_rate": c["compile_rate"], "compile_rate_where_reference_compiles":
            c["compile_rate_where_reference_compiles"], "n_where_reference_compiles": c["n_where_reference_compiles"],
        "selector_match_rate": c["selector_match_rate"],
        "selector_match_ci_low": c["selector_match_ci"][0], "selector_match_ci_high": c["selector_match_ci"][1],
        "compile_ci_low": c["compile_ci"][0], "compile_ci_high": c["compile_ci"][1],
        **grounding_metrics(agg),
        "failures": agg["failures"]["n"],
        "degenerate_rate": agg["degenerate"]["rate"], "degenerate_n": agg["degenerate"]["n"],
        "n_distinct": agg["distinct"].get("n_distinct"),
        "similarity_mean_distinct": (agg["distinct"].get("similarity") or {}).get("mean"),
        "selector_match_rate_distinct": (agg["distinct"].get("selector_match") or {}).get("mean"),
        "compile_rate_distinct": (agg["distinct"].get("compiles") or {}).get("mean"),
        "similarity_floor": floor.get("similarity_floor"), "similarity_ceiling": floor.get("similarity_ceiling"),
        "behaviour_rate": agg.get("behaviour", {}).get("rate"),
        "behaviour_ci_low": agg.get("behaviour", {}).get("ci_low"),
        "behaviour_ci_high": agg.get("behaviour", {}).get("ci_high"),
        "behaviour_rate_testable": agg.get("behaviour", {}).get("rate_testable"),
        "behaviour_untestable": agg.get("behaviour", {}).get("untestable"),
        "behaviour_binding_needed": agg.get("behaviour", {}).get("binding_needed"),
    }
