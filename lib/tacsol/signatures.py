"""Known signatures (issue 14): a selector → signature table built only from sources independent of the evaluation
splits, and the hint it prints in a TAC unit's header, as decompilers do with public signature databases.

Sources, each entry naming the ones it came from:

- ``standard``: the ERC-20/721/1155/4626/2612/165, Ownable and AccessControl interfaces shipped as Solidity text in
  ``lib/tacsol/data/interfaces/standard.sol`` (what ``tacsol decompile`` hints by default);
- ``interface``: function declarations without a body (``interface`` blocks, and the bodiless functions pre-0.6 code
  declared in abstract contracts) in the npm packages a dataset was built from (the corpus' fetch cache);
- ``train``: the train split's own records. Never a validation or test record: their signatures are the labels
  the evaluation scores (:func:`leaks` proves it for a saved table).

Every selector is computed from its signature (:func:`tacsol.evm.selector`), so a hint is right whenever its
selector matches. The table is saved beside the dataset (``outputs/data/<name>/signatures.json``; the shipped
sample's beside it) and read back by :func:`table_for`. A record prepared by :func:`hint_records` carries
``signature_hint`` (empty when unknown), which :func:`tacsol.prompt.build_prompt` prints after the TAC header
(:func:`annotate`, docs/tac-format.md).

Known events, the same way: a topic → event signature table (``Table.events``) from the same three kinds of source:
``standard`` (the events declared in standard.sol), ``interface`` (events declared inside ``interface`` blocks of
the packages) and ``train`` (events of a train record's package, or its dependencies, that the record's own source
emits: ``emit Name(`` in its function or the internal functions it reaches, when the name has one declaration in
the record's file, or else in its package). A record prepared with
``events=True`` has the known topics of its log statements printed as their signatures (:func:`name_events`:
``log3(Transfer(address,address,uint256), v6, v8; arg2)`` for ``log3(0xddf252ad…, v6, v8; arg2)``): exact, since
each topic is the keccak256 of the signature that replaces it, and 4-8 Llama-3 tokens where the 64 hex digits take
about 40."""
from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import corpus, evm, paths
from .ioutil import atomic_write_text

FORMAT = 2  # 2: events; a format-1 table (selectors only) still loads, with events None
FILE = "signatures.json"
STANDARD = Path(__file__).resolve().parent / "data" / "interfaces" / "standard.sol"
SOURCES = ("standard", "interface", "train")
HINT_SEP = "  // "  # between a unit's header line and its known signature
_HEADER_SELECTOR = re.compile(r"function (0x[0-9a-f]{8})\(")
_BLOCK = re.compile(r"\b(contract|library|interface)\s+([A-Za-z_$][\w$]*)[^{;]*\{")
_NOT_EXTERNAL = re.compile(r"\b(internal|private)\b")
_EMIT = re.compile(r"\bemit\s+(?:[A-Za-z_$][\w$]*\.)*([A-Za-z_$][\w$]*)\s*\(")
_LOG_LINE = re.compile(r"\blog[0-4]\(")
_HEX = re.compile(r"\b0x[0-9a-f]{1,64}\b")


# ------------------------------------------------------------------------------------------------- the table
@dataclasses.dataclass
class Entry:
    signature: str
    sources: dict[str, list[str]]  # "standard" -> interface names; "interface" / "train" -> package keys


