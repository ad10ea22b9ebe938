#!/usr/bin/env python
"""Snapshot of the lifter's output on every runtime bytecode found offline, to prove a refactor changes nothing.

    .venv/bin/python tools/lift_snapshot.py /tmp/lift_before.json                      # before the change
    .venv/bin/python tools/lift_snapshot.py /tmp/lift_after.json --compare /tmp/lift_before.json

Lifts, in both label modes: every `runtime` in tests/fixtures/lift/*.json, the random and hand-written programs of
tests/test_lift_semantics.py and tests/test_lift.py (their bad inputs too, by LiftError reason) and, with
--solc-cache, every runtime of a tacsol.corpus compile cache. --level 2 snapshots the compact TAC instead (level 1,
the default, is what a refactor must keep byte-identical). The shipped sample holds no bytecode. Writes
{"hash", "contracts": {name: {selector: LiftedFunction fields, "_contract": warnings and sizes} | {"error": reason}}};
--compare prints what differs and exits 1 when anything does."""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

from tacsol.lift import LiftError, lift  # noqa: E402

LABELS = ("seq", "offset")
TIME_LIMIT_S = 600.0   # far above any fixture's need: a timeout would make the snapshot depend on the machine


def fixture_codes() -> dict[str, str]:
    out = {}
    for path in sorted((ROOT / "tests" / "fixtures" / "lift").glob("*.json")):
        for c in json.loads(path.read_text()):
            out[f"{path.stem}:{c['id']}"] = c["runtime"]
    return out


def test_codes() -> dict[str, str | bytes | int]:
    """The inputs the lift tests build in code (imported, so the snapshot follows them)."""
    import test_lift
    import test_lift_semantics as sem

    out: dict = {"test_lift:cancun": test_lift.CANCUN_CODE}
    out.update({f"test_lift:bad{i}": code for i, (code, _) in enumerate(test_lift.BAD_INPUTS)})
    out.update({f"semantics:random{i}": code for i, (code, _, _) in enumerate(sem.random_cases())})
    out.update({f"semantics:order-{name}": sem.operand_order_code(name) for name, _, _ in sem.OPERAND_ORDER})
    out.update({f"semantics:simplify{i}": sem.simplification_code(b) for i, b in enumerate(sem.SIMPLIFICATIONS)})
    return out


def solc_cache_codes(cache: Path) -> dict[str, str]:
    from tacsol.evm import link_placeholders  # as the dataset build does (libraries linked to stand-ins)

    out = {}
    for p in sorted(cache.glob("*/*.json.gz")):
        contracts = json.load(gzip.open(p)).get("contracts") or {}
        for name, x in sorted(contracts.items()):
            if x.get("bytecode"):
                out[f"solc:{p.parent.name}/{p.name}:{name}"] = link_placeholders(x["bytecode"])
    return out


def snapshot_one(code, labels: str, level: int = 1) -> dict:
    try:
        res = lift(code, time_limit_s=TIME_LIMIT_S, labels=labels, level=level)
    except LiftError as exc:
        return {"error": exc.reason}
    d = res.to_dict()
    out = {f.pop("selector"): f for f in d.pop("functions")}
    out["_contract"] = d
    return out


def snapshot(codes: dict, level: int = 1) -> dict:
    contracts = {f"{name}@{labels}": snapshot_one(code, labels, level) for name, code in codes.items()
                 for labels in LABELS}
    digest = hashlib.sha256(json.dumps(contracts, sort_keys=True).encode()).hexdigest()
    return {"hash": digest, "contracts": contracts}


def differences(old: dict, new: dict) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            out.append(f"{name}: only in the {'new' if a is None else 'old'} snapshot")
            continue
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                fields = sorted(k for k in set(a.get(key) or {}) | set(b.get(key) or {})
                                if (a.get(key) or {}).get(k) != (b.get(key) or {}).get(k)) \
                    if isinstance(a.get(key), dict) and isinstance(b.get(key), dict) else ["(whole entry)"]
                out.append(f"{name} {key}: {', '.join(fields)}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON file to write")
    ap.add_argument("--compare", help="an earlier snapshot: print the differences, exit 1 if any")
    ap.add_argument("--solc-cache",
                    help="also lift every runtime in a tacsol.corpus compile cache (outputs/cache/solc)")
    ap.add_argument("--level", type=int, choices=[1, 2, 3], default=1,
                    help="TAC level to lift at (default 1, the one a refactor must keep byte-identical)")
    a = ap.parse_args(argv)
    codes = {**fixture_codes(), **test_codes()}
    if a.solc_cache:
        codes.update(solc_cache_codes(Path(a.solc_cache)))
    snap = snapshot(codes, a.level)
    Path(a.out).write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    n_fn = sum(len(v) - 1 for v in snap["contracts"].values() if "error" not in v)
    print(f"{len(codes)} inputs x {len(LABELS)} label modes, {n_fn} functions: {snap['hash']}")
    if a.compare:
        # compare as written (JSON lists), not in memory (line_pcs tuples): equal files are equal snapshots
        diff = differences(json.loads(Path(a.compare).read_text())["contracts"],
                           json.loads(Path(a.out).read_text())["contracts"])
        print("\n".join(diff) if diff else f"identical to {a.compare}")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
