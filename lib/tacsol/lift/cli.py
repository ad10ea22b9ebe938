"""`tacsol lift`: runtime bytecode from a file or the command line → TAC text or LiftedContract JSON."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..params import ParamsError
from .contract import LEVELS, lift
from .functions import CALLEE_BUDGET_CHARS
from .result import LiftError, norm_selector


def build_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("code", help="runtime bytecode: a file (hex text or raw binary, or a solc JSON artifact with "
                                "deployedBytecode) or a hex string; creation code (or a deployment transaction's "
                                "input) is opened and its embedded runtime lifted")
    p.add_argument("--json", action="store_true",
                   help="print the LiftedContract as JSON; each function's \"lines\" maps every line of its TAC "
                        "to the bytecode offsets it came from")
    p.add_argument("--selector", action="append", default=[],
                   help="only this function (0xa9059cbb, fallback, receive); repeatable")
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per contract (default 10)")
    p.add_argument("--offsets", action="store_true",
                   help="label blocks by bytecode offset (block_0x1a) instead of b0, b1, ... (debugging)")
    p.add_argument("--level", type=int, choices=LEVELS, default=1,
                   help="1: the paper-faithful TAC (default); 2: compact TAC; 3: compact TAC with failing branches "
                        "as require(...) and overflow guards as checked(a + b) (docs/tac-format.md, Level 2 and Level 3)")
    p.add_argument("--callee-budget", type=characters, default=CALLEE_BUDGET_CHARS, metavar="CHARS",
                   help="levels 2-3: an internal function's unit that would take a function's example past this "
                        f"many characters prints as its effect summary (default {CALLEE_BUDGET_CHARS})")
    return p


def characters(text: str) -> int:
    """A number of characters (>= 0), for argparse."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of characters >= 0")
    return n


_HEX_ARG = re.compile(r"\s*(0x)?[0-9a-fA-F\s]*")


def _source(arg: str) -> str:
    """What the messages call the input: the file it names, or the argument itself."""
    return arg if len(arg) < 1024 and Path(arg).is_file() else "argument 'code'"


def _read_code_arg(arg: str):
    """The code to lift: a file's hex text, raw binary or solc JSON artifact (its runtime field), or the argument."""
    path = Path(arg)
    if not (len(arg) < 1024 and path.is_file()):
        if (path.suffix or "/" in arg) and not _HEX_ARG.fullmatch(arg):
            raise ParamsError(f"argument 'code': {arg}: no such file (and not hex bytecode)")
        return arg
    data = path.read_bytes()
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return data  # raw binary
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise LiftError("malformed_hex", f"a JSON artifact that is not valid JSON ({exc})") from None
        for keys in (("deployedBytecode", "object"), ("deployedBytecode",), ("evm", "deployedBytecode", "object"),
                     ("runtime",)):
            cur = obj
            for k in keys:
                cur = cur.get(k) if isinstance(cur, dict) else None
            if isinstance(cur, str):
                return cur
        raise LiftError("malformed_hex", "JSON without deployedBytecode / runtime field")
    # printable text is hex (or says where it is not); anything else is raw binary that happens to decode
    return text if all(line.isprintable() for line in text.splitlines()) else data


def main(args) -> int:
    try:
        res = lift(_read_code_arg(args.code), time_limit_s=args.time_limit,
                   labels="offset" if args.offsets else "seq", level=args.level, callee_budget=args.callee_budget)
    except LiftError as exc:  # not liftable input: exit 2 like every bad input; --json says why as data too
        if args.json:
            print(json.dumps({"error": {"reason": exc.reason, "message": exc.message}}, indent=1))
        print(f"tacsol lift: {_source(args.code)}: {exc}", file=sys.stderr)
        return 2
    if args.selector:
        want = {norm_selector(s) for s in args.selector}
        missing = want - {f.selector for f in res.functions}
        if missing:
            print(f"tacsol lift: {_source(args.code)}: selector(s) not found: {', '.join(sorted(missing))}",
                  file=sys.stderr)
            return 2
        res.functions = [f for f in res.functions if f.selector in want]
    if args.json:   # provenance as "lines": each line of "tac" with the pcs it maps to (docs/tac-format.md)
        d = res.to_dict()
        for f, lf in zip(d["functions"], res.functions):
            f.pop("pcs", None)
            f.pop("line_pcs", None)
            f["lines"] = [{"text": text, "pcs": list(pcs)} for text, pcs in lf.lines()]
        print(json.dumps(d, indent=1))
    else:
        if res.kind != "contract":
            print(f"// {res.kind}: " + ", ".join(f"{k} {v}" for k, v in res.details.items()))
        for w in res.warnings:
            print(f"// warning: {w}")
        print(res.tac())
    return 0
