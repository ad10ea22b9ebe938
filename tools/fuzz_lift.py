#!/usr/bin/env python
"""Fuzz benchmark of the lifter (issue 16): thousands of mutated real runtimes (tests/lift_mutations.py), each lifted in
its own forked child with a hard kill at time limit + margin, so that a hang or a crash of native code (evmole) is
counted instead of stopping the run. Prints and writes: cases, outcomes (lifted / refused by reason), crashes
(any other exception or a dead child), hangs (killed), slowest case, peak memory of a case (child max RSS above an
idle child's).

  .venv/bin/python tools/fuzz_lift.py --cases 3000 --out docs/evidence/fuzz_lift.json
  .venv/bin/python tools/fuzz_lift.py --cases 3000 --level 3 --out docs/evidence/fuzz_lift_l3.json
(run it on an otherwise idle machine: a case is killed as a hang on wall time.) Levels 2 and 3 run ~30 more passes
over each function, on code the mutations make odd (unbalanced internal calls, loops without exits): the level
`tacsol decompile` lifts at by default is 3.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lift_mutations import mutate, seeds  # noqa: E402

from tacsol.ioutil import atomic_write_json  # noqa: E402
from tacsol.lift import LiftError, lift  # noqa: E402


def _child(raw: bytes, limit: float, w: int, level: int) -> None:
    try:
        res = lift(raw, time_limit_s=limit, level=level)
        msg = {"outcome": "lifted", "functions": len(res.functions),
               "statuses": dict(collections.Counter(f.status for f in res.functions))}
    except LiftError as exc:
        msg = {"outcome": "refused", "reason": exc.reason}
    except BaseException as exc:  # noqa: BLE001 - the point is to count these
        msg = {"outcome": "crash", "error": f"{type(exc).__name__}: {exc}"[:300]}
    os.write(w, json.dumps(msg).encode())
    os._exit(0)


def run_case(raw: bytes, limit: float, margin: float, level: int = 1) -> dict:
    r, w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(raw, limit, w, level)
    os.close(w)
    killed = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - t0 > limit + margin:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            killed = True
            break
        time.sleep(0.002)
    seconds = time.monotonic() - t0
    data = os.read(r, 1 << 16)
    os.close(r)
    if killed:
        out = {"outcome": "hang"}
    elif not data:
        out = {"outcome": "crash", "error": f"child died (status {status})"}
    else:
        out = json.loads(data)
    # CPU seconds are what the case cost; wall seconds also count waiting for a busy machine's cores
    out.update(seconds=round(seconds, 3), cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
               max_rss_mb=round(usage.ru_maxrss / 1024, 1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=3000, help="mutated inputs to lift (default 3000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--time-limit", type=float, default=2.0, help="lift(time_limit_s=...) per case (default 2)")
    ap.add_argument("--margin", type=float, default=8.0,
                    help="wall seconds past the limit before a case is killed and counted as a hang (default 8: "
                         "evmole's analysis is outside the lifter's time limit, and a loaded machine is slow)")
    ap.add_argument("--level", type=int, choices=(1, 2, 3), default=1, help="TAC level to lift at (default 1)")
    ap.add_argument("--out", default=None, help="JSON file for the figures (e.g. docs/evidence/fuzz_lift.json)")
    args = ap.parse_args()
    from tqdm import tqdm

    pool, rng = seeds(), random.Random(args.seed)
    idle = run_case(b"", args.time_limit, args.margin)["max_rss_mb"]  # a child that refuses at once: the baseline
    rows = []
    for i in tqdm(range(args.cases), desc="fuzz lift", unit="case"):
        name, raw = mutate(pool, rng)
        rows.append({"case": i, "mutation": name, "size": len(raw), **run_case(raw, args.time_limit, args.margin, args.level)})
    outcomes = collections.Counter(r["outcome"] for r in rows)
    slowest = max(rows, key=lambda r: r["cpu_s"])
    heaviest = max(rows, key=lambda r: r["max_rss_mb"])
    report = {
        "what": "tools/fuzz_lift.py: mutated lifter-fixture runtimes, one forked child per case",
        "machine": f"{os.cpu_count()} CPU cores (this run's host)", "seeds": len(pool), "cases": len(rows),
        "level": args.level, "time_limit_s": args.time_limit, "hang_after_s": args.time_limit + args.margin,
        "outcomes": dict(outcomes),
        "refused_by_reason": dict(collections.Counter(r["reason"] for r in rows if r["outcome"] == "refused")),
        "function_statuses": dict(sum((collections.Counter(r["statuses"]) for r in rows if r["outcome"] == "lifted"),
                                      collections.Counter())),
        "crashes": [r for r in rows if r["outcome"] == "crash"][:20], "hangs": [r for r in rows if r["outcome"] == "hang"][:20],
        "slowest": {k: slowest[k] for k in ("case", "mutation", "size", "cpu_s", "seconds", "outcome")},
        "median_cpu_s": sorted(r["cpu_s"] for r in rows)[len(rows) // 2],
        "max_wall_s": max(r["seconds"] for r in rows),
        "idle_child_rss_mb": idle,
        "peak_case_rss_mb": heaviest["max_rss_mb"], "peak_case_rss_above_idle_mb": round(heaviest["max_rss_mb"] - idle, 1),
        "peak_case": {k: heaviest[k] for k in ("case", "mutation", "size", "outcome")},
    }
    print(json.dumps({k: v for k, v in report.items() if k not in ("crashes", "hangs")}, indent=1))
    print(f"crashes {outcomes.get('crash', 0)}, hangs {outcomes.get('hang', 0)}")
    if args.out:
        atomic_write_json(args.out, report)
    return 1 if outcomes.get("crash") or outcomes.get("hang") else 0


if __name__ == "__main__":
    raise SystemExit(main())
