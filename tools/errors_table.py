"""docs/errors.md from real invocations: one row per bad input the kit can get, its exit code and its message.

Every case runs `tacsol ...` in a subprocess inside a temporary folder (TACSOL_OUTPUTS and TACSOL_CACHE there too),
so the table shows what a user sees. Notebook parameters go through `tacsol run NN -p ...`, which checks them the way
the notebooks' validation cell does (tacsol.params.check_notebook) before papermill starts.

    python tools/errors_table.py            # rewrite docs/errors.md
    python tools/errors_table.py --check    # exit 1 and print a diff when docs/errors.md is out of date

tests/test_errors_table.py runs the cases, asserts every row (exit 2, no traceback, the message names the item and
the field) and that docs/errors.md is what this script writes.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"
MAX_MESSAGE = 300  # characters of a message the table shows
TIMEOUT_S = 120  # a case still running by then has not refused its input (it would run the notebook)


@dataclass(frozen=True)
class Case:
    area: str                    # the table's section: a subcommand or "notebook NN"
    bad: str                     # the bad input, in words
    argv: tuple[str, ...]        # tacsol's arguments; {d} is the case's folder
    names: tuple[str, ...]       # what the message must name (the item and the field), as written in it
    setup: Callable[[Path], None] | None = None  # writes the files argv names


@dataclass(frozen=True)
class Result:
    case: Case
    exit: int
    message: str                 # the error line(s), paths as <tmp> / <repo>
    traceback: bool


# ----------------------------------------------------------------------------------------------- inputs on disk
def _runtime() -> str:
    contracts = json.loads((ROOT / "tests" / "fixtures" / "lift" / "contracts.json").read_text())
    return next(c["runtime"] for c in contracts if c["id"] == "A@0.8.26/opt200")


def _records() -> list[dict]:
    return [json.loads(x) for x in (ROOT / "tests" / "fixtures" / "eval" / "records.jsonl").read_text().splitlines()]


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def files(contents: dict[str, str | bytes]) -> Callable[[Path], None]:
    """Setup writing relative path -> content under the case folder."""
    def setup(d: Path) -> None:
        for name, data in contents.items():
            _write(d / name, data)
    return setup


def runtime_file(d: Path) -> None:
    _write(d / "code.hex", _runtime())


def records_without_solidity(d: Path) -> None:
    _write(d / "records.jsonl", _jsonl([{k: v for k, v in r.items() if k != "solidity"} for r in _records()]))
    test_ids = [r["id"] for r in _records() if r["split"] == "test"]
    _write(d / "gens.jsonl", _jsonl([{"id": i, "generated": "function f() {}"} for i in test_ids]))


def sample_generations(d: Path) -> None:
    first = json.loads((ROOT / "lib" / "tacsol" / "data" / "sample" / "test.jsonl").read_text().splitlines()[0])
    _write(d / "gens.jsonl", _jsonl([{"id": first["id"], "generated": "function f() {}"}]))


def records_not_utf8(d: Path) -> None:
    rows = _jsonl(_records()).encode().replace(b"function ", b"function \xff", 1)
    _write(d / "records.jsonl", rows)


def train_params(*lines: str, setup: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    """A params file for tacsol train writing into the case folder ({d} in a line is that folder)."""
    def write(d: Path) -> None:
        if setup:
            setup(d)
        _write(d / "p.yaml", "".join(f"{ln.format(d=d)}\n" for ln in (*lines, "output_dir: {d}/run")))
    return write


# a Llama whose k/v projections are 24 wide: bitsandbytes' CPU 4-bit kernel cannot generate with it
ODD_MODEL = {"model_type": "llama", "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 1,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 4096}


def odd_model(d: Path) -> None:
    _write(d / "model" / "config.json", json.dumps(ODD_MODEL))


def adapter(d: Path, **params) -> Path:
    """A copy of the shipped adapter's small files (weights by link), its tacsol_train.json params updated."""
    src, out = ROOT / "lib" / "tacsol" / "data" / "adapter", d / "adapter"
    out.mkdir(parents=True)
    for f in src.iterdir():
        if f.name == "adapter_model.safetensors":
            (out / f.name).symlink_to(f)
        else:
            shutil.copy(f, out / f.name)
    meta = json.loads((src / "tacsol_train.json").read_text())
    meta["params"].update(params)
    _write(out / "tacsol_train.json", json.dumps(meta))
    return out


