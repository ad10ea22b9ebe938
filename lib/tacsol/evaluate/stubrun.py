"""Check 5 of verifier-guided decoding: the candidate runs like the bytecode, with no source.

The behaviour harness (behaviour.py) places a candidate in the original's source; a decompiler has only the
bytecode. Here the candidate is compiled in a stub whose state comes from the TAC (levels 2-3 name it):

1. Storage: every constant slot the TAC loads or stores, with its mapping depth (`mapping(mapping(7)[caller])[v1]`
   is depth 2 at base 7), bit range (`sload(1)[0:160]`) and the keys' types (`uint160(...)`, `caller`: address).
2. The candidate's undeclared names (solc's own "Undeclared identifier" errors): each state variable is bound to a
   TAC base of its indexing depth, in first-use order against the TAC's first-access order, and declared at that
   slot and byte offset (fixed-size gaps before it); its value type is the TAC's width (160 bits: address; 8: bool
   where the code uses it as a condition or gives it a bool, else uint8; 256: the candidate's own 256-bit type or
   uint256; a string or dynamic array read whole: as the code types it). An event is declared with the argument
   types the code shows and as many indexed arguments as the TAC's `log<n>` has topics. An argument-less `only...`
   modifier is the TAC's `require(caller == sload(s)[0:160], "...")`. `_msgSender()` and `_msgData()` are the
   context's. A header without visibility is public (solc before 0.5). A public state variable runs as the getter
   solc generates for it (a constant returns its value). Any other unknown name (an internal function, another
   modifier, a library, a struct), a slot past 2^20 (a hashed namespace) or a compile error: not runnable, no
   verdict.
3. The original runtime and the stub run in py-evm over the harness's cases (cases.make_cases; storage seeded per
   slot by cases.seed_value) under a seed of their own (RUN_SEED, not the evaluation's), with the success search.
   Per case: success, return or revert data, storage writes, logs (topic 0 read as the original's: the event's
   name is the decompiler's guess), external calls, balance.

Verdict per candidate: "equivalent" (every case agrees and the original returned on at least one: code that
reverts always proves nothing), "differs", or "" with a reason (not runnable). The stub's layout is built from the
bytecode's own accesses, so a candidate whose names bind elsewhere than the original's would differ in place too;
what the stub cannot show (inherited code, modifiers) it leaves unjudged."""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .. import corpus, evm
from ..lift.abi import parse_header
from . import abi
from .binding import CANDIDATE, _arity, _uses, argument_types, declared_types, modifier_names, role_of, shape_of, undeclared_names
from .cases import compare, make_cases
from .compile import standard_input, without_inheritance
from .execution import ORIGINAL
from .solidity import ParseFailure, find_function, getter_function, match_close, split_top

RUN_SEED = 7            # the cases' seed: not the behaviour harness's (0), so the check is not the metric's own cases
MAX_SLOT = 1 << 20      # a variable past this slot (a hashed namespace, ERC-7201) cannot be placed by gaps
STUB = "TacsolRun"
CONTEXT_HELPERS = {
    "_msgSender": "function _msgSender() internal view returns (address) { return msg.sender; }",
    "_msgData": "function _msgData() internal view returns (bytes calldata) { return msg.data; }",
}
_ACCESS = re.compile(r"\b(sload|sstore|storagestring)\(")   # level 3 reads and writes a string whole
_RANGE = re.compile(r"\[(\d+):(\d+)\]")
_CONST = re.compile(r"^(0x[0-9a-f]+|\d+)$")
_LOG = re.compile(r"\blog([0-4])\(")
# what a stub's stand-in for an unknown internal function reverts with: a case whose run reaches it says nothing of
# the candidate (it depends on code the stub does not have), so it is left out of the comparison
UNKNOWN_MARK = evm.keccak256(b"tacsol: an internal function the stub does not have")
_QUALIFIER = re.compile(r"(?<![\w$.])(?:super|[A-Z][\w$]*)\s*\.\s*(?=[A-Za-z_$][\w$]*\s*\()")
# types tried, per argument whose type the code does not show, for a call of another public function of the original
_GUESSES = ("address", "uint256", "bool", "bytes32", "string", "bytes", "uint8", "uint64", "int256", "address[]",
            "uint256[]")
_NUMBERS = ("uint256", "uint8", "uint64", "int256", "uint128", "uint32", "uint16")
_DYNAMIC = re.compile(r"string|bytes|.*\[\d*\]")
_BOOLEAN_USE = r"(?:if\s*\(\s*!?\s*|require\s*\(\s*!?\s*|!\s*|&&\s*|\|\|\s*){name}\b|{name}(?:\[[^;]*?\])*\s*(?:&&|\|\||=\s*(?:true|false)\b|\)\s*\{{)"


@dataclass
class Slot:
    """A state variable the TAC touches: its base slot, indexing depth, bit range in the word, key types."""
    base: int
    depth: int
    offset_bits: int = 0
    bits: int = 256
    keys: list[str] = field(default_factory=list)
    string: bool = False     # read or written whole as a string or bytes (`storagestring(slot)`)


