"""Data profiling: lengths in characters and exact tokens, coverage per sequence length, the recommended
``max_seq_length`` per model, entropy, composition, complexity buckets, duplicates and split leakage. Notebook
01_data_profiling draws these beside the claims about the data (:func:`tacsol.claims.data_claims`); training phases
read ``max_seq_length`` from its summary.json through :func:`max_seq_length_for`; the evaluation imports
:func:`complexity_bucket`.

Definitions (what every number means):

* **Full training sequence** = exactly what :func:`tacsol.prompt.tokenize_example` builds: BOS if the tokenizer adds
  one (Llama-3) + ``build_prompt(record)`` + ``build_target(record)`` + EOS. The prompt's markers (``<|tac|>`` ...)
  are added special tokens in training, so each counts as one token and the text between them is tokenized
  separately (as the HF tokenizer does with added tokens).
* **TAC tokens** = the tokens the TAC occupies in that sequence: the text between ``<|tac|>`` and ``<|solidity|>``
  (the TAC plus its two surrounding newlines). **Solidity tokens** = tokens of ``build_target(record)``.
* **Characters** are Python ``len`` (code points) of the raw ``tac`` / ``solidity`` fields and of prompt + target.
* **Coverage at L** = share of pairs whose full sequence has ≤ L tokens.
* **Recommended max_seq_length** for coverage target c: the smallest multiple of ``multiple_of`` (64) that is ≥ the
  length of the ⌈c·n⌉-th shortest sequence, so at least a share c of pairs fits (then capped by the model's
  context when given).
* **Entropy** = empirical unigram Shannon entropy H = −Σ p(s)·log2 p(s) over all symbol occurrences of the
  corpus (bits per symbol). Symbols: Solidity lexemes from :func:`solidity_lex` (comments and whitespace dropped;
  identifiers, keywords, numbers, string literals and operators each one lexeme, kept verbatim); TAC instructions by
  operation name from :func:`tac_operations` (one per instruction line, e.g. ``SLOAD``, ``ADD`` for ``a + b``,
  ``JUMPI`` for ``if .. goto``); bytecode opcodes by mnemonic from ``evmole.contract_info(disassemble=True)``
  (PUSH1..PUSH32 distinct, CBOR metadata cut off).
* **Exact duplicate rate** = 1 − distinct/rows over (tac, solidity) pairs; **near-duplicate rate** the same over
  normalized Solidity bodies (:func:`tacsol.pairs.normalize_body`: comments removed, whitespace collapsed).
  **Leakage** = number of normalized bodies present in more than one split (0 is the only acceptable number).
"""
from __future__ import annotations

import collections
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .lift.abi import TAC_LABEL as _TAC_LABEL   # bN / bN(params) / --offsets block_0x1a

__all__ = ["ProfileError", "THRESHOLDS", "load_pairs", "validate", "measure", "coverage", "recommend_max_seq_length",
           "describe", "shannon_entropy", "solidity_lex", "tac_operations", "bytecode_opcodes", "entropy_report",
           "composition", "tac_size", "complexity_bucket", "COMPLEXITY_BUCKETS", "hygiene",
           "max_seq_length_for", "profile", "replicate", "load_bytecodes", "bench_counting", "bench_report",
           "BENCH_FILE"]

THRESHOLDS = (2048, 4096, 8192, 16384, 20000)
REQUIRED = ("tac", "solidity")
TEXT_COLUMNS = ("id", "tac", "solidity", "selector", "signature", "visibility", "mutability", "package",
                "solc_version", "settings", "context")
SPLITS = ("train", "validation", "test")


class ProfileError(ValueError):
    """Bad input to profiling: names the column and the row."""


# ------------------------------------------------------------------------------------------------ loading
def check_params(values: dict[str, Any], where: str) -> None:
    """Notebook 01's parameters (tacsol.params.PLAN_CHECKS): the dataset and the bytecode file are there."""
    from . import pairs, paths
    from . import params as P

    pairs.check_dataset(values["dataset"], where)
    if values["bytecode_file"] and not paths.resolve(values["bytecode_file"]).is_file():
        raise P.param_error(where, "bytecode_file", f"file not found: {paths.resolve(values['bytecode_file'])}")


def load_pairs(dataset: Any):
    """A pandas DataFrame (one row per pair, a ``split`` column) from a DataFrame, a list of dicts, or anything
    :func:`tacsol.pairs.load` reads ("sample", a dataset name under outputs/data/ or folder, a .jsonl/.json/.parquet
    file, a DatasetDict / Dataset). Validates it (:func:`validate`)."""
    import pandas as pd

    from . import pairs

    where = str(dataset) if isinstance(dataset, (str, Path)) else "dataset"
    if isinstance(dataset, pd.DataFrame):
        df = dataset.copy()
    elif isinstance(dataset, list):
        _check_records(dataset, where)  # before pandas: arrow refuses undecodable text without saying where
        df = pd.DataFrame(dataset)
    else:
        try:
            dd = pairs.load(dataset)
        except pairs.DatasetError as exc:
            raise ProfileError(str(exc)) from None
        if not dd:
            raise ProfileError(f"{where}: dataset is empty (no splits)")
        # the DatasetDict key is authoritative
        df = pd.concat([ds.to_pandas().assign(split=name) for name, ds in dd.items()], ignore_index=True)
    if "split" not in df.columns:
        df["split"] = "all"
    validate(df, where)
    return df.reset_index(drop=True)


def _check_records(records: list, where: str) -> None:
    from . import pairs

    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ProfileError(f"{where}: row {i} is a {type(r).__name__}, expected a mapping of column → value")
        for col in TEXT_COLUMNS:
            v = r.get(col)
            name = f"row {i}" + (f" (id {r.get('id')!r})" if isinstance(r.get("id"), str) else "")
            if isinstance(v, (bytes, bytearray)):
                try:
                    bytes(v).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ProfileError(f"{where}: column {col!r}, {name}: not valid UTF-8 "
                                       f"(byte 0x{v[exc.start]:02x} at offset {exc.start})") from None
            elif isinstance(v, str) and not pairs.utf8_ok(v):
                bad = next(j for j, ch in enumerate(v) if "\ud800" <= ch <= "\udfff")
                raise ProfileError(f"{where}: column {col!r}, {name}: not valid UTF-8 text (undecodable byte "
                                   f"{v[bad]!r} at character {bad})")


