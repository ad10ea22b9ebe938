"""Which held-out functions an evaluation scores: distinct functions, stratified by complexity, reproducible.

A split holds the same function several times (one record per compiler version/setting that produced it, all in
one near-duplicate ``group``). Scoring every record would weigh a function by how many settings compiled it, so a
selection takes one record per group. Strata are the complexity buckets of ``tacsol.profile.complexity_bucket``
(TAC instructions and blocks: the strata notebook 01 profiles and the evaluation reports by); each stratum gets an
equal share of ``n`` (what one stratum cannot fill goes to the others), so that every stratum has enough functions
for its own interval. The report says what was available, what was eligible and what was taken, so a reader sees
what the selection left out (e.g. prompts too long to generate from).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping

from ..profile import complexity_bucket


def _key(seed: int, rid: str) -> str:
    return hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()


def group_of(record: Mapping[str, Any]) -> str:
    """A record's near-duplicate group: the same function compiled under several settings shares one."""
    return str(record.get("group") or record.get("norm_hash") or record["id"])


def one_per_group(records: Iterable[Mapping[str, Any]], seed: int = 0) -> list[dict]:
    """One record per near-duplicate group: the one whose seeded hash of the id is smallest (stable under reordering)."""
    best: dict[str, dict] = {}
    for r in records:
        g = group_of(r)
        if g not in best or _key(seed, r["id"]) < _key(seed, best[g]["id"]):
            best[g] = dict(r)
    return list(best.values())


def allocate(available: Mapping[str, int], n: int) -> dict[str, int]:
    """Equal shares of n over strata, capped by what each stratum has; the remainder goes to the others."""
    take = {k: 0 for k in available}
    left = min(n, sum(available.values()))
    while left > 0:
        open_ = [k for k in sorted(available) if take[k] < available[k]]
        share = max(1, left // len(open_))
        for k in open_:
            add = min(share, available[k] - take[k], left)
            take[k] += add
            left -= add
            if left == 0:
                break
    return take


def select(records: Iterable[Mapping[str, Any]], n: int, *, seed: int = 0,
           eligible: Callable[[Mapping[str, Any]], bool] | None = None) -> tuple[list[dict], dict[str, Any]]:
    """(selected records, report): n distinct functions stratified by complexity; ``eligible`` filters first (e.g.
    the prompt fits the generation budget). Deterministic for a seed."""
    recs = [dict(r) for r in records]
    distinct = one_per_group(recs, seed)
    ok = [r for r in distinct if eligible is None or eligible(r)]
    by: dict[str, list[dict]] = defaultdict(list)
    for r in ok:
        by[complexity_bucket(r)].append(r)
    take = allocate({k: len(v) for k, v in by.items()}, n)
    chosen: list[dict] = []
    for k in sorted(by):
        chosen += sorted(by[k], key=lambda r: _key(seed, r["id"]))[: take[k]]
    chosen.sort(key=lambda r: r["id"])
    all_by: dict[str, int] = defaultdict(int)
    for r in distinct:
        all_by[complexity_bucket(r)] += 1
    report = {"records": len(recs), "distinct_functions": len(distinct), "eligible": len(ok),
              "selected": len(chosen), "seed": seed,
              "strata": {k: {"distinct": all_by.get(k, 0), "eligible": len(by.get(k, [])), "selected": take.get(k, 0)}
                         for k in sorted(set(all_by) | set(by))}}
    return chosen, report