# the verdicts best first (rank_key and run_against's choice among bindings); a candidate not built ("") ranks 0
RUNS_RANK = {"equivalent": 3, "agrees": 2, "ran": 1, "differs": -1}


@dataclass
class RunCheck:
    verdict: str = ""        # "equivalent" | "agrees" (every case it could judge) | "ran" (built and run, no case
    #                          judged: each reached a stand-in) | "differs" | "" (not built: reason says why)
    reason: str = ""         # why not runnable, the cases compared, or the first differing case


def tac_header(tac: str) -> tuple[str, list[abi.AbiType], bool] | None:
    """(selector, argument types, payable) of a level 2-3 TAC unit; None where the header does not type them."""
    head = parse_header(tac)
    if head is None or not head.selector or not head.named:
        return None
    try:
        return head.selector, [abi.parse_type(t) for _, t in head.params], "payable" in head.mutability.split()
    except ValueError:
        return None


def _key_type(key: str, args: Mapping[str, str]) -> str:
    """A mapping key's type: an argument's declared one (the TAC header), an address where the TAC casts to 160
    bits or reads the caller, else uint256."""
    key = key.strip()
    if key in args:
        return args[key] if re.fullmatch(r"address|bool|u?int\d*|bytes\d+", args[key]) else "uint256"
    cast = re.fullmatch(r"(bytes\d+|u?int\d+|bool|address)\((.*)\)", key)
    if cast:
        return "address" if cast.group(1) == "uint160" else cast.group(1)
    return "address" if re.fullmatch(r"caller|origin|address", key) else "uint256"


def _slot_of(expr: str, args: Mapping[str, str] | None = None) -> tuple[int, int, list[str]] | None:
    """(base, depth, key types) of a slot expression: a constant, or mapping(...)[key] / array(...)[i] nests."""
    expr = expr.strip()
    if _CONST.match(expr):
        return int(expr, 0), 0, []
    m = re.match(r"(mapping|array)\(", expr)
    if not m:
        return None
    close = match_close(expr, m.end() - 1, "(", ")")
    if close < 0 or close + 1 >= len(expr) or expr[close + 1] != "[":
        return None
    end = match_close(expr, close + 1, "[", "]")
    if end != len(expr) - 1:
        return None
    inner = _slot_of(expr[m.end():close], args)
    if inner is None:
        return None
    base, depth, keys = inner
    return base, depth + 1, keys + [_key_type(expr[close + 2:end], args or {})]


def _resolve(tac: str, name: str) -> str:
    """A TAC value's definition where it is `vN = <expr>` (one step: `v1 = uint160(arg0)` makes v1 an address)."""
    m = re.search(rf"^\s*{re.escape(name)} = (.+)$", tac, re.M)
    return m.group(1).strip() if m else name


def tac_storage(tac: str) -> list[Slot]:
    """The constant-based slots the TAC reads and writes, first access first (one per base and depth)."""
    out: dict[tuple[int, int], Slot] = {}
    head = parse_header(tac)
    args = dict(head.params) if head and head.named else {}
    for m in _ACCESS.finditer(tac or ""):
        close = match_close(tac, m.end() - 1, "(", ")")
        if close < 0:
            continue
        arg = (split_top(tac[m.end():close]) or [""])[0]   # sstore(slot, value): the slot
        # a slot held in a value (`v1 = mapping(1)[arg0]` ... `sload(v1)`), and keys written as values
        # (`mapping(1)[v1]`), are read through their definitions
        if re.fullmatch(r"\s*v\d+\s*", arg):
            arg = _resolve(tac, arg.strip())
        arg = re.sub(r"\[(v\d+)\]", lambda k: f"[{_resolve(tac, k.group(1))}]", arg)
        s = _slot_of(arg, args)
        if s is None:
            continue
        base, depth, keys = s
        rng = _RANGE.match(tac, close + 1)   # `[o:b]`: a packed field, bit offset o, b bits (docs/tac-format.md)
        off, bits = (int(rng.group(1)), int(rng.group(2))) if rng else (0, 256)
        slot = out.setdefault((base, depth), Slot(base, depth, off, bits, keys))
        slot.string = slot.string or m.group(1) == "storagestring"
        if rng and slot.bits == 256:   # a whole-word access seen first (a write's read-modify) says less
            slot.offset_bits, slot.bits = off, bits
    return list(out.values())


