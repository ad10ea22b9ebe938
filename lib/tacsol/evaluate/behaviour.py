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
     first touched (seed_value, seed_code). Six storage states, 24 cases: boundary and random ABI arguments,
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
runs only for originals a candidate agrees with, and originals' traces are cached on disk.

Modules: this one compiles the units, places the candidate and runs the stages (Harness); binding.py binds names
(stage 3), repair.py makes the type-only repairs (stage 3b), cases.py holds the cases, storage states and the
comparison of outcomes, trace.py the runs and searches (stages 4-5), execution.py the EVM."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .. import corpus, evm, paths
from . import abi, layout
from .binding import CANDIDATE, _only_declaration, apply_renames, bind, touched_variables, undeclared_names
from .cases import N_CASES, RESPONDERS, make_cases, reverts_by_construction, slot_shapes
from .repair import NOTE as REPAIR_NOTE, apply_repairs, repairs_for
from .solidity import ParseFailure, find_function, getter_function, match_close
from .trace import Trace, compare_candidate, extend_branches, plain_trace, trace_original

# the shipped sample's test units (tools/sample_units.py): the harness runs on the sample without the npm cache
SAMPLE_UNITS = Path(__file__).resolve().parent.parent / "data" / "sample" / "units.json.gz"
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
# (t10: Trace and Case moved to trace.py and cases.py, and a pickle names the module of its classes; t11: storage
# state 5, ones, and 24 cases)
TRACE_FORMAT = "t11"


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
    text = getter_function(fn, CANDIDATE, original.structs)
    return (text, "") if text is not None else (None, "struct_getter")


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
