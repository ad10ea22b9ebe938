#!/usr/bin/env python
"""Published runs' adapter weights kept in git history instead of the working tree, and restored on demand.

Every published run (tools/publish_reference.py --trained) wrote its adapter under docs/evidence/<run>/<phase>/
trained/: 9.8 MB of LoRA weights and a 3.5 MB tokenizer each. Seven runs put the tracked tree at 147 MB, past the
64 MiB that the GPU machine's tool carries: no device check could run. `slim` moves each such file out of the tree
(git rm) and writes beside it, in weights.json, where it stays: its path, size, sha256 and the commit that holds it.
`restore` writes the files back from that commit and checks each digest, so an old run's adapter is one command
away (`tacsol decompile --adapter <dir>` needs it):

    .venv/bin/python tools/evidence_weights.py slim docs/evidence/reference-l3-rag/03_baseline_3b/trained
    .venv/bin/python tools/evidence_weights.py restore docs/evidence/reference-l3-rag/03_baseline_3b/trained
    .venv/bin/python tools/evidence_weights.py check            # every weights.json: its commits hold its files

The shipped adapter (lib/tacsol/data/adapter/) stays in the tree: `tacsol decompile` runs on it out of the box.
A clone needs the history (not `--depth 1`) to restore. An adapter trained with retrieval prompts also has its
retrieval index (neighbours.jsonl.gz, ~0.36 MB: what its prompts cite, needed by `--adapter`), which moves out
whatever its size: the last run's is a byte-for-byte copy of the shipped adapter's."""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "weights.json"
MIN_BYTES = 1 << 20   # what moves out: files of a megabyte or more (weights, tokenizer); configs and logs stay
KINDS = (".safetensors", ".bin", "tokenizer.json")
INDEXES = ("neighbours.jsonl.gz",)   # an adapter's retrieval index (train.NEIGHBOUR_INDEX): moves out at any size


def _git(*args: str, data: bool = False):
    out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)
    if out.returncode:
        raise SystemExit(f"git {' '.join(args)}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout if data else out.stdout.decode().strip()


def heavy_files(folder: Path) -> list[Path]:
    """The tracked files under `folder` that slim moves out, in path order."""
    tracked = _git("ls-files", "-z", "--", str(folder.relative_to(ROOT))).split("\0")
    return sorted(ROOT / p for p in tracked if p and (ROOT / p).is_file() and (
        p.endswith(INDEXES) or p.endswith(KINDS) and (ROOT / p).stat().st_size >= MIN_BYTES))


def slim(folder: Path) -> dict:
    """Record the heavy files of `folder` (committed, unchanged) in folder/weights.json and git rm them."""
    files = heavy_files(folder)
    if not files:
        raise SystemExit(f"{folder}: no tracked file of {MIN_BYTES} bytes or more ({', '.join(KINDS)}), nor "
                         f"{', '.join(INDEXES)}")
    dirty = _git("status", "--porcelain", "--", *(str(f.relative_to(ROOT)) for f in files))
    if dirty:
        raise SystemExit(f"{folder}: commit these first, so that a commit holds them as they are:\n{dirty}")
    commit = _git("rev-parse", "HEAD")
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"files": []}
    moved = {f.relative_to(folder).as_posix(): f.read_bytes() for f in files}
    manifest["files"] = [e for e in manifest["files"] if e["path"] not in moved] + [   # a file slimmed again: its
        {"path": path, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(), "commit": commit}  # new commit
        for path, blob in moved.items()]
    manifest["restore"] = f"python tools/evidence_weights.py restore {folder.relative_to(ROOT)}"
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    _git("rm", "-q", "--", *(str(f.relative_to(ROOT)) for f in files))
    _git("add", "--", str(manifest_path.relative_to(ROOT)))
    return manifest


def restore(folder: Path, verify_only: bool = False) -> list[str]:
    """Write back (or, verify_only, only read from history) every file weights.json names; returns what it did."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise SystemExit(f"{folder}: no {MANIFEST} (nothing was moved out of this folder)")
    done = []
    for entry in json.loads(manifest_path.read_text())["files"]:
        target = folder / entry["path"]
        where = f"{entry['commit']}:{target.relative_to(ROOT).as_posix()}"
        blob = _git("cat-file", "blob", where, data=True)
        digest = hashlib.sha256(blob).hexdigest()
        if digest != entry["sha256"] or len(blob) != entry["bytes"]:
            raise SystemExit(f"{where}: sha256 {digest[:12]}… ({len(blob)} bytes), expected "
                             f"{entry['sha256'][:12]}… ({entry['bytes']} bytes)")
        if not verify_only:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(blob)
            tmp.replace(target)   # atomic: a killed restore leaves no half file under the real name
        done.append(f"{'verified' if verify_only else 'restored'} {target.relative_to(ROOT)} ({len(blob):,} bytes)")
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, text in (("slim", "move a folder's weights out of the tree (git rm) and write its weights.json"),
                       ("restore", "write a folder's weights back from the commits its weights.json names")):
        p = sub.add_parser(name, help=text)
        p.add_argument("folders", nargs="+", type=Path, help="folders under the repository (a run's trained/)")
    sub.add_parser("check", help="every weights.json in docs/evidence: its commits hold its files, digests equal")
    a = ap.parse_args(argv)
    if a.cmd == "check":
        folders = sorted(p.parent for p in (ROOT / "docs" / "evidence").rglob(MANIFEST))
    else:
        folders = [f.resolve() for f in a.folders]
        outside = [f for f in folders if ROOT not in f.parents]
        if outside:
            raise SystemExit(f"{outside[0]}: not under the repository {ROOT}")
    for folder in folders:
        if a.cmd == "slim":
            m = slim(folder)
            print(f"{folder.relative_to(ROOT)}: {len(m['files'])} file(s) in {MANIFEST}, removed from the tree")
        else:
            for line in restore(folder, verify_only=a.cmd == "check"):
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
