"""LoRA training on a shrunken random Llama (2 layers, hidden 64, tiny BPE tokenizer) through the real code path:
loss falls, the saved adapter reloads and generates the same tokens, a run killed with SIGKILL resumes from its last
checkpoint onto the same loss curve; batching plan and params validation."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tacsol import params as P
from tacsol import paths, train

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "train"
RECORDS = str(FIX / "records.jsonl")
sys.path.insert(0, str(FIX))
import tiny  # noqa: E402

STEPS = 12


def test_load_records_refuses_splits_training_does_not_know(tmp_path):
    f = tmp_path / "records.jsonl"
    f.write_text(json.dumps({"id": "a", "tac": "x", "solidity": "y", "split": "dev"}) + "\n")
    with pytest.raises(ValueError, match=r"split\(s\) \['dev'\] are not train/validation/test"):
        train.load_records(str(f))
    assert {s: len(v) for s, v in train.load_records(RECORDS).items()} == {"train": 49, "validation": 6, "test": 6}


def _params(model_dir: Path, out: Path) -> dict:
    return {"output_dir": str(out), "model": str(model_dir), "dataset": RECORDS, "max_steps": STEPS,
            "batch_size": 4, "save_steps": 3, "save_total_limit": 10, "learning_rate": 1e-2, "warmup_ratio": 0.0,
            "eval_examples": 6, "lora_dropout": 0.1, "max_seq_length": 512, "seed": 3,
            "gradient_checkpointing": True, "max_train_tokens": 0,
            # accelerate wraps the in-memory model's forward in CPU bf16 autocast; the reload test compares fp32 logits
            "cpu_autocast": "none"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny.build(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def reference(tiny_model, tmp_path_factory):
    """One uninterrupted in-process run (the reference curve for the resume test)."""
    p = _params(tiny_model, tmp_path_factory.mktemp("ref") / "run")
    return p, train.run(p, keep_model=True)


def test_defaults_are_notebook_03_parameters():
    nb = [n for n in paths.list_notebooks() if n.stem.startswith("03_")]
    if not nb:
        pytest.skip("notebook 03 not written yet")
    # keys the notebook uses after training (its evaluation) are tacsol.evaluate.suite's; train.run gets the rest
    # and refuses extras
    from tacsol.evaluate import suite

    nb_params = P.notebook_parameters(nb[0])
    assert not set(suite.DEFAULTS) & set(train.DEFAULTS)
    assert {k: v for k, v in nb_params.items() if k in suite.DEFAULTS} == suite.DEFAULTS
    assert {k: v for k, v in nb_params.items() if k not in suite.DEFAULTS} == train.DEFAULTS


def test_params_refuse_unknown_and_mistyped_keys_by_name(tmp_path):
    with pytest.raises(P.ParamsError, match=r"unknown parameter 'lora_rank' \(did you mean 'lora_r'\?\)"):
        train.load_params({"lora_rank": 8})
    with pytest.raises(P.ParamsError, match="'batch_size' must be int"):
        train.load_params({"batch_size": "4"})
    with pytest.raises(P.ParamsError, match="'quantization' must be none, nf4 or int8"):
        train.load_params({"quantization": "nf3"})
    f = tmp_path / "p.yaml"
    f.write_text("lora_r: 8\n")
    assert train.load_params(f)["lora_r"] == 8


def test_tacsol_train_takes_a_notebook_03_params_file_with_its_evaluation_keys(tmp_path, monkeypatch):
    """params/03_reference_cpu.yaml drives both `tacsol run 03` and `tacsol train`: the evaluation's keys are checked
    (a mistyped one is refused by name) and not passed to training."""
    seen = {}
    monkeypatch.setattr(train, "run", lambda values: seen.update(values) or {})
    monkeypatch.setattr(train, "check_plan", lambda p, where: None)
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"lora_r": 8, "eval_functions": 300, "baselines": ["retrieval"]}))
    monkeypatch.setenv("RANK", "1")  # no summary print of the stubbed result
    assert train.main(train.build_parser().parse_args(["--params", str(f)])) == 0
    assert seen == {"lora_r": 8}
    f.write_text(yaml.safe_dump({"eval_functions": "many"}))
    with pytest.raises(P.ParamsError, match="p.yaml: parameter 'eval_functions' must be int"):
        train.main(train.build_parser().parse_args(["--params", str(f)]))


def test_a_finished_run_of_the_same_recipe_is_not_trained_again(tmp_path):
    """Rerunning notebook 03 for its evaluation reuses the finished adapter; another recipe (or resume off) trains."""
    p = train.load_params({"output_dir": str(tmp_path), "cpu_threads": 2})
    assert train.finished_run(p, tmp_path) is None  # nothing there
    (tmp_path / "adapter").mkdir()
    recorded = {k: v for k, v in p.items() if k != "signature_sources"}  # as if saved before that key existed
    (tmp_path / "adapter" / "tacsol_train.json").write_text(json.dumps({"params": {**recorded, "cpu_threads": 0}}))
    (tmp_path / "train_log.json").write_text(json.dumps({"steps": 7, "heldout_loss_after": 1.5}))
    assert train.finished_run(p, tmp_path) == {"steps": 7, "heldout_loss_after": 1.5}
    assert train.finished_run({**p, "learning_rate": 1e-3}, tmp_path) is None
    assert train.finished_run({**p, "resume": False}, tmp_path) is None


def test_length_grouped_plan_keeps_padding_low_and_covers_every_example():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(80, 700) for _ in range(400)]
    p = train.load_params({"batch_size": 4, "epochs": 2.0, "max_train_tokens": 0})
    plan = train.plan_schedule(lengths, p)
    seen = sorted(i for mb in plan["micro_batches"] for i in mb)
    assert seen == sorted(list(range(400)) * 2)  # two epochs, each example once per epoch
    assert plan["padding_share"] < 0.10, plan["padding_share"]
    random_batches = [list(range(i, i + 4)) for i in range(0, 400, 4)]  # what unsorted batching would pad
    naive = 1 - sum(lengths) / sum(4 * max(lengths[i] for i in b) for b in random_batches)
    print(f"padding share: length-grouped {plan['padding_share']:.1%} vs unsorted {naive:.1%}")
    assert plan["padding_share"] < naive / 3
    assert train.plan_schedule(lengths, p) == plan  # deterministic: depends on the seed only
    budget = train.plan_schedule(lengths, {**p, "max_train_tokens": 5000})
    assert budget["train_tokens"] >= 5000 and budget["train_tokens"] - budget["step_tokens"][-1] < 5000


def test_loss_decreases_over_real_steps(reference):
    _, res = reference
    losses = [c["loss"] for c in res["curve"]]
    assert len(losses) == STEPS
    print(f"train loss {losses[0]:.3f} → {losses[-1]:.3f}; held-out {res['heldout_loss_before']:.3f} → "
          f"{res['heldout_loss_after']:.3f}; {res['tokens_per_s']:.0f} tokens/s, {res['s_per_step']:.2f} s/step, "
          f"padding {res['padding_share']:.1%}, peak RSS {res['peak_rss_gb']:.2f} GB")
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.2
    assert res["heldout_loss_after"] < res["heldout_loss_before"] - 0.2
    out = Path(res["adapter_dir"]).parent
    log = json.loads((out / "train_log.json").read_text())
    assert log["curve"][0]["loss"] == losses[0] and (out / "loss.png").stat().st_size > 1000
    for f in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tacsol_train.json"):
        assert (out / "adapter" / f).is_file(), f
    assert res["tokens_per_s"] > 0 and res["peak_rss_gb"] > 0


def test_saved_adapter_reloads_and_generates_the_same_tokens(reference):
    import torch

    from tacsol import infer, prompt

    _, res = reference
    trained, tok = res["peft_model"], res["tokenizer"]
    reloaded, tok2 = infer.load(res["adapter_dir"])
    recs = train.load_records(RECORDS)["test"][:2]
    assert [prompt.prompt_ids(r, tok) for r in recs] == [prompt.prompt_ids(r, tok2) for r in recs]
    trained.eval()
    for r in recs:
        ids = torch.tensor([prompt.prompt_ids(r, tok)])
        with torch.no_grad():
            a = trained(input_ids=ids).logits
            b = reloaded(input_ids=ids).logits
            assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
            g = dict(max_new_tokens=16, min_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
            ga = trained.generate(input_ids=ids, **g)[0, ids.shape[1]:].tolist()
            gb = reloaded.generate(input_ids=ids, **g)[0, ids.shape[1]:].tolist()
        assert ga == gb and len(ga) == 16
    # the batched, left-padded path gives what one-by-one greedy decoding gives
    batched = infer.generate(reloaded, tok2, recs, max_new_tokens=16, batch_size=2, progress=False)
    single = [infer.generate(reloaded, tok2, [r], max_new_tokens=16, batch_size=1, progress=False)[0] for r in recs]
    assert batched == single


@pytest.mark.slow  # two subprocess starts (~1 min on 2 busy cores)
def test_resume_after_sigkill_matches_uninterrupted_curve(reference, tmp_path):
    ref_p, ref = reference
    p = {**ref_p, "output_dir": str(tmp_path / "run")}
    pf = tmp_path / "p.yaml"
    pf.write_text(yaml.safe_dump(p))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "tacsol.train", "--params", str(pf)]
    out = Path(p["output_dir"])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    marker = out / "checkpoints" / "checkpoint-3" / "trainer_state.json"
    t0 = time.time()
    while not marker.exists():
        assert proc.poll() is None, "training exited before its first checkpoint"
        assert time.time() - t0 < 150, "no checkpoint within 150 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "train_log.json").exists(), "the run finished before it was killed"
    killed_at = train.last_checkpoint(out / "checkpoints")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=170)
    assert r.returncode == 0, r.stderr[-3000:]
    log = json.loads((out / "train_log.json").read_text())
    assert log["resumed_from"] == killed_at
    got = [c["loss"] for c in log["curve"]]
    want = [c["loss"] for c in ref["curve"]]
    print(f"killed after {killed_at}; max |Δloss| = {max(abs(a - b) for a, b in zip(got, want)):.2e}")
    assert [c["step"] for c in log["curve"]] == list(range(1, STEPS + 1))
    assert got == pytest.approx(want, abs=2e-3)
    assert log["heldout_loss_after"] == pytest.approx(ref["heldout_loss_after"], abs=2e-3)


def test_qlora_nf4_double_quant_trains_on_cpu(tiny_model, tmp_path):
    import bitsandbytes as bnb

    p = {**_params(tiny_model, tmp_path / "q"), "quantization": "nf4", "max_steps": 3, "save_steps": 100}
    res = train.run(p, keep_model=True)
    q = res["peft_model"].base_model.model.model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(q, bnb.nn.Linear4bit)
    assert q.weight.quant_state.quant_type == "nf4" and q.weight.quant_state.nested  # double quantization
    assert res["quantization"] == "nf4"
    assert res["heldout_loss_after"] < res["heldout_loss_before"]


def test_no_batch_trains_on_nothing(tiny_model):
    """Rows whose target would be cut by max_seq_length (or whose prompt fills it) are dropped and counted, never
    truncated: every planned micro-batch has target tokens (a batch of all -100 labels trains on nothing)."""
    from transformers import AutoTokenizer

    from tacsol import prompt

    tok = AutoTokenizer.from_pretrained(tiny_model)
    prompt.add_special_tokens(tok)
    recs = train.load_records(RECORDS)["train"]
    lengths = [len(prompt.prompt_ids(r, tok)) for r in recs]
    max_len = sorted(lengths)[len(lengths) // 2] + 4  # about half the prompts alone exceed it
    ex, dropped = train._tokenize_all(recs, tok, max_len)
    assert dropped > 0 and len(ex) + dropped == len(recs)
    plan = train.plan_schedule([e["length"] for e in ex], train.load_params({"batch_size": 2, "max_train_tokens": 0}))
    coll = train.Collator(tok.pad_token_id)
    for mb in plan["micro_batches"]:
        labels = coll([ex[i] for i in mb])["labels"]
        assert (labels != prompt.IGNORE_INDEX).any(dim=1).all()  # every row has a target token


def test_logits_at_target_positions_give_the_models_own_loss_and_gradients(reference, tmp_path):
    """Training projects onto the vocabulary only where the next token is a target (train.target_positions): the
    loss and every LoRA gradient equal the model's own full-logits loss, through the Trainer as well."""
    import torch
    from transformers import AutoTokenizer

    from tacsol import prompt

    p, res = reference
    model = res["peft_model"].eval()   # no dropout: the two losses must see the same network
    tok = AutoTokenizer.from_pretrained(res["adapter_dir"])
    recs = train.load_records(RECORDS)["validation"]
    batch = train.Collator(tok.pad_token_id)([prompt.tokenize_example(r, tok, 512) for r in recs[:3]])
    lora = [w for w in model.parameters() if w.requires_grad]

    def loss_and_grads(fn):
        model.zero_grad(set_to_none=True)
        loss = fn()
        loss.backward()
        return loss.item(), [w.grad.clone() for w in lora]

    full, g_full = loss_and_grads(lambda: model(**batch).loss)
    keep = train.target_positions(batch["labels"])
    n = int((batch["labels"][:, 1:] != prompt.IGNORE_INDEX).sum())
    assert int(keep.sum()) == n < batch["labels"].numel() / 2   # the prompt is most of each example
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep)
    assert tuple(out.logits.shape) == (n, model.config.vocab_size)
    kept, g_kept = loss_and_grads(lambda: train.target_loss(
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep),
        batch["labels"]))
    assert kept == pytest.approx(full, rel=1e-5)
    for a, b in zip(g_full, g_kept):
        assert (a - b).abs().max() <= 1e-5 * max(1.0, a.abs().max().item())
    # over an accumulated batch the Trainer divides the sum by the tokens of all its micro-batches
    halved = train.target_loss(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                     logits_to_keep=keep), batch["labels"], num_items_in_batch=2 * n)
    assert halved.item() == pytest.approx(full / 2, rel=1e-5)
    pp = train.load_params({**p, "output_dir": str(tmp_path)})
    trainer = train._make_trainer(pp, model, tok, None, None, train.make_args(pp, tmp_path, 1, "float32"), [0])
    with torch.no_grad():
        assert trainer.compute_loss(model, dict(batch)).item() == pytest.approx(full, rel=1e-5)
    model.zero_grad(set_to_none=True)