def seed_shapes(slots: Sequence[Slot]) -> dict:
    """What the TAC's slots (tac_storage) say lives where, in cases.slot_shapes's form, so that storage is seeded as
    the harness seeds a contract whose layout it knows: a string slot holds a short string, a packed 8-bit field a
    flag."""
    out: dict = {}
    for s in slots:
        if s.depth == 0 and s.string:
            out.setdefault(s.base, []).append("bytes")
        elif s.depth == 0 and s.bits == 8:
            out.setdefault(s.base, []).append(s.offset_bits // 8)
    return out


def tac_log_topics(tac: str) -> list[int]:
    """Topics (topic 0 included) of each `log<n>` in the TAC, in text order."""
    return [int(m.group(1)) for m in _LOG.finditer(tac or "")]


@dataclass
class TacFacts:
    """What check 5 reads from a record's TAC, read once per record (every candidate's stubs share it)."""
    call: tuple[str, list[abi.AbiType], bool] | None   # tac_header: selector, argument types, payable
    slots: list[Slot]                                    # tac_storage
    topics: list[int]                                    # tac_log_topics
    owner: tuple[int, str] | None                        # _owner_check

    @classmethod
    def of(cls, tac: str) -> "TacFacts":
        return cls(tac_header(tac), tac_storage(tac), tac_log_topics(tac), _owner_check(tac))


def _value_type(slot: Slot, name: str, text: str, want: str) -> str:
    if slot.bits == 160:
        return "address"
    if slot.bits == 8 and (want == "bool" or re.search(_BOOLEAN_USE.format(name=re.escape(name)), text)):
        return "bool"
    if slot.bits == 256:
        return want if re.fullmatch(r"uint256|int256|bytes32|uint|int", want or "") else "uint256"
    if slot.bits % 8 == 0 and 0 < slot.bits < 256:
        return f"{'int' if (want or '').startswith('int') else 'uint'}{slot.bits}"
    return ""


def _declare(name: str, slot: Slot, text: str) -> str:
    sh = shape_of(name, text)
    whole = re.fullmatch(r"(?:address|bool|u?int\d*|bytes\d*)\[\]|string|bytes", sh.want or "")
    if whole and not slot.depth and slot.bits == 256 and (slot.string == (sh.want in ("string", "bytes"))):
        return sh.want   # a dynamic array or string read whole (a getter of one): declared as the code types it
    if sh.members or sh.array or slot.string:
        return ""
    value = _value_type(slot, name, text, sh.want)
    if not value:
        return ""
    t = value
    for k, own in reversed(list(zip(slot.keys, _index_types(name, text) + [""] * len(slot.keys)))):
        # a key the TAC does not type (uint256) is the word the code hashes: bytes32 and int256 keys hash the same
        # word, so the candidate's own type for it places the entry alike and lets its code compile
        t = f"mapping({own if k == 'uint256' and own in ('bytes32', 'int256') else k} => {t})"
    return t


def _index_types(name: str, text: str) -> list[str]:
    """The types of the index expressions at the first indexed use of `name` (`m[role][account]`), where the code
    types them ("" where it does not)."""
    types = _local_types(text)
    for m, _, depth in _uses(name, text):
        if depth:
            out, j = [], m.end()
            while len(out) < depth:
                k = text.index("[", j)
                close = match_close(text, k, "[", "]")
                out.append(types.get(text[k + 1:close].strip(), ""))
                j = close + 1
            return out
    return []


def layout_declarations(variables: Sequence[tuple[str, Slot, str]]) -> str | None:
    """State declarations that put each (name, slot, type) at its TAC slot and byte offset: a uint256[] gap before a
    slot, uint fillers inside one; None where two overlap or one is out of reach."""
    lines, at, used = [], 0, 0          # next free slot, bytes of it used
    for i, (name, s, t) in enumerate(sorted(variables, key=lambda v: (v[1].base, v[1].offset_bits))):
        size = 32 if s.depth or t in ("uint256", "int256", "bytes32", "string", "bytes") or t.endswith("[]") \
            else s.bits // 8
        off = s.offset_bits // 8 if not s.depth else 0
        if s.base >= MAX_SLOT or s.base < at - (used > 0) or (s.base == at - 1 and used > off):
            return None
        if used and s.base != at - 1:   # close the slot the last variable opened
            if used < 32:
                lines.append(f"uint{8 * (32 - used)} private __tacsol_fill{i};")
            used = 0
        if not used:
            if s.base > at:
                lines.append(f"uint256[{s.base - at}] private __tacsol_gap{i};")
            at = s.base + 1
        if off > used:
            lines.append(f"uint{8 * (off - used)} private __tacsol_pad{i};")
        lines.append(f"{t} {name};")
        used = off + size
        if used >= 32:
            used = 0
    return "\n    ".join(lines)


def _event(name: str, text: str, topics: int, state: Mapping[str, str], calls: Mapping[str, str] = {}) -> str:
    """The event's declaration: its arguments typed as the code shows them (a parameter, a literal, a state variable
    of the stub: `state`, a call of a stand-in returning one value: `calls`), else uint256; as many indexed as the
    TAC's log has topics after topic 0."""
    m = re.search(rf"\bemit\s+{re.escape(name)}\s*\(", text)
    args = [a.strip() for a in evm.split_types(text[m.end():match_close(text, m.end() - 1, "(", ")")])] if m else []
    types = argument_types(name, text) + [""] * len(args)
    called = [re.match(r"([A-Za-z_$][\w$]*)\s*\(", a) for a in args]
    types = [t if t and t != "number" else "address" if re.fullmatch(r"_msgSender\(\s*\)", a) else
             state.get(a) or (c and calls.get(c.group(1))) or "uint256" for a, t, c in zip(args, types, called)]
    indexed = max(0, min(topics - 1, len(types)))
    return f"event {name}(" + ", ".join(t + (" indexed" if i < indexed else "") for i, t in enumerate(types)) + ");"


def _emit_order(text: str) -> list[str]:
    return re.findall(r"\bemit\s+([A-Za-z_$][\w$]*)\s*\(", text)


def runtime_selectors(code: bytes) -> frozenset[str]:
    """The selectors the runtime dispatches ("0x" + 8 hex), by evmole; empty where it finds none."""
    try:
        import evmole

        return frozenset("0x" + f.selector for f in evmole.contract_info(code, selectors=True).functions)
    except Exception:  # noqa: BLE001  malformed code: no public function to delegate to
        return frozenset()


def _local_types(text: str) -> dict[str, str]:
    """binding.declared_types with `address payable` as `address` (what a stand-in declares)."""
    return {n: t.replace("address payable", "address") for n, t in declared_types(text).items()}


def returned_types(name: str, text: str) -> list[str] | None:
    """What the first call `name(...)` in the candidate must return, from where it stands: [] as a statement, the
    type of the local it initializes or of the value it is compared with, bool as a condition, the function's own
    return types when returned; None where the code does not say."""
    m = re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text)
    close = match_close(text, m.end() - 1, "(", ")") if m else -1
    if close < 0:
        return None
    before, after = text[:m.start()].rstrip(), text[close + 1:].lstrip()
    if after.startswith(";") and (before.endswith((";", "{", "}")) or re.search(r"\belse$", before)):
        return []
    local = re.search(r"\b((?:u?int|bytes)\d*|address(?:\s+payable)?|bool|string)\s+(?:memory\s+)?[A-Za-z_$][\w$]*"
                      r"\s*=$", before)
    if local:
        t = local.group(1).replace("address payable", "address")
        return [{"uint": "uint256", "int": "int256"}.get(t, t)]
    tup = re.search(r"\(([^()]*)\)\s*=$", before)
    if tup and "," in tup.group(1):   # `(bool found, uint256 value) = f(...)`: one type per component
        parts = [p.split() for p in tup.group(1).split(",")]
        return [p[0] if len(p) > 1 else "uint256" for p in parts]
    if re.search(r"\breturn$", before) and after.startswith(";"):
        try:
            return [t for t, _ in find_function(text).returns]
        except ParseFailure:
            return None
    if re.search(r"(?:\brequire\s*\(|\bassert\s*\(|\bif\s*\(|\bwhile\s*\(|!|&&|\|\|)$", before) or \
            re.match(r"(?:&&|\|\||\?)", after):
        return ["bool"]
    types = _local_types(text)
    other = re.match(r"(?:==|!=)\s*([A-Za-z_$][\w$.]*)", after) or re.search(r"([A-Za-z_$][\w$.]*)\s*(?:==|!=)$", before)
    if other:
        o = other.group(1)
        t = types.get(o) or ("address" if o in ("msg.sender", "tx.origin") else "")
        return [t] if t else None
    if re.match(r"(?:<|>|[-+*/%](?!=))", after) or re.search(r"(?:<|>|<=|>=|[-+*/%])$", before) or \
            re.match(r"\.\s*(?:add|sub|mul|div|mod)\s*\(", after):
        return ["uint256"]   # ordered or arithmetic: a number
    return None


