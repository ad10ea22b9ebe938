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
(:func:`annotate`, docs/tac-format.md)."""
from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import corpus, evm, paths
from .ioutil import atomic_write_text

FORMAT = 1
FILE = "signatures.json"
STANDARD = Path(__file__).resolve().parent / "data" / "interfaces" / "standard.sol"
SOURCES = ("standard", "interface", "train")
HINT_SEP = "  // "  # between a unit's header line and its known signature
_HEADER_SELECTOR = re.compile(r"function (0x[0-9a-f]{8})\(")
_BLOCK = re.compile(r"\b(contract|library|interface)\s+([A-Za-z_$][\w$]*)[^{;]*\{")
_NOT_EXTERNAL = re.compile(r"\b(internal|private)\b")


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

    def restricted(self, sources: Sequence[str] = SOURCES, exclude_packages: Iterable[str] = ()) -> "Table":
        """The entries still attested by `sources` once the packages in `exclude_packages` (names or name@version,
        a run's held-out packages) are removed from every source."""
        from .train import in_packages

        drop = list(exclude_packages)
        out = Table(built_from={**self.built_from, "sources": list(sources), "excluded_packages": drop})
        for sel, e in self.entries.items():
            kept = {k: [o for o in v if k == "standard" or not in_packages({"package": o}, drop)]
                    for k, v in e.sources.items() if k in sources}
            kept = {k: v for k, v in kept.items() if v}
            if kept:
                out.entries[sel] = Entry(e.signature, kept)
        return out

    def counts(self) -> dict[str, int]:
        return {"entries": len(self.entries),
                **{s: sum(1 for e in self.entries.values() if s in e.sources) for s in SOURCES}}

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "built_from": self.built_from, "counts": self.counts(), "conflicts": self.conflicts,
                "entries": {sel: dataclasses.asdict(self.entries[sel]) for sel in sorted(self.entries)}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Table":
        if doc.get("format") != FORMAT:
            raise ValueError(f"signature table format {doc.get('format')!r}, expected {FORMAT}")
        return cls({sel: Entry(**e) for sel, e in doc["entries"].items()}, dict(doc.get("built_from") or {}),
                   list(doc.get("conflicts") or []))


def save(table: Table, folder: str | Path) -> Path:
    """folder/signatures.json, one entry per line (readable diffs for the shipped sample's)."""
    doc = table.to_json()
    entries = doc.pop("entries")
    head = json.dumps(doc, indent=1)[:-2]
    lines = ",\n".join(f"  {json.dumps(sel)}: {json.dumps(e)}" for sel, e in entries.items())
    path = atomic_write_text(Path(folder) / FILE, f'{head},\n "entries": {{\n{lines}\n }}\n}}\n')
    path.chmod(0o644)  # mkstemp files are 0600; the sample's ships in the repo
    return path


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


def _blocks(src: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of each contract/library/interface in comment-free source: src[start:end] is its body."""
    from .evaluate.solidity import match_close

    out, pos = [], 0
    while (m := _BLOCK.search(src, pos)) is not None:
        end = match_close(src, m.end() - 1)
        if end < 0:
            break
        out.append((m.group(2), m.end(), end))
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
    for _, start, end in blocks:
        outside.append(_BLOCK.sub(";", src[pos:start]))
        pos = end + 1
    outside.append(src[pos:])
    scope = Scope(contracts={name for name, _, _ in blocks})
    for text in ["".join(outside)] + [src[start:end] for _, start, end in blocks]:
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
    for name, start, end in _blocks(src):
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


def package_declarations(root: Path) -> tuple[list[tuple[str, str]], int]:
    """(file path in the package, signature) of every declaration in a package's .sol files, + unresolved count."""
    texts = {f.relative_to(root).as_posix(): corpus.strip_comments(f.read_text(encoding="utf-8", errors="replace"))
             for f in sorted(root.rglob("*.sol")) if f.is_file()}
    scopes = {rel: _file_scope(src) for rel, src in texts.items()}
    shared = merge_scopes(scopes.values())
    found, unresolved = [], 0
    for rel, src in texts.items():
        local = scopes[rel]
        scope = Scope({**shared.structs, **local.structs}, shared.enums | local.enums,
                      {**shared.value_types, **local.value_types}, shared.contracts | local.contracts)
        sigs, n = declared_signatures(src, scope)
        found += [(rel, s) for _, s in sigs]
        unresolved += n
    return found, unresolved


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
    return t


# ------------------------------------------------------------------------------------------------- building
def build(train_records: Iterable[Mapping[str, Any]], package_roots: Mapping[str, Path] | None = None, *,
          dataset: str = "") -> Table:
    """The table from the standard interfaces, the declarations in `package_roots` (package key -> fetched root)
    and the `train_records` (records of any other split are refused: their signatures are evaluation labels)."""
    t = Table(built_from={"dataset": dataset, "standard": STANDARD.name,
                          "interface_packages": sorted(package_roots or {}), "train_records": 0,
                          "train_signature_mismatch": 0, "interface_unresolved": 0})
    for sel, e in standard_table().entries.items():
        t.entries[sel] = Entry(e.signature, {k: list(v) for k, v in e.sources.items()})
    for key, root in sorted((package_roots or {}).items()):
        found, unresolved = package_declarations(Path(root))
        t.built_from["interface_unresolved"] += unresolved
        for _, sig in found:
            t.add(sig, "interface", key)
    for r in train_records:
        if r.get("split", "train") != "train":
            raise ValueError(f"record {r.get('id')!r} is in split {r.get('split')!r}: only train records may "
                             "build the signature table")
        sel, sig = str(r.get("selector") or ""), str(r.get("signature") or "")
        if not sel.startswith("0x") or not sig:
            continue
        t.built_from["train_records"] += 1
        if evm.selector(sig) != sel:
            t.built_from["train_signature_mismatch"] += 1
            continue
        t.add(sig, "train", str(r.get("package") or "unknown"))
    return t


def leaks(table: Table, splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Entries not attested by an independent source: no source, a source other than standard/interface/train, a
    selector that is not its signature's, or a train claim that no train record backs (an entry copied from a
    validation or test record). Empty = no label leaked."""
    train = {(r.get("selector"), r.get("signature"), str(r.get("package") or "unknown"))
             for r in splits.get("train", [])}
    problems = []
    for sel, e in sorted(table.entries.items()):
        if not e.sources:
            problems.append(f"{sel} {e.signature}: no source")
        if set(e.sources) - set(SOURCES):
            problems.append(f"{sel} {e.signature}: source(s) {sorted(set(e.sources) - set(SOURCES))}")
        if evm.selector(e.signature) != sel:
            problems.append(f"{sel} {e.signature}: the signature's selector is {evm.selector(e.signature)}")
        for pkg in e.sources.get("train", []):
            if (sel, e.signature, pkg) not in train:
                problems.append(f"{sel} {e.signature}: no train record of {pkg} has it")
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


def package_roots(keys: Iterable[str]) -> dict[str, Path]:
    """Fetched roots of the manifest packages named by `keys` (package@version) and of their dependencies."""
    want = set(keys)
    pkgs = corpus.load_manifest()
    needed = want | {f"{d}@{v}" for p in pkgs if p.key in want for d, v in p.deps.items()}
    return {p.key: corpus.fetch_package(p) for p in pkgs if p.key in needed and corpus.is_fetched(p)}


def write_for_dataset(folder: str | Path, splits: Mapping[str, Sequence[Mapping[str, Any]]], dataset: str) -> Table:
    """Build a dataset's table (its train split, the declarations of the packages its records come from and their
    dependencies, the standard interfaces), check it for leaks and save it in `folder`."""
    pkgs = {r["package"] for s in splits.values() for r in s if r.get("package")}
    table = build(splits.get("train", []), package_roots(pkgs), dataset=dataset)
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


def table_for(spec: str, splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> Table:
    """A dataset's table: saved beside it (built and saved first when missing: a dataset built before tables
    existed); for a records file, built in memory from the standard interfaces and `splits["train"]`."""
    folder = dataset_folder(spec)
    if folder is None:
        return build(splits.get("train", []), dataset=str(spec))
    return load(folder / FILE) if (folder / FILE).is_file() else build_for_dataset(spec)


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


def hint_records(records: Iterable[Mapping[str, Any]], table: Table, *, in_header: bool = True) -> list[dict]:
    """Copies of `records` prepared for a prompt with known signatures. in_header (training with
    ``signature_hints``): ``signature_hint`` = the table's signature or "", so the prompt shows the table's
    knowledge and not the record's own signature. Otherwise (an adapter trained without hints, decompiling
    bytecode): the table fills an empty ``signature``, the metadata line such an adapter was trained to read."""
    out = []
    for r in records:
        known = table.get(selector_of(r))
        if in_header:
            out.append({**r, "signature_hint": known})
        else:
            out.append({**r, "signature": r.get("signature") or known})
    return out


def hint_train_records(records: Sequence[Mapping[str, Any]], table: Table) -> list[dict]:
    """Training copies of `records` (train split) with the hint a held-out function would get: the table without
    the record's own near-duplicate group (``group``). An entry backed by standard or interface declarations is
    always shown; one that only the train split backs is shown when a train record of another group, from a package
    the table kept, has the same signature (another implementation of it). Without this every train prompt names its
    function (the table holds the whole train split) while 30-45% of held-out ones stay unnamed, and the model,
    never trained on an unnamed function, writes a header without a name (docs/reference-run.md)."""
    backers: dict[str, set] = {}
    for r in records:
        sel = selector_of(r)
        e = table.entries.get(sel)
        if e and r.get("signature") == e.signature and str(r.get("package") or "unknown") in e.sources.get("train", []):
            backers.setdefault(sel, set()).add(r.get("group"))
    out = []
    for r in records:
        sel = selector_of(r)
        e = table.entries.get(sel)
        shown = bool(e) and (any(k != "train" for k in e.sources) or bool(backers.get(sel, set()) - {r.get("group")}))
        out.append({**r, "signature_hint": e.signature if shown else ""})
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
            "selectors_train_only": only_train}


def _share(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None
