"""Outputs that cannot be written fail with a message naming the path, leave nothing half-written, and reach the
user as exit code 2 without a traceback (issue 16)."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tacsol import ioutil

ROOT = Path(__file__).resolve().parents[1]


def test_unwritable_folder_names_the_path(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")  # a file where a folder should be: unwritable even for root
    target = blocker / "run" / "summary.json"
    with pytest.raises(ioutil.OutputError, match=f"cannot write {target}: "):
        ioutil.atomic_write_json(target, {"a": 1})
    with pytest.raises(ioutil.OutputError, match=f"cannot write {target}"):
        ioutil.append_durably(target, "line\n")


def test_disk_full_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    ioutil.atomic_write_json(target, {"old": True})

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ioutil.OutputError, match=r"cannot write .*summary.json: No space left on device \(the disk is full\)"):
        ioutil.atomic_write_json(target, {"new": True, "pad": "x" * 100_000})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_parquet_table_round_trips_without_its_index_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import pandas as pd

    target = tmp_path / "eval" / "functions.parquet"
    table = pd.DataFrame({"id": ["a", "b", "c"], "score": [0.5, 1.0, 0.0]})
    ioutil.atomic_write_parquet(target, table[table["score"] > 0.1])   # a filtered frame: index 0, 1 dropped
    back = pd.read_parquet(target)
    assert list(back.columns) == ["id", "score"] and back["id"].tolist() == ["a", "b"]

    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(ioutil.OutputError, match="functions.parquet"):
        ioutil.atomic_write_parquet(target, table)
    assert pd.read_parquet(target)["id"].tolist() == ["a", "b"]
    assert [q.name for q in target.parent.iterdir()] == ["functions.parquet"]


def test_cli_reports_an_unwritable_output_as_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    gens = tmp_path / "g.jsonl"
    gens.write_text("")
    proc = subprocess.run([sys.executable, "-m", "tacsol.cli", "evaluate", str(gens), "--dataset", "sample",
                           "--out", str(blocker / "out"), "--only-generated", "--no-figures", "--no-compile",
                           "--no-behaviour", "--embedder", "none"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr and f"{blocker / 'out'}" in proc.stderr and "Not a directory" in proc.stderr
