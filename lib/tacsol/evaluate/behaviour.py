"""Behavioural equivalence: does the generated function do what the bytecode does?

Per function (docs/evaluation.md, "Behaviour"):
  1. The record's own compile unit is rebuilt (package sources from tacsol.corpus, main file `unit_main`, the
     record's solc version and settings) and compiled: that runtime is the original.
  2. The generated function is added to the contract that declares the reference, right after it, under the name
     `tacsol_candidate`, so that inherited state, modifiers, libraries and private members are in scope. Adding
     (not replacing) keeps every interface the contract implements satisfied and the storage layout unchanged.
  3. Names the generated code uses that the unit does not declare are bound by what the bytecode shows, never by
     spelling: a state variable to the declared variable at a storage slot the original touches (mapping/array
     bases traced through SHA3 preimages), an event to one whose topic the original emits, a function, modifier
     or error to one of the same arity (ranked by types and the original's call order; equally supported
     alternatives are tried when the first assignment differs). Every binding is recorded; a name with no
     binding is `untestable`.
     Generated code that declares its own state has those declarations dropped, so its names bind to the
     variables at the slots the bytecode uses.
  4. Original and recompiled runtime run in py-evm (tacsol.evaluate.execution) from the same state: a slot's
     value and a called address's code are pure functions of (slot or address, storage state), applied when
     first touched (seed_value, seed_code). Five storage states, 20 cases: boundary and random ABI arguments,
     the owner and other callers, with and without value when payable. When the original reverts on all of
     them, a search (search_success) sets the inputs its comparisons read (arguments, caller, value, slots) to
     the other operands until it returns; the cases found are run on both sides.
  5. Per case: success, return or revert data, storage changes by slot, logs, external calls, balance. The first
     differing case is printed.

Results: `equivalent`, `differs` (with the first differing case) or `untestable` (with a reason key). A function
whose code halts only by reverting (reverts_by_construction) is compared by its revert data alone.

Speed: candidates of one unit compile in one solc call, by the legacy pipeline without optimizer, in solcjs
processes kept running (SolcServer); each runtime's py-evm state is built once (execution._Machine); the py-evm
stage (traces, searches, comparisons) runs in a process per core (Workers) beside the compiles; the branch search
runs only for originals a candidate agrees with, and originals' traces are cached on disk."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from .. import corpus, evm, paths
from ..lift.emit import CONST
from . import abi, layout
from .execution import BLOCK, CONTRACT, RESPONDER_CODE, ZERO_RESPONDER_CODE, Outcome, execute
from .repair import NOTE as REPAIR_NOTE, apply_repairs, repairs_for, source_at
from .solidity import ParseFailure, find_function, match_close

CANDIDATE = "tacsol_candidate"
# the shipped sample's test units (tools/sample_units.py): the harness runs on the sample without the npm cache
SAMPLE_UNITS = Path(__file__).resolve().parent.parent / "data" / "sample" / "units.json.gz"
N_CASES = 20      # at least 16 (issue 13); 4 per storage state
N_VARIANTS = 5    # storage states (seed_value): case i runs from state i % N_VARIANTS
PRIVILEGED = (1, 4)   # the states where the first caller owns the contract
CALLERS = [bytes.fromhex(h * 20) for h in ("a1", "b2", "c3", "d4")]  # the first three may own the contract
RESPONDERS = tuple(CALLERS[1:3])   # also hold code that answers every call (execution.RESPONDER_CODE)
STATUSES = ("equivalent", "differs", "untestable")
UNTESTABLE_REASONS = {
    "no_unit": "the record's compile unit cannot be rebuilt (package or main file not available)",
    "reference_not_found": "the reference text does not occur exactly once in its file",
    "original_compile": "the original unit does not compile with the record's settings",
    "no_contract": "the deployed contract is not in the compiled unit",
    "special_function": "fallback/receive/constructor references are not callable by a selector",
    "unparsable": "no function in the generated text",
    "no_output": "no generation (empty, missing or failed)",
    "struct_getter": "a getter of a struct (its ABI is the struct's members)",
    "unbound_name": "a name of the generated code could not be bound to a declaration the bytecode shows",
    "did_not_compile": "the generated function does not compile in place, after binding",
    "not_external": "the generated function is internal or private: no selector to call",
    "reference_timeout": "the original itself runs past the time limit",
    "reverts_only": "the original reverted on every case, those the state search found included (no state or input "
                    "the harness builds reaches its success path), though its code can return, and the generated "
                    "code reverted alike: equivalence is not shown",
    "bad_signature": "the record's signature has types the harness cannot encode",
}


@dataclass
class BehaviourResult:
    status: str                       # equivalent | differs | untestable
    reason: str = ""                  # untestable: a key of UNTESTABLE_REASONS
    detail: str = ""                  # differs: the first differing case; untestable: the specifics
    bindings: list[str] = field(default_factory=list)  # "name -> bound (evidence)"
    cases: int = 0                    # cases compared
    reference_ok: int = 0             # of those, cases where the original returned without reverting

    def to_dict(self) -> dict:
        return asdict(self)

    def columns(self) -> dict:
        """The per-function table's behaviour columns (functions.parquet)."""
        return {"behaviour": self.status, "behaviour_reason": self.reason, "behaviour_detail": self.detail,
                "behaviour_bindings": "; ".join(self.bindings), "behaviour_cases": self.cases}


# ------------------------------------------------------------------------------------------------ units
def record_units(fetch: bool = False) -> corpus.RecordUnits:
    """Records' compile units (tacsol.corpus), the shipped sample's test units first: the harness runs on the sample
    without the npm cache. `fetch` downloads missing packages."""
    return corpus.RecordUnits(fetch=fetch, bundle=load_bundle(SAMPLE_UNITS) if SAMPLE_UNITS.exists() else None)


def load_bundle(path) -> dict:
    return json.loads(gzip.decompress(open(path, "rb").read()))


# ---------------------------------------------------------------------------------------------- compile
def _setting(rec: dict) -> tuple[str, corpus.Setting]:
    parts = (rec.get("settings") or "").split("/")
    version = rec.get("solc_version") or parts[0]
    name = parts[1] if len(parts) > 1 else "noopt"
    evm = parts[2] if len(parts) > 2 and parts[2] not in ("", "default") else ""
    return version, corpus.Setting.parse(name + (f"@{evm}" if evm else ""))


def _input(sources: dict[str, str], main: str, contract: str, setting: corpus.Setting, version: str,
           codegen: bool, with_ast: bool = False) -> dict:
    want = ["evm.deployedBytecode.object", "evm.methodIdentifiers", "abi"] if codegen else []
    if codegen and corpus.version_tuple(version) >= (0, 5, 13):
        want.append("storageLayout")
    if codegen and corpus.version_tuple(version) >= (0, 6, 5):
        want.append("evm.deployedBytecode.immutableReferences")
    sel: dict = {main: {contract: want}} if codegen else {"*": {"*": []}}
    if with_ast:
        sel.setdefault("*", {})[""] = ["ast"]
    settings = {**setting.solc_settings(version), "outputSelection": sel}
    return {"language": "Solidity", "sources": {p: {"content": t} for p, t in sorted(sources.items())},
            "settings": settings}


class SolcServer:
    """One node process of solcjs `version` kept running (corpus.NODE_HELPER, solc_compile.js, in serve mode):
    standard-JSON inputs in, outputs back, one line each. Restarted after a crash, a timeout, or `max_compiles` compiles (solcjs's memory only grows)."""

    def __init__(self, version: str, max_compiles: int = 300):
        self.version, self.max_compiles = version, max_compiles
        self.proc = None
        self.lines = None
        self.n = 0

    def _start(self) -> None:
        import queue
        import subprocess
        import threading

        # --liftoff-only: V8's baseline WebAssembly compiler alone. Tiering solc up to TurboFan costs ~3 s of CPU per
        # process, more than it saves over a few hundred compiles (0.8.6, 5 compiles: 1.3 s of CPU vs 2.1 s)
        self.proc = subprocess.Popen(["node", "--max-old-space-size=3072", "--liftoff-only", str(corpus.NODE_HELPER),
                                      str(paths.node_modules() / f"solc-{self.version}")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines, self.n = queue.Queue(), 0
        proc, lines = self.proc, self.lines

        def read():   # a reader thread: the caller waits on the queue with a timeout
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)
        threading.Thread(target=read, daemon=True).start()

    def compile(self, inp: dict, timeout_s: float) -> dict | str:
        import queue

        if self.proc is None or self.proc.poll() is not None or self.n >= self.max_compiles:
            self.close()
            self._start()
        self.n += 1
        try:
            self.proc.stdin.write(json.dumps({"key": self.n, "input": inp}).encode() + b"\n")
            self.proc.stdin.flush()
            line = self.lines.get(timeout=timeout_s)
        except (OSError, queue.Empty) as exc:
            self.close()
            return f"crash: {'timeout after %.0fs' % timeout_s if isinstance(exc, queue.Empty) else exc}"
        if line is None:
            self.close()
            return "crash: solcjs exited"
        rec = json.loads(line)
        return rec["output"] if "output" in rec else f"solcjs: {rec.get('error')}"

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except OSError:
                pass
            self.proc = None


class Compiler:
    """solcjs compiles, cached on disk by input hash (cache_dir()/behaviour), run by `workers` persistent solcjs
    processes per version in use (SolcServer): one compile at a time each, as solcjs is single-threaded."""

    def __init__(self, timeout_s: float = 240.0, workers: int | None = None, keep_versions: int = 2):
        self.timeout_s = timeout_s
        self.workers = workers or os.cpu_count() or 1
        self.keep_versions = keep_versions     # per worker: servers of other versions are closed
        self.dir = paths.cache_dir() / "behaviour"
        self._servers: list[dict[str, SolcServer]] = [{} for _ in range(self.workers)]

    def _path(self, key: str):
        return self.dir / key[:2] / f"{key}.json.gz"

    @staticmethod
    def key(version: str, inp: dict) -> str:
        return hashlib.sha256(json.dumps([version, inp], sort_keys=True).encode()).hexdigest()

    def _server(self, worker: int, version: str) -> SolcServer:
        servers = self._servers[worker]
        s = servers.pop(version, None) or SolcServer(version)
        servers[version] = s                  # most recently used last
        while len(servers) > self.keep_versions:
            servers.pop(next(iter(servers))).close()
        return s

    def close(self) -> None:
        for servers in self._servers:
            for s in servers.values():
                s.close()
            servers.clear()

    def __del__(self):
        self.close()

    def many(self, jobs: list[tuple[str, str, dict]], progress: str = "") -> dict[str, dict | str]:
        """jobs: (name, version, standard input) -> name: solc output (trimmed to errors/contracts/sources-ast)
        or an error string. `progress`: a progress bar of that name over the compiles not cached."""
        import collections
        import threading

        from tqdm.auto import tqdm

        from ..ioutil import atomic_write_bytes

        out: dict[str, dict | str] = {}
        todo: list[tuple[str, str, str, dict]] = []
        for name, version, inp in jobs:
            key = self.key(version, inp)
            p = self._path(key)
            if p.exists():
                try:
                    out[name] = json.loads(gzip.decompress(p.read_bytes()))
                    continue
                except (OSError, ValueError, EOFError):
                    pass
            v = corpus.nearest_installed(version)
            if v is None:
                out[name] = f"no solcjs for {version!r}"
                continue
            todo.append((v, name, key, inp))
        if not todo:
            return out
        by_version: dict[str, collections.deque] = {}
        for item in todo:
            by_version.setdefault(item[0], collections.deque()).append(item)
        lock = threading.Lock()
        serving: dict[str, int] = {}   # version -> workers on it
        bar = tqdm(total=len(todo), desc=progress, unit="unit", disable=not progress)

        def next_job(current: str | None):
            """The worker's next compile: its own version's while any is left; then a version no worker serves
            (the most jobs first); then help with the one with most left. A solcjs start costs ~0.5 CPU s: a
            queue sorted by version had every worker start a server for every version."""
            with lock:
                if current is not None and by_version.get(current):
                    return by_version[current].popleft()
                if current is not None:
                    serving[current] -= 1
                left = [v for v, d in by_version.items() if d]
                if not left:
                    return None
                v = max(left, key=lambda v: (not serving.get(v), len(by_version[v])))
                serving[v] = serving.get(v, 0) + 1
                return by_version[v].popleft()

        def work(w: int) -> None:
            current = None
            while True:
                job = next_job(current)
                if job is None:
                    return
                v, name, key, inp = job
                current = v
                r = self._server(w, v).compile(inp, self.timeout_s)
                if isinstance(r, dict):
                    r = {"errors": [e for e in r.get("errors", []) if e.get("severity") == "error"],
                         "contracts": r.get("contracts", {}),
                         "sources": {s: {"ast": d.get("ast") or d.get("legacyAST")} for s, d in
                                     (r.get("sources") or {}).items() if d.get("ast") or d.get("legacyAST")}}
                    atomic_write_bytes(self._path(key), gzip.compress(json.dumps(r).encode(), 5))
                with lock:
                    out[name] = r
                    bar.update(1)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(min(self.workers, len(todo)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bar.close()
        return out


# ------------------------------------------------------------------------------------------- the contract
# bump when Original changes: its cached copies (Harness._original_path) are then ignored
ORIGINAL_FORMAT = "o6"
# bump when what a trace holds or how it is made changes (cases, seeding, search, Outcome): cached traces then rerun
TRACE_FORMAT = "t9"


@dataclass
class Original:
    code: bytes
    selectors: dict[str, str]          # signature -> 0x…
    layout: list[dict]                 # storageLayout entries: label, slot, offset, type
    types: dict[str, dict]             # storageLayout types
    events: dict[str, tuple[str, int]]   # name -> (topic0 hex, arity)
    functions: dict[str, int]          # name -> arity (the contract, its bases, free functions)
    modifiers: dict[str, int]
    errors: dict[str, tuple[str, int]]   # name -> (selector hex, arity)
    structs: set[str]
    private_vars: set[tuple[str, str]] = field(default_factory=set)   # ("file:Contract", name)
    returning: set[str] = field(default_factory=set)   # functions that return a value
    # (params, returns) of functions and modifiers (a modifier's parameters type the calls written in its arguments)
    signatures: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    # immutable variables of the contract and its bases, in declaration (AST id) order: (id, name, type); `code`
    # holds them set (immutable_word), as the constructor would have
    immutables: list[tuple[int, str, str]] = field(default_factory=list)
    # every declaration of an overloaded name (signatures and functions keep the first): name -> [(params, returns)]
    overloads: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = field(default_factory=dict)
    # functions every implementation of which is `external`: a bare call `f()` cannot name them
    external: set[str] = field(default_factory=set)


def _types_of(params: dict | None) -> tuple[str, ...]:
    return tuple(((p.get("typeDescriptions") or {}).get("typeString") or "").replace(" storage ref", "")
                 .replace(" memory", "").replace(" calldata", "").replace(" storage pointer", "")
                 .replace("address payable", "address") for p in (params or {}).get("parameters") or [])


def _declared(ast_sources: dict, main: str, contract: str):
    """Declarations visible in `contract` (its linearized bases, and free functions): functions and modifiers by
    name -> (parameter types, return types), errors, structs, private variables of each base."""
    private: set[tuple[str, str]] = set()
    immutables: list[tuple[str, int, str, str]] = []   # (where, id, name, type)
    errors: dict[str, tuple[str, int]] = {}
    structs: set[str] = set()
    contracts: dict[int, dict] = {}          # id -> {"where", "bases", "functions", "modifiers"}
    free: dict[str, dict] = {"functions": {}, "modifiers": {}}
    target: list[int] = []

    def walk(n, path, owner):
        if isinstance(n, dict):
            t = n.get("nodeType")
            if t == "ContractDefinition":
                owner = contracts.setdefault(n["id"], {"where": f"{path}:{n.get('name')}", "functions": {},
                                                       "modifiers": {}, "bases": n.get("linearizedBaseContracts") or []})
                if path == main and n.get("name") == contract:
                    target.append(n["id"])
            elif t == "VariableDeclaration" and n.get("stateVariable"):
                if n.get("visibility") == "private":
                    private.add(((owner or {}).get("where", ""), n.get("name")))
                if n.get("mutability") == "immutable":
                    immutables.append(((owner or {}).get("where", ""), int(n["id"]), n.get("name") or "",
                                       (n.get("typeDescriptions") or {}).get("typeString") or ""))
            if t == "FunctionDefinition" and n.get("name"):
                sig = (_types_of(n.get("parameters")), _types_of(n.get("returnParameters")))
                (owner or free)["functions"].setdefault(n["name"], sig)
                seen = (owner or free).setdefault("overloads", {}).setdefault(n["name"], [])
                if sig not in seen:
                    seen.append(sig)
                if n.get("implemented", n.get("body") is not None):
                    (owner or free).setdefault("visibility", {}).setdefault(n["name"], set()).add(n.get("visibility"))
            elif t == "ModifierDefinition":
                (owner or free)["modifiers"].setdefault(n["name"], (_types_of(n.get("parameters")), ()))
            elif t == "ErrorDefinition":
                errors.setdefault(n["name"], ("", len((n.get("parameters") or {}).get("parameters") or [])))
            elif t == "StructDefinition":
                structs.add(n["name"])
            for v in n.values():
                if isinstance(v, (dict, list)):
                    walk(v, path, owner)
        elif isinstance(n, list):
            for v in n:
                walk(v, path, owner)

    for path, src in ast_sources.items():
        walk(src.get("ast"), path, None)
    scope = contracts[target[0]]["bases"] if target else list(contracts)
    in_scope = {(contracts.get(cid) or {}).get("where") for cid in scope}
    private = {(w, n) for w, n in private if w in in_scope}   # siblings in the same file are not bases
    immutable = sorted((i, n, t) for w, i, n, t in immutables if w in in_scope)
    functions, modifiers = dict(free["functions"]), dict(free["modifiers"])
    overloads: dict[str, list] = {k: list(v) for k, v in (free.get("overloads") or {}).items()}
    visibility: dict[str, set] = {}
    for cid in reversed(scope):          # most derived last: its declaration wins
        c = contracts.get(cid) or {}
        for k, v in (c.get("visibility") or {}).items():
            visibility.setdefault(k, set()).update(v)
        functions.update(c.get("functions") or {})
        modifiers.update(c.get("modifiers") or {})
        for k, sigs in (c.get("overloads") or {}).items():
            have = overloads.setdefault(k, [])
            have += [x for x in sigs if x not in have]
    overloads = {k: v for k, v in overloads.items() if len(v) > 1}
    external = {k for k, v in visibility.items() if v == {"external"}}
    return functions, modifiers, errors, structs, private, immutable, overloads, external


def _is_address(type_: str) -> bool:
    return type_.startswith(("address", "contract ", "interface "))


def immutable_word(name: str, type_: str, rank: int) -> int:
    """The value the harness gives an immutable variable, as a constructor would on chain: an address (a token,
    a coordinator, a router) is one of the RESPONDERS, which hold code answering every call and are also callers
    (so `msg.sender == i_router` holds on their cases), alternating by declaration rank; a bool is true; an
    integer is a small positive number; bytes and anything else a fixed pseudo-random word."""
    h = int.from_bytes(evm.keccak256(f"immutable:{name}".encode()), "big")
    if _is_address(type_):
        return int.from_bytes(RESPONDERS[rank % len(RESPONDERS)], "big")
    if type_ == "bool":
        return 1
    if re.fullmatch(r"u?int\d*", type_):
        return 1 + h % 1000
    if m := re.fullmatch(r"bytes(\d+)", type_):
        low = 8 * (32 - int(m.group(1)))
        return h >> low << low   # left-aligned, as the value sits on the stack
    return 0 if type_.startswith("enum ") else h


def _fill_immutables(code: bytes, references: dict | None, immutables: list[tuple[int, str, str]]) -> bytes:
    """`code` with its immutables set (immutable_word). A candidate's compile numbers the AST anew (its function
    shifts the ids after it) but keeps the declarations' order, so its references map by rank onto the
    original's immutables that are read (or, if the counts differ, all of them)."""
    if not references or not immutables:
        return code
    ids = sorted(references, key=int)
    read = [x for x in immutables if str(x[0]) in references]
    pool = read if len(read) == len(ids) else immutables
    words, addresses = {}, 0
    for ident, (_, name, type_) in zip(ids, pool):
        words[ident] = immutable_word(name, type_, addresses)
        addresses += _is_address(type_)
    return evm.set_immutables(code, references, words)


def _original_from(out: dict, main: str, contract: str) -> Original | None:
    c = ((out.get("contracts") or {}).get(main) or {}).get(contract)
    if not c or not c["evm"]["deployedBytecode"]["object"]:
        return None
    code = evm.hex_bytes(evm.link_placeholders(c["evm"]["deployedBytecode"]["object"]))
    events = {}
    for e in c.get("abi") or []:
        if e.get("type") == "event":
            sig = f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})"
            events.setdefault(e["name"], (evm.keccak256(sig.encode()).hex(), len(e["inputs"])))
    sigs, mods, errors, structs, private, immutables, overloads, external = _declared(out.get("sources") or {}, main,
                                                                                      contract)
    code = _fill_immutables(code, c["evm"]["deployedBytecode"].get("immutableReferences"), immutables)
    for e in c.get("abi") or []:
        if e.get("type") == "error":
            sig = f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})"
            errors[e["name"]] = (evm.selector(sig)[2:], len(e["inputs"]))
    # solc < 0.5.13 outputs no storageLayout: the same layout, computed from the AST by solc's rules
    sl = c.get("storageLayout") or layout.storage_layout(out.get("sources") or {}, main, contract) or {}
    return Original(code, {k: "0x" + v for k, v in (c["evm"].get("methodIdentifiers") or {}).items()},
                    sl.get("storage") or [], sl.get("types") or {}, events, {f: len(p) for f, (p, _) in sigs.items()},
                    {m: len(p) for m, (p, _) in mods.items()}, errors, structs, private,
                    {f for f, (_, r) in sigs.items() if r}, {**mods, **sigs}, immutables, overloads, external)


