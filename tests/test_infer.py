"""tacsol decompile: bytecode (lifted) and TAC inputs through a trained adapter on a shrunken model; input errors."""
import json
import sys
from pathlib import Path

import pytest

from tacsol import infer, train

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def adapter(tiny_adapter):
    return tiny_adapter


def test_records_from_bytecode_use_the_lifter():
    contract = json.loads((FIX / "lift" / "contracts.json").read_text())[0]
    recs = infer.records_from_input("0x" + contract["runtime"])
    want = {"0x" + s for s in contract["method_identifiers"].values()}
    assert {r["selector"] for r in recs if r["selector"]} == want
    assert all(r["tac"].strip() for r in recs)


def test_bytecode_is_lifted_at_the_level_the_adapter_was_trained_on(tmp_path, monkeypatch):
    """An adapter trained on a level-2 dataset (its manifest's tac_level) gets level-2 TAC; unknown: level 1."""
    from tacsol import paths

    monkeypatch.setenv("TACSOL_OUTPUTS", str(tmp_path / "out"))
    manifest = paths.outputs_dir() / "data" / "compact" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"tac_level": 2}))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "tacsol_train.json").write_text(json.dumps({"params": {"dataset": "compact"}}))
    assert infer.lift_options_of(adapter)["level"] == 2 and infer.lift_options_of(tmp_path)["level"] == 1
    # a shipped adapter carries its level: it holds without the dataset on this machine
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "tacsol_train.json").write_text(json.dumps({"params": {"dataset": "gone"}, "tac_level": 2}))
    assert infer.lift_options_of(shipped)["level"] == 2
    contract = json.loads((FIX / "lift" / "contracts.json").read_text())[0]
    recs = infer.records_from_input("0x" + contract["runtime"], level=2)
    assert any(r["tac"].startswith("function 0x") and "arg0: " in r["tac"] for r in recs)


def test_bytecode_is_lifted_with_the_callee_budget_the_adapter_was_trained_with(tmp_path, monkeypatch):
    """The callee budget travels like the level: a dataset built with --callee-budget records it in its manifest,
    training copies it into the adapter's tacsol_train.json, and decompile lifts with it (a budget the model never
    saw would show it callee bodies where it learned summaries, or the reverse)."""
    from tacsol import paths
    from tacsol.lift import CALLEE_BUDGET_CHARS

    monkeypatch.setenv("TACSOL_OUTPUTS", str(tmp_path / "out"))
    manifest = paths.outputs_dir() / "data" / "tight" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"tac_level": 3, "callee_budget": 0}))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "tacsol_train.json").write_text(json.dumps({"params": {"dataset": "tight"}}))
    assert infer.lift_options_of(adapter) == {"level": 3, "callee_budget": 0}
    assert infer.lift_options_of(tmp_path) == {"level": 1, "callee_budget": CALLEE_BUDGET_CHARS}
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "tacsol_train.json").write_text(json.dumps({"params": {"dataset": "gone"}, "tac_level": 2,
                                                            "callee_budget": 3072}))
    assert infer.lift_options_of(shipped) == {"level": 2, "callee_budget": 3072}
    code = "0x" + next(c for c in json.loads((FIX / "lift" / "level2.json").read_text())
                       if c["id"] == "E@0.6.12/noopt")["runtime"]
    full = infer.records_from_input(code, level=2)
    tight = infer.records_from_input(code, level=2, callee_budget=0)
    with_units = [i for i, r in enumerate(full) if "\n\nfunction f" in r["tac"]]
    assert with_units and all("// summary of " in tight[i]["tac"] and "// summary of " not in full[i]["tac"]
                              for i in with_units)


def _write(path, text: str):
    path.write_text(text)
    return path


