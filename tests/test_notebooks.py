"""The notebooks only call the library and draw: each is paired with a percent-format script (jupytext, for readable
diffs) that says the same, and their code stays small."""
import jupytext
import nbformat
import pytest

from tacsol import paths

NOTEBOOKS = paths.list_notebooks()
MAX_CODE_LINES = 750  # issue 15: the notebooks' code outside the parameters cells, all together


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def code_lines(nb) -> int:
    """Non-blank, non-comment lines of the code cells, the cell tagged `parameters` excepted."""
    return sum(1 for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
               for line in c.source.splitlines() if line.strip() and not line.lstrip().startswith("#"))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_is_in_sync_with_its_percent_script(nb_path):
    script = nb_path.with_suffix(".py")
    assert script.is_file(), f"{script.name} missing: jupytext --sync {nb_path.relative_to(paths.repo_root())}"
    assert _cells(jupytext.read(script)) == _cells(nbformat.read(nb_path, as_version=4)), (
        f"{nb_path.name} and {script.name} differ: edit one, then jupytext --sync the notebook")


def test_every_script_has_its_notebook_and_no_outputs_are_committed():
    scripts = sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.py"))
    assert [s.stem for s in scripts] == [nb.stem for nb in NOTEBOOKS]
    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), nb_path.name


def test_notebook_code_stays_within_budget():
    lines = {nb.stem: code_lines(nbformat.read(nb, as_version=4)) for nb in NOTEBOOKS}
    assert sum(lines.values()) <= MAX_CODE_LINES, lines