def _row_name(df, i: int) -> str:
    rid = df["id"].iat[i] if "id" in df.columns else None
    return f"row {i}" + (f" (id {rid!r})" if isinstance(rid, str) and rid else "")


def validate(df, where: str = "dataset") -> None:
    """Refuse what would give wrong numbers, with the column and row named: no rows, missing ``tac``/``solidity``
    columns, missing/empty values there, and text that is not valid UTF-8 (bytes that do not decode, or strings
    carrying undecodable bytes as lone surrogates, e.g. read with errors='surrogateescape')."""
    if len(df) == 0:
        counts = df["split"].value_counts().to_dict() if "split" in df.columns else {}
        detail = ", ".join(f"{s}={counts.get(s, 0)}" for s in SPLITS)
        raise ProfileError(f"{where}: dataset is empty: 0 rows ({detail})")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ProfileError(f"{where}: missing column(s) {', '.join(repr(c) for c in missing)} "
                           f"(has: {', '.join(map(str, df.columns))})")
    for col in [c for c in TEXT_COLUMNS if c in df.columns]:
        values = df[col].tolist()
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                if col in REQUIRED:
                    raise ProfileError(f"{where}: column {col!r}, {_row_name(df, i)}: missing value")
                continue
            if isinstance(v, (bytes, bytearray)):
                try:
                    v = bytes(v).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ProfileError(f"{where}: column {col!r}, {_row_name(df, i)}: not valid UTF-8 "
                                       f"(byte 0x{v[exc.start]:02x} at offset {exc.start})") from None
                df.at[df.index[i], col] = v
            elif not isinstance(v, str):
                raise ProfileError(f"{where}: column {col!r}, {_row_name(df, i)}: expected text, got "
                                   f"{type(v).__name__}")
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise ProfileError(f"{where}: column {col!r}, {_row_name(df, i)}: not valid UTF-8 text "
                                       f"(undecodable byte {v[exc.start]!r} at character {exc.start})") from None
            if col in REQUIRED and not v.strip():
                raise ProfileError(f"{where}: column {col!r}, {_row_name(df, i)}: empty text")


# ------------------------------------------------------------------------------------------- token lengths
def _prompt_module():
    from . import prompt

    return prompt


def _segments(df) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Split every rendered prompt on the markers. Returns: flat non-marker segments, segment→row index,
    per-row marker count, the flat index of each row's TAC segment, targets, prompt chars, target chars."""
    P = _prompt_module()
    marker = re.compile("(" + "|".join(re.escape(t) for t in P.SPECIAL_TOKENS) + ")")
    cols = [c for c in ("id", "tac", "solidity", *P.META_FIELDS) if c in df.columns]
    recs = df[cols].to_dict("records")
    segs: list[str] = []
    owner: list[int] = []
    n_markers = np.zeros(len(recs), dtype=np.int64)
    tac_idx = np.full(len(recs), -1, dtype=np.int64)
    targets: list[str] = []
    pchars = np.zeros(len(recs), dtype=np.int64)
    tchars = np.zeros(len(recs), dtype=np.int64)
    for i, r in enumerate(recs):
        try:
            prompt, target = P.build_prompt(r), P.build_target(r)
        except P.PromptError as exc:
            raise ProfileError(f"{_row_name(df, i)}: {exc}") from None
        pchars[i], tchars[i] = len(prompt), len(target)
        targets.append(target)
        after_tac = False
        for part in marker.split(prompt):
            if part in P.SPECIAL_TOKENS:
                n_markers[i] += 1
                after_tac = part == P.TAC
                continue
            if part:
                if after_tac:
                    tac_idx[i] = len(segs)
                segs.append(part)
                owner.append(i)
            after_tac = False
    return segs, np.asarray(owner, dtype=np.int64), n_markers, tac_idx, targets, pchars, tchars


def measure(df, models: Sequence[str], *, hub: bool = False, timings: dict | None = None):
    """Per-pair lengths: ``tac_chars``, ``sol_chars``, ``full_chars`` and, per model m, ``m:tac``, ``m:sol``,
    ``m:prompt``, ``m:full`` (tokens). ``timings`` (optional dict) receives seconds per model."""
    import pandas as pd

    from . import tokens

    t0 = time.perf_counter()
    segs, owner, n_markers, tac_idx, targets, pchars, tchars = _segments(df)
    t_render = time.perf_counter() - t0
    out = pd.DataFrame({
        "split": df["split"].to_numpy(),
        "tac_chars": df["tac"].str.len().to_numpy(),
        "sol_chars": df["solidity"].str.len().to_numpy(),
        "full_chars": pchars + tchars,
    })
    for m in models:
        t1 = time.perf_counter()
        counter = tokens.tokenizer_for(m, hub=hub)
        seg_counts = counter.count_batch(segs)
        prompt_tok = np.bincount(owner, weights=seg_counts, minlength=len(df)).astype(np.int64)
        prompt_tok += n_markers + counter.bos
        sol_tok = counter.count_batch(targets)
        tac_tok = np.where(tac_idx >= 0, seg_counts[np.maximum(tac_idx, 0)], 0)
        out[f"{m}:tac"] = tac_tok
        out[f"{m}:sol"] = sol_tok
        out[f"{m}:prompt"] = prompt_tok
        out[f"{m}:full"] = prompt_tok + sol_tok + 1  # + EOS
        if timings is not None:
            timings[m] = time.perf_counter() - t1
    if timings is not None:
        timings["_render"] = t_render
    return out