def _located(t: str) -> str:
    return f"{t} memory" if _DYNAMIC.fullmatch(t) else t


def _public_signature(name: str, args: Sequence[str], selectors: frozenset[str]) -> tuple[str, list[str]] | None:
    """(selector, argument types) of the runtime's public function `name` taking these arguments: the types the code
    shows, each unknown one tried among _GUESSES (a number among _NUMBERS); None unless exactly one signature's
    selector is among `selectors`."""
    options = [[a] if a and a not in ("number",) else list(_NUMBERS if a == "number" else _GUESSES) for a in args]
    if any(a.startswith("struct ") for a in args) or sum(len(o) > 1 for o in options) > 3:
        return None
    found = {}
    for combo in itertools.product(*options):
        sel = evm.selector(f"{name}({','.join(combo)})")
        if sel in selectors:
            found[sel] = list(combo)
    return next(iter(found.items())) if len(found) == 1 else None


def stand_in(name: str, text: str, selectors: frozenset[str], own: str, delegate: bool,
             state: Mapping[str, str] = {}) -> tuple[str, bool] | str:
    """(declaration, delegates) of an internal function `name` the candidate calls and the stub does not have, or
    why none can be written. Where `delegate` allows and the runtime has exactly one public function of that name
    and arity taking the arguments the code shows (other than `own`, the function the candidate stands for: no
    answer runs the original in its place), a DELEGATECALL of it at ORIGINAL, which runs the original's code on the
    stub's storage, as an internal call of that function in the original does (the most derived override: a
    source's `Base.f(...)` names the base's own, which may differ). Else a function that reverts with
    UNKNOWN_MARK: the cases that reach it are left unjudged. An argument that is a state variable of the stub
    (`state`: name -> type) has its type; one the code does not type is a uint256, as is a result it does not type
    (a word decodes losslessly as one)."""
    arity = _arity(name, text)
    inner = re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text)
    written = [a.strip() for a in evm.split_types(text[inner.end():match_close(text, inner.end() - 1, "(", ")")])] \
        if inner and arity else []
    args = [t or state.get(a) or ("address" if re.fullmatch(r"_msgSender\(\s*\)", a) else "")
            for t, a in zip(argument_types(name, text), written)]
    returns = returned_types(name, text)
    if returns is None:
        returns = ["uint256"]
    public = _public_signature(name, args, selectors) if delegate else None
    if public is not None and public[0] != own.lower():
        sel, types = public
        params = ", ".join(f"{_located(t)} a{i}" for i, t in enumerate(types))
        rets = ", ".join(f"{_located(t)} r{i}" for i, t in enumerate(returns))
        decode = (f"\n        ({', '.join(f'r{i}' for i in range(len(returns)))}) = abi.decode(out, "
                  f"({', '.join(returns)}));" if returns else "")
        return (f"function {name}({params}) internal{f' returns ({rets})' if rets else ''} {{\n"
                f"        (bool ok, bytes memory out) = address(uint160({int.from_bytes(ORIGINAL, 'big')})).delegatecall("
                f"abi.encodeWithSelector(bytes4({sel}){''.join(f', a{i}' for i in range(len(types)))}));\n"
                f"        if (!ok) {{ assembly {{ revert(add(out, 32), mload(out)) }} }}{decode}\n    }}", True)
    if any(a.startswith("struct ") for a in args):
        return f"unknown function {name} (a struct argument)"
    params = ", ".join(f"{_located(a if a and a not in ('number',) else 'uint256')} a{i}" for i, a in enumerate(args))
    rets = ", ".join(f"{_located(t)} r{i}" for i, t in enumerate(returns))
    return (f"function {name}({params}) internal pure{f' returns ({rets})' if rets else ''} {{\n"
            f"        assembly {{ mstore(0, 0x{UNKNOWN_MARK.hex()}) revert(0, 32) }}\n    }}", False)


