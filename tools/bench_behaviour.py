"""The behaviour metric's controls and speed on a dataset split (issue 13):

  coverage   share of distinct functions the harness can test with the reference itself (goal >= 90%)
  reference  the reference recompiled in place: share `equivalent` among the testable (goal >= 98%)
  renamed    state variables, internal functions, parameters consistently renamed: share `equivalent` (goal >= 95%)
  mutants    swapped operands, flipped comparison, dropped require, changed constant, removed event, write to
             another variable: share `differs` among testable mutants (goal >= 90%)
  (renamed and mutants on the functions whose reference is `equivalent`, since 2026-12-07)
  speed      functions per second for the reference control, compilation included (goal >= 5/s on 2 cores),
             in wall seconds and in CPU seconds (this process and its solcjs processes: the machine may be shared)

    python tools/bench_behaviour.py --dataset ref --limit 300 --out docs/evidence/behaviour/ref_test.json
    python tools/bench_behaviour.py --dataset sample
    # speed with every original unit cached and every candidate compiled anew (a new generation's case):
    python tools/bench_behaviour.py --dataset ref --reference-only --fresh-candidates
    # the first scoring of a function set: its originals traced too
    python tools/bench_behaviour.py --dataset ref --reference-only --fresh-candidates --fresh-traces
    # the same with py-evm's own opcode table (the harness's peer: the fused opcodes' gain)
    python tools/bench_behaviour.py --dataset ref --reference-only --fresh-candidates --fresh-traces --opcodes py-evm
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import sys
import time


def _cpu_parts() -> tuple[float, float]:
    """CPU seconds of this process, and of its finished children (the solcjs servers count once closed)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime, b.ru_utime + b.ru_stime


def _cpu() -> float:
    return sum(_cpu_parts())