def _abi_type(i: dict) -> str:
    t = i["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in i.get("components", [])) + ")" + t[5:]
    return t


# ----------------------------------------------------------------------------------------- the candidate
_ATTR_STRIP = re.compile(r"\boverride\s*(\([^)]*\))?|\bvirtual\b")


def candidate_function(generated: str, original: Original) -> tuple[str | None, str]:
    """(function text named CANDIDATE, "") or (None, untestable reason)."""
    try:
        fn = find_function(generated)
    except ParseFailure:
        return None, "unparsable"
    if fn.kind == "getter":
        return _getter_function(fn, original)
    if fn.kind != "function":
        return None, "special_function"
    if re.search(r"\b(internal|private)\b", fn.attributes):
        return None, "not_external"
    head = fn.header
    m = re.search(r"\bfunction\s+([A-Za-z_$][\w$]*|[0-9a-f]{8})\s*\(", head)
    head = head[:m.start(1)] + CANDIDATE + head[m.end(1):] if m else head
    head = _ATTR_STRIP.sub("", head)
    body = fn.text[len(fn.header):]
    if _only_declaration(original, fn.name, len(fn.params)):
        body = _calls_renamed(body, fn.name, len(fn.params), CANDIDATE)
    return head + body, ""


def _only_declaration(original: Original, name: str, arity: int) -> bool:
    """No other overload of `name` takes `arity` arguments: a call `name(...)` of that arity is the function itself
    (Coordinator's getId(bytes) calls getId(ServiceAgreement), which solc tells apart by type)."""
    return sum(len(p) == arity for p, _ in original.overloads.get(name, ())) <= 1


def _calls_renamed(body: str, name: str, arity: int, new: str) -> str:
    """`body` with its calls of `name` (or `this.name`) taking `arity` arguments calling `new`: a function that calls
    itself recurses (the original, which the unit keeps under that name beside the candidate, must not answer)."""
    out, last = [], 0
    for m in re.finditer(rf"(?:(?<![.\w$])|(?<=\bthis\.)){re.escape(name)}(?=\s*\()", body):
        close = match_close(body, body.index("(", m.end()), "(", ")")
        inner = body[body.index("(", m.end()) + 1:close].strip() if close > 0 else ""
        if close > 0 and (len(evm.split_types(inner)) if inner else 0) == arity:
            out += [body[last:m.start()], new]
            last = m.end()
    return "".join(out) + body[last:]


def _getter_function(fn, original: Original) -> tuple[str | None, str]:
    m = re.match(r"\s*((?:mapping\s*\(.*\)|[A-Za-z_$][\w$.]*)(?:\s*\[\d*\])*)\s+public\b", fn.text, re.S)
    t = m.group(1).strip() if m else ""
    idx, args, is_array = [], [], []
    while True:
        mm = re.match(r"mapping\s*\(", t)
        if mm:
            close = match_close(t, mm.end() - 1, "(", ")")
            key, _, val = t[mm.end():close].partition("=>")
            args.append(f"{key.strip().split()[0]} k{len(args)}")
            idx.append(f"k{len(idx)}")
            is_array.append(False)
            t = val.strip()
            continue
        am = re.match(r"(.*)\[\d*\]$", t, re.S)
        if am:  # outer dimension last in the type text, first in the access
            t = am.group(1).strip()
            args.insert(0, f"uint256 k{len(args)}")
            idx.insert(0, f"k{len(idx)}")
            is_array.insert(0, True)
            continue
        break
    if t in original.structs or t.split(".")[-1] in original.structs:
        return None, "struct_getter"
    loc = " memory" if t in ("string", "bytes") or t.endswith("]") else ""
    # a getter reverts without data past an array's end (an indexing expression panics in 0.8): bounds first
    checks = "".join(f"require({k} < {fn.name}{''.join(f'[{x}]' for x in idx[:j])}.length); "
                     for j, (k, arr) in enumerate(zip(idx, is_array)) if arr)
    access = fn.name + "".join(f"[{k}]" for k in idx)
    return (f"function {CANDIDATE}({', '.join(args)}) external view returns ({t}{loc}) {{ {checks}return {access}; }}",
            "")


def _site(sources: dict[str, str], file: str, reference: str, contract: str = "") -> tuple[int, str] | None:
    """(offset just past the reference in `file`, "file:Contract" that declares it), or None when the reference
    does not occur exactly once (in the body of `contract`, for a text several contracts of its file share)."""
    text = sources.get(file)
    if text is None or not reference:
        return None
    at = [m.start() for m in re.finditer(re.escape(reference), text)]
    blank = corpus.strip_comments(text, keep_length=True)   # an apostrophe in a comment must not unbalance braces
    if len(at) > 1 and contract:
        m = re.search(rf"\b(contract|abstract\s+contract)\s+{re.escape(contract)}\b[^{{]*{{", blank)
        end = match_close(blank, m.end() - 1) if m else -1
        at = [a for a in at if m and m.end() <= a < end]
    if len(at) != 1:
        return None
    home = ""
    for m in re.finditer(r"\b(?:contract|library)\s+([A-Za-z_$][\w$]*)[^{;]*{", blank[:at[0]]):
        if match_close(blank, m.end() - 1) > at[0]:
            home = f"{file}:{m.group(1)}"
    return at[0] + len(reference), home


def place(sources: dict[str, str], file: str, reference: str, candidate: str, contract: str = ""
          ) -> tuple[dict[str, str], str] | None:
    """(the unit with `candidate` right after the reference, "file:Contract" it was placed in). A reference text
    that occurs in several contracts of its file (mocks) is placed in the body of `contract` when it occurs there
    once."""
    got = place_many(sources, [(file, reference, candidate, contract)])
    return None if got is None else (got[0], got[1][0][3])


def place_many(sources: dict[str, str], items: list[tuple[str, str, str, str]]
               ) -> tuple[dict[str, str], list[tuple[str, int, int, str]]] | None:
    """Several candidates placed in one unit, each right after its reference: items are (file, reference,
    candidate, contract). Returns (the unit, per item (file, byte start, byte end, home)): the byte span of each
    candidate in its file, which solc's error locations are in; None when a reference is not found once."""
    sites = []
    for file, reference, _, contract in items:
        got = _site(sources, file, reference, contract)
        if got is None:
            return None
        sites.append(got)
    out = dict(sources)
    spans: list = [None] * len(items)
    for file in {it[0] for it in items}:
        text, parts, last = sources[file], [], 0
        order = sorted((sites[k][0], k) for k, it in enumerate(items) if it[0] == file)
        pos = 0   # bytes written so far
        for cut, k in order:
            head = text[last:cut]
            parts.append(head)
            pos += len(head.encode())
            pre, body = "\n\n    ", items[k][2]
            spans[k] = (file, pos + len(pre.encode()), pos + len(pre.encode()) + len(body.encode()), sites[k][1])
            piece = pre + body + "\n"
            parts.append(piece)
            pos += len(piece.encode())
            last = cut
        parts.append(text[last:])
        out[file] = "".join(parts)
    return out, spans


