"""tools/evidence_weights.py: a published run's weights leave the working tree for git history and come back
byte for byte; and the tracked tree stays small enough for the GPU machine's tool to carry it (64 MiB)."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import evidence_weights as W  # noqa: E402

DEVICE_LIMIT_MIB = 64     # what the device tool carries: tracked files, untracked ones and carried paths together
TREE_BUDGET_MIB = 56      # the tracked tree's share, leaving room for carried assets (a dataset, wheels)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository holding one published run's trained/ folder: weights, a tokenizer, a small config."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@t")
    _git(tmp_path, "config", "user.name", "t")
    adapter = tmp_path / "docs" / "evidence" / "run" / "03" / "trained" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 8192)   # 2 MiB
    (adapter / "tokenizer.json").write_bytes(b'{"v": 1}' + b" " * (1 << 20))
    (adapter / "adapter_config.json").write_text('{"r": 16}')
    (adapter / "neighbours.jsonl.gz").write_bytes(bytes(range(256)) * 64)   # a retrieval index: moves at any size
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "publish")
    monkeypatch.setattr(W, "ROOT", tmp_path)
    return tmp_path, adapter.parent


def test_slim_moves_the_weights_to_history_and_restore_brings_them_back_byte_for_byte(repo):
    root, trained = repo
    adapter = trained / "adapter"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in adapter.iterdir()}
    manifest = W.slim(trained)
    assert sorted(e["path"] for e in manifest["files"]) == ["adapter/adapter_model.safetensors",
                                                            "adapter/neighbours.jsonl.gz", "adapter/tokenizer.json"]
    assert not (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    _git(root, "commit", "-q", "-m", "slim")
    tracked = _git(root, "ls-files").split()
    assert "docs/evidence/run/03/trained/weights.json" in tracked and not any(p.endswith(".safetensors")
                                                                              for p in tracked)
    assert W.restore(trained, verify_only=True)   # history holds both, digests equal; nothing written
    assert not (adapter / "tokenizer.json").exists()
    done = W.restore(trained)
    assert len(done) == 3
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in adapter.iterdir()} == before


def test_slim_refuses_uncommitted_weights_and_restore_refuses_a_wrong_digest(repo):
    root, trained = repo
    weights = trained / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")
    with pytest.raises(SystemExit, match="commit these first"):
        W.slim(trained)
    _git(root, "checkout", "-q", "--", str(weights.relative_to(root)))
    W.slim(trained)
    manifest = json.loads((trained / "weights.json").read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    (trained / "weights.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="sha256"):
        W.restore(trained)
    assert not (trained / manifest["files"][0]["path"]).exists()   # nothing half-written under the real name


def test_the_tracked_tree_fits_what_the_device_tool_carries():
    """Every device check sends the tracked tree; past 64 MiB none can run (it reached 147 MiB with seven runs'
    adapters). A run published with tools/publish_reference.py --trained is slimmed once committed."""
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=False)
    if out.returncode:
        pytest.skip("not a git checkout")
    files = [ROOT / p for p in out.stdout.decode().split("\0") if p and (ROOT / p).is_file()]
    sizes = sorted(((f.stat().st_size, f) for f in files), reverse=True)
    total = sum(s for s, _ in sizes) / 2**20
    largest = ", ".join(f"{f.relative_to(ROOT)} ({s / 2**20:.1f} MiB)" for s, f in sizes[:5])
    assert total <= TREE_BUDGET_MIB < DEVICE_LIMIT_MIB, (
        f"tracked tree {total:.1f} MiB > {TREE_BUDGET_MIB} MiB; largest: {largest}. Move published weights to "
        "history: python tools/evidence_weights.py slim docs/evidence/<run>/<phase>/trained")


def test_every_published_runs_weights_are_in_history_with_their_digest():
    """Each weights.json under docs/evidence names a commit that holds its files, byte for byte (sha256): what
    `restore` would write back. Needs the history (a shallow clone cannot restore, and is skipped)."""
    shallow = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"], capture_output=True,
                             text=True, check=False)
    if shallow.returncode or shallow.stdout.strip() != "false":
        pytest.skip("not a full git checkout")
    manifests = sorted((ROOT / "docs" / "evidence").rglob(W.MANIFEST))
    assert manifests, "no weights.json under docs/evidence"
    for m in manifests:
        done = W.restore(m.parent, verify_only=True)
        assert len(done) == len(json.loads(m.read_text())["files"]) >= 2, m
