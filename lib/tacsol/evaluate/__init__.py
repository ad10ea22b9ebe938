"""Evaluation of generated Solidity against the held-out references (`tacsol evaluate`).

Per function: semantic similarity, normalized edit distance, length difference, construct counts, and the objective
checks the paper lacks (compiles in a stub of the original contract; selector of the generated header equals the
bytecode's; effects grounded in the TAC). Per run: bootstrap intervals, threshold shares, buckets, correlations, the
similarity floor/ceiling of the same references, figures. See docs/evaluation.md.

    from tacsol import evaluate
    summary = evaluate.evaluate_run(records, generations, out_dir)   # writes out_dir/eval/
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .. import corpus, evm
from .. import params as P
from ..profile import complexity_bucket, tac_size
from .aggregate import aggregate, bootstrap_ci, describe, flat_metrics, grounding  # noqa: F401
from .degenerate import REASONS as DEGENERATE_REASONS, degenerate_reason  # noqa: F401
from .compile import CompileResult, OriginalUnits, build_stub, compile_bytecode, compile_many  # noqa: F401
from .selection import group_of
from .metrics import (CONSTRUCTS, DEFAULT_EMBEDDER, Embedder, collapse_ws, construct_counts,  # noqa: F401
                      construct_frequencies, edit_distance, floor_and_ceiling, get_embedder, length_diff)
from .solidity import (Declarations, ParseFailure, canonical_signature, canonical_type, code_effects,  # noqa: F401
                       contract_body, find_function, parse_declarations, tac_effects)

EFFECT_CATEGORIES = ("event", "storage_write", "external_call", "revert")
TABLE_COLUMNS = ["id", "group", "package", "selector", "function_name", "contract", "solc_version", "settings",
                 "signature_hint", "generated", "reference",
                 "failure", "degenerate", "gen_chars", "ref_chars", "tac_blocks", "tac_instructions", "complexity",
                 "length_bucket", "edit_distance", "length_diff", "parse_ok",
                 "signature_generated", "selector_generated", "selector_match",
                 *[f"{side}_{c}" for c in EFFECT_CATEGORIES for side in ("tac", "out", "ref")],
                 "compile_unit", "compiles", "compile_status", "compile_message", "ref_compiles", "similarity",
                 "behaviour", "behaviour_reason", "behaviour_detail", "behaviour_bindings", "behaviour_cases"]


# ---------------------------------------------------------------- inputs

def _records_list(records) -> list[dict]:
    if hasattr(records, "to_list"):          # datasets.Dataset
        return list(records.to_list())
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # pandas
        return records.to_dict("records")
    return [dict(r) for r in records]


class NonUtf8(str):
    """Text decoded with replacement characters from bytes that were not UTF-8 (still a failure)."""


class GenerationFailure:
    """A generation that did not happen (decompiler timeout, generate() error...): scored as an empty output and
    counted under `reason` in the failures."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail

    def __repr__(self) -> str:
        return f"GenerationFailure({self.reason!r})"


def normalize_generation(value: Any) -> tuple[str, str]:
    """(text, failure reason or ''). Bytes that are not UTF-8, strings holding lone surrogates, None and blank
    output are failures; the row stays in the table and is scored as what it is."""
    if value is None:
        return "", "missing"
    if isinstance(value, GenerationFailure):
        return "", value.reason
    if isinstance(value, NonUtf8):
        return str(value), "non_utf8"
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).decode("utf-8", errors="replace"), "non_utf8"
    if not isinstance(value, str):
        return str(value), "not_text"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", errors="replace").decode("utf-8"), "non_utf8"
    if not value.strip():
        return value, "empty"
    return value, ""


def align_generations(records: list[dict], generations) -> list[Any]:
    """generations: a list aligned with records, a mapping id -> text, or rows with id and generated."""
    if isinstance(generations, Mapping):
        return [generations.get(r["id"]) for r in records]
    gens = list(generations)
    if gens and isinstance(gens[0], Mapping):
        by_id = {}
        for i, g in enumerate(gens):
            if "id" not in g or "generated" not in g:
                raise ValueError(f"generation row {i}: needs fields 'id' and 'generated' (has {sorted(g)})")
            by_id[g["id"]] = g["generated"]
        return [by_id.get(r["id"]) for r in records]
    if len(gens) != len(records):
        raise ValueError(f"generations: {len(gens)} items for {len(records)} records (pass a mapping id -> text "
                         "to evaluate a subset)")
    return gens


