#!/usr/bin/env python
"""Token figures of built datasets side by side (issue 14's level-2 goals), in Llama-3 tokens (tacsol.tokens):

    .venv/bin/python tools/tac_level_report.py ref ref_l2          # outputs/data/<name>, any number of datasets
    .venv/bin/python tools/tac_level_report.py sample --relift 2   # a dataset's records lifted again at level 2

Per dataset: pairs, its TAC level (manifest.json), median TAC and Solidity tokens, the median per-pair ratio
TAC / Solidity, and the share of pairs whose prompt + target (tacsol.prompt's template, BOS and EOS counted) fit in
2,048 and 4,096 tokens; then the same on the pairs every dataset holds (same package, contract, signature and
settings), so that levels compare on the same functions. --relift LEVEL adds each dataset lifted again at that level
from the compile cache its build filled (records whose runtime is not there are left out, and counted). --kinds
adds where the TAC's tokens go (profile.tac_token_shares) over the middle of each dataset: the pairs between the
30th and 70th percentile of the TAC / Solidity character ratio, which decide the median. --event-names adds each
dataset with its known event topics printed as signatures, as a run with ``event_names`` reads them
(tacsol.signatures.name_events; --exclude-packages: a run's held-out packages, left out of the table). --tail TOKENS
adds what lies past TOKENS in each dataset (profile.tail_report): pairs by package, solc version and contract."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol import pairs, profile  # noqa: E402

MODEL = "llama3"


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


def with_event_names(df, dataset: str, exclude_packages=()):
    """The records with their TAC's known event topics named by the dataset's table (tacsol.signatures), as a run
    with event_names sees them: train records as a held-out contract would (hint_train_records), the others with
    the table; nothing else of the prompt changes."""
    from tacsol import signatures

    table = signatures.table_for(dataset, {}).restricted(exclude_packages=exclude_packages)
    recs = df.to_dict("records")
    train = [i for i, r in enumerate(recs) if r.get("split") == "train"]
    rest = [i for i, r in enumerate(recs) if r.get("split") != "train"]
    tacs = list(df["tac"])
    for idx, named in ((train, signatures.hint_train_records([recs[i] for i in train], table, events=True)),
                       (rest, signatures.hint_records([recs[i] for i in rest], table, events=True))):
        for i, r in zip(idx, named):
            tacs[i] = r["tac"]
    return df.assign(tac=tacs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", help="names under outputs/data/")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--relift", type=int, choices=[1, 2, 3], help="also each dataset lifted again at this level")
    ap.add_argument("--event-names", action="store_true",
                    help="also each dataset (relifted when --relift) with its known event topics named "
                         "(signature_hints + event_names)")
    ap.add_argument("--exclude-packages", nargs="*", default=[],
                    help="with --event-names: packages the table leaves out (a run's holdout_packages)")
    ap.add_argument("--kinds", action="store_true",
                    help="also the share of TAC tokens per operation over the middle of each dataset")
    ap.add_argument("--tail", type=int, metavar="TOKENS",
                    help="also what lies past TOKENS (prompt + target) in each dataset: by package, solc version "
                         "and contract (profile.tail_report)")
    a = ap.parse_args(argv)
    frames = {n: frame(n) for n in a.datasets}
    for n, f in frames.items():
        f.attrs["tac_level"] = pairs.tac_level(n)
    if a.relift:
        for n in a.datasets:
            frames[f"{n}:L{a.relift}"], missing = relift(frames[n], a.relift)
            frames[f"{n}:L{a.relift}"].attrs["tac_level"] = a.relift
            print(f"{n}: {missing} records without a cached runtime left out of {n}:L{a.relift}")
    if a.event_names:
        for n in list(frames):
            frames[f"{n}+events"] = with_event_names(frames[n], n.split(":")[0], a.exclude_packages)
            frames[f"{n}+events"].attrs["tac_level"] = frames[n].attrs["tac_level"]
    lengths = {n: profile.measure(f, [MODEL]) for n, f in frames.items() if len(f)}   # tokenized once, read twice
    rows = profile.level_comparison(frames, MODEL, lengths)
    cols = ["pairs", "median_tac", "median_sol", "median_ratio", "within_2048", "within_4096"]
    print(f"{'dataset':12s} {'level':>5s} {'set':7s} " + " ".join(f"{c:>12s}" for c in cols))
    for r in rows:
        vals = " ".join(f"{r[c]:>12.3f}" if isinstance(r.get(c), float) else f"{r.get(c, 0):>12d}" for c in cols)
        print(f"{r['dataset']:12s} {r['tac_level']:>5d} {r['pairs_in']:7s} {vals}")
    out = {n: {"tac_level": frames[n].attrs["tac_level"],
               **{r["pairs_in"]: {c: r.get(c) for c in cols} for r in rows if r["dataset"] == n}} for n in frames}
    if a.kinds:
        for n, f in frames.items():
            ratio = f["tac"].str.len() / f["solidity"].str.len().clip(lower=1)
            lo, hi = ratio.quantile([0.3, 0.7])
            shares = profile.tac_token_shares(f.loc[(ratio >= lo) & (ratio <= hi), "tac"], MODEL)
            out[n]["token_shares_middle"] = shares
            print(f"{n}: tokens per operation, pairs between the 30th and 70th percentile of the ratio")
            print("  " + ", ".join(f"{op} {v:.1%}" for op, v in list(shares.items())[:16]))
    if a.tail:
        for n, f in frames.items():
            if n not in lengths:   # an empty dataset
                continue
            tail = profile.tail_report(f, lengths[n], a.tail, MODEL)
            out[n]["tail"] = tail
            print(f"{n}: {tail['over']} pairs past {a.tail} tokens ({tail['to_reach_95_pct']} more than 95% "
                  f"within allows); median {tail['median_sol_tokens']} Solidity and {tail['median_tac_tokens']} "
                  f"TAC tokens, {tail['median_excess_tokens']} past")
            for key in ("by_package", "by_solc", "by_contract"):
                print(f"  {key[3:]}: " + ", ".join(f"{k} {v}" for k, v in tail[key].items()))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
