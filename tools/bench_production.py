#!/usr/bin/env python
"""TAC size and lifting speed on large production contracts, from their npm build artifacts (issue 14's goals:
>= 95% of their functions within 4,096 TAC tokens; lifting faster than sevm on the same bytecode).

    .venv/bin/python tools/bench_production.py                          # level 1 and 2, sevm, every contract below
    .venv/bin/python tools/bench_production.py --level 2 --no-sevm --out docs/evidence/tac/production.json

The contracts: an AMM pair and router (Uniswap v2), an AMM pool and its position manager, router and staker (Uniswap
v3), a multisig wallet (Safe 1.3.0) and a settlement contract (CoW Protocol GPv2Settlement). Their packages are
fetched with `npm pack` into outputs/cache/npm (tacsol.corpus.fetch_package) and only measured here: their licences
(GPL, LGPL, BUSL-1.1) keep them out of the corpus and the shipped sample. The runtime is the artifact's
deployedBytecode (link references replaced by stand-in addresses, as the dataset build does).

Per level: functions, the share whose TAC is within 4,096 and 8,192 Llama-3 tokens (the TAC alone, as the issue
measured it; a prompt adds ~20 tokens and the target), the largest, the total characters, statuses, and lifting
throughput in functions per CPU second of this process (sevm's in wall seconds of its process, which is the one
sevm uses: a Node process per contract, startup included, measured the same way as our wall time). Prints a table;
writes the figures as JSON with --out. Asserts nothing.

--phases adds, per level, the CPU seconds each phase of a lift takes (tools/bench_production.PhaseClock: evmole, the
CFG, the internal-function search, each lowering step, each compaction pass, layout, printing); phases nest (the
internal units contain lowering and compaction; "all passes" contains each pass), so shares do not add up to 1.

    .venv/bin/python tools/bench_production.py --level 1 3 --no-sevm --phases"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol import corpus, evm, tokens  # noqa: E402
from tacsol.lift import LiftError, lift  # noqa: E402

# package, version, licence (npm), artifact file names (the first found under the package wins)
CONTRACTS = [
    ("@uniswap/v2-core", "1.0.1", "GPL-3.0-or-later", ["UniswapV2Pair.json", "UniswapV2Factory.json"]),
    ("@uniswap/v2-periphery", "1.1.0-beta.0", "GPL-3.0-or-later", ["UniswapV2Router02.json"]),
    ("@uniswap/v3-core", "1.0.1", "BUSL-1.1", ["UniswapV3Pool.json", "UniswapV3Factory.json"]),
    ("@uniswap/v3-periphery", "1.4.4", "GPL-2.0-or-later",
     ["NonfungiblePositionManager.json", "SwapRouter.json", "Quoter.json"]),
    ("@uniswap/v3-staker", "1.0.2", "GPL-3.0-or-later", ["UniswapV3Staker.json"]),
    ("@gnosis.pm/safe-contracts", "1.3.0", "GPL-3.0", ["GnosisSafe.json"]),
    ("@cowprotocol/contracts", "1.8.0", "LGPL-3.0-or-later", ["GPv2Settlement.json"]),
]
LIMITS = (4096, 8192)
TIME_LIMIT_S = 120.0


def deployed_bytecode(doc: dict) -> str | None:
    """The runtime hex of a build artifact: hardhat (`deployedBytecode`), truffle/waffle (`evm.deployedBytecode`)."""
    for v in (doc.get("deployedBytecode"), (doc.get("evm") or {}).get("deployedBytecode")):
        if isinstance(v, dict):
            v = v.get("object")
        if isinstance(v, str) and len(evm.strip_0x(v)) > 2:
            return v
    return None


def find_runtimes(root: Path, names: list[str]) -> dict[str, str]:
    """name -> runtime hex, for each artifact name found under the package (build info and debug files skipped)."""
    out: dict[str, str] = {}
    for name in names:
        for path in sorted(root.rglob(name), key=lambda p: len(p.parts)):
            if ".dbg." in path.name:
                continue
            try:
                code = deployed_bytecode(json.loads(path.read_text()))
            except (ValueError, OSError):
                continue
            if code:
                out[name.removesuffix(".json")] = evm.link_placeholders(code)
                break
    return out


def measure_level(codes: dict[str, str], level: int) -> dict:
    per_contract, texts, statuses = {}, [], {}
    cpu = wall = 0.0
    for name, code in codes.items():
        t0, w0 = time.process_time(), time.perf_counter()
        try:
            res = lift(code, level=level, time_limit_s=TIME_LIMIT_S)
        except LiftError as exc:
            per_contract[name] = {"error": exc.reason}
            continue
        cpu += time.process_time() - t0
        wall += time.perf_counter() - w0
        fs = [f for f in res.functions if f.status != "unsupported"]
        for f in fs:
            statuses[f.status] = statuses.get(f.status, 0) + 1
        per_contract[name] = {"functions": len(fs), "chars": sum(len(f.tac) for f in fs), "start": len(texts)}
        texts += [f.tac for f in fs]
    counts = [int(n) for n in tokens.count_batch("llama3", texts)] if texts else []
    for name, row in per_contract.items():
        if "start" in row:
            mine = counts[row.pop("start"):][:row["functions"]]
            row.update({"max_tokens": max(mine, default=0), "median_tokens": statistics.median(mine) if mine else 0,
                        **{f"within_{lim}": sum(c <= lim for c in mine) for lim in LIMITS}})
    n = len(counts)
    return {"level": level, "functions": n, "statuses": statuses,
            **{f"within_{lim}": round(sum(c <= lim for c in counts) / n, 4) if n else None for lim in LIMITS},
            "median_tokens": statistics.median(counts) if counts else None, "max_tokens": max(counts, default=0),
            "total_chars": sum(len(t) for t in texts), "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
            "functions_per_cpu_s": round(n / cpu, 1) if cpu else None, "per_contract": per_contract}


class PhaseClock:
    """CPU seconds of this process in each phase of a lift, by wrapping the module attributes the lifter calls
    (restored on exit). A phase entered again inside itself (a pass that calls another pass's function) counts once.
    The wrappers add ~4 us per call: a few thousand calls per lift of these contracts, under 1% of it."""

    def __init__(self):
        import collections
        import types

        import evmole

        from tacsol.lift import compact as CP, contract as C, functions as F, render as R
        self.seconds: dict[str, float] = collections.Counter()
        self.calls: dict[str, int] = collections.Counter()
        self._active: set[str] = set()
        # (module, attribute, phase): evmole, the CFG, the internal-function search, each level-1 step of lowering,
        # each level-2/3 pass (compact's names), the layout and the printer; the units of internal functions
        targets = [(evmole, "contract_info", "evmole.contract_info"), (C, "Program", "Program (CFG)"),
                   (C, "find_callees", "find_callees (level >= 2)"), (F, "render", "internal units (level >= 2)"),
                   *((R, n, f"lower: {n}") for n in ("explore", "build_ir", "infer_params", "fold_constants",
                                                      "resolve_bodies", "eliminate_dead")),
                   (R, "compact", "compact (level >= 2): all passes"),
                   *((CP, n, f"compact: {n}") for n in dir(CP)
                     if isinstance(getattr(CP, n), types.FunctionType) and getattr(CP, n).__module__ != CP.__name__
                     or n == "keep_live"),
                   (R, "plan_layout", "plan_layout"), (R, "emit", "emit")]
        self._saved = [(mod, name, getattr(mod, name)) for mod, name, _ in targets]
        self._targets = targets

    def _wrap(self, f, phase: str):
        def timed(*a, **k):
            if phase in self._active:
                return f(*a, **k)
            self._active.add(phase)
            t0 = time.process_time()
            try:
                return f(*a, **k)
            finally:
                self.seconds[phase] += time.process_time() - t0
                self.calls[phase] += 1
                self._active.discard(phase)
        return timed

    def __enter__(self):
        for (mod, name, phase), (_, _, f) in zip(self._targets, self._saved):
            setattr(mod, name, self._wrap(f, phase))
        return self

    def __exit__(self, *exc):
        for mod, name, f in self._saved:
            setattr(mod, name, f)


def measure_phases(codes: dict[str, str], level: int, repeat: int = 2) -> dict:
    """CPU seconds per phase of lifting every contract at `level`, per pass over them (mean of `repeat`)."""
    with PhaseClock() as pc:
        t0 = time.process_time()
        for _ in range(repeat):
            for code in codes.values():
                try:
                    lift(code, level=level, time_limit_s=TIME_LIMIT_S)
                except LiftError:
                    pass
        total = (time.process_time() - t0) / repeat
    phases = {k: {"cpu_s": round(v / repeat, 4), "share": round(v / repeat / total, 4),
                  "calls": pc.calls[k] // repeat} for k, v in sorted(pc.seconds.items(), key=lambda kv: -kv[1])}
    return {"level": level, "cpu_s": round(total, 3), "phases": phases}


def measure_sevm(codes: dict[str, str]) -> dict:
    from tacsol.baselines import sevm_decompile

    wall, rows = 0.0, {}
    for name, code in codes.items():
        w0 = time.perf_counter()
        out = sevm_decompile(code, timeout_s=TIME_LIMIT_S)
        wall += time.perf_counter() - w0
        rows[name] = {"status": out["status"], "seconds": round(out["seconds"], 2),
                      "functions": out["output"].count("function ")}
    n = sum(r["functions"] for r in rows.values())
    return {"wall_s": round(wall, 2), "functions": n, "functions_per_s": round(n / wall, 1) if wall else None,
            "per_contract": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--level", type=int, nargs="+", choices=[1, 2, 3], default=[1, 2], help="TAC levels (default 1 2)")
    ap.add_argument("--no-sevm", action="store_true", help="skip sevm (its throughput is the peer figure)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--phases", action="store_true",
                    help="also the CPU seconds of each phase of a lift per level (evmole, CFG, internal-function "
                         "search, lowering, each compaction pass, layout, printing): where level 2/3's time goes")
    a = ap.parse_args(argv)
    codes: dict[str, str] = {}
    sources = []
    for name, version, licence, files in CONTRACTS:
        root = corpus.fetch_package(corpus.Package(name, version, licence, compile=False))
        found = find_runtimes(root, files)
        sources.append({"package": f"{name}@{version}", "license": licence, "contracts": sorted(found)})
        codes.update({f"{name}:{k}": v for k, v in found.items()})
    print(f"{len(codes)} runtimes: {', '.join(codes)}")
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
           f"{__import__('os').cpu_count()} cores", "sources": sources,
           "runtime_bytes": {k: len(evm.strip_0x(v)) // 2 for k, v in codes.items()},
           "levels": [measure_level(codes, lv) for lv in a.level]}
    if a.phases:
        out["phases"] = [measure_phases(codes, lv) for lv in a.level]
    if not a.no_sevm:
        out["sevm"] = measure_sevm(codes)
    print("level  functions  <=4096  <=8192  median  max  chars  functions/CPU s  statuses")
    for m in out["levels"]:
        print(f"{m['level']:>5}  {m['functions']:>9}  {m['within_4096']:.3f}  {m['within_8192']:.3f}  "
              f"{m['median_tokens']:>6}  {m['max_tokens']}  {m['total_chars']}  {m['functions_per_cpu_s']}  "
              f"{m['statuses']}")
    for ph in out.get("phases", []):
        print(f"level {ph['level']}: {ph['cpu_s']} CPU s per pass; phases over 1%:")
        for name, row in ph["phases"].items():
            if row["share"] >= 0.01:
                print(f"  {name:42s} {row['cpu_s']:7.3f} s  {100 * row['share']:5.1f}%  calls {row['calls']}")
    if "sevm" in out:
        print(f"sevm: {out['sevm']['functions']} functions in {out['sevm']['wall_s']} s wall = "
              f"{out['sevm']['functions_per_s']} functions/s")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
