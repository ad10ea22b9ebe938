"""Shared figure helpers. The paper's figures 2–7 (arXiv:2506.19624) redrawn for any run, with the paper's numbers
as reference lines (tacsol.claims), plus the objective checks and a systems comparison.

Our reading of the paper's figures: 2 length difference, 3 similarity distribution and thresholds, 4 edit distance
box plot, 5 edit distance vs similarity, 6 Solidity construct frequencies, 7 quality by function length."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import claims


def _plt():
    import matplotlib

    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _pct(share: float) -> str:
    """A paper's share as it prints it: 0.825 → 82.5%, 0.6 → 60%."""
    return f"{round(share * 100, 2):g}%"


def _caption(fig, text: str) -> None:
    fig.text(0.01, 0.005, text, fontsize=7, color="0.35", ha="left", va="bottom", wrap=True)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def fig2_length_diff(df, ax=None):
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    ld = df["length_diff"].to_numpy(float)
    lim = max(60.0, float(np.percentile(np.abs(ld), 95))) if len(ld) else 60.0
    ax.hist(np.clip(ld, -lim, lim), bins=40, color="#4c72b0", alpha=0.8)
    ax.axvline(np.median(ld) if len(ld) else 0, color="#4c72b0", lw=2, label=f"this run median {np.median(ld):.0f}"
               if len(ld) else "this run")
    paper = claims.paper_markers()["length_diff"]
    ax.axvline(paper["median"], color="crimson", ls="--",
               label=f"paper median {paper['median']} ({paper['within_50']:.1%} within ±50)")
    for x in (-50, 50):
        ax.axvline(x, color="0.5", ls=":", lw=1)
    within = float(np.mean(np.abs(ld) <= 50)) if len(ld) else float("nan")
    ax.set(xlabel="generated − original (chars, clipped)", ylabel="functions",
           title=f"Fig. 2: length difference ({within:.1%} within ±50)")
    ax.legend(fontsize=7)
    return fig


def fig3_similarity(df, floor: dict | None = None, ax=None):
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    sim = df["similarity"].to_numpy(float)
    ax.hist(sim, bins=np.linspace(min(0, np.nanmin(sim) if len(sim) else 0), 1, 41), color="#55a868", alpha=0.8)
    ax.axvline(np.nanmean(sim), color="#55a868", lw=2, label=f"this run mean {np.nanmean(sim):.3f}")
    paper = claims.paper_markers()
    ax.axvline(paper["similarity_mean"], color="crimson", ls="--", label=f"paper mean {paper['similarity_mean']}")
    if floor and floor.get("similarity_floor") is not None:
        ax.axvline(floor["similarity_floor"], color="0.3", ls=":", label=f"floor (random pairs) {floor['similarity_floor']:.3f}")
        ax.axvline(floor["similarity_ceiling"], color="0.3", ls="-.",
                   label=f"ceiling (nearest other) {floor['similarity_ceiling']:.3f}")
    shares = ", ".join(f">{t}: {np.mean(sim > t):.0%} (paper {p:.0%})" for t, p in paper["similarity_shares"].items())
    ax.set(xlabel="cosine similarity (generated vs original)", ylabel="functions", title="Fig. 3: semantic similarity")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.2)  # room for the shares line
    ax.text(0.01, 0.97, shares, transform=ax.transAxes, fontsize=6.5, va="top")
    ax.legend(fontsize=7, loc="center left")
    return fig


def fig4_edit_distance(df, ax=None):
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3.6))
    ed = df["edit_distance"].to_numpy(float)
    ax.boxplot([ed], tick_labels=["this run"], widths=0.5)
    paper = claims.paper_markers()
    b = paper["edit_box"]
    ax.bxp([{"med": b["median"], "q1": b["q1"], "q3": b["q3"], "whislo": b["q1"], "whishi": b["q3"],
             "label": "paper", "fliers": []}], positions=[2], widths=0.5, showfliers=False,
           boxprops={"color": "crimson"}, medianprops={"color": "crimson"})
    ax.set_xticks([1, 2], ["this run", "paper (box only)"])
    ax.axhline(0.4, color="0.5", ls=":", lw=1)
    share = float(np.mean(ed < 0.4)) if len(ed) else float("nan")
    ax.set(ylabel="normalized edit distance",
           title=f"Fig. 4: edit distance ({share:.0%} < 0.4; paper {' or '.join(map(_pct, paper['edit_lt_0_4']))})")
    ax.title.set_fontsize(9)
    return fig