@dataclasses.dataclass
class Table:
    entries: dict[str, Entry] = dataclasses.field(default_factory=dict)  # selector -> entry
    built_from: dict[str, Any] = dataclasses.field(default_factory=dict)
    conflicts: list[dict] = dataclasses.field(default_factory=list)  # a selector claimed by two signatures
    events: dict[str, Entry] | None = dataclasses.field(default_factory=dict)  # topic -> entry; None: format 1

    def get(self, selector: str) -> str:
        e = self.entries.get(selector)
        return e.signature if e else ""

    def add(self, signature: str, source: str, origin: str) -> None:
        sel = evm.selector(signature)
        e = self.entries.get(sel)
        if e is None:
            self.entries[sel] = Entry(signature, {source: [origin]})
        elif e.signature != signature:  # a 4-byte collision: the first source (standard, interface, train) wins
            if len(self.conflicts) < 100:
                self.conflicts.append({"selector": sel, "kept": e.signature, "dropped": signature, "source": source})
        elif origin not in e.sources.setdefault(source, []):
            e.sources[source].append(origin)

    def add_event(self, signature: str, source: str, origin: str) -> None:
        e = self.events.setdefault(topic(signature), Entry(signature, {}))
        if origin not in e.sources.setdefault(source, []):  # a 32-byte hash: two signatures never share one
            e.sources[source].append(origin)

    def event_names(self) -> dict[int, str]:
        """Topic (as a number, the way TAC may print it without leading zeros) -> event signature."""
        return {int(t, 16): e.signature for t, e in (self.events or {}).items()}

    def restricted(self, sources: Sequence[str] = SOURCES, exclude_packages: Iterable[str] = ()) -> "Table":
        """The entries (and events) still attested by `sources` once the packages in `exclude_packages` (names or
        name@version, a run's held-out packages) are removed from every source."""
        from .train import in_packages

        drop = list(exclude_packages)

        def kept(entries: Mapping[str, Entry]) -> dict[str, Entry]:
            out = {}
            for key, e in entries.items():
                srcs = {k: [o for o in v if k == "standard" or not in_packages({"package": o}, drop)]
                        for k, v in e.sources.items() if k in sources}
                srcs = {k: v for k, v in srcs.items() if v}
                if srcs:
                    out[key] = Entry(e.signature, srcs)
            return out

        return Table(kept(self.entries), {**self.built_from, "sources": list(sources), "excluded_packages": drop},
                     events=None if self.events is None else kept(self.events))

    def counts(self) -> dict[str, int]:
        ev = self.events or {}
        return {"entries": len(self.entries),
                **{s: sum(1 for e in self.entries.values() if s in e.sources) for s in SOURCES},
                "events": len(ev), **{f"events_{s}": sum(1 for e in ev.values() if s in e.sources) for s in SOURCES}}

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "built_from": self.built_from, "counts": self.counts(), "conflicts": self.conflicts,
                "entries": {sel: dataclasses.asdict(self.entries[sel]) for sel in sorted(self.entries)},
                "events": {t: dataclasses.asdict(e) for t, e in sorted((self.events or {}).items())}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Table":
        if doc.get("format") not in (1, FORMAT):
            raise ValueError(f"signature table format {doc.get('format')!r}, expected {FORMAT}")
        events = {t: Entry(**e) for t, e in doc["events"].items()} if doc.get("format") == FORMAT else None
        return cls({sel: Entry(**e) for sel, e in doc["entries"].items()}, dict(doc.get("built_from") or {}),
                   list(doc.get("conflicts") or []), events)


def topic(signature: str) -> str:
    """An event's topic 0: the keccak256 of its signature, as 0x + 64 hex digits."""
    return "0x" + evm.keccak256(signature.encode()).hex()


def save(table: Table, folder: str | Path) -> Path:
    """folder/signatures.json, one entry per line (readable diffs for the shipped sample's)."""
    return save_as(table, Path(folder) / FILE)


def save_as(table: Table, path: str | Path) -> Path:
    """The table at `path` (atomically), one entry per line."""
    doc = table.to_json()
    parts = {k: doc.pop(k) for k in ("entries", "events")}
    head = json.dumps(doc, indent=1)[:-2]
    body = ",\n".join(f' {json.dumps(k)}: {{\n' + ",\n".join(f"  {json.dumps(key)}: {json.dumps(e)}"
                                                                for key, e in v.items()) + "\n }"
                       for k, v in parts.items())
    out = atomic_write_text(Path(path), f'{head},\n{body}\n}}\n')
    out.chmod(0o644)  # mkstemp files are 0600; the sample's ships in the repo
    return out


def load(path: str | Path) -> Table:
    return Table.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------- declarations in Solidity