def adapter_bad_config(d: Path) -> None:
    _write(adapter(d) / "adapter_config.json", '{"peft_type": "LORA", ')


def adapter_truncated_weights(d: Path) -> None:
    weights = adapter(d) / "adapter_model.safetensors"
    data = weights.read_bytes()[:4096]
    weights.unlink()
    _write(weights, data)


def adapter_nf4_cpu(d: Path) -> None:
    odd_model(d)
    adapter(d, model=str(d / "model"), quantization="nf4", hardware_profile="cpu")


NOT_UTF8_SOL = (b"// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
                b"contract A { string s = \"caf\xe9\"; function f() public {} }\n")
FAILING_SOL = (b"// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
               b"contract B { function f() public { undefinedThing(); } }\n")
TAC = "function 0x12345678() nonpayable\nb0:\n  stop\n"

# --------------------------------------------------------------------------------------------------- the cases
CASES: list[Case] = [
    # tacsol lift
    Case("tacsol lift", "a file that does not exist", ("lift", "{d}/missing.hex"), ("missing.hex", "code")),
    Case("tacsol lift", "a text file that is not hex", ("lift", "{d}/code.txt"), ("code.txt", "position"),
         files({"code.txt": "hello world\n"})),
    Case("tacsol lift", "a JSON artifact without a bytecode field", ("lift", "{d}/artifact.json"),
         ("artifact.json", "deployedBytecode"), files({"artifact.json": '{"abi": []}'})),
    Case("tacsol lift", "a JSON artifact that is not valid JSON", ("lift", "{d}/artifact.json"),
         ("artifact.json", "line 1"), files({"artifact.json": '{"deployedBytecode": '})),
    Case("tacsol lift", "hex with an odd number of digits", ("lift", "0x600"), ("code", "odd number")),
    Case("tacsol lift", "a --selector the contract does not have", ("lift", "{d}/code.hex", "--selector", "0x12345678"),
         ("code.hex", "0x12345678"), runtime_file),
    Case("tacsol lift", "--time-limit not a number", ("lift", "0x00", "--time-limit", "soon"),
         ("--time-limit", "soon")),
    Case("tacsol lift", "a negative --callee-budget", ("lift", "0x00", "--level", "2", "--callee-budget", "-1"),
         ("--callee-budget", "-1")),
    # tacsol data
    Case("tacsol data build", "an unknown compiler setting", ("data", "build", "--name", "x", "--settings", "opt"),
         ("settings", "'opt'")),
    Case("tacsol data build", "a --folder that does not exist",
         ("data", "build", "--name", "x", "--folder", "{d}/nope"), ("folder", "nope")),
    Case("tacsol data build", "a --manifest that does not exist",
         ("data", "build", "--name", "x", "--manifest", "{d}/manifest.yaml"), ("manifest", "manifest.yaml")),
    Case("tacsol data build", "--fractions that do not sum to 1",
         ("data", "build", "--name", "x", "--fractions", "0.5", "0.5", "0.5"), ("fractions", "sum to 1")),
    Case("tacsol data build", "--max-units not a number", ("data", "build", "--max-units", "many"),
         ("--max-units", "many")),
    Case("tacsol data build", "a --callee-budget that is not a number of characters",
         ("data", "build", "--name", "x", "--level", "3", "--callee-budget", "short"), ("--callee-budget", "short")),
    Case("tacsol data build", "a source file that is not UTF-8",
         ("data", "build", "--name", "x", "--folder", "{d}/src"),
         ("A.sol", "line 3", "not_utf8"), files({"src/A.sol": NOT_UTF8_SOL})),
    Case("tacsol data build", "a source that solc refuses", ("data", "build", "--name", "x", "--folder", "{d}/src"),
         ("B.sol", "compile_error", "Undeclared identifier"), files({"src/B.sol": FAILING_SOL})),
    Case("tacsol data stats", "a dataset that does not exist", ("data", "stats", "{d}/nope"), ("dataset", "nope")),
    Case("tacsol data import", "a --map without '='",
         ("data", "import", "{d}/rows.jsonl", "--map", "tac", "--name", "x"),
         ("map", "'tac'"), files({"rows.jsonl": '{"a": 1}\n'})),
    Case("tacsol data import", "a local file that does not exist",
         ("data", "import", "{d}/rows.jsonl", "--map", "tac=a", "--map", "solidity=b", "--name", "x"),
         ("rows.jsonl", "not found")),
    Case("tacsol data import", "a dataset without the mapped columns",
         ("data", "import", "{d}/rows.jsonl", "--map", "tac=tac_text", "--map", "solidity=b", "--name", "x"),
         ("rows.jsonl", "tac_text"), files({"rows.jsonl": '{"a": 1, "b": "x"}\n'})),
    Case("tacsol data import", "a mapping without tac + solidity or source + bytecode",
         ("data", "import", "{d}/rows.jsonl", "--map", "tac=a", "--name", "x"), ("map", "solidity"),
         files({"rows.jsonl": '{"a": 1, "b": "x"}\n'})),
    # tacsol vram
    Case("tacsol vram", "no model", ("vram",), ("model",)),
    Case("tacsol vram", "an unknown model", ("vram", "Llama-9-1B"), ("Llama-9-1B", "model")),
    Case("tacsol vram", "a config.json without model_type", ("vram", "{d}/config.json"), ("config.json", "model_type"),
         files({"config.json": '{"hidden_size": 64}'})),
    Case("tacsol vram", "an unknown hardware profile", ("vram", "Llama-3.2-3B", "--hardware", "tpu"),
         ("tpu", "hardware")),
    Case("tacsol vram", "a LoRA target absent from the model", ("vram", "Llama-3.2-3B", "--targets", "qkv_proj"),
         ("Llama-3.2-3B", "qkv_proj")),
    Case("tacsol vram", "a sequence longer than the model's context", ("vram", "Llama-3.2-3B", "--seq-len", "200000"),
         ("Llama-3.2-3B", "seq_len")),
    Case("tacsol vram", "--seq-len not a number", ("vram", "Llama-3.2-3B", "--seq-len", "4k"), ("--seq-len", "4k")),
    # tacsol train
    Case("tacsol train", "a params file that does not exist", ("train", "--params", "{d}/p.yaml"),
         ("p.yaml", "params")),
    Case("tacsol train", "a params file that is not YAML", ("train", "--params", "{d}/p.yaml"), ("p.yaml", "YAML"),
         files({"p.yaml": "lora_r: [16\n"})),
    Case("tacsol train", "a params file that is not UTF-8", ("train", "--params", "{d}/p.yaml"), ("p.yaml", "UTF-8"),
         files({"p.yaml": b"model: caf\xe9\n"})),
    Case("tacsol train", "an unknown key", ("train", "--params", "{d}/p.yaml"), ("p.yaml", "lora_rank", "lora_r"),
         train_params("lora_rank: 8")),
    Case("tacsol train", "a value of the wrong type", ("train", "--params", "{d}/p.yaml"), ("p.yaml", "lora_r"),
         train_params("lora_r: eight")),
    Case("tacsol train", "event names without the signature table", ("train", "--params", "{d}/p.yaml"),
         ("p.yaml", "event_names", "signature_hints"), train_params("event_names: true")),
    Case("tacsol train", "--set without '='", ("train", "--params", "{d}/p.yaml", "--set", "lora_r"),
         ("--set", "lora_r"),
         train_params()),
    Case("tacsol train", "a LoRA target absent from the model", ("train", "--params", "{d}/p.yaml"),
         ("p.yaml", "lora_targets", "qkv_proj"), train_params("lora_targets: [qkv_proj]")),
    Case("tacsol train", "a sequence longer than the model's context", ("train", "--params", "{d}/p.yaml"),
         ("p.yaml", "max_seq_length"), train_params("max_seq_length: 100000")),
    Case("tacsol train", "a dataset that does not exist", ("train", "--params", "{d}/p.yaml"), ("dataset", "nope"),
         train_params("dataset: {d}/nope")),
    Case("tacsol train", "a dataset without the required columns", ("train", "--params", "{d}/p.yaml"),
         ("records.jsonl", "solidity"), train_params("dataset: {d}/records.jsonl", setup=records_without_solidity)),
    Case("tacsol train", "a records file that is not UTF-8", ("train", "--params", "{d}/p.yaml"),
         ("records.jsonl", "line 1", "tac"), train_params("dataset: {d}/records.jsonl", setup=records_not_utf8)),
    # tacsol decompile
    Case("tacsol decompile", "an input file that does not exist", ("decompile", "{d}/missing.hex"), ("missing.hex",)),
    Case("tacsol decompile", "a TAC file that is not UTF-8", ("decompile", "{d}/f.tac", "--tac"), ("f.tac", "UTF-8"),
         files({"f.tac": b"function 0x12345678\n  caf\xe9\n"})),
    Case("tacsol decompile", "a --tac file that is not TAC (a log, a note)", ("decompile", "{d}/notes.txt", "--tac"),
         ("notes.txt", "input", "not TAC"), files({"notes.txt": b"compiled with solc 0.8.20, see below\n"})),
    Case("tacsol decompile", "an adapter folder that does not exist",
         ("decompile", TAC, "--tac", "--adapter", "{d}/nope"),
         ("nope", "adapter_config.json")),
    Case("tacsol decompile", "an adapter whose adapter_config.json is corrupt",
         ("decompile", TAC, "--tac", "--adapter", "{d}/adapter"), ("adapter_config.json", "JSON"), adapter_bad_config),
    Case("tacsol decompile", "an adapter whose weights are truncated",
         ("decompile", TAC, "--tac", "--adapter", "{d}/adapter"), ("adapter_model.safetensors",),
         adapter_truncated_weights),
    Case("tacsol decompile", "NF4 on a CPU-only profile for generation",
         ("decompile", TAC, "--tac", "--adapter", "{d}/adapter"), ("quantization", "nf4", "k_proj"), adapter_nf4_cpu),
    Case("tacsol decompile", "--candidates below 1", ("decompile", TAC, "--tac", "--candidates", "0"),
         ("--candidates", "0")),
    Case("tacsol decompile", "--retrieval-gate outside 0-1", ("decompile", TAC, "--tac", "--retrieval-gate", "1.5"),
         ("--retrieval-gate", "1.5")),
    Case("tacsol decompile", "--max-new-tokens not a number", ("decompile", TAC, "--tac", "--max-new-tokens", "lots"),
         ("--max-new-tokens", "lots")),
    # tacsol evaluate
    Case("tacsol evaluate", "a generations file that does not exist",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "sample", "--out", "{d}/run"), ("gens.jsonl", "generations")),
    Case("tacsol evaluate", "a generations line that is not JSON",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "sample", "--out", "{d}/run"), ("gens.jsonl", "line 2"),
         files({"gens.jsonl": '{"id": "a", "generated": ""}\nnot json\n'})),
    Case("tacsol evaluate", "a generations line without 'generated'",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "sample", "--out", "{d}/run"),
         ("gens.jsonl", "line 1", "generated"),
         files({"gens.jsonl": '{"id": "a"}\n'})),
    Case("tacsol evaluate", "generations for ids that are not in the split",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "sample", "--out", "{d}/run"), ("gens.jsonl", "'id'", "nope"),
         files({"gens.jsonl": '{"id": "nope", "generated": ""}\n'})),
    Case("tacsol evaluate", "a dataset that does not exist",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "{d}/nope", "--out", "{d}/run"), ("dataset", "nope"),
         files({"gens.jsonl": '{"id": "a", "generated": ""}\n'})),
    Case("tacsol evaluate", "a dataset without the required columns",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "{d}/records.jsonl", "--out", "{d}/run"),
         ("records.jsonl", "solidity"), records_without_solidity),
    Case("tacsol evaluate", "a split the dataset does not have",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "sample", "--split", "dev", "--out", "{d}/run"),
         ("sample", "split", "dev"), files({"gens.jsonl": '{"id": "a", "generated": ""}\n'})),
    Case("tacsol evaluate", "a --declarations file that does not exist",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "sample", "--declarations", "{d}/decl.json", "--out", "{d}/run"),
         ("decl.json", "declarations"), sample_generations),
    Case("tacsol evaluate", "--bootstrap not a number",
         ("evaluate", "{d}/gens.jsonl", "--dataset", "sample", "--out", "{d}/run", "--bootstrap", "many"),
         ("--bootstrap", "many")),
    # tacsol run
    Case("tacsol run", "a phase that does not exist", ("run", "09"), ("phase", "09")),
    Case("tacsol run", "a params file that does not exist", ("run", "03", "--params", "{d}/p.yaml"),
         ("p.yaml", "params")),
    Case("tacsol run", "a params file that is not a mapping", ("run", "03", "--params", "{d}/p.yaml"),
         ("p.yaml", "mapping"), files({"p.yaml": "- model\n"})),
    Case("tacsol run", "-p without '='", ("run", "03", "-p", "lora_r"), ("-p", "lora_r")),
    Case("tacsol run", "--params with 'all'", ("run", "all", "--params", "params/03_baseline_3b.yaml"),
         ("--params", "all")),
]


