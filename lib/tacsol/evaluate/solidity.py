"""Just enough Solidity parsing for the objective checks: find a function, read its header and canonical signature
(its selector: tacsol.evm.selector), the state declarations of a contract, and which effects (events, storage writes, external calls,
reverts) a piece of code shows. Regex/brace based, not a full parser: limits are listed in docs/evaluation.md."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from ..corpus import strip_comments
from ..lift.abi import parse_header
from ..lift.functions import effects as effects_in_tac

_FENCE = re.compile(r"```[a-zA-Z]*\n?|```")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_LOCATIONS = {"memory", "calldata", "storage"}


class ParseFailure(ValueError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def strip_fences(code: str) -> str:
    """Models sometimes wrap code in markdown fences; the fences are not Solidity."""
    return _FENCE.sub("", code or "")


def _string_end(code: str, i: int) -> int:
    """Index just past the string literal opening at code[i] (escapes skipped; unterminated → past the end)."""
    quote, j, n = code[i], i + 1, len(code)
    while j < n and code[j] != quote:
        j += 2 if code[j] == "\\" else 1
    return j + 1


def match_close(code: str, open_pos: int, open_ch: str = "{", close_ch: str = "}") -> int:
    """Index of the bracket closing code[open_pos]; -1 if unbalanced. Skips string literals."""
    depth, i, n = 0, open_pos, len(code)
    while i < n:
        c = code[i]
        if c in "\"'":
            i = _string_end(code, i)
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


@dataclass
class FunctionText:
    kind: str                    # function | fallback | receive | constructor | modifier
    name: str
    params: list[tuple[str, str]]  # (type as written without location, name or "")
    returns: list[tuple[str, str]]
    attributes: str              # visibility, mutability, modifiers, override... as written
    header: str
    body: str                    # between the outer braces ("" when declared without body)
    text: str                    # the whole function


# sevm names unresolved functions by their selector (`function 5580f72a(...)`): accepted as a name so that its
# output parses the same way whatever the selector's first digit
_HEAD = re.compile(r"\b(function|fallback|receive|constructor)\b\s*([A-Za-z_$][\w$]*|[0-9a-f]{8}(?=\s*\())?\s*\(")


def split_top(s: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _param(p: str) -> tuple[str, str]:
    toks = [t for t in p.split() if t not in _LOCATIONS and t != "indexed"]
    if toks[:2] == ["address", "payable"]:
        toks = ["address"] + toks[2:]
    if len(toks) >= 2 and _IDENT.fullmatch(toks[-1]) and not toks[-1].startswith("mapping"):
        return "".join(toks[:-1]), toks[-1]
    return "".join(toks), ""


def find_function(code: str, name: str | None = None) -> FunctionText:
    """The first function in code (or the first named `name`), with header fields and body."""
    src = strip_comments(strip_fences(code))
    if not src.strip():
        raise ParseFailure("empty")
    for m in _HEAD.finditer(src):
        kind, fname = m.group(1), m.group(2) or ""
        if kind == "function" and not fname:
            prev = src[:m.start()].rstrip()[-1:]
            if prev in ("(", ",") or not src[m.end():].lstrip().startswith(")") and prev not in ("", ";", "{", "}"):
                continue  # a function type in a parameter list
            kind = "fallback"  # pre-0.6 fallback: `function() external { ... }`
        if kind != "function":
            fname = kind
        if name and fname != name:
            continue
        p_open = m.end() - 1
        p_close = match_close(src, p_open, "(", ")")
        if p_close < 0:
            raise ParseFailure("unbalanced", f"parameter list of {fname}")
        params = [_param(p) for p in split_top(src[p_open + 1:p_close])]
        # attributes run until '{' (body) or ';' (no body)
        j = p_close + 1
        while j < len(src) and src[j] not in "{;":
            if src[j] == "(":
                k = match_close(src, j, "(", ")")
                if k < 0:
                    raise ParseFailure("unbalanced", f"header of {fname}")
                j = k
            j += 1
        attrs = src[p_close + 1:j]
        returns: list[tuple[str, str]] = []
        rm = re.search(r"\breturns\s*\(", attrs)
        if rm:
            r_open = p_close + 1 + rm.end() - 1
            r_close = match_close(src, r_open, "(", ")")
            returns = [_param(p) for p in split_top(src[r_open + 1:r_close])]
            attrs_wo = attrs[:rm.start()]
        else:
            attrs_wo = attrs
        if j >= len(src):
            raise ParseFailure("unbalanced", f"no body or ';' after the header of {fname}")
        if src[j] == ";":
            return FunctionText(kind, fname, params, returns, " ".join(attrs_wo.split()), src[m.start():j], "",
                                src[m.start():j + 1])
        b_close = match_close(src, j)
        if b_close < 0:
            raise ParseFailure("unbalanced", f"body of {fname}")
        return FunctionText(kind, fname, params, returns, " ".join(attrs_wo.split()), src[m.start():j],
                            src[j + 1:b_close], src[m.start():b_close + 1])
    getter = _find_getter(src, name)
    if getter is not None:
        return getter
    raise ParseFailure("no_function", "no `function`, `fallback`, `receive` or `constructor` header found, and no "
                                      "public state variable (getter)")


_GETTER = re.compile(r"(?:^|[;{}]\s*)((?:mapping\s*\(.*?\)|[A-Za-z_$][\w$.]*)(?:\s*\[\d*\])*)\s+public\s+"
                     r"(?:(?:constant|immutable|override)\s+)*([A-Za-z_$][\w$]*)\s*(?:=[^;]*)?;", re.S)


def _getter_params(t: str) -> list[tuple[str, str]]:
    """Parameters of the getter solc generates: one per mapping key, one uint256 per array dimension."""
    t = t.strip()
    m = re.match(r"mapping\s*\(", t)
    if m:
        close = match_close(t, m.end() - 1, "(", ")")
        inner = t[m.end():close]
        key, _, val = inner.partition("=>")
        return [(key.strip().split()[0], "")] + _getter_params(val)
    dims = re.findall(r"\[\d*\]", t)
    return [("uint256", "")] * len(dims)


def _find_getter(src: str, name: str | None) -> FunctionText | None:
    for m in _GETTER.finditer(src):
        if name and m.group(2) != name:
            continue
        text = m.group(0).lstrip(";{} \t\n")
        return FunctionText("getter", m.group(2), _getter_params(m.group(1)), [], "public", text, "", text)
    return None


def getter_function(fn: FunctionText, name: str, structs: Iterable[str] = ()) -> str | None:
    """The function solc generates for a public state variable `fn` (a getter), named `name`: one parameter per
    mapping key and array dimension (an array's bounds checked first: the generated getter reverts past its end),
    returning the element; a constant, or an immutable with an initializer, returns its initializer (its value is
    not storage: read as a variable, a wrong constant would take the original's state). None for a getter of a
    struct (its ABI is the struct's members); `structs` names the struct types in scope."""
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
    structs = set(structs)
    if t in structs or t.split(".")[-1] in structs:
        return None
    loc = " memory" if t in ("string", "bytes") or t.endswith("]") else ""
    value = re.search(r"\bpublic\b[^=;]*\b(?:constant|immutable)\b[^=;]*=\s*(.*?)\s*;\s*$", fn.text, re.S)
    if value and not args:
        return f"function {name}() external view returns ({t}{loc}) {{ return {value.group(1)}; }}"
    checks = "".join(f"require({k} < {fn.name}{''.join(f'[{x}]' for x in idx[:j])}.length); "
                     for j, (k, arr) in enumerate(zip(idx, is_array)) if arr)
    access = fn.name + "".join(f"[{k}]" for k in idx)
    return f"function {name}({', '.join(args)}) external view returns ({t}{loc}) {{ {checks}return {access}; }}"


# ---------------------------------------------------------------- declarations of a contract

@dataclass
class Declarations:
    """Contract-level declarations other than functions, for the compile stub and for name resolution."""
    text: str = ""                                   # Solidity to paste into the stub contract
    state_vars: dict[str, str] = field(default_factory=dict)  # name -> type as written
    structs: dict[str, list[str]] = field(default_factory=dict)  # name -> member types
    enums: set[str] = field(default_factory=set)
    value_types: dict[str, str] = field(default_factory=dict)  # user-defined value type -> underlying


_KEEP_KEYWORDS = ("event", "error", "struct", "enum", "using", "type", "mapping")
_SKIP_KEYWORDS = ("function", "constructor", "fallback", "receive", "modifier")


def contract_body(source: str, contract: str | None) -> str:
    """Body of `contract|library|abstract contract <name> ... { }` in source ('' if not found)."""
    src = strip_comments(source or "")
    for m in re.finditer(r"\b(?:contract|library|interface)\s+([A-Za-z_$][\w$]*)[^{;]*\{", src):
        if contract and m.group(1) != contract:
            continue
        end = match_close(src, m.end() - 1)
        if end > 0:
            return src[m.end():end]
    return ""


def parse_declarations(text: str) -> Declarations:
    """Top-level items of a contract body (or a loose declarations string): keeps state variables, events,
    errors, structs, enums, using-for and user value types; drops functions, constructors and modifiers."""
    src = strip_comments(text or "")
    keep: list[str] = []
    d = Declarations()
    i, n = 0, len(src)
    while i < n:
        while i < n and src[i] in " \t\r\n;":
            i += 1
        if i >= n:
            break
        m = re.match(r"[A-Za-z_$][\w$]*", src[i:])
        word = m.group(0) if m else ""
        # an item ends at ';' at depth 0, or at the '}' closing its first top-level '{'
        j, depth = i, 0
        while j < n:
            c = src[j]
            if c in "\"'":
                j = _string_end(src, j)
                continue
            if c in "({[":
                depth += 1
            elif c in ")}]":
                depth -= 1
                if depth == 0 and c == "}" and word in ("struct", "enum", *_SKIP_KEYWORDS):
                    j += 1
                    break
            elif c == ";" and depth == 0:
                j += 1
                break
            j += 1
        item = src[i:j].strip()
        i = j
        if not item or word in _SKIP_KEYWORDS or word in ("pragma", "import"):
            continue
        keep.append(item)
        if word == "struct":
            sm = re.match(r"struct\s+(\w+)\s*\{(.*)\}", item, re.S)
            if sm:
                d.structs[sm.group(1)] = [_param(x)[0] for x in sm.group(2).split(";") if x.strip()]
        elif word == "enum":
            em = re.match(r"enum\s+(\w+)", item)
            if em:
                d.enums.add(em.group(1))
        elif word == "type":
            tm = re.match(r"type\s+(\w+)\s+is\s+(\w+)", item)
            if tm:
                d.value_types[tm.group(1)] = tm.group(2)
        elif word not in ("event", "error", "using"):
            vm = re.match(r"(.+?)\s+(?:(?:public|private|internal|constant|immutable|override|transient)\s+)*"
                          r"([A-Za-z_$][\w$]*)\s*(?:=.*)?;$", item, re.S)
            if vm:
                d.state_vars[vm.group(2)] = vm.group(1).strip()
    d.text = "\n    ".join(keep)
    return d


# ---------------------------------------------------------------- canonical signature and selector

_ELEMENTARY = re.compile(r"(u?int(\d+)?|bytes(\d+)?|address|bool|string|u?fixed(\d+x\d+)?|byte|function)")


def canonical_type(t: str, decl: Declarations | None = None) -> str:
    """ABI canonical form of a Solidity parameter type (as written, locations already removed).
    uint→uint256, int→int256, byte→bytes1, fixed→fixed128x18; structs → tuples of their members (when declared);
    enums → uint8; user value types → their underlying type; any other named type (contract, interface) → address."""
    decl = decl or Declarations()
    t = t.replace(" ", "")
    m = re.fullmatch(r"([A-Za-z_$][\w$.]*)((?:\[\d*\])*)", t)
    if not m:
        raise ParseFailure("bad_type", t)
    base, arrays = m.group(1), m.group(2)
    if _ELEMENTARY.fullmatch(base):
        base = {"uint": "uint256", "int": "int256", "byte": "bytes1", "fixed": "fixed128x18",
                "ufixed": "ufixed128x18", "function": "function"}.get(base, base)
        if base == "function":
            base = "bytes24"
        return base + arrays
    short = base.split(".")[-1]
    if short in decl.structs:
        return "(" + ",".join(canonical_type(x, decl) for x in decl.structs[short]) + ")" + arrays
    if short in decl.enums:
        return "uint8" + arrays
    if short in decl.value_types:
        return canonical_type(decl.value_types[short], decl) + arrays
    return "address" + arrays


def canonical_signature(fn: FunctionText, decl: Declarations | None = None) -> str:
    return f"{fn.name}({','.join(canonical_type(t, decl) for t, _ in fn.params)})"


# ---------------------------------------------------------------- effects shown by code

EFFECTS = ("event", "storage_write", "external_call", "revert")

def tac_effects(tac: str) -> dict[str, int]:
    """Counts of the events, storage writes, external calls and reverts a TAC example shows, at any level: its lines
    (log0-4; sstore and level 3's `storagestring(s) = p`; call, staticcall, delegatecall, callcode; revert, panic and
    custom errors) and the values each callee's effect summary lists (lift.functions.effects)."""
    found = effects_in_tac(tac or "")
    return {"event": len(found["logs"]), "storage_write": len(found["writes"]),
            "external_call": sum(not _ICALL.fullmatch(v) for v in found["calls"]),
            "revert": sum(v not in ("invalid", "selfdestruct") for v in found["halts"])}


_ICALL = re.compile(r"f\d+")   # an internal function among a summary's calls


# ---------------------------------------------------------------- arguments read

_TAC_ARG = re.compile(r"\barg(\d+)\b")


def tac_arguments(tac: str) -> frozenset[int] | None:
    """The indices of the arguments a TAC example's own function reads (its unit; callee units have arguments of
    their own), where its header names them (levels 2-3: `function 0x…(arg0: address, arg1: uint256)`) or takes
    none. None where the header lists types only (level 1, whose body reads calldata by offset)."""
    own = (tac or "").split("\n\nfunction ", 1)[0]
    head, body = parse_header(own), own.partition("\n")[2]
    if head is None or not head.named:
        return None
    return frozenset(int(k) for k in _TAC_ARG.findall(body))


def code_arguments(fn: FunctionText) -> frozenset[int]:
    """The indices of the parameters a function's code uses (in its body or its modifiers' arguments); a public
    state variable's getter uses every key, as the getter solc generates does."""
    if fn.kind == "getter":
        return frozenset(range(len(fn.params)))
    code = f"{fn.attributes}\n{fn.body}"
    return frozenset(i for i, (_, name) in enumerate(fn.params)
                     if name and re.search(rf"(?<![\w$.]){re.escape(name)}(?![\w$])", code))


def mismatched_arguments(fn: FunctionText | None, read: frozenset[int] | None) -> int:
    """How many arguments exactly one of `read` (tac_arguments) and the function's code reads (0 where the TAC does
    not say which: level 1). No function (fn None) counts every argument the TAC reads, plus one."""
    if read is None:
        return 0
    return len(read) + 1 if fn is None else len(read ^ code_arguments(fn))


def argument_mismatch(text: str, tac: str) -> int:
    """mismatched_arguments for generated text and a TAC example."""
    read = tac_arguments(tac)
    if read is None:
        return 0
    try:
        fn = find_function(text)
    except ParseFailure:
        fn = None
    return mismatched_arguments(fn, read)


_EXT_WRAPPERS = ("safeTransfer", "safeTransferFrom", "safeApprove", "safeIncreaseAllowance",
                 "safeDecreaseAllowance", "forceApprove", "functionCall", "functionCallWithValue",
                 "functionStaticCall", "functionDelegateCall", "sendValue", "safeTransferETH")
_NOT_CONTRACTS = {"abi", "msg", "block", "tx", "this", "super", "type", "string", "bytes", "address", "payable"}
_ASSIGN = re.compile(r"(?<![=!<>+\-*/%|&^])(?:\+=|-=|\*=|/=|%=|\|=|&=|\^=|<<=|>>=|=(?![=>]))")
_DECL = re.compile(r"\b([A-Za-z_$][\w$.]*(?:\s*\[[^\]]*\])*)\s+(?:(memory|storage|calldata)\s+)?"
                   r"([A-Za-z_$][\w$]*)\s*(?=[=;,)])")
_NOT_TYPES = {"return", "emit", "delete", "else", "new", "revert", "require", "assert", "if", "for", "while",
              "unchecked", "do", "is", "as", "using", "import", "throw", "case"}


def _lvalue_base(code: str, pos: int) -> str | None:
    """Leftmost identifier of the assignable expression that ends just before code[pos]."""
    j = pos - 1
    base = None
    while j >= 0:
        while j >= 0 and code[j].isspace():
            j -= 1
        if j >= 0 and code[j] == "]":
            depth = 0
            while j >= 0:
                if code[j] == "]":
                    depth += 1
                elif code[j] == "[":
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            j -= 1
            continue
        k = j
        while k >= 0 and (code[k].isalnum() or code[k] in "_$"):
            k -= 1
        if k == j:
            return base
        base = code[k + 1:j + 1]
        j = k
        while j >= 0 and code[j].isspace():
            j -= 1
        if j >= 0 and code[j] == ".":
            j -= 1
            continue
        return base
    return base


def code_effects(code: str, decl: Declarations | None = None) -> dict[str, int]:
    """Counts of events emitted, storage writes, external calls and reverts that Solidity (or the pseudo-Solidity of
    sevm/panoramix) shows. Storage writes: assignments, ++/-- and delete whose target is not a parameter or a local
    declared in the code (a name declared `storage` counts as storage). Heuristic; see docs/evaluation.md."""
    decl = decl or Declarations()
    src = strip_comments(strip_fences(code or ""))
    locals_: set[str] = set()
    storage_ptrs: set[str] = set()
    try:
        fn = find_function(src)
        locals_.update(n for _, n in fn.params + fn.returns if n)
    except ParseFailure:
        pass
    locals_.update(re.findall(r"\b(_param\d+|_arg\d+|local\d+)\b", src))  # decompiler-generated names
    for m in _DECL.finditer(src):
        if m.group(1) in _NOT_TYPES or m.group(1) in ("function", "event", "modifier", "contract"):
            continue
        (storage_ptrs if m.group(2) == "storage" else locals_).add(m.group(3))
    state = set(decl.state_vars)
    nonstate = {"memory", "mem", "msg", "tx", "block", "abi"}

    # panoramix pseudo-code assigns locals without declaring them; its storage is `stor*` or `unknown<selector>`
    panoramix = bool(re.match(r"\s*def\s", src))

    def is_storage(base: str | None) -> bool:
        if not base or base in nonstate:
            return False
        if base in storage_ptrs or base in state:
            return True
        if panoramix:
            return bool(re.fullmatch(r"stor\w*|unknown[0-9a-f]{8}\w*", base))
        return base not in locals_

    writes = 0
    for m in _ASSIGN.finditer(src):
        base = _lvalue_base(src, m.start())
        # `Type name = ...` is a declaration, not a write
        before = src[:m.start()].rstrip()
        dm = re.search(r"([A-Za-z_$][\w$.\]\[]*)\s+(?:(?:memory|storage|calldata)\s+)?([A-Za-z_$][\w$]*)$", before)
        if dm and dm.group(1).split("[")[0] not in _NOT_TYPES and dm.group(2) == base:
            continue
        if is_storage(base):
            writes += 1
    for m in re.finditer(r"(\+\+|--)\s*([A-Za-z_$][\w$]*)|([A-Za-z_$][\w$]*)\s*(?:\[[^\]]*\]|\.\w+)*\s*(\+\+|--)", src):
        base = m.group(2) or m.group(3)
        if is_storage(base):
            writes += 1
    for m in re.finditer(r"\bdelete\s+([A-Za-z_$][\w$]*)", src):
        if is_storage(m.group(1)):
            writes += 1

    contract_vars = {n for n, t in decl.state_vars.items()
                     if re.fullmatch(r"[A-Z][\w$]*", t.split()[0]) and t.split()[0] not in decl.structs
                     and t.split()[0] not in decl.enums}
    calls = len(re.findall(r"\.\s*(?:call|delegatecall|staticcall|callcode|send|transfer)\s*[({]", src))
    calls += len(re.findall(r"\b(?:" + "|".join(_EXT_WRAPPERS) + r")\s*\(", src))
    for m in re.finditer(r"\b([A-Z][\w$]*)\s*\(([^()]|\([^()]*\))*\)\s*\.\s*([A-Za-z_$][\w$]*)\s*[({]", src):
        if m.group(3) not in ("call", "delegatecall", "staticcall", "callcode", "send", "transfer") \
                and m.group(3) not in _EXT_WRAPPERS:
            calls += 1
    for m in re.finditer(r"\b([A-Za-z_$][\w$]*)\s*\.\s*([A-Za-z_$][\w$]*)\s*\(", src):
        if m.group(1) in contract_vars and m.group(1) not in _NOT_CONTRACTS:
            calls += 1
    # decompiler pseudo-code: sevm `call(...)`, panoramix `call addr.0x12345678 with:`
    calls += len(re.findall(r"(?<![.\w])(?:call|staticcall|delegatecall|callcode)\b(?!\s*\{)", src))

    events = len(re.findall(r"\bemit\s+[A-Za-z_$]", src)) + len(re.findall(r"(?<![.\w])log\s*[(\s]", src))
    reverts = len(re.findall(r"\b(?:require|assert)\s*\(", src)) + len(re.findall(r"\brevert\b", src)) \
        + len(re.findall(r"\bthrow\b", src))
    return {"event": events, "storage_write": writes, "external_call": calls, "revert": reverts}
