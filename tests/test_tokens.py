"""Exact token counts per model family (tacsol.tokens): known ids and hand-checked splits, the SmolLM2 fast path
against the HF tokenizer itself, family resolution and the offline fallback."""
import random
import warnings

import numpy as np
import pytest

from tacsol import tokens as T

LLAMA, QWEN, SMOL = "meta-llama/Llama-3.2-3B", "Qwen/Qwen2.5-Coder-32B", "smollm2"


def test_hello_world_known_ids():
    import quicktok

    # Published ids: Llama-3 'hello'=15339 ' world'=1917; Qwen2.5 'hello'=14990 ' world'=1879.
    assert quicktok.encoding_for_model(LLAMA).encode("hello world") == [15339, 1917]
    assert quicktok.encoding_for_model(QWEN).encode("hello world") == [14990, 1879]
    for m in (LLAMA, QWEN, SMOL):
        assert T.tokenizer_for(m).count("hello world") == 2, m
    smol = T.tokenizer_for(SMOL)._batch.hf  # the GGUF tokenizer itself
    assert smol.encode("hello world", add_special_tokens=False).ids == [28120, 905]


def test_digit_rules_per_family():
    # Llama-3 groups digits by up to three ("123" "45"); Qwen2.5 and SmolLM2 split every digit.
    assert T.tokenizer_for(LLAMA).count("12345") == 2
    assert T.tokenizer_for(QWEN).count("12345") == 5
    assert T.tokenizer_for(SMOL).count("12345") == 5
    # SmolLM2's Digits pre-tokenizer: two spaces before a digit stay one 'ĠĠ' token (the GPT-2 regex alone gives 2)
    assert T.tokenizer_for(SMOL).count("  1") == 2
    assert T.tokenizer_for(LLAMA).bos == 1 and T.tokenizer_for(QWEN).bos == 0 and T.tokenizer_for(SMOL).bos == 0


def test_smollm2_fast_path_matches_hf_tokenizer():
    counter = T.tokenizer_for(SMOL)
    hf = counter._batch.hf
    rng = random.Random(7)
    alphabet = " \t\n\r\x0b\x0c" + "".join(chr(c) for c in range(33, 127))
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(3000)]
    texts += ["  v12 = sload(0x2)\n  if v3 goto block_0x4e else block_0x52", "function f() external {\n\t\tx += 1;  \n}",
              "café — 日本語 0x12", "emoji \U0001f680 1  2"]  # the last two take the non-ASCII (HF) path
    ref = np.array([len(e.ids) for e in hf.encode_batch(texts, add_special_tokens=False)])
    got = counter.count_batch(texts)
    bad = [texts[i] for i in np.nonzero(got != ref)[0][:5]]
    assert not bad, f"fast path differs from the HF tokenizer on {bad!r}"


def test_cached_tokenizer_is_reused_and_has_digits_split():
    import json

    from tacsol import loading, paths

    p1 = loading.embedded_tokenizer_dir()
    p2 = loading.embedded_tokenizer_dir()
    assert p1 == p2 and (p1 / "tokenizer_config.json").is_file() and paths.cache_dir() in p1.parents
    pre = json.loads((p1 / "tokenizer.json").read_text())["pre_tokenizer"]
    assert pre["type"] == "Sequence" and pre["pretokenizers"][0] == {"type": "Digits", "individual_digits": True}


def test_count_batch_empty_and_consistent():
    c = T.tokenizer_for(LLAMA)
    assert c.count_batch([]).shape == (0,)
    texts = ["a", "", "function f() public {}", "x" * 1000]
    assert c.count_batch(texts).tolist() == [c.count(t) for t in texts]
    assert c.count("") == 0


@pytest.mark.parametrize("name,family", [
    ("meta-llama/Llama-3.1-8B", "llama3"), ("Llama-3.2-3B", "llama3"), ("meta-llama/Llama-3.1-70B", "llama3"),
    ("Qwen/Qwen2.5-Coder-32B", "qwen2.5"), ("Qwen/Qwen2.5-72B", "qwen2.5"), ("qwen2.5", "qwen2.5"),
    ("embedded:smollm2-135m", "smollm2"), ("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2")])
def test_family_of(name, family):
    assert T.family_of(name) == family


def test_unknown_model_is_refused_naming_it():
    with pytest.raises(T.TokenizerError, match=r"'mistralai/Mistral-7B'.*known families"):
        T.tokenizer_for("mistralai/Mistral-7B")


def test_hub_request_offline_falls_back_to_family(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    T._COUNTERS.pop(("meta-llama/Llama-3.1-8B", True), None)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c = T.tokenizer_for("meta-llama/Llama-3.1-8B", hub=True)
    assert c.family == "llama3" and "quicktok" in c.source
    assert any("AutoTokenizer" in str(x.message) for x in w)