def _names_and_types() -> list[Case]:
    """Every notebook: an unknown key and a value of the wrong type in one call (tacsol.params.validate)."""
    typos = {"00": ("max_unit", "settings", "noopt"), "01": ("tokeniser", "coverage_target", "most"),
             "02": ("gpu", "seq_len", "4k"), "03": ("lora_rank", "lora_r", "8.5"),
             "04": ("n_process", "n_processes", "two"), "05": ("zero3", "zero3_plan", "[lora16]"),
             "06": ("run", "runs", "all")}
    return [Case(f"notebook {nb}", "an unknown key and a value of the wrong type",
                 ("run", nb, "-p", f"{unknown}=1", "-p", f"{typed}={value}"), (unknown, typed))
            for nb, (unknown, typed, value) in typos.items()]


# Notebook parameters: names and types for every notebook, then the checks that need the owning module
# (tacsol.params.PLAN_CHECKS).
CASES += _names_and_types()
CASES += [
    Case("notebook 00", "a compiler setting that does not exist", ("run", "00", "-p", "settings=[opt]"),
         ("settings", "'opt'")),
    Case("notebook 00", "a source folder that does not exist", ("run", "00", "-p", "folders=[{d}/nope]"),
         ("folders", "nope")),
    Case("notebook 01", "a dataset that does not exist", ("run", "01", "-p", "dataset={d}/nope"), ("dataset", "nope")),
    Case("notebook 01", "a bytecode file that does not exist", ("run", "01", "-p", "bytecode_file={d}/code.jsonl"),
         ("bytecode_file", "code.jsonl")),
    Case("notebook 02", "an unknown hardware profile", ("run", "02", "-p", "hardware=tpu"), ("hardware", "tpu")),
    Case("notebook 02", "an unknown model in a list", ("run", "02", "-p", "heatmap_models=[Llama-9-1B]"),
         ("heatmap_models", "Llama-9-1B")),
    Case("notebook 03", "a LoRA target absent from the model", ("run", "03", "-p", "lora_targets=[qkv_proj]"),
         ("lora_targets", "qkv_proj")),
    Case("notebook 03", "a sequence longer than the model's context", ("run", "03", "-p", "max_seq_length=100000"),
         ("max_seq_length", "100000")),
    Case("notebook 03", "NF4 on a CPU-only profile for generation",
         ("run", "03", "-p", "quantization=nf4", "-p", "model={d}/model"), ("quantization", "nf4", "k_proj"),
         odd_model),
    Case("notebook 03", "a dataset that does not exist", ("run", "03", "-p", "dataset={d}/nope"), ("dataset", "nope")),
    Case("notebook 04", "an accelerate config that does not exist",
         ("run", "04", "-p", "accelerate_config={d}/acc.yaml"), ("accelerate_config", "acc.yaml")),
    Case("notebook 04", "an unknown launcher", ("run", "04", "-p", "launcher=mpirun"), ("launcher", "mpirun")),
    Case("notebook 05", "ZeRO-3 with one process", ("run", "05", "-p", "n_processes=1"), ("zero3_plan", "n_processes")),
    Case("notebook 05", "a LoRA target absent from the model", ("run", "05", "-p", "lora_targets=[qkv_proj]"),
         ("lora_targets", "qkv_proj")),
]


