"""TAC level ablation (issues 12 and 14): the same recipe trained for an equal number of training tokens on level-1
and on level-2 prompts of one corpus (or any two or three levels: --levels), scored by the held-out loss per target
token on the same held-out functions.

    .venv/bin/python tools/ablate_tac_level.py --l1 ref_l1 --l2 ref_l2 --tokens 60000
    .venv/bin/python tools/ablate_tac_level.py --levels 2 3 --l2 ref_l2_t40 --l3 ref_l3_t40 --out outputs/abl-l23
    .venv/bin/python tools/ablate_tac_level.py --arm hex ref_l2_t40 --arm named ref_l2_t40 event_names=true \
        --params params/03_reference_cpu_t40.yaml --out outputs/abl-events   # any two arms: dataset + overrides

For each level the tool writes a records file (<out>/level<k>.jsonl): that level's train split, and as `validation`
the held-out functions (validation and test splits, one per near-duplicate group, outside the recipe's held-out
packages) that both levels fit in max_seq_length, matched by package, file, contract, signature and settings. Then
`tacsol train --params P --set dataset=<file> --set max_train_tokens=N --set eval_examples=0`. The loss is over
the Solidity tokens only (the prompt is masked), so both levels are scored on the same targets: what differs is how
many examples the budget holds and how well the model reads each TAC. A level whose run finished is read back, not
trained again (a killed ablation goes on where it stopped). Prints a line per level and writes <out>/ablation.json.
Each records file gets its dataset's known-signature table beside it (tacsol.signatures.sidecar), so prompts are
hinted as a run on the dataset hints them. --arm NAME DATASET [KEY=VALUE ...] (repeatable) compares any arms the
same way: a dataset and the overrides only that arm trains and is scored with. --split-differing and
--differing-pool N compare the arms paired, function by function, with a bootstrap interval over the functions:
on the common held-out functions split by whether the arms' prompts differ, and on up to N held-out functions
whose prompts differ (scored at --differing-max-len, 4,096 by default; --differing-held-out-packages takes them
from the recipe's held-out packages instead). --adapter DIR trains nothing and scores one adapter (e.g. the shipped
one) on every arm's prompts: for arms that print the same functions differently, what a model trained longer
makes of each print.

    .venv/bin/python tools/ablate_tac_level.py --params params/03_reference_cpu_t40.yaml \
        --arm budget8192 ref_l3_t40 --arm budget3072 ref_l3_t40_b3072 --set max_seq_length=2048 \
        --heldout 128 --split-differing --differing-pool 48 --out outputs/abl-budget-s42   # a callee budget
    .venv/bin/python tools/ablate_tac_level.py --params params/03_reference_cpu_l3_long.yaml \
        --arm budget8192 ref_l3_t40_w --arm budget4096 ref_l3_t40_w_b4096 --adapter lib/tacsol/data/adapter \
        --differing-pool 1000 --differing-held-out-packages --out outputs/abl-b4096-shipped-pkg
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tacsol.profile import LEVEL_KEY  # noqa: E402  (one function of one build, whatever its TAC level)


def key_of(r: dict) -> tuple:
    return tuple(r.get(k) or "" for k in LEVEL_KEY)


def fitting(records: list[dict], tok, max_len: int) -> set[tuple]:
    """Keys of the records whose prompt + target fit max_len tokens (as training tokenizes them)."""
    from tacsol import prompt

    return {key_of(r) for r in records if prompt.tokenize_example(r, tok, max_len) is not None}


def heldout_pool(p: dict, by_level: dict[int, dict], tok, n: int, seed: int) -> list[tuple]:
    """Keys of up to n held-out functions both levels fit, one per near-duplicate group, in a seeded order."""
    from tacsol import train

    fits = []
    for lv, hinted in by_level.items():
        rows = [r for s in ("validation", "test") for r in hinted[s]
                if not train.in_packages(r, p["holdout_packages"])]
        fits.append((fitting(rows, tok, p["max_seq_length"]), {key_of(r): r for r in rows}))
    common = set.intersection(*(f for f, _ in fits))
    rows = sorted((fits[0][1][k] for k in common), key=lambda r: (r.get("group") or "", key_of(r)))
    seen, keys = set(), []
    for r in rows:
        g = r.get("group") or r.get("norm_hash") or key_of(r)
        if g not in seen:
            seen.add(g)
            keys.append(key_of(r))
    random.Random(seed).shuffle(keys)
    return keys[:n]


def run_level(params: str, data: Path, tokens: int, out: Path, extra: list[str]) -> dict:
    log = out / "train_log.json"
    if not log.is_file():
        cmd = [sys.executable, "-m", "tacsol.cli", "train", "--params", params, "--set", f"dataset={data}",
               "--set", f"max_train_tokens={tokens}", "--set", "max_steps=-1", "--set", "eval_split=validation",
               "--set", "eval_examples=0", "--set", f"output_dir={out}", "--set", f"run_name={out.name}",
               "--set", "save_steps=100000", "--set", "resume=true"]
        for kv in extra:
            cmd += ["--set", kv]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    d = json.loads(log.read_text())
    return {k: d.get(k) for k in ("steps", "train_tokens", "train_examples", "dropped_too_long", "heldout_examples",
                                  "heldout_dropped_too_long", "heldout_loss_before", "heldout_loss_after",
                                  "tokens_per_s", "train_wall_s")}


def split_differing(p: dict, arms: dict, out: Path, adapters: dict | None = None) -> dict:
    """Loss per target token of each arm's adapter on the held-out functions whose prompts (as each arm trains
    them) differ between the arms, and on the others; the same functions for every arm. adapters: arm -> the
    adapter that scores it (default: the one the arm trained, <out>/<arm>/adapter)."""
    from ablate_signature_hints import per_record_losses, per_token
    from tacsol import params as P, train

    # keyed by function (key_of), not record id: an id hashes the TAC, which differs between arms built apart
    prompts = {name: {key_of(r): r for r in train.run_records(train.load_params(
        {**p, **P.parse_sets(sets), "dataset": str(out / f"{name}.jsonl")}))["validation"]}
        for name, (_, sets) in arms.items()}
    keys = sorted(set.intersection(*(set(v) for v in prompts.values())))
    ids = [f"f{i}" for i in range(len(keys))]   # one id per function, the same in every arm
    differ = [i for i, k in zip(ids, keys) if len({prompts[name][k]["tac"] for name in prompts}) > 1]
    same = [i for i in ids if i not in set(differ)]
    adapters = adapters or {name: out / name / "adapter" for name in arms}
    res, losses = {}, {}
    for name in arms:
        losses[name] = per_record_losses(adapters[name],
                                         [{**prompts[name][k], "id": i} for i, k in zip(ids, keys)],
                                         p["max_seq_length"])
        fit = set(losses[name])
        res[name] = {"differing": per_token(losses[name], [i for i in differ if i in fit]),
                     "same": per_token(losses[name], [i for i in same if i in fit]),
                     "all": per_token(losses[name], [i for i in ids if i in fit])}
        print(f"{name}: {res[name]}", flush=True)
    first, *others = list(arms)
    res["paired"] = {f"{other} - {first}": {part: paired_difference(losses[first], losses[other], which)
                                            for part, which in (("differing", differ), ("same", same), ("all", ids))}
                     for other in others}
    print(json.dumps(res["paired"]), flush=True)
    return res


def paired_difference(a: dict[str, tuple], b: dict[str, tuple], ids, n_boot: int = 2000, seed: int = 0) -> dict:
    """Loss per target token of b minus a on the same functions (those both scored), with a 95% percentile
    bootstrap interval over functions (resampled together in both arms: the interval is for these held-out
    functions' sampling, not for training seeds)."""
    import numpy as np

    ids = [i for i in ids if i in a and i in b]
    if not ids:
        return {"functions": 0, "difference": None, "ci95": None}
    la, na = np.array([a[i][0] for i in ids]), np.array([a[i][1] for i in ids])
    lb, nb = np.array([b[i][0] for i in ids]), np.array([b[i][1] for i in ids])
    idx = np.random.default_rng(seed).integers(0, len(ids), size=(n_boot, len(ids)))
    boot = lb[idx].sum(1) / nb[idx].sum(1) - la[idx].sum(1) / na[idx].sum(1)
    return {"functions": len(ids), "difference": round(float(lb.sum() / nb.sum() - la.sum() / na.sum()), 4),
            "ci95": [round(float(np.percentile(boot, 2.5)), 4), round(float(np.percentile(boot, 97.5)), 4)]}


def differing_pool(p: dict, arms: dict, hinted: dict, tok, adapters: dict, n: int, max_len: int, seed: int,
                   held_out_packages: bool = False) -> dict:
    """Each arm's adapter scored on up to n held-out functions whose prompts differ between the arms (validation
    and test, one per near-duplicate group, fitting max_len in every arm: longer than the recipe's sequences when
    asked, so that a prompt that only one arm fits in training can still be priced), paired with the first arm.
    The functions are those outside the recipe's holdout_packages (contract-held-out), or with held_out_packages
    those inside them (package-held-out: packages no arm trained on). For arms that differ in what they print for
    the same function (a callee budget: a callee's body or its summary), this is what the difference costs where
    it applies."""
    from ablate_signature_hints import per_record_losses, per_token
    from tacsol import train

    rows = {name: {key_of(r): r for s in ("validation", "test") for r in hinted[name][s]
                   if train.in_packages(r, p["holdout_packages"]) == held_out_packages} for name in arms}
    keys = sorted(set.intersection(*(set(v) for v in rows.values())))
    first = next(iter(arms))
    differ = [k for k in keys if len({rows[name][k]["tac"] for name in arms}) > 1]
    fits = set.intersection(*(fitting([rows[name][k] for k in differ], tok, max_len) for name in arms))
    random.Random(seed).shuffle(differ)
    seen, pool = set(), []
    for k in differ:
        g = rows[first][k].get("group") or k
        if k in fits and g not in seen and len(pool) < n:
            seen.add(g)
            pool.append(k)
    ids = [f"d{i}" for i in range(len(pool))]
    losses = {name: per_record_losses(adapters[name], [{**rows[name][k], "id": i} for i, k in zip(ids, pool)],
                                      max_len) for name in arms}
    res = {"stratum": "package-held-out" if held_out_packages else "contract-held-out",
           "functions_differing": len(differ), "fitting": len(fits), "scored": len(pool), "max_len": max_len,
           **{name: per_token(losses[name], ids) for name in arms},
           "paired": {f"{other} - {first}": paired_difference(losses[first], losses[other], ids)
                      for other in list(arms)[1:]}}
    print(json.dumps(res), flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--params", default="params/03_reference_cpu.yaml", help="the recipe (model, LoRA, lr, ...)")
    ap.add_argument("--l1", default="ref_l1", help="the corpus lifted at level 1")
    ap.add_argument("--l2", default="ref_l2", help="the same corpus lifted at level 2")
    ap.add_argument("--l3", default="ref_l3", help="the same corpus lifted at level 3")
    ap.add_argument("--levels", type=int, nargs="+", choices=[1, 2, 3], default=[1, 2],
                    help="the levels to train and compare (default 1 2)")
    ap.add_argument("--tokens", type=int, default=60000, help="training tokens per level (the equal budget)")
    ap.add_argument("--heldout", type=int, default=64, help="held-out functions both levels are scored on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs/tac-level-ablation", help="folder of the runs and ablation.json")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="another override for both runs (repeatable)")
    ap.add_argument("--split-differing", action="store_true",
                    help="also score each arm's adapter per function and report the loss on the held-out functions "
                         "whose prompts differ between the arms and on the others (e.g. the ones with a named event)")
    ap.add_argument("--differing-pool", type=int, default=0, metavar="N",
                    help="also score each arm's adapter on up to N held-out functions whose prompts differ between "
                         "the arms and fit --differing-max-len in every arm (e.g. the ones a callee budget summarizes)")
    ap.add_argument("--differing-max-len", type=int, default=4096, metavar="TOKENS",
                    help="the sequence length those functions are scored at (default 4096)")
    ap.add_argument("--differing-held-out-packages", action="store_true",
                    help="--differing-pool from the recipe's holdout_packages (package-held-out) instead of the "
                         "other packages")
    ap.add_argument("--adapter", metavar="DIR",
                    help="score this trained adapter on every arm's prompts instead of training one per arm (arms "
                         "that differ only in what they print for the same functions, e.g. a callee budget)")
    ap.add_argument("--arm", dest="arms", action="append", nargs="+", default=[],
                    metavar="NAME DATASET [KEY=VALUE]",
                    help="instead of --levels: an arm named NAME on DATASET with its own overrides (repeatable)")
    a = ap.parse_args(argv)

    from tacsol import pairs, paths, signatures, train
    from tacsol.ioutil import atomic_write_json, atomic_write_text
    from tacsol.loading import load_tokenizer

    out = paths.resolve(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from tacsol import params as P

    # the recipe as every arm trains it: --set overrides included (max_seq_length decides the held-out pool)
    p = train.load_params(train.training_values({**P.load_yaml(a.params), **P.parse_sets(a.extra)}, a.params),
                          a.params)
    tok = load_tokenizer(p["model"])
    if a.arms:
        arms = {arm[0]: (arm[1], arm[2:]) for arm in a.arms if len(arm) >= 2}
        if len(arms) < 2 or len(arms) != len(a.arms):
            raise SystemExit("--arm: give two or more arms, each NAME DATASET [KEY=VALUE ...], names distinct")
    else:
        arms = {f"level{lv}": (getattr(a, f"l{lv}"), []) for lv in sorted(set(a.levels))}
        if len(arms) < 2:
            raise SystemExit("--levels: give two or three levels to compare")
        for name, (spec, _) in arms.items():
            got = pairs.tac_level(spec)
            if got != int(name[-1]):
                raise SystemExit(f"--l{name[-1]} {spec!r}: its manifest says TAC level {got}, not {name[-1]}")
    specs = {name: spec for name, (spec, _) in arms.items()}
    raw = {name: train.load_records(spec) for name, spec in specs.items()}
    hinted = {name: train.run_records(train.load_params({**p, **P.parse_sets(sets), "dataset": spec}))
              for name, (spec, sets) in arms.items()}
    pool = heldout_pool(p, hinted, tok, a.heldout, a.seed)
    want = set(pool)
    rows = {}
    for name, (spec, sets) in arms.items():
        data = out / f"{name}.jsonl"
        held = {key_of(r): r for s in ("validation", "test") for r in raw[name][s] if key_of(r) in want}
        recs = [{**r, "split": "train"} for r in raw[name]["train"]] + \
               [{**held[k], "split": "validation"} for k in pool]
        if not data.is_file():
            atomic_write_text(data, "".join(json.dumps(r, default=str) + "\n" for r in recs))
        table = signatures.table_for(spec, raw[name])  # the dataset's (built from its train split only)
        if not signatures.sidecar(data).is_file():
            signatures.save_as(table, signatures.sidecar(data))
        if a.adapter:   # nothing trained: the given adapter reads every arm
            rows[name] = {"dataset": spec, "overrides": sets, "adapter": a.adapter}
            continue
        res = run_level(a.params, data, a.tokens, out / name, a.extra + sets)
        res["train_records"] = len(raw[name]["train"])
        res["train_fit"] = len(fitting(train.trained_on(hinted[name], p["holdout_packages"]), tok, p["max_seq_length"]))
        res["dataset"], res["overrides"] = spec, sets
        rows[name] = res
        print(f"{name}: {res['steps']} steps, {res['train_tokens']} tokens, held-out loss "
              f"{res['heldout_loss_before']:.3f} -> {res['heldout_loss_after']:.3f} on {res['heldout_examples']} "
              f"functions; {res['train_fit']} train functions fit {p['max_seq_length']} tokens", flush=True)
    adapters = {name: Path(a.adapter) if a.adapter else out / name / "adapter" for name in arms}
    split = split_differing(p, arms, out, adapters) if a.split_differing else None
    pool_d = differing_pool(p, arms, hinted, tok, adapters, a.differing_pool, a.differing_max_len, a.seed,
                            a.differing_held_out_packages) if a.differing_pool else None
    atomic_write_json(out / "ablation.json", {
        "recipe": a.params, "model": p["model"], "datasets": specs,
        **({"adapter": a.adapter} if a.adapter else {"train_tokens_budget": a.tokens}),
        **({} if a.adapter else {   # the held-out loss of each arm's training (nothing trained with --adapter)
            "heldout_functions": len(pool), "heldout_rule": "validation+test, outside holdout_packages, one per "
            "near-duplicate group, fitting max_seq_length in every arm, same functions for all"}),
        "seed": a.seed, "levels" if not a.arms else "arms": rows,
        **({"split_differing": split} if split else {}),
        **({"differing_pool": pool_d} if pool_d else {})})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