def fig5_edit_vs_similarity(df, ax=None):
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.8))
    ed, sim = df["edit_distance"].to_numpy(float), df["similarity"].to_numpy(float)
    ax.scatter(ed, sim, s=8, alpha=0.5)
    r = float(np.corrcoef(ed, sim)[0, 1]) if len(ed) > 2 and np.std(ed) > 0 and np.std(sim) > 0 else float("nan")
    paper_r = f"{claims.paper_markers()['r_edit_similarity']:.2f}".replace("-", "−")  # as the paper prints it
    ax.set(xlabel="normalized edit distance", ylabel="similarity",
           title=f"Fig. 5: edit distance vs similarity, r = {r:.2f} (paper {paper_r})")
    ax.title.set_fontsize(9)
    return fig


def fig6_constructs(constructs: dict, ax=None, top: int = 14):
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.6))
    gen, ref = constructs["generated"], constructs["reference"]
    keys = sorted(ref, key=lambda k: -(ref[k] + gen[k]))[:top]
    x = np.arange(len(keys))
    ax.bar(x - 0.2, [ref[k] for k in keys], 0.4, label="original")
    ax.bar(x + 0.2, [gen[k] for k in keys], 0.4, label="generated")
    ax.set_xticks(x, keys, rotation=45, ha="right", fontsize=7)
    within = claims.paper_markers()["security_tokens_within"]
    ax.set(ylabel="per 1,000 chars", title=f"Fig. 6: Solidity constructs (paper: require/msg.sender within {within:.0%})")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return fig


def fig7_by_length(df, ax=None):
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
    paper = claims.paper_markers()["by_length"]
    labels, means, ns = [], [], []
    for key in ("<1000", ">=1000"):
        sub = df[df["length_bucket"] == key]
        labels.append(key)
        means.append(float(sub["similarity"].mean()) if len(sub) else 0.0)
        ns.append(len(sub))
    ax.bar([0, 1], means, color="#8172b2", width=0.5)
    for i, key in enumerate(labels):
        ax.hlines(paper[key], i - 0.3, i + 0.3, colors="crimson", linestyles="--",
                  label="paper (> this)" if i == 0 else None)
        ax.text(i, means[i] + 0.01, f"n={ns[i]}", ha="center", fontsize=7)
    ax.set_xticks([0, 1], ["original < 1,000 chars", "≥ 1,000 chars"])
    ax.set(ylim=(0, 1), ylabel="mean similarity", title="Fig. 7: similarity by function length")
    ax.legend(fontsize=7)
    return fig


def checks_figure(summary: dict, ax=None):
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.4))
    m = summary["metrics"]
    g = summary["aggregates"]["grounding"]
    items = [("compiles", m.get("compile_rate")),
             ("compiles | ref compiles", m.get("compile_rate_where_reference_compiles")),
             ("selector match", m.get("selector_match_rate")),
             ("grounding precision", g.get("precision")), ("grounding recall", g.get("recall")),
             ("no hallucinated effect", None if g.get("share_functions_with_hallucinated_effect") is None
              else 1 - g["share_functions_with_hallucinated_effect"])]
    ax.barh([k for k, _ in items], [v if v is not None else 0 for _, v in items], color="#c44e52")
    for i, (_, v) in enumerate(items):
        ax.text((v or 0) + 0.01, i, "n/a" if v is None else f"{v:.0%}", va="center", fontsize=7)
    ax.set(xlim=(0, 1.1), title="Objective checks (not in the paper)")
    return fig