def describe(x: Iterable[float]) -> dict[str, float]:
    a = np.asarray(list(x) if not isinstance(x, np.ndarray) else x, dtype=float)
    if a.size == 0:
        return {"n": 0}
    q = np.percentile(a, [5, 25, 50, 75, 90, 95, 99])
    return {"n": int(a.size), "mean": float(a.mean()), "min": float(a.min()), "p5": float(q[0]), "p25": float(q[1]),
            "median": float(q[2]), "p75": float(q[3]), "p90": float(q[4]), "p95": float(q[5]), "p99": float(q[6]),
            "max": float(a.max())}


def coverage(lengths: Iterable[int], thresholds: Sequence[int] = THRESHOLDS) -> dict[int, float]:
    """Share of sequences with length ≤ t, for each t."""
    a = np.sort(np.asarray(lengths))
    if a.size == 0:
        raise ProfileError("coverage of an empty length list")
    return {int(t): float(np.searchsorted(a, t, side="right") / a.size) for t in thresholds}


def recommend_max_seq_length(lengths: Iterable[int], target: float = 0.99, multiple_of: int = 64,
                             cap: int | None = None) -> dict[str, Any]:
    """Smallest multiple of ``multiple_of`` covering at least ``target`` of the sequences (see module doc), capped at
    ``cap`` (the model's context) when given. Returns the length, the coverage it reaches, the raw quantile
    length and whether the cap bit."""
    if not 0 < target <= 1:
        raise ProfileError(f"coverage target must be in (0, 1], got {target}")
    if multiple_of < 1:
        raise ProfileError(f"multiple_of must be ≥ 1, got {multiple_of}")
    a = np.sort(np.asarray(lengths))
    if a.size == 0:
        raise ProfileError("recommend_max_seq_length of an empty length list")
    k = max(1, math.ceil(target * a.size - 1e-9))  # at least k sequences must fit
    raw = int(a[k - 1])
    length = int(math.ceil(raw / multiple_of) * multiple_of)
    capped = cap is not None and length > cap
    if capped:
        length = int(cap)
    cov = float(np.searchsorted(a, length, side="right") / a.size)
    return {"max_seq_length": length, "coverage": cov, "quantile_length": raw, "target": target, "capped": capped}


# ------------------------------------------------------------------------------------------------- entropy
def shannon_entropy(symbols: Iterable[Any] | Mapping[Any, int]) -> float:
    """Empirical Shannon entropy in bits per symbol of a symbol sequence or a symbol→count mapping."""
    counts = symbols if isinstance(symbols, Mapping) else collections.Counter(symbols)
    c = np.asarray([v for v in counts.values() if v > 0], dtype=float)
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum() + 0.0)