def test_checkpoints_scored_on_a_whole_stratum(reference, tmp_path):
    """tools/score_checkpoints.py: every checkpoint generates on all the functions the run's evaluation scored in a
    stratum (not the curve's subset), one folder per step beside eval/curve/, and each step is paired with the final
    adapter on the same functions. The fixed-subset curve is a different folder and stays untouched."""
    import shutil

    import pandas as pd

    from tacsol.evaluate import suite

    p, _ = reference
    run = tmp_path / "run"
    shutil.copytree(p["output_dir"], run)
    test = train.run_records({**train.DEFAULTS, **p})["test"]
    ids = [r["id"] for r in test[:3]]
    (run / "eval").mkdir()
    (run / "eval" / "selection.json").write_text(json.dumps({"ids": {"contract_heldout": ids}}))
    pfile = tmp_path / "eval.yaml"
    pfile.write_text(yaml.safe_dump({"eval_compile": "none", "eval_behaviour": False, "max_new_tokens": 16}))
    sys.path.insert(0, str(ROOT / "tools"))
    import score_checkpoints

    assert score_checkpoints.main(["--run", str(run), "--params", str(pfile)]) == 0
    points = json.loads((run / "eval" / "curve-contract_heldout" / "curve.json").read_text())
    steps = [s for s, _ in suite.checkpoints(run)]
    assert [pt["step"] for pt in points] == sorted(set(steps) | {STEPS}) and len(points) >= 4
    assert all(pt["n_functions"] == 3 for pt in points)
    tokens = [pt["train_tokens"] for pt in points]
    assert tokens == sorted(tokens) and tokens[0] > 0
    table = pd.read_parquet(run / "eval" / "curve-contract_heldout" / f"step-{steps[0]}" / "functions.parquet")
    assert sorted(table["id"]) == sorted(ids)
    paired = json.loads((run / "eval" / "curve-contract_heldout" / "paired_with_final.json").read_text())
    assert {(r["step"], r["metric"]) for r in paired["paired"]} == {
        (s, m) for s in sorted(set(steps))[:-1] for m in ("behaviour_equivalent", "selector_match")}
    assert (run / "eval" / "curve-contract_heldout" / "learning_curve.png").stat().st_size > 10_000
    assert not (run / "eval" / "curve").exists()
    assert score_checkpoints.main(["--run", str(run), "--params", str(pfile), "--steps", str(steps[0])]) == 0
    points = json.loads((run / "eval" / "curve-contract_heldout" / "curve.json").read_text())
    assert [pt["step"] for pt in points] == [steps[0], STEPS]      # the chosen checkpoint and the final adapter
    with pytest.raises(ValueError, match="not a curve folder"):
        suite.learning_curve(run, test[:1], base_model=p["model"], tokenizer_dir=run / "adapter", max_new_tokens=4,
                             batch_size=1, stratum="contract_heldout")


