"""The one TAC → Solidity template, used identically by training (:mod:`tacsol.train`) and inference
(:mod:`tacsol.infer`).

Layout (special tokens mark the function boundary, the metadata block, the TAC and the start of the answer, as in
the paper; metadata lines are omitted when unknown, e.g. no signature when decompiling raw bytecode)::

    <|function|>
    <|meta|>
    selector: 0xa9059cbb
    signature: transfer(address,uint256)
    visibility: external
    mutability: nonpayable
    <|tac|>
    ...TAC of this function (docs/tac-format.md)...
    <|solidity|>
                                   ← build_prompt ends here; the model writes from here
    function transfer(address to, uint256 value) external returns (bool) { ... }<eos>
                                   ← build_target (the tokenizer step appends EOS)

Known signatures (issue 14, :mod:`tacsol.signatures`): a record prepared with a ``signature_hint`` field (by
:func:`tacsol.signatures.hint_records`; training with ``signature_hints: true``) shows only what the table of known
signatures knows: the hint after the TAC header line (``function 0x095ea7b3(address,uint256) nonpayable  //
approve(address,uint256)``, nothing when unknown) and no ``signature:`` line, since its own signature is the label
the evaluation scores and what a decompiler of bytecode never has.

Retrieval-augmented prompts (issue 12; training with ``retrieval_prompts: true``, :func:`tacsol.train.run_records`): a
record with a ``neighbour`` field shows the Solidity of the nearest training function by TAC after its TAC, under
one plain-text line that gives the TF-IDF cosine (``neighbour_similarity``), so the model can learn when a copy is
the answer and when it only shows the style::

    <|tac|>
    ...TAC...
    // nearest training function by TAC (cosine 0.97):
    function transfer(address to, uint256 amount) public virtual override returns (bool) { ... }
    <|solidity|>

The line is text, not a fifth marker, so adapters trained before it load with the tokenizer they were saved with.

Loss is taken on the target tokens and EOS only (:func:`tokenize_example` masks the prompt with -100).
The prompt is tokenized with the tokenizer's usual special tokens (BOS for Llama), the target without, and the two
id lists are concatenated — so inference, which tokenizes ``build_prompt`` alone, sees exactly the training prefix.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .signatures import annotate, selector_of, split_hint

FUNCTION = "<|function|>"
META = "<|meta|>"
TAC = "<|tac|>"
SOLIDITY = "<|solidity|>"
SPECIAL_TOKENS = [FUNCTION, META, TAC, SOLIDITY]
META_FIELDS = ("selector", "signature", "visibility", "mutability")
IGNORE_INDEX = -100
NEIGHBOUR_LINE = "// nearest training function by TAC (cosine {:.2f}):"
_NEIGHBOUR_RE = re.compile(r"^// nearest training function by TAC \(cosine (-?[0-9.]+)\):$", re.M)


class PromptError(ValueError):
    """A record cannot be rendered: names the record id and the field."""


def _get(record: Mapping[str, Any], key: str) -> str:
    v = record.get(key) if hasattr(record, "get") else None
    return "" if v is None else str(v)


def _rid(record: Mapping[str, Any]) -> str:
    return _get(record, "id") or _get(record, "selector") or "<record>"


def _check(record: Mapping[str, Any], field: str, value: str, single_line: bool) -> None:
    for t in SPECIAL_TOKENS:
        if t in value:
            raise PromptError(f"record {_rid(record)!r}: field {field!r} contains the reserved marker {t}")
    if single_line and "\n" in value:
        raise PromptError(f"record {_rid(record)!r}: field {field!r} must be one line")


def build_prompt(record: Mapping[str, Any]) -> str:
    """Everything before the target. ``record`` needs ``tac``; selector/signature/visibility/mutability are optional;
    with a ``signature_hint`` field (even empty) the hint replaces the record's own signature (module docstring)."""
    tac = _get(record, "tac").strip("\n")
    if not tac.strip():
        raise PromptError(f"record {_rid(record)!r}: field 'tac' is empty")
    _check(record, "tac", tac, single_line=False)
    hinted = "signature_hint" in record
    if hinted:
        hint = _get(record, "signature_hint").strip()
        _check(record, "signature_hint", hint, single_line=True)
        tac = annotate(tac, hint)
    lines = [FUNCTION, META]
    for f in META_FIELDS:
        v = "" if hinted and f == "signature" else _get(record, f).strip()
        if v:
            _check(record, f, v, single_line=True)
            lines.append(f"{f}: {v}")
    lines += [TAC, tac, *_neighbour_lines(record), SOLIDITY, ""]
    return "\n".join(lines)


