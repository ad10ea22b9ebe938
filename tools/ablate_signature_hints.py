"""Issue 14's ablation scored: held-out loss per target token with and without known-signature hints.

Training level: trained runs (params/03_ablation_*.yaml), each scored on its eval_split with the prompts it was
trained with (tacsol.train.run_records), on the records that fit max_seq_length in every run; overall and split by
whether the known-signature table resolves the record's selector. Writes ablation.json beside the first run's folder.

    nice -n 10 .venv/bin/python tools/ablate_signature_hints.py params/03_ablation_hints.yaml \\
        params/03_ablation_nohints.yaml

Decompile level: one trained adapter (e.g. the shipped one) on --limit distinct functions of a split whose
selector the dataset's table resolves, the records' own signatures removed, with no known signature vs the table's,
given the way tacsol decompile gives it to that adapter. Prints the figures and writes --out.

    nice -n 10 .venv/bin/python tools/ablate_signature_hints.py --adapter lib/tacsol/data/adapter --dataset ref

Loss per target token = cross-entropy summed over the target's tokens and EOS, divided by their count (train's
held-out loss averages per batch instead).
"""
from __future__ import annotations

import argparse
import json
import sys


def per_record_losses(adapter_dir, records: list[dict], max_len: int, batch_size: int = 4) -> dict[str, tuple]:
    """id -> (summed target cross-entropy, target tokens) for the records whose example fits max_len."""
    import torch

    from tacsol import infer, prompt
    from tacsol.train import Collator

    model, tok = infer.load(adapter_dir)
    examples = [(r["id"], ex) for r in records if (ex := prompt.tokenize_example(r, tok, max_len)) is not None]
    collate = Collator(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    out = {}
    with torch.no_grad():
        for s in range(0, len(examples), batch_size):
            chunk = examples[s:s + batch_size]
            batch = collate([ex for _, ex in chunk])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"][:, 1:]
            ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels,
                                                   ignore_index=prompt.IGNORE_INDEX, reduction="none")
            for (rid, _), row, lab in zip(chunk, ce, labels):
                out[rid] = (float(row.sum()), int((lab != prompt.IGNORE_INDEX).sum()))
    return out


def per_token(losses: dict[str, tuple], ids) -> dict:
    total, n = sum(losses[i][0] for i in ids), sum(losses[i][1] for i in ids)
    return {"records": len(ids), "target_tokens": n, "loss_per_target_token": round(total / n, 4) if n else None}


def decompile_level(adapter: str, dataset: str, split: str, limit: int, out: str) -> dict:
    from tacsol import infer, signatures, train
    from tacsol.ioutil import atomic_write_json

    tp = infer.trained_params(adapter)
    recs = train.load_records(dataset)
    table = signatures.table_for(dataset, recs).restricted(exclude_packages=tp.get("holdout_packages", []))
    groups, bare = set(), []
    for r in sorted(recs[split], key=lambda r: r["id"]):  # one record per near-duplicate group, resolved ones only
        if table.get(r["selector"]) and r["group"] not in groups and len(bare) < limit:
            groups.add(r["group"])
            bare.append({**r, "signature": ""})
    in_header = bool(tp.get("signature_hints"))
    max_len = tp.get("max_seq_length", 1024)
    hinted = per_record_losses(adapter, signatures.hint_records(bare, table, in_header=in_header), max_len)
    fits = [r for r in bare if r["id"] in hinted]  # the hinted prompt is the longer one
    plain = per_record_losses(adapter, signatures.hint_records(fits, signatures.Table(), in_header=in_header), max_len)
    report = {"adapter": str(adapter), "dataset": dataset, "split": split,
              "hint_as": "header" if in_header else "metadata",
              "none": per_token(plain, list(hinted)), "table": per_token(hinted, list(hinted))}
    print(json.dumps(report, indent=1))
    atomic_write_json(out, report)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("params", nargs="*", help="params files of the trained runs (03 keys)")
    ap.add_argument("--adapter", help="decompile level: this adapter (e.g. lib/tacsol/data/adapter)")
    ap.add_argument("--dataset", default="ref")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--out", default="outputs/ablation/signature_hints/decompile_level.json")
    a = ap.parse_args(argv)
    if a.adapter:
        decompile_level(a.adapter, a.dataset, a.split, a.limit, a.out)
        return 0
    if not a.params:
        ap.error("give params files of trained runs, or --adapter")

    from tacsol import paths, signatures, train
    from tacsol.ioutil import atomic_write_json

    runs = {}
    for f in a.params:
        p = train.load_params(f)
        held = train.run_records(p)[p["eval_split"]]
        runs[p["run_name"]] = (p, per_record_losses(paths.resolve(p["output_dir"]) / "adapter", held,
                                                   p["max_seq_length"]))
    p0 = next(iter(runs.values()))[0]
    recs = train.load_records(p0["dataset"])
    table = signatures.table_for(p0["dataset"], recs).restricted(exclude_packages=p0["holdout_packages"])
    common = set.intersection(*(set(losses) for _, losses in runs.values()))
    resolved = {r["id"] for r in recs[p0["eval_split"]] if r["id"] in common and table.get(r["selector"])}
    report = {"dataset": p0["dataset"], "split": p0["eval_split"], "runs": {}}
    for name, (p, losses) in runs.items():
        log = json.loads((paths.resolve(p["output_dir"]) / "train_log.json").read_text())
        row = {"signature_hints": p["signature_hints"], "signature_sources": p["signature_sources"],
               **{k: log.get(k) for k in ("train_tokens", "steps", "train_examples", "train_wall_s",
                                          "heldout_loss_before", "heldout_loss_after")},
               "all": per_token(losses, common), "resolved": per_token(losses, resolved),
               "unresolved": per_token(losses, common - resolved)}
        report["runs"][name] = row
        print(f"{name}: {row['train_tokens']} training tokens, {row['steps']} steps; held-out loss per target token "
              f"{row['all']['loss_per_target_token']} (resolved {row['resolved']['loss_per_target_token']}, "
              f"n={len(resolved)}; unresolved {row['unresolved']['loss_per_target_token']}, "
              f"n={len(common) - len(resolved)})")
    atomic_write_json(paths.resolve(p0["output_dir"]).parent / "ablation.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