def eval_figures(df, summary: dict, out: Path, caption: str | None = None) -> list[Path]:
    """Write the six paper figures and the checks figure for one evaluated system; returns the paths."""
    from .summary import hardware_line

    cap = caption or (f"{summary.get('system', '')}: {len(df)} functions; embedder "
                      f"{summary.get('embedder', {}).get('embedder')}; red = paper (arXiv:2506.19624); "
                      f"evaluated on {hardware_line()}")
    made = []
    for name, fn in (("fig2_length_diff", lambda: fig2_length_diff(df)),
                     ("fig3_similarity", lambda: fig3_similarity(df, summary.get("floor_ceiling"))),
                     ("fig4_edit_distance", lambda: fig4_edit_distance(df)),
                     ("fig5_edit_vs_similarity", lambda: fig5_edit_vs_similarity(df)),
                     ("fig6_constructs", lambda: fig6_constructs(summary["aggregates"]["constructs"])),
                     ("fig7_by_length", lambda: fig7_by_length(df)),
                     ("checks", lambda: checks_figure(summary))):
        fig = fn()
        _caption(fig, cap)
        made.append(_save(fig, Path(out) / f"{name}.png"))
    return made


def compare_systems(summaries: dict[str, dict], ax=None, title: str = "Systems on the same held-out functions"):
    """Mean similarity with 95% bootstrap interval per system (fine-tuned, baselines), with floor/ceiling and the
    paper's mean as reference lines."""
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, max(2.8, 1.2 + 0.45 * len(summaries))))
    names = list(summaries)
    means = [summaries[n]["metrics"].get("similarity_mean") or 0 for n in names]
    lo = [summaries[n]["metrics"].get("similarity_ci_low") or 0 for n in names]
    hi = [summaries[n]["metrics"].get("similarity_ci_high") or 0 for n in names]
    y = np.arange(len(names))
    ax.barh(y, means, xerr=[np.subtract(means, lo), np.subtract(hi, means)], color="#4c72b0", alpha=0.8)
    ax.set_yticks(y, names)
    paper_mean = claims.paper_markers()["similarity_mean"]
    ax.axvline(paper_mean, color="crimson", ls="--", label=f"paper {paper_mean}")
    any_floor = next((s["metrics"] for s in summaries.values() if s["metrics"].get("similarity_floor") is not None),
                     None)
    if any_floor:
        ax.axvline(any_floor["similarity_floor"], color="0.3", ls=":", label="floor (same references)")
        ax.axvline(any_floor["similarity_ceiling"], color="0.3", ls="-.", label="ceiling (nearest other)")
    ax.set(xlim=(0, 1), xlabel="mean similarity (95% bootstrap CI)", title=title)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def save(fig, path: str | os.PathLike, caption: str | None = None) -> Path:
    if caption:
        _caption(fig, caption)
    return _save(fig, Path(path))


def learning_curve(points: Sequence[dict], ax=None, title: str = "Quality vs training tokens (same held-out functions)"):
    """Similarity (with its 95% CI), selector match, compile rate, degenerate rate and the behaviour-equivalent
    share (where measured) per checkpoint, against the training tokens it had seen (0 = the untuned model)."""
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.8))
    pts = sorted(points, key=lambda p: p["train_tokens"])
    x = [p["train_tokens"] for p in pts]
    sim = [p.get("similarity_mean") or np.nan for p in pts]
    ax.fill_between(x, [p.get("similarity_ci_low") or np.nan for p in pts],
                    [p.get("similarity_ci_high") or np.nan for p in pts], alpha=0.2, color="#4c72b0")
    ax.plot(x, sim, "o-", color="#4c72b0", label="similarity (95% CI)")
    for key, style, label in (("selector_match_rate", "s--", "selector match"), ("compile_rate", "^:", "compiles"),
                              ("degenerate_rate", "x-.", "degenerate"),
                              ("behaviour_rate", "D-", "behaviourally equivalent")):
        vals = [p.get(key) for p in pts]
        if any(v is not None for v in vals):
            ax.plot(x, [np.nan if v is None else v for v in vals], style, label=label)
    n = pts[0].get("n_functions") if pts else 0
    ax.set(xlabel="training tokens seen", ylabel="score / rate", ylim=(0, 1.02), title=f"{title} · n={n}")
    ax.legend(fontsize=7)
    return fig


