"""`tacsol lift`: runtime bytecode from a file or the command line → TAC text or LiftedContract JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .contract import LEVELS, lift
from .result import LiftError, norm_selector


def build_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("code", help="runtime bytecode: a file (hex text or raw binary, or a solc JSON artifact with "
                                "deployedBytecode) or a hex string; creation code (or a deployment transaction's "
                                "input) is opened and its embedded runtime lifted")
    p.add_argument("--json", action="store_true", help="print the LiftedContract as JSON")
    p.add_argument("--selector", action="append", default=[],
                   help="only this function (0xa9059cbb, fallback, receive); repeatable")
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per contract (default 10)")
    p.add_argument("--offsets", action="store_true",
                   help="label blocks by bytecode offset (block_0x1a) instead of b0, b1, ... (debugging)")
    p.add_argument("--level", type=int, choices=LEVELS, default=1,
                   help="1: the paper-faithful TAC (default); 2: compact TAC (docs/tac-format.md, Level 2)")
    return p


def _read_code_arg(arg: str):
    path = Path(arg)
    if len(arg) < 1024 and path.is_file():
        data = path.read_bytes()
        text = data.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            obj = json.loads(text)
            for keys in (("deployedBytecode", "object"), ("deployedBytecode",), ("evm", "deployedBytecode", "object"),
                         ("runtime",)):
                cur = obj
                for k in keys:
                    cur = cur.get(k) if isinstance(cur, dict) else None
                if isinstance(cur, str):
                    return cur
            raise LiftError("malformed_hex", f"{arg}: JSON without deployedBytecode / runtime field")
        return data
    return arg


def main(args) -> int:
    try:
        res = lift(_read_code_arg(args.code), time_limit_s=args.time_limit,
                   labels="offset" if args.offsets else "seq", level=args.level)
    except LiftError as exc:  # not liftable input: exit 2 like every bad input; --json says why as data too
        if args.json:
            print(json.dumps({"error": {"reason": exc.reason, "message": exc.message}}, indent=1))
        print(f"tacsol lift: {exc}", file=sys.stderr)
        return 2
    if args.selector:
        want = {norm_selector(s) for s in args.selector}
        missing = want - {f.selector for f in res.functions}
        if missing:
            print(f"tacsol lift: selector(s) not found: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
        res.functions = [f for f in res.functions if f.selector in want]
    if args.json:
        d = res.to_dict()
        for f in d["functions"]:
            f.pop("pcs", None)
        print(json.dumps(d, indent=1))
    else:
        if res.kind != "contract":
            print(f"// {res.kind}: " + ", ".join(f"{k} {v}" for k, v in res.details.items()))
        for w in res.warnings:
            print(f"// warning: {w}")
        print(res.tac())
    return 0
