"""`tacsol run`: execute numbered notebooks with papermill into outputs/<run_name>/<NN_stem>/ and render HTML.

* Validation first: every params file / override is checked against the notebook's parameters cell before any
  phase starts.
* Reuse: a phase whose notebook, parameters and library code are unchanged since its last successful run is not
  executed again (``--force`` overrides); the phases' own caches (compiled contracts, datasets, adapters) make a
  changed phase cheap too.
* Failures: a failed phase keeps its partial notebook (papermill writes as it goes) and is marked failed with its
  error in the index; phases that declare a dependency on it (notebook metadata ``tacsol.depends_on``) are skipped,
  the others still run.
"""
from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from . import params as P
from . import paths
from .ioutil import atomic_write_json, atomic_write_text, read_json


def phase_dir(run_name: str, notebook: Path) -> Path:
    return paths.outputs_dir() / run_name / notebook.stem


def _display_path(p: Path) -> str:
    try:
        return str(p.relative_to(paths.repo_root()))
    except ValueError:
        return str(p)


def resolve_parameters(notebook: Path, params_file: str | None, run_name: str,
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = P.notebook_parameters(notebook)
    values: dict[str, Any] = P.load_yaml(params_file) if params_file else {}
    values.update(overrides or {})
    if "run_name" in spec:
        values.setdefault("run_name", run_name)
    if "output_dir" in spec:
        values.setdefault("output_dir", _display_path(phase_dir(run_name, notebook)))
    given = [Path(params_file).name] if params_file else []
    where = f"{' and '.join(given + (['-p'] if overrides else [])) or 'defaults'} for {notebook.name}"
    P.check_plan(notebook, P.validate(values, spec, where=where), where)
    return values


def _tacsol_meta(notebook: Path) -> dict[str, Any]:
    return json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {}).get("tacsol") or {}


def notebook_depends_on(notebook: Path) -> list[str]:
    """Phases (numbers) whose failure makes this one pointless: it is skipped."""
    return list(_tacsol_meta(notebook).get("depends_on", []))


def notebook_reads(notebook: Path) -> list[str]:
    """Phases whose results this one reads ("*" = every earlier phase): a change there re-executes it."""
    return list(_tacsol_meta(notebook).get("reads", [])) + notebook_depends_on(notebook)


