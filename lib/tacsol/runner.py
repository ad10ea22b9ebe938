"""`tacsol run`: execute numbered notebooks with papermill into outputs/<run_name>/<NN_stem>/ and render HTML.

A failed phase keeps its partial notebook (papermill writes it as it goes) and is marked failed in the index;
the other phases still run."""
from __future__ import annotations

import argparse
import html
import json
import time
import traceback
from pathlib import Path
from typing import Any

from . import params as P
from . import paths
from .ioutil import atomic_write_json, atomic_write_text


def phase_dir(run_name: str, notebook: Path) -> Path:
    return paths.outputs_dir() / run_name / notebook.stem


def resolve_parameters(notebook: Path, params_file: str | None, run_name: str,
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = P.notebook_parameters(notebook)
    values: dict[str, Any] = P.load_yaml(params_file) if params_file else {}
    values.update(overrides or {})
    if "run_name" in spec:
        values.setdefault("run_name", run_name)
    if "output_dir" in spec:
        values.setdefault("output_dir", str(phase_dir(run_name, notebook).relative_to(paths.repo_root())))
    P.validate(values, spec, where=f"{Path(params_file).name if params_file else 'defaults'} for {notebook.name}")
    return values


def render_html(executed: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return atomic_write_text(executed.with_suffix(".html"), body)


def run_notebook(notebook: Path, run_name: str, params_file: str | None = None,
                 overrides: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    import papermill as pm

    values = resolve_parameters(notebook, params_file, run_name, overrides)
    out_dir = paths.resolve(values.get("output_dir") or phase_dir(run_name, notebook))
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    record: dict[str, Any] = {"notebook": notebook.stem, "params_file": params_file, "output_dir": str(out_dir),
                              "executed": str(executed), "status": "ok", "error": None}
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
    if summary.exists():
        record["summary"] = json.loads(summary.read_text())
    return record


def write_index(run_name: str, records: list[dict[str, Any]]) -> Path:
    run_dir = paths.outputs_dir() / run_name
    atomic_write_json(run_dir / "run.json", {"run_name": run_name, "phases": records})
    rows = []
    for r in records:
        status = r["status"]
        link = Path(r.get("html", r["executed"])).relative_to(run_dir) if r.get("html") or Path(r["executed"]).exists() else None
        head = (r.get("summary") or {}).get("headline") or {}
        smoke = (r.get("summary") or {}).get("smoke")
        numbers = "<br>".join(f"{html.escape(str(k))}: {html.escape(_fmt(v))}" for k, v in list(head.items())[:8])
        err = f"<div class='err'>{html.escape(r['error'] or '')}</div>" if r.get("error") else ""
        name = f"<a href='{html.escape(str(link))}'>{html.escape(r['notebook'])}</a>" if link else html.escape(r["notebook"])
        rows.append(f"<tr class='{status}'><td>{name}</td><td>{status}{' (smoke)' if smoke else ''}</td>"
                    f"<td>{r.get('seconds', '')} s</td><td>{numbers}{err}</td></tr>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tacsol run {html.escape(run_name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:.4em;vertical-align:top}}
table{{border-collapse:collapse}} tr.failed{{background:#fee}} .err{{color:#a00;font-family:monospace}}</style></head>
<body><h1>tacsol run <code>{html.escape(run_name)}</code></h1>
<table><tr><th>phase</th><th>status</th><th>time</th><th>headline numbers</th></tr>
{''.join(rows)}</table></body></html>"""
    return atomic_write_text(run_dir / "index.html", page)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


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
    ap.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")


def main(args: argparse.Namespace) -> int:
    overrides = dict(_parse_override(o) for o in args.overrides)
    if args.phase == "all":
        if args.params:
            raise SystemExit("--params applies to one phase; run phases one by one to use params files")
        notebooks = paths.list_notebooks()
    else:
        notebooks = [paths.notebook_path(args.phase)]
    # Validate everything before spending any compute.
    for nb in notebooks:
        resolve_parameters(nb, args.params, args.run_name, overrides if len(notebooks) == 1 else None)
    records = []
    t0 = time.time()
    for nb in notebooks:
        print(f"[tacsol run] {nb.stem} -> outputs/{args.run_name}/{nb.stem}/", flush=True)
        rec = run_notebook(nb, args.run_name, args.params, overrides if len(notebooks) == 1 else None,
                           progress=not args.no_progress)
        print(f"[tacsol run] {nb.stem}: {rec['status']} in {rec['seconds']} s" + (f" — {rec['error']}" if rec["error"] else ""), flush=True)
        records.append(rec)
    index = write_index(args.run_name, records)
    print(f"[tacsol run] {len(records)} phase(s) in {time.time() - t0:.0f} s; index: {index}")
    return 0 if all(r["status"] == "ok" for r in records) else 1