# ------------------------------------------------------------------------------------------------------ running
def _message(stderr: str) -> str:
    """The error line: the first line the CLI prefixes with 'tacsol' (argparse's too), else the last line."""
    lines = [ln.rstrip() for ln in stderr.splitlines() if ln.strip()]
    first = next((ln for ln in lines if ln.startswith("tacsol")), lines[-1] if lines else "")
    return first if len(first) <= MAX_MESSAGE else first[:MAX_MESSAGE - 1] + "…"


def _normalise(text: str, d: Path, cache: Path) -> str:
    for path, name in ((d, "<tmp>"), (d.resolve(), "<tmp>"), (cache, "<cache>"), (ROOT, "<repo>")):
        text = text.replace(str(path), name)
    return text


def run_case(case: Case, d: Path, cache: Path) -> Result:
    d.mkdir(parents=True)
    if case.setup:
        case.setup(d)
    argv = [a.replace("{d}", str(d)) for a in case.argv]
    env = {**os.environ, "TACSOL_OUTPUTS": str(d / "outputs"), "TACSOL_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        proc = subprocess.run([sys.executable, "-m", "tacsol.cli", *argv], cwd=d, env=env, capture_output=True,
                              text=True, errors="replace", timeout=TIMEOUT_S)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, stderr = -1, f"still running after {TIMEOUT_S} s: the input was not refused"
    return Result(case, code, _normalise(_message(stderr), d, cache), "Traceback (most recent call last)" in stderr)