# Solidity lexer: comments/whitespace dropped; each match of one alternative is one lexeme.
_SOL_OPS = sorted(["=>", "->", ":=", ">>>=", ">>>", "<<=", ">>=", "**", "==", "!=", "<=", ">=", "&&", "||", "++", "--",
                   "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "<<", ">>"], key=len, reverse=True)
_SOL_LEX = re.compile(
    r"(?P<ws>\s+)|(?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<string>(?:hex|unicode)?(?:\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'))"
    r"|(?P<number>0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.\d[\d_]*)?|\.\d[\d_]*)(?:[eE]-?\d[\d_]*)?)"
    r"|(?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)"
    r"|(?P<op>" + "|".join(re.escape(o) for o in _SOL_OPS) + r")"
    r"|(?P<other>.)", re.S)
_SOL_KEYWORDS = frozenset("""abstract address anonymous as assembly bool break bytes calldata catch constant
constructor continue contract delete do else emit enum error event external fallback false for function if
immutable import indexed interface internal is library mapping memory modifier new override payable pragma private
public pure receive return returns revert storage string struct super this true try type unchecked using view
virtual while int uint""".split())


_SOL_TOKEN = re.compile(  # the lexeme alternatives of _SOL_LEX without whitespace/comments, for findall
    r"(?:hex|unicode)?(?:\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
    r"|0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.\d[\d_]*)?|\.\d[\d_]*)(?:[eE]-?\d[\d_]*)?"
    r"|[A-Za-z_$][A-Za-z0-9_$]*"
    r"|" + "|".join(re.escape(o) for o in _SOL_OPS) + r"|[^\s]", re.S)
_KIND_CACHE: dict[str, str] = {}


def _kind(lexeme: str) -> str:
    k = _KIND_CACHE.get(lexeme)
    if k is None:
        m = _SOL_LEX.fullmatch(lexeme)
        g = m.lastgroup if m else "other"
        if g == "ident" and not (lexeme in _SOL_KEYWORDS or re.fullmatch(r"u?int\d*|bytes\d*", lexeme)):
            k = "IDENT"
        elif g == "number":
            k = "NUMBER"
        elif g == "string":
            k = "STRING"
        else:
            k = lexeme
        _KIND_CACHE[lexeme] = k
    return k


def solidity_lex(text: str, kinds: bool = False) -> list[str]:
    """Lexemes of Solidity source (the documented lexer for entropy): comments and whitespace dropped; each string
    literal (with optional hex/unicode prefix), number (hex, decimal, with _ . and exponent), identifier or keyword,
    operator (longest match: ``>>>= => ** == != <= >= && || ++ -- += -= ... << >>``) and other character is one
    lexeme, verbatim. ``kinds=True`` maps each lexeme to its class instead: keywords and elementary types
    (uintN/intN/bytesN) and operators/punctuation stay verbatim, other identifiers become IDENT, numbers NUMBER,
    strings STRING."""
    from .corpus import strip_comments

    toks = _SOL_TOKEN.findall(strip_comments(text))
    return [_kind(t) for t in toks] if kinds else toks


_TAC_INFIX = {"+": "ADD", "*": "MUL", "-": "SUB", "/": "DIV", "%": "MOD", "**": "EXP", "<": "LT", ">": "GT",
              "==": "EQ", "&": "AND", "|": "OR", "^": "XOR", "<<": "SHL", ">>": "SHR"}
_TAC_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_TAC_BIN = re.compile(r"^\S+\s+(\*\*|==|<<|>>|[+\-*/%<>&|^])\s+\S+$")


def tac_operations(tac: str) -> list[str]:
    """Operation name of every TAC instruction (docs/tac-format.md rendering of :mod:`tacsol.lift`): ``v = op(..)``
    and ``op(..)`` → OP; infix ``a + b`` → ADD (``< > == & | ^ << >> ** / % - *`` likewise); ``~a`` → NOT;
    ``v = <temp or constant>`` → ASSIGN; ``if .. goto`` → JUMPI; ``goto`` → JUMP; ``stop``/``invalid`` → STOP /
    INVALID (``invalid_0xNN`` too). The ``function ...`` header and block labels (``b3:``, ``b3(v7, v8):``,
    ``block_0x1a:``) are not instructions."""
    ops = []
    cache = _TAC_LINE_CACHE
    for line in tac.splitlines():
        op = cache.get(line)
        if op is None:
            op = _tac_line_op(line)
            if len(cache) < 1_000_000:  # lines repeat a lot across functions; bound the memory anyway
                cache[line] = op
        if op:
            ops.append(op)
    return ops


_TAC_LINE_CACHE: dict[str, str] = {}


_STORE_LINES = ("sstore(", "storagestring(", "checked storagestring(", "legacy storagestring(", "masked storagestring(")


def _tac_line_op(line: str) -> str:
    """Operation name of one TAC line ('' for headers, labels, blanks)."""
    s = line.strip()
    if not s or s.startswith(("function ", "//", "#")) or _TAC_LABEL.match(s):
        return ""
    if s.startswith("if "):
        return "JUMPI"
    if s.startswith("goto"):
        return "JUMP"
    lhs, eq, rhs = s.partition(" = ")
    if lhs.startswith(_STORE_LINES):   # level 3's field and string writes: sstore(s)[o:b] = x, storagestring(s) = p
        return "SSTORE"
    expr = rhs.strip() if eq else s
    if expr.startswith("checked "):   # level 3's call with its checks (`checked(a + b)` has no space): the call
        expr = expr[len("checked "):]
    m = _TAC_CALL.match(expr)
    if m:
        name = m.group(1).upper()
        return "SHA3" if name == "KECCAK256" else name
    if expr.startswith("~"):
        return "NOT"
    if (b := _TAC_BIN.match(expr)):
        return _TAC_INFIX[b.group(1)]
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", expr) and not eq:
        return "INVALID" if expr.startswith("invalid") else expr.upper()  # stop, invalid, invalid_0xNN
    return "ASSIGN"  # v = v1 / v = 0x.. / v = callvalue: a copy or an environment read


def tac_token_shares(tacs: Iterable[str], model: str = "llama3") -> dict[str, float]:
    """Where TAC tokens go: the share of all tokens of `tacs` on lines of each operation (:func:`tac_operations`'s
    names; ``LABEL`` for block labels, ``HEADER`` for the ``function`` line), largest first. Each line is tokenized
    alone with its newline, so the shares add up to 1 over the lines rather than the exact sequence length."""
    from . import tokens

    lines = [line for tac in tacs for line in tac.splitlines() if line.strip()]
    if not lines:
        return {}
    counts = tokens.count_batch(model, [line + "\n" for line in lines])
    by_op: collections.Counter = collections.Counter()
    for line, n in zip(lines, counts):
        s = line.strip()
        op = "HEADER" if s.startswith("function ") else "LABEL" if _TAC_LABEL.match(s) else _tac_line_op(line)
        by_op[op or "OTHER"] += int(n)
    total = sum(by_op.values())
    return {op: n / total for op, n in by_op.most_common()}


def bytecode_opcodes(code: str | bytes) -> list[str]:
    """Opcode mnemonics of runtime bytecode by evmole's disassembly, CBOR metadata cut off."""
    import evmole

    from . import evm

    if isinstance(code, str):
        try:
            code = evm.hex_bytes(code)
        except ValueError as exc:
            raise ProfileError(f"bytecode is not hex: {exc}") from None
    info = evmole.contract_info(code, disassemble=True, metadata=True)
    end = info.metadata.bytecode_offset if getattr(info, "metadata", None) is not None else len(code)
    return [text.split(" ", 1)[0] for off, text in (info.disassembled or []) if off < end]


def entropy_report(df, bytecode: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Entropy (bits/symbol), vocabulary size and symbol count for Solidity lexemes (and lexeme classes), TAC
    operations and, when bytecode is available (a ``bytecode`` column or the ``bytecode`` argument), opcodes."""
    sol = collections.Counter()
    sol_kinds = collections.Counter()
    for s in df["solidity"]:
        sol.update(solidity_lex(s))
    for lexeme, c in sol.items():
        sol_kinds[_kind(lexeme)] += c
    tac = collections.Counter()
    for t in df["tac"]:
        tac.update(tac_operations(t))

    def rep(c: collections.Counter) -> dict[str, Any]:
        return {"bits": shannon_entropy(c), "vocabulary": len(c), "symbols": int(sum(c.values())),
                "top": c.most_common(8)}

    out = {"solidity": rep(sol), "solidity_kinds": rep(sol_kinds), "tac": rep(tac)}
    codes = list(bytecode) if bytecode is not None else (
        [c for c in df["bytecode"].tolist() if isinstance(c, str) and c] if "bytecode" in df.columns else [])
    if codes:
        bc = collections.Counter()
        for c in dict.fromkeys(codes):  # one contract's code counted once, not once per function
            bc.update(bytecode_opcodes(c))
        out["bytecode"] = rep(bc)
    else:
        out["bytecode"] = None
    return out


# ------------------------------------------------------------------------------------------- composition
COMPLEXITY_BUCKETS = ("1-tiny", "2-small", "3-medium", "4-large", "5-huge")
_INSTR_EDGES = (25, 75, 200, 500)   # TAC instructions: ≤25 tiny, ≤75 small, ≤200 medium, ≤500 large, else huge
_BLOCK_EDGES = (4, 12, 30, 80)      # TAC basic blocks, same buckets


def _field(record: Any, key: str) -> Any:
    if isinstance(record, Mapping) or hasattr(record, "__getitem__"):
        try:
            return record[key]
        except (KeyError, IndexError, TypeError):
            pass
    return getattr(record, key, None)


def tac_size(record: Any) -> tuple[int, int]:
    """(TAC instructions, TAC basic blocks) of a pair: its ``tac_instructions``/``tac_blocks``, counted from ``tac``
    where absent (instructions by :func:`tac_operations`, blocks by their labels). Accepts a dict, a pandas row or an
    object."""
    instr, blocks = _field(record, "tac_instructions"), _field(record, "tac_blocks")
    if instr is None or blocks is None:
        tac = _field(record, "tac")
        if not isinstance(tac, str):
            raise ProfileError("a TAC size needs 'tac_instructions' and 'tac_blocks' or a 'tac' text "
                               f"(record id {_field(record, 'id')!r})")
        instr = len(tac_operations(tac)) if instr is None else instr
        blocks = sum(1 for ln in tac.splitlines() if _TAC_LABEL.match(ln)) if blocks is None else blocks
    return int(instr), int(blocks)


def complexity_bucket(record: Any) -> str:
    """Complexity stratum of one pair from its TAC size (:func:`tac_size`): the larger of the instruction bucket
    (≤25, ≤75, ≤200, ≤500, more) and the block bucket (≤4, ≤12, ≤30, ≤80, more) → one of
    :data:`COMPLEXITY_BUCKETS`. The one definition of the strata: 01's composition table, the evaluation's
    per-function ``complexity`` column and aggregates, and the stratified selection of held-out functions."""
    instr, blocks = tac_size(record)
    i = sum(instr > e for e in _INSTR_EDGES)
    b = sum(blocks > e for e in _BLOCK_EDGES)
    return COMPLEXITY_BUCKETS[max(i, b)]


def complexity_buckets(df) -> "np.ndarray":
    """:func:`complexity_bucket` for every row of a DataFrame (vectorized when the size columns exist)."""
    if "tac_instructions" in df.columns and "tac_blocks" in df.columns:
        i = np.searchsorted(np.asarray(_INSTR_EDGES), df["tac_instructions"].to_numpy(dtype=np.int64), side="left")
        b = np.searchsorted(np.asarray(_BLOCK_EDGES), df["tac_blocks"].to_numpy(dtype=np.int64), side="left")
        return np.asarray(COMPLEXITY_BUCKETS, dtype=object)[np.maximum(i, b)]
    return np.asarray([complexity_bucket(r) for r in df.to_dict("records")], dtype=object)


def _optimizer(settings: str) -> str:
    parts = str(settings).split("/")
    return parts[1] if len(parts) > 1 else "unknown"


def composition(df) -> dict[str, Any]:
    """Counts by package, solc version, optimizer setting, visibility, mutability and complexity bucket (each
    also by split), and the shares of pairs with loops / external calls / storage writes / events / assembly."""
    import pandas as pd

    d = df.copy()
    if "settings" in d.columns:
        d["optimizer"] = d["settings"].map(_optimizer)
    d["complexity"] = complexity_buckets(d)
    out: dict[str, Any] = {"by": {}, "missing": []}
    for col in ("package", "solc_version", "optimizer", "visibility", "mutability", "complexity"):
        if col not in d.columns:
            out["missing"].append(col)
            continue
        out["by"][col] = pd.crosstab(d[col].fillna("?"), d["split"]).assign(
            total=lambda t: t.sum(axis=1)).sort_values("total", ascending=False)
    flags = {}
    for col in ("has_loop", "has_external_call", "has_storage_write", "has_event", "has_assembly"):
        if col in d.columns:
            flags[col] = float(d[col].astype(bool).mean())
        else:
            out["missing"].append(col)
    out["flags"] = flags
    out["complexity"] = d["complexity"]
    return out


# ----------------------------------------------------------------------------------------------- hygiene
def _normalizer():
    from .pairs import normalize_body  # the dataset module's near-duplicate key (same rule as its splits)

    return normalize_body


def hygiene(df) -> dict[str, Any]:
    """Exact and near-duplicate rates and the leakage check across splits (see module doc)."""
    norm = _normalizer()
    n = len(df)
    # the texts themselves are the keys (Python caches string hashes; no collisions to reason about)
    tac_h, sol_h = df["tac"].tolist(), df["solidity"].tolist()
    pair_h = list(zip(tac_h, sol_h))
    norm_h = [norm(s) for s in sol_h]
    splits = df["split"].tolist()

    def rate(keys: list[str]) -> float:
        return 1 - len(set(keys)) / n

    ids = df["id"].tolist() if "id" in df.columns else [None] * n

    def cross(keys: list) -> dict[str, Any]:
        sides: dict[Any, set] = collections.defaultdict(set)
        for k, s in zip(keys, splits):
            sides[k].add(s)
        bad = {k for k, v in sides.items() if len(v) > 1}
        rows = [i for i, k in enumerate(keys) if k in bad]
        by_key: dict[Any, list] = collections.defaultdict(list)
        for i in rows:
            by_key[keys[i]].append({"row": i, "id": ids[i], "split": splits[i]})
        def pick(v: list) -> list:  # every split shows up, then the rest up to 8
            first = {}
            for e in v:
                first.setdefault(e["split"], e)
            return list(first.values()) + [e for e in v if e not in first.values()][: max(0, 8 - len(first))]

        examples = [{"body": str(k)[:120], "splits": sorted({e["split"] for e in v}), "rows": pick(v)}
                    for k, v in list(by_key.items())[:6]]
        return {"keys": len(bad), "rows": len(rows), "examples": examples}

    near = cross(norm_h)
    return {
        "rows": n,
        "exact_duplicate_rate": rate(pair_h),
        "solidity_duplicate_rate": rate(sol_h),
        "tac_duplicate_rate": rate(tac_h),
        "near_duplicate_rate": rate(norm_h),
        "leaked_bodies": near["keys"], "leaked_rows": near["rows"], "leak_examples": near["examples"],
        "leaked_tac": cross(tac_h)["keys"],  # identical TAC on two sides (informational: different sources)
        "normalizer": "tacsol.pairs.normalize_body",
    }


# ------------------------------------------------------------------------------------------ whole profile
def profile(df, models: Sequence[str], *, coverage_target: float = 0.99, thresholds: Sequence[int] = THRESHOLDS,
            hub: bool = False, bytecode: Sequence[str] | None = None, model_context: Mapping[str, int] | None = None,
            multiple_of: int = 64) -> dict[str, Any]:
    """Everything the notebook shows, as plain data (``lengths`` is a per-pair DataFrame)."""
    timings: dict[str, float] = {}
    lengths = measure(df, models, hub=hub, timings=timings)
    cov = {m: coverage(lengths[f"{m}:full"], thresholds) for m in models}
    rec = {m: recommend_max_seq_length(lengths[f"{m}:full"], coverage_target, multiple_of,
                                       cap=(model_context or {}).get(m)) for m in models}
    cpt = {m: float(lengths["full_chars"].sum() / lengths[f"{m}:full"].sum()) for m in models}
    cpt_parts = {m: {"tac": float(lengths["tac_chars"].sum() / lengths[f"{m}:tac"].sum()),
                     "sol": float(lengths["sol_chars"].sum() / lengths[f"{m}:sol"].sum())} for m in models}
    ent = entropy_report(df, bytecode)
    return {
        "lengths": lengths, "timings": timings, "coverage": cov, "recommended": rec, "chars_per_token": cpt,
        "chars_per_token_parts": cpt_parts, "entropy": ent, "composition": composition(df), "hygiene": hygiene(df),
        "stats": {c: describe(lengths[c]) for c in lengths.columns if c != "split"},
    }


# One function of one build, whatever its TAC level (record ids hash the TAC, so they change with it); the file too,
# since two files of a package may declare contracts of the same name.
LEVEL_KEY = ("package", "file", "contract", "signature", "settings")


def level_figures(lengths, model: str = "llama3") -> dict[str, Any]:
    """Issue 14's compact-TAC figures from :func:`measure`'s lengths in `model` tokens: pairs, median TAC and
    Solidity tokens, the median per-pair TAC / Solidity ratio, and the shares of pairs whose prompt + target fit
    2,048 and 4,096 tokens."""
    if not len(lengths):
        return {"pairs": 0}
    tac, sol, full = (np.asarray(lengths[f"{model}:{part}"]) for part in ("tac", "sol", "full"))
    return {"pairs": int(len(lengths)), "median_tac": float(np.median(tac)), "median_sol": float(np.median(sol)),
            "median_ratio": float(np.median(tac / np.clip(sol, 1, None))),
            "within_2048": float(np.mean(full <= 2048)), "within_4096": float(np.mean(full <= 4096))}


def level_comparison(frames: Mapping[str, Any], model: str = "llama3",
                     lengths_of: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Datasets side by side ({name: DataFrame}, each with its ``tac_level`` in ``df.attrs``): every pair, then only
    the functions all of them hold (:data:`LEVEL_KEY`), so that TAC levels compare on the same functions. Each
    dataset is tokenized once, or not at all where `lengths_of` holds its :func:`measure` lengths already."""
    import pandas as pd

    key = list(LEVEL_KEY)
    common = set.intersection(*(set(map(tuple, f[key].to_numpy())) for f in frames.values()))
    rows = []
    for name, f in frames.items():
        lengths = (lengths_of or {}).get(name)
        if lengths is None:
            lengths = measure(f, [model]) if len(f) else pd.DataFrame()
        first_common = ~f.duplicated(key).to_numpy() & np.array([tuple(r) in common for r in f[key].to_numpy()],
                                                                  dtype=bool)
        for which, sub in (("all", lengths), ("common", lengths[first_common] if len(f) else lengths)):
            rows.append({"dataset": name, "tac_level": f.attrs.get("tac_level", 1), "pairs_in": which,
                         **level_figures(sub, model)})
    return rows


def tail_report(df, lengths, limit: int = 2048, model: str = "llama3", top: int = 10) -> dict[str, Any]:
    """What lies past `limit` tokens (prompt + target, :func:`measure`'s lengths of `df` in `model` tokens): how many
    pairs, by package, solc version and contract (the `top` most), the median Solidity and TAC tokens of those
    pairs, and how many tokens past the limit the median one is. Issue 14's "within 2,048" goal is decided here."""
    full = np.asarray(lengths[f"{model}:full"])
    over = full > limit
    rows = df[over]

    def most(col: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in rows[col].value_counts().head(top).items()} if len(rows) else {}

    return {"limit": limit, "pairs": int(len(df)), "over": int(over.sum()),
            "within_pct": round(100 * float(np.mean(~over)), 2) if len(df) else None,
            "to_reach_95_pct": max(0, int(over.sum()) - int(len(df) * 0.05)),
            "by_package": most("package"), "by_solc": most("solc_version"), "by_contract": most("contract"),
            "median_sol_tokens": float(np.median(np.asarray(lengths[f"{model}:sol"])[over])) if over.any() else None,
            "median_tac_tokens": float(np.median(np.asarray(lengths[f"{model}:tac"])[over])) if over.any() else None,
            "median_excess_tokens": float(np.median(full[over] - limit)) if over.any() else None}


def replicate(df, n: int):
    """``n`` rows by repeating ``df`` (for throughput benchmarks: no text-level cache exists in the counters, so
    repeated texts cost the same as new ones)."""
    import pandas as pd

    reps = math.ceil(n / len(df))
    return pd.concat([df] * reps, ignore_index=True).iloc[:n].reset_index(drop=True)


def load_bytecodes(path: str | Path) -> list[str]:
    """Runtime bytecode for the opcode entropy: a JSON list or JSON-lines file of hex strings or of objects with
    ``runtime`` (or ``bytecode``)."""
    from . import paths

    raw = paths.resolve(path).read_text(encoding="utf-8")
    if str(path).endswith(".jsonl"):
        items = [json.loads(line) for line in raw.splitlines() if line.strip()]
    else:
        items = json.loads(raw)
    return [x if isinstance(x, str) else x.get("runtime") or x.get("bytecode") for x in items]


# ------------------------------------------------------------------------------------------------ throughput
BENCH_FILE = "outputs/bench/profile_100k.json"  # tools/bench_profile.py writes it; notebook 01 shows the latest


def bench_counting(df, models: Sequence[str], n: int, *, hub: bool = False, dataset: str = "") -> dict[str, Any]:
    """Throughput of the token counting: ``n`` pairs replicated from ``df`` (the counters keep no per-text cache,
    so a repeated pair costs what a new one of its size would), counted with every tokenizer in one process. The
    tokenizers are loaded (and on first use converted) outside the timed region."""
    from . import summary, tokens

    for m in models:
        tokens.tokenizer_for(m, hub=hub)
    big = replicate(df, n)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    measure(big, models, hub=hub, timings=timings)
    total = time.perf_counter() - t0
    return {"dataset": dataset, "base_pairs": len(df), "pairs": n, "hardware": summary.hardware_line(),
            "chars_per_pair": float((df["tac"].str.len() + df["solidity"].str.len()).mean()),
            "render_s": timings.pop("_render"), "per_tokenizer_s": timings,
            "pairs_per_s": {m: n / s for m, s in timings.items()}, "measure_total_s": total,
            "extrapolated_100k_s": total * 100_000 / n}


def bench_report(bench: Mapping[str, Any]) -> str:
    """:func:`bench_counting`'s figures as text (also those of an earlier run read back from :data:`BENCH_FILE`)."""
    lines = [f"{bench['pairs']:,} pairs (replicated from {bench['base_pairs']:,} of {bench['dataset']!r}, "
             f"{bench['chars_per_pair']:.0f} TAC+Solidity chars/pair) on {bench['hardware']}",
             f"  render prompts: {bench['render_s']:.1f} s"]
    lines += [f"  {m:28s} {s:6.1f} s  {bench['pairs_per_s'][m]:9,.0f} pairs/s"
              for m, s in bench["per_tokenizer_s"].items()]
    total = bench["measure_total_s"]
    lines.append(f"  token lengths, all tokenizers: {total:.1f} s -> {total * 100_000 / bench['pairs']:.0f} s "
                 "extrapolated to 100,000 pairs (target < 120 s)")
    return "\n".join(lines)


def max_seq_length_for(summary: str | Path | Mapping[str, Any], model: str) -> int:
    """The recommended max_seq_length for ``model`` from notebook 01's summary.json (by model id, else by family)."""
    from . import paths, tokens
    from .ioutil import read_json

    doc = summary if isinstance(summary, Mapping) else read_json(paths.resolve(summary))
    table = doc.get("max_seq_length") or {}
    if model in table:
        return int(table[model])
    fam = tokens.family_of(model)
    by_fam = doc.get("max_seq_length_by_family") or {}
    if fam in by_fam:
        return int(by_fam[fam])
    raise KeyError(f"no max_seq_length for {model!r} (family {fam}) in the profiling summary; has {sorted(table)}")


# ------------------------------------------------------------------------------------------------- figures
def _caption(fig, text: str) -> None:
    import textwrap

    fig.text(0.01, -0.01, "\n".join(textwrap.wrap(text, 150)), ha="left", va="top", fontsize=8, color="#333")


def model_context(model: str) -> int | None:
    """The model's max positions from the registry (None when unknown): caps the recommended length."""
    try:
        from . import models

        return int(models.resolve(model).max_positions)  # the embedded model's names resolve to its entry
    except Exception:  # unknown or user model: no cap rather than a guess
        return None


def plot_char_lengths(lengths, claimed_peak: tuple[int, int], caption: str):
    """Character histograms of TAC, Solidity and the full text; ``claimed_peak`` shaded on Solidity."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    for ax, col, title in zip(axes, ("tac_chars", "sol_chars", "full_chars"),
                              ("TAC", "Solidity", "full training text (prompt + target)")):
        x = lengths[col].to_numpy()
        bins = np.logspace(np.log10(max(1, x.min())), np.log10(x.max() + 1), 40)
        ax.hist(x, bins=bins, color="#4c72b0")
        ax.set_xscale("log")
        ax.axvline(np.median(x), color="k", ls="--", lw=1, label=f"median {np.median(x):,.0f}")
        if col == "sol_chars":
            ax.axvspan(*claimed_peak, color="orange", alpha=0.3, label="claimed peak {}–{}".format(*claimed_peak))
        ax.set_title(f"{title}: characters")
        ax.set_xlabel("characters (log scale)")
        ax.set_ylabel("pairs")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _caption(fig, caption)
    return fig


def plot_token_lengths(lengths, models: Sequence[str], recommended: Mapping[str, Any], thresholds: Sequence[int],
                       caption: str):
    """Histogram (left) and CDF (right) of full-sequence tokens per tokenizer, thresholds and recommendations."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 4.2))
    hi = max(int(lengths[f"{m}:full"].max()) for m in models)
    bins = np.logspace(np.log10(max(1, min(int(lengths[f"{m}:full"].min()) for m in models))), np.log10(hi + 1), 50)
    for m in models:
        x = np.sort(lengths[f"{m}:full"].to_numpy())
        line = ax1.hist(x, bins=bins, histtype="step", lw=1.5, label=m)[2][0]
        ax2.plot(x, np.arange(1, x.size + 1) / x.size, lw=1.5, label=m, color=line.get_edgecolor())
        rec = recommended[m]["max_seq_length"]
        ax2.axvline(rec, color=line.get_edgecolor(), ls=":", lw=1.2)
        ax2.annotate(f"{rec:,}", (rec, 0.02), rotation=90, fontsize=7, color=line.get_edgecolor())
    for t in thresholds:
        for ax in (ax1, ax2):
            ax.axvline(t, color="grey", ls="--", lw=0.8)
        ax2.annotate(f"{t:,}", (t, 0.5), rotation=90, fontsize=7, color="grey")
    target = next(iter(recommended.values()))["target"]
    ax2.axhline(target, color="red", lw=0.8, ls="--", label=f"coverage target {target:.0%}")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("tokens per full training sequence (log scale)")
    ax1.set_ylabel("pairs")
    ax1.set_title("Full sequence length per tokenizer (grey: 2k/4k/8k/16k/20k)")
    ax2.set_ylabel("share of pairs that fit (coverage)")
    ax2.set_title("Coverage CDF (dotted: recommended max_seq_length)")
    ax2.set_ylim(0, 1.01)
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _caption(fig, caption)
    return fig


def plot_part_tokens(lengths, models: Sequence[str], claimed: tuple[int, int], caption: str):
    """TAC and Solidity token histograms per tokenizer with the ``claimed`` band of tokens per function."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(15, 3.6))
    for ax, part, name in zip(axes, ("tac", "sol"), ("TAC", "Solidity")):
        allx = np.concatenate([lengths[f"{m}:{part}"].to_numpy() for m in models])
        bins = np.logspace(np.log10(max(1, allx.min())), np.log10(allx.max() + 1), 45)
        for m in models:
            ax.hist(lengths[f"{m}:{part}"], bins=bins, histtype="step", lw=1.5, label=m)
        ax.axvspan(*claimed, color="orange", alpha=0.25, label="claimed {}–{}".format(*claimed))
        ax.set_xscale("log")
        ax.set_title(f"{name} tokens per function")
        ax.set_xlabel("tokens (log scale)")
        ax.set_ylabel("pairs")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _caption(fig, caption)
    return fig


def plot_composition(comp: Mapping[str, Any], caption: str, top: int = 12):
    """Stacked bars (split) per composition axis, and the feature-flag shares."""
    import matplotlib.pyplot as plt
    import pandas as pd

    axes_names = list(comp["by"])
    n = len(axes_names) + 1
    cols = 3
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(16, 3.8 * rows))
    axes = np.atleast_1d(axes).ravel()
    colors = {"train": "#4c72b0", "validation": "#dd8452", "test": "#55a868"}
    for ax, name in zip(axes, axes_names):
        t = comp["by"][name]
        if name == "complexity":
            t = t.sort_index()
        elif len(t) > top:
            other = t.iloc[top:].sum().to_frame("other").T
            t = pd.concat([t.iloc[:top], other])
        bottom = np.zeros(len(t))
        order = [c for c in ("train", "validation", "test") if c in t.columns]
        for s in order + [c for c in t.columns if c not in order and c != "total"]:
            ax.barh(t.index.astype(str), t[s].to_numpy(), left=bottom, label=s, color=colors.get(s))
            bottom += t[s].to_numpy()
        ax.invert_yaxis()
        ax.set_title(f"by {name}")
        ax.set_xlabel("pairs")
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=7)
    ax = axes[len(axes_names)]
    flags = comp["flags"]
    ax.barh(list(flags), [100 * v for v in flags.values()], color="#8172b2")
    for i, v in enumerate(flags.values()):
        ax.annotate(f"{v:.1%}", (100 * v, i), fontsize=8, va="center")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_title("share of pairs with each feature")
    ax.set_xlabel("% of pairs")
    for ax in axes[n:]:
        ax.axis("off")
    fig.tight_layout()
    _caption(fig, caption)
    return fig


def plot_benchmark(bench: Mapping[str, Any], caption: str):
    import matplotlib.pyplot as plt

    ms = list(bench["pairs_per_s"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 3.2))
    ax1.barh(ms, [bench["pairs_per_s"][m] for m in ms], color="#4c72b0")
    ax1.set_xlabel("pairs/s (TAC, Solidity and full-sequence counts)")
    ax1.set_title(f"Token counting throughput ({bench['pairs']:,} pairs)")
    ax1.invert_yaxis()
    est = {m: 100_000 / bench["pairs_per_s"][m] for m in ms}
    est["render prompts"] = bench["render_s"] * 100_000 / bench["pairs"]
    total = sum(est.values())
    ax2.barh(list(est), list(est.values()), color="#55a868")
    ax2.axvline(120, color="red", ls="--", lw=1, label="target: 120 s in total")
    ax2.set_xlabel("seconds for 100,000 pairs (extrapolated)")
    ax2.set_title(f"Extrapolated to 100k pairs: {total:.0f} s in total")
    ax2.invert_yaxis()
    ax2.legend(fontsize=8)
    fig.tight_layout()
    _caption(fig, caption)
    return fig


def plot_entropy(entropy: Mapping[str, Any], paper: Mapping[str, float], caption: str):
    """Measured unigram entropies beside the ``paper``'s (tacsol.claims: paper.entropy)."""
    import matplotlib.pyplot as plt

    keys = ["solidity", "tac", "bytecode"]
    measured = [entropy[k]["bits"] if entropy.get(k) else np.nan for k in keys]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = np.arange(len(keys))
    ax.bar(xs - 0.2, [paper[k] for k in keys], 0.4, label="paper", color="#bbbbbb")
    ax.bar(xs + 0.2, measured, 0.4, label="this dataset", color="#4c72b0")
    for x, v in zip(xs, measured):
        ax.annotate("n/a" if np.isnan(v) else f"{v:.2f}", (x + 0.2, 0 if np.isnan(v) else v), ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(xs, ["Solidity lexeme", "TAC operation", "bytecode opcode"])
    ax.set_ylabel("bits per symbol")
    ax.set_title("Unigram entropy: paper vs measured")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _caption(fig, caption)
    return fig