def _candidate_runtime(out: dict, main: str, contract: str, name: str = CANDIDATE,
                       immutables: list[tuple[int, str, str]] = ()) -> tuple[bytes, str] | None:
    """(runtime, "0x" selector) of the candidate function `name` in a compile output without errors, or None;
    the runtime with the original's `immutables` set as in the original's."""
    c = (out.get("contracts", {}).get(main) or {}).get(contract) or {}
    sels = [v for k, v in (c.get("evm", {}).get("methodIdentifiers") or {}).items() if k.startswith(name + "(")]
    if not sels:
        return None
    deployed = c["evm"]["deployedBytecode"]
    code = evm.hex_bytes(evm.link_placeholders(deployed["object"]))
    return _fill_immutables(code, deployed.get("immutableReferences"), list(immutables)), "0x" + sels[0]


def _codegen_error(e: dict) -> bool:
    """An error of code generation (stack too deep, ...), which another pipeline or the optimizer may avoid."""
    return e.get("type") in ("CompilerError", "CodeGenerationError", "YulException", "InternalCompilerError") or \
        "Stack too deep" in (e.get("message") or "")


def _named(candidate: str, name: str) -> str:
    """The candidate (its function named CANDIDATE) under another name."""
    return candidate if name == CANDIDATE else re.sub(rf"\b{CANDIDATE}\s*\(", name + "(", candidate, count=1)


# --------------------------------------------------------------------------------------------- binding
_UNDECLARED = ("Undeclared identifier", "Identifier not found or not unique", "not found or not visible")


def undeclared_names(out: dict, sources: dict[str, str]) -> list[str] | None:
    """Names solc could not resolve, or None when another error stops compilation."""
    names, other = [], False
    for e in out.get("errors", []):
        msg = e.get("message") or ""
        txt = source_at(e, sources)
        if any(u in msg for u in _UNDECLARED) and txt:
            name = re.match(r"[A-Za-z_$][\w$]*", txt)
            if name and name.group(0) not in names:
                names.append(name.group(0))
        else:
            other = True
    return None if other and not names else names


def _role(name: str, text: str) -> str:
    if re.search(rf"\bemit\s+{re.escape(name)}\s*\(", text):
        return "event"
    if re.search(rf"\brevert\s+{re.escape(name)}\s*\(", text):
        return "error"
    if name in _modifier_names(text):
        return "modifier"
    if re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text):
        return "function"
    return "variable"


def _modifier_names(text: str) -> set[str]:
    """The names the function's header lists after its parameters, outside any parentheses: its modifiers (and
    keywords). A name inside a modifier's arguments (`onlyRole(getRoleAdmin(role))`) is a call or a value."""
    head = text[:text.find("{")] if "{" in text else text
    m = re.search(r"\bfunction\b[^(]*\(", head)
    if not m:
        return set()
    close = match_close(head, m.end() - 1, "(", ")")
    if close < 0:
        return set()
    rest = head[close + 1:]
    depth, top = 0, []
    for ch in rest:
        depth += (ch == "(") - (ch == ")")
        top.append(ch if depth == 0 or (ch == "(" and depth == 1) else " ")
    return set(re.findall(r"[A-Za-z_$][\w$]*", "".join(top)))


def _arity(name: str, text: str) -> int:
    m = re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text)
    if not m:
        return 0
    close = match_close(text, m.end() - 1, "(", ")")
    inner = text[m.end():close].strip()
    return 0 if not inner else len(evm.split_types(inner))


def _base(slot: int, pre: dict) -> tuple[int, int]:
    """(declared base slot, mapping/array depth) of a traced slot."""
    depth, seen = 0, set()
    while slot not in seen:
        seen.add(slot)
        if slot in pre:
            slot, depth = pre[slot][1], depth + 1
            continue
        hit = next((slot - d for d in range(1, 4) if slot - d in pre), None)  # struct member past a hashed base
        if hit is None:
            break
        slot, depth = pre[hit][1], depth + 1
    return slot, depth


_TAC_SLOT = re.compile(rf"\b(sload|sstore|storagestring)\(({CONST})\b")   # level 3 reads a string whole
# a mapping's base slot written next to its key before keccak256(0x0, 0x40); an array's data at keccak256 of its slot
_TAC_MAPPING = re.compile(r"\bmstore\(0x20, (0x[0-9a-f]{1,8})\)")
_TAC_ARRAY = re.compile(r"\bmstore\(0x0, (0x[0-9a-f]{1,8})\)\n(?:.*\n){0,2}?.*keccak256\(0x0, 0x20\)")
_TAC2_HASHED = re.compile(r"\b(?:mapping|array)\((0x[0-9a-f]{1,8}|\d{1,10})\)")   # level 2 names the hashed slots


def touched_variables(original: Original, outcomes: Iterable[Outcome], tac: str = "") -> list[dict]:
    """Declared state variables whose slot the original read or wrote, each with how (read, written, depth of
    indexing), in first-access order of the richest case (the one with most accesses), then the others; then
    the constant slots the function's TAC loads or stores that no case reached (a branch the cases missed)."""
    outs = sorted(outcomes, key=lambda o: -len(o.accesses))
    info: dict[int, dict] = {}
    for o in outs:
        for kind, s in o.accesses:
            b, d = _base(s, o.preimages)
            e = info.setdefault(b, {"read": False, "written": False, "depth": 0})
            e["read" if kind == "r" else "written"] = True
            e["depth"] = max(e["depth"], d)
    for op, slot in _TAC_SLOT.findall(tac):
        e = info.setdefault(int(slot, 0), {"read": False, "written": False, "depth": 0})
        e["written" if op == "sstore" else "read"] = True
    for slot in _TAC_MAPPING.findall(tac) + _TAC_ARRAY.findall(tac) + _TAC2_HASHED.findall(tac):   # no case reached
        if int(slot, 0) not in info:
            info[int(slot, 0)] = {"read": True, "written": False, "depth": 1}
    by_slot: dict[int, list[dict]] = {}
    for v in original.layout:
        by_slot.setdefault(int(v["slot"]), []).append(v)
    out: list[dict] = []
    for b, e in info.items():
        for v in by_slot.get(b, []):
            if all(v["label"] != x["label"] for x in out):
                out.append({**v, **e})
    return out


_SOL_TO_LAYOUT = {"string": "t_string_storage", "bytes": "t_bytes_storage", "address payable": "t_address_payable"}


def _layout_type(sol_type: str) -> str:
    """storageLayout's type label of a Solidity elementary type ("uint256" -> "t_uint256")."""
    t = sol_type.replace(" memory", "").replace(" calldata", "").replace(" storage", "").strip()
    t = {"uint": "uint256", "int": "int256"}.get(t, t)
    return _SOL_TO_LAYOUT.get(t, "t_" + t)


MEMBERS = "a value with members"   # _expected_return's type for a call whose result has a member read
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')


def _expected_return(name: str, text: str, renames: dict[str, str], original: Original) -> str:
    """The type a call `name(...)` must return where it is an argument of an already bound or declared call."""
    m = re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text)
    if not m:
        return ""
    close = match_close(text, m.end() - 1, "(", ")")
    member = re.match(r"\s*\.\s*([A-Za-z_$][\w$]*)", text[close + 1:]) if close > 0 else None
    if member and re.fullmatch(r"(?:add|sub|mul|div|mod)", member.group(1)):
        return "uint256"   # `f(a, b).sub(c)`: SafeMath's, bound to uint256
    if member and not _NUMERIC_METHODS.fullmatch(member.group(1)):
        return MEMBERS     # `f().isValid(...)`: a contract, an address or a struct
    local = re.search(r"\b((?:u?int|bytes)\d*|address|bool|string)\s+(?:memory\s+)?[A-Za-z_$][\w$]*\s*=\s*"
                      + re.escape(name) + r"\s*\(", text)
    if local:   # `uint256 amount = f(...)`
        return {"uint": "uint256", "int": "int256"}.get(local.group(1), local.group(1))
    local = re.search(r"\b([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\s+(?:memory|storage)\s+[A-Za-z_$][\w$]*\s*=\s*"
                      + re.escape(name) + r"\s*\(", text)
    if local and not re.fullmatch(r"(?:u?int|bytes)\d*|address|bool|string", local.group(1)):
        return "struct " + local.group(1)   # `Chainlink.Request memory req = f(...)`, as _types_of names it
    depth, k, i = 0, 0, m.start() - 1
    while i >= 0:
        c = text[i]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                if c != "(":
                    return ""
                outer = re.search(r"([A-Za-z_$][\w$]*)\s*$", text[:i])
                if not outer:
                    return ""
                params = original.signatures.get(renames.get(outer.group(1), outer.group(1)), ((), ()))[0]
                return params[k] if k < len(params) else ""
            depth -= 1
        elif c == "," and depth == 0:
            k += 1
        elif c in ";{}" and depth == 0:
            return ""
        i -= 1
    return ""


def _same_type(returns: tuple[str, ...], want: str) -> bool:
    """Whether a function returning `returns` gives the one value of type `want`; a struct named with or without its
    library or contract (`Request`, `Chainlink.Request`)."""
    if len(returns) != 1:
        return False
    if returns[0] == want or want == MEMBERS and returns[0].startswith(("contract ", "struct ", "address")):
        return True
    return want.startswith("struct ") and returns[0].startswith("struct ") and \
        returns[0].rsplit(".", 1)[-1] == want.rsplit(".", 1)[-1].removeprefix("struct ")


def _uses(name: str, text: str):
    """Each use of a name in code: (its match, the end of the index expressions after it, how many). Index
    expressions may nest (`flags[subjects[i]]` is one)."""
    for m in re.finditer(rf"(?<![.\w$]){re.escape(name)}(?![\w$])", text):
        j, d = m.end(), 0
        while True:
            k = j + len(text[j:]) - len(text[j:].lstrip())
            if k >= len(text) or text[k] != "[":
                break
            close = match_close(text, k, "[", "]")
            if close < 0:
                break
            j, d = close + 1, d + 1
        yield m, j, d


def _usage(name: str, text: str) -> tuple[int, bool]:
    """(indexing depth, written) of a name in code."""
    depth, written = 0, False
    for m, j, d in _uses(name, text):
        depth = max(depth, d)
        after = text[j:]
        if re.match(r"(?:\s*\.\s*\w+)?\s*(?:[-+*/|&^]?=(?!=)|\+\+|--)", after) or \
                re.match(r"\s*\.\s*(push|pop)\s*\(", after) or re.search(r"(\+\+|--|\bdelete\s+)$", text[:m.start()]):
            written = True
    return depth, written


# methods a library binds to integers (`using SafeMath for uint256`, SafeCast, Math, Strings): `x.add(y)` says
# nothing about x having members of its own
_NUMERIC_METHODS = re.compile(r"(?:try)?(?:add|sub|mul|div|mod)|to(?:U?int\d+|String|HexString)|max|min|average|"
                              r"ceilDiv|sqrt|log\d*|abs")
_TYPED_DECLARATION = re.compile(r"\b([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?)\s+(?:(?:memory|storage|calldata)\s+)?"
                                r"[A-Za-z_$][\w$]*\s*=\s*$")


@dataclass
class Shape:
    """What a name's uses in the candidate say about the variable it stands for: its deepest indexing, whether it
    is written, and at the element that indexing reaches the Solidity type the code gives it (assigned to or from
    a parameter or a typed local, returned alone), whether members are read from it (a contract, an address, a
    struct), whether it is used as an array (`.push(`, `.pop(`, `.length`) and whether as a number (compared with or
    combined with a number literal, incremented)."""
    depth: int = 0
    written: bool = False
    want: str = ""
    members: bool = False
    array: bool = False
    numeric: bool = False


def _shape(name: str, text: str) -> Shape:
    depth, written = _usage(name, text)
    sh = Shape(depth, written)
    try:
        fn = find_function(text)
        typed = {n: t for t, n in fn.params + fn.returns if n}
        single_return = fn.returns[0][0] if len(fn.returns) == 1 else ""
    except ParseFailure:
        typed, single_return = {}, ""
    typed.update({n: t for t, n in re.findall(r"\b((?:u?int|bytes)\d*|address|bool|string)\s+(?:memory\s+)?"
                                              r"([A-Za-z_$][\w$]*)\s*[=;]", text)})
    for m, j, d in _uses(name, text):
        if d != depth:   # only the fully indexed uses say what the element is
            continue
        after, before = text[j:].lstrip(), text[:m.start()].rstrip()
        member = re.match(r"\.\s*([A-Za-z_$][\w$]*)", after)
        if member and member.group(1) in ("push", "pop", "length"):
            sh.array = True
        elif member and not _NUMERIC_METHODS.fullmatch(member.group(1)):
            sh.members = True
        if re.match(r"(?:[-+*/%<>]|[=!<>]=|\+\+|--)\s*\d", after) or re.search(r"\d\s*(?:[-+*/%<>]|[=!<>]=)$", before) \
                or after.startswith(("++", "--")):
            sh.numeric = True
        if sh.want or member:
            continue
        if after.startswith(";"):
            decl = _TYPED_DECLARATION.search(before)
            lhs = re.search(r"([A-Za-z_$][\w$]*)\s*=\s*$", before)
            if re.search(r"\breturn\s*$", before) and single_return:
                sh.want = single_return
            elif decl and decl.group(1) not in ("return", "else"):
                sh.want = decl.group(1)   # `RequestConfig memory rc = name;`, `uint64 id = name;`
            elif lhs and lhs.group(1) in typed and not re.search(r"[=!<>]\s*$", before[:lhs.start()]):
                sh.want = typed[lhs.group(1)]
        rhs = re.match(r"=(?!=)\s*([A-Za-z_$][\w$]*)\s*;", after)
        made = re.match(r"=(?!=)\s*([A-Z][\w$]*(?:\.[A-Z][\w$]*)?)\s*\(", after)
        if not sh.want and rhs and rhs.group(1) in typed:
            sh.want = typed[rhs.group(1)]
        elif not sh.want and made:   # `x[k] = Request({...})`, `token = IERC20(a)`: a struct or a contract
            sh.want = made.group(1)
    return sh


def _element(type_label: str, depth: int, types: dict[str, dict]) -> str:
    """The storageLayout type a variable of `type_label` holds after `depth` index operations ("" if it cannot)."""
    for _ in range(depth):
        t = types.get(type_label) or {}
        type_label = t.get("value") or t.get("base") or ""
        if not type_label:
            return ""
    return type_label


def _type_fits(label: str, sol_type: str) -> int:
    """1 when a storageLayout type label is the Solidity type the code gives (elementary, or a struct, contract or
    enum by its name with or without its container: `Chainlink.Request`), -1 when it is of another kind (a number
    for a struct, an address for a string), 0 when of the same kind (uint128 where the code says uint256: an
    implicit conversion may join them)."""
    if label == _layout_type(sol_type):
        return 1
    short = sol_type.rsplit(".", 1)[-1]
    if re.match(rf"t_(?:struct|contract|enum)\((?:[\w$]+\.)?{re.escape(short)}\)", label):
        return 1
    return 0 if _kind(label) == _kind(_layout_type(sol_type)) else -1


