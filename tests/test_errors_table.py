"""Every bad input the kit can get (tools/errors_table.py runs each as a real `tacsol` invocation): exit code 2, no
traceback, a message naming the item and the field; docs/errors.md is exactly the table those invocations give."""
import difflib
import importlib.util
import sys
from pathlib import Path

import pytest

from tacsol import params as P
from tacsol import paths

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("errors_table", ROOT / "tools" / "errors_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


E = _tool()


@pytest.fixture(scope="module")
def results():
    return E.run_all()


def test_every_bad_input_exits_2_without_traceback_naming_item_and_field(results):
    bad = [f"{r.case.area}: {r.case.bad}: {', '.join(E.problems(r))}\n    {r.message}" for r in results
           if E.problems(r)]
    assert not bad, "\n".join(bad)


def test_docs_errors_md_is_the_table_the_invocations_give(results):
    old, new = E.DOC.read_text(encoding="utf-8"), E.render(results)
    diff = "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), "docs/errors.md", "regenerated",
                                          lineterm=""))
    assert old == new, f"docs/errors.md is out of date; regenerate it with `python tools/errors_table.py`:\n{diff}"


def test_the_notebooks_validation_cell_applies_the_plan_checks_tacsol_run_does():
    ns = P.notebook_parameters(paths.notebook_path("05"))
    ns["n_processes"] = 1
    with pytest.raises(P.ParamsError, match="05_train_70b_zero3.ipynb: launch plan: ZeRO-3 .* with n_processes 1"):
        P.check_notebook(ns, "05")
    ns = P.notebook_parameters(paths.notebook_path("03"))
    ns["lora_targets"] = ["qkv_proj"]
    with pytest.raises(P.ParamsError, match="parameter 'lora_targets': \\['qkv_proj'\\] are not Linear modules"):
        P.check_notebook(ns, "03")
