"""TAC ↔ Solidity pairs: alignment by selector, features from the AST, dedup, near-duplicate groups, splits,
dataset save/load, correctness report, Hugging Face importers; `tacsol data build|stats|import`.

Pipeline (``build``): manifest packages / user folders → :mod:`tacsol.corpus` compile units (cached) → per unit:
lift each contract's runtime code, pair each lifted function with the most-derived Solidity definition whose
keccak(canonical signature) equals the selector (signature computed from the AST for every solc version and checked
against solc's methodIdentifiers) → per-unit results cached (a killed build resumes, a rerun only redoes what
changed) → exact dedup → near-duplicate groups → splits → atomic save of outputs/data/<name>/.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from . import corpus, evm, paths
from . import params as P
from .corpus import Reject, Setting
from .ioutil import atomic_write_bytes, atomic_write_json, atomic_write_text

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
PAIRS_FORMAT = 3  # bump when per-unit cached records change shape (3: unit_main; `license` is set by build, not cached)
SPLITS = ("train", "validation", "test")
STRING_COLUMNS = ("id", "tac", "solidity", "selector", "signature", "function_name", "contract", "file", "package",
                  "license", "solc_version", "settings", "visibility", "mutability", "context",
                  "contract_key", "unit_main")  # unit_main: main file of the record's compile unit
INT_COLUMNS = ("tac_chars", "sol_chars", "tac_blocks", "tac_instructions")
BOOL_COLUMNS = ("has_loop", "has_external_call", "has_storage_write", "has_event", "has_assembly")
HASH_COLUMNS = ("tac_hash", "sol_hash", "norm_hash", "group", "split")
COLUMNS = STRING_COLUMNS + INT_COLUMNS + BOOL_COLUMNS + HASH_COLUMNS
CALL_OPS = ("CALL", "STATICCALL", "DELEGATECALL", "CALLCODE")


def features():
    import datasets

    f = {c: datasets.Value("string") for c in STRING_COLUMNS + HASH_COLUMNS}
    f.update({c: datasets.Value("int64") for c in INT_COLUMNS})
    f.update({c: datasets.Value("bool") for c in BOOL_COLUMNS})
    return datasets.Features({c: f[c] for c in COLUMNS})


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------- lifting
def _lifter(level: int = 1, callee_budget: int | None = None):
    """(lift function at this TAC level and callee budget, its error class, a tag that changes with the lifter's
    source and those options: per-unit caches key on it)."""
    import functools

    from . import lift as _lift

    budget = _lift.CALLEE_BUDGET_CHARS if callee_budget is None else callee_budget
    if _lift.source_sha() != _lift.IMPORTED_SOURCE_SHA:   # the tag must name the code that runs, not the disk's
        raise RuntimeError("the lift package changed on disk after this process imported it: the lifter that would "
                           "run is not the one on disk, and its per-unit caches would be keyed on the new source; "
                           "run the command again")
    # the budget is named even when it is the default, so that a cache outlives a change of the default
    tag = "lift:" + _lift.IMPORTED_SOURCE_SHA + ("" if level == 1 else f":level{level}:callees{budget}")
    return functools.partial(_lift.lift, level=level, callee_budget=budget), _lift.LiftError, tag


# -------------------------------------------------------------------------------------------------- AST index
class AstIndex:
    """All nodes of a unit's ASTs by id, with source text slicing by 'start:length:file' src ranges."""

    def __init__(self, sources: dict[str, dict], texts: dict[str, str]):
        self.nodes: dict[int, dict] = {}
        self.parent: dict[int, int] = {}
        self.file_by_id: dict[int, str] = {}
        self.bytes_by_file: dict[str, bytes] = {}
        self.defs_by_file: dict[int, list[tuple[int, int, int]]] = collections.defaultdict(list)
        for path, s in sources.items():
            if s.get("id") is not None:
                self.file_by_id[int(s["id"])] = path
            self.bytes_by_file[path] = texts.get(path, "").encode("utf-8")
            if s.get("ast"):
                self._walk(s["ast"], None)
        for lst in self.defs_by_file.values():
            lst.sort()

    def _walk(self, node: Any, parent: int | None) -> None:
        if isinstance(node, dict):
            nid = node.get("id")
            if isinstance(nid, int) and "nodeType" in node:
                self.nodes[nid] = node
                if parent is not None:
                    self.parent[nid] = parent
                if node["nodeType"] in ("FunctionDefinition", "ModifierDefinition") and node.get("src"):
                    s, ln, f = (int(x) for x in node["src"].split(":"))
                    self.defs_by_file[f].append((s, s + ln, nid))
                parent = nid
            for v in node.values():
                if isinstance(v, (dict, list)):
                    self._walk(v, parent)
        elif isinstance(node, list):
            for v in node:
                self._walk(v, parent)

    def text(self, node: dict) -> str:
        s, ln, f = (int(x) for x in node["src"].split(":"))
        data = self.bytes_by_file.get(self.file_by_id.get(f, ""), b"")
        return data[s:s + ln].decode("utf-8", errors="replace")

    def file_of(self, node: dict) -> str:
        return self.file_by_id.get(int(node["src"].split(":")[2]), "")

    def owner(self, s: int, ln: int, f: int) -> int | None:
        """Innermost function/modifier definition whose source range contains [s, s+ln) in file f."""
        best = None
        for a, b, nid in self.defs_by_file.get(f, ()):
            if a > s:
                break
            if s + ln <= b and (best is None or a >= best[0]):
                best = (a, nid)
        return best[1] if best else None


def _type_of(node: dict | None) -> str:
    return ((node or {}).get("typeDescriptions") or {}).get("typeString") or ""


def _is_library_delegatecall(callee: dict) -> bool:
    """A call of a public/external library function from outside the library: solc compiles it to DELEGATECALL
    into the linked library, so the callee's effects (events, storage writes) are not in the caller's bytecode."""
    tid = ((callee or {}).get("typeDescriptions") or {}).get("typeIdentifier") or ""
    return tid.startswith("t_function_delegatecall")


def canonical_type(tn: dict | None, idx: AstIndex) -> str:
    """ABI canonical type of an AST type name node (works for the 0.4.x–0.8.x compact AST)."""
    if not tn:
        return "?"
    nt = tn.get("nodeType")
    if nt == "ElementaryTypeName":
        t = _type_of(tn) or tn.get("name", "")
        t = t.replace(" payable", "")
        return {"uint": "uint256", "int": "int256", "byte": "bytes1", "fixed": "fixed128x18",
                "ufixed": "ufixed128x18"}.get(t, t)
    if nt == "ArrayTypeName":
        m = re.search(r"\[(\d*)\](?: (?:storage|memory|calldata))?(?: pointer| ref| slice)?$", _type_of(tn))
        return canonical_type(tn.get("baseType"), idx) + f"[{m.group(1) if m else ''}]"
    if nt in ("UserDefinedTypeName", "IdentifierPath"):
        ref = idx.nodes.get(tn.get("referencedDeclaration"))
        if ref is None:
            return "?"
        rt = ref.get("nodeType")
        if rt == "ContractDefinition":
            return "address"
        if rt == "EnumDefinition":
            return "uint8"
        if rt == "StructDefinition":
            return "(" + ",".join(canonical_type(m.get("typeName"), idx) for m in ref.get("members", [])) + ")"
        if rt == "UserDefinedValueTypeDefinition":
            return canonical_type(ref.get("underlyingType"), idx)
        return "?"
    if nt == "FunctionTypeName":
        return "function"
    return "?"


def _params(fn: dict) -> list[dict]:
    return (fn.get("parameters") or {}).get("parameters") or []


def _is_fallback(fn: dict) -> str | None:
    kind = fn.get("kind")
    if kind in ("fallback", "receive"):
        return kind
    if kind is None and not fn.get("isConstructor") and fn.get("name") == "":
        return "fallback"  # 0.4.x
    return None