def run_all(cases: list[Case] = CASES, workers: int = 2) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="tacsol-errors-") as tmp:
        root = Path(tmp)
        cache = root / "cache"
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(lambda ic: run_case(ic[1], root / f"case{ic[0]:03d}", cache), enumerate(cases)))


# ------------------------------------------------------------------------------------------------------- table
HEADER = """# Bad inputs and what the kit says

Every row is a real invocation: `tools/errors_table.py` runs each command in a temporary folder (`<tmp>`; `<repo>` is
the repository) and records the exit code and the error line. `tests/test_errors_table.py` runs them again and fails
when this page differs, when an exit code is not 2, when a traceback reaches the user, or when the message does not
name the item and the field. Regenerate after changing a message: `python tools/errors_table.py`.

Exit codes: 0 success; 2 bad input (a parameter, a file it names, a record), with one line on stderr saying which and
why; 1 a failure that is not the input's (a notebook phase that failed, a crash). Notebook parameters are checked by
`tacsol run` before any phase starts and by the notebooks' validation cell (`tacsol.params.check_notebook`) alike.
Messages longer than {max} characters are cut here (…).
"""


def _cell(text: str) -> str:
    """Code span for a table cell: <tmp> stays visible, a pipe does not end the cell."""
    return "`" + text.replace("|", "\\|").replace("\n", " ").replace("`", "'") + "`"


