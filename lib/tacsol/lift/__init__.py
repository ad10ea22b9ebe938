"""EVM runtime bytecode → three-address code (TAC) per public function, fallback and receive.

evmole supplies selectors, argument types, mutability, the metadata boundary and the control-flow graph (with
dynamic jump targets and the call path that produced each). Everything else is ours, as passes over a small IR
(ir.py), in this order:
  code.py       input checks (hex, proxies, creation code, truncated PUSH)
  cfg.py        the program: blocks, successors, path-rule block sets, dispatcher stack constants
  block.py      stack → SSA per basic block (named temporaries, Yellow-Paper operand order)
  dispatch.py   dispatcher / receive / fallback regions
  render.py     one function, pass by pass:
    instances.py  context-sensitive block instances (internal returns resolved by tracking the stack, never by the
                  nearest PUSH)
    values.py     block parameters, SSA values
    simplify.py   constant folding, dead code
    layout.py     jump threading, merging, shared halting blocks, labels
    emit.py       the text of docs/tac-format.md
  contract.py   the whole contract (`lift`); cli.py `tacsol lift`."""
import hashlib
from pathlib import Path

from .cli import build_parser, main
from .contract import lift
from .functions import CALLEE_BUDGET_CHARS, LEGACY_CALLEE_BUDGET_CHARS
from .result import LiftedContract, LiftedFunction, LiftError


def source_sha() -> str:
    """A digest of every module of this package as it is on disk now (16 hex digits)."""
    text = "".join(p.read_text() for p in sorted(Path(__file__).parent.glob("*.py")))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# The code this process runs: every module above is imported by now (none is imported later), so a cache keyed on
# the lifter keys on this, and refuses when the disk has changed since (pairs._lifter).
IMPORTED_SOURCE_SHA = source_sha()

__all__ = ["lift", "source_sha", "IMPORTED_SOURCE_SHA", "CALLEE_BUDGET_CHARS", "LEGACY_CALLEE_BUDGET_CHARS", "LiftError", "LiftedContract", "LiftedFunction", "build_parser", "main"]
