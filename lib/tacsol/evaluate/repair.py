"""Type-only repairs of a generated function that does not compile in its unit (behaviour, stage 3b).

Binding (binding.bind) gives a generated name the declaration the bytecode shows. Some candidates then still fail
to compile on a difference of *type* that the bytecode cannot show either, so a decompiler cannot know it:

- `address payable` written for a compiler before 0.5, which has no such type (the bytecode is the same);
- an address returned where the unit declares a contract type, or the reverse (`return token;` in a function
  returning `address`, `token` an `IERC20`): an explicit conversion, no code;
- `address` against `address payable` in a function's return list (0.5+: the same word);
- a public state variable read through its getter's call syntax inside the contract (`state()` where `state` is
  `State public state`, `balances(a)` for a mapping): the value the getter returns, read directly;
- a value read under a name the unit gives a function (`uint256 public rate;` generated where the original is
  `function rate()` returning `_rate`: solc reads `return rate;` as the function): the name becomes a fresh one,
  `rate_var`, which binding then gives the variable at the slot the original reads, as any undeclared name.
- a struct's first member, when it is a mapping at the struct's own slot, indexed as if the struct were that
  mapping (`_roles[role][account]` where the unit has `_roles[role].members[account]`: the same keccak of the
  same slot): the member is named;
- a dynamic storage array returned as a number (`return _allTokens;` in a function returning `uint256`, the
  answer's `_totalSupply` bound to the array's slot): its length, which is the word at that slot.
- a parameter's data location, which solc versions spell differently and the ABI does not show (`string s` for
  0.5+, which wants `string memory s`; `bytes memory` in an external function of 0.5, which wants `calldata`):
  the first location solc names.

Each repair removes exactly the error solc reports, at its location, and is recorded as a note ("repair: ...") in
`behaviour_bindings`. A conversion between an address and an integer, a wrong return count, or any other error is
not a repair: the function stays `did_not_compile`. Every system's outputs get the same repairs."""
from __future__ import annotations

import re
from dataclasses import dataclass

NOTE = "repair: "
_IDENT = r"[A-Za-z_$][\w$]*"


@dataclass(frozen=True)
class Repair:
    """One textual rewrite of the candidate: `pattern` (a regex) -> `replacement`, and the note that says why."""
    pattern: str
    replacement: str
    note: str

    def apply(self, text: str) -> str:
        return re.sub(self.pattern, self.replacement, text)


def repairs_for(out: dict, sources: dict[str, str], text: str, state_variables: set[str],
                types: dict[str, dict] | None = None) -> list[Repair] | None:
    """The repairs that remove every error of the compile output `out` from the candidate `text`, or None when
    some error is not one a repair removes (or a repair would not change the text). `state_variables`: the
    labels of the unit's storage layout (for a getter call written on one); `types`: its storage layout's types
    (for a struct's members)."""
    found: list[Repair] = []
    for e in out.get("errors") or []:
        r = _repair(e, source_at(e, sources), state_variables, types or {})
        if r is None or r.apply(text) == text:
            return None
        if r not in found:
            found.append(r)
    return found or None


def apply_repairs(text: str, repairs: list[Repair]) -> str:
    for r in repairs:
        text = r.apply(text)
    return text


def source_at(e: dict, sources: dict[str, str]) -> str:
    """The source text at a solc error's location ("" when it has none): what binding and repairs read."""
    loc = e.get("sourceLocation") or {}
    src = sources.get(loc.get("file") or "")
    if src is None or loc.get("start") is None or loc.get("end") is None:
        return ""
    return src.encode()[loc["start"]:loc["end"]].decode(errors="replace").strip()


_RETURN_CONV = re.compile(r"Return argument type (.+?) is not implicitly convertible to expected type "
                          r"\(type of first return variable\) (.+?)\.?$")


