"""No training row is cut: an example whose prompt + target exceeds max_seq_length (a prompt that fills it, or a
target that would lose its end) is dropped and counted, never truncated; every micro-batch the schedule builds has
target tokens to learn from (no batch of labels all -100: trl #3728, #3927) and every kept target ends in EOS."""
import pytest

from tacsol import loading, pairs, prompt, train


@pytest.fixture(scope="module")
def tok():
    return loading.load_tokenizer("embedded:smollm2-135m")


def test_prompt_filling_the_context_and_cut_targets_are_dropped_not_truncated(tok):
    recs = [dict(r) for r in pairs.load("sample")["train"]]
    full = [len(prompt.prompt_ids(r, tok)) + len(tok(prompt.build_target(r), add_special_tokens=False)["input_ids"]) + 1
            for r in recs]
    max_len = sorted(full)[len(full) // 2]  # half the rows are too long
    kept, dropped = train._tokenize_all(recs, tok, max_len)
    assert dropped == sum(n > max_len for n in full) and 0 < dropped < len(recs)
    assert len(kept) + dropped == len(recs)
    for ex in kept:
        labels = [x for x in ex["labels"] if x != prompt.IGNORE_INDEX]
        assert ex["length"] <= max_len and labels and labels[-1] == tok.eos_token_id
    # a prompt that alone fills the context is dropped; an empty target is refused, naming the record and field
    long_prompt = dict(recs[0], tac=recs[0]["tac"] * 200)
    assert prompt.tokenize_example(long_prompt, tok, max_len) is None
    with pytest.raises(prompt.PromptError, match=f"record '{recs[0]['id']}': field 'solidity' is empty"):
        prompt.tokenize_example(dict(recs[0], solidity=""), tok, None)


def test_no_scheduled_micro_batch_is_all_ignored_labels(tok):
    recs = [dict(r) for r in pairs.load("sample")["train"]]
    kept, _ = train._tokenize_all(recs, tok, 384)
    p = {**train.DEFAULTS, "batch_size": 4, "grad_accum": 2, "epochs": 2.0, "max_steps": -1, "max_train_tokens": 0}
    plan = train.plan_schedule([e["length"] for e in kept], p)
    collate = train.Collator(tok.pad_token_id)
    assert plan["micro_batches"]
    for mb in plan["micro_batches"]:
        labels = collate([kept[i] for i in mb])["labels"]
        assert (labels != prompt.IGNORE_INDEX).any(dim=1).all(), f"a row of micro-batch {mb} has no target token"