def _speed(h, n: int, wall: float, cpu0: float, parts0: tuple[float, float, float] | None = None) -> dict:
    """cpu0: _cpu() + h.workers.cpu_s() at the start; parts0: (_cpu_parts(), h.workers.cpu_s()) at the start, for
    the CPU seconds per process kind (this process: placing, binding, the compile queue; solcjs; py-evm workers)."""
    h.compiler.close()   # its processes' CPU time is counted when they end
    cpu = _cpu() + h.workers.cpu_s() - cpu0
    out = {"wall_s": round(wall, 1), "functions_per_s": round(n / wall, 2), "cpu_s": round(cpu, 1),
           "functions_per_cpu_s": round(n / cpu, 2), "stages_wall_s": {k: round(v, 1) for k, v in h.timings.items()}}
    if parts0 is not None:
        now = (*_cpu_parts(), h.workers.cpu_s())
        out["cpu_s_by_process"] = {k: round(b - a, 1) for k, a, b in zip(("harness", "solcjs", "py-evm workers"),
                                                                          parts0, now)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="sample", help="dataset name under outputs/data/, a folder, or 'sample'")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=300, help="distinct functions (one record per near-dup group)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fetch", action="store_true", help="download packages missing from the npm cache")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--compile-cache", help="a compile cache folder to use instead of outputs/cache/behaviour "
                    "(an empty one measures the speed with every unit compiled)")
    ap.add_argument("--fresh-candidates", action="store_true",
                    help="place a new comment after every candidate, so that no candidate compile is cached (the "
                    "original units still are): the speed of scoring new generations")
    ap.add_argument("--fresh-traces", action="store_true",
                    help="trace the originals anew, in a temporary folder (the original units stay cached): the "
                    "first scoring of a function set")
    ap.add_argument("--reference-only", action="store_true", help="only the reference control (speed runs)")
    ap.add_argument("--opcodes", choices=["fused", "py-evm"], default="fused",
                    help="py-evm's own opcode table instead of the harness's fused opcodes (the peer to compare with)")
    ap.add_argument("--generations", help="a system's functions.parquet (id, generated): score its generations "
                    "on its functions instead (the speed of scoring a real system, most of whose functions differ)")
    args = ap.parse_args()
    os.environ["TACSOL_OPCODES"] = args.opcodes   # before the harness starts its worker processes

    from tacsol import pairs
    from tacsol.evaluate import behaviour as B, controls as C
    from tacsol.evaluate import trace as TR
    from tacsol.ioutil import atomic_write_json

    ds = pairs.load(args.dataset)
    recs, seen = [], set()
    rows = [dict(r) for r in ds[args.split]]
    random.Random(args.seed).shuffle(rows)
    for r in rows:
        g = r.get("group") or r.get("norm_hash") or r["id"]
        if g not in seen:
            seen.add(g)
            recs.append(r)
    recs = recs[: args.limit]
    h = B.Harness(B.record_units(fetch=args.fetch), seed=args.seed)
    if args.compile_cache:
        from pathlib import Path
        h.compiler.dir = Path(args.compile_cache)
    if args.fresh_traces:
        import tempfile
        from pathlib import Path
        h.trace_dir = Path(tempfile.mkdtemp(prefix="tacsol-traces-"))
    if args.fresh_candidates:
        h.candidate_salt = f"tacsol bench {time.time_ns()}"
    figures: dict = {"dataset": args.dataset, "split": args.split, "n_functions": len(recs),
                     "machine": f"{os.cpu_count()} CPU cores, load average at start "
                                f"{os.getloadavg()[0]:.1f}", "seed": args.seed,
                     "compile_cache": "cold (empty)" if args.compile_cache else "outputs/cache/behaviour (may be warm)",
                     "fresh_candidates": args.fresh_candidates, "fresh_traces": args.fresh_traces,
                     "opcodes": args.opcodes}

    if args.generations:
        return _score_generations(args, ds, h, figures)
    cpu0, t0 = _cpu() + h.workers.cpu_s(), time.perf_counter()
    parts0 = (*_cpu_parts(), h.workers.cpu_s())
    ref = h.check_many(recs, [r["solidity"] for r in recs], progress=True)
    wall = time.perf_counter() - t0
    s = B.summarize(ref)
    testable = s["n"] - s["untestable"]
    speed = _speed(h, len(recs), wall, cpu0, parts0)
    figures["reference"] = {**s, "coverage": testable / max(1, s["n"]),
                            "equivalent_of_testable": s["equivalent"] / max(1, testable),
                            "by_revert_data_only": sum(x.detail.startswith("the original reverts on every path")
                                                       for x in ref),
                            "searched_returning": sum(x.status != "untestable" and x.reference_ok > 0 and
                                                      any(c.found and not c.found.startswith(TR.BRANCH_NOTE)
                                                          for c in h._traces.get(_tkey(h, r), _NO).cases)
                                                      for r, x in zip(recs, ref)),
                            "differs_examples": [x.detail for x in ref if x.status == "differs"][:5],
                            "untestable": [f"{x.reason} {r['contract']}.{r['signature']} {r['settings']}: "
                                           f"{x.detail[:160]}" for r, x in zip(recs, ref) if x.status == "untestable"],
                            **speed}
    print(f"reference: coverage {testable}/{s['n']}, equivalent {s['equivalent']}/{testable}, "
          f"{speed['functions_per_s']} functions/s, {speed['functions_per_cpu_s']} per CPU second  "
          f"untestable {s['untestable_reasons']}  stages {speed['stages_wall_s']}  CPU s "
          f"{speed['cpu_s_by_process']}")

    if args.reference_only:
        if args.out:
            atomic_write_json(args.out, figures)
        return 0
    # the renamed and mutant controls ask whether the harness sees a change, so only where the unchanged reference
    # is equivalent: a mutant of a function whose own reference differs (gas-dependent code, a msg.sig check) would
    # count as caught whatever it changed
    ok = [(r, h.original(r)) for r, x in zip(recs, ref) if x.status == "equivalent"]
    ren = [C.rename_consistently(r["solidity"], [v["label"] for v in o.layout], list(o.functions))[0] for r, o in ok]
    h.timings.clear()
    cpu0, t0 = _cpu() + h.workers.cpu_s(), time.perf_counter()
    rres = h.check_many([r for r, _ in ok], ren, progress=True)
    s2 = B.summarize(rres)
    figures["renamed"] = {**s2, "equivalent_of_reference_testable": s2["equivalent"] / max(1, len(ok)),
                          **_speed(h, len(ok), time.perf_counter() - t0, cpu0),
                          "not_equivalent": [f"{x.status} {x.reason} {r['contract']}.{r['signature']}: "
                                             f"{x.detail[:200]} | {'; '.join(x.bindings)[:300]}"
                                             for (r, _), x in zip(ok, rres) if x.status != "equivalent"]}
    print(f"renamed: equivalent {s2['equivalent']}/{len(ok)}, bindings needed {s2['binding_needed']}, "
          f"unbound {s2['binding_failed']}")

    mr, mt, kinds = [], [], []
    for r, o in ok:
        for k, text in C.mutants(r["solidity"], o.layout, C.invisible_variables(o.private_vars, r["contract"])):
            mr.append(r)
            mt.append(text)
            kinds.append(k)
    h.timings.clear()
    cpu0, t0 = _cpu() + h.workers.cpu_s(), time.perf_counter()
    mres = h.check_many(mr, mt, progress=True)
    by_kind = collections.Counter((k, x.status) for k, x in zip(kinds, mres))
    tm = [x for x in mres if x.status != "untestable"]
    figures["mutants"] = {"n": len(mres), "testable": len(tm), "differs": sum(x.status == "differs" for x in tm),
                          "differs_of_testable": sum(x.status == "differs" for x in tm) / max(1, len(tm)),
                          "by_kind": {f"{k}:{st}": n for (k, st), n in sorted(by_kind.items())},
                          **_speed(h, len(mres), time.perf_counter() - t0, cpu0),
                          "equivalent": [f"{k} {r['contract']}.{r['signature']}" for k, r, x in zip(kinds, mr, mres)
                                         if x.status == "equivalent"]}
    print(f"mutants: differs {figures['mutants']['differs']}/{len(tm)} testable ({len(mres)} made)")
    if args.out:
        atomic_write_json(args.out, figures)
        print("wrote", args.out)
    return 0


