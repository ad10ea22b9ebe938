"""Compile check: a function placed in a stub contract with the original contract's declarations, compiled with the
solcjs of the record's version (node_modules/solc-<version>), through tacsol.corpus.run_solcjs (the same
solc_compile.js as the corpus builds; no cache here: thousands of tiny stubs, each compiled once). standard_input
builds every standard-JSON input of the evaluation (this check, compile_bytecode, stubrun's stubs)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import corpus
from .solidity import ParseFailure, find_function

STUB_NAME = "TacsolEvalStub"


@dataclass
class CompileResult:
    ok: bool
    status: str          # "ok" | "parser_error" | "declaration_error" | "type_error" | "other_error" | "crash" | "timeout" | "no_compiler"
    version: str         # solc version used
    message: str = ""


_INHERITANCE_ATTRS = re.compile(r"\boverride\s*(\([^)]*\))?|\bvirtual\b")


def without_inheritance(code: str) -> str:
    """The code without `override`/`virtual`: a stub contract has no base contracts."""
    return _INHERITANCE_ATTRS.sub("", code)


def standard_input(sources: str | dict[str, str], *, codegen: bool = False, optimize: bool = False) -> dict:
    """solc's standard-JSON input for one compile unit (a stub's text as Stub.sol, or {unit path: content}): type
    check only (an empty outputSelection: solc parses and type-checks and skips code generation, the slow part),
    or with code generation (runtime bytecode and method identifiers; the optimizer as `optimize` says)."""
    files = sources.items() if isinstance(sources, dict) else [("Stub.sol", sources)]
    settings: dict = {"outputSelection": {"*": {"*": ["evm.deployedBytecode.object", "evm.methodIdentifiers"]}}} \
        if codegen else {"outputSelection": {"*": {"*": []}}}
    if codegen:
        settings["optimizer"] = {"enabled": bool(optimize), "runs": 200}
    return {"language": "Solidity", "settings": settings, "sources": {p: {"content": c} for p, c in files}}


def build_stub(function_code: str, version: str, declarations: str = "", context: str = "") -> str:
    """A one-contract source: pragma of `version`, the declarations, the context (modifiers and internal callees of
    the original), then the function. `override`/`virtual` are removed from the function and context because the
    stub has no base contracts (documented in docs/evaluation.md)."""
    fn = without_inheritance(function_code)
    ctx = without_inheritance(context or "")
    return (f"// SPDX-License-Identifier: UNLICENSED\npragma solidity {version};\n\n"
            f"contract {STUB_NAME} {{\n    {declarations}\n\n{ctx}\n\n{fn}\n}}\n")


def _classify(errors: list[dict]) -> str:
    types = [e.get("type", "") for e in errors]
    for t, s in (("ParserError", "parser_error"), ("SyntaxError", "parser_error"),
                 ("DeclarationError", "declaration_error"), ("TypeError", "type_error")):
        if t in types:
            return s
    return "other_error"


def compile_many(units: list[tuple[str, str, "str | dict[str, str]"]], *, timeout_s: float = 300.0,
                 chunk: int = 40) -> dict[str, CompileResult]:
    """units: (key, solc version wanted, stub source or {unit path: content}). One node process per chunk of one
    version."""
    installed = corpus.installed_solc()
    results: dict[str, CompileResult] = {}
    by_version: dict[str, list[tuple[str, str]]] = {}
    for key, want, source in units:
        v = corpus.nearest_installed(want, installed)
        if v is None:
            results[key] = CompileResult(False, "no_compiler", "", f"no solcjs for {want!r} in node_modules")
            continue
        by_version.setdefault(v, []).append((key, source))
    for v, items in by_version.items():
        for i in range(0, len(items), chunk):
            part = items[i:i + chunk]
            inputs = [(k, standard_input(src)) for k, src in part]
            chunk_timeout = timeout_s * (1 + sum(isinstance(src, dict) for _, src in part) / 4)
            for k, out in corpus.run_solcjs(v, inputs, chunk_timeout).items():
                if isinstance(out, str):  # a wasm crash or timeout mid-chunk loses the rest of the chunk: per unit
                    results[k] = (CompileResult(False, "crash", v, out[len("solcjs: "):][:300]) if out.startswith("solcjs: ")
                                  else CompileResult(False, "timeout", v, "compiler process ended before this unit"))
                    continue
                errs = [{"type": e.get("type"), "message": (e.get("formattedMessage") or e.get("message") or "")[:400]}
                        for e in out.get("errors", []) if e.get("severity") == "error"]
                results[k] = CompileResult(False, _classify(errs), v, errs[0]["message"]) if errs else CompileResult(True, "ok", v)
    return results


def function_for_stub(code: str) -> str:
    """The first function of generated code (models sometimes add a contract wrapper or prose); raises
    ParseFailure if there is none."""
    return find_function(code).text


def compile_bytecode(source: str, version: str, *, optimize: bool = False, timeout_s: float = 120.0
                     ) -> dict[str, dict]:
    """Runtime bytecode and method identifiers of every contract in one source: {name: {"bytecode": hex,
    "selectors": {signature: "0x…"}}}. For baselines that need bytecode (sevm, panoramix) when records lack it.
    Raises ValueError with solc's first error."""
    v = corpus.nearest_installed(version)
    if v is None:
        raise ValueError(f"no solcjs for {version!r} in node_modules")
    out = corpus.run_solcjs(v, [("C", standard_input({"C.sol": source}, codegen=True, optimize=optimize))],
                            timeout_s)["C"]
    if isinstance(out, str):
        raise ValueError(f"solc {v}: {out}")
    errs = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errs or "contracts" not in out:
        raise ValueError(f"solc {v}: {errs[0].get('formattedMessage') if errs else 'no contracts in the output'}")
    return {name: {"bytecode": c["evm"]["deployedBytecode"]["object"],
                   "selectors": {s: "0x" + h for s, h in c["evm"]["methodIdentifiers"].items()}}
            for name, c in out["contracts"]["C.sol"].items()}


class OriginalUnits:
    """The record's own compile unit: its package (tacsol.corpus.RecordUnits: the manifest, fetched into the npm
    cache) and the import closure of its file, with the original function's text replaced by the generated one. This
    checks "compiles in place of the original" with every inherited declaration, library and import present.
    `unit(record, function_text)` returns {unit path: content} or None (package not in the manifest, fetch failed,
    an import missing, reference text not found exactly once in the file) — the caller then falls back to the stub."""

    def __init__(self, fetch: bool = True, units: corpus.RecordUnits | None = None):
        self.units = units or corpus.RecordUnits(fetch=fetch)

    def sources(self, rec: dict) -> dict[str, str] | None:
        try:
            return self.units.closure(rec.get("package") or "", rec.get("file") or "")
        except corpus.UnitNotFound:
            return None

    def unit(self, rec: dict, function_text: str) -> dict[str, str] | None:
        srcs = self.sources(rec)
        ref = rec.get("solidity") or ""
        if srcs is None or not ref:
            return None
        text = srcs[rec["file"]]
        if text.count(ref) != 1:
            return None
        return {**srcs, rec["file"]: text.replace(ref, function_text, 1)}