def read_generations(path: str | Path) -> dict[str, Any]:
    """jsonl with {"id", "generated"} per line. Lines that are not UTF-8 are decoded with replacement and the
    generation is marked non-UTF-8 (bytes returned); a missing file or a malformed line is a ParamsError naming the
    file and the line."""
    out: dict[str, Any] = {}
    if not Path(path).is_file():
        raise P.ParamsError(f"generations file not found: {path}")
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            bad = False
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line, bad = raw.decode("utf-8", errors="replace"), True
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise P.ParamsError(f"{path}: line {no}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row or "generated" not in row:
                raise P.ParamsError(f"{path}: line {no}: needs fields 'id' and 'generated'")
            g = row["generated"]
            out[str(row["id"])] = NonUtf8(g) if bad and isinstance(g, str) else g
    return out


DeclarationSource = Callable[[dict], "str | None"] | Mapping[str, str] | None


def _declarations_for(rec: dict, declarations: DeclarationSource) -> str:
    if declarations is None:
        text = rec.get("declarations") or ""
    elif callable(declarations):
        text = declarations(rec) or ""
    else:
        text = declarations.get(rec.get("id", "")) or declarations.get(rec.get("contract_key", "")) \
            or declarations.get(f"{rec.get('file', '')}:{rec.get('contract', '')}") or ""
    return text


def declarations_from_source(source: str, contract: str | None = None) -> str:
    """Contract-level declarations (state variables, events, errors, structs, enums) of `contract` in a source."""
    body = contract_body(source, contract)
    return parse_declarations(body).text if body else ""


# ---------------------------------------------------------------- scoring

def score(records, generations, *, embedder: Embedder | str | None = DEFAULT_EMBEDDER,
          declarations: DeclarationSource = None, compile_check: bool = True, compile_reference: bool = True,
          compile_mode: str = "auto", timings: dict[str, float] | None = None, progress: bool = False,
          behaviour: bool = False, harness=None):
    """Per-function table (pandas.DataFrame), one row per record, failures included.

    compile_mode: "stub" (declarations + context + function in a one-contract stub), "original" (the function in
    place of the original inside its package's compile unit; records whose unit cannot be rebuilt fall back to the
    stub), "auto" (= original for records whose package is in tacsol.corpus's manifest and already fetched)."""
    if compile_mode not in ("stub", "original", "auto"):
        raise ValueError(f"compile_mode {compile_mode!r}: use stub | original | auto")
    import pandas as pd

    timings = timings if timings is not None else {}
    recs = _records_list(records)
    raw = align_generations(recs, generations)
    with _timed(timings, "parse_select_ground_s"):
        scored = [_static_row(rec, g, declarations) for rec, g in zip(recs, raw)]
    rows, parsed = [r for r, _ in scored], [x for _, x in scored]
    with _timed(timings, "compile_s"):
        _compile_stage(rows, parsed, compile_check, compile_mode, compile_reference)
    with _timed(timings, "behaviour_s"):
        _behaviour_stage(rows, recs, behaviour, harness, progress)
    with _timed(timings, "similarity_s"):
        _similarity_stage(rows, embedder, progress)
    if not rows:  # keep the schema so that aggregates and readers work on an empty split
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return pd.DataFrame(rows)[TABLE_COLUMNS]


@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str):
    t0 = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t0


