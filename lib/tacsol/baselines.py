"""Baselines scored on the same held-out functions with the same metrics (tacsol.evaluate):

1. `base_model`: the untuned base model (the paper's ablation) through a caller-supplied `generate` callable
   (training/inference own the model; this only batches, records failures and scores).
2. `retrieval`: the Solidity of the nearest training function by TAC (TF-IDF over normalised TAC tokens, or MiniLM
   embeddings of the TAC) — shows whether a model does more than recall near-duplicates.
3. `decompiler`: traditional decompilers that run offline, sevm (npm) and panoramix (PyPI, solc < 0.8.20 bytecode),
   run once per contract with a timeout; the function whose selector matches is cut out of their output and scored
   as it is (pseudo-Solidity). Needs the runtime bytecode per record (`bytecode_of`).

Each writes <out_dir>/eval/baselines/<name>/ (functions.parquet, summary.json, figures)."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import corpus, evm, paths
from .evaluate import GenerationFailure, evaluate_run

PANORAMIX_PIN = "panoramix-decompiler==0.6.1"
PANORAMIX_MAX_SOLC = (0, 8, 20)  # panoramix prints only a fallback for PUSH0 bytecode (solc >= 0.8.20 default)


def baseline_dir(out_dir: str | os.PathLike, name: str) -> Path:
    return paths.resolve(out_dir) / "eval" / "baselines" / name


def _records(records) -> list[dict]:
    from .evaluate import _records_list

    return _records_list(records)


# ---------------------------------------------------------------- 1. untuned base model

def base_model(records, generate: Callable[[list[dict]], Sequence[str]], out_dir, *, batch_size: int = 8,
               name: str = "base-model", progress: bool = True, **eval_kwargs) -> dict:
    """Score an untuned model: generate(list of records) -> one Solidity string per record (build the prompt with
    tacsol.prompt.build_prompt, exactly as for the fine-tuned model). A batch whose call raises, or returns the
    wrong number of outputs, is recorded as failures for its records."""
    from tqdm.auto import tqdm

    recs = _records(records)
    gens: dict[str, Any] = {}
    t0 = time.perf_counter()
    for i in tqdm(range(0, len(recs), batch_size), desc=f"{name}: generate", disable=not progress):
        batch = recs[i:i + batch_size]
        try:
            outs = list(generate(batch))
            if len(outs) != len(batch):
                raise ValueError(f"generate returned {len(outs)} outputs for {len(batch)} records")
        except Exception as exc:  # one bad batch must not abort the baseline; it is counted
            outs = [GenerationFailure("generate_error", f"{type(exc).__name__}: {exc}")] * len(batch)
        for r, o in zip(batch, outs):
            gens[r["id"]] = o
    gen_s = time.perf_counter() - t0
    return evaluate_run(recs, gens, out_dir, system=name, eval_dir=baseline_dir(out_dir, name),
                        extra={"baseline": {"kind": "base_model", "generate_s": gen_s,
                                            "functions_per_s": len(recs) / gen_s if gen_s else None}},
                        **eval_kwargs)


# ---------------------------------------------------------------- 2. retrieval

_TOKEN = re.compile(r"0x[0-9a-fA-F]+|\d+|[A-Za-z_][\w]*|[^\s\w]")   # \d+: level 3's decimal constants


def tac_tokens(tac: str) -> list[str]:
    """TAC tokens with names that differ between otherwise equal functions normalised away: temporaries (v12 → v),
    block labels (b7 / block_0x1f → blk); constants (selectors, event topics, slots; hex or level 3's decimal) are kept."""
    toks = []
    for t in _TOKEN.findall(tac or ""):
        if re.fullmatch(r"v\d+", t):
            t = "v"
        elif t.startswith("block_") or re.fullmatch(r"b\d+", t):
            t = "blk"
        toks.append(t)
    return toks


class TfidfIndex:
    """TF-IDF (sublinear tf, smoothed idf, L2) over TAC unigrams+bigrams; cosine nearest neighbour."""

    def __init__(self, docs: Sequence[str]):
        from scipy import sparse

        feats = [self._features(d) for d in docs]
        self.vocab: dict[str, int] = {}
        for f in feats:
            for k in f:
                self.vocab.setdefault(k, len(self.vocab))
        df = np.zeros(len(self.vocab))
        for f in feats:
            for k in f:
                df[self.vocab[k]] += 1
        self.idf = np.log((1 + len(docs)) / (1 + df)) + 1
        self.matrix = self._matrix(feats)
        self._sparse = sparse

    @staticmethod
    def _features(doc: str) -> Counter:
        toks = tac_tokens(doc)
        return Counter(toks + [a + " " + b for a, b in zip(toks, toks[1:])])

    def _matrix(self, feats: list[Counter]):
        from scipy import sparse

        rows, cols, vals = [], [], []
        for i, f in enumerate(feats):
            idx = [(self.vocab[k], c) for k, c in f.items() if k in self.vocab]
            if not idx:
                continue
            v = np.array([(1 + math.log(c)) * self.idf[j] for j, c in idx])
            v /= np.linalg.norm(v) or 1.0
            rows += [i] * len(idx)
            cols += [j for j, _ in idx]
            vals += v.tolist()
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(feats), len(self.vocab)))

    def query(self, docs: Sequence[str], *, keys: Sequence[Any] | None = None,
              indexed_keys: Sequence[Any] | None = None, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(index of nearest indexed doc, cosine) per query doc. With ``keys`` and ``indexed_keys``, an indexed doc
        whose key equals the query's is never its nearest (a training prompt's neighbour from another near-duplicate
        group, as a held-out function's always is); a query with no other doc gets index -1 and cosine 0."""
        n = self.matrix.shape[0]
        if not len(docs) or not n:
            return np.full(len(docs), -1 if not n else 0, int), np.zeros(len(docs))
        excluding = keys is not None and indexed_keys is not None
        ikeys = np.array([str(k) for k in indexed_keys]) if excluding else None
        best, score = np.zeros(len(docs), int), np.zeros(len(docs))
        for s in range(0, len(docs), chunk):   # bounded memory: chunk x n dense similarities at a time
            q = self._matrix([self._features(d) for d in docs[s:s + chunk]])
            sims = (q @ self.matrix.T).toarray()
            if excluding:
                sims[np.array([str(k) for k in keys[s:s + chunk]])[:, None] == ikeys[None, :]] = -np.inf
            j = sims.argmax(axis=1)
            v = sims[np.arange(len(j)), j]
            best[s:s + len(j)], score[s:s + len(j)] = np.where(np.isfinite(v), j, -1), np.where(np.isfinite(v), v, 0.0)
        return best, score


def retrieve(train_records, test_records, *, method: str = "tfidf", embedder=None) -> list[dict]:
    """For each test record: the Solidity of the training record whose TAC is nearest.
    method "tfidf" (default, exact tokens, no length limit) or "minilm" (embedding of the TAC text; MiniLM reads
    only the first 256 word pieces, so long TAC is compared by its beginning)."""
    train, test = _records(train_records), _records(test_records)
    if not train:
        raise ValueError("retrieval: the training split is empty")
    if method == "tfidf":
        idx = TfidfIndex([r.get("tac") or "" for r in train])
        best, score = idx.query([r.get("tac") or "" for r in test])
    elif method == "minilm":
        from .evaluate import DEFAULT_EMBEDDER, get_embedder

        emb = embedder if embedder is not None and not isinstance(embedder, str) else get_embedder(
            embedder or DEFAULT_EMBEDDER)
        a = emb.encode([r.get("tac") or "" for r in train])
        b = emb.encode([r.get("tac") or "" for r in test])
        sims = b @ a.T
        best, score = sims.argmax(axis=1), sims.max(axis=1)
    else:
        raise ValueError(f"retrieval: unknown method {method!r} (tfidf | minilm)")
    return [{"id": r["id"], "generated": train[int(j)]["solidity"], "neighbour_id": train[int(j)]["id"],
             "tac_similarity": float(s)} for r, j, s in zip(test, best, score)]


RETRIEVAL_COLUMNS = ("neighbour_id", "tac_similarity")   # what retrieval's per-function table keeps of its choice


def retrieval_columns(rows: list[dict]) -> dict[str, dict]:
    """id -> the neighbour and TAC cosine of each retrieve() row: evaluate_run(columns=) keeps them in retrieval's
    per-function table, so that the gate is a function of the scored tables (no second retrieval, which a rebuilt
    dataset would change)."""
    return {str(r["id"]): {k: r[k] for k in RETRIEVAL_COLUMNS} for r in rows}


def table_cosines(retrieved) -> dict[str, float] | None:
    """id -> TAC cosine from a retrieval per-function table that kept them (None for a table scored before they
    were kept, 2026-12-07, or with a cosine missing)."""
    if "tac_similarity" not in retrieved or retrieved["tac_similarity"].isna().any():
        return None
    return {str(i): float(c) for i, c in zip(retrieved["id"], retrieved["tac_similarity"])}


# The retrieval gate's cosine: chosen on the sixth reference run's contract-held-out functions from a fixed grid, then
# scored elsewhere without looking (docs/reference-run.md, "A retrieval gate")
GATE_TAU = 0.60
GATE_RULES = ("gate", "guarded")   # guarded: a copy with another selector never replaces an answer with the bytecode's
GATE_SYSTEM = "retrieval-gate"     # its evaluation folder (tacsol.evaluate.suite), beside the baselines'


def gated_table(tuned, retrieved, cosines: Mapping[Any, float], tau: float = GATE_TAU, rule: str = "guarded"):
    """The per-function table of the gated system, from two tables already scored on the same functions (the
    fine-tuned model's and retrieval's, as tacsol.evaluate writes them, columns `id` and `selector_match`):
    retrieval's row where the function's TAC cosine to its nearest training function reaches `tau`, the model's
    elsewhere; rule "guarded" keeps the model's row where only its answer has the bytecode's selector. Adds
    `gate_source` ("retrieval" | "fine-tuned") and `tac_cosine`. Each verdict is the one its answer already got."""
    import pandas as pd

    if rule not in GATE_RULES:
        raise ValueError(f"rule {rule!r}: expected one of {GATE_RULES}")
    ft, rt = tuned.set_index("id"), retrieved.set_index("id")
    if set(ft.index) != set(rt.index):
        raise ValueError("retrieval gate: the fine-tuned and retrieval tables score different functions")
    missing = [i for i in ft.index if i not in cosines]
    if missing:
        raise ValueError(f"retrieval gate: no TAC cosine for function(s) {missing[:5]}")
    rt = rt.loc[ft.index]
    cos = pd.Series({i: float(cosines[i]) for i in ft.index})
    use = (cos >= tau).to_numpy(copy=True)
    if rule == "guarded":
        use &= ~(ft["selector_match"].astype(bool).to_numpy() & ~rt["selector_match"].astype(bool).to_numpy())
    out = pd.concat([rt[use], ft[~use]]).loc[ft.index].copy()
    out["gate_source"] = ["retrieval" if u else "fine-tuned" for u in use]
    out["tac_cosine"] = cos.to_numpy()
    return out.reset_index()


def retrieval_gate(index_records, records, tau: float) -> dict[Any, dict]:
    """The records whose nearest index record by TAC (:func:`retrieve`: the retrieval baseline's index and cosine) is
    at least ``tau`` near: id -> {"solidity": that record's Solidity, "neighbour_id", "tac_similarity"}. A decompiler
    answers those by the copy and the rest with the model (`tacsol decompile --retrieval-gate`, which also keeps a
    model answer with the bytecode's selector over a copy without it; docs/reference-run.md, "A retrieval gate")."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"retrieval gate: tau {tau} is not a cosine in [0, 1]")
    rows = retrieve(index_records, records) if _records(records) else []
    return {r["id"]: {"solidity": r["generated"], "neighbour_id": r["neighbour_id"],
                      "tac_similarity": round(r["tac_similarity"], 4)} for r in rows if r["tac_similarity"] >= tau}


def add_neighbours(index_records, records, *, max_chars: int = 1200, key: str = "group") -> list[dict]:
    """Copies of ``records`` with the nearest of ``index_records`` by TAC (TF-IDF, as :func:`retrieve`) for a
    retrieval-augmented prompt (:mod:`tacsol.prompt`): ``neighbour`` (its Solidity, cut at whole lines to
    ``max_chars``), ``neighbour_similarity`` (cosine) and ``neighbour_id``. A record never gets a neighbour with
    its own ``key`` (default: its near-duplicate group, the unit the splits keep apart: tacsol.pairs.assign_splits),
    so a training prompt sees what a held-out function sees: other functions, never its own body compiled another
    way or in another contract (a copy that every held-out prompt lacks)."""
    index, recs = _records(index_records), _records(records)
    if not index:
        raise ValueError("retrieval prompts: the training split is empty")
    for r in index:
        if not str(r.get("solidity") or "").strip():
            raise ValueError(f"retrieval prompts: training record {r.get('id')!r} has an empty field 'solidity'")

    def own(r):   # a record without the key (a dataset without groups) is kept only from itself
        return f"{key}:{r[key]}" if r.get(key) is not None else f"id:{r.get('id')}"

    idx = TfidfIndex([r.get("tac") or "" for r in index])
    best, score = idx.query([r.get("tac") or "" for r in recs], keys=[own(r) for r in recs],
                            indexed_keys=[own(r) for r in index])
    out = []
    for r, j, s in zip(recs, best, score):
        n = index[int(j)] if j >= 0 else None
        out.append({**r, "neighbour": cut_lines(n["solidity"], max_chars) if n else "",
                    "neighbour_similarity": round(float(s), 4), "neighbour_id": n["id"] if n else ""})
    return out


def cut_lines(text: str, max_chars: int) -> str:
    """``text`` cut after the last whole line that fits in ``max_chars``, marked ``// ...`` when cut."""
    text = text.strip("\n")
    if len(text) <= max_chars:
        return text
    head = text[:max_chars].rsplit("\n", 1)[0] if "\n" in text[:max_chars] else text[:max_chars]
    return head.rstrip() + "\n// ..."


def retrieval(train_records, test_records, out_dir, *, method: str = "tfidf", name: str | None = None,
              **eval_kwargs) -> dict:
    name = name or f"retrieval-{method}"
    t0 = time.perf_counter()
    rows = retrieve(train_records, test_records, method=method, embedder=eval_kwargs.get("embedder"))
    ret_s = time.perf_counter() - t0
    test = _records(test_records)
    exact = float(np.mean([r["generated"] == t["solidity"] for r, t in zip(rows, test)])) if rows else None
    return evaluate_run(test, {r["id"]: r["generated"] for r in rows}, out_dir, system=name,
                        eval_dir=baseline_dir(out_dir, name), columns=retrieval_columns(rows),
                        extra={"baseline": {"kind": "retrieval", "method": method, "retrieve_s": ret_s,
                                            "n_train": len(_records(train_records)),
                                            "share_exact_reference_retrieved": exact,
                                            "tac_similarity_mean": float(np.mean([r["tac_similarity"] for r in rows]))
                                            if rows else None}},
                        **eval_kwargs)


# ---------------------------------------------------------------- 3. traditional decompilers

def _run(cmd: list[str], *, input_text: str | None = None, timeout_s: float, env: dict | None = None
         ) -> tuple[str, str, str, float]:
    """(status ok|failed|timeout, stdout, stderr, seconds); kills the whole process group on timeout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(input_text, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return "timeout", out or "", err or "", time.perf_counter() - t0
    status = "ok" if proc.returncode == 0 and out.strip() else "failed"
    return status, out, err, time.perf_counter() - t0


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sevm_decompile(code_hex: str, timeout_s: float = 60.0) -> dict:
    """`sevm sol --no-patch --no-color -` (without --no-patch it goes to the network and prints nothing)."""
    exe = paths.node_modules() / ".bin" / "sevm"
    if not exe.exists():
        return {"status": "not_installed", "output": "", "error": f"{exe} missing (make setup)", "seconds": 0.0}
    code = evm.strip_0x(code_hex)
    st, out, err, sec = _run([str(exe), "sol", "--no-patch", "--no-color", "--no-cache", "-"],
                             input_text="0x" + code, timeout_s=timeout_s)
    return {"status": st, "output": _ANSI.sub("", out), "error": err[-500:], "seconds": sec}


def extract_sevm_function(output: str, selector: str, name: str | None = None) -> str | None:
    """The `function <selector hex>(...) { ... }` block of sevm's contract (or by name if sevm resolved it)."""
    from .evaluate.solidity import match_close

    sel = selector.lower().removeprefix("0x")
    pats = [rf"function\s+{sel}\s*\("]
    if name:
        pats.append(rf"function\s+{re.escape(name)}\s*\(")
    for pat in pats:
        m = re.search(pat, output)
        if m:
            brace = output.find("{", m.end())
            end = match_close(output, brace) if brace >= 0 else -1
            return output[m.start(): end + 1] if end > 0 else output[m.start():]
    return None


def panoramix_python(venv: str | os.PathLike | None = None) -> Path:
    default = os.environ.get("TACSOL_PANORAMIX_VENV") or paths.outputs_dir() / "cache" / "venv-panoramix"
    return Path(venv or default) / "bin" / "python"


def ensure_panoramix_venv(venv: str | os.PathLike | None = None, python: str | None = None,
                          timeout_s: float = 900.0) -> Path:
    """panoramix pulls web3 6.0.0b8, eth-abi 6, protobuf 7... which the project's pins do not want in .venv, so it
    lives in its own venv (default outputs/cache/venv-panoramix, git-ignored); created on first use."""
    py = panoramix_python(venv)
    if py.exists() and (py.parent / "panoramix").exists():
        return py
    venv_dir = py.parent.parent
    subprocess.run([python or sys.executable, "-m", "venv", str(venv_dir)], check=True, timeout=timeout_s)
    subprocess.run([str(py), "-m", "pip", "install", "-q", PANORAMIX_PIN], check=True, timeout=timeout_s)
    return py


def _panoramix_cache() -> Path:
    """An empty ABI database: panoramix checks that abi_db.shelve is a file and opens it with shelve (dbm.dumb
    here); without it, it unpacks an 880 MB signature dump first."""
    xdg = paths.cache_dir() / "panoramix-xdg"
    d = xdg / "panoramix"
    if not (d / "abi_db.shelve").exists():
        d.mkdir(parents=True, exist_ok=True)
        import dbm.dumb

        dbm.dumb.open(str(d / "abi_db.shelve"), "c").close()
        (d / "abi_db.shelve").touch()
    return xdg


def panoramix_decompile(code_hex: str, timeout_s: float = 120.0, venv: str | os.PathLike | None = None) -> dict:
    py = panoramix_python(venv)
    if not py.exists():
        return {"status": "not_installed", "output": "", "error": f"{py} missing (baselines.ensure_panoramix_venv())",
                "seconds": 0.0}
    code = evm.strip_0x(code_hex)
    env = {**os.environ, "XDG_CACHE_HOME": str(_panoramix_cache())}
    st, out, err, sec = _run([str(py.parent / "panoramix"), "0x" + code], timeout_s=timeout_s, env=env)
    return {"status": st, "output": _ANSI.sub("", out), "error": err[-500:], "seconds": sec}


def extract_panoramix_function(output: str, selector: str, name: str | None = None) -> str | None:
    """panoramix prints `def unknown<selector>(...)` (names only from its ABI database, empty here) followed by an
    indented body; getters may sit in the storage section the same way."""
    sel = selector.lower().removeprefix("0x")
    pats = [rf"^def\s+\w*{sel}\s*\("]
    if name:
        pats.append(rf"^def\s+{re.escape(name)}\s*\(")
    lines = output.splitlines()
    for pat in pats:
        for i, ln in enumerate(lines):
            if re.match(pat, ln):
                j = i + 1
                while j < len(lines) and (not lines[j].strip() or lines[j][:1].isspace()):
                    j += 1
                return "\n".join(lines[i:j]).rstrip()
    return None


DECOMPILERS = {
    "sevm": (sevm_decompile, extract_sevm_function),
    "panoramix": (panoramix_decompile, extract_panoramix_function),
}


def bytecode_for(rec: dict, bytecode_of) -> str | None:
    if bytecode_of is None:
        return rec.get("bytecode") or rec.get("runtime_bytecode") or None
    if callable(bytecode_of):
        return bytecode_of(rec)
    for key in (rec.get("id"), rec.get("contract_key"), f"{rec.get('file', '')}:{rec.get('contract', '')}"):
        if key and key in bytecode_of:
            return bytecode_of[key]
    return None


def decompile_records(tool: str, records, bytecode_of=None, *, timeout_s: float = 120.0, progress: bool = True,
                      cache: bool = True) -> tuple[dict[str, Any], list[dict]]:
    """Run `tool` once per distinct bytecode (cached on disk by bytecode hash, so a rerun resumes) and cut each
    record's function out by selector. Returns (generations by id, one status row per contract)."""
    from tqdm.auto import tqdm

    run, extract = DECOMPILERS[tool]
    recs = _records(records)
    gens: dict[str, Any] = {}
    by_code: dict[str, list[dict]] = {}
    for r in recs:
        code = bytecode_for(r, bytecode_of)
        if not code:
            gens[r["id"]] = GenerationFailure("no_bytecode")
        elif tool == "panoramix" and corpus.version_tuple(r.get("solc_version", "")) >= PANORAMIX_MAX_SOLC:
            gens[r["id"]] = GenerationFailure("unsupported_solc")  # PUSH0 bytecode: panoramix prints a fallback only
        else:
            by_code.setdefault(evm.strip_0x(code.lower()), []).append(r)
    cdir = paths.cache_dir() / "decompilers" / tool
    runs = []
    for code, rs in tqdm(by_code.items(), desc=f"{tool}: contracts", disable=not progress):
        h = hashlib.sha256(code.encode()).hexdigest()[:24]
        cpath = cdir / f"{h}.json"
        res = None
        if cache and cpath.exists():
            try:
                res = json.loads(cpath.read_text())
            except json.JSONDecodeError:
                res = None
        if res is None or res.get("timeout_s", 0) < timeout_s and res["status"] == "timeout":
            res = run(code, timeout_s=timeout_s)
            res["timeout_s"] = timeout_s
            if cache and res["status"] in ("ok", "failed", "timeout"):
                from .ioutil import atomic_write_json

                atomic_write_json(cpath, res)
        found = 0
        for r in rs:
            if res["status"] != "ok":
                gens[r["id"]] = GenerationFailure(f"decompiler_{res['status']}", res.get("error", ""))
                continue
            fn = extract(res["output"], r.get("selector") or "", r.get("function_name"))
            if fn is None:
                gens[r["id"]] = GenerationFailure("decompiler_no_function")
            else:
                gens[r["id"]] = fn
                found += 1
        runs.append({"bytecode_sha": h, "status": res["status"], "seconds": res.get("seconds"),
                     "functions": len(rs), "functions_found": found, "contract": rs[0].get("contract", ""),
                     "error": (res.get("error") or "")[-200:]})
    return gens, runs


def decompiler(tool: str, records, out_dir, bytecode_of=None, *, timeout_s: float = 120.0, progress: bool = True,
               **eval_kwargs) -> dict:
    """Score sevm or panoramix on the records (per-contract status in contracts.jsonl beside the table)."""
    from .ioutil import atomic_write_text

    t0 = time.perf_counter()
    gens, runs = decompile_records(tool, records, bytecode_of, timeout_s=timeout_s, progress=progress)
    dec_s = time.perf_counter() - t0
    out = baseline_dir(out_dir, tool)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "contracts.jsonl", "".join(json.dumps(r) + "\n" for r in runs))
    status = Counter(r["status"] for r in runs)
    secs = [r["seconds"] for r in runs if r.get("seconds")]
    return evaluate_run(_records(records), gens, out_dir, system=tool, eval_dir=out,
                        extra={"baseline": {"kind": "decompiler", "tool": tool, "timeout_s": timeout_s,
                                            "contracts": len(runs), "contract_status": dict(status),
                                            "seconds_per_contract_median": float(np.median(secs)) if secs else None,
                                            "decompile_s": dec_s}},
                        **eval_kwargs)


def bytecode_from_cache(records, *, manifest=None, fetch: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Runtime bytecode per record id from the compile cache the dataset build filled (outputs/cache/solc): the
    record's columns name its compile unit (tacsol.corpus.RecordUnits; package sources from outputs/cache/npm,
    `fetch=True` lets npm fetch a missing one). Nothing is compiled here. Returns (id -> bytecode hex, id -> reason
    it was not found)."""
    units = corpus.RecordUnits(manifest=manifest, fetch=fetch)
    found: dict[str, str] = {}
    missing: dict[str, str] = {}
    for r in _records(records):
        try:
            contract = units.artifact(r)["contracts"].get(r.get("contract") or "") or {}
        except corpus.UnitNotFound as exc:
            missing[r["id"]] = str(exc)
            continue
        if contract.get("bytecode"):
            found[r["id"]] = contract["bytecode"]
        else:
            missing[r["id"]] = f"contract {r.get('contract')!r} has no runtime bytecode in the cached unit"
    return found, missing