def _kind(label: str) -> str:
    """A storageLayout type's kind, between which no implicit conversion goes ("" where unsure)."""
    for prefix, kind in (("t_uint", "int"), ("t_int", "int"), ("t_bool", "bool"), ("t_address", "address"),
                         ("t_contract", "address"), ("t_string", "bytes"), ("t_bytes_", "bytes"),
                         ("t_bytes", "fixed bytes"), ("t_struct", "struct"), ("t_mapping", "mapping"),
                         ("t_array", "array")):
        if label.startswith(prefix):
            return kind
    return ""   # an enum, or a user-defined name the code gives (its layout label is not derived here)


def _has_members(label: str) -> bool:
    return label.startswith(("t_contract", "t_address", "t_struct"))


def _is_array(label: str, types: dict[str, dict]) -> bool:
    return (types.get(label) or {}).get("encoding") in ("dynamic_array", "bytes") or label.startswith("t_array")


def _variable_fit(v: dict, sh: Shape, types: dict[str, dict]) -> int:
    """How many of the shape's facts the variable's element type agrees with (what the code says of its type, an
    array, members), each counting against where it disagrees; 0 when the code says nothing."""
    elem = _element(v["type"], sh.depth, types)
    if not elem:
        return 0
    score = 0
    if sh.want:
        score += 2 * _type_fits(elem, sh.want)
    if sh.array:
        score += 1 if _is_array(elem, types) else -1
    elif sh.members:
        score += 1 if _has_members(elem) else -1
    elif sh.numeric and _has_members(elem):
        score -= 1   # `x == 0`, `x + 1`: not a contract, an address or a struct
    return score


def _named_in(label: str, text: str) -> bool:
    return re.search(rf"(?<![.\w$]){re.escape(label)}(?![\w$])", text) is not None


def bind(names: list[str], text: str, original: Original, touched: list[dict], logs_topics: set[str],
         revert_selectors: set[str], callees: str = "", home: str = "", alternatives: dict | None = None,
         invisible: Iterable[str] = (), itself: tuple[str, int] = ("", -1)) -> tuple[dict[str, str], list[str], str]:
    """(renames, binding notes, the first unbound name or ""). callees: the text of the internal functions and
    modifiers the original reaches (the record's `context`, in pairs.context_of's discovery order: a body's calls
    last first, then theirs), which rank same-arity functions, and whose text says which variables they read.
    Variables bind by slot (touched: the original's accesses) and by what the candidate does with the name (Shape:
    its type where the code says it, an array, members, a number); functions by arity, argument types, the
    returned type the call site takes, and whether the original reaches them. home: "file:Contract" where the
    candidate is placed (private variables of other contracts are not visible). alternatives: filled with name ->
    the other equally supported declarations, which the harness tries when the first binding's run differs.
    invisible: declarations an earlier binding chose that solc then reported undeclared where the candidate is (a
    base's private member): never chosen again (without this the rounds went back and forth between two of them).
    `super` and `this` are never bound. itself: the original function's (name, arity), which a call of the same
    arity never binds: the unit keeps the original beside the candidate, and a candidate that called it would only
    delegate (`function initialize() { _init(); }` with _init bound to initialize was `equivalent`)."""
    # (not the words of a string: "ERC20: burn amount exceeds allowance" does not use `allowance`)
    used = set(re.findall(r"[A-Za-z_$][\w$]*", _STRING.sub('""', corpus.strip_comments(text)))) | set(invisible)
    # storageLayout names the compiled contract, not the declaring base: private names declared elsewhere
    hidden = {v for c, v in original.private_vars if c != home} if home else set()
    renames, notes = {}, []
    pool_sigs = original.signatures
    taken: set[str] = set()
    alts = alternatives if alternatives is not None else {}
    for name in names:
        if name in ("super", "this"):   # undeclared only where no base has the member: nothing to bind
            return renames, notes, name
        role = _role(name, text)
        ranked: list[str] = []
        why = ""
        if role == "variable":
            sh = _shape(name, text)
            depth, written = sh.depth, sh.written
            scored = []
            for k, v in enumerate(touched):   # type and use, indexing depth, read/write; then first access first
                if v["label"] in used or v["label"] in taken or v["label"] in hidden:
                    continue
                ty = original.types.get(v["type"], {}).get("encoding", "")
                if depth and ty not in ("mapping", "dynamic_array") and "[" not in v["type"]:
                    continue
                d = 0 if ty == "bytes" else v["depth"]    # long bytes/string data hashes its slot: still depth 0
                # a variable only read, which a reached callee names, may be what that callee read (a guard's
                # threshold), not what this code reads
                score = 2 * _variable_fit(v, sh, original.types) + 2 * (d == depth) + (v["written"] == written) \
                    - 0.5 * (not v["written"] and _named_in(v["label"], callees))
                scored.append((-score, k, v))
            scored.sort(key=lambda x: x[:2])
            ranked = [v["label"] for sc, _, v in scored if scored and sc == scored[0][0]]
            if scored:
                v = scored[0][2]
                why = f"slot {v['slot']} offset {v.get('offset', 0)}, " + \
                    ("written" if v["written"] else "read") + f" by the original, depth {v['depth']}"
            else:   # touched on no case (a path the cases missed): the few declared ones that fit, by behaviour
                fits = []
                for v in original.layout:
                    if v["label"] in used or v["label"] in taken or v["label"] in hidden:
                        continue
                    ty = original.types.get(v["type"], {}).get("encoding", "")
                    indexed = ty in ("mapping", "dynamic_array") or "[" in v["type"]
                    fit, elem = _variable_fit(v, sh, original.types), _element(v["type"], depth, original.types)
                    if (depth and not indexed) or (not depth and ty == "mapping") or fit < 0 or \
                            (sh.want and elem and _type_fits(elem, sh.want) < 1):
                        continue
                    fits.append((-fit, v["label"]))
                if 1 <= len(fits) <= 8:
                    ranked = [label for _, label in sorted(fits, key=lambda x: x[0])]
                    why = f"one of {len(fits)} declared variables of its type and use; no case touched it"
        elif role == "event":
            n = _arity(name, text)
            cands = [(e, t) for e, (t, a) in original.events.items() if a == n and e not in used and e not in taken]
            hit = [e for e, t in cands if t in logs_topics]
            if hit or len(cands) == 1:
                ranked = hit or [cands[0][0]]
                why = f"topic 0x{original.events[ranked[0]][0][:8]}…" + (" emitted by the original" if hit else "")
        elif role == "error":
            n = _arity(name, text)
            cands = [e for e, (s, a) in original.errors.items() if a == n and e not in used and e not in taken]
            hit = [e for e in cands if original.errors[e][0] in revert_selectors]
            if hit or len(cands) == 1:
                ranked, why = hit or cands, "custom error of the same arity"
        else:
            pool = original.modifiers if role == "modifier" else original.functions
            n = _arity(name, text)

            def params_of(f: str) -> list[tuple[str, ...]]:   # the declarations of f that take n arguments
                return [p for p, _ in original.overloads.get(f, ()) if len(p) == n] or \
                    [(pool_sigs.get(f) or ((), ()))[0]]
            cands = [f for f, a in pool.items() if (a == n or any(len(p) == n for p, _ in original.overloads.get(
                f, ()))) and f not in used and f not in taken and f != CANDIDATE and
                     not (role == "function" and f in original.external) and   # `f()` cannot call an external f
                     not ((f, n) == itself and _only_declaration(original, f, n))]
            # the arguments' known types (parameters, typed locals, msg.sender, literals) must fit the parameters
            args = _argument_types(name, text)
            fit = [f for f in cands if any(_params_fit(args, p) for p in params_of(f))]
            cands = fitting = fit or cands
            want = ""
            if role == "function":   # a call used as a value needs a function that returns one; a call used as a
                # statement more likely names one that returns nothing, but may ignore a result (after the types:
                # `sendChainlinkRequest(req, payment);` returns the request id)
                want = _expected_return(name, text, renames, original)
                as_value = want == MEMBERS or not re.search(rf"(^|[;{{}}])\s*{re.escape(name)}\s*\(", text)
                cands = [f for f in cands if (f in original.returning) == as_value] or cands
            order = {f: m.start() for f in fitting
                     for m in [re.search(rf"\b(function|modifier)\s+{re.escape(f)}\s*\(", callees)] if m}
            # the reached functions the call's use prefers first, then those it does not (a result ignored)
            reached = sorted(order, key=lambda f: (f not in cands, order[f]))
            typed = [f for f in cands if want and _same_type(original.signatures.get(f, ((), ()))[1][:1], want)]
            if len(cands) == 1 and not set(reached) - set(cands):
                ranked, why = cands, f"the only {role} of arity {n} not already used"
            elif typed and (set(typed) & set(reached) or len(typed) == 1):
                ranked = [f for f in reached if f in typed] or typed
                why = f"{role} of arity {n} returning the {want} its call site takes" + \
                    (", reached by the original" if set(typed) & set(reached) else "")
            elif reached:
                ranked, why = reached, f"the next {role} of arity {n} the original reaches, in call order"
            elif typed:
                ranked, why = typed, f"{role} of arity {n} returning the {want} its call site takes"
            elif 1 < len(cands) <= 8:   # a few same-arity candidates and no other evidence: tried by behaviour
                ranked, why = cands, f"one of {len(cands)} {role}s of arity {n}"
            ranked = ranked + [f for f in reached if f not in ranked]   # every reached one stays an alternative
        if not ranked:
            return renames, notes, name
        pick = ranked[0]
        if len(ranked) > 1:
            alts[name] = ranked[1:8]
        renames[name] = pick
        taken.add(pick)
        notes.append(f"{name} -> {pick} ({role}, {why})")
    return renames, notes, ""


_LITERAL_TYPES = ((r"^(?:true|false)$", "bool"), (r"^(?:\d[\d_]*(?:e\d+)?|0x[0-9a-fA-F]+)$", "number"),
                  (r'^(?:"|\')', "string"), (r"^msg\.sender$|^tx\.origin$|^address\(", "address"),
                  (r"^(?:block\.timestamp|block\.number|msg\.value|now)$", "uint256"),
                  (r"^(?:u?int\d*|bytes\d+)\(", ""))   # a conversion `uint64(x)`: the type it names


def _argument_types(name: str, text: str) -> list[str]:
    """The types of the arguments of the first call `name(...)` in `text` where the code says them: a parameter or
    typed local of that name, a literal, msg.sender; "" where it does not."""
    m = re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text)
    if not m:
        return []
    close = match_close(text, m.end() - 1, "(", ")")
    inner = text[m.end():close].strip()
    if not inner:
        return []
    declared: dict[str, str] = {}
    try:
        fn = find_function(text)
        declared.update({n: t for t, n in fn.params + fn.returns if n})
    except ParseFailure:
        pass
    for t, n in re.findall(r"\b((?:u?int|bytes)\d*|address(?:\s+payable)?|bool|string|bytes)\s+"
                           r"(?:memory\s+|calldata\s+|storage\s+)?([A-Za-z_$][\w$]*)\s*[=;]", text):
        declared.setdefault(n, t)
    for t, n in re.findall(r"\b([A-Za-z_$][\w$.]*(?:\[\d*\])*)\s+(?:memory|storage|calldata)\s+"
                           r"([A-Za-z_$][\w$]*)\s*[=;]", text):   # a struct (or array) with a data location
        if not re.fullmatch(r"(?:u?int|bytes)\d*|address|bool|string|bytes", t.split("[")[0]):
            declared.setdefault(n, t if "[" in t else "struct " + t)
    out = []
    for a in evm.split_types(inner):
        a = a.strip()
        t = declared.get(a, "")
        for pat, lt in _LITERAL_TYPES:
            if not t and re.search(pat, a):
                t = lt or a[:a.index("(")]
        out.append(re.sub(r"\s+(memory|calldata|storage)$", "", t).replace("address payable", "address"))
    return out


def _params_fit(args: list[str], params: tuple[str, ...]) -> bool:
    """Whether arguments of these known types can be passed to these parameters (unknown ones fit anything)."""
    if not params or len(args) != len(params):
        return True
    for a, p in zip(args, params):
        p = p.replace("address payable", "address")
        if not a or a == p:
            continue
        if a == "number" and re.fullmatch(r"u?int\d*|bytes\d+|address", p):
            continue
        if a.startswith("uint") and p.startswith("uint") or a.startswith("int") and p.startswith("int"):
            continue   # widths: the compiler converts implicitly only up, but the call site does not say which
        if a.startswith("struct ") and p.startswith("struct ") and _same_type((p,), a):
            continue   # `Request` and `Chainlink.Request`: the same struct, named with or without its library
        return False
    return True


def apply_renames(text: str, renames: dict[str, str]) -> str:
    from .controls import _sub_word

    for a, b in renames.items():
        text = _sub_word(text, a, b)
    return text


# ------------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    args: list
    caller: bytes
    value: int
    variant: int = 0                  # the storage state it runs from (seed_value)
    storage: dict[int, int] = field(default_factory=dict)   # slots set over that state (found by search_success)
    found: str = ""                   # how search_success reached it ("" for the fixed cases)
    answer_words: int = 1             # words the called contracts answer with (seed_code)