@dataclasses.dataclass
class Scope:
    """Named types a declaration may use: struct members, enums, user value types and contract-like names (ABI
    address). A name declared differently in two files of a package is ambiguous and left out."""
    structs: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    enums: set[str] = dataclasses.field(default_factory=set)
    value_types: dict[str, str] = dataclasses.field(default_factory=dict)
    contracts: set[str] = dataclasses.field(default_factory=set)


def _blocks(src: str) -> list[tuple[str, int, int, str]]:
    """(name, start, end, kind) of each contract/library/interface (the kind) in comment-free source: src[start:end]
    is its body."""
    from .evaluate.solidity import match_close

    out, pos = [], 0
    while (m := _BLOCK.search(src, pos)) is not None:
        end = match_close(src, m.end() - 1)
        if end < 0:
            break
        out.append((m.group(2), m.end(), end, m.group(1)))
        pos = end + 1
    return out


def _items(body: str) -> list[str]:
    """Top-level items of a block body: each ends at a ';' or at the '}' closing its first '{' (strings skipped)."""
    from .evaluate.solidity import _string_end

    items, start, depth, i = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        if c in "\"'":
            i = _string_end(body, i)
            continue
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and c in ";}":
            items.append(body[start:i + 1].strip())
            start = i + 1
        i += 1
    return [x for x in items if x]


def _file_scope(src: str) -> Scope:
    """Types declared in one file: at file level and inside each block (referred to by their short name)."""
    from .evaluate.solidity import parse_declarations

    blocks = _blocks(src)
    outside, pos = [], 0
    for _, start, end, _ in blocks:
        outside.append(_BLOCK.sub(";", src[pos:start]))
        pos = end + 1
    outside.append(src[pos:])
    scope = Scope(contracts={b[0] for b in blocks})
    for text in ["".join(outside)] + [src[start:end] for _, start, end, _ in blocks]:
        d = parse_declarations(text)
        scope.structs.update(d.structs)
        scope.enums |= d.enums
        scope.value_types.update(d.value_types)
    return scope


def merge_scopes(scopes: Iterable[Scope]) -> Scope:
    """One scope for a package; a name whose declarations disagree is dropped (its uses stay unresolved)."""
    out, bad = Scope(), set()
    for s in scopes:
        for name, members in s.structs.items():
            if out.structs.setdefault(name, members) != members:
                bad.add(name)
        for name, under in s.value_types.items():
            if out.value_types.setdefault(name, under) != under:
                bad.add(name)
        out.enums |= s.enums
        out.contracts |= s.contracts
    kinds = [set(out.structs), out.enums, set(out.value_types), out.contracts]
    bad |= {n for i, a in enumerate(kinds) for b in kinds[i + 1:] for n in a & b}
    for name in bad:
        out.structs.pop(name, None)
        out.value_types.pop(name, None)
        out.enums.discard(name)
        out.contracts.discard(name)
    return out


def _resolvable(t: str, scope: Scope, seen: frozenset = frozenset()) -> bool:
    """Whether every name in a parameter type is elementary or declared in `scope` (canonical_type would call an
    unknown name an address)."""
    from .evaluate.solidity import _ELEMENTARY

    m = re.fullmatch(r"([A-Za-z_$][\w$.]*)((?:\[\d*\])*)", t.replace(" ", ""))
    if not m:
        return False
    base = m.group(1)
    if base != "function" and _ELEMENTARY.fullmatch(base):
        return True
    short = base.split(".")[-1]
    if short in scope.structs:
        return short not in seen and all(_resolvable(x, scope, seen | {short}) for x in scope.structs[short])
    if short in scope.value_types:
        return _resolvable(scope.value_types[short], scope, seen)
    return short in scope.enums or short in scope.contracts


