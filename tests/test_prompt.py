"""The TAC→Solidity template: round trip, loss mask on the target only, EOS appended, clear errors."""
import json
import sys
from pathlib import Path

import pytest

from tacsol import prompt

FIX = Path(__file__).resolve().parent / "fixtures" / "train"
RECORDS = [json.loads(l) for l in (FIX / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    sys.path.insert(0, str(FIX))
    import tiny

    from tacsol import loading

    folder = tiny.build(tmp_path_factory.mktemp("tiny") / "m")
    return loading.load_tokenizer(str(folder))


@pytest.mark.parametrize("rec", RECORDS[:12], ids=lambda r: r["id"])
def test_template_round_trips(rec):
    text = prompt.build_prompt(rec) + prompt.build_target(rec)
    back = prompt.parse(text)
    for f in ("selector", "signature", "visibility", "mutability", "tac", "solidity"):
        assert back[f] == rec[f], f
    # a prompt alone parses too, with an empty answer
    assert prompt.parse(prompt.build_prompt(rec))["solidity"] == ""


def test_unknown_metadata_is_omitted_and_round_trips():
    rec = {"id": "x", "tac": "block_0x0:\n  STOP()", "selector": "0x12345678", "solidity": "function f() {}"}
    text = prompt.build_prompt(rec)
    assert "signature:" not in text and "selector: 0x12345678" in text
    back = prompt.parse(text + prompt.build_target(rec))
    assert back["signature"] == "" and back["selector"] == "0x12345678" and back["tac"] == rec["tac"]


def test_bad_records_name_the_field():
    with pytest.raises(prompt.PromptError, match="'r1'.*'tac' is empty"):
        prompt.build_prompt({"id": "r1", "tac": "  "})
    with pytest.raises(prompt.PromptError, match="'r2'.*'signature' must be one line"):
        prompt.build_prompt({"id": "r2", "tac": "STOP()", "signature": "f()\ng()"})
    with pytest.raises(prompt.PromptError, match="'r3'.*'solidity' contains the reserved marker"):
        prompt.build_target({"id": "r3", "solidity": "x <|tac|> y"})
    with pytest.raises(prompt.PromptError, match="markers missing"):
        prompt.parse("function f() {}")


def test_markers_are_single_tokens(tok):
    ids = prompt.special_token_ids(tok)
    assert len(set(ids)) == len(prompt.SPECIAL_TOKENS)
    for t, i in zip(prompt.SPECIAL_TOKENS, ids):
        assert tok(t, add_special_tokens=False)["input_ids"] == [i]


def test_loss_mask_covers_only_target_plus_eos(tok):
    rec = RECORDS[5]
    ex = prompt.tokenize_example(rec, tok)
    p_ids = prompt.prompt_ids(rec, tok)
    n_p = len(p_ids)
    assert ex["input_ids"][:n_p] == p_ids  # inference sees exactly the training prefix
    assert all(l == prompt.IGNORE_INDEX for l in ex["labels"][:n_p])
    target = ex["labels"][n_p:]
    assert target == ex["input_ids"][n_p:] and prompt.IGNORE_INDEX not in target
    assert target[-1] == tok.eos_token_id
    assert tok.decode(target[:-1]) == prompt.build_target(rec)
    # too long → dropped, not truncated
    assert prompt.tokenize_example(rec, tok, max_len=len(ex["input_ids"]) - 1) is None
    assert prompt.tokenize_example(rec, tok, max_len=len(ex["input_ids"])) == ex


def test_header_prefill_names_only_functions_the_table_does_not_know():
    rec = {"id": "r", "tac": "function 0x5e383d21(uint256) view\nb0:\n  stop", "selector": "0x5E383D21"}
    assert prompt.header_prefill(rec) == ""                       # hints not in use: the adapter has no table
    assert prompt.header_prefill({**rec, "signature_hint": "values(uint256)"}) == ""   # the table names it
    assert prompt.header_prefill({**rec, "signature_hint": ""}) == "function unknown_5e383d21("
    assert prompt.header_prefill({**rec, "signature_hint": "", "selector": ""}) == "function unknown_5e383d21("  # TAC's
    assert prompt.header_prefill({"id": "f", "tac": "function fallback\nb0:\n  stop", "signature_hint": ""}) == ""


def test_neighbour_round_trips_after_the_tac_and_before_the_answer():
    rec = {**RECORDS[0], "neighbour": "function owner() public view returns (address) {\n    return _owner;\n}",
           "neighbour_similarity": 0.9712}
    text = prompt.build_prompt(rec)
    assert text.index(rec["tac"]) < text.index("// nearest training function by TAC (cosine 0.97):") \
        < text.index(rec["neighbour"]) < text.index(prompt.SOLIDITY)
    back = prompt.parse(text + prompt.build_target(rec))
    assert (back["tac"], back["neighbour"], back["neighbour_similarity"], back["solidity"]) == \
        (rec["tac"], rec["neighbour"], "0.97", rec["solidity"])
    # no neighbour (or an empty one): the prompt is the plain template, byte for byte
    assert prompt.build_prompt({**RECORDS[0], "neighbour": ""}) == prompt.build_prompt(RECORDS[0])
    assert prompt.parse(prompt.build_prompt(RECORDS[0]))["neighbour"] == ""


def test_bad_neighbours_name_the_field():
    with pytest.raises(prompt.PromptError, match="'n1'.*'neighbour' contains the reserved marker"):
        prompt.build_prompt({"id": "n1", "tac": "STOP()", "neighbour": "x <|solidity|>"})
    with pytest.raises(prompt.PromptError, match="'n2'.*'neighbour_similarity' is not a number"):
        prompt.build_prompt({"id": "n2", "tac": "STOP()", "neighbour": "function f() {}",
                             "neighbour_similarity": "high"})
    with pytest.raises(prompt.PromptError, match="'n3'.*'neighbour' contains the neighbour line"):
        prompt.build_prompt({"id": "n3", "tac": "STOP()",
                             "neighbour": "// nearest training function by TAC (cosine 1.00):\nfunction f() {}"})