def stub_sources(fn_text: str, names: Sequence[str], facts: TacFacts, version: str,
                 selectors: frozenset[str] = frozenset()) -> list[str] | str:
    """The stubs that run the candidate (`fn_text`, as _renamed makes it; one stub per binding of its variables to
    the TAC's slots, at most 6), or why none can. An internal function it calls gets a stand-in (stand_in: the
    original's public function of that signature among the runtime's `selectors`, else one that marks the case
    unjudged)."""
    variables, events, helpers, guards, functions = [], [], [], [], []
    for name in names:
        role = role_of(name, fn_text)
        if name in CONTEXT_HELPERS and role == "function":
            helpers.append(CONTEXT_HELPERS[name])
        elif role == "function":
            functions.append(name)
        elif role == "variable":
            variables.append(name)
        elif role == "event":
            events.append(name)
        elif role == "modifier" and name.startswith("only") and not re.search(rf"\b{name}\s*\(\s*[^)\s]", fn_text):
            guards.append(name)
        else:
            return f"unknown {role} {name}"
    # a delegated call carries the candidate's call value, which an internal call would not check: not where the
    # function is payable; abi.decode and the call's (bool, bytes) result need solc 0.5
    delegate = facts.call is not None and not facts.call[2] and _at_least(version, (0, 5, 0))
    own = facts.call[0] if facts.call else ""
    slots, topics = facts.slots, facts.topics
    order = _emit_order(fn_text)
    by_depth: dict[int, list[Slot]] = {}
    for s in slots:
        by_depth.setdefault(s.depth, []).append(s)
    wanted: dict[int, list[str]] = {}
    for v in variables:
        wanted.setdefault(shape_of(v, fn_text).depth, []).append(v)
    choices = []
    for depth, vs in wanted.items():
        pool = by_depth.get(depth, [])
        if len(pool) < len(vs):
            return f"no slot of depth {depth} in the TAC for {', '.join(vs)}"
        choices.append([list(zip(vs, p)) for p in itertools.permutations(pool, len(vs))][:6])
    owner = facts.owner if guards else None
    if guards and owner is None:
        return f"modifier {guards[0]}: the TAC shows no caller check against a stored address"
    calls = {}   # a stand-in's one return type, for the events whose arguments call it
    for name in functions:
        returns = returned_types(name, fn_text)
        if returns and len(returns) == 1:
            calls[name] = returns[0]
    out = []
    for combo in itertools.islice(itertools.product(*choices), 6):
        bound = [(n, s, _declare(n, s, fn_text)) for part in combo for n, s in part]
        if any(not t for _, _, t in bound):
            return "a variable of a type the stub does not declare (struct, array, packed width)"
        modifiers = []
        if owner is not None:
            slot, message = owner
            held = next((n for n, s, t in bound if s.base == slot and s.depth == 0 and t == "address"), None)
            if held is None:
                held = "__tacsol_owner"
                bound.append((held, Slot(slot, 0, 0, 160), "address"))
            modifiers = [f"modifier {g}() {{ require(msg.sender == {held}{message}); _; }}" for g in guards]
        decl = layout_declarations(bound)
        if decl is None:
            continue
        state = {n: t for n, s, t in bound if not s.depth}
        stand_ins, text = [], fn_text
        for name in functions:
            made = stand_in(name, fn_text, selectors, own, delegate, state)
            if isinstance(made, str):
                return made
            stand_ins.append(made[0])
            if made[1]:   # a view candidate calls what the compiler cannot know to be a view: its mutability
                text = _without_mutability(fn_text)   # goes (it changes no opcode of the candidate)
        event_lines = [_event(e, fn_text, topics[order.index(e)] if order.index(e) < len(topics) else 1, state,
                              calls)
                       for e in events]
        out.append(f"// SPDX-License-Identifier: UNLICENSED\npragma solidity {version};\n\ncontract {STUB} {{\n"
                   f"    {decl}\n    " + "\n    ".join(event_lines + helpers + stand_ins + modifiers) +
                   f"\n\n{text}\n}}\n")
    return out or "no layout places the variables at the TAC's slots"


