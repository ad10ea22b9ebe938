"""Degenerate outputs: generations that are not an attempt at the function, flagged per function so that a mean
cannot hide them (issue 12). One reason per output, the first that applies:

- ``empty``: nothing but whitespace (or the generation failed);
- ``repetition``: a repetition loop — the text ends in one short unit repeated many times (``public public public``,
  ``0xffff…`` runs, the same statement again and again), or a few units make up most of it;
- ``no_function``: text, but no function header (and no public state variable standing in for a getter); a
  pseudo-code decompiler's ``def name(...)`` header (panoramix) is a function, just not Solidity;
- ``empty_body``: a function whose body is empty while the reference's is not.

The thresholds are deliberately coarse: a real function rarely repeats one 1-8 token unit 8 times in a row, and
never consists mostly of one unit. Counted, never averaged away: ``aggregate`` reports the rate and lists examples.
"""
from __future__ import annotations

import re
from collections import Counter

from .solidity import ParseFailure, find_function

REASONS = ("empty", "repetition", "no_function", "empty_body")
_TOKEN = re.compile(r"0x[0-9a-fA-F]+|[A-Za-z_$][\w$]*|\d+|[^\s\w]")
MIN_TOKENS = 24          # shorter texts cannot loop in a way worth flagging
RUN_REPEATS = 8          # one unit of 1..MAX_UNIT tokens repeated this many times in a row
MAX_UNIT = 8
DOMINANT_SHARE = 0.5     # or the most frequent 4-gram covers this share of all 4-grams
# `0xffff…` loops: more copies of one hex digit than a 32-byte word holds (a word literal such as panoramix's
# `0x8c379a0000…` or a selector mask is legitimately 56+ zeros)
_HEX_RUN = re.compile(r"(?:0x)?([0-9a-fA-F])\1{64,}")
_PSEUDO_DEF = re.compile(r"^def\s+[\w$]+\s*\(", re.M)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def longest_repeat(toks: list[str], max_unit: int = MAX_UNIT) -> tuple[int, int]:
    """(repeats, unit length) of the longest run of one unit of 1..max_unit tokens repeated back to back: a stretch
    where every token equals the one `unit` places later has period `unit`."""
    best = (1, 1)
    for unit in range(1, max_unit + 1):
        run = 0
        for i in range(len(toks) - unit):
            if toks[i] == toks[i + unit]:
                run += 1
                reps = (run + unit) // unit
                if reps > best[0]:
                    best = (reps, unit)
            else:
                run = 0
    return best


def is_repetitive(text: str) -> bool:
    if _HEX_RUN.search(text):
        return True
    toks = tokens(text)
    if len(toks) < MIN_TOKENS:
        return False
    if longest_repeat(toks)[0] >= RUN_REPEATS:
        return True
    grams = [tuple(toks[i:i + 4]) for i in range(len(toks) - 3)]
    return Counter(grams).most_common(1)[0][1] / len(grams) >= DOMINANT_SHARE


def _body_empty(code: str) -> bool | None:
    try:
        fn = find_function(code)
    except ParseFailure:
        return None
    if fn.kind == "getter":
        return False
    return not fn.body.strip() and fn.text.rstrip().endswith("}")


def degenerate_reason(generated: str, reference: str = "") -> str:
    """'' for an output that is an attempt at a function, else one of REASONS."""
    if not (generated or "").strip():
        return "empty"
    if is_repetitive(generated):
        return "repetition"
    empty = _body_empty(generated)
    if empty is None:
        return "" if _PSEUDO_DEF.search(generated) else "no_function"
    if empty and reference and _body_empty(reference) is False:
        return "empty_body"
    return ""
