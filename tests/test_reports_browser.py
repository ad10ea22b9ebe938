"""The rendered index and a report open in headless Chromium with their plots loaded (non-blank screenshot)."""
import json
import shutil
import subprocess
import sys

import pytest

from tacsol import paths

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian chromium + chromium-driver not installed (make setup installs them)")


def _fake_runs(root):
    """A GPU run of 03 evaluated by the real tacsol.evaluate on sample records (fine-tuned and retrieval)."""
    sys.path.insert(0, str(paths.repo_root() / "tests"))
    from test_compare import _evaluate, _phase, _records

    recs = _records()
    d = _phase(root, "gpu", "03_baseline_3b", {"model": "meta-llama/Llama-3.2-3B", "params_total": 3.2e9,
               "gpu_hours": 10.0, "max_seq_length": 2048}, smoke=False)
    _evaluate(recs, {r["id"]: r["solidity"] for r in recs}, d, "fine-tuned")
    _evaluate(recs, {r["id"]: recs[i - 1]["solidity"] for i, r in enumerate(recs)}, d, "retrieval")


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1600"]:
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _check_page(driver, url, shot):
    import numpy as np
    from PIL import Image

    driver.get(url)
    imgs = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt || i.src.slice(0, 40)])")
    assert imgs, f"{url}: no images on the page"
    broken = [i for i in imgs if not (i[0] and i[1] > 0 and i[2] > 0)]
    assert not broken, f"{url}: images not loaded: {broken}"
    driver.save_screenshot(str(shot))
    px = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert px.std() > 5, f"{url}: screenshot is blank (pixel std {px.std():.1f})"
    return len(imgs)


def test_index_and_report_render_with_plots(tmp_path, monkeypatch):
    fake = tmp_path / "runs"
    _fake_runs(fake)
    monkeypatch.setenv("TACSOL_OUTPUTS", str(tmp_path / "outputs"))
    res = subprocess.run([sys.executable, "-m", "tacsol.cli", "run", "06", "--run-name", "browser", "--no-progress",
                          "-p", f"runs_root={fake}"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    run_dir = tmp_path / "outputs" / "browser"
    assert json.loads((run_dir / "run.json").read_text())["phases"][0]["status"] == "ok"
    driver = _browser()
    try:
        n_index = _check_page(driver, (run_dir / "index.html").as_uri(), tmp_path / "index.png")
        n_report = _check_page(driver, (run_dir / "06_compare" / "06_compare.html").as_uri(), tmp_path / "report.png")
    finally:
        driver.quit()
    assert n_index >= 3 and n_report >= 3  # thumbnails on the index; embedded figures in the report


def _mini_notebook(path, code, depends_on=()):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    if depends_on:
        nb.metadata["tacsol"] = {"depends_on": list(depends_on)}
    params = nbformat.v4.new_code_cell('run_name = "x"\noutput_dir = "x"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)
    return path


def test_failed_phase_is_marked_and_dependents_skipped(tmp_path, monkeypatch):
    from tacsol import runner

    monkeypatch.setenv("TACSOL_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setattr(runner, "_library_fingerprint", lambda: "fixed")  # the library is not under test here
    ok_code = ("from tacsol import summary\n"
               "summary.write_summary(output_dir, 'x', {'answer': 42}, {}, smoke=True)")
    nbs = [_mini_notebook(tmp_path / "10_fail.ipynb", "raise RuntimeError('boom: partial report kept')"),
           _mini_notebook(tmp_path / "11_needs_10.ipynb", ok_code, depends_on=["10"]),
           _mini_notebook(tmp_path / "12_independent.ipynb", ok_code)]
    records = runner.run_phases(nbs, "failrun", progress=False)
    assert [r["status"] for r in records] == ["failed", "skipped", "ok"]
    assert "boom" in records[0]["error"]
    assert (tmp_path / "outputs" / "failrun" / "10_fail" / "10_fail.ipynb").exists()  # partial report
    index = (tmp_path / "outputs" / "failrun" / "index.html").read_text()
    assert "boom: partial report kept" in index and "depends on failed phase(s) 10" in index
    # a rerun reuses the unchanged successful phase and retries the failed one
    again = runner.run_phases(nbs, "failrun", progress=False)
    assert again[2].get("reused") is True and again[0]["status"] == "failed"
