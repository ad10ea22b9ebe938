#!/usr/bin/env python
"""Differential check of lifted TAC against py-evm on corpus functions (issue 14: correctness stays exact):

    .venv/bin/python tools/diff_corpus_tac.py ref_l2_t40 --level 3 --sample 400 --calls 6 \
        --constructs 'memory\\(arg' 'memory_words\\(' 'memcpy\\(' 'bytes\\(returndata\\)' --json out.json

Takes a seeded sample of a built dataset's records (outputs/data/<name>), lifts each record's runtime from the
compile cache its build filled at --level, keeps the functions whose TAC holds one of --constructs (regular
expressions; all of them without the option), and runs --calls random calls per function (valid ABI encodings of
the header's arguments: bytes and strings of 0-70 bytes, word arrays of 0-3 words, small values; addresses either
the identity precompile or an address without code; with --responders every address but the contract, its caller
and the precompiles holds code returning the word 1) in py-evm and in the TAC interpreter of the tests
(tests/lift_interp.py), comparing the outcome, return or revert data, storage writes and logs. A call whose result
differs is run again on the level-1 TAC: when that differs too, the interpreter does not model what the function
does (gasleft() in an event, a call into the contract itself) and it is counted apart. Prints the counts and every
difference; functions the interpreter cannot run (an environment value it does not model, a callee printed as an
effect summary) are counted apart too, never as equal. Exit status 1 when a call differs at --level only.

Without a dataset, --mutations N takes the functions of N mutated lifter-fixture runtimes instead (byte flips,
splices, inserted jumps: tests/lift_mutations.py, as tools/fuzz_lift.py), those whose TAC is `ok`: code no
compiler wrote, where a level-2/3 pass that assumes solc's patterns would show as a difference at --level only.

    .venv/bin/python tools/diff_corpus_tac.py --mutations 1000 --level 3 --calls 3 --json out.json"""
from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

_WORD = re.compile(r"u?int\d+|address|bool|bytes\d+")


def header_types(tac: str) -> list[str] | None:
    """The argument types of a level-2/3 header, or None when one is outside what the calls below encode."""
    m = re.match(r"function \S+\((.*)\)(?: \w+)?$", tac.split("\n", 1)[0])
    types = [p.split(": ", 1)[1] for p in m.group(1).split(", ")] if m and m.group(1) else []
    ok = all(t in ("bytes", "string") or (t.endswith("[]") and _WORD.fullmatch(t[:-2])) or _WORD.fullmatch(t)
             for t in types)
    return types if ok else None


def random_call(types: list[str], rng: random.Random) -> tuple[list[str], list]:
    """(the types as the test encoder names them, values) of one call."""
    names, values = [], []
    for t in types:
        if t in ("bytes", "string"):
            names.append(t)
            values.append(bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 31, 32, 33, 70]))))
        elif t.endswith("[]"):
            names.append("uint256[]")
            bits = 8 if t[:-2] in ("bool", "uint8") else 64
            values.append([rng.getrandbits(bits) for _ in range(rng.choice([0, 1, 3]))])
        elif re.fullmatch(r"bytes\d+", t):   # left-aligned: a bytesN argument's valid encoding
            names.append("uint256")
            values.append(rng.getrandbits(8 * int(t[5:])) << (256 - 8 * int(t[5:])))
        else:
            names.append("uint256")
            values.append(rng.choice([4, rng.getrandbits(160)]) if t == "address" else rng.getrandbits(1)
                          if t == "bool" else rng.getrandbits(8))
    return names, values


def dataset_functions(name: str, sample: int, seed: int, counts: collections.Counter):
    """(record, runtime hex) of a seeded sample of a built dataset's records, runtimes from its compile cache."""
    import pandas as pd

    from tacsol import pairs
    from tacsol.baselines import bytecode_from_cache
    from tacsol.evm import link_placeholders

    dd = pairs.load(name)
    df = pd.concat([dd[s].to_pandas() for s in dd], ignore_index=True)
    df = df.sample(min(sample, len(df)), random_state=seed)
    codes, missing = bytecode_from_cache(df.to_dict("records"))
    counts["no_runtime"] = len(missing)
    for r in df.to_dict("records"):
        if codes.get(r["id"]) is not None:
            yield r, link_placeholders(codes[r["id"]])


