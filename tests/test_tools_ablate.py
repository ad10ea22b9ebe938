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


def test_paired_difference_is_b_minus_a_per_target_token_with_an_interval_over_functions():
    """The arms' loss per target token compared on the same functions: the difference is b's minus a's (ratio of
    sums, as the tool reports each arm), and the bootstrap interval holds it; a function one arm did not score is
    left out of both."""
    a = {"f1": (10.0, 10), "f2": (30.0, 10), "f3": (5.0, 5)}
    b = {"f1": (8.0, 10), "f2": (27.0, 10), "f3": (4.0, 5), "f4": (1.0, 1)}
    d = A.paired_difference(a, b, ["f1", "f2", "f3", "f4"])
    assert d["functions"] == 3
    assert d["difference"] == round(39 / 25 - 45 / 25, 4)
    lo, hi = d["ci95"]
    assert lo <= d["difference"] <= hi < 0       # b is better on every function: the whole interval is below 0
    assert A.paired_difference(a, b, ["f4"]) == {"functions": 0, "difference": None, "ci95": None}


def test_arms_built_apart_are_compared_function_by_function(tmp_path, monkeypatch):
    """Two arms from two builds (e.g. two callee budgets): a function whose TAC differs has a different record id
    in each (the id hashes the TAC), yet it is scored in both arms and counted as differing; the others as same."""
    import json

    import ablate_signature_hints

    recs = train.load_records("sample")
    held = [dict(r) for r in recs["validation"][:6]]
    arms = {"a": ("x", []), "b": ("y", [])}
    for name in arms:
        rows = [{**r, "split": "train"} for r in recs["train"][:4]] + [{**r, "split": "validation"} for r in held]
        if name == "b":   # the first held-out function prints differently in arm b: another id
            rows[4] = {**rows[4], "tac": rows[4]["tac"] + "\n  // summary", "id": "other-id"}
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen = {}

    def fake_losses(adapter, records, max_len):   # loss 1 per token in a, 2 in b: b - a = 1 everywhere
        seen[adapter.parent.name] = [r["id"] for r in records]
        per_token = 2.0 if adapter.parent.name == "b" else 1.0
        return {r["id"]: (per_token * 10, 10) for r in records}

    monkeypatch.setattr(ablate_signature_hints, "per_record_losses", fake_losses)
    p = train.load_params({"dataset": "sample", "signature_hints": False, "max_seq_length": 1024})
    res = A.split_differing(p, arms, tmp_path)
    assert seen["a"] == seen["b"] and len(seen["a"]) == len(held)
    assert res["a"]["differing"]["records"] == 1 and res["a"]["same"]["records"] == len(held) - 1
    assert res["paired"]["b - a"]["all"]["difference"] == 1.0 and res["paired"]["b - a"]["all"]["functions"] == 6


def test_differing_pool_scores_the_given_adapters_on_the_chosen_stratum(monkeypatch):
    """--adapter: one adapter reads every arm's prompts; --differing-held-out-packages: the pool comes from the
    recipe's held-out packages only (and without it, only from the others), one per near-duplicate group."""
    import ablate_signature_hints

    recs = train.load_records("sample")
    held = [dict(r) for s in ("validation", "test") for r in recs[s]]
    pkg = held[0]["package"]
    a = {"train": [], "validation": held, "test": []}
    b = {"train": [], "validation": [{**r, "tac": r["tac"] + "\n  // summary"} for r in held], "test": []}
    seen = {}

    def fake_losses(adapter, records, max_len):
        seen.setdefault(str(adapter), []).append(records)
        return {r["id"]: (10.0 if r["tac"].endswith("summary") else 5.0, 10) for r in records}

    tok = load_tokenizer("embedded:smollm2-135m")
    p = {"holdout_packages": [pkg], "max_seq_length": 1024}
    arms = {"a": ("x", []), "b": ("y", [])}
    adapters = {"a": Path("shipped"), "b": Path("shipped")}
    monkeypatch.setattr(ablate_signature_hints, "per_record_losses", fake_losses)
    inside = A.differing_pool(p, arms, {"a": a, "b": b}, tok, adapters, 1000, 4096, 0, held_out_packages=True)
    outside = A.differing_pool(p, arms, {"a": a, "b": b}, tok, adapters, 1000, 4096, 0)
    assert list(seen) == ["shipped"] and len(seen["shipped"]) == 4        # 2 arms x 2 strata, one adapter
    in_a, in_b, out_a, _ = seen["shipped"]
    assert {r["package"] for r in in_a} == {pkg} and pkg not in {r["package"] for r in out_a}
    assert [r["id"] for r in in_a] == [r["id"] for r in in_b]             # the same functions in both arms
    assert len({r.get("group") for r in in_a}) == len(in_a)               # one per near-duplicate group
    assert inside["stratum"] == "package-held-out" and inside["scored"] == len(in_a) > 0
    assert outside["stratum"] == "contract-held-out" and outside["scored"] == len(out_a) > 0
    assert inside["paired"]["b - a"]["difference"] == 0.5                # 1.0 - 0.5 per target token
