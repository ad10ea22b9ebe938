"""Fill `unit_main` on the shipped sample's records and bundle the test split's compile units beside it
(lib/tacsol/data/sample/units.json.gz), so that the behaviour harness runs on the sample without the npm cache.

    python tools/sample_units.py          # needs the sample's packages in the npm cache (tacsol data build fetches them)

Then run tools/sample_licences.py: it drops records whose unit is not permissive and sets each record's licence.
"""
from __future__ import annotations

import gzip
import json
import sys

from tacsol import corpus, pairs
from tacsol.ioutil import atomic_write_bytes, atomic_write_text


def main() -> int:
    units = corpus.RecordUnits()
    bundle: dict[str, dict[str, str]] = {}
    missing = 0
    for split in pairs.SPLITS:
        path = pairs.SAMPLE_DIR / f"{split}.jsonl"
        rows = pairs.read_jsonl(path)
        for r in rows:
            try:
                main, srcs = units.sources(r)
            except corpus.UnitNotFound:
                missing += 1
                continue
            r["unit_main"] = main
            if split == "test":
                bundle[f"{r['package']}|{main}"] = srcs
        atomic_write_text(path, "".join(json.dumps({c: r.get(c, "") for c in pairs.COLUMNS}) + "\n" for r in rows))
        path.chmod(0o644)
    out = pairs.SAMPLE_DIR / "units.json.gz"
    atomic_write_bytes(out, gzip.compress(json.dumps(bundle, sort_keys=True).encode(), 9))
    out.chmod(0o644)
    print(f"{len(bundle)} units bundled ({out.stat().st_size / 1e3:.0f} kB); {missing} records without a unit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