def make_cases(types: list[abi.AbiType], payable: bool, seed: int, n: int = N_CASES) -> list[Case]:
    """Case i runs from storage state i % N_VARIANTS. The privileged states (PRIVILEGED: the first caller owns the
    contract) meet every boundary value with the owner calling, and once an outsider (state 1) or the contract
    itself (state 4: self-governed contracts), so that guarded code is reached with edge arguments. The other states take the first boundary values, then random ones, from
    rotating callers."""
    rng = random.Random(seed)
    addrs = [int.from_bytes(c, "big") for c in CALLERS]
    out = []
    for i in range(n):
        variant, k = i % N_VARIANTS, i // N_VARIANTS
        b = k if variant in PRIVILEGED else i
        if b < 4:
            args = [abi.boundary_values(t, addrs)[b % len(abi.boundary_values(t, addrs))] for t in types]
        else:
            args = [abi.random_value(t, rng, addrs) for t in types]
        value = (10**18 // (i + 1)) if payable and (i + k) % 2 else 0
        if variant in PRIVILEGED:   # the last case: an outsider, or (state 4) the contract itself (timelocks)
            caller = (CALLERS[3] if variant == 1 else CONTRACT) if k == 3 else CALLERS[0]
        else:
            caller = CALLERS[(k + i) % 4]
        out.append(Case(args, caller, value, variant))
    return out


def _shape_of(t: dict, type_id: str, offset: int):
    enc = t.get("encoding", "")
    return offset if type_id == "t_bool" else "array" if enc == "dynamic_array" else "bytes" if enc == "bytes" \
        else None


def slot_shapes(original: "Original") -> dict:
    """What the storage layout says lives where, for seeding: slot -> [byte offsets of packed bool variables,
    "array" for a dynamic array's length slot, "bytes" for a string/bytes slot]; and for a mapping (of mappings)
    whose values are structs, ("member", base slot, mapping depth, member slot) -> the same, for its entries."""
    types = original.types
    out: dict = {}
    for v in original.layout:
        t = types.get(v["type"], {})
        shape = _shape_of(t, v["type"], int(v.get("offset", 0)))
        if shape is not None:
            out.setdefault(int(v["slot"]), []).append(shape)
        depth, vt = 0, v["type"]
        while types.get(vt, {}).get("encoding") == "mapping":
            vt, depth = types[vt].get("value", ""), depth + 1
        for m in types.get(vt, {}).get("members") or [] if depth else []:
            shape = _shape_of(types.get(m["type"], {}), m["type"], int(m.get("offset", 0)))
            if shape is not None:
                out.setdefault(("member", int(v["slot"]), depth, int(m["slot"])), []).append(shape)
    return out


def _entry_of(slot: int, pre: dict) -> tuple[int, int, int] | None:
    """(declared base slot, mapping depth, member slot) of a hashed slot, from the run's SHA3 preimages."""
    for d in range(16):
        h = slot - d
        if h in pre and pre[h][0] == "mapping":
            b, depth = pre[h][1], 1
            while b in pre and pre[b][0] == "mapping" and depth < 8:
                b, depth = pre[b][1], depth + 1
            return b, depth, d
    return None


def seed_value(slot: int, seed: int, variant: int = 1, shapes: dict | None = None, pre: dict | None = None) -> int:
    """The value a slot holds in storage variant `variant`:
    0 a fresh contract (every slot zero);
    1 privileged: every declared slot holds the first caller's address (owners, roles, flags set) and hashed
      slots (mapping entries, array items) hold it or zero, so both sides of an `if (!seen[key])` are met;
    2 a mix of caller addresses, small integers, zero, values just below the block number and timestamp, and
      random words;
    3 numbers only (small, near the block, zero, 64-bit);
    4 privileged with every bool state variable false: paused, locked and initialized flags clear, every hashed
      slot (role membership) set.
    shapes (slot_shapes): in every non-zero state a dynamic array's length slot holds 1 to 3 and a string/bytes
    slot a short string (its own per slot and state), so that loops and copies stay within gas as in a deployed
    contract; the same for the members of structs stored in mappings, found through the run's SHA3 preimages
    `pre`."""
    if variant == 0:
        return 0
    h = int.from_bytes(hashlib.sha256(f"{seed}:{variant}:{slot}".encode()).digest(), "big")
    if slot < 1 << 64:
        shape = (shapes or {}).get(slot, [])
    else:   # a mapping entry: a struct member's shape when the preimages say which mapping and member it is
        e = _entry_of(slot, pre) if pre and shapes else None
        shape = shapes.get(("member", *e), []) if e else []
    if "array" in shape:
        return 1 + h % 3
    if "bytes" in shape:   # short layout: data, then length * 2; one text per slot and state, so that a getter
        text = f"tacsol{h % 10**6:06d}".encode()   # returning another string variable differs
        return int.from_bytes(text.ljust(31, b"\0"), "big") << 8 | 2 * len(text)
    owner = int.from_bytes(CALLERS[0], "big")
    if variant == 1:
        return owner if slot < 1 << 64 or h & 1 else 0
    if variant == 4:
        for off in shape:
            if isinstance(off, int):
                owner &= ~(0xFF << (8 * off))
        return owner
    r = h % 100
    if variant == 2 and r < 30:
        return int.from_bytes(CALLERS[h % 3], "big")
    if r < 50:
        return (h >> 8) % 100
    if r < 65:
        return 0
    if r < 80:
        return (BLOCK["number"] if h & 256 else BLOCK["timestamp"]) - (h >> 9) % 1000
    if r < 92 or variant == 3:
        return (h >> 8) & ((1 << 64) - 1)
    return h


def _fmt_revert(data: bytes) -> str:
    if data[:4] == bytes.fromhex("08c379a0") and len(data) >= 68:
        n = int.from_bytes(data[36:68], "big")
        return f'Error("{data[68:68 + n].decode(errors="replace")}")'
    if data[:4] == bytes.fromhex("4e487b71") and len(data) >= 36:
        return f"Panic(0x{int.from_bytes(data[4:36], 'big'):x})"
    return "0x" + data.hex() if data else "no data"


def _fmt(o: Outcome) -> str:
    if o.timeout:
        return "ran past the time limit"
    if not o.success:
        return f"reverted {_fmt_revert(o.output)}" if o.error == "Revert" else f"failed ({o.error})"
    parts = [f"returned 0x{o.output.hex()[:130]}" + ("…" if len(o.output) > 65 else "")]
    if o.writes:
        parts.append("wrote " + ", ".join(f"slot {hex(s)[:14]}={hex(v)[:20]}" for s, v in sorted(o.writes.items())[:3]))
    if o.logs:
        parts.append(f"{len(o.logs)} log(s)")
    if o.calls:
        parts.append(f"{len(o.calls)} call(s)")
    return "; ".join(parts)


def compare(a: Outcome, b: Outcome) -> str:
    """'' if the two outcomes agree, else the first field that differs."""
    if a.success != b.success or a.timeout != b.timeout:
        return "success"
    if a.output != b.output:
        return "revert data" if not a.success else "return data"
    if a.writes != b.writes:
        return "storage writes"
    if a.logs != b.logs:
        return "logs"
    if a.calls != b.calls:
        return "external calls"
    if a.balance != b.balance:
        return "balance"
    return ""


_HALT_OK = re.compile(r"^\s*(?:return\b|stop\b|selfdestruct\b)", re.M)
_UNRESOLVED = re.compile(r"\bgoto (?:\?|v\d+ \[)")


def reverts_by_construction(tac: str) -> bool:
    """The function's TAC (lifted from the original's bytecode) halts only by revert or invalid: no return, stop
    or selfdestruct, and every jump resolved. Such a function's behaviour is its revert data on every input."""
    return bool(tac.strip()) and not _HALT_OK.search(tac) and not _UNRESOLVED.search(tac) and \
        re.search(r"^\s*(?:revert|invalid)", tac, re.M) is not None


@dataclass
class Trace:
    """The original's run over the cases: its outcome per case. Every slot and called address has one value per
    storage state (seed_value, seed_code: a pure function, applied when first touched) under the case's explicit
    slots, so a run's outcome does not depend on which runs came before: the candidate's comparison reuses these
    outcomes."""
    status: str                       # "ok" | "reference_timeout"
    detail: str
    outcomes: list[Outcome]
    cases: list[Case] = field(default_factory=list)   # the fixed cases, then those search_success found
    shapes: dict | None = None
    sel: str = ""                      # the selector the original was called with
    searched: int = 0                  # runs of the original search_success spent (0: a fixed case returned)
    branch_runs: int = 0               # runs of the original search_branches spent
    branches_pending: bool = False     # made with branches=False: search_branches not run yet (extend_branches)
    explored: bool = False             # the outcomes still hold what only the searches read (cmps, branches)


def seed_code(address: bytes, variant: int, words: int = 1) -> bytes | None:
    """The code an address the function calls (or asks the code size of) gets in storage state `variant`, as
    a deployed singleton (a token, a registry, an oracle) would have on chain: one that answers every call with
    1 in states 1, 2 and 4, with 0 in states 0 and 3 (no interface implementer, a zero balance). The zero address,
    the precompiles, the contract and the harness's callers keep what they have (no code, or a responder).
    `words` > 1 (a case the state search made): the answer is that many words, the first 1 (or 0) and the rest
    zero, so that a call whose result decodes as a tuple (an oracle's getConfig()) gets one."""
    n = int.from_bytes(address, "big")
    if n <= 0x11 or address == CONTRACT or address in CALLERS:
        return None
    if words > 1:   # [mstore(0, 1);] return(0, 32 * words)
        size = (32 * words).to_bytes(2, "big")
        return (bytes.fromhex("6001600052") if variant in (1, 2, 4) else b"") + b"\x61" + size + bytes.fromhex("6000f3")
    return RESPONDER_CODE if variant in (1, 2, 4) else ZERO_RESPONDER_CODE


def trace_original(code: bytes, sel: str, types: list[abi.AbiType], cases: list[Case], *, seed: int,
                   time_limit_s: float = 20.0, shapes: dict | None = None, payable: bool = False,
                   search: bool = True, branches: bool = True) -> Trace:
    """Run the original on every case, each from its storage state; when none returns, search_success looks for
    states and arguments that reach the success path; then search_branches looks for cases that take branches no
    case took. The cases they find are added (both sides run them). `branches=False` leaves the branch search
    for later (extend_branches): a candidate that already differs on these cases needs none."""
    deadline = time.thread_time() + time_limit_s
    outs: list[Outcome] = []
    for i, c in enumerate(cases):
        a = _run(code, sel, types, c, seed, shapes, deadline, explore=search)
        if a.timeout:
            return Trace("reference_timeout", f"case {i}", outs, cases[:i], shapes, sel)
        outs.append(a)
        if time.thread_time() > deadline:
            return Trace("ok", f"time limit after {i + 1} cases", _plain(outs), cases[:i + 1], shapes, sel)
    t = Trace("ok", "", outs, list(cases), shapes, sel, explored=search)
    if search and outs and not any(o.success for o in outs):
        stop = min(deadline, time.thread_time() + SEARCH_S)
        found, t.searched = search_success(
            lambda c: _run(code, sel, types, c, seed, shapes, stop, explore=True), cases, outs, types, payable, stop)
        for c, o in found:
            t.cases.append(c)
            t.outcomes.append(o)
    t.branches_pending = search and any(o.success for o in t.outcomes)
    if t.branches_pending and branches:
        return extend_branches(t, code, types, seed=seed, payable=payable,
                               time_limit_s=max(0.0, deadline - time.thread_time()))
    return t if t.branches_pending else plain_trace(t)


def extend_branches(t: Trace, code: bytes, types: list[abi.AbiType], *, seed: int, payable: bool = False,
                    time_limit_s: float = 20.0) -> Trace:
    """A trace made with branches=False, with the cases search_branches finds added (unchanged when none is
    pending). Its cases run again, as explore runs, when it no longer holds what the search reads (a trace read
    back from the disk cache): a run's outcome is a pure function of its case."""
    if not t.branches_pending:
        return t
    deadline = time.thread_time() + time_limit_s
    outs = t.outcomes if t.explored else [_run(code, t.sel, types, c, seed, t.shapes, deadline, explore=True)
                                          for c in t.cases]
    stop = min(deadline, time.thread_time() + BRANCH_S)
    found, runs = search_branches(lambda c: _run(code, t.sel, types, c, seed, t.shapes, stop, explore=True),
                                  t.cases, outs, types, payable, stop)
    return plain_trace(replace(t, cases=t.cases + [c for c, _ in found], outcomes=t.outcomes + [o for _, o in found],
                               branch_runs=runs, branches_pending=False))


def _plain(outcomes: list[Outcome]) -> list[Outcome]:
    return [replace(o, cmps=[], read_values={}, branches=set(), cmp_jumps=[]) for o in outcomes]


def plain_trace(t: Trace) -> Trace:
    """The trace without what only the searches read: what the comparison needs, small enough to cache."""
    return replace(t, outcomes=_plain(t.outcomes), explored=False) if t.explored else t


# ------------------------------------------------------------------------------------------ state search
@dataclass
class _Budget:
    """What a search may spend: runs and jumps executed, so that the same search stops at the same run on any
    machine and under any load (a CPU-time budget found fewer cases with the workers sharing a core's
    siblings), and thread CPU time as a safety net."""
    runs: int
    steps: int
    stop: float
    spent_runs: int = 0
    spent_steps: int = 0

    def left(self) -> bool:
        return self.spent_runs < self.runs and self.spent_steps < self.steps and time.thread_time() < self.stop

    def charge(self, o: Outcome) -> Outcome:
        self.spent_runs += 1
        self.spent_steps += o.steps
        return o


SEARCH_RUNS = 96         # runs of the original the state search may spend on one function
SEARCH_STEPS = 200_000   # and jumps executed (about 6 CPU s of py-evm on 2026 cores)
SEARCH_S = 12.0          # and CPU seconds: a safety net only, the step budget binds first
SEARCH_FOUND = 3    # returning cases it stops at
_PER_PARENT = 16    # proposals drawn from one run's comparisons


def _word_of(t: abi.AbiType, v) -> int:
    if t.base == "bytesN":
        return int.from_bytes(bytes(v).ljust(32, b"\0")[:32], "big")
    return int(v) & abi.M256   # uint, int (two's complement), address, bool


def _value_of(t: abi.AbiType, w: int):
    """The ABI value of type `t` whose calldata word is `w`; None when no valid value has that word."""
    if t.base == "uint":
        return w if w < 1 << t.bits else None
    if t.base == "int":
        v = w - (1 << 256) if w >> 255 else w
        return v if -(1 << (t.bits - 1)) <= v < 1 << (t.bits - 1) else None
    if t.base == "address":
        return w if w < 1 << 160 else None
    if t.base == "bool":
        return bool(w) if w in (0, 1) else None
    if t.base == "bytesN":
        b = w.to_bytes(32, "big")
        return b[:t.bits] if not any(b[t.bits:]) else None
    return None


_HEADS = {"head4": 4, "head32": 32}   # leading bytes of a `bytes` argument a comparison may read (a selector, a word)


def _leaves(types: list[abi.AbiType], values: list, path: tuple = ()):
    """(path, "word" | "len" | "head4" | "head32", type, word) of every argument value a comparison can read:
    elementary values, the lengths of dynamic bytes, strings and arrays, and the first 4 and 32 bytes of a
    `bytes` value, as `bytes4 x := mload(add(data, 32))` reads them (a LINK token's transferAndCall payload must
    start with a whitelisted selector)."""
    for k, (t, v) in enumerate(zip(types, values)):
        p = path + (k,)
        if t.item is not None:
            if t.length is None:
                yield p, "len", t, len(v)
            yield from _leaves([t.item] * len(v), list(v), p)
        elif t.base == "tuple":
            yield from _leaves(list(t.fields), list(v), p)
        elif t.base in ("bytes", "string"):
            yield p, "len", t, len(v)
            if t.base == "bytes":
                word = int.from_bytes(bytes(v)[:32].ljust(32, b"\0"), "big")
                for kind, n in _HEADS.items():
                    yield p, kind, t, word >> (256 - 8 * n) << (256 - 8 * n)
        else:
            yield p, "word", t, _word_of(t, v)


def _set_at(values: list, path: tuple, new) -> list:
    out = list(values)
    out[path[0]] = new if len(path) == 1 else _set_at(out[path[0]], path[1:], new)
    return out


def _get_at(values: list, path: tuple):
    for k in path:
        values = values[k]
    return values


def _resized(t: abi.AbiType, v, n: int):
    """A dynamic value of type `t` holding `n` items (bytes, characters), keeping those it has."""
    if t.item is not None:
        items = list(v)[:n]
        fill = abi.boundary_values(t.item, [int.from_bytes(c, "big") for c in CALLERS])[1]
        return items + [fill] * (n - len(items))
    if t.base == "string":
        return (str(v) + "a" * n)[:n]
    return (bytes(v) + b"\x01" * n)[:n]


_FIELD_WIDTHS = (160, 64, 8)   # address, uint64, uint8/bool fields of packed slots


def _slot_fields(read_values: dict[int, int]) -> dict[int, list[tuple[int, int, int, int]]]:
    """value -> [(slot, word, shift, mask)]: the slots a run read whose whole word, or else a packed field (the
    lowest offset per field width), holds that value, in read order. One index per run: a run of a loop makes
    thousands of comparisons, each looked up here."""
    index: dict[int, list[tuple[int, int, int, int]]] = {}
    for slot, word in read_values.items():
        if word:
            index.setdefault(word, []).append((slot, word, 0, abi.M256))
        for w in _FIELD_WIDTHS:
            mask, placed = (1 << w) - 1, set()
            for o in range(0, 33 - w // 8):
                f = (word >> (8 * o)) & mask
                if f and f != word and f not in placed:
                    placed.add(f)
                    index.setdefault(f, []).append((slot, word, 8 * o, mask))
    return index


def _targets(op: str, a: int, b: int) -> list[tuple[int, list[int]]]:
    """(operand value, values to give the input that holds it) of one comparison: the other operand (equality),
    either side of it (order), zero or non-zero (ISZERO)."""
    m = abi.M256
    if op == "ISZERO":
        return [(a, [0] if a else [1, int.from_bytes(CALLERS[0], "big")])]
    if op == "EQ":
        return [(a, [b]), (b, [a])] if a != b else [(a, [(a + 1) & m])]
    return [(a, [b, (b + 1) & m, (b - 1) & m]), (b, [a, (a + 1) & m, (a - 1) & m])]


def _proposals(case: Case, out: Outcome, types: list[abi.AbiType], payable: bool, first: set[int] | None = None):
    """Cases one input away from `case`: an argument, the caller, the value or a slot the run read set to the
    other operand of a comparison it took (input-to-state correspondence), latest comparisons first: the
    failing require is usually the last one before the revert. `first`: JUMPI pcs whose comparisons go first
    (the branch search's branches taken one way only)."""
    leaves = list(_leaves(types, case.args))
    fields = _slot_fields(out.read_values)
    zeros = _zero_fields(out.read_values)
    done: set = set()
    made = 0
    if out.probed and case.answer_words == 1:   # a called contract's one-word answer may not decode as a tuple
        made += 1
        yield replace(case, answer_words=ANSWER_WORDS, found=_note(case, f"calls answered with {ANSWER_WORDS} words"))
    for child in _deployed_proposals(case, out, leaves, fields, zeros):
        made += 1
        yield child
    jumps = out.cmp_jumps
    order, pcs = [], set()
    for i in range(len(out.cmps) - 1, -1, -1):   # latest first; a loop's condition once, at its last test
        at = (jumps[i] if i < len(jumps) else -1, out.cmps[i][0])   # (JUMPI, op): `a < b` and its ISZERO both
        if at[0] >= 0 and at in pcs:
            continue
        pcs.add(at)
        order.append(i)
    if first:
        order = [i for i in order if jumps[i] in first] + [i for i in order if jumps[i] not in first]
    for op, a, b in (out.cmps[i] for i in order):
        if (op, a, b) in done:
            continue
        done.add((op, a, b))
        for x, targets in _targets(op, a, b):
            for path, kind, t, w in leaves:
                if w != x:
                    continue
                for y in targets:
                    if kind == "len":
                        if y > 320 or (t.item is None and t.base not in ("bytes", "string")):
                            continue
                        new = _resized(t, _get_at(case.args, path), y)
                    elif kind in _HEADS:
                        n = _HEADS[kind]
                        if y & ((1 << (256 - 8 * n)) - 1):
                            continue
                        old = bytes(_get_at(case.args, path))
                        new = y.to_bytes(32, "big")[:n] + old[n:] if len(old) >= n else y.to_bytes(32, "big")[:n]
                    else:
                        new = _value_of(t, y)
                        if new is None:
                            continue
                    made += 1
                    what = " length" if kind == "len" else f"[:{_HEADS[kind]}]" if kind in _HEADS else ""
                    yield replace(case, args=_set_at(case.args, path, new), found=_note(
                        case, f"arg {'.'.join(map(str, path))}{what} = {hex(y)[:20]}"))
            if x == int.from_bytes(case.caller, "big"):
                for y in targets:
                    if 0 < y < 1 << 160:
                        made += 1
                        yield replace(case, caller=y.to_bytes(20, "big"), found=_note(case, f"caller = {hex(y)}"))
            if payable and x == case.value:
                for y in targets:
                    if y <= BALANCE_LIMIT:
                        made += 1
                        yield replace(case, value=y, found=_note(case, f"value = {y}"))
            for slot, word, shift, mask in fields.get(x, ()) if x else zeros if op == "ISZERO" else ():
                for y in targets:
                    if y & mask != y:
                        continue
                    made += 1
                    yield replace(case, storage={**case.storage, slot: (word & ~(mask << shift)) | (y << shift)},
                                  found=_note(case, f"slot {hex(slot)[:14]} = {hex(y)[:20]}"))
        if made >= _PER_PARENT:
            return


ANSWER_WORDS = 16        # the longer answer of called contracts the search may try (seed_code)
BALANCE_LIMIT = 10**20   # below the callers' balance (execution.BALANCE): a value they can send
DEPLOYED = bytes.fromhex("5e" * 20)   # an address holding code in every state (seed_code): a deployed contract
_ZERO_SLOTS = 2          # zero-valued slots an ISZERO of zero may set (the latest read first)


def _zero_fields(read_values: dict[int, int]) -> list[tuple[int, int, int, int]]:
    """(slot, 0, 0, full mask) of the last _ZERO_SLOTS slots a run read as zero, the latest first: a flag or role
    never set (`require(hasRole(..))` tests it with ISZERO), a contract address never stored. Not indexed by value
    with the others (_slot_fields): in a fresh state every slot is zero, and proposals for each would crowd out
    those of the comparison that failed."""
    return [(s, 0, 0, abi.M256) for s, w in reversed(list(read_values.items())) if not w][:_ZERO_SLOTS]


def _has_code(address: bytes, case: "Case") -> bool:
    return (address == CONTRACT or address in RESPONDERS
            or seed_code(address, case.variant, case.answer_words) is not None)


def _deployed_proposals(case: "Case", out: Outcome, leaves: list, fields: dict, zeros: list):
    """Cases in which an address the run called or asked the code size of, and that held no code (the owner, a
    zero address, a precompile), is the DEPLOYED contract instead: the argument or slot field that held it is
    set. Solidity reverts before calling an address without code, so a token, registry or oracle kept in a
    slot that holds the owner or nothing would otherwise stop every run there. And the other way round, an
    argument that held code is an account without (EOA): a recipient contract must implement a hook (ERC-721's
    onERC721Received, ERC-777's tokensReceived) that the harness's responders do not."""
    d, eoa = int.from_bytes(DEPLOYED, "big"), int.from_bytes(CALLERS[3], "big")
    for a in out.probed:
        x = int.from_bytes(a, "big")
        if _has_code(a, case):
            for path, kind, t, w in leaves:
                if kind == "word" and t.base == "address" and w == x and x != eoa:
                    yield replace(case, args=_set_at(case.args, path, eoa),
                                  found=_note(case, f"arg {'.'.join(map(str, path))} = an account without code"))
            continue
        for path, kind, t, w in leaves:
            if kind == "word" and t.base == "address" and w == x:
                yield replace(case, args=_set_at(case.args, path, d),
                              found=_note(case, f"arg {'.'.join(map(str, path))} = a deployed contract"))
        for slot, word, shift, mask in fields.get(x, ()) if x else zeros:
            if mask >> 159:   # an address-wide field
                yield replace(case, storage={**case.storage, slot: (word & ~(mask << shift)) | (d << shift)},
                              found=_note(case, f"slot {hex(slot)[:14]} = a deployed contract"))


def _note(case: Case, change: str) -> str:
    return f"{case.found}; {change}" if case.found else change


def _case_key(c: Case) -> str:
    return repr((c.args, c.caller, c.value, c.variant, sorted(c.storage.items()), c.answer_words))


def search_success(run: Callable[[Case], Outcome], cases: list[Case], outcomes: list[Outcome],
                   types: list[abi.AbiType], payable: bool, stop: float) -> tuple[list[tuple[Case, Outcome]], int]:
    """Cases on which the original returns, when none of the fixed ones does: ([(case, outcome)], runs spent).

    A guided search over the inputs a run reads: from the deepest reverted case of each storage state, one input
    at a time (an argument, the caller, the value sent, a slot's value) takes the other operand of a comparison
    the run made (the owner stored in a slot, the id a mapping entry holds, the length a signature must have, a
    timestamp just past a deadline). A child that takes a branch no run took before is explored in turn, the
    deepest first. Bounded by SEARCH_RUNS runs, SEARCH_STEPS jumps and `stop` (thread CPU time); only the
    original runs here."""
    import heapq

    best: dict[int, tuple[int, int]] = {}
    for i, o in enumerate(outcomes):
        if not o.timeout and (cases[i].variant not in best or o.steps > best[cases[i].variant][0]):
            best[cases[i].variant] = (o.steps, i)
    heap: list = []
    seen: set = set()
    tried = {_case_key(c) for c in cases}
    found: list[tuple[Case, Outcome]] = []
    budget = _Budget(SEARCH_RUNS, SEARCH_STEPS, stop)
    for _, i in sorted(best.values(), reverse=True):
        if not budget.left():
            break
        o = budget.charge(run(cases[i]))
        seen |= o.branches
        heapq.heappush(heap, (-len(o.branches), budget.spent_runs, cases[i], o))
    while heap and len(found) < SEARCH_FOUND and budget.left():
        _, _, parent, po = heapq.heappop(heap)
        for child in _proposals(parent, po, types, payable):
            key = _case_key(child)
            if key in tried:
                continue
            tried.add(key)
            if not budget.left():
                break
            o = budget.charge(run(child))
            if o.timeout:
                continue
            if o.success:
                found.append((child, o))
                if len(found) >= SEARCH_FOUND:
                    break
                continue
            if not o.branches <= seen:
                seen |= o.branches
                heapq.heappush(heap, (-len(o.branches), budget.spent_runs, child, o))
    return found, budget.spent_runs


BRANCH_RUNS = 48         # runs of the original the branch search may spend on one function
BRANCH_STEPS = 100_000   # and jumps executed (about 3 CPU s)
BRANCH_S = 6.0           # and CPU seconds: a safety net only
BRANCH_FOUND = 6    # cases it adds (each takes a branch no earlier case took in its storage state)
BRANCH_NOTE = "new branch: "


def search_branches(run: Callable[[Case], Outcome], cases: list[Case], outcomes: list[Outcome],
                    types: list[abi.AbiType], payable: bool, stop: float) -> tuple[list[tuple[Case, Outcome]], int]:
    """Cases that take a branch (a JUMPI and its direction) that none of `cases` took from the same storage state:
    ([(case, outcome)], runs).

    The fixed cases meet a function's common paths; a candidate that differs only on another one (a changed
    constant in a cap check, a flipped comparison of a limit, an event in an owner-only branch) would pass them.
    From the returning cases (the deepest first), one input at a time takes the other operand of a comparison
    the run made (_proposals, as the state search does; first those of the branches taken one way only); a child
    that reaches a new branch, returning or not, is kept and explored in turn. `outcomes` must come from explore
    runs (their branches). Bounded by BRANCH_RUNS runs, BRANCH_STEPS jumps, BRANCH_FOUND cases and `stop` (thread
    CPU time); only the original runs here."""
    import heapq

    # branches per storage state: a path one state reaches (the owner's revert when a token has no code) is
    # another where the state differs (a token that answers)
    seen: set = {(c.variant, *b) for c, o in zip(cases, outcomes) for b in o.branches}
    heap = [(not o.success, -o.steps, i, c, o) for i, (c, o) in enumerate(zip(cases, outcomes)) if not o.timeout]
    heapq.heapify(heap)
    tried = {_case_key(c) for c in cases}
    changes: set = set()   # (state, change): the same change from another parent in that state rarely adds a branch
    found: list[tuple[Case, Outcome]] = []
    budget, tick = _Budget(BRANCH_RUNS, BRANCH_STEPS, stop), len(cases)
    while heap and len(found) < BRANCH_FOUND and budget.left():
        *_, parent, po = heapq.heappop(heap)
        v = parent.variant
        one_way = {pc for w, pc, d in seen if w == v and (v, pc, not d) not in seen}
        for child in _proposals(parent, po, types, payable, one_way):
            key, change = _case_key(child), (child.variant, child.found.rsplit("; ", 1)[-1])
            if key in tried or change in changes:
                continue
            tried.add(key)
            changes.add(change)
            if not budget.left():
                break
            o = budget.charge(run(child))
            reached = {(child.variant, *b) for b in o.branches}
            if o.timeout or reached <= seen:
                continue
            seen |= reached
            if not child.found.startswith(BRANCH_NOTE):
                child = replace(child, found=BRANCH_NOTE + child.found)
            found.append((child, o))
            tick += 1
            heapq.heappush(heap, (not o.success, -o.steps, tick, child, o))
            if len(found) >= BRANCH_FOUND:
                break
    return found, budget.spent_runs


def _as_if_called_by(o: Outcome, cand_sel: str, sel: str) -> Outcome:
    """The candidate's outcome with its own selector read as the original's wherever it forwards msg.data or
    msg.sig (in call data, log data, return data): the harness's renaming must not show."""
    if not sel or cand_sel == sel:
        return o
    a, b = evm.hex_bytes(cand_sel), evm.hex_bytes(sel)
    return replace(o, output=o.output.replace(a, b), logs=[(t, d.replace(a, b)) for t, d in o.logs],
                   calls=[(k, t, v, d.replace(a, b)) for k, t, v, d in o.calls])


def _run(code: bytes, sel: str, types: list[abi.AbiType], c: Case, seed: int, shapes: dict | None,
         deadline: float, explore: bool = False) -> Outcome:
    return execute(code, evm.hex_bytes(sel) + abi.encode_tuple(types, c.args), dict(c.storage),
                   caller=c.caller, value=c.value, responders=RESPONDERS,
                   time_limit_s=max(0.2, min(3.0, deadline - time.thread_time())),
                   storage_default=lambda slot, pre: seed_value(slot, seed, c.variant, shapes, pre),
                   code_default=lambda a: seed_code(a, c.variant, c.answer_words), explore=explore)


def compare_candidate(trace: Trace, cand: bytes, cand_sel: str, types: list[abi.AbiType], *,
                      seed: int, time_limit_s: float = 20.0, start: int = 0) -> tuple[str, str, int]:
    """('equivalent' | 'differs', detail, cases compared): the candidate against the traced original, case by
    case, from the same states; from case `start` on (the cases a trace gained since the candidate agreed on
    those before)."""
    deadline = time.thread_time() + time_limit_s
    for i in range(start, len(trace.outcomes)):
        a, c = trace.outcomes[i], trace.cases[i]
        b = _as_if_called_by(_run(cand, cand_sel, types, c, seed, trace.shapes, deadline), cand_sel, trace.sel)
        field_ = compare(a, b)
        if field_:
            how = f", {c.found}" if c.found else ""
            return "differs", (f"case {i} (storage {c.variant}{how}, caller 0x{c.caller.hex()[:6]}…, value "
                               f"{c.value}, args {_fmt_args(c.args)}): {field_} differ — original {_fmt(a)}; "
                               f"generated {_fmt(b)}"), i + 1
        if time.thread_time() > deadline:
            return "differs" if b.timeout else "equivalent", f"time limit after {i + 1} cases", i + 1
    return "equivalent", trace.detail, len(trace.outcomes)


def _fmt_args(args: list) -> str:
    def one(v):
        if isinstance(v, (bytes, bytearray)):
            return "0x" + bytes(v).hex()[:16] + ("…" if len(v) > 8 else "")
        if isinstance(v, int) and v > 10**6:
            return hex(v)[:14] + ("…" if len(hex(v)) > 14 else "")
        if isinstance(v, list):
            return "[" + ", ".join(one(x) for x in v[:3]) + ("…" if len(v) > 3 else "") + "]"
        return repr(v)
    return "(" + ", ".join(one(a) for a in args) + ")"


# ---------------------------------------------------------------------------------------------- workers
class Workers:
    """Processes (one per core by default) that run originals and candidates in py-evm, the harness's CPU-bound
    stage: pure functions of picklable arguments (trace_original, extend_branches, compare_candidate), so a
    job's result does not depend on where it ran. Started on first use from a forkserver that has imported
    py-evm (the parent holds solcjs reader threads: no plain fork); fewer jobs than 2 per worker run here."""

    def __init__(self, n: int | None = None):
        self.n = max(1, n or len(os.sched_getaffinity(0)))
        self._pool = None
        self.closed_cpu_s = 0.0   # CPU seconds of the worker processes closed so far (benchmarks)

    def cpu_s(self) -> float:
        """CPU seconds the worker processes spent, closed ones included. They are the forkserver's children, not
        this process's: RUSAGE_CHILDREN does not see them, /proc does."""
        live = 0.0
        for pid in list(getattr(self._pool, "_processes", None) or {}):
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                live += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return self.closed_cpu_s + live

    def _executor(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([__name__])
            self._pool = ProcessPoolExecutor(self.n, mp_context=ctx)
        return self._pool

    def run(self, jobs: list[tuple], desc: str = "") -> list:
        """jobs: (key, function, args, kwargs) -> the results, in order; a progress bar when `desc` is given."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="fn", disable=not desc)
        try:
            if self.n == 1 or len(jobs) < 2 * self.n:
                out = []
                for _, fn, args, kw in jobs:
                    out.append(fn(*args, **kw))
                    bar.update()
                return out
            from concurrent.futures import as_completed
            from concurrent.futures.process import BrokenProcessPool

            futures = {self._executor().submit(fn, *args, **kw): j for j, (_, fn, args, kw) in enumerate(jobs)}
            out: list = [None] * len(jobs)
            try:
                for f in as_completed(futures):
                    out[futures[f]] = f.result()
                    bar.update()
            except BrokenProcessPool:   # a worker killed (out of memory): the rest run here, nothing lost
                self.close()
                for j, (_, fn, args, kw) in enumerate(jobs):
                    if out[j] is None:
                        out[j] = fn(*args, **kw)
                        bar.update()
            return out
        finally:
            bar.close()

    def close(self) -> None:
        if self._pool is not None:
            self.closed_cpu_s = self.cpu_s()
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


# ---------------------------------------------------------------------------------------------- harness
class Harness:
    """check_many(records, generated texts) -> [BehaviourResult]. Compiles are batched and cached; originals are
    compiled once per unit and setting."""

    def __init__(self, units: corpus.RecordUnits | None = None, *, seed: int = 0, n_cases: int = N_CASES,
                 time_limit_s: float = 20.0, compiler: Compiler | None = None, search: bool = True,
                 fast_candidates: bool = True, workers: int | None = None):
        self.units = units or record_units()
        self.workers = Workers(workers)   # processes that run the originals and candidates (py-evm)
        self.seed, self.n_cases, self.time_limit_s, self.search = seed, n_cases, time_limit_s, search
        # candidates compiled by the legacy pipeline without optimizer (the record's compiler and EVM version):
        # optimizing changes gas, not behaviour, and costs 3-20x the compile (via-IR units: ~25 s of solcjs CPU)
        self.fast_candidates = fast_candidates
        self._slow_units: set[tuple] = set()   # units whose candidates need the record's settings to compile
        self.candidate_salt = ""   # a comment placed after every candidate: new compile inputs (speed benchmarks)
        self.timings: dict[str, float] = {}   # wall seconds per stage, summed over check_many calls
        self.compiler = compiler or Compiler()
        self._originals: dict[str, Original | str] = {}
        self._traces: dict[tuple, Trace] = {}   # mutants and renamings of one record share its original's trace
        self.trace_dir: Path | None = None      # where traces are cached (default: beside the compiles)

    def _unit(self, rec: dict) -> tuple[str, dict[str, str]] | None:
        try:
            return self.units.sources(rec)
        except corpus.UnitNotFound:
            return None

    def _trace_path(self, o: Original, sel: str, signature: str, payable: bool) -> Path:
        key = hashlib.sha256(repr((TRACE_FORMAT, o.code, sel, signature, payable, self.seed, self.n_cases,
                                   self.search, sorted(slot_shapes(o).items(), key=repr))).encode()).hexdigest()
        return (self.trace_dir or self.compiler.dir / "traces") / key[:2] / f"{key}.pkl.gz"

    def _store_trace(self, p: Path, t: Trace) -> None:
        """Cached unless a time limit cut it short (that depends on the machine); a trace whose branch search is
        pending is cached as such and extended later (extend_branches)."""
        import pickle

        from ..ioutil import atomic_write_bytes

        if t.status == "ok" and not t.detail:
            atomic_write_bytes(p, gzip.compress(pickle.dumps(plain_trace(t)), 5))

    def _trace(self, o: Original, sel: str, signature: str, types: list[abi.AbiType], payable: bool) -> Trace:
        """One original's complete trace (the branch search included)."""
        key = (o.code, sel, payable)
        t = self._trace_all([(key, (o, sel, signature, types, payable))])[key]
        return self._extend_all({key: (t, o, sel, signature, types, payable)})[key]

    def _trace_all(self, items: list[tuple[object, tuple]], progress: bool = False) -> dict[object, Trace]:
        """key -> the original's trace over the cases, without its branch search (extended by _extend_all for the
        candidates that agree on these cases), from the disk cache beside the compiles when this runtime was
        traced before with the same cases (a trace is a pure function of runtime, selector, types, seed and the
        harness's rules: TRACE_FORMAT), else run by the workers. items: (key, (Original, selector, signature,
        types, payable))."""
        import pickle

        out: dict[object, Trace] = {}
        jobs, paths_ = [], []
        for key, (o, sel, signature, types, payable) in items:
            p = self._trace_path(o, sel, signature, payable)
            if p.exists():
                try:
                    out[key] = pickle.loads(gzip.decompress(p.read_bytes()))
                    continue
                except Exception:  # noqa: BLE001  a torn or stale entry: run again
                    pass
            jobs.append((key, trace_original, (o.code, sel, types, make_cases(types, payable, self.seed, self.n_cases)),
                         dict(seed=self.seed, time_limit_s=self.time_limit_s, shapes=slot_shapes(o), payable=payable,
                              search=self.search, branches=False)))
            paths_.append(p)
        for (key, *_), p, t in zip(jobs, paths_, self.workers.run(jobs, "behaviour: trace originals" if progress
                                                                   else "")):
            self._store_trace(p, t)
            out[key] = t
        return out

    def _extend_all(self, items: dict[object, tuple], progress: bool = False) -> dict[object, Trace]:
        """key -> the trace with its branch search run (extend_branches) and cached. items: key -> (trace,
        Original, selector, signature, types, payable)."""
        jobs = [(key, extend_branches, (t, o.code, types), dict(seed=self.seed, payable=payable,
                                                                 time_limit_s=self.time_limit_s))
                for key, (t, o, sel, signature, types, payable) in items.items() if t.branches_pending]
        out = {key: v[0] for key, v in items.items()}
        for (key, *_), t in zip(jobs, self.workers.run(jobs, "behaviour: search branches" if progress else "")):
            o, sel, signature, _, payable = items[key][1:]
            self._store_trace(self._trace_path(o, sel, signature, payable), t)
            out[key] = t
        return out

    def close(self) -> None:
        """Stop the solcjs servers and the worker processes (both restart when needed)."""
        self.compiler.close()
        self.workers.close()

    def _tick(self, stage: str, t0: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - t0
        return now

    def _original_path(self, digest: str) -> Path:
        return self.compiler.dir / "originals" / f"{ORIGINAL_FORMAT}-{digest}.pkl.gz"

    @staticmethod
    def _okey(rec: dict, main: str) -> str:
        return f"{rec.get('package')}|{main}|{rec.get('contract')}|{rec.get('settings')}"

    def _ensure_originals(self, recs: list[dict], units: dict[int, tuple[str, dict]], progress: bool = False
                          ) -> dict[int, str]:
        """Compile each distinct original unit once (batched per solc version); index -> original key. What the
        harness reads from the compile (runtime, layout, declarations: Original) is cached beside it, so that a
        cached unit costs neither the JSON of its AST nor the walk over it."""
        import pickle

        from ..ioutil import atomic_write_bytes

        jobs, okey, digest = {}, {}, {}
        for i, (main, srcs) in units.items():
            r = recs[i]
            k = okey[i] = self._okey(r, main)
            if k not in self._originals and k not in jobs:
                version, st = _setting(r)
                inp = _input(srcs, main, r.get("contract") or "", st, version, True, True)
                digest[k] = self.compiler.key(version, inp)
                p = self._original_path(digest[k])
                if p.exists():
                    try:
                        self._originals[k] = pickle.loads(gzip.decompress(p.read_bytes()))
                        continue
                    except Exception:  # noqa: BLE001  a stale or torn cache entry: compile again
                        pass
                jobs[k] = (k, version, inp)
        outs = self.compiler.many(list(jobs.values()), "behaviour: compile originals" if progress else "")
        for k, out in outs.items():
            if isinstance(out, str) or out.get("errors"):
                msg = out if isinstance(out, str) else (out["errors"][0].get("formattedMessage") or "")
                self._originals[k] = "original_compile: " + msg[:300]
                continue
            main, contract = k.split("|")[1], k.split("|")[2]
            self._originals[k] = _original_from(out, main, contract) or "no_contract"
            atomic_write_bytes(self._original_path(digest[k]), gzip.compress(pickle.dumps(self._originals[k]), 5))
        return okey

    def _compile_candidates(self, items: list[tuple[object, dict, tuple[str, dict], str]], progress: bool = False
                            ) -> dict:
        """Compile candidates, those of one original unit in one solc call (each under its own name,
        tacsol_candidate_<k>): solcjs spends most of a compile on the unit, not on the function added.
        items: (key, record, (main, unit sources), candidate text named CANDIDATE). Returns key ->
        ("ok", (runtime, selector), home) | ("errors", {"errors": the candidate's errors}, placed sources, home) |
        ("fail", message, home). An error located in one candidate is that candidate's; the others are compiled
        again without it (solc stops at the first failing stage, so they are not yet known to compile); an error
        no candidate holds sends each candidate of the group to a compile of its own, as if compiled alone."""
        groups: dict[tuple, list] = {}
        for it in items:
            r, (main, _) = it[1], it[2]
            version, st = _setting(r)
            # compiled without optimizer, records of one unit under several settings share a compile
            key = (r.get("package"), main, r.get("contract"), version, st.evm_version) if self.fast_candidates \
                else (self._okey(r, main), version)
            groups.setdefault(key, []).append(it)
        group_of = {id(m): key for key, members in groups.items() for m in members}
        results: dict = {}
        todo = [(members, len(members) > 1, self.fast_candidates and key not in self._slow_units)
                for key, members in groups.items()]
        while todo:
            jobs, placed = [], []
            for members, together, fast in todo:
                parts = [members] if together else [[m] for m in members]
                for part in parts:
                    r, (main, srcs) = part[0][1], part[0][2]
                    names = [f"{CANDIDATE}_{k}" if len(part) > 1 else CANDIDATE for k in range(len(part))]
                    salt = f"\n    // {self.candidate_salt}" if self.candidate_salt else ""
                    got = place_many(srcs, [(m[1].get("file") or "", m[1].get("solidity") or "",
                                             _named(m[3], n) + salt, m[1].get("contract") or "")
                                            for m, n in zip(part, names)])
                    if got is None:
                        for m in part:
                            results[m[0]] = ("fail", "reference not found in its unit", "")
                        continue
                    version, st = _setting(r)
                    if fast:
                        st = replace(st, optimize=False, via_ir=False)
                    name = f"c{len(jobs)}"
                    jobs.append((name, version, _input(got[0], main, r.get("contract") or "", st, version, True)))
                    placed.append((name, part, names, got, fast, group_of[id(part[0])]))
            outs = self.compiler.many(jobs, "behaviour: compile candidates" if progress else "")
            todo = []
            for name, part, names, (srcs, spans), fast, gkey in placed:
                out = outs[name]
                main, contract = part[0][2][0], part[0][1].get("contract") or ""
                if fast and isinstance(out, dict) and any(_codegen_error(e) for e in out.get("errors") or []):
                    # stack too deep without the optimizer (in a candidate or in the unit's own code): this unit's
                    # candidates are compiled with the record's own settings from now on
                    self._slow_units.add(gkey)
                    todo.append((part, len(part) > 1, False))
                    continue
                if isinstance(out, str):
                    if len(part) > 1 or fast:   # alone, then with the record's own settings
                        todo.append((part, False, fast and len(part) > 1))
                    else:
                        results[part[0][0]] = ("fail", out[:300], spans[0][3])
                    continue
                if not out.get("errors"):
                    o = self._originals.get(self._okey(part[0][1], main))
                    imm = o.immutables if isinstance(o, Original) else []
                    for m, n, sp in zip(part, names, spans):
                        got = _candidate_runtime(out, main, contract, n, imm)
                        results[m[0]] = ("ok", got, sp[3]) if got else ("fail", "candidate not in the contract", sp[3])
                    continue
                if len(part) == 1:
                    results[part[0][0]] = ("errors", {"errors": out["errors"]}, srcs, spans[0][3])
                    continue
                own: dict[int, list] = {}
                stray = False
                for e in out["errors"]:
                    loc = e.get("sourceLocation") or {}
                    k = next((k for k, (f, a, b, _) in enumerate(spans)
                              if loc.get("file") == f and a <= (loc.get("start") or -1) < b), None)
                    if k is None:
                        stray = True
                    else:
                        own.setdefault(k, []).append(e)
                if stray:
                    todo.append((part, False, fast))
                    continue
                for k, errs in own.items():
                    # read back as if compiled alone: the names at its error locations are in these sources
                    results[part[k][0]] = ("errors", {"errors": errs}, srcs, spans[k][3])
                rest = [m for k, m in enumerate(part) if k not in own]
                if rest:
                    todo.append((rest, len(rest) > 1, fast))
        return results

    def original(self, rec: dict) -> "Original | str":
        """The record's compiled original (or the untestable reason)."""
        got = self._unit(rec)
        if got is None:
            return "no_unit"
        k = self._ensure_originals([rec], {0: got})[0]
        return self._originals[k]

    def check_many(self, recs: list[dict], texts: list[str | None], progress: bool = False
                   ) -> list[BehaviourResult]:
        from tqdm.auto import tqdm

        results: list[BehaviourResult | None] = [None] * len(recs)
        units = {}
        t0 = time.perf_counter()
        for i, r in enumerate(recs):
            got = self._unit(r)
            if got is None:
                results[i] = BehaviourResult("untestable", "no_unit", f"{r.get('package')} {self.units.main_of(r) or '?'}")
            else:
                units[i] = got
        t0 = self._tick("units", t0)
        okey = self._ensure_originals(recs, units, progress)
        t0 = self._tick("originals", t0)
        # 2. candidates placed, type-checked, bound
        state: dict[int, dict] = {}
        for i in units:
            o = self._originals[okey[i]]
            r = recs[i]
            if isinstance(o, str):
                reason = o.split(":")[0]
                results[i] = BehaviourResult("untestable", reason, o)
                continue
            sel = (r.get("selector") or "").lower()
            if not sel.startswith("0x"):
                results[i] = BehaviourResult("untestable", "special_function", sel)
                continue
            try:
                _, types = abi.parse_signature(r.get("signature") or "")
            except ValueError as exc:
                results[i] = BehaviourResult("untestable", "bad_signature", str(exc))
                continue
            if not (texts[i] or "").strip():
                results[i] = BehaviourResult("untestable", "no_output")
                continue
            cand, why = candidate_function(texts[i], o)
            if cand is None:
                results[i] = BehaviourResult("untestable", why)
                continue
            main, srcs = units[i]
            if place(srcs, r.get("file") or "", r.get("solidity") or "", cand, r.get("contract") or "") is None:
                results[i] = BehaviourResult("untestable", "reference_not_found", r.get("file") or "")
                continue
            payable = (r.get("mutability") or "") == "payable"
            state[i] = {"cand": cand, "types": types, "bindings": [], "orig": o, "text0": cand, "renames": {},
                        "alts": {}, "repairs": [], "invisible": set(), "tkey": (okey[i], sel, payable),
                        "payable": payable, "signature": r.get("signature") or ""}
        # the first compile of every candidate runs (in solcjs processes) while the originals run (in py-evm)
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(self._compile_candidates, [(i, recs[i], units[i], s["cand"]) for i, s in state.items()],
                                progress)
            try:   # the originals alone: the slots and topics binding needs, the cases candidates run
                need = {s["tkey"]: (s["orig"], s["tkey"][1], recs[i].get("signature") or "", s["types"], s["payable"])
                        for i, s in state.items() if s["tkey"] not in self._traces}
                self._traces.update(self._trace_all(list(need.items()), progress))
                for i, s in state.items():
                    s["trace"] = trace = self._traces[s["tkey"]]
                    s["seen"] = trace.outcomes
                    if trace.status == "reference_timeout":
                        results[i] = BehaviourResult("untestable", "reference_timeout", trace.detail)
            finally:
                t0 = self._tick("trace originals", t0)
                first_outs = first.result()
                t0 = self._tick("first compile, waited for", t0)
        for _round in range(4):   # binding, then a repair (stage 3b), then binding what a repair exposed
            pending = [i for i in state if "code" not in state[i] and results[i] is None]
            if not pending:
                break
            outs = first_outs if _round == 0 else \
                self._compile_candidates([(i, recs[i], units[i], state[i]["cand"]) for i in pending])
            for i in pending:
                s = state[i]
                kind, got, *rest = outs[i]
                s["home"] = rest[-1]
                if kind == "fail":
                    results[i] = BehaviourResult("untestable", "did_not_compile", got, s["bindings"])
                    continue
                if kind == "ok":
                    s["code"], s["sel"] = got
                    continue
                out, s["sources"] = got, rest[0]
                names = undeclared_names(out, s["sources"])
                if not names:
                    fixes = repairs_for(out, s["sources"], s["cand"], {v["label"] for v in s["orig"].layout},
                                        s["orig"].types)
                    if fixes is not None:   # a difference of type the bytecode cannot show: compile again
                        s["repairs"] += fixes
                        s["bindings"] += [r.note for r in fixes]
                        s["cand"] = apply_repairs(s["cand"], fixes)
                        continue
                    e = out["errors"][0]
                    results[i] = BehaviourResult("untestable", "did_not_compile",
                                                 (e.get("formattedMessage") or e.get("message") or "")[:300],
                                                 s["bindings"])
                    continue
                topics = {"%064x" % t[0] for o in s["seen"] for t, _ in o.logs if t}
                reverts = {o.output[:4].hex() for o in s["seen"] if not o.success}
                touched = touched_variables(s["orig"], s["seen"], recs[i].get("tac") or "")
                s["invisible"].update(n for n in names if n in s["renames"].values())
                renames, notes, unbound = bind(names, s["cand"], s["orig"], touched, topics, reverts,
                                               recs[i].get("context") or "", s.get("home", ""), s["alts"],
                                               s["invisible"], (s["signature"].split("(")[0], len(s["types"])))
                if unbound:
                    results[i] = BehaviourResult("untestable", "unbound_name", unbound, s["bindings"] + notes)
                    continue
                s["bindings"] += notes
                s["renames"].update(renames)
                s["cand"] = apply_renames(s["cand"], renames)
        for i, s in state.items():
            if results[i] is None and "code" not in s:
                results[i] = BehaviourResult("untestable", "did_not_compile", "still undeclared names after binding",
                                             s["bindings"])
        t0 = self._tick("binding rounds", t0)
        # 3. execute: every candidate on its original's cases; those that agree, also on the cases the branch
        # search then finds (run once per original, only for originals some candidate agrees with)
        todo = [i for i in state if results[i] is None]
        verdicts = dict(zip(todo, self._compare_all([(state[i], 0) for i in todo], progress)))
        t0 = self._tick("compare", t0)
        agreed = [i for i in todo if verdicts[i][0] == "equivalent" and state[i]["trace"].branches_pending]
        self._complete_traces([state[i] for i in agreed], progress)
        t0 = self._tick("search branches", t0)
        verdicts.update(zip(agreed, self._compare_all([(state[i], state[i]["n_before"]) for i in agreed], progress,
                                                      "behaviour: candidates on new branches")))
        for i in todo:
            results[i] = _verdict(state[i], recs[i], *verdicts[i], state[i]["bindings"])
        t0 = self._tick("compare", t0)
        self._try_alternatives(recs, units, state, results)
        self._tick("alternatives", t0)
        return [r if r is not None else BehaviourResult("untestable", "no_unit") for r in results]

    def _compare_all(self, items: list[tuple[dict, int]], progress: bool = False,
                     desc: str = "behaviour: candidates") -> list[tuple[str, str, int]]:
        """(status, detail, cases compared) per (candidate state, first case to compare), run by the workers."""
        jobs = [(k, compare_candidate, (s["trace"], s["code"], s["sel"], s["types"]),
                 dict(seed=self.seed, time_limit_s=self.time_limit_s, start=start))
                for k, (s, start) in enumerate(items)]
        return self.workers.run(jobs, desc if progress else "")

    def _complete_traces(self, states: list[dict], progress: bool = False) -> None:
        """Run the branch search of these candidates' originals (once per original, then cached) and point each
        candidate at its complete trace; s["n_before"]: the cases it had already."""
        items = {s["tkey"]: (self._traces[s["tkey"]], s["orig"], s["tkey"][1], s["signature"], s["types"],
                             s["payable"]) for s in states}
        self._traces.update(self._extend_all(items, progress))
        for s in states:
            s["n_before"] = len(s["trace"].cases)
            s["trace"] = self._traces[s["tkey"]]
            s["seen"] = s["trace"].outcomes

    def _try_alternatives(self, recs, units, state, results, limit: int = 8) -> None:
        """A run that differs under a binding with equally supported alternatives (two same-depth mappings both
        written, two internal functions of one arity the original reaches) is retried under each alternative
        assignment (swapping names when an alternative is already bound): equivalence up to a consistent
        renaming of the names the unit does not declare. The first assignment that comes out equivalent is
        kept and recorded; otherwise the first result stands."""
        tries: list[tuple[int, dict[str, str]]] = []
        for i, s in state.items():
            if results[i] is None or not s["alts"] or not (
                    results[i].status == "differs" or (results[i].reason == "did_not_compile" and s["renames"])):
                continue
            made = 0
            for name, options in s["alts"].items():
                for alt in options:
                    if made >= limit:
                        break
                    ren = dict(s["renames"])
                    holder = next((k for k, v in ren.items() if v == alt), None)
                    if holder:
                        ren[holder] = ren[name]
                    ren[name] = alt
                    tries.append((i, ren))
                    made += 1
        if not tries:
            return
        self._complete_traces([state[i] for i in {i for i, _ in tries}])
        outs = self._compile_candidates([(j, recs[i], units[i],
                                          apply_repairs(apply_renames(state[i]["text0"], ren), state[i]["repairs"]))
                                         for j, (i, ren) in enumerate(tries)])
        done: set[int] = set()
        for j, (i, ren) in enumerate(tries):
            kind, got, *_ = outs[j]
            if i in done or kind != "ok":
                continue
            s = state[i]
            code, sel = got
            status, detail, n = compare_candidate(s["trace"], code, sel, s["types"],
                                                  seed=self.seed, time_limit_s=self.time_limit_s)
            if status == "differs" and results[i].reason == "did_not_compile":   # compiles now: a real result
                results[i] = BehaviourResult("differs", "", detail, s["bindings"] + [
                    f"{a} -> {b} (an alternative that type-checks)" for a, b in ren.items()
                    if s["renames"].get(a) != b], n, sum(o.success for o in s["seen"][:n]))
            if status == "equivalent":
                done.add(i)
                n_alt = sum(1 for x, _ in tries if x == i)
                notes = [f"{a} -> {b} (chosen by behaviour among {n_alt + 1} equally supported assignments)"
                         for a, b in ren.items() if s["renames"].get(a) != b]
                results[i] = _verdict(s, recs[i], status, detail, n, s["bindings"] + notes)


def _verdict(s: dict, rec: dict, status: str, detail: str, n: int, notes: list[str]) -> BehaviourResult:
    """The result of a compared candidate. Agreement on cases where the original only reverted shows equivalence
    only when the original cannot do anything else (reverts_by_construction); otherwise it is `reverts_only`."""
    ok = sum(o.success for o in s["seen"][:n])
    if status == "equivalent" and not any(o.success for o in s["seen"]):
        if reverts_by_construction(rec.get("tac") or ""):
            return BehaviourResult("equivalent", "", "the original reverts on every path (its TAC halts only by "
                                   "revert): revert data compared", notes, n, ok)
        return BehaviourResult("untestable", "reverts_only", detail or f"no case returned; the state search ran the "
                               f"original {s['trace'].searched} more times without reaching a return", notes, n, ok)
    return BehaviourResult(status, "", detail, notes, n, ok)


def summarize(results: list[BehaviourResult], n_boot: int = 1000, seed: int = 0) -> dict:
    """Counts per status and untestable reason, binding figures, and the equivalent rate with a bootstrap CI
    over all functions (untestable counts as not shown equivalent) and over the testable ones."""
    import numpy as np

    n = len(results)
    eq = np.array([r.status == "equivalent" for r in results], dtype=float)
    testable = np.array([r.status != "untestable" for r in results])
    rng = np.random.default_rng(seed)

    def ci(x):
        if len(x) == 0:
            return [None, None]
        b = [x[rng.integers(0, len(x), len(x))].mean() for _ in range(n_boot)]
        return [float(np.percentile(b, 2.5)), float(np.percentile(b, 97.5))]

    reasons: dict[str, int] = {}
    for r in results:
        if r.status == "untestable":
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return {
        "n": n, "equivalent": int(eq.sum()), "differs": sum(r.status == "differs" for r in results),
        "untestable": int(n - testable.sum()), "untestable_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "behaviour_rate": float(eq.mean()) if n else None, "behaviour_ci": ci(eq),
        "behaviour_rate_testable": float(eq[testable].mean()) if testable.any() else None,
        "behaviour_ci_testable": ci(eq[testable]),
        "binding_needed": sum(bool(r.bindings) for r in results),
        "binding_failed": reasons.get("unbound_name", 0),
        "repaired": sum(any(b.startswith(REPAIR_NOTE) for b in r.bindings) for r in results),
        # cases where the original itself returned: a function that reverts on every case is weakly tested
        "reference_ok_share": (sum(r.reference_ok for r in results) / max(1, sum(r.cases for r in results))),
    }
