"""What `lift` returns (LiftedContract of LiftedFunction) and raises (LiftError): the public interface of
docs/design.md."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


CALLEE_SEP = "\n\nfunction f"   # level 2: what starts an internal function's unit inside an example
SUMMARY_MARK = "  // summary of "   # level 2: ends the header of a callee's unit printed as its effect summary


class LiftError(ValueError):
    """Bytecode that cannot be lifted; `.reason` is a short machine key for rejects files."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class LiftedFunction:
    selector: str          # "0xa9059cbb", or "fallback" / "receive"
    tac: str
    blocks: int
    instructions: int
    ops: dict[str, int]
    status: str            # "ok" | "partial" | "timeout" | "unsupported"
    arguments: str
    mutability: str
    pcs: list[int] = field(default_factory=list, repr=False)   # offsets of every instruction in the covered blocks
    # provenance: per line of `tac` (tac.split("\n")), the offsets of the instructions it maps to, sorted
    # (docs/tac-format.md, Provenance); the blank line between a level-2 example's units maps to ()
    line_pcs: list[tuple[int, ...]] = field(default_factory=list, repr=False)

    def lines(self) -> list[tuple[str, tuple[int, ...]]]:
        """(text, pcs) of every line of `tac`; none for an empty unit (timeout, unsupported)."""
        return list(zip(self.tac.split("\n"), self.line_pcs)) if self.tac else []


@dataclass
class LiftedContract:
    functions: list[LiftedFunction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metadata_len: int = 0
    code_size: int = 0
    kind: str = "contract"   # "contract" | "library" (solc's PUSH20 address guard)
    # what the input held besides the lifted runtime: {"creation": byte ranges of constructor, runtime and
    # constructor arguments} when creation code was given, {"library_address": ...} for a library
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def function(self, selector: str) -> LiftedFunction:
        key = norm_selector(selector)
        for f in self.functions:
            if f.selector == key:
                return f
        raise KeyError(f"no function {selector!r} in lifted contract")

    def tac(self) -> str:
        """Every function's unit; at level 2 the internal functions' units its examples carry, each once, in full
        where any example carries it in full (a long example carries summaries: lift.functions.summarize)."""
        out: list[str] = []
        at: dict[str, int] = {}   # unit header (without a summary mark) -> its position in out
        for f in self.functions:
            own, *callees = f.tac.split(CALLEE_SEP)
            out.append(own)
            for unit in callees:
                head = unit.split("\n", 1)[0]
                key = head.split(SUMMARY_MARK)[0]
                if key not in at:
                    at[key] = len(out)
                    out.append(CALLEE_SEP.lstrip() + unit)
                elif SUMMARY_MARK not in head and SUMMARY_MARK in out[at[key]].split("\n", 1)[0]:
                    out[at[key]] = CALLEE_SEP.lstrip() + unit   # the full unit replaces a summary of it
        return "\n\n".join(out)


def norm_selector(s: str) -> str:
    s = s.strip().lower()
    if s in ("fallback", "receive"):
        return s
    s = s[2:] if s.startswith("0x") else s
    return "0x" + s.rjust(8, "0")
