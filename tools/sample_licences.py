"""Hold the shipped sample (lib/tacsol/data/sample/) to unit licences: a record stays only if every source of its
compile unit is permissive (corpus.file_license: the file's SPDX line, else its package's licence), its `license`
becomes that unit's licence, the test units bundle (units.json.gz) keeps only the units of the test records left,
and signatures.json is rebuilt from what is left. Rerunning it changes nothing.

The sample was picked by `tacsol data build --permissive-only --write-sample` when licences were per package;
rebuilding it needs a corpus build, this does not (docs/dataset.md, "Shipped sample").

    python tools/sample_licences.py           # the train/validation units come from the npm cache (outputs/cache/npm)
    python tools/sample_licences.py --check   # report only, write nothing
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys

from tacsol import corpus, pairs, signatures
from tacsol.ioutil import atomic_write_bytes, atomic_write_text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="report what would be removed; write nothing")
    args = ap.parse_args()
    bundle_path = pairs.SAMPLE_DIR / "units.json.gz"
    bundle = json.loads(gzip.decompress(bundle_path.read_bytes()))
    units = corpus.RecordUnits(bundle=bundle)
    kept: dict[str, list[dict]] = {}
    for split in pairs.SPLITS:
        rows = pairs.read_jsonl(pairs.SAMPLE_DIR / f"{split}.jsonl")
        kept[split] = []
        for r in rows:
            try:
                files = units.file_licenses(r)
            except corpus.UnitNotFound as exc:  # never guess: a unit that cannot be read cannot be cleared
                print(f"{split} {r['id']} {r['package']}:{r['contract']}.{r['signature']}: {exc}", file=sys.stderr)
                return 1
            lic = corpus.unit_license(files)
            if corpus.is_permissive(lic):
                kept[split].append({**r, "license": lic})
            else:
                print(f"drop {split} {r['package']}:{r['contract']}.{r['signature']}: {pairs.license_detail(files)}")
        print(f"{split}: {len(rows)} -> {len(kept[split])} records")
    test_units = {f"{r['package']}|{units.main_of(r)}" for r in kept["test"]}
    new_bundle = {k: v for k, v in bundle.items() if k in test_units}
    for key, srcs in new_bundle.items():
        files = units.file_licenses({"package": key.split("|")[0], "unit_main": key.split("|")[1],
                                     "file": next(iter(srcs))})
        if not corpus.is_permissive(corpus.unit_license(files)):
            raise AssertionError(f"{key}: {pairs.license_detail(files)}")
    print(f"units.json.gz: {len(bundle)} -> {len(new_bundle)} test units")
    if args.check:
        return 0
    for split, rows in kept.items():
        path = pairs.SAMPLE_DIR / f"{split}.jsonl"
        atomic_write_text(path, "".join(json.dumps({c: r.get(c, "") for c in pairs.COLUMNS}) + "\n" for r in rows))
        path.chmod(0o644)  # mkstemp files are 0600; the sample ships in the repo
    atomic_write_bytes(bundle_path, gzip.compress(json.dumps(new_bundle, sort_keys=True).encode(), 9))
    bundle_path.chmod(0o644)
    signatures.write_for_dataset(pairs.SAMPLE_DIR, kept, "sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