def _library_fingerprint() -> str:
    h = hashlib.sha256()
    for f in sorted((paths.repo_root() / "lib" / "tacsol").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def phase_key(notebook: Path, values: dict[str, Any], lib_fp: str, upstream: list[Path] = ()) -> str:
    h = hashlib.sha256()
    for summary in upstream:  # results this phase reads
        h.update(summary.read_bytes() if summary.exists() else b"missing")
    h.update(notebook.read_bytes())
    h.update(json.dumps(values, sort_keys=True, default=str).encode())
    h.update(lib_fp.encode())
    return h.hexdigest()[:16]


def render_html(executed: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return atomic_write_text(executed.with_suffix(".html"), body)


def run_notebook(notebook: Path, run_name: str, params_file: str | None = None,
                 overrides: dict[str, Any] | None = None, progress: bool = True, force: bool = True,
                 lib_fp: str | None = None, upstream: list[Path] = ()) -> dict[str, Any]:
    import papermill as pm

    values = resolve_parameters(notebook, params_file, run_name, overrides)
    out_dir = paths.resolve(values.get("output_dir") or phase_dir(run_name, notebook))
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    key = phase_key(notebook, values, lib_fp or _library_fingerprint(), upstream)
    record: dict[str, Any] = {"notebook": notebook.stem, "params_file": params_file, "output_dir": str(out_dir),
                              "executed": str(executed), "status": "ok", "error": None, "key": key}
    stamp = out_dir / ".tacsol_phase.json"
    if not force and stamp.exists() and executed.exists() and (out_dir / "summary.json").exists():
        prev = read_json(stamp)
        if prev.get("key") == key and prev.get("status") == "ok":
            record.update(prev, reused=True, seconds=0.0)
            record["summary"] = read_json(out_dir / "summary.json")
            return record
    # A run killed from here on must not leave the previous run's stamp vouching for a half-rewritten notebook.
    stamp.unlink(missing_ok=True)
    t0 = time.time()
    try:
        pm.execute_notebook(str(notebook), str(executed), parameters=values, cwd=str(paths.repo_root()),
                            progress_bar=progress, log_output=False, kernel_name="python3")
    except Exception as exc:  # PapermillExecutionError and kernel deaths alike: record, keep going
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {getattr(exc, 'evalue', None) or exc}"[:2000]
    record["seconds"] = round(time.time() - t0, 1)
    if executed.exists():
        try:
            record["html"] = str(render_html(executed))
        except Exception:
            record["html_error"] = traceback.format_exc(limit=2)
    summary = out_dir / "summary.json"
    if summary.exists() and record["status"] == "ok":
        record["summary"] = read_json(summary)
    atomic_write_json(stamp, {k: v for k, v in record.items() if k != "summary"})
    return record


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        s = json.dumps(v)
        return s if len(s) < 80 else s[:77] + "…"
    return str(v)


def write_index(run_name: str, records: list[dict[str, Any]], total_seconds: float | None = None) -> Path:
    run_dir = paths.outputs_dir() / run_name
    atomic_write_json(run_dir / "run.json", {"run_name": run_name, "total_seconds": total_seconds, "phases": records})
    rows = []
    for r in records:
        status = r["status"] + (" (reused)" if r.get("reused") else "")
        target = Path(r["html"]) if r.get("html") else Path(r["executed"])
        name = html.escape(r["notebook"])
        if target.exists():
            name = f"<a href='{html.escape(os.path.relpath(target, run_dir))}'>{name}</a>"
        summ = r.get("summary") or {}
        smoke = " <span class='smoke'>smoke run</span>" if summ.get("smoke") else ""
        head = summ.get("headline") or {}
        numbers = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(_fmt(v))}</li>" for k, v in list(head.items())[:10])
        err = f"<div class='err'>{html.escape(r.get('error') or '')}</div>" if r.get("error") else ""
        figs = sorted(Path(r["output_dir"]).glob("*.png"))[:4] if Path(r["output_dir"]).is_dir() else []
        thumbs = "".join(f"<a href='{html.escape(os.path.relpath(f, run_dir))}'><img class='thumb' alt='{html.escape(f.stem)}' "
                         f"src='{html.escape(os.path.relpath(f, run_dir))}'></a>" for f in figs)
        rows.append(f"<tr class='{r['status']}'><td>{name}{smoke}</td><td>{html.escape(status)}</td>"
                    f"<td>{r.get('seconds', '')} s</td><td><ul>{numbers}</ul>{err}</td><td>{thumbs}</td></tr>")
    total = f"<p>Total wall time: {total_seconds:.0f} s.</p>" if total_seconds is not None else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tacsol run {html.escape(run_name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:.4em;vertical-align:top}}
table{{border-collapse:collapse}} tr.failed{{background:#fee}} tr.skipped{{background:#eee}}
.err{{color:#a00;font-family:monospace;white-space:pre-wrap;max-width:50em}} .smoke{{background:#fd7;padding:0 .3em}}
img.thumb{{height:120px;margin:2px;border:1px solid #ddd}} ul{{margin:0;padding-left:1.2em}}</style></head>
<body><h1>tacsol run <code>{html.escape(run_name)}</code></h1>{total}
<table><tr><th>phase</th><th>status</th><th>time</th><th>headline numbers</th><th>figures</th></tr>
{''.join(rows)}</table></body></html>"""
    return atomic_write_text(run_dir / "index.html", page)


def _parse_override(text: str) -> tuple[str, Any]:
    import yaml

    if "=" not in text:
        raise P.ParamsError(f"-p expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def build_parser(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("phase", help="notebook number or stem (e.g. 02, 03_baseline_3b), or 'all' for every numbered notebook in order")
    ap.add_argument("--params", "-f", help="params YAML for the phase (e.g. params/03_baseline_3b.yaml); default: the notebook's embedded CPU defaults")
    ap.add_argument("--run-name", default="demo", help="run folder under outputs/ (default: demo)")
    ap.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override one parameter (YAML value), repeatable")
    ap.add_argument("--force", action="store_true", help="re-execute phases even when notebook, parameters and library are unchanged")
    ap.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")


def run_phases(notebooks: list[Path], run_name: str, params_file: str | None = None,
               overrides: dict[str, Any] | None = None, force: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    # Validate everything before spending any compute.
    for nb in notebooks:
        resolve_parameters(nb, params_file, run_name, overrides)
    lib_fp = _library_fingerprint()
    records: list[dict[str, Any]] = []
    failed: set[str] = set()
    t0 = time.time()
    for nb in notebooks:
        number = nb.stem.split("_", 1)[0]
        blockers = [d for d in notebook_depends_on(nb) if d in failed]
        if blockers:
            records.append({"notebook": nb.stem, "status": "skipped", "executed": str(phase_dir(run_name, nb) / nb.name),
                            "output_dir": str(phase_dir(run_name, nb)), "seconds": 0,
                            "error": f"skipped: depends on failed phase(s) {', '.join(blockers)}"})
            failed.add(number)
            print(f"[tacsol run] {nb.stem}: skipped (depends on failed {', '.join(blockers)})", flush=True)
            continue
        print(f"[tacsol run] {nb.stem} -> {_display_path(phase_dir(run_name, nb))}/", flush=True)
        reads = notebook_reads(nb)
        upstream = [Path(r["output_dir"]) / "summary.json" for r in records
                    if "*" in reads or r["notebook"].split("_", 1)[0] in reads]
        rec = run_notebook(nb, run_name, params_file, overrides, progress=progress, force=force, lib_fp=lib_fp,
                           upstream=upstream)
        if rec["status"] != "ok":
            failed.add(number)
        note = " (unchanged, reused)" if rec.get("reused") else ""
        print(f"[tacsol run] {nb.stem}: {rec['status']}{note} in {rec['seconds']} s" + (f" — {rec['error']}" if rec["error"] else ""), flush=True)
        records.append(rec)
        write_index(run_name, records, time.time() - t0)
    total = time.time() - t0
    index = write_index(run_name, records, total)
    print(f"[tacsol run] benchmark: {len(records)} phase(s) in {total:.0f} s ({total / 60:.1f} min) on this machine; index: {index}")
    return records


def main(args: argparse.Namespace) -> int:
    overrides = dict(_parse_override(o) for o in args.overrides)
    if args.phase == "all":
        if args.params:
            raise P.ParamsError("--params applies to one phase, not 'all'; run phases one by one to use params files")
        if overrides:
            raise P.ParamsError("-p overrides apply to one phase")
        notebooks = paths.list_notebooks()
    else:
        try:
            notebooks = [paths.notebook_path(args.phase)]
        except FileNotFoundError as exc:
            raise P.ParamsError(f"phase {args.phase!r}: {exc}") from None
    records = run_phases(notebooks, args.run_name, args.params, overrides, force=args.force or args.phase != "all",
                         progress=not args.no_progress)
    return 0 if all(r["status"] == "ok" for r in records) else 1
