#!/usr/bin/env python
"""Token figures of built datasets side by side (issue 14's level-2 goals), in Llama-3 tokens (tacsol.tokens):

    .venv/bin/python tools/tac_level_report.py ref ref_l2          # outputs/data/<name>, any number of datasets
    .venv/bin/python tools/tac_level_report.py sample --relift 2   # a dataset's records lifted again at level 2

Per dataset: pairs, its TAC level (manifest.json), median TAC and Solidity tokens, the median per-pair ratio
TAC / Solidity, and the share of pairs whose prompt + target (tacsol.prompt's template, BOS and EOS counted) fit in
2,048 and 4,096 tokens; then the same on the pairs every dataset holds (same package, contract, signature and
settings), so that levels compare on the same functions. --relift LEVEL adds each dataset lifted again at that level
from the compile cache its build filled (records whose runtime is not there are left out, and counted)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol import pairs, paths, profile  # noqa: E402

KEY = ["package", "contract", "signature", "settings"]
MODEL = "llama3"


def figures(df) -> dict:
    m = profile.measure(df, [MODEL])
    tac, sol, full = m[f"{MODEL}:tac"], m[f"{MODEL}:sol"], m[f"{MODEL}:full"]
    return {"pairs": len(df), "median_tac": float(tac.median()), "median_sol": float(sol.median()),
            "median_ratio": float((tac / sol.clip(lower=1)).median()),
            "within_2048": float((full <= 2048).mean()), "within_4096": float((full <= 4096).mean())}


def frame(name: str):
    import pandas as pd

    dd = pairs.load(name)
    return pd.concat([dd[s].to_pandas() for s in dd], ignore_index=True)


def relift(df, level: int):
    """The records whose runtime the compile cache holds, their TAC lifted again at `level`; and how many had none."""
    from tacsol.baselines import bytecode_from_cache
    from tacsol.evm import link_placeholders
    from tacsol.lift import LiftError, lift

    codes, missing = bytecode_from_cache(df.to_dict("records"))
    lifted: dict[str, dict[str, str]] = {}
    tacs = []
    for rid, sel in zip(df["id"], df["selector"]):
        code = codes.get(rid)
        if code is not None and code not in lifted:
            try:
                lifted[code] = {f.selector: f.tac for f in lift(link_placeholders(code), level=level).functions}
            except LiftError:
                lifted[code] = {}
        tacs.append(lifted.get(code, {}).get(sel, "") if code is not None else "")
    out = df.assign(tac=tacs)
    return out[out["tac"] != ""], len(missing)


def level(name: str) -> int:
    """The dataset's TAC level: its manifest's, 1 before levels existed (and for the shipped sample)."""
    p = paths.outputs_dir() / "data" / name / "manifest.json"
    return json.loads(p.read_text()).get("tac_level", 1) if p.is_file() else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", help="names under outputs/data/")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--relift", type=int, choices=[1, 2], help="also each dataset lifted again at this level")
    a = ap.parse_args(argv)
    frames = {n: frame(n) for n in a.datasets}
    levels = {n: level(n) for n in a.datasets}
    if a.relift:
        for n in a.datasets:
            frames[f"{n}:L{a.relift}"], missing = relift(frames[n], a.relift)
            levels[f"{n}:L{a.relift}"] = a.relift
            print(f"{n}: {missing} records without a cached runtime left out of {n}:L{a.relift}")
    common = set.intersection(*(set(map(tuple, f[KEY].to_numpy())) for f in frames.values()))
    out = {}
    for n, f in frames.items():
        same = f[[tuple(r) in common for r in f[KEY].to_numpy()]].drop_duplicates(KEY)
        out[n] = {"tac_level": levels[n], "all": figures(f), "common": figures(same)}
    cols = ["pairs", "median_tac", "median_sol", "median_ratio", "within_2048", "within_4096"]
    print(f"{'dataset':12s} {'level':>5s} {'set':7s} " + " ".join(f"{c:>12s}" for c in cols))
    for n, r in out.items():
        for which in ("all", "common"):
            vals = " ".join(f"{r[which][c]:>12.3f}" if isinstance(r[which][c], float) else f"{r[which][c]:>12d}"
                            for c in cols)
            print(f"{n:12s} {str(r['tac_level']):>5s} {which:7s} {vals}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