def declared_signatures(src: str, scope: Scope) -> tuple[list[tuple[str, str]], int]:
    """(block name, canonical signature) of each external/public function declared without a body in comment-free
    source, and how many such declarations use a type the scope cannot resolve (skipped)."""
    from .evaluate.solidity import Declarations, ParseFailure, canonical_signature, find_function

    decl = Declarations(structs=scope.structs, enums=scope.enums, value_types=scope.value_types)
    found, unresolved = [], 0
    for name, start, end, _ in _blocks(src):
        for item in _items(src[start:end]):
            if not item.startswith("function") or not item.endswith(";") or "{" in item:
                continue
            try:
                fn = find_function(item)
            except ParseFailure:
                continue
            if fn.kind != "function" or _NOT_EXTERNAL.search(fn.attributes):
                continue
            if not all(_resolvable(t, scope) for t, _ in fn.params):
                unresolved += 1
                continue
            found.append((name, canonical_signature(fn, decl)))
    return found, unresolved


def declared_events(src: str, scope: Scope) -> tuple[list[tuple[str, str, str]], int]:
    """(name and kind (contract/library/interface) of the block declaring it, canonical signature) of each
    non-anonymous event declared in a block of comment-free source, and how many use a type the scope cannot
    resolve (skipped)."""
    from .evaluate.solidity import Declarations, ParseFailure, canonical_signature, find_function

    decl = Declarations(structs=scope.structs, enums=scope.enums, value_types=scope.value_types)
    found, unresolved = [], 0
    for name, start, end, kind in _blocks(src):
        for item in _items(src[start:end]):
            if not re.match(r"event\s", item) or not item.endswith(";"):
                continue
            try:  # an event's parameter list reads as a function's ("indexed" is dropped like a location)
                ev = find_function("function" + item[len("event"):])
            except ParseFailure:
                continue
            if re.search(r"\banonymous\b", ev.attributes):
                continue  # no topic 0 to name
            if not all(_resolvable(t, scope) for t, _ in ev.params):
                unresolved += 1
                continue
            found.append((name, kind, canonical_signature(ev, decl)))
    return found, unresolved


def _package_files(root: Path) -> Iterable[tuple[str, str, Scope]]:
    """(file path in the package, comment-free source, the scope its declarations resolve in) of each .sol file."""
    texts = {f.relative_to(root).as_posix(): corpus.strip_comments(f.read_text(encoding="utf-8", errors="replace"))
             for f in sorted(root.rglob("*.sol")) if f.is_file()}
    scopes = {rel: _file_scope(src) for rel, src in texts.items()}
    shared = merge_scopes(scopes.values())
    for rel, src in texts.items():
        local = scopes[rel]
        yield rel, src, Scope({**shared.structs, **local.structs}, shared.enums | local.enums,
                              {**shared.value_types, **local.value_types}, shared.contracts | local.contracts)


@dataclasses.dataclass
class PackageDeclarations:
    """What a package's .sol files declare, read once: bodiless external functions (file path in the package,
    signature) and events (file path, kind of the declaring block, signature), with how many of each use a type
    the scope cannot resolve."""
    functions: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    functions_unresolved: int = 0
    events_unresolved: int = 0


def package_declarations(root: Path) -> PackageDeclarations:
    """Every function and event declaration in a package's .sol files (each file read and scoped once)."""
    out = PackageDeclarations()
    for rel, src, scope in _package_files(root):
        sigs, n = declared_signatures(src, scope)
        out.functions += [(rel, s) for _, s in sigs]
        out.functions_unresolved += n
        evs, n = declared_events(src, scope)
        out.events += [(rel, kind, sig) for _, kind, sig in evs]
        out.events_unresolved += n
    return out


@lru_cache(maxsize=1)
def standard_table() -> Table:
    """The shipped standard interfaces (lib/tacsol/data/interfaces/standard.sol)."""
    src = corpus.strip_comments(STANDARD.read_text(encoding="utf-8"))
    sigs, unresolved = declared_signatures(src, _file_scope(src))
    if unresolved:
        raise ValueError(f"{STANDARD}: {unresolved} declaration(s) with types the parser cannot resolve")
    t = Table(built_from={"standard": STANDARD.name})
    for name, sig in sigs:
        t.add(sig, "standard", name)
    events, unresolved = declared_events(src, _file_scope(src))
    if unresolved:
        raise ValueError(f"{STANDARD}: {unresolved} event(s) with types the parser cannot resolve")
    for name, _, sig in events:
        t.add_event(sig, "standard", name)
    return t