def _at_least(version: str, floor: tuple[int, ...]) -> bool:
    try:
        return tuple(int(x) for x in version.split("+")[0].split(".")[:3]) >= floor
    except ValueError:
        return False


def _without_mutability(fn_text: str) -> str:
    head = fn_text.find("{")
    return fn_text if head < 0 else re.sub(r"\b(view|pure)\b", "", fn_text[:head]) + fn_text[head:]


def _compile(inputs: list[tuple[str, str]], version: str, codegen: bool) -> dict[str, Any]:
    """Stub sources through one solcjs process: key -> solc's output (or corpus.run_solcjs's error string)."""
    return corpus.run_solcjs(version, [(k, standard_input(src, codegen=codegen)) for k, src in inputs], 600.0)


def _renamed(fn_text: str) -> str:
    """The candidate without override/virtual (the stub has no bases), named CANDIDATE: its own name may be one of
    the state variables it reads (`function master() ... { return master; }`), as a getter's is. A header with no
    visibility gets `public`, what solc before 0.5 made of it (and what the bytecode's selector says it is)."""
    text = re.sub(r"\bfunction\s+[A-Za-z_$][\w$]*\s*\(", f"function {CANDIDATE}(", without_inheritance(fn_text),
                  count=1)
    text = _QUALIFIER.sub("", text)   # `super.f(...)`, `ERC721.ownerOf(...)`: the stub has no bases, f is the stub's
    m = re.search(rf"\bfunction {CANDIDATE}\(", text)
    close = match_close(text, m.end() - 1, "(", ")") if m else -1
    head_end = min((i for i in (text.find("{", close), text.find(";", close)) if i >= 0), default=-1) if close >= 0 else -1
    if head_end > 0 and not re.search(r"\b(public|external|internal|private)\b", text[close:head_end]):
        text = text[:close + 1] + " public" + text[close + 1:]
    return text


_KEYWORDS = {"public", "external", "internal", "private", "view", "pure", "payable", "returns", "override",
             "virtual", "constant"}


def _modifiers(fn_text: str) -> tuple[list[str], set[str]]:
    """The candidate's modifiers: (those without arguments, sorted; those called with arguments)."""
    names = modifier_names(fn_text) - _KEYWORDS
    with_args = {m for m in names if re.search(rf"\b{re.escape(m)}\s*\(\s*[^)\s]", fn_text)}
    return sorted(names - with_args), with_args


def _bare(fn_text: str, version: str) -> str:
    """The candidate (as _renamed makes it) alone, its argument-less modifiers declared empty: solc reports a body's
    undeclared names only once its header's resolve."""
    return (f"// SPDX-License-Identifier: UNLICENSED\npragma solidity {version};\n\ncontract {STUB} {{\n"
            + "".join(f"modifier {m}() {{ _; }}\n" for m in _modifiers(fn_text)[0]) + f"{fn_text}\n}}\n")


_OWNER = re.compile(r"\brequire\((?:caller == sload\((0x[0-9a-f]+|\d+)\)\[0:160\]|sload\((0x[0-9a-f]+|\d+)\)\[0:160\] == "
                    r"caller)(?:, (\"[^\"\n]*\"))?\)$", re.M)


def _owner_check(tac: str) -> tuple[int, str] | None:
    """(slot, ', "message"' or '') of the TAC's first `require(caller == sload(slot)[0:160], ...)`: what an
    `onlyOwner`-style modifier of the candidate stands for. A custom-error revert is not rebuilt (None)."""
    m = _OWNER.search(tac or "")
    if not m or int(m.group(1) or m.group(2), 0) >= MAX_SLOT:
        return None
    return int(m.group(1) or m.group(2), 0), f", {m.group(3)}" if m.group(3) else ""


