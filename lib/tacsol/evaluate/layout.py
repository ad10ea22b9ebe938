"""Storage layout from the AST, for compilers that do not output `storageLayout` (solc before 0.5.13).

The behaviour harness binds a generated name to the state variable at a slot the original touches and seeds slots
by what lives there (bools, strings, arrays), both read from the layout. Without one, no state variable of a
0.4.x or early 0.5.x unit can be bound, so every generated getter of such a unit was `untestable`.

solc's rules (Solidity docs, "Layout of State Variables in Storage"; libsolidity's StorageOffsets): the state
variables of the linearized bases, most base first, each in declaration order, constants and immutables skipped.
A value type takes the bytes it needs and shares a slot with what precedes it when it fits, from the low-order
end. Structs, arrays, mappings, strings and bytes take 32 "bytes", so they start a new slot and what follows them
does too. A static array of elements of at most 16 bytes packs them, `32 // size` per slot; larger elements take
whole slots each. Struct members follow the same rules from slot 0.

Entries and type ids are in storageLayout's own format (`t_mapping(t_address,t_uint256)`,
`t_struct(Role)45_storage`), so the harness reads one format; tests/test_behaviour.py checks them against solc's
own output where a compiler has both."""
from __future__ import annotations

import re
from typing import Any

_VALUE_SIZES = {"bool": 1, "address": 20, "address payable": 20}


def storage_layout(ast_sources: dict[str, dict], main: str, contract: str) -> dict[str, Any] | None:
    """{"storage": [{astId, contract, label, offset, slot, type}], "types": {id: {encoding, label, numberOfBytes,
    key/value/base/members}}} of `contract` in file `main`, or None when the AST does not hold it."""
    nodes: dict[int, dict] = {}
    where: dict[int, str] = {}
    for path, src in ast_sources.items():
        _index((src or {}).get("ast"), path, nodes, where)
    target = next((n for n in nodes.values() if n.get("nodeType") == "ContractDefinition"
                   and n.get("name") == contract and where.get(n["id"]) == main), None)
    if target is None:
        return None
    b = _Builder(nodes)
    variables = [v for cid in reversed(target.get("linearizedBaseContracts") or [target["id"]])
                 for v in (nodes.get(cid) or {}).get("nodes") or []
                 if v.get("nodeType") == "VariableDeclaration" and v.get("stateVariable")
                 and not v.get("constant") and v.get("mutability") not in ("constant", "immutable")]
    home = f"{main}:{contract}"
    storage = [{"astId": v["id"], "contract": home, "label": v.get("name") or "", "offset": offset, "slot": str(slot),
                "type": t} for v, t, (slot, offset) in b.place(variables)]
    return {"storage": storage, "types": b.types or None}


def _index(n: Any, path: str, nodes: dict[int, dict], where: dict[int, str]) -> None:
    if isinstance(n, dict):
        if n.get("nodeType") in ("ContractDefinition", "StructDefinition", "EnumDefinition",
                                 "UserDefinedValueTypeDefinition") and "id" in n:
            nodes[n["id"]] = n
            where[n["id"]] = path
        for v in n.values():
            if isinstance(v, (dict, list)):
                _index(v, path, nodes, where)
    elif isinstance(n, list):
        for v in n:
            _index(v, path, nodes, where)


