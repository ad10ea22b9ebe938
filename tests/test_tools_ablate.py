"""tools/ablate_tac_level.py: both levels are scored on the same held-out functions, the ones both fit, one per
near-duplicate group, outside the held-out packages."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import ablate_tac_level as A  # noqa: E402
from tacsol import train  # noqa: E402
from tacsol.loading import load_tokenizer  # noqa: E402


def test_heldout_pool_holds_functions_both_levels_fit_once_each():
    recs = train.load_records("sample")
    level1 = {s: [dict(r) for r in v] for s, v in recs.items()}
    # a "level 2" of the same functions: shorter TAC, except one function that only level 2 fits
    level2 = {s: [{**r, "tac": r["tac"][: len(r["tac"]) // 3]} for r in v] for s, v in recs.items()}
    held = level1["validation"] + level1["test"]
    long_one = held[0]
    long_one["tac"] = long_one["tac"] + "\n  v9 = 0x1" * 400          # too long at level 1 only
    tok = load_tokenizer("embedded:smollm2-135m")
    p = {"holdout_packages": [held[1]["package"]], "max_seq_length": 1024}
    pool = A.heldout_pool(p, {1: level1, 2: level2}, tok, 1000, seed=0)
    assert pool and len(pool) == len(set(pool))
    assert A.key_of(long_one) not in pool                              # it does not fit level 1
    by_key = {A.key_of(r): r for r in held}
    assert all(by_key[k]["package"] != held[1]["package"] for k in pool)   # held-out packages stay out
    groups = [by_key[k].get("group") for k in pool]
    assert len(groups) == len(set(groups))                             # one per near-duplicate group
    assert A.heldout_pool(p, {1: level1, 2: level2}, tok, 1000, seed=0) == pool          # seeded
    assert len(A.heldout_pool(p, {1: level1, 2: level2}, tok, 3, seed=0)) == 3