def test_verifier_pool_starts_from_the_evaluations_greedy_answers_and_resumes(reference, tmp_path):
    """tools/bench_verifier.py on a whole stratum: candidate 0 is the evaluation's own greedy answer (so N = 1 is the
    reported greedy result), each further candidate a resumable generation file, the results in
    eval/verifier-<subset>/ (eval/verifier/ stays the curve's), and a rerun generates nothing again."""
    import shutil

    import pandas as pd

    from tacsol import infer
    from tacsol.evaluate import suite

    p, _ = reference
    run = tmp_path / "run"
    shutil.copytree(p["output_dir"], run)
    test = train.run_records({**train.DEFAULTS, **p})["test"][:3]
    (run / "eval").mkdir()
    (run / "eval" / "selection.json").write_text(json.dumps({"ids": {"contract_heldout": [r["id"] for r in test]}}))
    model, tok = infer.load(run / "adapter")
    greedy = infer.generate_to_file(model, tok, test, suite.generations_path(run, "contract_heldout", "fine-tuned"),
                                    max_new_tokens=16, batch_size=2, progress=False)
    pfile = tmp_path / "eval.yaml"
    pfile.write_text(yaml.safe_dump({"eval_compile": "none", "eval_behaviour": False}))
    sys.path.insert(0, str(ROOT / "tools"))
    import bench_verifier

    argv = ["--run", str(run), "--subset", "contract_heldout", "--ns", "1", "2", "--rules", "checks",
            "--max-new-tokens", "16", "--params", str(pfile)]
    assert bench_verifier.main(argv) == 0
    out = run / "eval" / "verifier-contract_heldout"
    pools = {json.loads(x)["id"]: json.loads(x)["candidates"] for x in (out / "candidates.jsonl").read_text().split("\n")
             if x}
    assert set(pools) == {r["id"] for r in test} and all(len(c) == 2 for c in pools.values())
    assert {i: c[0] for i, c in pools.items()} == greedy
    n1 = pd.read_parquet(out / "N1" / "functions.parquet").set_index("id")["generated"].to_dict()
    assert n1 == greedy
    assert [r["n"] for r in json.loads((out / "verifier.json").read_text())["results"]] == [1, 2]
    assert not (run / "eval" / "verifier").exists()
    stamps = {f: f.stat().st_mtime_ns for f in (out / "pool").glob("k*.jsonl")}
    assert len(stamps) == 2
    (out / "candidates.jsonl").unlink()    # the pool is assembled again from the per-candidate files, not regenerated
    assert bench_verifier.main(argv) == 0
    assert {f: f.stat().st_mtime_ns for f in (out / "pool").glob("k*.jsonl")} == stamps
    # scoring another rule alone keeps the rows already in verifier.json
    assert bench_verifier.main([*argv[:4], "--ns", "2", "--rules", "grounded", *argv[9:]]) == 0
    rows = json.loads((out / "verifier.json").read_text())["results"]
    assert [(r["rule"], r["n"]) for r in rows] == [("checks", 1), ("checks", 2), ("grounded", 2)]
    assert (out / "grounded-N2" / "functions.parquet").is_file()


def test_retrieval_prompts_train_and_save_the_index_they_cite(tiny_model, tmp_path):
    """A run with retrieval_prompts trains on prompts that show a neighbour and saves the records it cites beside
    its adapter (decompile reads them there); its loss falls as a plain run's does."""
    import gzip

    p = {**_params(tiny_model, tmp_path / "run"), "retrieval_prompts": True, "max_steps": 6, "save_steps": 6}
    res = train.run(p)
    losses = [c["loss"] for c in res["curve"]]
    assert len(losses) == 6 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2
    assert res["heldout_loss_after"] < res["heldout_loss_before"]
    saved = [json.loads(line) for line in gzip.decompress(
        (tmp_path / "run" / "adapter" / train.NEIGHBOUR_INDEX).read_bytes()).decode().splitlines()]
    assert [r["id"] for r in saved] == [r["id"] for r in train.load_records(RECORDS)["train"]]
    recs = train.run_records(train.load_params(p))
    assert all(r["neighbour"] and r["neighbour_id"] != r["id"] for r in recs["train"])
    assert train.neighbour_index(tmp_path / "run" / "adapter", p) == saved