def signature_of(node: dict, idx: AstIndex) -> str | None:
    """Canonical signature of a public/external function or a public state variable getter."""
    if node["nodeType"] == "FunctionDefinition":
        if node.get("kind") not in (None, "function") or node.get("isConstructor") or not node.get("name"):
            return None
        return f"{node['name']}(" + ",".join(canonical_type(p.get("typeName"), idx) for p in _params(node)) + ")"
    if node["nodeType"] == "VariableDeclaration":
        args, tn = [], node.get("typeName")
        while tn:
            if tn.get("nodeType") == "Mapping":
                args.append(canonical_type(tn.get("keyType"), idx))
                tn = tn.get("valueType")
            elif tn.get("nodeType") == "ArrayTypeName":
                args.append("uint256")
                tn = tn.get("baseType")
            else:
                break
        return f"{node['name']}({','.join(args)})"
    return None


def _children(node: Any) -> Iterable[dict]:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if "nodeType" in n:
                yield n
            stack.extend(v for v in n.values() if isinstance(v, (dict, list)))
        elif isinstance(n, list):
            stack.extend(n)


# ------------------------------------------------------------------------------------------------- alignment
def _signature_key(fn: dict) -> tuple:
    return fn.get("name"), tuple(_type_of(p) for p in _params(fn))


def _resolve_virtual(fn: dict, linear: list[dict], after: int | None = None) -> dict:
    """Most-derived override (in the contract's linearization) of an internally called function or of a modifier
    (modifiers are virtual too, implicitly before 0.6; an override keeps the parameter types); with ``after`` (the id of the contract
    whose code says ``super.f``), the first override in the bases *after* that contract in the most-derived
    contract's linearization — what ``super`` means at run time, which can differ from the statically referenced
    base when several bases override f."""
    kind = fn.get("nodeType")
    if kind not in ("FunctionDefinition", "ModifierDefinition") or not fn.get("name"):
        return fn
    key = _signature_key(fn)
    bases = linear
    if after is not None:
        ids = [c.get("id") for c in linear]
        if after not in ids:
            return fn
        bases = linear[ids.index(after) + 1:]
    for c in bases:
        for n in c.get("nodes", []):
            if n.get("nodeType") == kind and n.get("body") and _signature_key(n) == key:
                return n
    return fn


def _in_library(node: dict, idx: AstIndex) -> bool:
    return (idx.nodes.get(idx.parent.get(node["id"])) or {}).get("contractKind") == "library"


def context_of(fn: dict, idx: AstIndex, linear: list[dict], limit: int = 40) -> list[dict]:
    """Modifiers and (transitively) internally called functions of fn, in discovery order: calls in bodies and in
    modifier arguments (``onlyRole(getRoleAdmin(role))``); virtual calls resolved to the most-derived override and
    ``super.f`` along the most-derived contract's linearization. Public library functions called from outside their
    library run by DELEGATECALL in the linked library: not context (their code is not in the caller's bytecode);
    the call counts as an external call."""
    out: list[dict] = []
    seen = {fn["id"]}
    todo = [fn]
    while todo and len(out) < limit:
        cur = todo.pop(0)
        refs = []
        for m in cur.get("modifiers") or []:
            name = m.get("modifierName") or {}
            refs.append(("mod", name.get("referencedDeclaration")))
        calls = list(_children(cur.get("body"))) + [n for m in cur.get("modifiers") or []
                                                     for n in _children(m.get("arguments"))]
        for n in calls:
            if n["nodeType"] != "FunctionCall":
                continue
            e = n.get("expression") or {}
            if e.get("nodeType") == "Identifier":
                refs.append(("virt", e.get("referencedDeclaration")))
            elif e.get("nodeType") == "MemberAccess" and e.get("referencedDeclaration"):
                base = e.get("expression") or {}
                if base.get("nodeType") == "Identifier" and base.get("name") == "super":
                    refs.append(("super", e.get("referencedDeclaration"), idx.parent.get(cur["id"])))
                    continue
                internal = "external" not in _type_of(e) and not (base.get("nodeType") == "Identifier"
                                                                   and base.get("name") == "this") \
                    and not _is_library_delegatecall(e)
                if internal:
                    refs.append(("direct", e.get("referencedDeclaration")))
        for kind, rid, *where in refs:
            node = idx.nodes.get(rid) if isinstance(rid, int) else None
            if not node or node["nodeType"] not in ("FunctionDefinition", "ModifierDefinition"):
                continue
            if kind == "mod" or (kind == "virt" and not _in_library(node, idx)):  # a library's calls are static
                node = _resolve_virtual(node, linear)
            elif kind == "super":
                node = _resolve_virtual(node, linear, after=where[0])
            if node["id"] in seen or not node.get("body"):
                continue
            seen.add(node["id"])
            out.append(node)
            todo.append(node)
    return out


_EXT_MEMBERS = {"call", "delegatecall", "staticcall", "callcode", "send", "transfer"}


def _lvalue_root(e: dict | None) -> list[dict]:
    if not e:
        return []
    nt = e.get("nodeType")
    if nt == "IndexAccess":
        return _lvalue_root(e.get("baseExpression"))
    if nt in ("MemberAccess", "IndexRangeAccess"):
        return _lvalue_root(e.get("expression") or e.get("baseExpression"))
    if nt == "TupleExpression":
        return [r for c in e.get("components") or [] for r in _lvalue_root(c)]
    if nt == "Identifier":
        return [e]
    return []


def _is_revert(stmt: dict) -> bool:
    """A statement that reverts unconditionally: `revert Err(...)`, `revert(...)`, `require(false, ...)`,
    `assert(false)`, a block ending in one, or an if/else whose branches both do."""
    nt = stmt.get("nodeType")
    if nt == "RevertStatement":
        return True
    if nt == "Block":
        return any(_is_revert(x) for x in stmt.get("statements") or [])
    if nt == "IfStatement":
        t, f = stmt.get("trueBody"), stmt.get("falseBody")
        return bool(t and f and _is_revert(t) and _is_revert(f))
    if nt != "ExpressionStatement":
        return False
    call = stmt.get("expression") or {}
    if call.get("nodeType") != "FunctionCall":
        return False
    name = (call.get("expression") or {}).get("name")
    args = call.get("arguments") or []
    if name == "revert":
        return True
    return name in ("require", "assert") and bool(args) and args[0].get("nodeType") == "Literal" \
        and args[0].get("value") == "false"


def always_reverts(fn: dict, idx: "AstIndex") -> bool:
    """True when the function's body reverts on every path before any `return` (e.g. `approve` of a debt token:
    `revert("APPROVAL_NOT_SUPPORTED")`) and every modifier runs the body unconditionally (`_;` at its top level):
    such a function declares return data but never returns it, so the compiler emits no RETURN for it."""
    body = fn.get("body") or {}
    stmts = body.get("statements") or []
    for m in fn.get("modifiers") or []:
        ref = (m.get("modifierName") or {}).get("referencedDeclaration")
        mod = idx.nodes.get(ref)
        if mod is None or mod.get("nodeType") != "ModifierDefinition":
            continue  # a base-constructor call in a constructor's modifier list: not a public function anyway
        top = (mod.get("body") or {}).get("statements") or []
        if not any(x.get("nodeType") == "PlaceholderStatement" for x in top):
            return False  # `_` only on some paths: the function may return defaults without running its body
    for st in stmts:
        if _is_revert(st):
            return True
        if any(n.get("nodeType") in ("Return", "InlineAssembly") for n in [st, *_children(st)]):
            return False
    return False


