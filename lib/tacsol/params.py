"""Notebook parameters: the `parameters` cell is the spec (names, default values, hence types).

Papermill only warns when a params file carries a key the notebook does not declare; tacsol refuses it:
  * before launch (``tacsol run`` validates the YAML against the notebook's parameters cell), and
  * inside the kernel (the notebook's validation cell calls :func:`check_notebook`), which reads the cell
    papermill injected from IPython's input history, so a mistyped key cannot slip through either path.
"""
from __future__ import annotations

import ast
import difflib
import importlib
import json
from pathlib import Path
from typing import Any

import yaml

from . import paths


class ParamsError(ValueError):
    """Bad input: a parameter, a file it names or a record in that file. The CLI exits 2 with the message, which
    names the item and the field; the modules' errors for bad input (ModelError, HardwareError, DatasetError, ...)
    subclass it."""


def param_error(where: str | None, name: str, detail: str) -> ParamsError:
    """The error for parameter ``name``, after where its value came from (a params file, a notebook) when known."""
    return ParamsError(f"{where + ': ' if where else ''}parameter {name!r}: {detail}")


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def parse_assignments(source: str, where: str) -> dict[str, Any]:
    """Parse a cell of ``name = <literal>`` lines. Anything else is an error: the parameters cell must stay plain."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParamsError(f"{where}: not valid Python ({exc.msg}, line {exc.lineno})") from exc
    values: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParamsError(f"{where}, line {node.lineno}: only `name = literal` assignments are allowed")
        name = node.targets[0].id
        try:
            values[name] = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ParamsError(f"{where}: parameter {name!r} (line {node.lineno}) is not a plain literal") from exc
    return values


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """Name → default value of a notebook's cell tagged ``parameters``."""
    nb_path = paths.notebook_path(notebook) if not Path(notebook).is_file() else Path(notebook)
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamsError(f"{nb_path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    return parse_assignments(_cell_source(cells[0]), f"{nb_path.name} parameters cell")


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True  # None marks "optional / auto"; any type (or None) is fine
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def validate(values: dict[str, Any], spec: dict[str, Any], where: str) -> dict[str, Any]:
    """Refuse unknown keys (with a 'did you mean') and type mismatches; return spec defaults updated by values."""
    problems = []
    for key in values:
        if key not in spec:
            near = difflib.get_close_matches(key, list(spec), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"unknown parameter {key!r}{hint}")
    for key, value in values.items():
        if key in spec and not _type_ok(spec[key], value):
            problems.append(
                f"parameter {key!r} must be {_type_name(spec[key])} like the notebook default "
                f"{spec[key]!r}, got {_type_name(value)} {value!r}"
            )
    if problems:
        known = f". Known parameters: {', '.join(sorted(spec))}" if any(k not in spec for k in values) else ""
        raise ParamsError(f"{where}: " + "; ".join(problems) + known)
    merged = dict(spec)
    merged.update(values)
    return merged


def parse_sets(assignments: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` overrides: each value read as YAML (``true``, ``2e-3``, ``[a, b]``)."""
    import yaml

    out = {}
    for kv in assignments:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise ParamsError(f"--set {kv!r}: expected KEY=VALUE")
        out[k] = yaml.safe_load(v)
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = paths.resolve(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"params file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of parameter names to values, got {_type_name(data)}")
    return data


# Checks that need the module owning a concern (files a parameter names, plans that cannot run), by notebook number:
# "module:function", called with the validated parameters and where they came from; raise ParamsError naming the
# parameter. tacsol run applies them before a phase starts, the notebooks' validation cell (check_notebook) too.
PLAN_CHECKS = {
    "00": "tacsol.pairs:check_build_params",
    "01": "tacsol.profile:check_params",
    "02": "tacsol.vram:check_params",
    "03": "tacsol.train:check_phase",
    "04": "tacsol.launch:check_params",
    "05": "tacsol.launch:check_params",
}


def check_plan(notebook: str | Path, values: dict[str, Any], where: str) -> None:
    """The notebook's PLAN_CHECKS entry on its validated parameters (nothing for a notebook without one)."""
    target = PLAN_CHECKS.get(Path(notebook).stem.split("_", 1)[0])
    if target:
        module, function = target.split(":")
        getattr(importlib.import_module(module), function)(values, where)


def notebook_for_params(path: str | Path) -> Path:
    """params/NN_anything.yaml belongs to notebooks/NN_*.ipynb (variants share the number)."""
    stem = Path(path).stem
    return paths.notebook_path(stem.split("_", 1)[0])


def validate_params_file(path: str | Path, notebook: str | Path | None = None) -> dict[str, Any]:
    nb = Path(notebook) if notebook else notebook_for_params(path)
    spec = notebook_parameters(nb)
    return validate(load_yaml(path), spec, where=f"{Path(path).name} (for {Path(nb).name})")


def _injected_from_history(user_ns: dict[str, Any]) -> dict[str, Any] | None:
    """The last cell papermill injected ('# Parameters' header), parsed from IPython's input history."""
    history = user_ns.get("In") or []
    for src in reversed(history):
        if isinstance(src, str) and src.lstrip().startswith("# Parameters"):
            try:
                return parse_assignments(src, "injected parameters")
            except ParamsError:
                # papermill may inject non-literal reprs; fall back to names only
                tree = ast.parse(src)
                return {
                    n.targets[0].id: user_ns.get(n.targets[0].id)
                    for n in tree.body
                    if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                }
    return None


def check_notebook(user_ns: dict[str, Any], notebook: str) -> dict[str, Any]:
    """Validation cell of every notebook: ``params = tacsol.params.check_notebook(globals(), "02")``.

    Raises ParamsError naming the key when papermill injected an unknown or mistyped parameter.
    Returns the resolved parameters (a plain dict, recorded in summary.json)."""
    nb_path = paths.notebook_path(notebook)
    spec = notebook_parameters(nb_path)
    injected = _injected_from_history(user_ns)
    if injected:
        validate(injected, spec, where=f"{nb_path.name} (papermill parameters)")
    current = {k: user_ns[k] for k in spec if k in user_ns}
    missing = sorted(set(spec) - set(current))
    if missing:
        raise ParamsError(f"{nb_path.name}: parameters cell not executed? missing {missing}")
    merged = validate(current, spec, where=nb_path.name)
    check_plan(nb_path, merged, nb_path.name)
    return merged
