"""Controls that show the behaviour metric means something (tests and tools/bench_behaviour.py run them):

- the reference itself must come out `equivalent` (checks the harness);
- the reference with its state variables, internal functions and parameters consistently renamed must come out
  `equivalent` (checks binding: a decompiler cannot know the original's names);
- mutants of the reference must come out `differs` (checks that the cases and comparison catch real changes).

Renaming and mutation work on the reference text with the same token rules as the harness's binding; each mutant
says what it changed."""
from __future__ import annotations

import re
from typing import Iterable

from ..corpus import strip_comments
from .solidity import ParseFailure, find_function

_WORD = r"(?<![.\w$]){}(?![\w$])"
KEYWORDS = {"require", "assert", "revert", "emit", "return", "returns", "if", "else", "for", "while", "do", "new",
            "delete", "true", "false", "this", "msg", "block", "tx", "abi", "type", "super", "address", "payable",
            "memory", "storage", "calldata", "public", "external", "internal", "private", "view", "pure",
            "override", "virtual", "function", "mapping", "uint256", "bool", "string", "bytes", "unchecked"}


_STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')


# a named argument's key (`Config({minimumRequestConfirmations: x, ...})`, `f({to: a})`): a member name of the
# struct or a parameter name of the callee, not the identifier of the same spelling in scope
_NAMED_KEY = r"(?<=[{{,])(\s*){}(?=\s*:(?!=))"


def _sub_word(text: str, a: str, b: str) -> str:
    """Replace the identifier `a` by `b` outside string literals, member accesses and named-argument keys."""
    word, key = _WORD.format(re.escape(a)), _NAMED_KEY.format(re.escape(a))

    def sub(part: str) -> str:
        keys = {m.start(0) + len(m.group(1)) for m in re.finditer(key, part)}
        return re.sub(word, lambda m: m.group(0) if m.start() in keys else b, part)

    out, last = [], 0
    for m in _STRING.finditer(text):
        out.append(sub(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(sub(text[last:]))
    return "".join(out)


def rename_consistently(reference: str, state_vars: list[str], functions: list[str]) -> tuple[str, dict[str, str]]:
    """The reference with every state variable, internal function and parameter it names given a new name
    (v0, f0, p0, ...). Returns (text, {old: new}). The function's own name stays (the harness renames it)."""
    code = strip_comments(reference)
    try:
        fn = find_function(code)
        own, params = fn.name, [n for _, n in fn.params + fn.returns if n]
    except ParseFailure:
        own, params = "", []
    words = set(re.findall(r"(?<![.\w$])[A-Za-z_$][\w$]*", code))
    renames: dict[str, str] = {}
    for k, v in enumerate(x for x in state_vars if x in words and x not in KEYWORDS):
        renames.setdefault(v, f"v{k}_renamed")
    for k, f in enumerate(x for x in functions if x in words and x != own and x not in KEYWORDS
                          and re.search(_WORD.format(re.escape(x)) + r"\s*\(", code)):
        renames.setdefault(f, f"f{k}_renamed")
    for k, p in enumerate(params):
        renames.setdefault(p, f"p{k}_renamed")
    if fn_is_getter(code) and own in renames:
        renames.pop(own)
    out = code
    for a, b in renames.items():
        out = _sub_word(out, a, b)
    return out, renames


def fn_is_getter(code: str) -> bool:
    return not re.search(r"\bfunction\b", code)


_CMP = [("<=", ">"), (">=", "<"), ("==", "!="), ("!=", "=="), ("<", ">="), (">", "<=")]


def invisible_variables(private_vars: Iterable[tuple[str, str]], contract: str) -> set[str]:
    """The private state variables (Original.private_vars: ("file:Contract", name)) that code of `contract` cannot
    name: those its bases declare."""
    return {name for where, name in private_vars if where.rsplit(":", 1)[-1] != contract}


def mutants(reference: str, layout: list[dict], hidden: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(kind, mutated text) for each mutation that applies, first site each: swapped operands of a subtraction
    or division, flipped comparison, dropped require, changed numeric constant, removed event, write to another
    state variable of the same type. layout: storageLayout entries (label, type); hidden: the labels the function
    cannot name (a base's private variables), never written instead: solc would not know the name, and binding
    would give the write back to the variable the original writes (four such mutants passed as `equivalent`)."""
    code = strip_comments(reference)
    try:
        fn = find_function(code)
    except ParseFailure:
        return []
    if fn.kind != "function" or not fn.body.strip():
        return []
    head, body = code[:code.index(fn.body)], fn.body
    tail = code[code.index(fn.body) + len(fn.body):]
    out: list[tuple[str, str]] = []

    def add(kind: str, new_body: str):
        if new_body != body:
            out.append((kind, head + new_body + tail))

    operand = r"[\w$.]+(?:\[[^\]\[]*\])?"
    m = re.search(rf"(?<![\w$.\])])({operand})\s*([-/])\s*({operand})(?![\w$.\[(])", body)
    if m and m.group(1) != m.group(3):
        add("swap_operands", body[:m.start()] + f"{m.group(3)} {m.group(2)} {m.group(1)}" + body[m.end():])
    for a, b in _CMP:
        mm = re.search(rf"(?<![<>=!]){re.escape(a)}(?![<>=])", body)
        if mm and not body[max(0, mm.start() - 1):mm.start()] in ("=",) and "=>" not in body[mm.start():mm.end() + 1]:
            add("flip_comparison", body[:mm.start()] + b + body[mm.end():])
            break
    mm = re.search(r"\brequire\s*\(", body)
    if mm:
        end = body.find(";", mm.end())
        add("drop_require", body[:mm.start()] + body[end + 1:])
    mm = re.search(r"(?<![\w$.])(\d+)(?![\w$.x])", body)
    if mm:
        add("change_constant", body[:mm.start()] + str(int(mm.group(1)) + 1) + body[mm.end():])
    mm = re.search(r"\bemit\s+[\w$]+\s*\(", body)
    if mm:
        end = body.find(";", mm.end())
        add("remove_event", body[:mm.start()] + body[end + 1:])
    for var in layout:
        v = var["label"]
        mm = re.search(_WORD.format(re.escape(v)) + r"(\s*(\[[^\]]*\])*\s*)(=|\+=|-=)(?!=)", body)
        if not mm:
            continue
        others = [o["label"] for o in layout if o["label"] != v and o["type"] == var["type"]
                  and o["label"] not in hidden and not re.search(_WORD.format(re.escape(o["label"])), body)]
        if others:
            add("write_other_variable", body[:mm.start()] + others[0] + body[mm.start() + len(v):])
            break
    return out