def _static_row(rec: Mapping[str, Any], g: Any, declarations: DeclarationSource) -> tuple[dict[str, Any], tuple]:
    """Columns that need no compiler or model: failure, degenerate, sizes, edit distance, parse, selector,
    effects grounded in the TAC; plus what the compile stage needs (record, parsed function, declarations)."""
    for fld in ("id", "solidity"):
        if fld not in rec:
            raise ValueError(f"record {rec.get('id', '?')}: missing field {fld!r}")
    text, failure = normalize_generation(g)
    ref = rec.get("solidity") or ""
    decl_text = _declarations_for(rec, declarations)
    decl = parse_declarations(decl_text)
    row: dict[str, Any] = {
        # group: the near-duplicate group (one distinct function compiled under several settings)
        "id": rec["id"], "group": group_of(rec),
        "package": rec.get("package", ""), "selector": rec.get("selector", ""), "function_name": rec.get("function_name", ""),
        "contract": rec.get("contract", ""), "solc_version": rec.get("solc_version", ""),
        # the known signature the prompt carried ("" where the table does not know the selector, or no hints)
        "settings": rec.get("settings", ""), "signature_hint": rec.get("signature_hint", ""), "generated": text, "reference": ref, "failure": failure,
        "degenerate": degenerate_reason(text, ref), "gen_chars": len(text), "ref_chars": len(ref),
    }
    row["tac_instructions"], row["tac_blocks"] = tac_size(rec)
    row["complexity"] = complexity_bucket(row)
    row["length_bucket"] = "<1000" if len(ref) < 1000 else ">=1000"
    row["edit_distance"] = edit_distance(text, ref)
    row["length_diff"] = length_diff(text, ref)
    fn = None
    if not failure:
        try:
            fn = find_function(text)
        except ParseFailure as exc:
            row["failure"] = f"unparsable:{exc.reason}"
    row["parse_ok"] = fn is not None
    # selector
    sig, sel = None, None
    if fn is not None and fn.kind in ("function", "getter"):
        try:
            sig = canonical_signature(fn, decl)
            sel = evm.selector(sig)
        except ParseFailure:
            pass
    want = (rec.get("selector") or "").lower()
    row["signature_generated"] = sig or ""
    row["selector_generated"] = sel or (fn.kind if fn is not None and fn.kind in ("fallback", "receive") else "")
    row["selector_match"] = bool(want) and row["selector_generated"] == want
    # grounding
    te = tac_effects(rec.get("tac") or "")
    oe = code_effects(text, decl)
    re_ = code_effects(ref, decl)  # the reference scored the same way: what a perfect output would get
    for cat in EFFECT_CATEGORIES:
        row[f"tac_{cat}"] = te[cat]
        row[f"out_{cat}"] = oe[cat]
        row[f"ref_{cat}"] = re_[cat]
    return row, (rec, fn, decl_text)


def _compile_stage(rows: list[dict], parsed: list[tuple], compile_check: bool, compile_mode: str,
                   compile_reference: bool) -> None:
    """Compile the generated function and (as the stub's control) the reference, batched per solc version."""
    for row in rows:
        row.update({"compile_unit": "", "compiles": None, "compile_status": "skipped", "compile_message": "",
                    "ref_compiles": None})
    if compile_check:
        units = []
        originals = OriginalUnits(fetch=compile_mode == "original") if compile_mode != "stub" else None
        for i, (row, (rec, fn, decl_text)) in enumerate(zip(rows, parsed)):
            version = rec.get("solc_version") or ""
            ctx = rec.get("context") or ""
            ref = rec.get("solidity") or ""
            orig = originals.unit(rec, ref) if originals is not None else None
            row["compile_unit"] = "original" if orig is not None else "stub"
            if fn is not None:
                units.append((f"g{i}", version, originals.unit(rec, fn.text) if orig is not None else  # type: ignore[union-attr]
                              build_stub(fn.text, corpus.nearest_installed(version) or "0.8.26", decl_text, ctx)))
            else:
                row.update({"compiles": False, "compile_status": "unparsable" if row["failure"].startswith("unparsable")
                            else "no_output"})
            if compile_reference:
                units.append((f"r{i}", version, orig if orig is not None else
                               build_stub(ref, corpus.nearest_installed(version) or "0.8.26", decl_text, ctx)))
        res = compile_many(units)
        for i, row in enumerate(rows):
            g = res.get(f"g{i}")
            if g is not None:
                row.update({"compiles": g.ok, "compile_status": g.status, "compile_message": g.message})
            r = res.get(f"r{i}")
            if r is not None:
                row["ref_compiles"] = r.ok


def _behaviour_stage(rows: list[dict], recs: list, behaviour: bool, harness, progress: bool) -> None:
    for row in rows:
        row.update({"behaviour": "skipped", "behaviour_reason": "", "behaviour_detail": "", "behaviour_bindings": "",
                    "behaviour_cases": 0})
    if behaviour and rows:
        from . import behaviour as bh

        h = harness or bh.Harness()
        # failed rows (missing, empty, not text) have no generation; an unparsable text is still tried
        texts = [None if row["failure"] and not row["failure"].startswith("unparsable") else row["generated"]
                 for row in rows]
        try:
            for row, res in zip(rows, h.check_many(recs, texts, progress=progress)):
                row.update(res.columns())
        finally:
            if harness is None:   # its solcjs servers and worker processes
                h.close()