class _Builder:
    """Type ids, their storageLayout entries and sizes, built from AST type names."""

    def __init__(self, nodes: dict[int, dict]):
        self.nodes = nodes
        self.types: dict[str, dict] = {}
        self.value_bytes: dict[str, int] = {}   # value types: bytes taken in a slot; others are absent (32, whole slots)
        self.slots: dict[str, int] = {}

    def place(self, variables: list[dict]) -> list[tuple[dict, str, tuple[int, int]]]:
        """(declaration, type id, (slot, byte offset)) of each variable, laid out from slot 0."""
        out, slot, offset = [], 0, 0
        for v in variables:
            t = self.type_of(v.get("typeName") or {}, v)
            size = self.value_bytes.get(t, 32)
            if offset + size > 32:
                slot, offset = slot + 1, 0
            out.append((v, t, (slot, offset)))
            if t in self.value_bytes:
                offset += size
            else:
                slot, offset = slot + self.slots[t], 0
        return out

    def _slots_used(self, placed: list[tuple[dict, str, tuple[int, int]]]) -> int:
        if not placed:
            return 1    # an empty struct still takes a slot (solc rejects them since 0.5)
        _, t, (slot, offset) = placed[-1]
        return slot + (1 if t in self.value_bytes else self.slots[t])

    def _add(self, t: str, entry: dict, *, value_bytes: int = 0, slots: int = 1) -> str:
        if t not in self.types:
            self.types[t] = {**entry, "numberOfBytes": str(value_bytes or 32 * slots)}
            if value_bytes:
                self.value_bytes[t] = value_bytes
            self.slots[t] = slots
        return t

    def type_of(self, tn: dict, decl: dict | None = None) -> str:
        kind = tn.get("nodeType")
        label = _label(tn, decl)
        if kind == "Mapping":
            k, v = self.type_of(tn.get("keyType") or {}), self.type_of(tn.get("valueType") or {})
            return self._add(f"t_mapping({k},{v})", {"encoding": "mapping", "key": k, "label": label, "value": v})
        if kind == "ArrayTypeName":
            base = self.type_of(tn.get("baseType") or {})
            m = re.search(r"\[(\d+)\]$", label)
            if not m:
                return self._add(f"t_array({base})dyn_storage", {"base": base, "encoding": "dynamic_array",
                                                                  "label": label})
            n = int(m.group(1))
            size = self.value_bytes.get(base, 32)
            slots = -(-n // (32 // size)) if size <= 16 else n * self.slots[base]
            return self._add(f"t_array({base}){n}_storage", {"base": base, "encoding": "inplace", "label": label},
                             slots=slots)
        if kind == "UserDefinedTypeName":
            ref = tn.get("referencedDeclaration")
            d = self.nodes.get(ref) or {}
            name = d.get("name") or label.split()[-1].rsplit(".", 1)[-1]
            if d.get("nodeType") == "StructDefinition":
                t = f"t_struct({name}){ref}_storage"
                if t not in self.types:
                    placed = self.place(d.get("members") or [])
                    members = [{"astId": m["id"], "contract": "", "label": m.get("name") or "", "offset": off,
                                "slot": str(s), "type": mt} for m, mt, (s, off) in placed]
                    self._add(t, {"encoding": "inplace", "label": label, "members": members},
                              slots=self._slots_used(placed))
                return t
            if d.get("nodeType") == "EnumDefinition":
                n = len(d.get("members") or [])
                return self._add(f"t_enum({name}){ref}", {"encoding": "inplace", "label": label},
                                 value_bytes=1 if n <= 256 else 2)
            if d.get("nodeType") == "UserDefinedValueTypeDefinition":
                under = self.type_of(d.get("underlyingType") or {})
                return self._add(f"t_userDefinedValueType({name}){ref}", {"encoding": "inplace", "label": label},
                                 value_bytes=self.value_bytes.get(under, 32))
            return self._add(f"t_contract({name}){ref}", {"encoding": "inplace", "label": label}, value_bytes=20)
        if kind == "FunctionTypeName":
            external = tn.get("visibility") == "external"
            t = ((tn.get("typeDescriptions") or {}).get("typeIdentifier") or "t_function").removesuffix("_ptr")
            return self._add(t, {"encoding": "inplace", "label": label}, value_bytes=24 if external else 8)
        return self._elementary(label)

    def _elementary(self, name: str) -> str:
        if name in ("string", "bytes"):
            return self._add(f"t_{name}_storage", {"encoding": "bytes", "label": name})
        t = "t_" + name.replace(" ", "_")
        size = _VALUE_SIZES.get(name)
        if size is None:
            m = re.fullmatch(r"(?:u?int|u?fixed)(\d+)(?:x\d+)?|bytes(\d+)", name)
            size = (int(m.group(1)) // 8 if m.group(1) else int(m.group(2))) if m else 32
        return self._add(t, {"encoding": "inplace", "label": name}, value_bytes=size)


def _label(tn: dict, decl: dict | None) -> str:
    """The type's name as storageLayout labels it (`mapping(address => uint256)`, `uint256[3]`, `struct S.T`)."""
    s = ((decl or tn).get("typeDescriptions") or {}).get("typeString") or tn.get("name") or ""
    s = re.sub(r"\s+(storage ref|storage pointer|storage)\b", "", s)
    return {"uint": "uint256", "int": "int256", "byte": "bytes1"}.get(s, s)