def _repair(e: dict, at: str, state_variables: set[str], types: dict[str, dict]) -> Repair | None:
    msg = (e.get("message") or "").strip()
    kind = e.get("type") or ""
    if kind == "ParserError" and "'payable'" in msg:
        return Repair(r"\baddress\s+payable\b", "address",
                      NOTE + "address payable -> address (this compiler has no address payable; the same word)")
    m = _RETURN_CONV.match(msg)
    if m and at:
        given, expected = m.group(1).strip(), m.group(2).strip()
        if given.startswith("function ") and re.fullmatch(_IDENT, at):
            why = f"read as a value, {at} names a function of the unit: bound by slot"
            return Repair(rf"(?<![\w$.]){re.escape(at)}(?![\w$]|\s*\()", f"{at}_var",
                          NOTE + f"{at} -> {at}_var ({why})")
        conv = _return_conversion(given, expected)
        if conv is not None:
            return Repair(rf"\breturn(\s*\(?\s*){re.escape(at)}(\s*\)?\s*;)",
                          rf"return\g<1>{conv}({_literal(at)})\g<2>",
                          NOTE + f"return {conv}({at}) ({given} where {expected} is returned: no code)")
        if _DYNAMIC_ARRAY.match(given) and _UNSIGNED.match(expected) and re.fullmatch(_IDENT, at):
            return Repair(rf"\breturn(\s*\(?\s*){re.escape(at)}(\s*\)?\s*;)", rf"return\g<1>{at}.length\g<2>",
                          NOTE + f"return {at}.length ({given} returned as {expected}: the word at its slot)")
        if _is_address(given) and _is_address(expected):   # address vs address payable: the same word
            return Repair(r"(\breturns\s*\([^)]*?)\baddress\s+payable\b", r"\g<1>address",
                          NOTE + "returns (address) for address payable (the same word)")
    m = _LOCATION.match(msg)
    if m and kind == "TypeError" and at:
        want = m.group(1)
        decl = re.fullmatch(rf"(.+?)(?:\s+(memory|calldata|storage))?(\s+{_IDENT})?", at, re.S)
        if decl is not None and "(" not in at and "," not in at:
            fixed = f"{decl.group(1)} {want}{decl.group(3) or ''}"
            note = NOTE + f"{at} -> {fixed} (a data location: the ABI and the bytecode's behaviour are the same)"
            if decl.group(3):   # a named parameter: that declaration
                return Repair(rf"(?<![\w$.]){re.escape(at)}(?![\w$])", _literal(fixed), note)
            # an unnamed return parameter: only in the returns list (the type may stand in the body too)
            return Repair(rf"(\breturns\s*\([^)]*?)(?<![\w$.]){re.escape(at)}(?=\s*[,)])",
                          rf"\g<1>{_literal(fixed)}", note)
    m = _INDEXED_STRUCT.match(msg)
    if m and kind == "TypeError" and at:
        member = _first_mapping_member(m.group(1), types)
        if member is not None:
            return Repair(rf"(?<![\w$.]){re.escape(at)}(\s*\[)", rf"{_literal(at)}.{member}\g<1>",
                          NOTE + f"{at}[..] -> {at}.{member}[..] (the struct's first member, a mapping at its slot)")
    if kind == "TypeError" and msg.startswith(("Type is not callable", "This expression is not callable")):
        call = re.fullmatch(rf"({_IDENT})\s*\((.*)\)", at, re.S)
        if call and call.group(1) in state_variables:
            name, args = call.group(1), _split_args(call.group(2))
            if args is not None:
                index = "".join(f"[{a}]" for a in args)
                return Repair(rf"(?<![\w$.]){re.escape(name)}\s*\(\s*{_args_pattern(args)}\s*\)", name + index,
                              NOTE + f"{at} -> {name}{index} (a public state variable's getter, read directly)")
    return None


_DYNAMIC_ARRAY = re.compile(r"^(?!bytes\b|string\b).+\[\] storage (?:ref|pointer)$")
_UNSIGNED = re.compile(r"^uint(?:256)?$")   # a narrower return would mask the length
_LOCATION = re.compile(r'^Data location must be "(memory|calldata)"(?: or "(?:memory|calldata)")? for (?:return )?'
                       r'parameter in (?:external )?function, but (?:none|"(?:memory|calldata|storage)") was given')
_INDEXED_STRUCT = re.compile(r"^Indexed expression has to be a type, mapping or array \(is (struct [\w$.]+) storage "
                             r"(?:ref|pointer)\)")


def _first_mapping_member(label: str, types: dict[str, dict]) -> str | None:
    """The name of the struct `label`'s member at its own slot and offset 0, when that member is a mapping."""
    for t in types.values():
        if t.get("label") == label and t.get("members"):
            first = min(t["members"], key=lambda m: (int(m.get("slot", 0)), int(m.get("offset", 0))))
            if int(first.get("slot", 0)) == 0 and int(first.get("offset", 0)) == 0 \
                    and (types.get(first.get("type", "")) or {}).get("encoding") == "mapping":
                return first["label"]
            return None
    return None


def _literal(s: str) -> str:
    """`s` as a re.sub replacement template (backslashes doubled)."""
    return s.replace("\\", "\\\\")


def _is_address(t: str) -> bool:
    return t in ("address", "address payable")


def _return_conversion(given: str, expected: str) -> str | None:
    """The explicit conversion that turns a returned `given` into `expected` without code: contract <-> address."""
    if given.startswith("contract ") and _is_address(expected):
        return "address"
    if _is_address(given) and expected.startswith("contract "):
        return expected.split()[-1]
    return None


def _split_args(s: str) -> list[str] | None:
    """Top-level comma-separated arguments of a call (nested brackets kept whole); [] for none."""
    if not s.strip():
        return []
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return None
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out if all(out) else None


def _args_pattern(args: list[str]) -> str:
    return r"\s*,\s*".join(re.escape(a) for a in args)