def _similarity_stage(rows: list[dict], embedder, progress: bool) -> None:
    """One batched embedding pass for generated + references."""
    if embedder is None:
        for row in rows:
            row["similarity"] = math.nan
    else:
        emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
        sims = emb.similarity([r["generated"] for r in rows], [r["reference"] for r in rows], progress=progress)
        for row, s in zip(rows, sims):
            row["similarity"] = float(s)


def evaluate_run(records, generations, out_dir: str | Path, *, system: str = "fine-tuned",
                 embedder: Embedder | str = DEFAULT_EMBEDDER, declarations: DeclarationSource = None,
                 compile_check: bool = True, compile_mode: str = "auto", figures: bool = True, n_boot: int = 1000,
                 seed: int = 0, eval_dir: str | Path | None = None, extra: dict | None = None, progress: bool = False,
                 verbose: bool = True, behaviour: bool = False, harness=None,
                 columns: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Score `generations` against `records` and write eval_dir (default out_dir/eval): functions.parquet (one row
    per function), summary.json (aggregates, floor/ceiling, embedder, timings, flat `metrics` for 06_compare),
    figures/*.png. Returns the summary dict. Baselines use eval_dir = out_dir/eval/baselines/<name>. `columns`: id ->
    {column: value}, what the system knew of each function beside its answer (retrieval: its neighbour and cosine),
    kept in the table under names the scoring does not use."""
    from .. import paths

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    out = Path(eval_dir) if eval_dir is not None else paths.resolve(out_dir) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    recs = _records_list(records)
    df = score(recs, generations, embedder=emb, declarations=declarations, compile_check=compile_check,
               compile_mode=compile_mode, timings=timings, progress=progress, behaviour=behaviour, harness=harness)
    columns = columns or {}
    for name in sorted({k for v in columns.values() for k in v}):
        if name in df.columns:
            raise ValueError(f"evaluate_run: column {name!r} is one the scoring writes")
        df[name] = [columns.get(str(i), {}).get(name) for i in df["id"]]

    t0 = time.perf_counter()
    ref_emb = emb.encode([r.get("solidity") or "" for r in recs]) if recs else None
    groups = [group_of(r) for r in recs]
    floor = floor_and_ceiling(ref_emb, seed=seed, groups=groups) if ref_emb is not None \
        else floor_and_ceiling([], seed)  # type: ignore[arg-type]
    timings["floor_ceiling_s"] = time.perf_counter() - t0

    summary = write_evaluation(df, out, system=system, embedder=emb.describe(), floor=floor, timings=timings,
                               extra=extra, figures=figures, n_boot=n_boot, seed=seed, started=t_all)
    if verbose:
        m = summary["metrics"]
        print(f"[evaluate:{system}] n={m['n_functions']} similarity={_f(m['similarity_mean'])} "
              f"[{_f(m['similarity_ci_low'])}, {_f(m['similarity_ci_high'])}] (floor {_f(m['similarity_floor'])}, "
              f"ceiling {_f(m['similarity_ceiling'])}) edit={_f(m['edit_distance_mean'])} "
              f"compile={_f(m['compile_rate'])} selector={_f(m['selector_match_rate'])} "
              f"grounding P/R={_f(m['grounding_precision'])}/{_f(m['grounding_recall'])} failures={m['failures']} "
              f"degenerate={_f(m['degenerate_rate'])} distinct={m['n_distinct']}"
              + (f" behaviour={_f(m['behaviour_rate'])} [{_f(m['behaviour_ci_low'])}, {_f(m['behaviour_ci_high'])}]"
                 f" untestable={m['behaviour_untestable']}" if m.get("behaviour_rate") is not None else ""))
        print("[evaluate] stage timings: " + ", ".join(f"{k}={v:.2f}" for k, v in timings.items()))
    return summary


def write_evaluation(df, out: Path, *, system: str, embedder: dict, floor: dict, timings: dict[str, float] | None = None,
                     extra: dict | None = None, figures: bool = True, n_boot: int = 1000, seed: int = 0,
                     started: float | None = None) -> dict[str, Any]:
    """An evaluation folder from a scored per-function table: out/functions.parquet, out/summary.json (aggregates,
    flat `metrics`, the floor and ceiling, timings, `extra`) and figures; returns the summary. evaluate_run writes
    through it, and so does a system composed of rows other systems already scored (the retrieval gate)."""
    from ..ioutil import atomic_write_json, atomic_write_parquet

    timings = timings if timings is not None else {}
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    agg = aggregate(df, n_boot=n_boot, seed=seed)
    agg["constructs"] = {"generated": construct_frequencies(df["generated"]),
                         "reference": construct_frequencies(df["reference"]),
                         "unit": "occurrences per 1,000 characters"}
    timings["aggregate_s"] = time.perf_counter() - t0
    atomic_write_parquet(out / "functions.parquet", df)
    summary: dict[str, Any] = {
        "system": system,
        "embedder": embedder,
        "metrics": flat_metrics(agg, floor),
        "floor_ceiling": floor,
        "aggregates": agg,
        "timings_s": timings,
        **(extra or {}),
    }
    if figures and len(df):
        t0 = time.perf_counter()
        from .. import plots

        summary["figures"] = [str(p.relative_to(out)) for p in plots.eval_figures(df, summary, out / "figures")]
        timings["figures_s"] = time.perf_counter() - t0
    if started is not None:
        timings["total_s"] = time.perf_counter() - started
    atomic_write_json(out / "summary.json", summary)
    return summary


def _f(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


# ---------------------------------------------------------------- CLI

def build_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("generations", help="jsonl file: one {\"id\": ..., \"generated\": ...} per line")
    p.add_argument("--dataset", required=True,
                   help="'sample' (the shipped sample), a dataset name under outputs/data/, a dataset folder or a "
                        "records file (what tacsol.pairs.load reads)")
    p.add_argument("--split", default="test", help="split holding the records the generations answer (test)")
    p.add_argument("--out", required=True, help="output folder; results go to OUT/eval/")
    p.add_argument("--system", default="fine-tuned", help="name recorded in summary.json")
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER, help="sentence-transformers model (name or folder)")
    p.add_argument("--declarations", help="json file mapping record id or contract_key to declarations text")
    p.add_argument("--no-compile", action="store_true", help="skip the compile check")
    p.add_argument("--no-behaviour", action="store_true",
                   help="skip behavioural equivalence (recompile each function in its original unit and run it "
                        "against the original bytecode in py-evm; needs the record's package in the npm cache or "
                        "the sample's shipped units)")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--only-generated", action="store_true",
                   help="score only records that have a generation (default: every record of the split; missing "
                        "ones count as failures)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")


def _read_declarations(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise P.ParamsError(f"declarations file not found: {path}") from None
    except ValueError as exc:
        raise P.ParamsError(f"declarations file {path}: not valid JSON ({exc})") from None


def main(args: argparse.Namespace) -> int:
    from .. import pairs

    ds = pairs.load(args.dataset)
    if args.split not in ds:
        raise P.ParamsError(f"dataset {args.dataset!r} has no split {args.split!r} (has {list(ds)})")
    pairs.require_columns(ds, ("id", "tac", "solidity"), args.dataset)
    records = _records_list(ds[args.split])
    gens = read_generations(args.generations)
    unknown = set(gens) - {r["id"] for r in records}
    if unknown:  # scored against the wrong records, they would all count as missing
        raise P.ParamsError(f"{args.generations}: {len(unknown)} generation(s) whose field 'id' is not in split "
                            f"{args.split!r} of dataset {args.dataset!r} (e.g. {sorted(unknown)[:3]})")
    if args.only_generated:
        records = [r for r in records if r["id"] in gens]
    decl = _read_declarations(args.declarations) if args.declarations else None
    s = evaluate_run(records, gens, args.out, system=args.system, embedder=args.embedder, declarations=decl,
                     compile_check=not args.no_compile, figures=not args.no_figures, n_boot=args.bootstrap,
                     behaviour=not args.no_behaviour, progress=True)
    print(json.dumps(s["metrics"], indent=2))
    return 0