def _neighbour_lines(record: Mapping[str, Any]) -> list[str]:
    sol = _get(record, "neighbour").strip("\n")
    if not sol.strip():
        return []
    _check(record, "neighbour", sol, single_line=False)
    if _NEIGHBOUR_RE.search(sol):
        raise PromptError(f"record {_rid(record)!r}: field 'neighbour' contains the neighbour line itself")
    try:
        sim = float(record.get("neighbour_similarity") or 0.0)
    except (TypeError, ValueError):
        raise PromptError(f"record {_rid(record)!r}: field 'neighbour_similarity' is not a number: "
                          f"{record.get('neighbour_similarity')!r}") from None
    return [NEIGHBOUR_LINE.format(sim), sol]


def build_target(record: Mapping[str, Any]) -> str:
    """The Solidity answer (EOS is appended as a token id by :func:`tokenize_example`, not as text)."""
    sol = _get(record, "solidity").strip("\n")
    if not sol.strip():
        raise PromptError(f"record {_rid(record)!r}: field 'solidity' is empty")
    _check(record, "solidity", sol, single_line=False)
    return sol


def parse(text: str) -> dict[str, str]:
    """Inverse of ``build_prompt(r) + build_target(r)``: the metadata fields, ``tac``, ``signature_hint`` (empty
    without one), ``neighbour`` and ``neighbour_similarity`` (empty without one) and ``solidity`` (empty when
    ``text`` is a prompt only). Raises PromptError when the markers are
    missing or out of order."""
    try:
        i_f = text.index(FUNCTION)
        i_m = text.index(META, i_f)
        i_t = text.index(TAC, i_m)
        i_s = text.index(SOLIDITY, i_t)
    except ValueError:
        raise PromptError("text does not follow the tacsol template (markers missing or out of order)") from None
    out = {f: "" for f in META_FIELDS}
    for line in text[i_m + len(META):i_t].strip("\n").splitlines():
        key, sep, val = line.partition(": ")
        if not sep or key not in META_FIELDS:
            raise PromptError(f"metadata line {line!r} is not 'field: value' with field in {META_FIELDS}")
        out[key] = val
    body = text[i_t + len(TAC):i_s].strip("\n")
    m = _NEIGHBOUR_RE.search(body)
    out["neighbour"], out["neighbour_similarity"] = "", ""
    if m:
        body, out["neighbour"], out["neighbour_similarity"] = body[:m.start()].rstrip("\n"), \
            body[m.end():].strip("\n"), m.group(1)
    out["tac"], out["signature_hint"] = split_hint(body)
    out["solidity"] = text[i_s + len(SOLIDITY):].removeprefix("\n")
    return out


def add_special_tokens(tokenizer) -> int:
    """Register the markers as additional special tokens (atomic, never split). Returns how many were new."""
    have = set(tokenizer.get_vocab())
    new = [t for t in SPECIAL_TOKENS if t not in have]
    if not new:
        return 0
    return tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False) \
        if _accepts_replace(tokenizer) else tokenizer.add_special_tokens({"additional_special_tokens": new})


def _accepts_replace(tokenizer) -> bool:
    import inspect

    try:
        return "replace_extra_special_tokens" in inspect.signature(tokenizer.add_special_tokens).parameters
    except (TypeError, ValueError):
        return False


def special_token_ids(tokenizer) -> list[int]:
    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise PromptError("tokenizer lacks the tacsol markers: call tacsol.prompt.add_special_tokens first")
    return ids


def header_prefill(record: Mapping[str, Any]) -> str:
    """The start of the answer that decoding writes for the model when the known-signature table does not know the
    function (a ``signature_hint`` field that is empty): ``function unknown_5e383d21(``, named by its selector as
    decompilers name unknown functions. Trained only on real names, the model otherwise writes a header with no
    name at all (``function public virtual override returns (uint256)``) for most such functions. "" when the
    table knows the function, when hints are not in use, or without a selector (fallback, receive)."""
    sel = selector_of(record).strip().lower()  # the record's, or the one its TAC header names
    if "signature_hint" not in record or _get(record, "signature_hint").strip() or not sel.startswith("0x"):
        return ""
    return f"function unknown_{sel[2:]}("


def prompt_ids(record: Mapping[str, Any], tokenizer) -> list[int]:
    """Token ids of the prompt exactly as training sees them (inference uses this)."""
    return tokenizer(build_prompt(record), add_special_tokens=True)["input_ids"]


def tokenize_example(record: Mapping[str, Any], tokenizer, max_len: int | None = None) -> dict[str, list[int]] | None:
    """input_ids / labels (prompt masked to -100; target + EOS kept) / attention_mask. None when longer than
    max_len: such examples are dropped (and counted by the caller) rather than truncated, because a truncated
    target would never teach EOS and a truncated TAC teaches code the input does not show."""
    p = prompt_ids(record, tokenizer)
    t = tokenizer(build_target(record), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if max_len is not None and len(p) + len(t) > max_len:
        return None
    ids = p + t
    return {"input_ids": ids, "labels": [IGNORE_INDEX] * len(p) + t, "attention_mask": [1] * len(ids)}