# ------------------------------------------------------------------------------------------------- building
def emitted(record: Mapping[str, Any]) -> set[str]:
    """Names of the events a record's source emits: its function and the internal functions it reaches
    (``context``)."""
    return set(_EMIT.findall(f"{record.get('solidity') or ''}\n{record.get('context') or ''}"))


def build(train_records: Iterable[Mapping[str, Any]], package_roots: Mapping[str, Path] | None = None, *,
          dataset: str = "", package_deps: Mapping[str, Sequence[str]] | None = None) -> Table:
    """The table from the standard interfaces, the declarations in `package_roots` (package key -> fetched root)
    and the `train_records` (records of any other split are refused: their signatures are evaluation labels).
    Events: those declared in interface blocks of the packages, and those a train record emits, looked up by name
    among the declarations of the record's file, else of its package and of the packages in
    `package_deps[its package]`, when exactly one signature has that name there."""
    t = Table(built_from={"dataset": dataset, "standard": STANDARD.name,
                          "interface_packages": sorted(package_roots or {}), "train_records": 0,
                          "train_signature_mismatch": 0, "interface_unresolved": 0, "events_unresolved": 0,
                          "train_events_undeclared": 0, "train_events_ambiguous": 0})
    std = standard_table()
    for sel, e in std.entries.items():
        t.entries[sel] = Entry(e.signature, {k: list(v) for k, v in e.sources.items()})
    for tp, e in (std.events or {}).items():
        t.events[tp] = Entry(e.signature, {k: list(v) for k, v in e.sources.items()})
    declared: dict[Any, dict[str, set[str]]] = {}   # package, or (package, file) -> event name -> signatures
    for key, root in sorted((package_roots or {}).items()):
        found = package_declarations(Path(root))
        t.built_from["interface_unresolved"] += found.functions_unresolved
        t.built_from["events_unresolved"] += found.events_unresolved
        for _, sig in found.functions:
            t.add(sig, "interface", key)
        for rel, kind, sig in found.events:
            for where in (key, (key, f"{key.rpartition('@')[0]}/{rel}")):   # a record's `file`: package name/path
                declared.setdefault(where, {}).setdefault(sig.partition("(")[0], set()).add(sig)
            if kind == "interface":
                t.add_event(sig, "interface", key)
    for r in train_records:
        if r.get("split", "train") != "train":
            raise ValueError(f"record {r.get('id')!r} is in split {r.get('split')!r}: only train records may "
                             "build the signature table")
        pkg = str(r.get("package") or "unknown")
        for name in emitted(r):
            # the declaration in the record's own file, else the one in its package and dependencies; of two
            # declarations of the name, which one the record emits is not known, and the other may be a held-out
            # contract's own: neither is taken
            sigs = declared.get((pkg, str(r.get("file") or "")), {}).get(name) or set().union(
                *(declared.get(k, {}).get(name, set()) for k in [pkg, *(package_deps or {}).get(pkg, [])]))
            t.built_from["train_events_undeclared"] += not sigs
            t.built_from["train_events_ambiguous"] += len(sigs) > 1
            if len(sigs) == 1:
                t.add_event(next(iter(sigs)), "train", pkg)
        sel, sig = str(r.get("selector") or ""), str(r.get("signature") or "")
        if not sel.startswith("0x") or not sig:
            continue
        t.built_from["train_records"] += 1
        if evm.selector(sig) != sel:
            t.built_from["train_signature_mismatch"] += 1
            continue
        t.add(sig, "train", pkg)
    return t


