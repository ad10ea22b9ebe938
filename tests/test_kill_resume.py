"""Killed jobs resume and lose nothing: each long job is SIGKILLed in the middle and rerun, and the result equals an
unbroken run (issue 16). Each job runs in its own TACSOL_CACHE / TACSOL_OUTPUTS so that the kill lands on cold work."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TACSOL = [sys.executable, "-m", "tacsol.cli"]
SOL = ROOT / "tests" / "fixtures" / "pairs" / "sol"


def _env(tmp: Path, **extra) -> dict:
    return {**os.environ, "TACSOL_CACHE": str(tmp / "cache"), "TACSOL_OUTPUTS": str(tmp / "out"), **extra}


def _kill_when(proc: subprocess.Popen, ready, what: str, timeout_s: float = 600) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ended first (then nothing was tested)."""
    deadline = time.time() + timeout_s
    while not ready():
        assert proc.poll() is None, f"the job ended before {what}: nothing to kill"
        assert time.time() < deadline, f"no {what} after {timeout_s:.0f} s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _files(folder: Path) -> list[Path]:
    """Finished files: an atomic write's temporary (".name.xxx.tmp") does not count."""
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")] if folder.exists() else []


def _dataset_rows(out: Path, name: str) -> list[dict]:
    from tacsol import pairs

    dd = pairs.load(out / "data" / name / "dataset")
    return sorted((dict(r) for s in pairs.SPLITS for r in dd[s]), key=lambda r: r["id"])


def test_data_build_killed_then_rerun_equals_an_unbroken_build(tmp_path):
    build = TACSOL + ["data", "build", "--name", "k", "--folder", str(SOL), "--settings", "noopt", "opt200"]
    killed, unbroken = tmp_path / "killed", tmp_path / "unbroken"
    proc = subprocess.Popen(build, env=_env(killed), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: len(_files(killed / "cache" / "pairs")) >= 1, "the first unit's pairs were cached")
    cached = len(_files(killed / "cache" / "pairs"))
    assert not (killed / "out" / "data" / "k" / "manifest.json").exists(), "the build finished before the kill"
    again = subprocess.run(build, env=_env(killed), cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    manifest = json.loads((killed / "out" / "data" / "k" / "manifest.json").read_text())
    assert manifest["units_pairs_from_cache"] >= cached  # the rerun used what the killed build had finished
    ref = subprocess.run(build, env=_env(unbroken), cwd=ROOT, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    got, want = _dataset_rows(killed / "out", "k"), _dataset_rows(unbroken / "out", "k")
    assert len(got) > 20 and got == want


@pytest.mark.slow
def test_evaluate_killed_in_behaviour_then_rerun_equals_an_unbroken_run(tmp_path):
    """Behaviour is the long stage; its per-unit compile cache is what a rerun keeps."""
    from tacsol import pairs

    test = list(pairs.load("sample")["test"])[:6]
    gens = tmp_path / "gens.jsonl"
    gens.write_text("".join(json.dumps({"id": r["id"], "generated": r["solidity"]}) + "\n" for r in test))
    evaluate = TACSOL + ["evaluate", str(gens), "--dataset", "sample", "--only-generated", "--no-figures",
                         "--bootstrap", "50"]
    killed, unbroken = tmp_path / "killed", tmp_path / "unbroken"
    proc = subprocess.Popen(evaluate + ["--out", str(killed / "run")], env=_env(killed), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: len(_files(killed / "cache" / "behaviour")) >= 1, "the first behaviour compile")
    assert not (killed / "run" / "eval" / "summary.json").exists(), "the evaluation finished before the kill"
    assert not [p for p in _files(killed / "run") if p.suffix in (".json", ".parquet")]
    for folder in (killed, unbroken):
        done = subprocess.run(evaluate + ["--out", str(folder / "run")], env=_env(folder), cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]

    def table(folder: Path) -> list[dict]:
        import pandas as pd

        rows = pd.read_parquet(folder / "run" / "eval" / "functions.parquet").to_dict("records")
        return sorted(rows, key=lambda r: r["id"])

    got, want = table(killed), table(unbroken)
    assert len(got) == len(test) and got == want
    assert sum(r["behaviour"] == "equivalent" for r in got) >= 0.9 * len(got)


@pytest.mark.slow
def test_report_killed_mid_phase_is_not_reused_on_rerun(tmp_path):
    """A phase killed while papermill rewrites its notebook must run again under `tacsol run all`-style reuse,
    not be vouched for by the previous run's stamp; the rerun leaves a complete notebook, HTML and index."""
    from tacsol import runner

    env = _env(tmp_path)
    run = TACSOL + ["run", "02", "--run-name", "kr", "--no-progress"]
    first = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    phase = tmp_path / "out" / "kr" / "02_vram_estimation"
    executed = phase / "02_vram_estimation.ipynb"
    before = executed.stat().st_mtime_ns
    proc = subprocess.Popen(run, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: executed.exists() and executed.stat().st_mtime_ns != before,
               "papermill rewrote the notebook")
    code = subprocess.run(
        [sys.executable, "-c", "import sys; from tacsol import runner, paths; "
         "recs = runner.run_phases([paths.notebook_path('02')], 'kr', progress=False); "
         "sys.exit(0 if recs[0]['status'] == 'ok' and not recs[0].get('reused') else 3)"],
        env=env, cwd=ROOT, capture_output=True, text=True)
    assert code.returncode == 0, "the killed phase was reused instead of rerun: " + code.stdout[-1500:]
    nb = json.loads(executed.read_text())
    assert all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip())
    assert (phase / "02_vram_estimation.html").is_file() and json.loads((phase / "summary.json").read_text())["headline"]
    index = (tmp_path / "out" / "kr" / "index.html").read_text()
    assert "02_vram_estimation" in index and runner.read_json(tmp_path / "out" / "kr" / "run.json")["phases"][0]["status"] == "ok"
