"""Provenance (issue 16): every printed TAC line maps to the bytecode offsets (pcs) of the instructions it came from
(docs/tac-format.md, Provenance). Checked on every lifter fixture and the shipped sample's test runtimes, at both
TAC levels: no line is unmapped, every pc is an instruction's (never PUSH data), and a line that names an opcode
maps to an instruction of that opcode."""
from __future__ import annotations

import gzip
import json
import random
import re
import shutil
from pathlib import Path

import pytest

from tacsol import corpus, pairs, paths
from tacsol.evm import OPCODES, disassemble, link_placeholders
from tacsol.cli import main
from tacsol.lift import LiftError, lift
from tacsol.lift.code import parse_code

FIXDIR = Path(__file__).parent / "fixtures" / "lift"
LEVELS = (1, 2)
# every runtime of the lifter fixtures, and the creation inputs of inputs.json (lifted through their runtime)
FIXTURES = {f"{p.stem}:{c['id']}{':creation' if key == 'creation' else ''}": c[key]
            for p in sorted(FIXDIR.glob("*.json")) for c in json.loads(p.read_text())
            for key in ("runtime", "creation") if c.get(key)}

INFIX = {"+": "ADD", "-": "SUB", "*": "MUL", "/": "DIV", "%": "MOD", "**": "EXP", "<": "LT", ">": "GT",
         "==": "EQ", "&": "AND", "|": "OR", "^": "XOR", "<<": "SHL", ">>": "SHR"}