def leaks(table: Table, splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Entries not attested by an independent source: no source, a source other than standard/interface/train, a
    selector (topic) that is not its signature's, or a train claim that no train record backs (an entry copied from
    a validation or test record; for an event: no train record of the package emits an event of that name).
    Empty = no label leaked."""
    train = {(r.get("selector"), r.get("signature"), str(r.get("package") or "unknown"))
             for r in splits.get("train", [])}
    emits = {(name, str(r.get("package") or "unknown")) for r in splits.get("train", []) for name in emitted(r)}
    problems = []
    for kind, entries, key_of, backed in (
            ("selector", table.entries, lambda e: evm.selector(e.signature),
             lambda key, e, pkg: (key, e.signature, pkg) in train),
            ("topic", table.events or {}, lambda e: topic(e.signature),
             lambda key, e, pkg: (e.signature.partition("(")[0], pkg) in emits)):
        for key, e in sorted(entries.items()):
            if not e.sources:
                problems.append(f"{key} {e.signature}: no source")
            if set(e.sources) - set(SOURCES):
                problems.append(f"{key} {e.signature}: source(s) {sorted(set(e.sources) - set(SOURCES))}")
            if key_of(e) != key:
                problems.append(f"{key} {e.signature}: the signature's {kind} is {key_of(e)}")
            for pkg in e.sources.get("train", []):
                if not backed(key, e, pkg):
                    problems.append(f"{key} {e.signature}: no train record of {pkg} has it")
    return problems


# --------------------------------------------------------------------------------------- where tables live
def dataset_folder(spec: str) -> Path | None:
    """The folder a dataset's signatures.json lives in ("sample": the shipped sample's; a name under outputs/data
    or a build folder); None for a records file or anything else."""
    from .pairs import SAMPLE_DIR

    if str(spec) == "sample":
        return SAMPLE_DIR
    for c in (paths.resolve(spec), paths.outputs_dir() / "data" / str(spec)):
        if c.is_dir():
            return c.parent if c.name == "dataset" else c
    return None


def package_dependencies(keys: Iterable[str]) -> dict[str, list[str]]:
    """The manifest's dependencies (package@version) of each package named by `keys`."""
    want = set(keys)
    return {p.key: [f"{d}@{v}" for d, v in p.deps.items()] for p in corpus.load_manifest() if p.key in want}


def package_roots(keys: Iterable[str]) -> dict[str, Path]:
    """Fetched roots of the manifest packages named by `keys` (package@version) and of their dependencies."""
    want = set(keys)
    needed = want | {d for deps in package_dependencies(want).values() for d in deps}
    return {p.key: corpus.fetch_package(p) for p in corpus.load_manifest() if p.key in needed and corpus.is_fetched(p)}


def write_for_dataset(folder: str | Path, splits: Mapping[str, Sequence[Mapping[str, Any]]], dataset: str) -> Table:
    """Build a dataset's table (its train split, the declarations of the packages its records come from and their
    dependencies, the standard interfaces), check it for leaks and save it in `folder`."""
    pkgs = {r["package"] for s in splits.values() for r in s if r.get("package")}
    table = build(splits.get("train", []), package_roots(pkgs), dataset=dataset,
                  package_deps=package_dependencies(pkgs))
    problems = leaks(table, splits)
    if problems:
        raise AssertionError(f"signature table of {dataset!r} leaks: {problems[:5]}")
    save(table, folder)
    return table


def build_for_dataset(spec: str) -> Table:
    """:func:`write_for_dataset` for a dataset by name or folder ("sample": the shipped sample's table)."""
    from .train import load_records

    folder = dataset_folder(spec)
    if folder is None:
        raise FileNotFoundError(f"{spec!r}: not a dataset folder (a records file has no place for {FILE})")
    return write_for_dataset(folder, load_records(spec), str(spec))


def named_table(spec: str) -> Table | None:
    """A table by name, for tacsol decompile: "standard" (the shipped interfaces), "none" (None), a signatures.json
    file, or a dataset (name or folder) whose table is saved beside it."""
    if spec == "none":
        return None
    if spec == "standard":
        return standard_table()
    path = paths.resolve(spec)
    if path.is_file():
        return load(path)
    folder = dataset_folder(spec)
    if folder is None or not (folder / FILE).is_file():
        raise FileNotFoundError(f"--signatures {spec!r}: not standard, none, a {FILE} or a dataset with one")
    return load(folder / FILE)