def mutated_functions(n: int, seed: int, level: int, counts: collections.Counter, lifted: dict):
    """(record, runtime hex) of every public function whose TAC at `level` is ok, in n mutated fixture runtimes;
    each runtime's lift goes into `lifted` (runtime hex -> LiftedContract), which main reads instead of lifting
    again."""
    from lift_mutations import mutate, seeds

    from tacsol.lift import LiftError, lift

    pool, rng = seeds(), random.Random(seed)
    for i in range(n):
        how, raw = mutate(pool, rng)
        try:
            res = lift(raw, level=level, time_limit_s=2)
        except LiftError:
            counts["mutated runtimes refused"] += 1
            continue
        counts["mutated runtimes lifted"] += 1
        lifted[raw.hex()] = res
        for f in res.functions:
            if f.status == "ok" and f.selector.startswith("0x"):
                yield {"selector": f.selector, "contract": f"mutation {i} ({how})", "signature": f.selector,
                       "settings": ""}, raw.hex()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", help="a name under outputs/data/")
    ap.add_argument("--mutations", type=int, default=0,
                    help="instead of a dataset: this many mutated fixture runtimes (tests/lift_mutations.py)")
    ap.add_argument("--level", type=int, choices=[1, 2, 3], default=3, help="TAC level to lift at (default 3)")
    ap.add_argument("--sample", type=int, default=400, help="records drawn from the dataset (default 400)")
    ap.add_argument("--calls", type=int, default=6, help="random calls per function (default 6)")
    ap.add_argument("--constructs", nargs="*", default=[], help="keep functions whose TAC matches one of these")
    ap.add_argument("--responders", action="store_true",
                    help="every address but the contract, its caller and the precompiles has code that returns "
                         "the word 1 (RESPONDER_CODE), so calls succeed and the code after them runs")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json", help="also write the counts and differences here")
    a = ap.parse_args(argv)

    from tqdm import tqdm

    import test_lift_semantics as sem
    from tacsol.lift import LiftError, lift

    if bool(a.dataset) == bool(a.mutations):
        ap.error("name a dataset or --mutations N (one of them)")
    wanted = [re.compile(p) for p in a.constructs]
    rng = random.Random(a.seed)
    counts: collections.Counter = collections.Counter()
    diffs = []
    lifted: dict[str, object] = {}
    items = mutated_functions(a.mutations, a.seed, a.level, counts, lifted) if a.mutations else \
        dataset_functions(a.dataset, a.sample, a.seed, counts)
    for r, code in tqdm(items, desc="functions", unit="fn"):
        try:
            res = lifted[code] = lifted.get(code) or lift(code, level=a.level, time_limit_s=60)
            tac = res.function(r["selector"]).tac
        except (LiftError, KeyError):
            counts["not lifted"] += 1
            continue
        if wanted and not any(p.search(tac) for p in wanted):
            continue
        if not re.fullmatch(r"0x[0-9a-f]{8}", str(r["selector"])):
            counts["fallback or receive (no selector to call)"] += 1
            continue
        types = header_types(tac)
        if types is None:
            counts["argument types not encoded"] += 1
            continue
        counts["functions"] += 1
        for _ in range(a.calls):
            names, values = random_call(types, rng)
            data = bytes.fromhex(r["selector"][2:]) + sem._abi_encode(names, values)
            try:
                want = sem._evm_outcome(code, data, a.responders)
            except Exception as e:  # noqa: BLE001 - the oracle failing is a finding (BLOBHASH was one): count, show
                counts[f"py-evm failed: {type(e).__name__}"] += 1
                print(f"PY-EVM FAILED {r['contract']}.{r['signature']} {data.hex()}: {type(e).__name__}: {e}")
                break
            try:
                got = sem._tac_outcome(tac, data, code, a.responders)
            except (NotImplementedError, KeyError) as e:   # an environment value, a summarized callee
                counts[f"not run: {type(e).__name__}"] += 1
                break
            if got == want:
                counts[f"equal {want[0]}"] += 1
                continue
            base = lift(code, level=1, time_limit_s=60).function(r["selector"]).tac
            try:
                also = sem._tac_outcome(base, data, code, a.responders) != want
            except (NotImplementedError, KeyError):
                also = True
            if also:   # level 1 differs too: what the interpreter does not model (gas left, calls into itself)
                counts["different at level 1 too"] += 1
                break
            counts["different"] += 1
            diffs.append({"contract": r["contract"], "signature": r["signature"], "settings": r["settings"],
                          "calldata": data.hex(), "evm": want[0], "tac": got[0]})
            print(f"DIFFERENT {r['contract']}.{r['signature']} {r['settings']}: evm {want[0]}, tac {got[0]}")
            break
    print(json.dumps(dict(counts), indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps({"dataset": a.dataset, "mutations": a.mutations, "level": a.level,
                                            "sample": a.sample,
                                            "calls": a.calls, "seed": a.seed, "constructs": a.constructs,
                                            "responders": a.responders,
                                            "counts": dict(counts), "differences": diffs}, indent=1) + "\n")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