def source_features(nodes: list[dict], idx: AstIndex) -> dict[str, bool]:
    """has_loop / has_external_call / has_storage_write / has_event / has_assembly over the given definitions."""
    f = dict.fromkeys(("has_loop", "has_external_call", "has_storage_write", "has_event", "has_assembly"), False)

    def is_storage_ref(ident: dict) -> bool:
        d = idx.nodes.get(ident.get("referencedDeclaration"))
        if not d or d.get("nodeType") != "VariableDeclaration":
            return False
        if d.get("stateVariable"):
            return not d.get("constant") and d.get("mutability", "mutable") == "mutable"
        return d.get("storageLocation") == "storage"

    for top in nodes:
        for n in _children(top.get("body")):
            nt = n["nodeType"]
            if nt in ("ForStatement", "WhileStatement", "DoWhileStatement"):
                f["has_loop"] = True
            elif nt == "EmitStatement":
                f["has_event"] = True
            elif nt == "InlineAssembly":
                f["has_assembly"] = True
                txt = idx.text(n)
                if re.search(r"\bsstore\s*\(", txt):
                    f["has_storage_write"] = True
                if re.search(r"\blog[0-4]\s*\(", txt):
                    f["has_event"] = True
                if re.search(r"\b(call|staticcall|delegatecall|callcode)\s*\(", txt):
                    f["has_external_call"] = True
            elif nt == "Assignment":
                if any(is_storage_ref(r) for r in _lvalue_root(n.get("leftHandSide"))):
                    f["has_storage_write"] = True
            elif nt == "UnaryOperation" and n.get("operator") in ("++", "--", "delete"):
                if any(is_storage_ref(r) for r in _lvalue_root(n.get("subExpression"))):
                    f["has_storage_write"] = True
            elif nt == "FunctionCall":
                e = n.get("expression") or {}
                if e.get("nodeType") == "FunctionCallOptions":
                    e = e.get("expression") or {}
                ref = idx.nodes.get(e.get("referencedDeclaration")) if e.get("referencedDeclaration") else None
                if ref and ref.get("nodeType") == "EventDefinition":
                    f["has_event"] = True  # pre-0.4.21 event call without `emit`
                if e.get("nodeType") == "MemberAccess":
                    base = e.get("expression") or {}
                    member = e.get("memberName")
                    if member in _EXT_MEMBERS and _type_of(base).startswith("address"):
                        f["has_external_call"] = True
                    elif " external" in _type_of(e) or _is_library_delegatecall(e):
                        f["has_external_call"] = True
                    elif member in ("push", "pop") and "storage" in _type_of(base):
                        f["has_storage_write"] = True
    return f


_NORM_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def normalize_body(solidity: str) -> str:
    """Near-duplicate key: comments removed, whitespace removed around punctuation and collapsed elsewhere.
    Identifiers are kept (renaming would merge genuinely different functions such as mint/burn twins)."""
    s = corpus.strip_comments(solidity)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r" ?([^\w\s]) ?", r"\1", s)
    return s


def _decompress_source_map(sm: str) -> list[tuple[int, int, int]]:
    out, last = [], [0, 0, -1]
    for item in sm.split(";") if sm else []:
        parts = item.split(":")
        for i in range(3):
            if i < len(parts) and parts[i] != "":
                last[i] = int(parts[i])
        out.append(tuple(last))
    return out  # type: ignore[return-value]


@dataclasses.dataclass
class AlignStats:
    """Correctness counters of one compile unit, or of many merged: what correctness.json reports."""
    contracts: int = 0
    selectors_expected: int = 0
    selectors_recovered: int = 0
    signature_checked: int = 0
    signature_ok: int = 0
    isolation_functions: int = 0
    isolation_ok: int = 0
    isolation_foreign: int = 0
    isolation_total: int = 0
    # body fact -> [functions whose source has it, of those whose lifted ops show it]
    body: dict = dataclasses.field(default_factory=lambda: {k: [0, 0] for k in BODY_FACTS})
    missing_selectors: list = dataclasses.field(default_factory=list)
    body_misses: list = dataclasses.field(default_factory=list)
    return_always_revert: int = 0
    isolation_bad_status: dict = dataclasses.field(default_factory=dict)
    isolation_bad_examples: list = dataclasses.field(default_factory=list)

    def merge(self, other: "AlignStats") -> None:
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "body":
                for fact, (n, ok) in theirs.items():
                    mine[fact][0] += n
                    mine[fact][1] += ok
            elif isinstance(mine, list):
                setattr(self, f.name, (mine + theirs)[:_EXAMPLES])
            elif isinstance(mine, dict):
                for k, n in theirs.items():
                    mine[k] = mine.get(k, 0) + n
            else:
                setattr(self, f.name, mine + theirs)

    def note(self, name: str, example: str) -> None:
        """Keep an example (a missing selector, a body miss, an isolation failure), at most _EXAMPLES of each."""
        examples = getattr(self, name)
        if len(examples) < _EXAMPLES:
            examples.append(example)


BODY_FACTS = ("event", "storage", "call", "return")
_EXAMPLES = 20


@dataclasses.dataclass
class UnitResult:
    records: list[dict]
    rejects: list[dict]
    stats: AlignStats

    @classmethod
    def from_dict(cls, d: dict) -> "UnitResult":
        return cls(d["records"], d["rejects"], AlignStats(**d["stats"]))


@dataclasses.dataclass
class _Unit:
    """What every contract of one compile unit shares while it is aligned."""
    idx: AstIndex
    label: str
    license: str
    version: str
    setting: Setting
    st: AlignStats
    records: list
    rejects: list


def align_artifact(art: dict, texts: dict[str, str], *, label: str, license: str, version: str,
                   setting: Setting, lift_fn, lift_error, bytecode_override: dict[str, str] | None = None,
                   time_limit_s: float = 10.0) -> UnitResult:
    """Pairs of every contract compiled in one unit (see module doc)."""
    u = _Unit(AstIndex(art["sources"], texts), label, license, version, setting, AlignStats(), [], [])
    contracts_by_name = {}
    for n in u.idx.nodes.values():
        if n["nodeType"] == "ContractDefinition":
            contracts_by_name.setdefault((u.idx.file_of(n), n["name"]), n)
    for cname, c in art["contracts"].items():
        code = evm.link_placeholders((bytecode_override or {}).get(cname, c["bytecode"]) or "")
        main_file = next((f for (f, n) in contracts_by_name if n == cname), "")
        cnode = contracts_by_name.get((main_file, cname))
        if not code:
            continue  # abstract / interface: nothing deployed
        if cnode is None or cnode.get("contractKind") == "library":
            continue  # libraries use a different calling convention; not paired
        _align_contract(u, cname, c, code, cnode, main_file, lift_fn, lift_error, time_limit_s)
    return UnitResult(u.records, u.rejects, u.st)


def _align_contract(u: _Unit, cname: str, c: dict, code: str, cnode: dict, main_file: str, lift_fn, lift_error,
                    time_limit_s: float) -> None:
    """Lift one contract, check its selectors and signatures against solc, and pair each lifted function."""
    item = f"{u.label}:{main_file}:{cname}"
    settings_label = f"{u.version}/{u.setting.name}/{c.get('evm_version') or 'default'}"
    try:
        lifted = lift_fn(code, time_limit_s=time_limit_s)
    except lift_error as exc:
        u.rejects.append(Reject(item, "lift_error", getattr(exc, "reason", str(exc))[:200], u.label,
                                settings_label).to_dict())
        return
    except Exception as exc:  # a lifter bug on one contract must not abort the build
        u.rejects.append(Reject(item, "lift_crash", f"{type(exc).__name__}: {exc}"[:200], u.label,
                                settings_label).to_dict())
        return
    u.st.contracts += 1
    linear = [u.idx.nodes[i] for i in cnode.get("linearizedBaseContracts", []) if i in u.idx.nodes]
    by_selector, special = _public_members(linear, u.idx)
    _check_selectors(u.st, c, by_selector, {f.selector for f in lifted.functions}, item)
    # isolation data (unoptimized legacy only)
    pc_entry = None
    if not u.setting.optimize and not u.setting.via_ir and c.get("source_map"):
        offs = evm.instruction_offsets(evm.hex_bytes(code))
        smap = _decompress_source_map(c["source_map"])
        pc_entry = {o: smap[i] for i, o in enumerate(offs) if i < len(smap)}
    for fn in lifted.functions:
        sel = fn.selector
        d = by_selector.get(sel) if sel.startswith("0x") else (
            {"node": special[sel], "sig": sel + "()"} if sel in special else None)
        if d is None:
            if sel.startswith("0x"):
                u.rejects.append(Reject(f"{item}:{sel}", "unaligned_selector",
                                        "no public function or getter in the sources has this selector",
                                        u.label, settings_label).to_dict())
            continue
        if not fn.tac.strip() or not fn.instructions:
            u.rejects.append(Reject(f"{item}:{d['sig']}", "empty_tac", f"lift status {fn.status}: no instructions",
                                    u.label, settings_label).to_dict())
            continue
        where = f"{item}:{d['sig']} ({settings_label}, {fn.status})"
        u.records.append(_pair(u, fn, d, linear, cname, main_file, settings_label, pc_entry, where))


