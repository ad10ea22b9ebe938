"""Publish a finished reference run (issue 12): its evidence into docs/evidence/<run>/ and its adapter into the
package (lib/tacsol/data/adapter/, what `tacsol decompile` uses without --adapter).

    .venv/bin/python tools/publish_reference.py --run outputs/reference-l2/03_baseline_3b
    # ship the adapter of a run published before (its evidence untouched):
    .venv/bin/python tools/publish_reference.py --run outputs/reference-l3-rag900/03_baseline_3b \\
        --recipe params/03_reference_cpu_l3_rag900.yaml --adapter-only

Copies: summary.json, train_log.json, params.yaml, loss.png and, under eval/, every summary.json, per-function table
(functions.parquet), figure, selection.json, the learning curve, the verifier measurement (with its candidate pool,
gzipped), the header-prefill measurement; the rendered notebook.
The adapter is written in bf16 with its recipe (params.yaml) and evaluation table (EVALUATION.md) beside it; the
command refuses an adapter over --max-mb. 06_compare reads docs/evidence/ beside outputs/.

A run whose training finished but whose evaluation did not (the evaluation needs the corpus, which a fresh machine
rebuilds): --trained keeps what training made, so that no one trains it again,

    .venv/bin/python tools/publish_reference.py --run outputs/reference-l2/03_baseline_3b --trained
    .venv/bin/python tools/publish_reference.py --run outputs/reference-l2/03_baseline_3b --restore

--trained writes docs/evidence/<run>/<phase>/trained/: the final adapter and the checkpoints' adapters (the learning
curve's points; not one within half a save interval of the end) in bf16, train_log.json, heldout_before.json,
params.yaml, loss.png, and the answers an evaluation under way has saved (eval/generations/). --restore copies them
back into the run folder; notebook 03 then finds its finished run (tacsol.train.finished_run) and only evaluates,
going on from the saved answers (generation is resumable per batch). The full publish drops trained/eval/. Once committed, move the weights to history
(`tools/evidence_weights.py slim docs/evidence/<run>/<phase>/trained`): the tracked tree must stay within what the
GPU machine's tool carries (tests/test_tools_evidence_weights.py); `tools/evidence_weights.py restore` brings them
back before --restore.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

KEEP = ("summary.json", "train_log.json", "params.yaml", "loss.png", "03_baseline_3b.ipynb", "03_baseline_3b.html")
EVAL_KEEP = ("summary.json", "functions.parquet", "selection.json", "curve.json", "verifier.json", "prefill.json",
             "candidates.jsonl", "generation_times.json", "*.png", "contracts.jsonl", "paired_with_final.json")
POOL = "candidates.jsonl"   # tools/bench_verifier.py's candidate pool: published gzipped (copy_eval)


def evaluation_markdown(run: Path) -> str:
    from tacsol.evaluate import suite
    from tacsol.evaluate.aggregate import rate_text as f

    rows = suite.summary_table(run)
    head = ("| stratum | system | n | similarity [95% CI] | selector match [95% CI] | compiles (stub) | degenerate | "
            "grounding P/R | behaviour equivalent [95% CI] (untestable) |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['stratum']} | {r['system']} | {r['n_functions']} | {f(r['similarity_mean'])} "
             f"[{f(r['similarity_ci_low'])}, {f(r['similarity_ci_high'])}] | {f(r['selector_match_rate'])} "
             f"[{f(r['selector_match_ci_low'])}, {f(r['selector_match_ci_high'])}] | {f(r['compile_rate'])} | "
             f"{f(r['degenerate_rate'])} | {f(r['grounding_precision'])}/{f(r['grounding_recall'])} | "
             f"{f(r['behaviour_rate'])} [{f(r['behaviour_ci_low'])}, {f(r['behaviour_ci_high'])}] "
             f"({r['behaviour_untestable'] if r['behaviour_untestable'] is not None else '–'}) |" for r in rows]
    kinds = [r for r in suite.by_kind(run) if "behaviour_rate" in r]
    if kinds:  # the getter/setter goal: equivalent share per function kind, untestable counted as not
        lines += ["", "Behaviourally equivalent per function kind (untestable counts as not equivalent):", "",
                  "| stratum | system | kind | n | equivalent [95% CI] | testable |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['stratum']} | {r['system']} | {r['kind']} | {r['n']} | {f(r['behaviour_rate'])} "
                  f"[{f(r['behaviour_ci'][0])}, {f(r['behaviour_ci'][1])}] | {r['behaviour_testable']} |"
                  for r in kinds]
    return head + "\n".join(lines) + "\n"


def current_harness_markdown(run_name: str, evidence: Path) -> str:
    """The run's behaviour by the current harness (the latest rescoring of every published run:
    tacsol.compare.rescoring), per stratum and system, with the fine-tuned model minus each baseline; "" where the
    rescoring does not hold the run."""
    from tacsol import compare

    systems = ((compare.rescoring(evidence) or {}).get("runs") or {}).get(run_name)
    if not systems:
        return ""
    lines = ["", f"## Behaviour by the current harness ({compare.RESCORING.parent.name})", "",
             "The tables above are the harness this run was scored with. Scored again by today's "
             f"(docs/evidence/{compare.RESCORING.parent.as_posix()}/, docs/reference-run.md \"Behaviour scored again"
             "\"); untestable counts as not equivalent:", "",
             "| stratum | system | n | behaviour equivalent [95% CI] | getters + setters | fine-tuned minus this |",
             "|---|---|---|---|---|---|"]
    for stratum, rows in systems.items():
        for system, v in rows.items():
            gs = v.get("getters_and_setters") or {}
            d = v.get("fine_tuned_minus_this")
            diff = f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else ""
            lines.append(f"| {stratum} | {system} | {v['n']} | {v['equivalent']} = {100 * v['rate']:.1f}% "
                         f"[{100 * v['ci'][0]:.1f}, {100 * v['ci'][1]:.1f}] | "
                         f"{gs.get('equivalent', '–')}/{gs.get('n', '–')} | {diff} |")
    return "\n".join(lines) + "\n"


def partial_summary(run: Path) -> None:
    """summary.json for a run whose notebook is still evaluating: training figures and the finished evaluations."""
    import yaml

    from tacsol import summary
    from tacsol.evaluate import suite

    log = json.loads((run / "train_log.json").read_text())
    params = yaml.safe_load((run / "params.yaml").read_text())
    main_m = json.loads((run / "eval" / "summary.json").read_text())["metrics"]
    headline = {k: log[k] for k in ("model", "params_total", "max_seq_length", "lora_r", "quantization", "n_processes",
                                    "train_tokens", "steps", "heldout_loss_before", "heldout_loss_after",
                                    "tokens_per_s", "s_per_step", "peak_memory_gb", "padding_share", "cpu_threads",
                                    "train_examples", "dropped_too_long", "dropped_holdout_packages")}
    headline.update(hardware_profile=params["hardware_profile"], wall_hours=log["train_wall_s"] / 3600, gpu_hours=0.0,
                    **{f"eval_{k}": main_m.get(k) for k in ("n_functions", "n_distinct", "similarity_mean",
                                                            "similarity_ci_low", "similarity_ci_high",
                                                            "selector_match_rate", "compile_rate", "degenerate_rate",
                                                            "grounding_recall", "similarity_ceiling")},
                    evaluation=suite.summary_table(run))
    summary.write_summary(run, phase="03_baseline_3b", headline=headline, params=params, smoke=False,
                          partial="published while the notebook was still evaluating: see docs/reference-run.md")


def fresh_copy(run: Path, dest: Path, names, keep: tuple[str, ...] = ()) -> None:
    """`dest` emptied (but for the entries named in `keep`), then the files of `names` that `run` holds copied in."""
    if dest.exists():
        for entry in dest.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)


TRAINED_FILES = ("train_log.json", "heldout_before.json", "params.yaml", "loss.png")


def publish_trained(run: Path, dest: Path) -> int:
    """The finished training of `run` (adapter + checkpoint adapters in bf16, logs) into `dest`."""
    import yaml

    from tacsol import infer
    from tacsol.evaluate import suite

    if not (run / "train_log.json").is_file() or not (run / "adapter" / "adapter_config.json").is_file():
        print(f"{run}: training has not finished (no train_log.json or adapter/)", file=sys.stderr)
        return 2
    fresh_copy(run, dest, TRAINED_FILES)
    infer.ship_adapter(run / "adapter", dest / "adapter")
    final = json.loads((run / "train_log.json").read_text())["steps"]
    every = int(yaml.safe_load((run / "params.yaml").read_text()).get("save_steps") or final)
    for step, ck in suite.checkpoints(run):
        # the final checkpoint is the adapter; one within half a save interval of it adds no curve point (10 MB)
        if final - step >= every / 2:
            infer.ship_adapter(ck, dest / "checkpoints" / ck.name)
            for extra in dest.joinpath("checkpoints", ck.name).iterdir():
                if extra.name not in ("adapter_config.json", "adapter_model.safetensors"):
                    extra.unlink()  # optimizer/RNG/trainer state: only the weights make a curve point
    saved = sorted((run / "eval" / "generations").rglob("*.jsonl"))
    for f in saved:   # an evaluation under way: its answers so far, so that a restored run goes on from them
        target = dest / f.relative_to(run)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    mb = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 1e6
    print(f"trained run: {dest} ({mb:.1f} MB{f'; {len(saved)} files of saved answers' if saved else ''})")
    return 0


def restore_trained(src: Path, run: Path) -> int:
    """Copy a published training back into the run folder (adapter, checkpoint adapters, logs)."""
    if not (src / "adapter").is_dir():
        print(f"{src}: no published training (tools/publish_reference.py --trained)", file=sys.stderr)
        return 2
    run.mkdir(parents=True, exist_ok=True)
    for f in src.rglob("*"):
        if f.is_file():
            target = run / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    print(f"restored {src} -> {run}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", default="outputs/reference-l2/03_baseline_3b")
    ap.add_argument("--evidence", default="docs/evidence")
    ap.add_argument("--max-mb", type=float, default=12.0)
    ap.add_argument("--recipe", default="params/03_reference_cpu.yaml",
                    help="the params file the run was made with (named in the shipped adapter's EVALUATION.md)")
    ap.add_argument("--no-adapter", action="store_true", help="publish the evidence only")
    ap.add_argument("--adapter-only", action="store_true",
                    help="ship the adapter of a run published before (its evidence stays as it is), with its "
                         "evaluation and the current harness's behaviour in EVALUATION.md")
    ap.add_argument("--trained", action="store_true",
                    help="publish the finished training only (adapters in bf16 and logs, into .../trained/)")
    ap.add_argument("--restore", action="store_true", help="copy a published training back into --run")
    ap.add_argument("--partial", action="store_true",
                    help="the notebook has not finished: write summary.json from train_log.json and the finished "
                         "evaluations, marked partial")
    a = ap.parse_args(argv)

    from tacsol import paths

    run = paths.resolve(a.run)
    trained = paths.resolve(a.evidence) / run.parent.name / run.name / "trained"
    if a.trained:
        return publish_trained(run, trained)
    if a.restore:
        return restore_trained(trained, run)
    if not (run / "summary.json").is_file() and not a.partial:
        print(f"{run}: no summary.json (the run has not finished; --partial publishes what is there)", file=sys.stderr)
        return 2
    if a.partial and not (run / "summary.json").is_file():
        partial_summary(run)
    if a.adapter_only:
        return ship(run, a, evaluation_markdown(run))
    dest = paths.resolve(a.evidence) / run.parent.name / run.name
    fresh_copy(run, dest, KEEP, keep=("trained",))  # the published training stays: the curve's checkpoints
    shutil.rmtree(dest / "trained" / "eval", ignore_errors=True)   # saved answers: the tables below now hold them
    copy_eval(run, dest)
    table = evaluation_markdown(run)
    (dest / "EVALUATION.md").write_text(table, encoding="utf-8")
    print(f"evidence: {dest} ({sum(f.stat().st_size for f in dest.rglob('*') if f.is_file()) / 1e6:.1f} MB)")
    return 0 if a.no_adapter else ship(run, a, table)


def copy_eval(run: Path, dest: Path) -> None:
    """The EVAL_KEEP files of run/eval/ (saved generations aside) into dest/eval/; a verifier's candidate pool
    (candidates.jsonl, N answers per function) gzipped, the form evidence keeps it in (the tracked tree's budget)."""
    import gzip

    for pattern in EVAL_KEEP:
        for f in (run / "eval").rglob(pattern):
            if "generations" in f.parts:
                continue
            target = dest / f.relative_to(run)
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.name == POOL:
                with open(f, "rb") as src, gzip.open(target.with_name(POOL + ".gz"), "wb", compresslevel=9) as out:
                    shutil.copyfileobj(src, out)
            else:
                shutil.copy2(f, target)


def ship(run: Path, a, table: str) -> int:
    """The run's adapter into the package (infer.SHIPPED_ADAPTER) in bf16, with its recipe, its training index and
    EVALUATION.md (its evaluation `table`, then the current harness's behaviour); refused over --max-mb."""
    from tacsol import infer, paths
    from tacsol.summary import hardware_line

    summary = json.loads((run / "summary.json").read_text())
    sizes = infer.ship_adapter(run / "adapter", extra_files={
        "params.yaml": (run / "params.yaml").read_text(),
        "EVALUATION.md": f"# Reference adapter: evaluation\n\nRecipe: params.yaml ({a.recipe}). "
                         f"Hardware: {hardware_line(summary.get('hardware') or {})}. "
                         f"Evidence: docs/evidence/{run.parent.name}/{run.name}/, docs/reference-run.md.\n\n"
                         + table + current_harness_markdown(run.parent.name, paths.resolve(a.evidence))},
        training_index=True)
    total = sizes["adapter_model.safetensors"] / 1e6  # the weights; the tokenizer is the base model's + markers
    print(f"adapter: {infer.SHIPPED_ADAPTER} (weights {total:.1f} MB): {sizes}")
    if total > a.max_mb:
        shutil.rmtree(infer.SHIPPED_ADAPTER)
        print(f"adapter is {total:.1f} MB, over --max-mb {a.max_mb}: not shipped", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