def build_runtimes(items: Sequence[tuple[str, str, str, str]], facts: dict[str, TacFacts] | None = None,
                   selectors: Mapping[str, frozenset[str]] | None = None
                   ) -> dict[str, tuple[list[tuple[bytes, str]], str]]:
    """items: (key, candidate text, TAC, solc version). key -> ([(runtime, selector)] per binding, reason): the
    candidate's undeclared names from one check-only compile per version, then its stubs compiled with code
    generation, every candidate of a version in one solcjs process per stage. `facts` (TAC -> TacFacts) is filled
    with what the stubs read of each distinct TAC; `selectors` (key -> the original runtime's selectors) says which
    of the original's public functions a stub may call (stand_in)."""
    out: dict[str, tuple[list[tuple[bytes, str]], str]] = {}
    facts = {} if facts is None else facts   # per distinct TAC: a record's candidates share it
    by_version: dict[str, list[tuple[str, str, str]]] = {}
    for key, text, tac, version in items:
        try:
            fn = find_function(text)
        except ParseFailure:
            out[key] = ([], "no function")
            continue
        if fn.kind == "getter":   # a public state variable: the function solc generates for it (a struct's type
            fn = find_function(getter_function(fn, CANDIDATE))   # is unknown to the stub: it does not compile)
        if fn.kind != "function" or re.search(r"\b(internal|private)\b", fn.attributes):
            out[key] = ([], "not a public function")
            continue
        v = corpus.nearest_installed(version or "0.8.26")
        if v is None:
            out[key] = ([], f"no solcjs for {version}")
            continue
        if tac not in facts:
            facts[tac] = TacFacts.of(tac)
        by_version.setdefault(v, []).append((key, _renamed(fn.text), tac))
    for v, part in by_version.items():
        bare = {k: _bare(t, v) for k, t, _ in part}
        first = _compile(list(bare.items()), v, codegen=False)
        stubs: list[tuple[str, str]] = []
        stub_keys: dict[str, list[str]] = {}   # candidate -> its stubs' keys
        for k, t, tac in part:
            res = first.get(k)
            if not isinstance(res, dict):
                out[k] = ([], "compiler crashed")
                continue
            errors = {"errors": [e for e in res.get("errors", []) if e.get("severity") == "error"]}   # not warnings
            names = undeclared_names(errors, {"Stub.sol": bare[k]})
            if names is not None:   # the modifiers _bare declared empty are the stub's to build; not those with
                plain, with_args = _modifiers(t)   # arguments
                names = sorted(set(plain) - set(names)) + [n for n in names if n not in with_args]
            if names is None:
                out[k] = ([], "does not compile")
                continue
            made = stub_sources(t, names, facts[tac], v, (selectors or {}).get(k, frozenset()))
            if isinstance(made, str):
                out[k] = ([], made)
                continue
            stub_keys[k] = [f"{k}#{i}" for i in range(len(made))]
            stubs += zip(stub_keys[k], made)
        second = _compile(stubs, v, codegen=True) if stubs else {}
        for k, t, tac in part:
            if k in out:
                continue
            runs, why = [], "does not compile in the stub"
            for sk in stub_keys[k]:
                res = second.get(sk)
                if not isinstance(res, dict) or any(e.get("severity") == "error" for e in res.get("errors", [])):
                    if isinstance(res, dict):
                        why = "does not compile in the stub: " + next(
                            (e.get("message", "") for e in res["errors"] if e.get("severity") == "error"), "")[:160]
                    continue
                c = res["contracts"]["Stub.sol"][STUB]
                sigs = c["evm"]["methodIdentifiers"]
                if len(sigs) != 1:
                    continue
                runs.append((bytes.fromhex(c["evm"]["deployedBytecode"]["object"]), "0x" + next(iter(sigs.values()))))
            out[k] = (runs, "" if runs else why)
    return out


def run_against(code: bytes, facts: TacFacts, candidates: Sequence[Sequence[tuple[bytes, str]]], *,
                seed: int = RUN_SEED, time_limit_s: float = 10.0) -> list[RunCheck]:
    """The original runtime `code` traced once over the cases, then each candidate's stub runtimes (one per binding)
    against it: "equivalent" if one binding agrees on every case (and the original returned on one), else
    "differs" with the first binding's first difference; no verdict for a candidate without a runtime."""
    import time

    from .trace import trace_original

    head = facts.call
    if head is None:
        return [RunCheck("", "the TAC does not type the arguments") for _ in candidates]
    sel, types, payable = head
    shapes = seed_shapes(facts.slots)
    t = trace_original(code, sel, types, make_cases(types, payable, seed), seed=seed, time_limit_s=time_limit_s,
                       shapes=shapes, payable=payable, search=True, branches=False)
    if t.status != "ok" or not any(o.success for o in t.outcomes):
        why = t.status if t.status != "ok" else "the original never returned"
        return [RunCheck("", why) for _ in candidates]
    out = []
    for runtimes in candidates:
        best = RunCheck("", "no runtime")
        for cand, cand_sel in runtimes:   # the best binding's verdict; the first binding's first difference
            got = _compare_binding(t, code, cand, cand_sel, types, sel, seed, shapes, time.thread_time() + time_limit_s)
            if best.reason == "no runtime" or RUNS_RANK.get(got.verdict, 0) > RUNS_RANK.get(best.verdict, 0):
                best = got
            if got.verdict == "equivalent":
                break
        out.append(best)
    return out