# what a name the TAC prints stands for (docs/tac-format.md): at least one of these opcodes must be in its pcs
NAMED = {"keccak256": {"SHA3"}, "mapping": {"SHA3"}, "array": {"SHA3"}, "panic": {"REVERT"}, "revert": {"REVERT"},
         "return": {"RETURN"}, "icall": {"JUMP"}, "ret": {"JUMP"}, "copy": {"MSTORE"}, "copypad": {"MSTORE"}, "zeropad": {"MSTORE"}, "memstring": {"MLOAD"},
         "bool": {"ISZERO"}, "iszero": {"ISZERO", "EQ"},   # level 2 prints x == 0 as iszero(x)
         "field": {"AND"}, "gas": {"GAS"},
         # a callee's effect summary (lift.functions.summarize): each line maps to the lines it stands for
         "reads": {"SLOAD"}, "writes": {"SSTORE"}, "calls": {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE", "JUMP"},
         "creates": {"CREATE", "CREATE2"}, "logs": {f"LOG{i}" for i in range(5)},
         "halts": {"REVERT", "INVALID", "SELFDESTRUCT"}, "returns": {"JUMP"}}
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[()\[\]]|[^\s()\[\],"]+')


def instructions(raw: bytes) -> dict[int, str]:
    """pc -> mnemonic of every instruction (undefined bytes: INVALID)."""
    return {i.pc: OPCODES[i.op].name if i.op in OPCODES else "INVALID" for i in disassemble(raw)}


def runtime_of(code, res) -> bytes:
    """The bytes the pcs index: the input, or the runtime cut out of creation code."""
    raw = parse_code(code)
    if "creation" in res.details:
        lo, hi = res.details["creation"]["runtime"]
        raw = raw[lo:hi]
    return raw


def named_op(expr: str) -> str | None:
    """The operation an expression names at its top level: the last infix operator outside brackets, ~, a call's
    name, or a field x[o:b]."""
    depth, infix = 0, None
    for t in _TOKEN.findall(expr):
        if t in "([":
            depth += 1
        elif t in ")]":
            depth -= 1
        elif depth == 0 and t in INFIX:
            infix = t
    if infix is not None:
        return INFIX[infix]
    if expr.startswith("~"):
        return "NOT"
    m = re.match(r"([a-z_][a-z0-9_]*)(?=[ (]|$)", expr)
    if m and not re.fullmatch(r"v\d+|arg\d+", m.group(1)):
        return m.group(1)
    return "field" if expr.endswith("]") else None


def wanted(name: str | None) -> set[str] | None:
    """The opcodes a line naming `name` must map to (None: nothing to check)."""
    if name is None or name.startswith("invalid"):   # INVALID, or an undefined byte (invalid_0xNN)
        return None
    if name.isupper():
        return {name}
    if name in NAMED:
        return NAMED[name]
    if re.fullmatch(r"log\d", name):
        return {name.upper()}
    if re.fullmatch(r"u?int\d+|bytes\d+", name):
        return {"AND", "SIGNEXTEND"}
    return {name.upper()}   # sstore, sload, mstore, calldataload, call, staticcall, stop, ...


def line_wants(text: str) -> set[str] | None:
    """The opcodes a line must map to one of (None: it names none; headers: test_headers_...)."""
    t = text.strip()
    if t.startswith("function ") or t.endswith(":"):
        return None
    if t.startswith("if "):
        return {"JUMPI"}
    if t.startswith("goto "):
        return {"JUMP", "JUMPI", "JUMPDEST"} if t != "goto ?" else None
    m = re.match(r"(v\d+(, v\d+)*) = (.*)", t)
    return wanted(named_op(m.group(3) if m else t))


def check_provenance(res, raw: bytes, where: str) -> int:
    """Assert the provenance rules on every function of a lifted contract; the number of lines checked."""
    ops = instructions(raw)
    n = 0
    for f in res.functions:
        lines = f.tac.split("\n") if f.tac else []
        assert len(f.line_pcs) == len(lines), (where, f.selector)
        for k, (text, pcs) in enumerate(f.lines()):
            at = f"{where} {f.selector} line {k}: {text!r} -> {list(pcs)}"
            if not text:   # only the blank line between a level-2 example's units, and it maps to nothing
                assert not pcs and lines[k + 1].startswith("function f"), at
                continue
            assert pcs, "unmapped line: " + at
            assert list(pcs) == sorted(set(pcs)), at
            assert all(p in ops for p in pcs), "pc not an instruction: " + at
            want = line_wants(text)
            assert want is None or want & {ops[p] for p in pcs}, f"no {sorted(want)} among the pcs: {at}"
            n += 1
    return n


def test_the_check_reads_what_a_line_names_and_fails_on_a_wrong_map():
    assert [named_op(e) for e in ("sstore(v4, v5 - arg1)", "(v1 + 0x20) - v2", "mapping(0x2)[caller]", "v2[8:160]",
                                  'revert("a - b")', "~0x1f", "0x4e487b71 << 0xe0", "return (v4 + v2)",
                                  "log3(0xe6, caller, v1; arg1)", "sload(v1)[0:8]", "stop")] == \
        ["sstore", "SUB", "mapping", "field", "revert", "NOT", "SHL", "return", "log3", "sload", "stop"]
    c = json.loads((FIXDIR / "contracts.json").read_text())[0]
    res = lift(c["runtime"])
    check_provenance(res, bytes.fromhex(c["runtime"]), c["id"])
    f = res.functions[0]
    right = list(f.line_pcs)
    f.line_pcs = right[1:] + right[:1]   # every line given its neighbour's pcs
    with pytest.raises(AssertionError, match="among the pcs"):
        check_provenance(res, bytes.fromhex(c["runtime"]), c["id"])
    f.line_pcs = right[:3] + [()] + right[4:]
    with pytest.raises(AssertionError, match="unmapped line"):
        check_provenance(res, bytes.fromhex(c["runtime"]), c["id"])


@pytest.mark.parametrize("level", LEVELS)
def test_every_fixture_line_maps_to_instructions(level):
    lines = 0
    for name, code in FIXTURES.items():
        try:
            res = lift(code, level=level)
        except LiftError:
            continue
        lines += check_provenance(res, runtime_of(code, res), name)
    assert lines > 5000


def test_headers_map_to_the_dispatcher_comparison():
    """A public function's header maps to the EQ with its selector and the JUMPI to its entry (solc); an internal
    function's unit header to its entry JUMPDEST."""
    internal = 0
    for c in json.loads((FIXDIR / "contracts.json").read_text()) + json.loads((FIXDIR / "level2.json").read_text()):
        raw = bytes.fromhex(c["runtime"])
        ops = instructions(raw)
        for level in LEVELS:
            for f in lift(raw, level=level).functions:
                if not f.selector.startswith("0x"):
                    continue
                header = {ops[p] for p in f.line_pcs[0]}
                assert {"EQ", "JUMPI"} <= header, (c["id"], level, f.selector, header)
                for k, (text, pcs) in enumerate(f.lines()):
                    if text.startswith("function f"):
                        assert [ops[p] for p in pcs] == ["JUMPDEST"], (c["id"], text)
                        internal += 1
    assert internal > 0


def test_level2_constructs_map_to_what_they_fold():
    """E.move (solc 0.6.12, optimizer): the ABI decoding and call checks map to the header; a mapping slot to its
    hash and the scratch stores it hashes; a revert message, a log and a return to the stores of their data."""
    c = next(c for c in json.loads((FIXDIR / "level2.json").read_text()) if c["id"] == "E@0.6.12/opt200")
    raw = bytes.fromhex(c["runtime"])
    ops = instructions(raw)
    f = lift(raw, level=2).function(c["method_identifiers"]["move(address,uint256)"])
    got = {text.strip(): sorted(ops[p] for p in pcs) for text, pcs in f.lines()}
    header = got["function 0x987ff31c(arg0: address, arg1: uint256) nonpayable"]
    assert header.count("CALLDATALOAD") == 2 and {"EQ", "JUMPI", "LT", "REVERT"} <= set(header)
    assert got["v2 = mapping(0x2)[caller]"] == ["MSTORE", "MSTORE", "SHA3"]
    assert got["v1 = uint160(arg0)"] == ["AND"]
    assert {"GT", "JUMPI"} <= set(got["if arg1 > v3 goto b1 else b2"])
    assert got["sstore(v4, v5 - arg1)"] == ["SSTORE", "SUB"]
    assert got['revert("E: zero")'].count("MSTORE") >= 3 and "REVERT" in got['revert("E: zero")']
    assert {"LOG3", "MSTORE"} <= set(next(v for k, v in got.items() if k.startswith("log3(")))
    assert got["return (0x1)"] == ["MSTORE", "RETURN"]
    # level 1 prints each of those stores on a line of its own: the level-2 lines map to no instruction level 1
    # does not print
    l1 = {p for _, pcs in lift(raw, level=1).function(f.selector).lines() for p in pcs}
    assert {p for _, pcs in f.lines() for p in pcs} <= l1


def test_creation_input_maps_to_runtime_offsets():
    c = next(c for c in json.loads((FIXDIR / "inputs.json").read_text()) if c.get("creation"))
    res = lift(c["creation"])
    lo, _ = res.details["creation"]["runtime"]
    direct = lift(c["runtime"])
    assert [f.line_pcs for f in res.functions] == [f.line_pcs for f in direct.functions] and lo > 0


def test_cli_json_carries_each_line_with_its_pcs(capsys):
    c = next(c for c in json.loads((FIXDIR / "level2.json").read_text()) if c["id"] == "E@0.8.26/opt200")
    for level in ("1", "2"):
        assert main(["lift", c["runtime"], "--json", "--level", level]) == 0
        out = json.loads(capsys.readouterr().out)
        res = lift(c["runtime"], level=int(level))
        for d, f in zip(out["functions"], res.functions):
            assert "line_pcs" not in d and "pcs" not in d
            assert [x["text"] for x in d["lines"]] == f.tac.split("\n")
            assert [tuple(x["pcs"]) for x in d["lines"]] == f.line_pcs
            assert all(x["pcs"] for x in d["lines"] if x["text"])
    assert main(["lift", c["runtime"]]) == 0   # the plain text is the TAC alone
    assert capsys.readouterr().out == lift(c["runtime"]).tac() + "\n"


def test_mutated_runtimes_map_every_line():
    """Fuzzed runtimes (tests/lift_mutations.py: flips, truncations, splices, inserted jumps): whatever lifts still
    maps every line to instructions of the code."""
    from lift_mutations import mutate, seeds

    pool, checked = seeds(), 0
    for seed in range(150):
        name, raw = mutate(pool, random.Random(seed))
        for level in LEVELS:
            try:
                res = lift(raw, level=level, time_limit_s=2)
            except LiftError:
                continue
            check_provenance(res, runtime_of(raw, res), f"{name} (seed {seed})")
            checked += 1
    assert checked > 100


# ------------------------------------------------------------------------------------- the shipped sample
def sample_runtimes() -> dict[str, str]:
    """Runtime bytecode of the shipped sample's test contracts: their units (lib/tacsol/data/sample/units.json.gz)
    compiled with the records' compiler and setting, through the compile cache (outputs/cache/solc)."""
    bundle = json.loads(gzip.decompress((pairs.SAMPLE_DIR / "units.json.gz").read_bytes()))
    units = corpus.RecordUnits(bundle=bundle)
    recs = list(pairs.load("sample")["test"])
    todo: dict[str, corpus.Unit] = {}
    keys = []
    for r in recs:
        main_file, srcs = units.sources(r)
        version, setting = r["solc_version"], corpus.build_settings(r["settings"])[0]
        inp = corpus.standard_input(srcs, main_file, setting, version)
        key = corpus.cache_key(version, inp)
        todo.setdefault(key, corpus.Unit(key, r["package"], main_file, version, setting, inp))
        keys.append(key)
    missing = sorted({u.version for u in todo.values() if not (paths.node_modules() / f"solc-{u.version}").is_dir()})
    if missing and not all(corpus.load_cached(k) for k in todo):
        pytest.skip(f"solcjs {missing} not installed (npm install) and the units not in the compile cache")
    if shutil.which("node") is None and not all(corpus.load_cached(k) for k in todo):
        pytest.skip("node not installed and the units not in the compile cache")
    done, _ = corpus.compile_units(list(todo.values()), workers=1, progress=False)
    out = {}
    for r, key in zip(recs, keys):
        code = ((done.get(key) or {}).get("contracts", {}).get(r["contract"]) or {}).get("bytecode")
        if code:
            out[f"{r['contract']}@{r['settings']}"] = link_placeholders(code)
    return out


@pytest.mark.slow
def test_sample_runtimes_map_every_line():
    codes = sample_runtimes()
    assert len(codes) == 26, sorted(codes)   # the 31 test records' contract@settings (33 before issue 14's licence cut)
    for level in LEVELS:
        lines = 0
        for name, code in codes.items():
            res = lift(code, level=level)
            lines += check_provenance(res, runtime_of(code, res), name)
        assert lines > 10000