def _public_members(linear: list[dict], idx: AstIndex) -> tuple[dict[str, dict], dict[str, dict]]:
    """selector -> {node, sig} of the most derived public function or getter, and receive/fallback nodes."""
    by_selector: dict[str, dict] = {}
    special: dict[str, dict] = {}
    for base in linear:
        for n in base.get("nodes", []):
            if n["nodeType"] == "FunctionDefinition":
                fb = _is_fallback(n)
                if fb and n.get("body") is not None:
                    special.setdefault(fb, n)
                    continue
                if n.get("visibility") not in ("public", "external") or n.get("body") is None:
                    continue
            elif not (n["nodeType"] == "VariableDeclaration" and n.get("visibility") == "public"):
                continue
            sig = signature_of(n, idx)
            if sig:
                by_selector.setdefault(evm.selector(sig), {"node": n, "sig": sig})
    return by_selector, special


def _check_selectors(st: AlignStats, c: dict, by_selector: dict[str, dict], lifted_sel: set[str], item: str) -> None:
    """Signatures computed from the AST against solc's methodIdentifiers; selectors recovered by the lifter."""
    mi = {"0x" + v: k for k, v in c["method_identifiers"].items()}
    for sel, d in by_selector.items():
        if sel in mi or d["sig"] in c["method_identifiers"]:
            st.signature_checked += 1
            st.signature_ok += int(mi.get(sel) == d["sig"])
    st.selectors_expected += len(mi)
    st.selectors_recovered += len(set(mi) & lifted_sel)
    st.missing_selectors += [f"{item}:{mi[s]}" for s in sorted(set(mi) - lifted_sel)][:5]


def _pair(u: _Unit, fn, d: dict, linear: list[dict], cname: str, main_file: str, settings_label: str,
          pc_entry: dict | None, where: str) -> dict:
    """The record of one lifted function and its source, after checking its body facts and isolation."""
    idx, node = u.idx, d["node"]
    is_fn = node["nodeType"] == "FunctionDefinition"
    ctx = context_of(node, idx, linear) if is_fn else []
    solidity = idx.text(node) + ("" if is_fn or idx.text(node).endswith(";") else ";")
    feats = source_features([node] + ctx, idx) if is_fn else dict.fromkeys(
        ("has_loop", "has_external_call", "has_storage_write", "has_event", "has_assembly"), False)
    returns = bool((node.get("returnParameters") or {}).get("parameters")) if is_fn else True
    if returns and is_fn and always_reverts(node, idx):
        returns = False  # declares return data but reverts on every path: no RETURN to find
        u.st.return_always_revert += 1
    _check_body(u.st, fn, feats, returns, where)
    if pc_entry is not None and fn.pcs:
        _check_isolation(u.st, idx, fn.pcs, pc_entry, {node["id"]} | {x["id"] for x in ctx}, fn.status, where)
    tac = fn.tac
    rec = {
        "tac": tac, "solidity": solidity, "selector": fn.selector, "signature": d["sig"],
        "function_name": node.get("name") or fn.selector, "contract": cname, "file": idx.file_of(node),
        "package": u.label, "license": u.license, "solc_version": u.version, "settings": settings_label,
        "visibility": node.get("visibility", ""),
        "mutability": node.get("stateMutability") or ("view" if not is_fn else ""),
        "context": "\n\n".join(idx.text(x) for x in ctx), "tac_chars": len(tac), "sol_chars": len(solidity),
        "tac_blocks": int(fn.blocks), "tac_instructions": int(fn.instructions), **feats,
        "tac_hash": sha(tac), "sol_hash": sha(solidity), "norm_hash": sha(normalize_body(solidity)),
        "contract_key": f"{_unversioned(u.label)}:{main_file.split('/', 2)[-1]}:{cname}",
        # the compile unit this record came from: (package, unit_main, settings) rebuilds it exactly
        "unit_main": main_file,
        "lift_status": fn.status,
    }
    rec["id"] = sha(rec["tac_hash"] + rec["sol_hash"] + settings_label)
    return rec


def _check_body(st: AlignStats, fn, feats: dict, returns: bool, where: str) -> None:
    """Each effect the source has (event, storage write, external call, return data) must show in the lifted ops."""
    ops = fn.ops or {}
    checks = {"event": (feats["has_event"], any(ops.get(f"LOG{i}", 0) for i in range(5))),
              "storage": (feats["has_storage_write"], ops.get("SSTORE", 0) > 0),
              "call": (feats["has_external_call"], any(ops.get(o, 0) for o in CALL_OPS)),
              "return": (returns, ops.get("RETURN", 0) > 0)}
    for k, (want, got) in checks.items():
        if want:
            st.body[k][0] += 1
            st.body[k][1] += int(got)
            if not got:
                st.note("body_misses", f"{k}: {where}")


def _check_isolation(st: AlignStats, idx: AstIndex, pcs: list[int], pc_entry: dict, allowed: set, status: str,
                     where: str) -> None:
    """Share of the function's instructions that solc's source map attributes to code outside the function and
    its context (modifiers, internal callees): over 1% fails."""
    foreign = total = 0
    owners: collections.Counter = collections.Counter()
    for pc in pcs:
        e = pc_entry.get(pc)
        if e is None:
            continue
        total += 1
        own = idx.owner(*e) if e[2] >= 0 else None
        if own is not None and own not in allowed:
            foreign += 1
            owners[own] += 1
    if not total:
        return
    over = foreign > 0.01 * total
    if over:
        st.isolation_bad_status[status] = st.isolation_bad_status.get(status, 0) + 1
        top = (idx.nodes.get(owners.most_common(1)[0][0]) or {}).get("name", "?")
        st.note("isolation_bad_examples", f"{where}: {foreign}/{total} foreign, mostly {top}")
    st.isolation_functions += 1
    st.isolation_ok += int(not over)
    st.isolation_foreign += foreign
    st.isolation_total += total


def _unversioned(label: str) -> str:
    return label.rsplit("@", 1)[0] if "@" in label[1:] else label


