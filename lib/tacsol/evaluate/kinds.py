"""What kind of function a reference is — getter, setter or other — so that results can be read per kind (issue 12:
getters and setters are what a small model gets right first; the rest is where decompilation is hard).

From the reference Solidity and the TAC, not from names:
- ``getter``: a public state variable (solc generates the getter), or a view/pure function whose body is one
  ``return <expression>;`` without calls;
- ``setter``: a state-changing function whose TAC writes storage, makes no external call and has no loop, and whose
  body is at most four statements (assignments, ``emit``, ``require``);
- ``other``: everything else.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..corpus import strip_comments
from .solidity import ParseFailure, find_function, tac_effects

KINDS = ("getter", "setter", "other")
_CALL = re.compile(r"[A-Za-z_$][\w$.]*\s*\(")
_CASTS = {"address", "uint256", "uint", "int", "bool", "bytes32", "payable", "uint8", "uint128", "uint64", "uint160",
          "string", "bytes"}


def _statements(body: str) -> list[str]:
    return [s.strip() for s in re.split(r";|\{|\}", body) if s.strip()]


def _calls(expr: str) -> list[str]:
    return [m.group(0).rstrip("( ").split(".")[-1] for m in _CALL.finditer(expr)
            if m.group(0).rstrip("( ") not in _CASTS]


def function_kind(reference: str, *, storage_write: bool, external_call: bool, mutability: str = "") -> str:
    """getter | setter | other for a reference function; storage_write / external_call: what its TAC performs."""
    try:
        fn = find_function(reference or "")
    except ParseFailure:
        return "other"
    if fn.kind == "getter":
        return "getter"
    stmts = _statements(strip_comments(fn.body))
    if re.search(r"\b(view|pure)\b", f"{mutability} {fn.attributes}"):
        if len(stmts) == 1 and stmts[0].startswith("return ") and not _calls(stmts[0][len("return "):]):
            return "getter"
        return "other"
    simple = all(s.startswith(("emit ", "require(", "require (")) or re.search(r"(?<![=!<>])=(?!=)|\+\+|--", s)
                 for s in stmts)
    if storage_write and not external_call and 0 < len(stmts) <= 4 and simple:
        return "setter"
    return "other"


def record_kind(record: Mapping[str, Any]) -> str:
    """function_kind of a dataset record (its TAC gives the effects)."""
    eff = tac_effects(record.get("tac") or "")
    return function_kind(record.get("solidity") or "", storage_write=eff["storage_write"] > 0,
                         external_call=eff["external_call"] > 0, mutability=record.get("mutability") or "")


def table_kinds(df) -> list[str]:
    """function_kind of every row of an evaluation table (functions.parquet: reference + tac_* effect columns)."""
    return [function_kind(r["reference"], storage_write=r["tac_storage_write"] > 0,
                          external_call=r["tac_external_call"] > 0) for _, r in df.iterrows()]