def sidecar(records_file: str | Path) -> Path:
    """Where a records file's own table lives: beside it, ``<stem>.signatures.json``."""
    path = paths.resolve(records_file)
    return path.with_name(f"{path.stem}.{FILE}")


def table_for(spec: str, splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> Table:
    """A dataset's table: saved beside it (built and saved first when missing: a dataset built before tables
    existed); for a records file, the table saved beside it as ``<stem>.signatures.json`` (a dataset's, copied there
    by a tool that rewrites its splits), else built in memory from the standard interfaces and `splits["train"]`."""
    folder = dataset_folder(spec)
    if folder is None:
        beside = sidecar(spec)
        if beside.is_file():
            table = load(beside)
            problems = leaks(table, splits)
            if problems:
                raise ValueError(f"{beside}: the table names what the file's train split does not back "
                                 f"(a label would leak): {problems[:3]}")
            return table
        return build(splits.get("train", []), dataset=str(spec))
    if (folder / FILE).is_file():
        table = load(folder / FILE)
        if table.events is not None:
            return table
    return build_for_dataset(spec)  # none saved, or one saved before events (format 1): built again


# --------------------------------------------------------------------------------------------- the hint
def annotate(tac: str, signature: str) -> str:
    """The TAC with `signature` after its header line: ``function 0x095ea7b3(address,uint256) nonpayable  //
    approve(address,uint256)`` (unchanged when the signature is unknown)."""
    if not signature:
        return tac
    head, nl, rest = tac.partition("\n")
    return f"{head}{HINT_SEP}{signature}{nl}{rest}"


def split_hint(tac: str) -> tuple[str, str]:
    """Inverse of :func:`annotate`: (TAC, signature or "")."""
    head, nl, rest = tac.partition("\n")
    base, sep, hint = head.partition(HINT_SEP)
    return (f"{base}{nl}{rest}", hint) if sep else (tac, "")


def selector_of(record: Mapping[str, Any]) -> str:
    """A record's selector, or the one its TAC header names (a TAC file given to tacsol decompile)."""
    sel = str(record.get("selector") or "")
    if sel.startswith("0x"):
        return sel
    m = _HEADER_SELECTOR.match(str(record.get("tac") or ""))
    return m.group(1) if m else ""


def name_events(tac: str, names: Mapping[int, str]) -> str:
    """The TAC with each known event topic of its log statements printed as the event's signature (``names``:
    :meth:`Table.event_names`): exact, the signature stands for its keccak256 (docs/tac-format.md, Known events)."""
    if not names or "log" not in tac:
        return tac
    return "\n".join(_HEX.sub(lambda m: names.get(int(m.group(0), 16), m.group(0)), line)
                     if _LOG_LINE.search(line) else line for line in tac.split("\n"))


def hint_records(records: Iterable[Mapping[str, Any]], table: Table, *, in_header: bool = True,
                 events: bool = False) -> list[dict]:
    """Copies of `records` prepared for a prompt with known signatures. in_header (training with
    ``signature_hints``): ``signature_hint`` = the table's signature or "", so the prompt shows the table's
    knowledge and not the record's own signature. Otherwise (an adapter trained without hints, decompiling
    bytecode): the table fills an empty ``signature``, the metadata line such an adapter was trained to read.
    events (training with ``event_names``): the TAC's known event topics named (:func:`name_events`)."""
    names = table.event_names() if events else {}
    out = []
    for r in records:
        known = table.get(selector_of(r))
        r = {**r, "tac": name_events(str(r.get("tac") or ""), names)} if names else {**r}
        if in_header:
            r["signature_hint"] = known
        else:
            r["signature"] = r.get("signature") or known
        out.append(r)
    return out


def hint_train_records(records: Sequence[Mapping[str, Any]], table: Table, *, events: bool = False) -> list[dict]:
    """Training copies of `records` (train split) with the hint a held-out function would get: the table without
    the record's own near-duplicate group (``group``). An entry backed by standard or interface declarations is
    always shown; one that only the train split backs is shown when a train record of another group, from a package
    the table kept, has the same signature (another implementation of it). Without this every train prompt names its
    function (the table holds the whole train split) while 30-45% of held-out ones stay unnamed, and the model,
    never trained on an unnamed function, writes a header without a name (docs/reference-run.md).
    events: the TAC's event topics named the same way: an event only the train split backs is named when a train
    record of another contract (``contract_key``) emits it, as a contract held out of training would see it."""
    backers: dict[str, set] = {}
    for r in records:
        sel = selector_of(r)
        e = table.entries.get(sel)
        if e and r.get("signature") == e.signature and str(r.get("package") or "unknown") in e.sources.get("train", []):
            backers.setdefault(sel, set()).add(r.get("group"))
    emitters: dict[str, set] = {}   # event name -> (package, contract) of the train records emitting it
    if events:
        for r in records:
            for name in emitted(r):
                emitters.setdefault(name, set()).add((str(r.get("package") or "unknown"), r.get("contract_key")))
    known = (table.events or {}) if events else {}
    always = {int(tp, 16): e.signature for tp, e in known.items() if any(k != "train" for k in e.sources)}
    backed_by = {int(tp, 16): (e.signature, {c for p, c in emitters.get(e.signature.partition("(")[0], ())
                                             if p in e.sources["train"]})   # train-only: the contracts emitting it
                 for tp, e in known.items() if int(tp, 16) not in always}
    visible: dict[Any, dict[int, str]] = {}   # per contract: the events a held-out contract would see named
    out = []
    for r in records:
        sel = selector_of(r)
        e = table.entries.get(sel)
        shown = bool(e) and (any(k != "train" for k in e.sources) or bool(backers.get(sel, set()) - {r.get("group")}))
        tac = str(r.get("tac") or "")
        if known:
            own = r.get("contract_key")
            if own not in visible:
                visible[own] = {**always, **{tp: sig for tp, (sig, cs) in backed_by.items() if cs - {own}}}
            tac = name_events(tac, visible[own])
        out.append({**r, "tac": tac, "signature_hint": e.signature if shown else ""})
    return out


def coverage(table: Table, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Share of `records` (functions with a selector) whose selector the table resolves, per record and per distinct
    selector, and by the sources that resolve it."""
    recs = [r for r in records if str(r.get("selector") or "").startswith("0x")]
    hit = [r for r in recs if table.get(r["selector"])]
    right = sum(1 for r in hit if table.get(r["selector"]) == r.get("signature"))
    sels = {r["selector"] for r in recs}
    known = {s for s in sels if table.get(s)}
    by = {src: sum(1 for s in known if src in table.entries[s].sources) for src in SOURCES}
    only_train = sum(1 for s in known if set(table.entries[s].sources) == {"train"})
    return {"records": len(recs), "records_resolved": len(hit), "records_resolved_share": _share(len(hit), len(recs)),
            "records_signature_equal": right, "selectors": len(sels), "selectors_resolved": len(known),
            "selectors_resolved_share": _share(len(known), len(sels)), "selectors_by_source": by,
            "selectors_train_only": only_train, "events": event_coverage(table, records)}


def event_coverage(table: Table, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Share of the hash-like constants (40 or more hex digits) of the records' log statements that the table
    names, per occurrence and per distinct constant."""
    names = table.event_names()
    seen = [int(h, 16) for r in records for line in str(r.get("tac") or "").split("\n") if _LOG_LINE.search(line)
            for h in _HEX.findall(line) if len(h) >= 42]
    distinct = set(seen)
    return {"topics": len(seen), "topics_named": sum(1 for t in seen if t in names),
            "topics_named_share": _share(sum(1 for t in seen if t in names), len(seen)),
            "distinct_topics": len(distinct), "distinct_topics_named": len(distinct & set(names)),
            "distinct_topics_named_share": _share(len(distinct & set(names)), len(distinct))}


def _share(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None