# ------------------------------------------------------------------------------------------ splits and stats
def assign_splits(records: list[dict], fractions=(0.9, 0.05, 0.05), seed: str = "tacsol") -> None:
    """Split by contract and near-duplicate group: each contract (versions merged) draws a split from its hash;
    each near-duplicate group (norm_hash) then goes wholly to the split of the smallest contract key holding it,
    so no normalized body is on two sides and a contract's unique functions stay together."""
    def contract_split(key: str) -> str:
        x = int(hashlib.sha256((seed + key).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return SPLITS[0] if x < fractions[0] else SPLITS[1] if x < fractions[0] + fractions[1] else SPLITS[2]

    owner: dict[str, str] = {}
    for r in records:
        k = r.get("contract_key") or f"{r['package']}:{r['contract']}"
        if r["norm_hash"] not in owner or k < owner[r["norm_hash"]]:
            owner[r["norm_hash"]] = k
    for r in records:
        r["group"] = r["norm_hash"]
        r["split"] = contract_split(owner[r["norm_hash"]])
    sides: dict[str, set[str]] = collections.defaultdict(set)
    for r in records:
        sides[r["norm_hash"]].add(r["split"])
    leaks = [h for h, s in sides.items() if len(s) > 1]
    assert not leaks, f"near-duplicate groups on several splits: {leaks[:3]}"


def dedup(records: list[dict]) -> tuple[list[dict], int]:
    seen, out = set(), []
    for r in records:
        k = (r["tac_hash"], r["sol_hash"])
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out, len(records) - len(out)


def to_dataset_dict(records: list[dict]):
    import datasets

    feats = features()
    # from_dict with explicit columns: an empty split still gets the full schema
    return datasets.DatasetDict({s: datasets.Dataset.from_dict(
        {c: [r[c] for r in records if r["split"] == s] for c in COLUMNS}, features=feats) for s in SPLITS})


def save_dataset(records: list[dict], out_dir: Path) -> Path:
    """Atomic: written beside the target, then renamed into place."""
    ds = to_dataset_dict(records)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        # one shard per split: an empty split still gets an arrow file and reloads (datasets skips 0 shards)
        import datasets

        quiet = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # three "Saving" bars per build only clutter notebooks
        try:
            ds.save_to_disk(str(tmp / "d"), num_shards={s: 1 for s in SPLITS})
        finally:
            if quiet:
                datasets.enable_progress_bars()
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp / "d", out_dir)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def correctness_report(stats: list[tuple[str, AlignStats]], tac_level: int = 1) -> dict:
    """Aggregate per-unit counters by settings family (solc minor / optimizer / viaIR) and overall; every row says
    which TAC level the functions were lifted at."""
    groups: dict[str, AlignStats] = collections.defaultdict(AlignStats)
    for settings_label, st in stats:
        ver, setting = settings_label.split("/")[:2]
        key = f"{'.'.join(ver.split('.')[:2])}/{setting}"
        groups[key].merge(st)
        groups["all"].merge(st)
    rows = {}
    for key, g in sorted(groups.items()):
        pct = lambda a, b: round(100.0 * a / b, 2) if b else None  # noqa: E731
        rows[key] = {
            "tac_level": tac_level,
            "contracts": g.contracts,
            "selectors_expected": g.selectors_expected,
            "selector_recovery_pct": pct(g.selectors_recovered, g.selectors_expected),
            "signature_match_pct": pct(g.signature_ok, g.signature_checked),
            **{f"{b}_recall_pct": pct(ok, n) for b, (n, ok) in g.body.items()},
            **{f"{b}_functions": n for b, (n, ok) in g.body.items()},
            "return_excluded_always_revert": g.return_always_revert,
            "isolation_functions": g.isolation_functions,
            "isolation_ok_pct": pct(g.isolation_ok, g.isolation_functions),
            "isolation_foreign_instr_pct": pct(g.isolation_foreign, g.isolation_total),
            "isolation_over_1pct_by_status": g.isolation_bad_status,
            "isolation_over_1pct_examples": g.isolation_bad_examples[:10],
            "missing_selectors_examples": g.missing_selectors[:10],
            "body_miss_examples": g.body_misses[:10],
        }
    return rows


# ------------------------------------------------------------------------------------------------------ build
@dataclasses.dataclass
class BuildConfig:
    name: str = "corpus"
    packages: list[str] | None = None           # manifest names/keys to compile (None: all)
    max_packages: int | None = None             # first N compiled packages of the manifest (CPU demo)
    folders: list[str] = dataclasses.field(default_factory=list)   # user folders / Foundry / Hardhat projects
    settings: list[str] = dataclasses.field(default_factory=lambda: ["noopt", "opt200"])
    manifest: str | None = None
    permissive_only: bool = False
    max_units: int | None = None                # cap on compile units (CPU demo)
    version_policy: str = "lowest"              # solc choice among installed versions matching the pragmas
    time_budget_s: float | None = None          # stop starting compiles after this; the rest waits for a rerun
    workers: int = 2
    batch_size: int = 6
    timeout_s: float = 120.0
    fractions: tuple = (0.9, 0.05, 0.05)
    progress: bool = True
    tac_level: int = 1                          # 1: paper-faithful TAC; 2: compact; 3: 2 with require (tac-format.md)
    callee_budget: int | None = None            # levels 2-3: lift's callee_budget (None: lift's default)


def license_detail(files: list[corpus.FileLicense]) -> str:
    """Why a unit is not permissive: its first non-permissive files, each with its licence."""
    bad = [f for f in files if not f.permissive]
    more = f"; and {len(bad) - 3} more non-permissive file(s)" if len(bad) > 3 else ""
    return "; ".join(map(str, bad[:3])) + more


def _pairs_cache(key: str, lift_tag: str) -> Path:
    h = hashlib.sha256(f"{PAIRS_FORMAT}:{key}:{lift_tag}".encode()).hexdigest()
    return paths.cache_dir() / "pairs" / h[:2] / f"{h}.json.gz"


def check_build_config(cfg: BuildConfig, where: str | None = None) -> None:
    """Refuse a build whose settings do not parse, whose folders or manifest do not exist or whose split fractions
    do not sum to 1, before any work."""
    for text in cfg.settings:
        try:
            Setting.parse(text)
        except ValueError as exc:
            raise P.param_error(where, "settings", str(exc)) from None
    for folder in cfg.folders:
        if not paths.resolve(folder).is_dir():
            raise P.param_error(where, "folders", f"source folder not found: {paths.resolve(folder)}")
    if cfg.manifest and not paths.resolve(cfg.manifest).is_file():
        raise P.param_error(where, "manifest", f"file not found: {paths.resolve(cfg.manifest)}")
    if cfg.version_policy not in ("lowest", "highest"):
        raise P.param_error(where, "version_policy", f"must be lowest or highest, got {cfg.version_policy!r}")
    if abs(sum(cfg.fractions) - 1) > 1e-6 or min(cfg.fractions) < 0:
        raise P.param_error(where, "fractions", f"{list(cfg.fractions)} must be non-negative and sum to 1")
    if cfg.callee_budget is not None and (not isinstance(cfg.callee_budget, int) or cfg.callee_budget < 0):
        raise P.param_error(where, "callee_budget", f"must be a number of characters >= 0, got {cfg.callee_budget!r}")


def check_build_params(values: dict[str, Any], where: str) -> None:
    """Notebook 00's parameters (tacsol.params.PLAN_CHECKS)."""
    check_build_config(BuildConfig(settings=values["settings"], folders=values["folders"],
                                   version_policy=values["version_policy"],
                                   callee_budget=values.get("callee_budget")), where)


def build(cfg: BuildConfig) -> dict:
    """Build outputs/data/<name>/ (dataset/, manifest.json, rejects.jsonl, correctness.json); returns manifest."""
    import time

    from tqdm.auto import tqdm

    check_build_config(cfg)
    t0 = time.time()
    settings = [Setting.parse(s) for s in cfg.settings]
    rejects: list[Reject] = []
    sets: list[corpus.SourceSet] = []
    licences: dict[str, str] = {}
    # packages=None: the whole manifest unless only folders were given; packages=[]: no manifest packages
    use_manifest = cfg.packages != [] and (cfg.packages is not None or cfg.max_packages is not None
                                           or not cfg.folders)
    if use_manifest:
        pkgs = corpus.load_manifest(cfg.manifest, cfg.packages)
        if cfg.permissive_only:
            pkgs = [p for p in pkgs if p.permissive or not p.compile]
        compiled = [p for p in pkgs if p.compile][: cfg.max_packages if cfg.max_packages is not None else None]
        needed = {p.key for p in compiled} | {f"{d}@{v}" for p in compiled for d, v in p.deps.items()}
        pkgs = [p for p in pkgs if p.key in needed]
        roots, rj = corpus.fetch_all(pkgs, progress=cfg.progress)
        rejects += rj
        for p in compiled:
            if p.key not in roots:
                continue
            actual = corpus.package_license(roots[p.key])
            if actual and actual != p.license:
                rejects.append(Reject(p.key, "license_mismatch", f"manifest {p.license}, package.json {actual}",
                                      p.key))
            licences[p.key] = p.license
            sets.append(corpus.package_sources(p, roots, {q.key: q.license for q in pkgs}))
    for folder in cfg.folders:
        ss = corpus.folder_sources(folder)
        licences[ss.label] = ss.license
        sets.append(ss)
    units: list[corpus.Unit] = []
    set_of: dict[str, corpus.SourceSet] = {}
    for ss in sets:
        u, rj = corpus.plan_units(ss, settings, policy=cfg.version_policy)
        units += u
        rejects += rj
        set_of[ss.label] = ss
    if cfg.max_units is not None:
        units = units[: cfg.max_units]
    t_plan = time.time()
    arts, rj = corpus.compile_units(units, workers=cfg.workers, batch_size=cfg.batch_size, timeout_s=cfg.timeout_s,
                                    progress=cfg.progress,
                                    deadline=t0 + cfg.time_budget_s if cfg.time_budget_s else None)
    rejects += rj
    failed_items = {r.item for r in rj}
    t_compile = time.time()
    lift_fn, lift_error, lift_tag = _lifter(cfg.tac_level, cfg.callee_budget)
    # per-unit results depend on the lifter (and TAC level) and on this module's alignment/correctness code: key on both
    cache_tag = lift_tag + ":align:" + sha(Path(__file__).read_text())
    records: list[dict] = []
    unit_stats: list[tuple[str, AlignStats]] = []
    row_rejects: list[dict] = []
    n_cached = 0
    dropped: dict[str, int] = {"records": 0, "units": 0}
    for u in tqdm(units, desc="lift+align", unit="unit", disable=not cfg.progress):
        art = arts.get(u.key)
        if art is None or art["errors"]:
            continue
        texts = {p: s["content"] for p, s in u.input["sources"].items()}
        files = set_of[u.label].file_licenses(texts)
        unit_lic = corpus.unit_license(files)
        cp = _pairs_cache(u.key, cache_tag)
        res = None
        if cp.exists():
            try:
                res = UnitResult.from_dict(json.loads(gzip.decompress(cp.read_bytes())))
                n_cached += 1
            except (OSError, ValueError, EOFError, TypeError):
                res = None
        if res is None:
            res = align_artifact(art, texts, label=u.label, license=unit_lic, version=u.version,
                                 setting=u.setting, lift_fn=lift_fn, lift_error=lift_error)
            atomic_write_bytes(cp, gzip.compress(json.dumps(dataclasses.asdict(res)).encode(), 5))
        for r in res.records:  # set here, not in the cached pairs: records cached before unit licences get it too
            r["license"] = unit_lic
        row_rejects += res.rejects
        if cfg.permissive_only and not corpus.is_permissive(unit_lic) and res.records:
            detail = license_detail(files)
            row_rejects += [Reject(f"{r['package']}:{r['unit_main']}:{r['contract']}:{r['signature']}", "license_file",
                                   detail, r["package"], r["settings"]).to_dict() for r in res.records]
            dropped["records"] += len(res.records)
            dropped["units"] += 1
        else:
            records += res.records
        evm = next((c.get("evm_version") for c in art["contracts"].values()), "") or "default"
        unit_stats.append((f"{u.version}/{u.setting.name}/{evm}", res.stats))
    t_align = time.time()
    n_raw = len(records)
    # a function defined in a base file is paired once per contract that inherits it: dedup handles that
    records, n_dup = dedup(records)
    assign_splits(records, cfg.fractions)
    out = paths.outputs_dir() / "data" / cfg.name
    save_dataset(records, out / "dataset")
    from . import signatures  # the known-signature table: train split + the fetched packages' declarations

    signatures.write_for_dataset(out, {s: [r for r in records if r["split"] == s] for s in SPLITS}, cfg.name)
    all_rejects = [r.to_dict() for r in rejects] + row_rejects
    atomic_write_text(out / "rejects.jsonl", "".join(json.dumps(r) + "\n" for r in all_rejects))
    report = correctness_report(unit_stats, cfg.tac_level)
    atomic_write_json(out / "correctness.json", report)
    cnt = lambda key: dict(collections.Counter(r[key] for r in records).most_common())  # noqa: E731
    manifest = {
        "name": cfg.name, "config": dataclasses.asdict(cfg), "lifter": lift_tag,
        **lift_options_of_build(cfg),
        "pairs": len(records), "pairs_before_dedup": n_raw, "exact_duplicates_removed": n_dup,
        "near_dup_groups": len({r["norm_hash"] for r in records}),
        "contracts": len({(r["package"], r["contract"]) for r in records}),
        "per_split": cnt("split"), "per_package": cnt("package"), "per_solc_version": cnt("solc_version"),
        "per_settings": cnt("settings"), "licenses": {k: v for k, v in sorted(licences.items())},
        # a record's `license` is its compile unit's (every source's SPDX line); --permissive-only drops the rest
        "license_scope": "unit", "per_license": cnt("license"), "license_dropped": dropped,
        "solc_minor_versions": sorted({".".join(r["solc_version"].split(".")[:2]) for r in records}),
        "units": len(units), "units_compiled_ok": sum(1 for u in units if u.key in arts and not arts[u.key]["errors"]),
        "units_pairs_from_cache": n_cached,
        "units_not_compiled_budget": sum(1 for u in units if u.key not in arts and u.item not in failed_items),
        "rejects": dict(collections.Counter(r["reason"] for r in all_rejects).most_common()),
        "timing_s": {"plan": round(t_plan - t0, 1), "compile": round(t_compile - t_plan, 1),
                     "lift_align": round(t_align - t_compile, 1), "total": round(time.time() - t0, 1)},
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


# ------------------------------------------------------------------------------------------------- loading
class DatasetError(P.ParamsError):
    """A dataset that is not there or cannot be read: names the dataset or file, and the line, split or column."""


def load(source):
    """The one dataset entry point → a DatasetDict of splits. ``source``: "sample" (the shipped sample), a name under
    outputs/data/, a build folder (holding dataset/) or the dataset folder, a records file (.jsonl/.json/.parquet:
    rows go to the split their ``split`` column names, "all" without one), or a DatasetDict / Dataset (split alike)."""
    import datasets

    if isinstance(source, datasets.DatasetDict):
        return source
    if isinstance(source, datasets.Dataset):
        return _by_split(source.to_pandas())
    p = find(source)
    if p.is_file():
        return _by_split(_read_records(p))
    if (p / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(p))

    # the shipped sample is jsonl per split; in memory: no arrow cache written next to the package, and fast for a few
    # hundred rows
    def read(f: Path) -> dict:
        rows = read_jsonl(f)
        # columns added later ("" in an older file) stay readable
        return {col: [r.get(col, "") for r in rows] for col in COLUMNS}

    return datasets.DatasetDict({s: datasets.Dataset.from_dict(read(p / f"{s}.jsonl"), features=features())
                                 for s in SPLITS})


def lift_options_of_build(cfg: BuildConfig) -> dict:
    """What a build's manifest records of how its TAC was lifted (read back by :func:`lift_options`)."""
    from .lift import CALLEE_BUDGET_CHARS

    return {"tac_level": cfg.tac_level,
            "callee_budget": CALLEE_BUDGET_CHARS if cfg.callee_budget is None else cfg.callee_budget}


def lift_options(source) -> dict:
    """How a dataset's TAC was lifted, as lift's keywords: ``level`` and ``callee_budget``, from its build's
    manifest.json; level 1 for the shipped sample, an import or a build that predates levels, and 8,192 characters
    for a build that predates the option (the default it lifted with, LEGACY_CALLEE_BUDGET_CHARS)."""
    from .lift import LEGACY_CALLEE_BUDGET_CHARS

    p = paths.resolve(source)
    m: dict = {}
    for folder in (paths.outputs_dir() / "data" / str(source), p, p.parent):
        if (folder / "manifest.json").is_file() and str(source) != "sample":
            m = json.loads((folder / "manifest.json").read_text())
            break
    return {"level": int(m.get("tac_level", 1)),
            "callee_budget": int(m.get("callee_budget", LEGACY_CALLEE_BUDGET_CHARS))}


def tac_level(source) -> int:
    """The TAC level a dataset was lifted at (:func:`lift_options`)."""
    return lift_options(source)["level"]


def find(source) -> Path:
    """Where a dataset :func:`load` reads is: its records file or dataset folder. DatasetError naming the places
    tried when it is nowhere (a check that loads nothing)."""
    p = SAMPLE_DIR if str(source) == "sample" else paths.resolve(source)
    if p.is_file():
        return p
    cands = list(dict.fromkeys([p, p / "dataset", paths.outputs_dir() / "data" / str(source) / "dataset"]))
    for c in cands:
        if (c / "dataset_dict.json").exists():
            return c
    for c in cands:
        if all((c / f"{s}.jsonl").exists() for s in SPLITS):
            return c
    raise DatasetError(f"no dataset at {source!r} (tried {', '.join(map(str, cands))})")


def check_dataset(source, where: str | None = None, name: str = "dataset", columns: Iterable[str] = ()) -> None:
    """Parameter ``name`` names a dataset that is there (:func:`find`) and, given ``columns``, loads with them;
    otherwise a ParamsError naming the parameter and what :func:`load` said."""
    try:
        if columns:
            require_columns(load(source), columns, source)
        else:
            find(source)
    except DatasetError as exc:
        raise P.param_error(where, name, str(exc)) from None


def require_columns(dd, columns: Iterable[str], source) -> None:
    """Refuse a dataset whose splits lack columns a consumer needs, naming the dataset, the split and the columns."""
    for split, ds in dd.items():
        missing = [c for c in columns if c not in ds.column_names]
        if missing:
            raise DatasetError(f"{source}: split {split!r} lacks column(s) {missing} (has {sorted(ds.column_names)})")


def _read_records(path: Path):
    """A records file as a pandas DataFrame."""
    import pandas as pd

    if path.suffix == ".jsonl":
        return pd.DataFrame(read_jsonl(path))
    if path.suffix == ".json":
        return pd.read_json(path, dtype=False)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    raise DatasetError(f"{path}: unsupported file type {path.suffix!r} (use .jsonl, .json, .parquet or a dataset folder)")


def read_jsonl(path: Path) -> list[dict]:
    """JSON lines, naming the line and field of bytes that are not UTF-8 (pandas would only say 'invalid')."""
    rows = []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                field = "?"
                try:
                    rec = json.loads(raw.decode("utf-8", "surrogateescape"))
                    field = next((k for k, v in rec.items() if isinstance(v, str) and not utf8_ok(v)), "?")
                except ValueError:
                    pass
                raise DatasetError(f"{path}: line {n} (row {len(rows)}), column {field!r}: not valid UTF-8 "
                                   f"(byte 0x{raw[exc.start]:02x} at byte offset {exc.start})") from None
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise DatasetError(f"{path}: line {n}: not valid JSON ({exc})") from None
    return rows


def utf8_ok(v: str) -> bool:
    """Whether text is valid UTF-8 (no undecodable bytes smuggled in as lone surrogates by 'surrogateescape')."""
    if v.isascii():
        return True
    try:
        v.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _by_split(df):
    """A DataFrame of records → DatasetDict by its ``split`` column ("all" without one), rows in order."""
    import datasets

    if "split" not in df.columns:
        df = df.assign(split="all")
    return datasets.DatasetDict({str(s): datasets.Dataset.from_pandas(part.reset_index(drop=True), preserve_index=False)
                                 for s, part in df.groupby("split", sort=False)})


def write_sample(records_or_dd, out: Path = SAMPLE_DIR, per_split: dict[str, int] | None = None,
                 max_tac_chars: int = 6000) -> dict:
    """Pick a small, permissive-only sample from built records (or a DatasetDict) and write jsonl per split, with
    its known-signature table (signatures.json)."""
    per_split = per_split or {"train": 240, "validation": 40, "test": 40}
    if hasattr(records_or_dd, "keys") and not isinstance(records_or_dd, list):
        rows = [dict(r) for s in SPLITS for r in records_or_dd[s]]
    else:
        rows = list(records_or_dd)
    rows = [r for r in rows if corpus.is_permissive(r["license"]) and r["tac_chars"] <= max_tac_chars]
    picks = {}
    out.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        picks[s] = sorted((r for r in rows if r["split"] == s), key=lambda r: r["id"])[: per_split[s]]
        text = "".join(json.dumps({c: r[c] for c in COLUMNS}) + "\n" for r in picks[s])
        atomic_write_text(out / f"{s}.jsonl", text)
        (out / f"{s}.jsonl").chmod(0o644)  # mkstemp files are 0600; the sample ships in the repo
    from . import signatures

    signatures.write_for_dataset(out, picks, "sample")
    return {s: len(v) for s, v in picks.items()}


# -------------------------------------------------------------------------------------------- HF importers
_IMPORT_KINDS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}  # suffix -> datasets loader


def _load_any(dataset_or_path, split: str | None):
    import datasets

    if isinstance(dataset_or_path, (datasets.Dataset, datasets.DatasetDict)):
        ds = dataset_or_path
    else:
        p = Path(str(dataset_or_path))
        rp = paths.resolve(p)
        if not rp.exists() and (p.suffix in _IMPORT_KINDS or p.is_absolute()):
            raise DatasetError(f"{rp}: file not found (a local {'/'.join(_IMPORT_KINDS)} file or folder, or a hub "
                               "dataset id)")
        if rp.exists():
            files = [rp] if rp.is_file() else sorted(x for x in rp.rglob("*") if x.suffix in _IMPORT_KINDS)
            if not files:
                raise DatasetError(f"{rp}: no {'/'.join(_IMPORT_KINDS)} files")
            kind = _IMPORT_KINDS[files[0].suffix]
            ds = datasets.load_dataset(kind, data_files=[str(f) for f in files])
        else:  # a hub id (connected machines)
            ds = datasets.load_dataset(str(dataset_or_path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds[split] if split else datasets.concatenate_datasets(list(ds.values()))
    return ds


def import_hf(dataset_or_path, mapping: dict[str, str], *, name: str | None = None, split: str | None = None,
              license: str = "unknown", limit: int | None = None, setting: str = "noopt",
              progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Import rows by column mapping (our field -> their column). Two shapes:
    * ``tac`` + ``solidity`` mapped: rows taken as they are (other schema fields from mapped columns or derived);
    * ``source`` + ``bytecode`` mapped (optional ``contract``, ``compiler_version``): the source is compiled for
      its AST and methodIdentifiers, the row's runtime bytecode is lifted, and functions are aligned by selector.
    Returns (records, rejects); with ``name`` the records are split and saved as outputs/data/<name>/."""
    ds = _load_any(dataset_or_path, split)
    cols = set(ds.column_names)
    for field, col in mapping.items():
        if col not in cols:
            raise DatasetError(f"{dataset_or_path}: mapping {field!r} -> column {col!r}: no such column (columns: "
                               f"{sorted(cols)})")
    records, rejects = [], []
    n = len(ds) if limit is None else min(limit, len(ds))
    if "tac" in mapping and "solidity" in mapping:
        for i in range(n):
            row = ds[i]
            tac, sol = row[mapping["tac"]], row[mapping["solidity"]]
            if not isinstance(tac, str) or not tac.strip() or not isinstance(sol, str) or not sol.strip():
                rejects.append(Reject(f"row {i}", "empty_field", "tac or solidity is empty").to_dict())
                continue
            r = {c: "" for c in STRING_COLUMNS}
            r.update({c: False for c in BOOL_COLUMNS})
            for field, col in mapping.items():
                if field in COLUMNS:
                    r[field] = row[col]
            r.update(tac=tac, solidity=sol, tac_chars=len(tac), sol_chars=len(sol),
                     tac_blocks=int(r.get("tac_blocks") or 0), tac_instructions=int(r.get("tac_instructions") or 0),
                     tac_hash=sha(tac), sol_hash=sha(sol), norm_hash=sha(normalize_body(sol)),
                     license=r["license"] or license, package=r["package"] or str(dataset_or_path)[:100])
            if not r["selector"] and r["signature"]:
                r["selector"] = evm.selector(r["signature"])
            r["contract_key"] = f"{r['package']}:{r['contract'] or i}"
            r["id"] = sha(r["tac_hash"] + r["sol_hash"])
            records.append(r)
    elif "source" in mapping and "bytecode" in mapping:
        lift_fn, lift_error, _ = _lifter()
        st = Setting.parse(setting)
        from tqdm.auto import tqdm

        for i in tqdm(range(n), desc="import", disable=not progress):
            row = ds[i]
            item = f"row {i}"
            src, code = row[mapping["source"]], row[mapping["bytecode"]]
            if not isinstance(src, str) or not src.strip():
                rejects.append(Reject(item, "empty_field", f"column {mapping['source']!r} is empty").to_dict())
                continue
            if not isinstance(code, str) or not re.fullmatch(r"(0x)?([0-9a-fA-F]{2})+", code.strip()):
                rejects.append(Reject(item, "malformed_hex", f"column {mapping['bytecode']!r} is not hex bytes").to_dict())
                continue
            main = f"row{i}.sol"
            res_ = corpus.Resolver({})
            res_._text[main] = src
            ss = corpus.SourceSet(item, license, [main], res_)
            versions = corpus.installed_solc()
            if "compiler_version" in mapping and row[mapping["compiler_version"]]:
                want = corpus.version_tuple(str(row[mapping["compiler_version"]]))
                versions = [v for v in versions if corpus.version_tuple(v) == want] or versions
            units, rj = corpus.plan_units(ss, [st], versions)
            rejects += [r.to_dict() for r in rj]
            if not units:
                continue
            arts, rj = corpus.compile_units(units, workers=1, progress=False)
            rejects += [r.to_dict() for r in rj]
            art = arts.get(units[0].key)
            if art is None or art["errors"]:
                continue
            want_c = row[mapping["contract"]] if "contract" in mapping else None
            names = [want_c] if want_c in art["contracts"] else [
                k for k, c in art["contracts"].items() if c["bytecode"]][-1:]
            if not names:
                rejects.append(Reject(item, "no_contract", f"contract {want_c!r} not found in the source").to_dict())
                continue
            art = {**art, "contracts": {k: art["contracts"][k] for k in names}}
            res = align_artifact(art, {main: src}, label=str(row.get(mapping.get("package", ""), "") or item),
                                 license=corpus.unit_license(ss.file_licenses({main: src})),  # its SPDX, else --license
                                 version=units[0].version, setting=st, lift_fn=lift_fn,
                                 lift_error=lift_error, bytecode_override={names[0]: code.strip()})
            for r in res.records:  # the row's compiler settings are unknown; the AST came from this compile
                r["settings"] = f"{units[0].version}/imported"
            records += res.records
            rejects += res.rejects
    else:
        raise P.param_error(None, "map", "must name either 'tac' and 'solidity' columns, or 'source' and 'bytecode' "
                            f"columns (got {sorted(mapping)})")
    if name:
        records, _ = dedup(records)
        assign_splits(records)
        out = paths.outputs_dir() / "data" / name
        save_dataset(records, out / "dataset")
        atomic_write_text(out / "rejects.jsonl", "".join(json.dumps(r) + "\n" for r in rejects))
        atomic_write_json(out / "manifest.json", {"name": name, "source": str(dataset_or_path), "pairs": len(records),
                                                  "per_split": dict(collections.Counter(r["split"] for r in records)),
                                                  "rejects": dict(collections.Counter(r["reason"] for r in rejects))})
    return records, rejects


# ------------------------------------------------------------------------------------------------------ CLI
def _no_pairs(name: str, counts: dict[str, int]) -> str:
    """A build that made no pair because every unit was rejected: the first reject says why."""
    path = paths.outputs_dir() / "data" / name / "rejects.jsonl"
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    detail = " ".join(ln.strip() for ln in first["detail"].splitlines()[:2])
    return (f"no pairs: every unit was rejected ({', '.join(f'{k} {v}' for k, v in counts.items())}); first: "
            f"{first['item']} [{first['settings']}] {first['reason']}: {detail} (every reject in {path})")


def build_parser(p: argparse.ArgumentParser) -> None:
    from .lift import CALLEE_BUDGET_CHARS
    from .lift.cli import characters

    sub = p.add_subparsers(dest="data_cmd", required=True)
    b = sub.add_parser("build", help="fetch, compile, lift and align the corpus into outputs/data/<name>/")
    b.add_argument("--name", default="corpus", help="dataset name: written to outputs/data/<name>/ (default: corpus)")
    b.add_argument("--packages", nargs="*", help="manifest package names or name@version (default: all)")
    b.add_argument("--max-packages", type=int, help="only the first N packages of the manifest (default: all)")
    b.add_argument("--folder", action="append", default=[], help="user .sol folder / Foundry / Hardhat project")
    b.add_argument("--settings", nargs="+", default=["noopt", "opt200"],
                   help="noopt | opt<runs> | viair-opt<runs>, each optionally @evmVersion")
    b.add_argument("--manifest", help="manifest YAML (default: the built-in one)")
    b.add_argument("--permissive-only", action="store_true",
                   help="keep only permissively licensed sources (what may ship in the sample)")
    b.add_argument("--max-units", type=int, help="cap on compile units (one main file x one setting; default: all)")
    b.add_argument("--version-policy", choices=["lowest", "highest"], default="lowest",
                   help="which installed solc satisfies the pragmas (default: lowest)")
    b.add_argument("--time-budget", type=float, help="seconds; compiles not started by then wait for a rerun")
    b.add_argument("--workers", type=int, default=2, help="solc processes in parallel (default 2: one per core)")
    b.add_argument("--timeout", type=float, default=120.0, help="seconds per compile unit")
    b.add_argument("--write-sample", action="store_true", help="also refresh lib/tacsol/data/sample/")
    b.add_argument("--fractions", type=float, nargs=3, default=[0.9, 0.05, 0.05], metavar=("TRAIN", "VAL", "TEST"),
                   help="share of contracts per split (by contract hash; default 0.9 0.05 0.05)")
    b.add_argument("--level", type=int, choices=[1, 2, 3], default=1,
                   help="TAC level: 1 paper-faithful (default), 2 compact, 3 compact with failing branches as "
                        "require(...) and checked(a + b) (docs/tac-format.md, Level 2 and Level 3)")
    b.add_argument("--callee-budget", type=characters, metavar="CHARS",
                   help="levels 2-3: an internal function's unit that would take a function's example past this "
                        f"many characters prints as its effect summary (default {CALLEE_BUDGET_CHARS}; "
                        "docs/tac-format.md, \"The callee budget\")")
    g = sub.add_parser("signatures", help="(re)build a dataset's known-signature table (signatures.json beside it) "
                                          "and print the share of validation/test selectors it resolves")
    g.add_argument("name", help="dataset name under outputs/data/, a build folder, or 'sample'")
    s = sub.add_parser("stats", help="counts of a built dataset and its correctness report")
    s.add_argument("name", help="dataset name under outputs/data/ or a path")
    i = sub.add_parser("import", help="import a HF dataset (hub id or local jsonl/parquet) by column mapping")
    i.add_argument("source", help="a Hugging Face dataset id, or a local .jsonl/.json/.parquet/.csv file or folder")
    i.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN", required=True,
                   help="our field = their column; repeatable (tac + solidity, or source + bytecode)")
    i.add_argument("--name", required=True, help="dataset name: written to outputs/data/<name>/")
    i.add_argument("--split", help="the source's split to read (default: all)")
    i.add_argument("--license", default="unknown", help="licence recorded on every row (default: unknown)")
    i.add_argument("--limit", type=int, help="import at most N rows")


def main(args: argparse.Namespace) -> int:
    if args.data_cmd == "build":
        cfg = BuildConfig(name=args.name, packages=args.packages, max_packages=args.max_packages,
                          folders=args.folder, settings=args.settings, manifest=args.manifest,
                          permissive_only=args.permissive_only, max_units=args.max_units, workers=args.workers,
                          version_policy=args.version_policy, time_budget_s=args.time_budget,
                          timeout_s=args.timeout, fractions=tuple(args.fractions), tac_level=args.level,
                          callee_budget=args.callee_budget)
        m = build(cfg)
        if not m["pairs"] and m["rejects"]:
            raise DatasetError(_no_pairs(cfg.name, m["rejects"]))
        if args.write_sample:
            print("sample:", write_sample(load(args.name)))
        print(json.dumps({k: m[k] for k in ("pairs", "contracts", "per_split", "solc_minor_versions", "rejects",
                                            "timing_s")}, indent=2))
        return 0
    if args.data_cmd == "signatures":
        from . import signatures

        table = signatures.build_for_dataset(args.name)
        splits = load(args.name)
        print(json.dumps({"counts": table.counts(), **{s: signatures.coverage(table, [dict(r) for r in splits[s]])
                                                       for s in ("validation", "test") if s in splits}}, indent=1))
        return 0
    if args.data_cmd == "stats":
        dd = load(args.name)
        print({s: len(dd[s]) for s in dd})
        base = paths.resolve(args.name) if paths.resolve(args.name).exists() else paths.outputs_dir() / "data" / args.name
        for f in ("manifest.json", "correctness.json"):
            if (base / f).exists():
                print(f"--- {f}\n" + (base / f).read_text())
        return 0
    if args.data_cmd == "import":
        bad = [m for m in args.map if "=" not in m]
        if bad:
            raise P.param_error(None, "map", f"{bad[0]!r}: expected FIELD=COLUMN")
        mapping = dict(m.split("=", 1) for m in args.map)
        recs, rej = import_hf(args.source, mapping, name=args.name, split=args.split, license=args.license,
                              limit=args.limit, progress=True)
        print(f"imported {len(recs)} pairs, {len(rej)} rejects → outputs/data/{args.name}/")
        return 0
    return 2