def render(results: list[Result]) -> str:
    """The page: one table per area, areas in the order they first appear in CASES."""
    areas = list(dict.fromkeys(r.case.area for r in results))
    out = [HEADER.format(max=MAX_MESSAGE)]
    for area in areas:
        out.append(f"\n## {area}\n\n| bad input | command | exit | message |\n|---|---|---|---|")
        for r in (r for r in results if r.case.area == area):
            cmd = "tacsol " + " ".join(arg if " " not in arg and "\n" not in arg else repr(arg) for arg in r.case.argv)
            out.append(f"| {r.case.bad.replace('|', '/')} | {_cell(cmd.replace('{d}', '<tmp>'))} | {r.exit}"
                       f"{' (traceback)' if r.traceback else ''} | {_cell(r.message)} |")
    return "\n".join(out) + "\n"


def problems(r: Result) -> list[str]:
    """What is wrong with a row: an exit code other than 2, a traceback, a message not naming item and field."""
    out = [] if r.exit == 2 else [f"exit {r.exit}"]
    if r.traceback:
        out.append("traceback")
    out += [f"message does not name {n!r}" for n in r.case.names if n not in r.message]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with docs/errors.md instead of writing it")
    args = ap.parse_args(argv)
    results = run_all()
    text = render(results)
    for r in results:
        if problems(r):
            print(f"{r.case.area}: {r.case.bad}: {', '.join(problems(r))}: {r.message}", file=sys.stderr)
    if args.check:
        old = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(), "docs/errors.md", "regenerated",
                                         lineterm=""))
        print("\n".join(diff) or "docs/errors.md is up to date")
        return 1 if diff else 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} ({len(results)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
