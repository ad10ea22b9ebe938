"""Binding (behaviour, stage 3): the names a generated function uses that its compile unit does not declare, given
the declarations the bytecode shows. A state variable goes to one the original touches at that storage slot (mapping
and array bases traced through SHA3 preimages), ranked by what the answer does with the name (`Shape`: the element
type at its full indexing, array use, members, numeric use); an event to one whose topic the original emits; a
function, modifier or error to one of the same arity, ranked by argument types and the original's call order; never
by spelling. docs/evaluation.md, "Behaviour"."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from .. import corpus, evm
from ..lift.emit import CONST
from .execution import Outcome
from .repair import source_at
from .solidity import ParseFailure, find_function, match_close

if TYPE_CHECKING:
    from .behaviour import Original


CANDIDATE = "tacsol_candidate"   # the name the harness gives the generated function in the unit (place)
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


def role_of(name: str, text: str) -> str:
    """What an undeclared name is in the function's text: "event", "error", "modifier", "function" or "variable"."""
    if re.search(rf"\bemit\s+{re.escape(name)}\s*\(", text):
        return "event"
    if re.search(rf"\brevert\s+{re.escape(name)}\s*\(", text):
        return "error"
    if name in modifier_names(text):
        return "modifier"
    if re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text):
        return "function"
    return "variable"


def modifier_names(text: str) -> set[str]:
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


def shape_of(name: str, text: str) -> Shape:
    """How the code uses a state variable: indexing depth, written or not, members, array use, the type it wants."""
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
        role = role_of(name, text)
        ranked: list[str] = []
        why = ""
        if role == "variable":
            sh = shape_of(name, text)
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
            args = argument_types(name, text)
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


def declared_types(text: str) -> dict[str, str]:
    """The function's parameters and returns, then its locals of an elementary type, by name: their types as
    written (no data location)."""
    declared: dict[str, str] = {}
    try:
        fn = find_function(text)
        declared.update({n: t for t, n in fn.params + fn.returns if n})
    except ParseFailure:
        pass
    for t, n in re.findall(r"\b((?:u?int|bytes)\d*|address(?:\s+payable)?|bool|string|bytes)\s+"
                           r"(?:memory\s+|calldata\s+|storage\s+)?([A-Za-z_$][\w$]*)\s*[=;]", text):
        declared.setdefault(n, t)
    return declared


def argument_types(name: str, text: str) -> list[str]:
    """The types of the arguments of the first call `name(...)` in `text` where the code says them: a parameter or
    typed local of that name, a literal, msg.sender; "" where it does not."""
    m = re.search(rf"(?<![.\w$]){re.escape(name)}\s*\(", text)
    if not m:
        return []
    close = match_close(text, m.end() - 1, "(", ")")
    inner = text[m.end():close].strip()
    if not inner:
        return []
    declared = declared_types(text)
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


def _only_declaration(original: Original, name: str, arity: int) -> bool:
    """No other overload of `name` takes `arity` arguments: a call `name(...)` of that arity is the function itself
    (Coordinator's getId(bytes) calls getId(ServiceAgreement), which solc tells apart by type)."""
    return sum(len(p) == arity for p, _ in original.overloads.get(name, ())) <= 1
