"""Inference: TAC (or bytecode, lifted with :mod:`tacsol.lift`) → Solidity per function with a trained adapter.

Prompts come from :func:`tacsol.prompt.build_prompt` — the same text and token ids training saw. Generation is
batched (left padding, KV cache on) and greedy by default; the output is cut at EOS.

CLI: ``tacsol decompile FILE|HEX --adapter DIR`` (bytecode hex, a file holding hex, or ``--tac`` for a TAC file of
one function). Known signatures (:mod:`tacsol.signatures`; by default the shipped standard interfaces) reach the
prompt the way the adapter was trained: after the TAC header when it was trained with ``signature_hints``, else as
the metadata's ``signature`` line."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import params as P
from . import pairs, paths, prompt, signatures
from .ioutil import append_durably

_HEX = re.compile(r"^(0x)?[0-9a-fA-F\s]+$")
PREFILL_MODES = ("none", "fallback", "always")  # generate(prefill=...): header prefill for unnamed functions
# The best reference run's adapter for the embedded SmolLM2-135M (its recipe is params.yaml beside it, its evaluation
# EVALUATION.md and docs/reference-run.md), shipped with the package so that `tacsol decompile` works without
# --adapter.
SHIPPED_ADAPTER = Path(__file__).parent / "data" / "adapter"


def default_adapter() -> Path:
    if not (SHIPPED_ADAPTER / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{SHIPPED_ADAPTER}: no shipped adapter in this installation; pass --adapter DIR "
                                "(an adapter folder written by tacsol train)")
    return SHIPPED_ADAPTER


def ship_adapter(adapter_dir: str | Path, dest: str | Path = SHIPPED_ADAPTER, *, dtype: str = "bfloat16",
                 extra_files: Mapping[str, str] | None = None, training_index: bool = False) -> dict[str, Any]:
    """Copy a trained adapter for shipping: weights cast to `dtype` (halves fp32 LoRA weights; peft casts them back
    to the base model's dtype on load), tokenizer, adapter config, tacsol_train.json, plus `extra_files` (name ->
    text: the recipe and the evaluation). training_index: also its training functions (train.NEIGHBOUR_INDEX, from
    its dataset, which must be on this machine), for `decompile --retrieval-gate` without the dataset. Returns
    {file: bytes}."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    src, out = paths.resolve(adapter_dir), Path(dest)
    if not (src / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{src}: not a LoRA adapter folder (no adapter_config.json)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.name not in ("adapter_model.safetensors", "README.md") \
                and not f.name.endswith((".bin", ".pt")):
            shutil.copy2(f, out / f.name)
    tensors = load_file(str(src / "adapter_model.safetensors"))
    save_file({k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v for k, v in tensors.items()},
              str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    for name, text in (extra_files or {}).items():
        (out / name).write_text(text, encoding="utf-8")
    if training_index:
        from . import train

        if not (out / train.NEIGHBOUR_INDEX).is_file():
            train.save_neighbour_index(out, trained_params(out))
    return {f.name: f.stat().st_size for f in sorted(out.iterdir())}


class AdapterError(P.ParamsError):
    """An adapter folder that cannot be loaded: names the folder or the file and what is wrong with it."""


def check_adapter(adapter_dir: str | Path, *, tokenizer: bool = True) -> Path:
    """The adapter folder, checked before any model loads: adapter_config.json and tacsol_train.json (when present)
    are JSON, the weights are a whole safetensors file, the tokenizer is there (``tokenizer``). AdapterError naming
    the file otherwise."""
    ad = paths.resolve(adapter_dir)
    if not (ad / "adapter_config.json").is_file():
        raise AdapterError(f"{ad}: not a LoRA adapter folder (no adapter_config.json)")
    for f in (ad / "adapter_config.json", ad / "tacsol_train.json"):
        try:
            if f.is_file():
                json.loads(f.read_text(encoding="utf-8"))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise AdapterError(f"{f}: not valid JSON ({exc})") from None
    if not (ad / "adapter_model.bin").is_file():
        _check_safetensors(ad / "adapter_model.safetensors")
    if tokenizer and not (ad / "tokenizer_config.json").is_file():
        raise AdapterError(f"{ad}: no tokenizer_config.json (tacsol train saves the tokenizer with the adapter)")
    return ad


def _check_safetensors(path: Path) -> None:
    """A safetensors file whose header parses and whose tensors end where the file ends (a truncated copy fails
    here, not in the middle of loading)."""
    if not path.is_file():
        raise AdapterError(f"{path}: missing (the adapter's weights)")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n > size - 8:
            raise AdapterError(f"{path}: truncated ({size} bytes; its header alone says {n})")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            header = None
    if not isinstance(header, dict):
        raise AdapterError(f"{path}: not a safetensors file (its header is not JSON)")
    end = 8 + n + max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if end != size:
        raise AdapterError(f"{path}: {size} bytes, but its header describes {end} (truncated or damaged copy)")


def check_generation(model: str, quantization: str, hardware_profile: str, where: str | None = None) -> None:
    """Refuse NF4 generation on a CPU profile with a model bitsandbytes' CPU 4-bit kernel cannot run: generate()
    asserts unless every quantized Linear's output width is a multiple of 32, while training runs (docs/references.md,
    Offline assets). A model the registry cannot describe is left to transformers."""
    from . import hardware, models

    if quantization != "nf4" or hardware.load_profile(hardware_profile or "cpu").kind != "cpu":
        return
    try:
        linear = models.facts(model)["linear"]
    except models.ModelError:
        return
    odd = sorted(f"{name} {w}" for name, e in linear.items() for w in e["out_widths"] if w % 32)
    if odd:
        raise P.param_error(where, "quantization", f"nf4 on hardware profile {hardware_profile!r} cannot generate with "
                            f"{model}: Linear output widths {', '.join(odd)} are not multiples of 32, which "
                            "bitsandbytes' CPU 4-bit kernel needs; generate with quantization none")


def load(adapter_dir: str | Path, *, base: str | None = None, quantization: str | None = None,
         hardware_profile: str | None = None, dtype: str | None = None, tokenizer_dir: str | Path | None = None):
    """(model, tokenizer) = base model from the adapter's tacsol_train.json (or ``base``) + the LoRA adapter.

    The tokenizer comes from the adapter folder (it carries the prompt's markers), or from ``tokenizer_dir`` for a
    training checkpoint (which holds the adapter only); the base embeddings are resized to it before the adapter
    (with its trained marker rows) is applied."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from . import loading

    ad = check_adapter(adapter_dir, tokenizer=tokenizer_dir is None)
    tp = trained_params(ad)
    base = base or tp.get("model") or json.loads((ad / "adapter_config.json").read_text())["base_model_name_or_path"]
    quantization = quantization or tp.get("quantization", "none")
    hardware_profile = hardware_profile or tp.get("hardware_profile", "cpu")
    check_generation(base, quantization, hardware_profile, where=f"{ad / 'tacsol_train.json'}")
    tok = AutoTokenizer.from_pretrained(paths.resolve(tokenizer_dir) if tokenizer_dir else ad)
    prompt.special_token_ids(tok)  # fails clearly if the markers are missing
    loaded = loading.load_model(base, quantization=quantization, hardware_profile=hardware_profile,
                                dtype=dtype or tp.get("dtype", "auto"), tokenizer=tok)
    model = PeftModel.from_pretrained(loaded.model, ad)
    model.eval()
    return model, tok


def trained_params(adapter_dir: str | Path) -> dict[str, Any]:
    """The training params recorded with an adapter (tacsol_train.json; {} when absent)."""
    meta_path = paths.resolve(adapter_dir) / "tacsol_train.json"
    return json.loads(meta_path.read_text()).get("params", {}) if meta_path.is_file() else {}


def lift_options_of(adapter_dir: str | Path) -> dict:
    """How bytecode must be lifted for an adapter, as lift's keywords (``level``, ``callee_budget``): as its training
    data was, recorded in its tacsol_train.json (so a shipped adapter knows it without its dataset), else read from
    its training dataset's manifest (pairs.lift_options), else level 1 with lift's default budget."""
    from .lift import CALLEE_BUDGET_CHARS

    meta_path = paths.resolve(adapter_dir) / "tacsol_train.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    name = meta.get("params", {}).get("dataset")
    opts = pairs.lift_options(name) if name else {"level": 1, "callee_budget": CALLEE_BUDGET_CHARS}
    if "tac_level" in meta:
        opts["level"] = int(meta["tac_level"])
    if "callee_budget" in meta:
        opts["callee_budget"] = int(meta["callee_budget"])
    return opts


def generate(model, tok, records: Iterable[Mapping[str, Any]], *, max_new_tokens: int = 256, batch_size: int = 8,
             greedy: bool = True, temperature: float = 0.7, progress: bool = True, prefill: str = "none"
             ) -> list[str]:
    """Solidity text for each record (needs ``tac``; selector/signature/visibility/mutability used when present).
    prefill (PREFILL_MODES), for a function the known-signature table does not name: "always" starts its answer as
    ``function unknown_<selector>(`` (prompt.header_prefill, tokenized as the start of a training target is; the
    answer includes it); "fallback" does so only where the model's own answer has no function in it (empty or
    nameless header), keeping the names it sometimes invents; "none" never."""
    if prefill not in PREFILL_MODES:
        raise ValueError(f"prefill {prefill!r}: choose from {PREFILL_MODES}")
    recs = list(records)
    if prefill == "fallback":
        from .evaluate.degenerate import degenerate_reason

        out = _generate(model, tok, recs, max_new_tokens=max_new_tokens, batch_size=batch_size, greedy=greedy,
                        temperature=temperature, progress=progress, prefill=False)
        redo = [i for i, (r, o) in enumerate(zip(recs, out))
                if prompt.header_prefill(r) and degenerate_reason(o) in ("empty", "no_function")]
        if redo:
            again = _generate(model, tok, [recs[i] for i in redo], max_new_tokens=max_new_tokens,
                              batch_size=batch_size, greedy=greedy, temperature=temperature, progress=False,
                              prefill=True)
            for i, o in zip(redo, again):
                out[i] = o
        return out
    return _generate(model, tok, recs, max_new_tokens=max_new_tokens, batch_size=batch_size, greedy=greedy,
                     temperature=temperature, progress=progress, prefill=prefill == "always")


def _generate(model, tok, recs: list[Mapping[str, Any]], *, max_new_tokens: int, batch_size: int, greedy: bool,
              temperature: float, progress: bool, prefill: bool) -> list[str]:
    import torch
    from tqdm.auto import tqdm

    heads = [prompt.header_prefill(r) if prefill else "" for r in recs]
    ids = [prompt.prompt_ids(r, tok) + (tok(h, add_special_tokens=False)["input_ids"] if h else [])
           for r, h in zip(recs, heads)]
    order = sorted(range(len(recs)), key=lambda i: len(ids[i]))  # similar lengths per batch: less padding
    out: list[str] = [""] * len(recs)
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    was_cache = getattr(model.config, "use_cache", True)
    model.config.use_cache = True
    bar = tqdm(total=len(recs), desc="generate", disable=not progress)
    try:
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            n = max(len(ids[i]) for i in chunk)
            inp = torch.full((len(chunk), n), pad, dtype=torch.long)
            att = torch.zeros((len(chunk), n), dtype=torch.long)
            for j, i in enumerate(chunk):  # left padding: every row's prompt ends at the last column
                inp[j, n - len(ids[i]):] = torch.tensor(ids[i])
                att[j, n - len(ids[i]):] = 1
            kw: dict[str, Any] = {"do_sample": not greedy}
            if not greedy:
                kw["temperature"] = temperature
            else:
                kw.update(temperature=None, top_p=None, top_k=None)
            with torch.no_grad(), _cpu_autocast(device):
                gen = model.generate(input_ids=inp.to(device), attention_mask=att.to(device),
                                     max_new_tokens=max_new_tokens, use_cache=True, eos_token_id=tok.eos_token_id,
                                     pad_token_id=pad, **kw)
            for j, i in enumerate(chunk):
                new = gen[j, n:].tolist()
                if tok.eos_token_id in new:
                    new = new[: new.index(tok.eos_token_id)]
                text = tok.decode(new, skip_special_tokens=True)
                out[i] = (heads[i] + text if heads[i] else text).strip("\n")
            bar.update(len(chunk))
    finally:
        bar.close()
        model.config.use_cache = was_cache
    return out


def read_done(path: str | Path) -> dict[str, dict]:
    """Rows already written to a generation file (id -> row). A last line cut off by a kill is not JSON and is
    dropped: its batch is generated again."""
    done: dict[str, dict] = {}
    p = Path(path)
    if not p.is_file():
        return done
    with open(p, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "id" in row and "generated" in row:
                done[str(row["id"])] = row
    return done


def generate_to_file(model, tok, records: Iterable[Mapping[str, Any]], path: str | Path, *,
                     max_new_tokens: int = 256, batch_size: int = 8, greedy: bool = True, temperature: float = 0.7,
                     progress: bool = True, desc: str = "generate", prefill: str = "none") -> dict[str, str]:
    """Resumable batched generation: one JSON line {"id", "generated", "seconds"} per record, appended and fsynced
    per batch, so a killed run goes on from where it stopped (records already in `path` are not generated
    again). Returns id -> text for every record."""
    import time

    from tqdm.auto import tqdm

    recs = list(records)
    p = Path(path)
    done = read_done(p)
    if p.is_file() and p.stat().st_size and not p.read_bytes().endswith(b"\n"):
        append_durably(p, "\n")  # a kill mid-line: end that line so the next row starts clean
    todo = [r for r in recs if str(r["id"]) not in done]
    ids = {str(r["id"]): len(prompt.prompt_ids(r, tok)) for r in todo}
    todo.sort(key=lambda r: ids[str(r["id"])])  # similar lengths per batch
    bar = tqdm(total=len(recs), initial=len(recs) - len(todo), desc=desc, disable=not progress)
    try:
        for s in range(0, len(todo), batch_size):
            chunk = todo[s:s + batch_size]
            t0 = time.perf_counter()
            outs = generate(model, tok, chunk, max_new_tokens=max_new_tokens, batch_size=len(chunk), greedy=greedy,
                            temperature=temperature, progress=False, prefill=prefill)
            dt = (time.perf_counter() - t0) / len(chunk)
            lines = "".join(json.dumps({"id": str(r["id"]), "generated": o, "seconds": round(dt, 3)}) + "\n"
                            for r, o in zip(chunk, outs))
            append_durably(p, lines)
            for r, o in zip(chunk, outs):
                done[str(r["id"])] = {"generated": o}
            bar.update(len(chunk))
    finally:
        bar.close()
    return {str(r["id"]): done[str(r["id"])]["generated"] for r in recs}


def _cpu_autocast(device):
    """bf16 autocast for generation on a CPU with bf16 units (as training uses): ~1.7x the fp32 speed there."""
    import contextlib

    import torch

    from .train import cpu_bf16_supported

    if device.type == "cpu" and cpu_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def records_from_input(source: str, *, tac: bool = False, selector: str = "", signature: str = "",
                       level: int = 1, callee_budget: int | None = None) -> list[dict]:
    """A bytecode hex string / file (lifted at TAC `level` with `callee_budget`, None: lift's default), or
    (``tac=True``) a TAC text / file of one function → prompt records."""
    p = Path(source)
    try:
        is_file = len(source) < 1024 and p.is_file()
    except OSError:  # a long hex string is not a path
        is_file = False
    if not is_file and (p.suffix or "/" in source) and not _HEX.match(source.strip()) and "\n" not in source:
        raise P.param_error(None, "input", f"{source}: no such file (and not {'TAC' if tac else 'hex bytecode'})")
    try:
        text = p.read_text(encoding="utf-8") if is_file else source
    except UnicodeDecodeError as exc:
        raise P.param_error(None, "input", f"{source}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset "
                            f"{exc.start})") from None
    if tac:
        from .lift.abi import starts_as_tac

        text = text.lstrip()
        if not starts_as_tac(text):   # else the model writes a confident function for any text (a log, a note)
            first = text.split("\n", 1)[0][:80]
            raise P.param_error(None, "input", f"{source if is_file else 'the TAC text'}: not TAC: its first line "
                                f"{first!r} is neither a unit header, such as `function 0xa9059cbb(arg0: address, "
                                "arg1: uint256)`, nor a block label (`b0:`) (docs/tac-format.md); for bytecode, leave "
                                "out --tac")
        return [{"id": p.name if is_file else "input", "tac": text, "selector": selector, "signature": signature}]
    if not _HEX.match(text.strip()):
        raise ValueError(f"{source[:60]!r}: not hex bytecode (use --tac for a TAC file)")
    from .lift import CALLEE_BUDGET_CHARS, lift

    code = "".join(text.split())
    lifted = lift(code, level=level, callee_budget=CALLEE_BUDGET_CHARS if callee_budget is None else callee_budget)
    runtime = bytes.fromhex(code[2:] if code.lower().startswith("0x") else code)
    from .evaluate.stubrun import compiler_of

    version = compiler_of(runtime)
    recs = []
    for f in lifted.functions:
        recs.append({"id": f.selector, "selector": f.selector if f.selector.startswith("0x") else "",
                     "signature": "", "mutability": f.mutability, "tac": f.tac,
                     "lift_status": f.status, "runtime": runtime, "solc_version": version})
    return recs


def decompile(source: str, adapter: str | Path | None = None, *, tac: bool = False, max_new_tokens: int = 256,
              batch_size: int = 8, greedy: bool = True, candidates: int = 1, signature_table: str = "standard",
              level: int | None = None, prefill: str = "fallback", rank: str = "checks",
              retrieval_gate: float | None = None, run_check: bool = True, **load_kw) -> list[dict]:
    """Solidity per function of bytecode (or one function's TAC). adapter None = the shipped reference adapter.
    candidates > 1: verifier-guided decoding (tacsol.evaluate.verify: greedy + samples, the best by the objective
    checks, then by `rank`'s rule), with every candidate's checks in the result. signature_table: known signatures
    (:func:`tacsol.signatures.named_table`: "standard", "none", a signatures.json or a dataset's). level: the TAC
    level bytecode is lifted at (None: the one the adapter was trained on; its callee budget always is,
    lift_options_of). prefill: see
    generate (an adapter trained with signature_hints; docs/reference-run.md measures the modes). retrieval_gate:
    a function whose nearest training function by TAC has at least this cosine is answered with that function's
    Solidity (``"source": "retrieval"``, its ``neighbour_id`` and ``tac_similarity``) instead of the model's, unless
    the copy's selector is not the bytecode's and the model's answer's is (then the model's is generated and kept):
    more behaviourally equivalent answers at no cost in selectors (docs/reference-run.md, "A retrieval gate").
    run_check: with bytecode input, every answer is run against the bytecode (check 5, tacsol.evaluate.stubrun:
    compiled in a stub whose state sits at the TAC's slots, run beside the runtime in py-evm): ``"runs"`` is
    "equivalent", "agrees" (on the cases the stub could judge: the others call an internal function it does not
    have), "ran" (no case judged), "differs" or "" (no stub holds it), ``"runs_detail"`` the cases or the reason; with candidates
    it also ranks them."""
    adapter = check_adapter(adapter if adapter is not None else default_adapter())
    if candidates < 1:
        raise ValueError(f"--candidates {candidates}: must be at least 1")
    if retrieval_gate is not None and not 0.0 <= retrieval_gate <= 1.0:
        raise ValueError(f"--retrieval-gate {retrieval_gate}: a TF-IDF cosine, between 0 and 1")
    from .evaluate import verify

    if rank not in verify.RULES:
        raise ValueError(f"--rank {rank}: expected one of {', '.join(verify.RULES)}")
    opts = lift_options_of(adapter)
    every = records_from_input(source, tac=tac, level=level if level is not None else opts["level"],
                               callee_budget=opts["callee_budget"])
    table = signatures.named_table(signature_table)
    trained = trained_params(adapter)
    if table is not None:
        every = signatures.hint_records(every, table, in_header=bool(trained.get("signature_hints")),
                                        events=bool(trained.get("event_names")))
    if trained.get("retrieval_prompts"):
        every = with_training_neighbours(every, adapter, trained)
    # a function the lifter could not translate (timeout, unsupported) has no TAC: the model would only guess
    recs = [r for r in every if r["tac"].strip()]
    skipped = {r["id"]: {**r, "solidity": "", "skipped": f"no TAC (lift status {r.get('lift_status') or 'empty'})"}
               for r in every if not r["tac"].strip()}
    copied, contested = {}, {}   # copies to return as they are / to return unless the model names the function
    if retrieval_gate is not None:
        from .baselines import retrieval_gate as gate

        index = training_index(adapter, trained, f"--retrieval-gate {retrieval_gate}")
        by_id = {r["id"]: r for r in recs}
        for i, row in gate(index, recs, retrieval_gate).items():
            copy = {**by_id[i], **row, "source": "retrieval"}
            sel = by_id[i].get("selector") or ""
            # a copy under another function's name does not replace an answer with the bytecode's selector
            (copied if not sel or verify.selector_matches(row["solidity"], sel) else contested)[i] = copy
        recs = [r for r in recs if r["id"] not in copied]
    if not recs:
        return _answers(every, {}, copied, skipped, run_check)
    model, tok = load(adapter, **load_kw)
    if candidates == 1:
        sols = generate(model, tok, recs, max_new_tokens=max_new_tokens, batch_size=batch_size, greedy=greedy,
                        prefill=prefill)
        done = {r["id"]: {**r, "solidity": s} for r, s in zip(recs, sols)}
    else:
        pools = verify.sample_candidates(model, tok, recs, candidates, max_new_tokens=max_new_tokens,
                                         batch_size=batch_size, prefill=prefill)
        runs = _run_checks(recs, pools) if run_check else {}
        done = {}
        for r, pool in zip(recs, pools):
            best, checks = verify.rank(r, pool, rule=rank, runs=runs.get(r["id"]))
            done[r["id"]] = {**r, "solidity": pool[best], "candidate": best,
                             "checks": [{"score": c.score, "degenerate": c.degenerate, "compiles": c.compiles,
                                         "selector_match": c.selector_match, "argument_mismatch": c.argument_mismatch,
                                         "grounding_f1": round(c.grounding_f1, 3), "runs": c.runs,
                                         "runs_detail": c.runs_detail,
                                         **({"consensus": round(c.consensus, 3)} if c.consensus is not None else {})}
                                        for c in checks]}
    for i, copy in contested.items():
        if not verify.selector_matches(done[i]["solidity"], copy["selector"]):
            done[i] = copy
    return _answers(every, done, copied, skipped, run_check)


def _answers(every: list[dict], done: dict, copied: dict, skipped: dict, run_check: bool) -> list[dict]:
    """One answer per function, in the input's order, each with check 5's verdict on it when run_check (the chosen
    candidate's, else run now for every answer in one batch) and without the runtime it was checked against."""
    final = [dict(done.get(r["id"]) or copied.get(r["id"]) or skipped[r["id"]]) for r in every]
    if run_check:
        for row in final:
            if row.get("checks"):
                chosen = row["checks"][row["candidate"]]
                row["runs"], row["runs_detail"] = chosen["runs"], chosen["runs_detail"]
        todo = [row for row in final if row.get("runtime") and row.get("solidity") and "runs" not in row]
        runs = _run_checks(todo, [[row["solidity"]] for row in todo])
        for row in todo:
            if runs.get(row["id"]):
                row["runs"], row["runs_detail"] = runs[row["id"]][0].verdict, runs[row["id"]][0].reason
    return [{k: v for k, v in row.items() if k != "runtime"} for row in final]


def _run_checks(recs: list[dict], pools: list[list[str]]) -> dict:
    """Check 5 (tacsol.evaluate.stubrun) for every candidate of the records that carry their runtime (bytecode
    input), compiled in one batch and run in this process; {} for TAC input. A failure leaves the ranking to the
    other checks, each candidate saying why (stubrun.check_all)."""
    from .evaluate import stubrun

    codes = {r["id"]: r["runtime"] for r in recs if r.get("runtime")}
    if not codes:
        return {}
    return stubrun.check_all(recs, codes, {r["id"]: p for r, p in zip(recs, pools)}, workers=1)


def training_index(adapter: Path, trained: Mapping[str, Any], why: str) -> list[dict]:
    """The training functions an adapter was trained on, for finding a function's nearest one
    (tacsol.train.neighbour_index: saved beside the adapter, or its dataset's train split without its held-out
    packages); a clear error naming `why` when neither is on this machine."""
    from . import train

    try:
        return train.neighbour_index(adapter, trained)
    except Exception as exc:
        raise ValueError(f"adapter {adapter}: {why} needs its training set: it has no {train.NEIGHBOUR_INDEX} and "
                         f"its dataset {trained.get('dataset')!r} could not be loaded "
                         f"({type(exc).__name__}: {exc})") from None


def with_training_neighbours(records: list[dict], adapter: Path, trained: Mapping[str, Any]) -> list[dict]:
    """Records with the neighbour an adapter trained with ``retrieval_prompts`` expects in its prompt: the nearest
    function of the training records it was trained on (training_index)."""
    from . import train

    index = training_index(adapter, trained, "each prompt's neighbour (it was trained with retrieval prompts)")
    return train.with_neighbours(index, {"input": records}, trained)["input"]


def build_parser(ap: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    from .evaluate.verify import RULES as RANK_RULES

    ap = ap or argparse.ArgumentParser(prog="tacsol decompile")
    ap.add_argument("input", help="runtime bytecode (hex, or a file holding hex), or a TAC file with --tac")
    ap.add_argument("--adapter", default=None,
                    help="adapter folder written by tacsol train (<output_dir>/adapter); default: the shipped "
                         "reference adapter for the embedded SmolLM2-135M (docs/reference-run.md)")
    ap.add_argument("--tac", action="store_true", help="input is the TAC of one function, not bytecode")
    ap.add_argument("--base", default=None, help="override the base model recorded with the adapter")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--sample", action="store_true", help="sample (temperature 0.7) instead of greedy decoding")
    ap.add_argument("--candidates", type=int, default=1, metavar="N",
                    help="verifier-guided decoding: greedy + N-1 samples per function, the best by the kit's checks "
                         "(not degenerate, then the bytecode's selector, then, for bytecode input, whether it runs "
                         "like the bytecode: compiled in a stub whose state sits at the TAC's slots and run beside "
                         "the runtime in py-evm; then the arguments the TAC reads used by the code, then by --rank; "
                         "the stub compile is reported). The text output says which answers ran like the bytecode")
    ap.add_argument("--rank", choices=RANK_RULES, default="checks",
                    help="with --candidates: among candidates equal on the checks, keep the earliest (checks: greedy "
                         "first), the one the other candidates agree with most (consensus: minimum Bayes risk), or "
                         "the one whose effects best match the TAC's, then by agreement (grounded: more of the TAC's "
                         "events, storage writes and calls shown, at some cost in behaviour; docs/reference-run.md)")
    ap.add_argument("--signatures", default="standard", metavar="TABLE",
                    help="known signatures given to the model: standard (the shipped ERC/Ownable/AccessControl "
                         "interfaces, default), none, a signatures.json, or a dataset name (its table)")
    ap.add_argument("--prefill", choices=PREFILL_MODES, default="fallback",
                    help="for a function the known signatures do not name (adapters trained with signature hints): "
                         "start its answer as `function unknown_<selector>(` where the model's own has no function "
                         "in it (fallback, default), always, or never (none)")
    ap.add_argument("--retrieval-gate", type=float, default=None, metavar="TAU",
                    help="answer a function whose nearest training function by TAC has a TF-IDF cosine >= TAU with "
                         "that function's Solidity (marked in the output), unless the copy's selector is not the "
                         "bytecode's and the model's answer's is. Measured at 0.6 with the shipped adapter: more "
                         "behaviourally equivalent answers, selector match kept; needs the adapter's "
                         "neighbours.jsonl.gz or its dataset (docs/reference-run.md, 'A retrieval gate')")
    ap.add_argument("--no-run-check", action="store_true",
                    help="do not run the answers against the bytecode (check 5: each answer compiled in a stub whose "
                         "state sits at the TAC's slots and run beside the runtime in py-evm; the output marks the "
                         "answers that ran like the bytecode, or differ; needs node and the solcjs of the runtime's "
                         "release)")
    ap.add_argument("--json", action="store_true", help="print JSON records instead of Solidity text")
    ap.add_argument("--level", type=int, choices=[1, 2, 3], default=None,
                    help="TAC level to lift bytecode at (default: the adapter's training dataset's, else 1)")
    return ap


# what check 5's verdict on an answer tells its reader (tacsol.evaluate.stubrun.RunCheck)
RUNS_NOTE = {"equivalent": "ran like the bytecode", "differs": "differs from the bytecode",
             "agrees": "agrees with the bytecode on the cases the stub could judge, not on all",
             "ran": "not judged"}


def main(args: argparse.Namespace) -> int:
    try:
        res = decompile(args.input, args.adapter, tac=args.tac, max_new_tokens=args.max_new_tokens,
                        batch_size=args.batch_size, greedy=not args.sample, base=args.base,
                        candidates=args.candidates, signature_table=args.signatures, level=args.level,
                        prefill=args.prefill, rank=args.rank, retrieval_gate=args.retrieval_gate,
                        run_check=not args.no_run_check)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"tacsol decompile: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        for r in res:
            note = f": {r['skipped']}" if r.get("skipped") else (
                f": copied from training function {r['neighbour_id']} (TAC cosine {r['tac_similarity']:.2f})"
                if r.get("source") == "retrieval" else "")
            if r.get("runs"):   # check 5's verdict on the answer: what a reader can trust it for
                note += f" ({RUNS_NOTE[r['runs']]}: {r['runs_detail']})"
            print(f"// {r.get('selector') or r.get('id')}{note}\n{r['solidity']}\n")
    return 0