def _compare_binding(t, code: bytes, cand: bytes, cand_sel: str, types, sel: str, seed: int, shapes: dict,
                     deadline: float) -> RunCheck:
    """One stub runtime against the original `code`'s trace `t`, case by case. A case whose run reaches a stand-in that marks it
    (UNKNOWN_MARK) is not judged: "differs" at the first judged case that differs, "equivalent" when every case is
    judged and agrees, "agrees" when some are and agree, "ran" when none is."""
    from .trace import _as_if_called_by, _run

    unjudged, returned = 0, 0
    for i, (a, c) in enumerate(zip(t.outcomes, t.cases)):
        b = _as_if_called_by(_run(cand, cand_sel, types, c, seed, shapes, deadline, original=code), cand_sel, sel)
        if not b.success and b.error == "Revert" and b.output == UNKNOWN_MARK:
            unjudged += 1
            continue
        # topic 0 is the event's name: the decompiler's guess, read as the original's
        b.logs = [((a.logs[j][0][0],) + tp[1:] if j < len(a.logs) and tp and a.logs[j][0] else tp, d)
                  for j, (tp, d) in enumerate(b.logs)]
        diff = compare(a, b)
        if diff:
            return RunCheck("differs", f"case {i}: {diff} differ")
        returned += a.success
    n = len(t.outcomes)
    if not unjudged:
        return RunCheck("equivalent", f"{n} cases")
    if unjudged == n:
        return RunCheck("ran", f"every case reaches a function the stub does not have ({n} cases)")
    return RunCheck("agrees", f"{n - unjudged} of {n} cases agree ({returned} returning), {unjudged} reach a "
                              "function the stub does not have")


def check_all(records: Sequence[Mapping[str, Any]], codes: Mapping[str, bytes], candidates: Mapping[str, Sequence[str]],
              workers: int = 2) -> dict[str, list[RunCheck]]:
    """Every candidate of every record run against its original (`codes`: record id -> runtime): the stubs of all
    records compiled together (one check-only and one code-generating solcjs process per solc version), then each
    original traced and its candidates run, in `workers` processes (1: in this one, as the decompiler does beside
    a loaded model). record id -> one RunCheck per candidate; a failure (of the compiles, or of one original's run)
    leaves the candidates it touches without a verdict, saying why, never raises."""
    from concurrent.futures import Future, ProcessPoolExecutor

    items = [(f"{r['id']}|{k}", text, r.get("tac") or "", r.get("solc_version") or "")
             for r in records if r["id"] in codes for k, text in enumerate(candidates[r["id"]])]
    facts: dict[str, TacFacts] = {}
    try:
        sels = {r["id"]: runtime_selectors(codes[r["id"]]) for r in records if r["id"] in codes}
        built = build_runtimes(items, facts, {key: sels[key.rsplit("|", 1)[0]] for key, *_ in items}) if items else {}
    except Exception as exc:  # noqa: BLE001  a check that fails leaves the ranking to the other checks
        why = f"check 5 failed: {type(exc).__name__}: {str(exc)[:160]}"
        return {r["id"]: [RunCheck("", why) for _ in candidates[r["id"]]] for r in records}
    out: dict[str, list[RunCheck]] = {}

    def settle(rid: str, result) -> None:
        """The record's verdicts from its run (a callable returning them): no verdict for all if it fails."""
        try:
            got = result()
        except Exception as e:  # noqa: BLE001  one original's failure is its candidates' (no verdict)
            got = [RunCheck("", f"run failed: {type(e).__name__}: {str(e)[:120]}")] * len(out[rid])
        out[rid] = [g if g.verdict or not o.reason else o for g, o in zip(got, out[rid])] if got else out[rid]

    jobs: dict[str, Future] = {}
    ex = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for r in records:
            n = len(candidates[r["id"]])
            if r["id"] not in codes:
                out[r["id"]] = [RunCheck("", "no original runtime") for _ in range(n)]
                continue
            runs = [built[f"{r['id']}|{k}"] for k in range(n)]
            out[r["id"]] = [RunCheck("", why) for _, why in runs]
            if not any(rt for rt, _ in runs):
                continue
            tac = r.get("tac") or ""
            args = (codes[r["id"]], facts.get(tac) or TacFacts.of(tac), [rt for rt, _ in runs])
            if ex is None:
                settle(r["id"], lambda: run_against(*args))
            else:
                jobs[r["id"]] = ex.submit(run_against, *args)
        for rid, fut in jobs.items():
            settle(rid, fut.result)
    finally:
        if ex is not None:
            ex.shutdown()
    return out


def check_record(record: Mapping[str, Any], code: bytes, candidates: Sequence[str]) -> list[RunCheck]:
    """One record's candidates against its original runtime, in this process."""
    rec = {**record, "id": "record"}
    return check_all([rec], {"record": code}, {"record": list(candidates)}, workers=1)["record"]


def compiler_of(code: bytes) -> str:
    """The solc version the runtime's CBOR metadata names, so that the stub is compiled by the original's release
    (checked arithmetic and revert encodings): the `solc` entry (0.5.9 on); "0.5.8" for a `bzzr0` hash alone (the
    releases before, whose arithmetic is unchecked alike); "" without metadata."""
    try:
        import evmole

        meta = evmole.contract_info(code, metadata=True).metadata
    except Exception:  # noqa: BLE001  no or malformed metadata
        return ""
    for e in getattr(meta, "entries", None) or []:
        if e.key == "solc":
            raw = e.value.value
            if isinstance(raw, (bytes, bytearray, list)) and len(raw) == 3:
                return ".".join(str(int(b)) for b in raw)
    return "0.5.8" if any(e.key == "bzzr0" for e in getattr(meta, "entries", None) or []) else ""