def training_run(art: dict, estimate_gb: float | None, title: str, cpu: bool):
    """A launched run read back (tacsol.launch.read_artifacts): rank 0's training loss with the held-out loss
    before/after, and memory per step beside the estimate and the measured peak (notebooks 04/05)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    steps, losses = zip(*art["train_loss"]) if art.get("train_loss") else ((), ())
    axes[0].plot(steps, losses, marker=".", label="train loss (rank 0)")
    for key, style in (("heldout_loss_before", "--"), ("heldout_loss_after", ":")):
        if art.get(key) is not None:
            axes[0].axhline(art[key], ls=style, color="k", label=f"{key.replace('_', ' ')} {art[key]:.3f}")
    axes[0].set(xlabel="optimizer step", ylabel="cross-entropy")
    if art.get("rss_gb"):
        axes[1].plot(*zip(*art["rss_gb"]), marker=".", label="rank 0 RSS (GB)" if cpu else "host RSS (GB)")
    if estimate_gb is not None:
        axes[1].axhline(estimate_gb, ls="--", color="r", label=f"estimate {estimate_gb:.2f} GB")
    if art.get("peak_memory_gb") is not None:
        axes[1].axhline(art["peak_memory_gb"], ls=":", color="g", label=f"measured peak {art['peak_memory_gb']:.2f} GB")
    axes[1].set(xlabel="optimizer step", ylabel="GB")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def systems_panel(rows: Sequence[dict], stratum: str, ax=None):
    """Per system: similarity, selector match, compile rate and degenerate rate, each with its 95% interval where
    it has one, on one stratum's functions."""
    plt = _plt()
    fig = None
    rows = [r for r in rows if r["stratum"] == stratum]
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.6))
    metrics = (("similarity_mean", "similarity_ci_low", "similarity_ci_high", "similarity"),
               ("selector_match_rate", "selector_match_ci_low", "selector_match_ci_high", "selector match"),
               ("compile_rate", "compile_ci_low", "compile_ci_high", "compiles"),
               ("degenerate_rate", None, None, "degenerate"))
    width = 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
        xs = np.arange(len(metrics)) + i * width
        vals = [r.get(m[0]) if r.get(m[0]) is not None else np.nan for m in metrics]
        err = [[max(0.0, v - (r.get(lo) if lo and r.get(lo) is not None else v)) for v, (_, lo, _, _) in
                zip(vals, metrics)],
               [max(0.0, (r.get(hi) if hi and r.get(hi) is not None else v) - v) for v, (_, _, hi, _) in
                zip(vals, metrics)]]
        ax.bar(xs, vals, width, yerr=err, capsize=2, label=f"{r['system']} (n={r.get('n_functions')})")
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, [m[3] for m in metrics])
    ax.set(ylim=(0, 1.05), ylabel="mean / rate (95% CI)", title=f"Systems on the same functions · {stratum}")
    ax.legend(fontsize=7, ncol=2)
    return fig


def side_by_side_html(df, n: int, title: str = "fine-tuned") -> str:
    """HTML table of n held-out functions: original beside the generated code, with its flags (degenerate,
    selector, compiles, similarity)."""
    import html

    parts = []
    for _, r in df.head(n).iterrows():
        flags = (f"similarity {r['similarity']:.2f} · selector {'✓' if r['selector_match'] else '✗'} · compiles "
                 f"{r['compiles']} · degenerate: {r['degenerate'] or 'no'}")
        parts.append(
            f"<p><b>{html.escape(str(r['function_name'] or r['selector']))}</b> · {html.escape(str(r['contract']))} "
            f"· {html.escape(flags)}</p><table><tr><th>original</th><th>{html.escape(title)}</th></tr><tr>"
            f"<td style='text-align:left;vertical-align:top'><pre>{html.escape(str(r['reference'])[:1500])}</pre></td>"
            f"<td style='text-align:left;vertical-align:top'><pre>{html.escape(str(r['generated'])[:1500])}</pre>"
            "</td></tr></table>")
    return "".join(parts)