def _score_generations(args, ds, h, figures: dict) -> int:
    import pandas as pd

    from tacsol.evaluate import behaviour as B
    from tacsol.ioutil import atomic_write_json

    df = pd.read_parquet(args.generations)
    by_id = {r["id"]: dict(r) for split in ds for r in ds[split]}
    rows = [(by_id[i], g) for i, g in zip(df["id"], df["generated"]) if i in by_id]
    cpu0, t0 = _cpu() + h.workers.cpu_s(), time.perf_counter()
    res = h.check_many([r for r, _ in rows], [g for _, g in rows], progress=True)
    speed = _speed(h, len(rows), time.perf_counter() - t0, cpu0)
    s = B.summarize(res)
    figures.update({"generations": args.generations, "n_functions": len(rows), "system": {**s, **speed}})
    print(f"{args.generations}: {len(rows)} functions, equivalent {s['equivalent']}, differs {s['differs']}, "
          f"untestable {s['untestable']}; {speed['functions_per_s']} functions/s, {speed['functions_per_cpu_s']} "
          f"per CPU second  stages {speed['stages_wall_s']}")
    if args.out:
        atomic_write_json(args.out, figures)
    return 0


class _NoTrace:
    cases: list = []


_NO = _NoTrace()


def _tkey(h, r: dict) -> tuple:
    got = h._unit(r)
    if got is None:
        return ()
    return (h._okey(r, got[0]), (r.get("selector") or "").lower(), (r.get("mutability") or "") == "payable")


if __name__ == "__main__":
    sys.exit(main())
