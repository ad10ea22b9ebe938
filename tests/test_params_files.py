"""Every params file matches its notebook's parameters cell (names and types), LitGPT test_config_hub style;
unknown or mistyped keys are refused with a message naming them."""
from pathlib import Path

import pytest

from tacsol import params as P
from tacsol import paths

ROOT = paths.repo_root()
PARAM_FILES = sorted((ROOT / "params").glob("[0-9][0-9]_*.yaml"))
TEST_PARAM_FILES = sorted((ROOT / "tests" / "params").glob("[0-9][0-9]_*.yaml"))


@pytest.mark.parametrize("path", PARAM_FILES + TEST_PARAM_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_params_file_matches_notebook(path: Path):
    nb = P.notebook_for_params(path)
    resolved = P.validate_params_file(path, nb)
    assert set(P.load_yaml(path)) <= set(resolved)


@pytest.mark.parametrize("path", PARAM_FILES + TEST_PARAM_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_params_file_passes_its_notebooks_plan_check(path: Path):
    """No shipped plan is impossible (LoRA targets, context, launch plan, NF4 generation: tacsol.params.PLAN_CHECKS);
    the dataset aside, since 'corpus' is what phase 00 builds."""
    nb = P.notebook_for_params(path)
    values = P.validate_params_file(path, nb)
    P.check_plan(nb, {**values, **({"dataset": "sample"} if "dataset" in values else {})}, path.name)


@pytest.mark.parametrize("nb", paths.list_notebooks(), ids=lambda p: p.stem)
def test_notebook_parameters_cell_is_plain_literals(nb: Path):
    spec = P.notebook_parameters(nb)
    assert "output_dir" in spec, f"{nb.name} must take an output_dir parameter"
    assert spec, nb


@pytest.mark.parametrize("nb", paths.list_notebooks(), ids=lambda p: p.stem)
def test_notebook_validates_params_in_first_code_cell_after_parameters(nb: Path):
    import json

    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    idx = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    following = "".join(cells[idx + 1]["source"])
    assert "check_notebook(" in following, f"{nb.name}: the cell after 'parameters' must call tacsol.params.check_notebook"


def test_unknown_key_is_refused_with_suggestion(tmp_path):
    spec = {"model": "x", "lora_r": 16, "learning_rate": 2e-4, "gradient_checkpointing": True}
    with pytest.raises(P.ParamsError, match=r"unknown parameter 'lora_rank' \(did you mean 'lora_r'\?\)"):
        P.validate({"lora_rank": 8}, spec, where="t.yaml")


def test_mistyped_value_is_refused_naming_the_field():
    spec = {"lora_r": 16, "learning_rate": 2e-4, "gradient_checkpointing": True}
    with pytest.raises(P.ParamsError, match="'lora_r' must be int"):
        P.validate({"lora_r": "16"}, spec, where="t.yaml")
    with pytest.raises(P.ParamsError, match="'gradient_checkpointing' must be bool"):
        P.validate({"gradient_checkpointing": 1}, spec, where="t.yaml")
    # ints are valid floats, and the merge keeps defaults
    assert P.validate({"learning_rate": 1}, spec, where="t.yaml")["lora_r"] == 16


def test_parameters_cell_must_be_literals():
    with pytest.raises(P.ParamsError, match="not a plain literal"):
        P.parse_assignments("x = 1\ny = compute()\n", "cell")
    with pytest.raises(P.ParamsError, match="only `name = literal`"):
        P.parse_assignments("import os\n", "cell")


def test_injected_unknown_key_is_refused_inside_kernel():
    nb = paths.list_notebooks()[0]
    spec = P.notebook_parameters(nb)
    ns = dict(spec)
    ns["In"] = ["", "# Parameters\nno_such_param = 3\n"]
    with pytest.raises(P.ParamsError, match="no_such_param"):
        P.check_notebook(ns, nb.stem)
    ns["In"] = [""]
    assert P.check_notebook(ns, nb.stem) == spec


def test_cli_run_refuses_unknown_key_before_running(tmp_path, capsys):
    from tacsol.cli import main

    nb = paths.list_notebooks()[0]
    bad = tmp_path / f"{nb.stem.split('_')[0]}_bad.yaml"
    bad.write_text("definitely_not_a_param: 1\n")
    assert main(["run", nb.stem, "--params", str(bad), "--run-name", "_test_refuse"]) == 2
    assert "definitely_not_a_param" in capsys.readouterr().err
    assert not (paths.outputs_dir() / "_test_refuse").exists()


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_params_file_reads_like_a_recipe(path: Path):
    """The header holds the exact command that runs this file, and a training recipe starts with its model."""
    text = path.read_text()
    header = text.split("\n\n", 1)[0]
    rel = path.relative_to(ROOT).as_posix()
    assert f"tacsol run {path.name[:2]} --params {rel}" in header, f"{rel}: header lacks its `tacsol run` command"
    keys = [ln.split(":", 1)[0] for ln in text.splitlines() if ln and not ln.startswith(("#", " "))]
    if "model" in keys:
        assert keys[0] == "model", f"{rel}: `model` must come first, got {keys[0]!r}"


def test_notebook_03_refuses_an_unknown_prefill_mode_before_training():
    nb = P.notebook_for_params(ROOT / "params" / "03_reference_cpu.yaml")
    values = {**P.notebook_parameters(nb), "dataset": "sample"}
    P.check_plan(nb, values, "03")                                   # the default (none) passes
    with pytest.raises(P.ParamsError, match=r"03: parameter 'eval_prefill': 'sometimes': choose from"):
        P.check_plan(nb, {**values, "eval_prefill": "sometimes"}, "03")
