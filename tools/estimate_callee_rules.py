#!/usr/bin/env python
"""What other callee-summary rules would do to a built level-2/3 dataset's coverage (issue 14's "95% of pairs
within 2,048 tokens"), estimated on its examples' text without lifting again.

    .venv/bin/python tools/estimate_callee_rules.py ref_l3_t40_w --out docs/evidence/tac/callee_rules.json

An example is its function's unit followed by the unit of each internal function it reaches, separated by blank
lines (tacsol.lift.functions.Internals.example). The lifter prints a callee's unit as its effect summary
(functions.summarize) when the unit would take the example past the callee budget (8,192 characters by default).
Each rule here is replayed on the printed text, unit by unit in the same order: a callee unit still printed in full
is summarized when the example so far plus the unit passes P characters, for every callee ("any", which is what
`--callee-budget P` does) or only for callees that neither read nor write storage, call out, create or log
("pure": ABI and memory helpers such as CBOR and buffer builders, whose summary then says only how they halt and
what they return). A replay starts from text the default budget already summarized, so it can only summarize more.
Counted in Llama-3 tokens, prompt + target (tacsol.profile.measure); only the pairs past the limit are measured
again. An estimate, not a build: a build with `--callee-budget P` also deduplicates its own pairs (two settings whose
examples become equal count once), which the replay does not.
Prints a line per rule; --out writes the figures as JSON."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tac_level_report import frame  # noqa: E402  (a built dataset as one frame, every split)
from tacsol import pairs, profile  # noqa: E402
from tacsol.lift.functions import _EFFECTS, summarize  # noqa: E402
from tacsol.lift.result import SUMMARY_MARK  # noqa: E402

MODEL = "llama3"
_IMPURE = ("reads", "writes", "creates", "logs")


def is_pure(unit: str) -> bool:
    """No storage read or write, external call, create or log in the unit (internal calls and halts allowed)."""
    for kind, pattern in _EFFECTS:
        if kind in _IMPURE and pattern.search(unit):
            return False
        if kind == "calls" and any(not m.group(1) for m in pattern.finditer(unit)):   # group 1: an icall
            return False
    return True


def replay(tac: str, limit: int, rule: str) -> str:
    """The example with each full callee unit past `limit` characters summarized under `rule` ("any" | "pure")."""
    units = tac.split("\n\n")
    out, used = [units[0]], len(units[0])
    for unit in units[1:]:
        head = unit.split("\n", 1)[0]
        if (head.startswith("function f") and SUMMARY_MARK not in head and used + 2 + len(unit) > limit
                and (rule == "any" or is_pure(unit))):
            unit = summarize(unit, [()] * len(unit.split("\n")))[0]
        used += 2 + len(unit)
        out.append(unit)
    return "\n\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("dataset", help="a built dataset under outputs/data/ (TAC level 2 or 3)")
    ap.add_argument("--tokens", type=int, default=2048, help="the coverage limit, prompt + target (default 2,048)")
    ap.add_argument("--limits", type=int, nargs="+", default=[2048, 3072, 4096], help="character limits P to try")
    ap.add_argument("--out", help="write the figures as JSON here")
    a = ap.parse_args(argv)
    df = frame(a.dataset)
    col = f"{MODEL}:full"
    past = profile.measure(df, [MODEL])[col].to_numpy() > a.tokens
    n = len(df)
    res = {"dataset": a.dataset, "tac_level": pairs.tac_level(a.dataset), "pairs": n, "tokens": a.tokens,
           "date": time.strftime("%Y-%m-%d"), "model_tokenizer": MODEL,
           "as_built": {"past": int(past.sum()), "within": round(1 - past.mean(), 4)}, "rules": []}
    print(f"{a.dataset}: {n} pairs, {past.sum()} past {a.tokens} tokens as built ({1 - past.mean():.2%} within; "
          f"95% allows {int(n * 0.05)})")
    for rule in ("pure", "any"):
        for limit in a.limits:
            replayed = [replay(t, limit, rule) for t in df["tac"]]   # once per example, counted and measured
            changed = sum(r != t for r, t in zip(replayed, df["tac"]))
            sub = df[past].copy()
            sub["tac"] = [r for r, p in zip(replayed, past) if p]
            still_mask = profile.measure(sub, [MODEL])[col].to_numpy() > a.tokens
            still = int(still_mask.sum())
            by_package = sub[still_mask]["package"].value_counts().head(6).to_dict()
            row = {"rule": rule, "limit_chars": limit, "past": still, "within": round(1 - still / n, 4),
                   "examples_changed": int(changed), "examples_changed_share": round(changed / n, 4),
                   "still_past_by_package": by_package}
            res["rules"].append(row)
            print(f"  {rule:4s} P={limit:>5}: {still} past ({1 - still / n:.2%} within), {changed} examples "
                  f"({changed / n:.1%}) with a callee summarized that the build printed")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