def test_bad_input_is_refused_clearly(tmp_path, capsys):
    with pytest.raises(ValueError, match="not hex bytecode"):
        infer.records_from_input("function f() {}")
    # --tac with text that is no TAC: the model would write a confident function for it (it wrote `hasRole` for
    # "hello world"); a unit header or, for a body alone, a block label starts TAC
    with pytest.raises(ValueError, match=r"notes.txt: not TAC: its first line 'hello world'"):
        infer.records_from_input(str(_write(tmp_path / "notes.txt", "hello world\n")), tac=True)
    for text in ("function 0x095ea7b3(arg0: address, arg1: uint256)\nb0:\n  stop", "\nb0:\n  stop",
                 "function 0x12345678(address) view\nblock_0x1a:\n  STOP()", "block_0x0100:\n  STOP()"):
        assert infer.records_from_input(text, tac=True)[0]["tac"] == text.lstrip()
    from tacsol.cli import main

    assert main(["decompile", "0x6080", "--adapter", str(tmp_path)]) == 2
    assert "not a LoRA adapter folder" in capsys.readouterr().err


def test_decompile_cli_tac_and_bytecode(adapter, tmp_path, capsys):
    from tacsol.cli import main

    rec = train.load_records(FIX / "train" / "records.jsonl")["test"][0]
    f = tmp_path / "fn.tac"
    f.write_text(rec["tac"])
    assert main(["decompile", str(f), "--tac", "--adapter", adapter, "--max-new-tokens", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and out[0]["tac"] == rec["tac"] and isinstance(out[0]["solidity"], str)
    contract = json.loads((FIX / "lift" / "contracts.json").read_text())[0]
    hexfile = tmp_path / "code.hex"
    hexfile.write_text(contract["runtime"])
    assert main(["decompile", str(hexfile), "--adapter", adapter, "--max-new-tokens", "4", "--batch-size", "16"]) == 0
    text = capsys.readouterr().out
    for sel in contract["method_identifiers"].values():
        assert f"// 0x{sel}" in text


def test_decompile_works_without_adapter_using_the_shipped_one(capsys):
    """The reference run's adapter ships in the package: `tacsol decompile` needs no --adapter (issue 12)."""
    from tacsol.cli import main

    assert (infer.SHIPPED_ADAPTER / "adapter_config.json").is_file(), "the reference adapter is not shipped"
    size = (infer.SHIPPED_ADAPTER / "adapter_model.safetensors").stat().st_size
    assert size <= 12e6 and (infer.SHIPPED_ADAPTER / "params.yaml").is_file()
    contract = json.loads((FIX / "lift" / "contracts.json").read_text())[0]
    assert main(["decompile", "0x" + contract["runtime"], "--max-new-tokens", "24", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["selector"] for r in out} >= {"0x" + s for s in contract["method_identifiers"].values()}
    assert all(isinstance(r["solidity"], str) for r in out)


def test_the_shipped_adapter_ships_its_training_index_for_the_retrieval_gate(capsys, monkeypatch):
    """The shipped adapter's neighbours.jsonl.gz: its training functions (permissive units only, its held-out
    packages absent), so `tacsol decompile --retrieval-gate` works without the dataset; a training function's TAC
    comes back as its own copy, without loading the model."""
    import gzip

    from tacsol import corpus
    from tacsol.cli import main

    trained = infer.trained_params(infer.SHIPPED_ADAPTER)
    index = [json.loads(line) for line in
             gzip.decompress((infer.SHIPPED_ADAPTER / train.NEIGHBOUR_INDEX).read_bytes()).decode().splitlines()]
    assert len(index) > 1000 and all(corpus.is_permissive(r["license"]) for r in index)
    assert not any(train.in_packages(r, trained["holdout_packages"]) for r in index)
    monkeypatch.setattr(infer, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")))
    assert main(["decompile", index[7]["tac"], "--tac", "--retrieval-gate", "0.6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert out["source"] == "retrieval" and out["solidity"] == index[7]["solidity"]


def test_a_shipped_copy_carries_its_training_index_when_asked(adapter, tmp_path):
    import gzip

    plain = infer.ship_adapter(adapter, tmp_path / "plain")
    assert train.NEIGHBOUR_INDEX not in plain                   # evidence copies stay small
    shipped = infer.ship_adapter(adapter, tmp_path / "shipped", training_index=True)
    assert shipped[train.NEIGHBOUR_INDEX] > 0
    index = gzip.decompress((tmp_path / "shipped" / train.NEIGHBOUR_INDEX).read_bytes()).decode().splitlines()
    want = train.load_records(infer.trained_params(adapter)["dataset"])["train"]
    assert sorted(json.loads(line)["id"] for line in index) == sorted(r["id"] for r in want)


def test_decompile_candidates_rank_greedy_first(adapter, capsys):
    from tacsol.cli import main

    rec = train.load_records(FIX / "train" / "records.jsonl")["test"][0]
    assert main(["decompile", rec["tac"], "--tac", "--adapter", adapter, "--max-new-tokens", "8", "--candidates", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert len(out["checks"]) == 3 and 0 <= out["candidate"] < 3
    best = max(range(3), key=lambda i: (out["checks"][i]["score"], -i))
    assert out["candidate"] == best and "consensus" not in out["checks"][0]
    assert main(["decompile", rec["tac"], "--tac", "--adapter", adapter, "--max-new-tokens", "8", "--candidates", "3",
                 "--rank", "consensus", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    c = out["checks"]
    assert all(0.0 <= x["consensus"] <= 1.0 for x in c)
    best = max(range(3), key=lambda i: (c[i]["score"], round(c[i]["consensus"], 3), -i))
    assert out["candidate"] == best or round(c[best]["consensus"], 3) == round(c[out["candidate"]]["consensus"], 3)
    assert main(["decompile", rec["tac"], "--tac", "--adapter", adapter, "--candidates", "0"]) == 2


def test_decompile_candidates_of_bytecode_run_against_it(adapter, tmp_path, capsys, monkeypatch):
    """With bytecode input every candidate gets check 5 (tacsol.evaluate.stubrun) against the runtime given; the
    text output says when the chosen answer ran like the bytecode."""
    from tacsol.cli import main
    from tacsol.evaluate import stubrun, verify

    contract = json.loads((FIX / "lift" / "contracts.json").read_text())[0]
    seen = []
    real = stubrun.check_all
    monkeypatch.setattr(stubrun, "check_all", lambda recs, codes, pools, workers=2: seen.append((codes, workers))
                        or real(recs, codes, pools, workers))
    assert main(["decompile", "0x" + contract["runtime"], "--adapter", adapter, "--max-new-tokens", "8",
                 "--candidates", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # one batch for every function, run in this process (beside the loaded model)
    assert len(seen) == 1 and seen[0][1] == 1 and len(seen[0][0]) == len(out)
    assert all(code == bytes.fromhex(contract["runtime"]) for code in seen[0][0].values())
    assert all("runtime" not in r for r in out)
    for r in out:
        assert all(c["runs"] in ("equivalent", "differs", "") and (c["runs"] or c["runs_detail"]) for c in r["checks"])
    assert all(r["runs"] == r["checks"][r["candidate"]]["runs"] for r in out)
    # the text form marks an answer that ran like the bytecode, with candidates or without; --no-run-check skips it
    fake = [stubrun.RunCheck("equivalent", "24 cases"), stubrun.RunCheck("", "unknown function _x")]
    monkeypatch.setattr(stubrun, "check_all", lambda recs, codes, pools, workers=2: {i: fake[:len(p)]
                                                                                     for i, p in pools.items()})
    monkeypatch.setattr(infer, "generate", lambda model, tok, recs, **kw: ["function f() public {}"] * len(recs))
    for extra in (["--candidates", "2"], []):
        assert main(["decompile", "0x" + contract["runtime"], "--adapter", adapter, "--max-new-tokens", "8"]
                    + extra) == 0
        assert "(ran like the bytecode: 24 cases)" in capsys.readouterr().out
    assert main(["decompile", "0x" + contract["runtime"], "--adapter", adapter, "--max-new-tokens", "8",
                 "--no-run-check", "--json"]) == 0
    assert all("runs" not in r for r in json.loads(capsys.readouterr().out))
    assert verify.rank_key(verify.Check("x", runs="equivalent"), 1) > verify.rank_key(verify.Check("x"), 0)


def test_functions_without_tac_are_skipped_with_their_lift_status(adapter, capsys):
    """Vyper behind a jump table lifts to status 'unsupported' with no TAC: decompile says so instead of letting the
    model guess from an empty prompt."""
    from tacsol.cli import main

    build = next(c for c in json.loads((FIX / "lift" / "vyper.json").read_text()) if c["settings"] == "gas")
    assert main(["decompile", "0x" + build["runtime"], "--adapter", adapter, "--max-new-tokens", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    skipped = [r for r in out if r.get("skipped")]
    assert skipped and all(r["solidity"] == "" and "unsupported" in r["skipped"] for r in skipped)
    assert all(r["tac"].strip() for r in out if not r.get("skipped"))


def test_decompile_gives_known_signatures_the_way_the_adapter_was_trained(adapter, tmp_path, capsys):
    """The shipped standard interfaces by default: in the metadata for an adapter trained without signature_hints,
    after the TAC header for one trained with them (issue 14); --signatures none gives none."""
    import shutil

    from tacsol.cli import main

    tac = "function 0x095ea7b3(address,uint256) nonpayable\nb0:\n  stop"
    args = [tac, "--tac", "--max-new-tokens", "2", "--json"]
    assert main(["decompile", *args, "--adapter", adapter]) == 0
    assert json.loads(capsys.readouterr().out)[0]["signature"] == "approve(address,uint256)"
    assert main(["decompile", *args, "--adapter", adapter, "--signatures", "none"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["signature"] == ""
    hinted = tmp_path / "hinted"
    shutil.copytree(adapter, hinted)
    meta = json.loads((hinted / "tacsol_train.json").read_text())
    meta["params"]["signature_hints"] = True
    (hinted / "tacsol_train.json").write_text(json.dumps(meta))
    assert main(["decompile", *args, "--adapter", str(hinted)]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert out["signature_hint"] == "approve(address,uint256)" and out["signature"] == ""
    assert main(["decompile", *args, "--adapter", adapter, "--signatures", str(tmp_path / "missing.json")]) == 2
    # an adapter trained with event_names also gets the known event topics named; one trained without, hex
    approval = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
    logged = [tac.replace("  stop", f"  log3({approval}, caller, arg0; arg1)\n  stop"), *args[1:]]
    assert main(["decompile", *logged, "--adapter", str(hinted)]) == 0
    assert approval in json.loads(capsys.readouterr().out)[0]["tac"]
    meta["params"]["event_names"] = True
    (hinted / "tacsol_train.json").write_text(json.dumps(meta))
    assert main(["decompile", *logged, "--adapter", str(hinted)]) == 0
    assert "log3(Approval(address,address,uint256), caller, arg0; arg1)" in json.loads(capsys.readouterr().out)[0]["tac"]
    # an adapter trained with retrieval prompts gets its training set's nearest function in each prompt; without
    # that training set on the machine, decompile says so (exit 2) instead of prompting it the wrong way
    meta["params"].update(retrieval_prompts=True, dataset="sample", holdout_packages=[])
    (hinted / "tacsol_train.json").write_text(json.dumps(meta))
    assert main(["decompile", *args, "--adapter", str(hinted)]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    train_ids = {r["id"] for r in train.load_records("sample")["train"]}
    assert out["neighbour_id"] in train_ids and out["neighbour"].strip()
    # the index saved beside the adapter (as training writes it) stands in for the dataset, with the same neighbour
    train.save_neighbour_index(hinted, meta["params"])
    meta["params"]["dataset"] = str(tmp_path / "no-such-dataset")
    (hinted / "tacsol_train.json").write_text(json.dumps(meta))
    assert main(["decompile", *args, "--adapter", str(hinted)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["neighbour_id"] == out["neighbour_id"]
    (hinted / train.NEIGHBOUR_INDEX).unlink()
    assert main(["decompile", *args, "--adapter", str(hinted)]) == 2
    assert "trained with retrieval prompts) needs its training set: it has no neighbours.jsonl.gz" in \
        capsys.readouterr().err


def test_retrieval_gate_copies_the_near_training_function_and_generates_the_rest(adapter, tmp_path, capsys,
                                                                                 monkeypatch):
    """--retrieval-gate TAU: a function whose nearest training function by TAC is at least TAU near is answered with
    that function's Solidity, marked as a copy, and not generated; the others are generated; without the adapter's
    training set on this machine it says so (exit 2)."""
    import shutil

    from tacsol.cli import main

    gated = tmp_path / "gated"
    shutil.copytree(adapter, gated)
    meta = json.loads((gated / "tacsol_train.json").read_text())
    trained_on = train.load_records(meta["params"]["dataset"])["train"]
    twin = trained_on[0]                               # a function the adapter was trained on, as input
    assert main(["decompile", twin["tac"], "--tac", "--adapter", str(gated), "--retrieval-gate", "0.6",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert out["source"] == "retrieval" and out["tac_similarity"] == pytest.approx(1.0)
    assert out["solidity"] == next(r["solidity"] for r in trained_on if r["id"] == out["neighbour_id"])
    # nothing to generate: the model is not even loaded
    monkeypatch.setattr(infer, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")))
    assert main(["decompile", twin["tac"], "--tac", "--adapter", str(gated), "--retrieval-gate", "0.6"]) == 0
    assert f"copied from training function {out['neighbour_id']} (TAC cosine 1.00)" in capsys.readouterr().out
    monkeypatch.undo()
    far = "function 0x12345678() nonpayable\nb0:\n  stop"   # no training function is near
    assert main(["decompile", far, "--tac", "--adapter", str(gated), "--retrieval-gate", "0.6",
                 "--max-new-tokens", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert "source" not in out and isinstance(out["solidity"], str)
    # bytecode's selector known: a copy under another function's name does not replace a model answer that has the
    # selector, and replaces one that does not
    named = {**twin, "id": "0x095ea7b3", "selector": "0x095ea7b3"}
    monkeypatch.setattr(infer, "records_from_input", lambda *a, **k: [dict(named)])
    for answer, source in (("function approve(address a, uint256 v) external returns (bool) {}", None),
                           ("function other() external {}", "retrieval")):
        monkeypatch.setattr(infer, "generate", lambda *a, answer=answer, **k: [answer])
        out = infer.decompile(twin["tac"], gated, retrieval_gate=0.6, signature_table="none")[0]
        assert out.get("source") == source and (out["solidity"] == answer) == (source is None)
    monkeypatch.undo()
    assert main(["decompile", far, "--tac", "--adapter", str(gated), "--retrieval-gate", "1.5"]) == 2
    assert "--retrieval-gate 1.5: a TF-IDF cosine, between 0 and 1" in capsys.readouterr().err
    meta["params"]["dataset"] = str(tmp_path / "no-such-dataset")
    (gated / "tacsol_train.json").write_text(json.dumps(meta))
    assert main(["decompile", far, "--tac", "--adapter", str(gated), "--retrieval-gate", "0.6"]) == 2
    assert "--retrieval-gate 0.6 needs its training set: it has no neighbours.jsonl.gz" in capsys.readouterr().err


def test_prefill_starts_unnamed_functions_with_their_selector_name(adapter, monkeypatch):
    """generate(prefill="always"): a function the known-signature table does not name starts as
    `function unknown_<selector>(`, followed by what the model writes; a named one is not touched. "fallback"
    prefills only where the model's own answer has no function in it."""
    model, tok = infer.load(adapter)
    tac = "function 0x5e383d21(uint256) view\nb0:\n  stop"
    unnamed = {"id": "u", "tac": tac, "selector": "0x5e383d21", "signature_hint": ""}
    named = {**unnamed, "id": "n", "signature_hint": "values(uint256)"}
    out = infer.generate(model, tok, [unnamed, named], max_new_tokens=4, progress=False, prefill="always")
    plain = infer.generate(model, tok, [named], max_new_tokens=4, progress=False)
    assert out[0].startswith("function unknown_5e383d21(")
    assert out[1] == plain[0]
    with pytest.raises(ValueError, match="prefill 'yes'"):
        infer.generate(model, tok, [named], prefill="yes")

    answers = iter([["function f() public {}", "uint256 public x;"], ["return 1;"], ["function unknown_5e383d21(x"]])
    calls = []

    def fake(model, tok, recs, **kw):
        calls.append(([r["id"] for r in recs], kw["prefill"]))
        return next(answers)

    monkeypatch.setattr(infer, "_generate", fake)
    second = {**unnamed, "id": "u2"}
    assert infer.generate(model, tok, [unnamed, second], prefill="fallback", progress=False) == [
        "function f() public {}", "uint256 public x;"]          # both are functions: nothing redone
    assert infer.generate(model, tok, [unnamed], prefill="fallback", progress=False) == ["function unknown_5e383d21(x"]
    assert calls == [(["u", "u2"], False), (["u"], False), (["u"], True)]


def test_decompile_prefills_functions_no_known_signature_names(adapter, tmp_path, capsys):
    """An adapter trained with signature hints: a selector the table does not know starts as
    `function unknown_<selector>(` (--prefill always); --prefill none leaves the whole answer to the model."""
    import shutil

    from tacsol.cli import main

    hinted = tmp_path / "hinted"
    shutil.copytree(adapter, hinted)
    meta = json.loads((hinted / "tacsol_train.json").read_text())
    meta["params"]["signature_hints"] = True
    (hinted / "tacsol_train.json").write_text(json.dumps(meta))
    tac = "function 0x5e383d21(uint256) view\nb0:\n  stop"
    args = [tac, "--tac", "--max-new-tokens", "2", "--json", "--adapter", str(hinted)]
    assert main(["decompile", *args, "--prefill", "always"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert out["signature_hint"] in ("", None) and out["solidity"].startswith("function unknown_5e383d21(")
    assert main(["decompile", *args, "--prefill", "none"]) == 0
    assert not json.loads(capsys.readouterr().out)[0]["solidity"].startswith("function unknown_5e383d21(")


def test_evaluation_generations_of_another_prefill_mode_are_kept_apart(adapter, tmp_path):
    """suite.model_generations with eval_prefill: its own resumable file, so a rerun with another mode never reuses
    (or mixes in) answers decoded the other way."""
    from tacsol.evaluate import suite

    model, tok = infer.load(adapter)
    rec = {"id": "u", "tac": "function 0x5e383d21(uint256) view\nb0:\n  stop", "selector": "0x5e383d21",
           "signature_hint": ""}
    plain, _ = suite.model_generations(model, tok, [rec], tmp_path, "contract_heldout", "fine-tuned",
                                       max_new_tokens=3, batch_size=1, progress=False)
    always, _ = suite.model_generations(model, tok, [rec], tmp_path, "contract_heldout", "fine-tuned",
                                        max_new_tokens=3, batch_size=1, progress=False, prefill="always")
    assert always["u"].startswith("function unknown_5e383d21(")
    assert suite.generations_path(tmp_path, "contract_heldout", "fine-tuned").is_file()
    assert suite.generations_path(tmp_path, "contract_heldout", "fine-tuned-prefill-always").is_file()
    again, _ = suite.model_generations(model, tok, [rec], tmp_path, "contract_heldout", "fine-tuned",
                                       max_new_tokens=3, batch_size=1, progress=False)
    assert again == plain
