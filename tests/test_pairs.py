"""pairs: alignment by selector on real solc output, features, context, splits, dataset save/load/resume,
HF importers, the shipped sample, bad input."""
import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from tacsol import corpus, evm, pairs, paths
from tacsol import params as P

FIX = Path(__file__).parent / "fixtures" / "pairs"
NAME = "pytest_pairs_fixture"


@pytest.fixture(scope="module")
def built():
    cfg = pairs.BuildConfig(name=NAME, folders=[str(FIX / "sol")], settings=["noopt", "opt200"], progress=False)
    manifest = pairs.build(cfg)
    out = paths.outputs_dir() / "data" / NAME
    return manifest, out, pairs.load(NAME)


def _rows(dd):
    return [dict(r) for s in pairs.SPLITS for r in dd[s]]


def test_build_selectors_signatures_and_most_derived(built):
    manifest, out, dd = built
    rep = json.loads((out / "correctness.json").read_text())
    assert rep["all"]["selector_recovery_pct"] == 100.0 and rep["all"]["selectors_expected"] > 20
    assert rep["all"]["signature_match_pct"] == 100.0  # AST-computed signatures == solc methodIdentifiers
    assert set(manifest["solc_minor_versions"]) == {"0.4", "0.8"}
    rows = _rows(dd)
    sigs = {r["signature"] for r in rows}
    assert {"place((address,uint128,bytes32[2]),uint8)", "pull(address,uint256)", "count(uint8[3])",
            "sum(uint256[])", "allowance(address,address)", "orders(uint256)", "balanceOf(address)",
            "fallback()", "receive()", "setFactor(uint256)"} <= sigs
    describe = [r for r in rows if r["signature"] == "describe()"]
    assert describe and all('"vault"' in r["solidity"] for r in describe)  # override, not Base08's
    for r in rows:
        if r["selector"].startswith("0x"):
            assert evm.selector(r["signature"]) == r["selector"]
        assert r["tac"] and r["solidity"] and r["settings"].count("/") == 2
        # the unit's licence: Token04.sol has no SPDX line (the folder's "user"); the 0.8 units' files are all MIT
        assert r["license"] == ("user" if r["unit_main"] == "src/Token04.sol" else "MIT"), r["unit_main"]
    assert manifest["license_scope"] == "unit" and manifest["license_dropped"] == {"records": 0, "units": 0}


def test_permissive_only_drops_records_of_units_with_a_non_permissive_file(built, tmp_path):
    """--permissive-only keeps a record only if every source of its unit is permissive; the others are counted
    in the manifest and listed in rejects.jsonl naming the file and its licence (cached pairs are re-annotated)."""
    cfg = pairs.BuildConfig(name=NAME + "_permissive", folders=[str(FIX / "sol")], settings=["noopt", "opt200"],
                            permissive_only=True, progress=False)
    m = pairs.build(cfg)
    out = paths.outputs_dir() / "data" / cfg.name
    rows = _rows(pairs.load(cfg.name))
    everything = _rows(built[2])
    token = [r for r in everything if r["unit_main"] == "src/Token04.sol"]
    assert rows and token and all(corpus.is_permissive(r["license"]) for r in rows)
    assert {r["id"] for r in rows} == {r["id"] for r in everything if r["unit_main"] != "src/Token04.sol"}
    rej = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    lic = [r for r in rej if r["reason"] == "license_file"]
    assert lic and all(r["detail"] == "src/Token04.sol is user (no SPDX line: its package's licence)" for r in lic)
    assert all(r["item"].startswith("sol:src/Token04.sol:") for r in lic)   # package:unit main:contract:function
    assert m["rejects"]["license_file"] == len(lic) == m["license_dropped"]["records"] >= len(token)
    assert m["license_dropped"]["units"] == 2   # Token04 under noopt and opt200


def test_cached_pairs_get_their_units_licence(built, tmp_path, monkeypatch):
    """A record's licence is set by the build, not read from the per-unit pairs cache: pairs cached with a package
    licence (as before unit licences) come back with their unit's, and --permissive-only still drops them."""
    import gzip

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "solc").symlink_to(paths.cache_dir() / "solc")   # the fixture's compiles, cached by `built`
    monkeypatch.setenv("TACSOL_CACHE", str(cache))
    monkeypatch.setenv("TACSOL_OUTPUTS", str(tmp_path / "out"))
    cfg = pairs.BuildConfig(name="lic", folders=[str(FIX / "sol")], settings=["noopt"], progress=False)
    first = pairs.build(cfg)
    entries = list((cache / "pairs").rglob("*.json.gz"))
    assert entries and first["units_pairs_from_cache"] == 0
    for f in entries:   # what a per-package build would have cached: one licence for every record
        d = json.loads(gzip.decompress(f.read_bytes()))
        for r in d["records"]:
            r["license"] = "MIT"
        f.write_bytes(gzip.compress(json.dumps(d).encode()))
    again = pairs.build(dataclasses.replace(cfg, permissive_only=True))
    assert again["units_pairs_from_cache"] == len(entries) and again["license_dropped"]["units"] == 1
    rows = _rows(pairs.load("lic"))
    assert rows and {r["license"] for r in rows} == {"MIT"} and not any(r["unit_main"] == "src/Token04.sol"
                                                                         for r in rows)


def test_features_and_context_from_source(built):
    rows = {(r["contract"], r["signature"], r["settings"].split("/")[1]): r for r in _rows(built[2])}
    get = lambda c, s: rows[(c, s, "noopt")]  # noqa: E731
    transfer = get("Token04", "transfer(address,uint256)")
    assert "_move" in transfer["context"] and transfer["has_event"] and transfer["has_storage_write"]
    assert get("Token04", "sum(uint256[])")["has_loop"] and not get("Token04", "sum(uint256[])")["has_storage_write"]
    assert get("Token04", "payout(address)")["has_external_call"] and "onlyOwner" in get("Token04", "payout(address)")["context"]
    assert get("Vault08", "pull(address,uint256)")["has_external_call"]
    assert get("Vault08", "count(uint8[3])")["has_loop"]
    assert "_scale" in get("Vault08", "fee(uint256)")["context"]
    assert get("Vault08", "place((address,uint128,bytes32[2]),uint8)")["has_storage_write"]
    owner = [r for k, r in rows.items() if k[1] == "owner()"]  # Owned or Token04: dedup keeps the first
    assert owner and all(r["solidity"].startswith("address public owner") for r in owner)


def test_rejects_name_item_and_reason(built):
    _, out, _ = built
    rej = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["item"].split(":")[-1]: r["reason"] for r in rej}
    assert reasons == {"src/MissingImport.sol": "missing_import", "src/FutureCompiler.sol": "no_compiler",
                       "src/Broken.sol": "compile_error"}
    assert all(r["detail"] for r in rej)


def test_splits_no_leak_and_resume(built):
    manifest, out, dd = built
    sides = {}
    for s in pairs.SPLITS:
        for r in dd[s]:
            sides.setdefault(r["norm_hash"], set()).add(s)
            assert r["split"] == s
    assert all(len(v) == 1 for v in sides.values())
    assert list(dd["train"].features) == list(pairs.COLUMNS)
    assert manifest["pairs"] == sum(len(dd[s]) for s in pairs.SPLITS)
    again = pairs.build(pairs.BuildConfig(name=NAME, folders=[str(FIX / "sol")], settings=["noopt", "opt200"],
                                          progress=False))
    assert again["units_pairs_from_cache"] == again["units_compiled_ok"] > 0  # rerun redoes nothing
    assert again["pairs"] == manifest["pairs"]


def test_normalize_body_and_group_assignment():
    a = "function f(uint x) public { // add\n  y = x + 1; }"
    b = "function f(uint x) public {\n    /* add */ y = x+1;\n}"
    assert pairs.normalize_body(a) == pairs.normalize_body(b)
    assert pairs.normalize_body(a) != pairs.normalize_body(a.replace("x + 1", "x + 2"))
    recs = [{"norm_hash": f"h{i % 7}", "contract_key": f"c{i}", "package": "p", "contract": f"c{i}"} for i in range(300)]
    pairs.assign_splits(recs)
    assert {r["split"] for r in recs} <= set(pairs.SPLITS)
    by = {}
    for r in recs:
        by.setdefault(r["norm_hash"], set()).add(r["split"])
    assert all(len(v) == 1 for v in by.values())


class _Boom(ValueError):
    reason = "creation_code"


def test_lift_error_becomes_reject(built):
    ss = corpus.folder_sources(FIX / "sol")
    ss.mains = ["src/Token04.sol"]
    units, _ = corpus.plan_units(ss, [corpus.Setting.parse("noopt")])
    arts, _ = corpus.compile_units(units, progress=False)
    texts = {p: s["content"] for p, s in units[0].input["sources"].items()}

    def lift_fn(code, time_limit_s=10.0):
        raise _Boom("creation code given")

    res = pairs.align_artifact(arts[units[0].key], texts, label="x", license="MIT", version="0.4.24",
                               setting=units[0].setting, lift_fn=lift_fn, lift_error=_Boom)
    assert not res.records and res.rejects[0]["reason"] == "lift_error"
    assert res.rejects[0]["detail"] == "creation_code" and "Token04" in res.rejects[0]["item"]

    class Empty:  # a lifter that times out on a function and returns no instructions for it
        functions = [type("F", (), dict(selector=evm.selector("mint(address,uint256)"), tac="", blocks=0,
                                        instructions=0, ops={}, status="timeout", pcs=[]))()]

    res = pairs.align_artifact(arts[units[0].key], texts, label="x", license="MIT", version="0.4.24",
                               setting=units[0].setting, lift_fn=lambda code, time_limit_s=10.0: Empty,
                               lift_error=_Boom)
    empty = [r for r in res.rejects if r["reason"] == "empty_tac"]
    assert not res.records and empty and "mint(address,uint256)" in empty[0]["item"] and "timeout" in empty[0]["detail"]


def test_lifter_cache_tag_follows_every_lift_module_as_imported(monkeypatch):
    """Per-unit pairs caches key on the lifter's source as this process imported it: an edit to any module of the
    lift package changes the digest; an edit made after the import (a long build that reaches its lift stage after
    the source changed) is refused, since the old code would run under the new source's tag."""
    from tacsol import lift

    tag = pairs._lifter()[2]
    assert tag == "lift:" + lift.IMPORTED_SOURCE_SHA == "lift:" + lift.source_sha()
    read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: read(self, *a, **k) + "#" * (self.name == "emit.py"))
    assert lift.source_sha() != lift.IMPORTED_SOURCE_SHA
    with pytest.raises(RuntimeError, match="changed on disk after this process imported it"):
        pairs._lifter()


def test_import_hf_tac_shape_jsonl():
    recs, rej = pairs.import_hf(FIX / "hf_tac.jsonl", {"tac": "code_tac", "solidity": "sol", "signature": "sig",
                                                       "contract": "contract_name"}, name="pytest_hf_tac")
    assert len(recs) == 3 and rej[0]["item"] == "row 3" and rej[0]["reason"] == "empty_field"
    assert recs[0]["selector"] == evm.selector("set(uint256)")
    assert recs[1]["norm_hash"] != recs[2]["norm_hash"] or recs[1]["split"] == recs[2]["split"]
    dd = pairs.load("pytest_hf_tac")
    assert sum(len(dd[s]) for s in pairs.SPLITS) == 3
    with pytest.raises(pairs.DatasetError, match="nope"):
        pairs.import_hf(FIX / "hf_tac.jsonl", {"tac": "nope", "solidity": "sol"})


def test_import_hf_source_bytecode_shape_parquet():
    recs, rej = pairs.import_hf(FIX / "hf_source.parquet", {"source": "src", "bytecode": "runtime",
                                                           "contract": "name", "compiler_version": "compiler"})
    assert {r["reason"] for r in rej} == {"malformed_hex", "compile_error"}
    assert {r["item"].split(":")[0] for r in rej} == {"row 1", "row 2"}
    sigs = {r["signature"] for r in recs}
    assert {"transfer(address,uint256)", "mint(address,uint256)", "owner()", "fallback()"} <= sigs
    assert all(r["solc_version"] == "0.4.24" for r in recs)


def test_cli_stats(built, capsys):
    ap = argparse.ArgumentParser()
    pairs.build_parser(ap)
    assert pairs.main(ap.parse_args(["stats", NAME])) == 0
    out = capsys.readouterr().out
    assert "selector_recovery_pct" in out and "train" in out


def test_shipped_sample_schema_and_licences():
    dd = pairs.load("sample")
    assert set(dd) == set(pairs.SPLITS) and all(len(dd[s]) > 0 for s in pairs.SPLITS)
    assert sum(len(dd[s]) for s in dd) >= 100
    for s in pairs.SPLITS:
        assert all(corpus.is_permissive(lic) for lic in dd[s]["license"])
        assert list(dd[s].features) == list(pairs.COLUMNS)
    groups = [set(dd[s]["norm_hash"]) for s in pairs.SPLITS]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])


def _sample_bundle() -> dict[str, dict[str, str]]:
    import gzip

    return json.loads(gzip.decompress((pairs.SAMPLE_DIR / "units.json.gz").read_bytes()))


def test_shipped_sample_holds_no_non_permissive_source():
    """Issue 14: no BUSL-1.1/LZBL-1.2/GPL/UNLICENSED code ships. Every source of every bundled test unit
    (units.json.gz) and every record's text carry a permissive licence (SPDX line, else the package's), every record's
    `license` (its unit's) is permissive, and every test record's unit is bundled (so all of them were scanned)."""
    bundle = _sample_bundle()
    units = corpus.RecordUnits(bundle=bundle)
    bad = []
    for key, srcs in sorted(bundle.items()):
        package, main = key.split("|")
        files = units.file_licenses({"package": package, "unit_main": main})
        bad += [f"units.json.gz {key}: {f}" for f in files if not f.permissive]
        assert [f.path for f in files] == sorted(srcs)
    rows = {s: [dict(r) for r in pairs.load("sample")[s]] for s in pairs.SPLITS}
    for s, recs in rows.items():
        for r in recs:
            where = f"{s} {r['package']}:{r['file']}:{r['contract']}.{r['signature']}"
            if not corpus.is_permissive(r["license"]):
                bad.append(f"{where}: license {r['license']!r}")
            for col in ("solidity", "context", "tac"):
                spdx = corpus.spdx_of(r[col])
                if spdx and not corpus.is_permissive(spdx):
                    bad.append(f"{where}: {col} carries SPDX {spdx}")
    assert not bad, bad[:10]
    assert {f"{r['package']}|{r['unit_main']}" for r in rows["test"]} == set(bundle)


def test_shipped_sample_units_are_permissive_when_the_npm_cache_has_them():
    """The train/validation units are not shipped: read from outputs/cache/npm, every record's unit is permissive and
    its `license` is that unit's licence (tools/sample_licences.py wrote them)."""
    units = corpus.RecordUnits(bundle=_sample_bundle())
    checked, bad = 0, []
    for s in pairs.SPLITS:
        for r in pairs.load("sample")[s]:
            try:
                files = units.file_licenses(dict(r))
            except corpus.UnitNotFound:
                continue
            checked += 1
            bad += [f"{s} {r['contract']}.{r['signature']}: {f}" for f in files if not f.permissive]
            if r["license"] != corpus.unit_license(files):
                bad.append(f"{s} {r['contract']}.{r['signature']}: license {r['license']!r}, its unit's is "
                           f"{corpus.unit_license(files)!r}")
    if not checked:
        pytest.skip("the sample's packages are not in outputs/cache/npm (tacsol data build fetches them)")
    assert not bad, bad[:10]


def test_load_is_the_one_entry_point(tmp_path):
    """"sample", a records file split by its split column (``all`` without one), a DatasetDict or Dataset as given;
    a missing name raises instead of falling back to anything."""
    import datasets

    rows = [dict(r) for r in pairs.load("sample")["validation"]][:3]
    rows[0]["split"] = "test"
    f = tmp_path / "records.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dd = pairs.load(f)
    assert {s: len(dd[s]) for s in dd} == {"test": 1, "validation": 2} and dd["validation"][1]["id"] == rows[2]["id"]
    assert pairs.load(dd) is dd
    assert list(pairs.load(datasets.Dataset.from_list(rows).remove_columns("split"))) == ["all"]
    with pytest.raises(pairs.DatasetError, match=r"line 2 \(row 1\), column 'tac': not valid UTF-8"):
        f.write_bytes(b'{"tac": "x"}\n{"tac": "caf\xe9"}\n')
        pairs.load(f)
    with pytest.raises(pairs.DatasetError, match="no dataset at 'pytest-no-such-dataset'"):
        pairs.load("pytest-no-such-dataset")


def test_always_reverts_excludes_declared_but_never_returned_data():
    from tacsol.pairs import always_reverts

    def call(name, *args):
        return {"nodeType": "ExpressionStatement", "expression": {
            "nodeType": "FunctionCall", "expression": {"nodeType": "Identifier", "name": name},
            "arguments": list(args)}}

    lit = lambda v: {"nodeType": "Literal", "value": v}  # noqa: E731
    ident = {"nodeType": "Identifier", "name": "ok"}
    ret = {"nodeType": "Return", "expression": ident}

    class Idx:
        nodes = {7: {"nodeType": "ModifierDefinition", "body": {"statements": [
                     call("require", ident), {"nodeType": "PlaceholderStatement"}]}},
                 8: {"nodeType": "ModifierDefinition", "body": {"statements": [
                     {"nodeType": "IfStatement", "trueBody": {"nodeType": "PlaceholderStatement"}}]}}}

    fn = lambda *stmts, mods=(): {"body": {"statements": list(stmts)},  # noqa: E731
                                  "modifiers": [{"modifierName": {"referencedDeclaration": m}} for m in mods]}
    assert always_reverts(fn(call("revert", lit("APPROVAL_NOT_SUPPORTED"))), Idx)
    assert always_reverts(fn({"nodeType": "RevertStatement"}), Idx)             # revert CustomError()
    assert always_reverts(fn(call("require", lit("false"), lit("no"))), Idx)
    assert always_reverts(fn(call("revert"), mods=(7,)), Idx)                      # `_;` runs unconditionally
    assert not always_reverts(fn(call("require", ident), ret), Idx)               # a real return path
    assert not always_reverts(fn(ret, call("revert")), Idx)                       # returns before the revert
    assert not always_reverts(fn(call("revert"), mods=(8,)), Idx)                 # `_` on one path only
    assert not always_reverts(fn({"nodeType": "IfStatement", "trueBody": call("revert")}, ret), Idx)
    assert always_reverts(fn({"nodeType": "IfStatement", "trueBody": call("revert"),
                              "falseBody": {"nodeType": "Block", "statements": [call("assert", lit("false"))]}}), Idx)


def _compile_one(src: str, extra_outputs: tuple[str, ...] = ()):
    """solc 0.8.10 output of one source file C.sol (AST + ``extra_outputs``), its AstIndex, and an owner-name helper
    ("Contract.member") for context assertions."""
    from tacsol import corpus
    from tacsol.pairs import AstIndex

    inp = {"language": "Solidity", "sources": {"C.sol": {"content": src}},
           "settings": {"outputSelection": {"*": {"": ["ast"], "*": list(extra_outputs)}}}}
    out = corpus.run_solcjs("0.8.10", [("k", inp)], 120)["k"]
    assert not [e for e in out.get("errors", []) if e["severity"] == "error"], out.get("errors")
    idx = AstIndex(out["sources"], {"C.sol": src})
    return out, idx, lambda n: idx.nodes[idx.parent[n["id"]]]["name"] + "." + n["name"]


def test_public_library_calls_are_external_calls_not_context():
    """`L.f(...)` of a public library function runs by DELEGATECALL in the linked library: the caller's TAC holds
    the DELEGATECALL (to the stand-in address), not L.f's event, so L.f is no context and counts as a call."""
    from tacsol.lift import lift
    from tacsol.evm import link_placeholders
    from tacsol.pairs import _children, context_of, source_features

    src = ("pragma solidity ^0.8.0;\nlibrary L { event E(); function f(uint x) public returns (uint) { emit E(); "
           "return x + 1; }\n function h(uint x) internal pure returns (uint) { return x * 3; } }\n"
           "contract C { uint s; function g() public { s = L.f(1) + L.h(2); } }\n")
    out, idx, _ = _compile_one(src, ("evm.deployedBytecode.object",))
    g = next(n for n in _children(out["sources"]["C.sol"]["ast"])
             if n.get("nodeType") == "FunctionDefinition" and n.get("name") == "g")
    ctx = context_of(g, idx, [])
    assert [n["name"] for n in ctx] == ["h"]  # the internal library function is inlined context; f is not
    feats = source_features([g] + ctx, idx)
    assert feats["has_external_call"] and feats["has_storage_write"] and not feats["has_event"]
    code = out["contracts"]["C.sol"]["C"]["evm"]["deployedBytecode"]["object"]
    assert "__$" in code
    fn = next(f for f in lift(link_placeholders(code)).functions if f.selector == "0xe2179b8e")  # g()
    assert fn.ops.get("DELEGATECALL") and not any(fn.ops.get(f"LOG{i}") for i in range(5))


def test_context_follows_super_at_run_time_and_modifier_arguments():
    """D is B, C (both override A.f and call super.f): in D, C.f's `super.f` runs B.f, not the A.f its AST names.
    Calls inside modifier arguments (`only(level(x))`) are context too."""
    from tacsol.pairs import _children, context_of

    src = ("pragma solidity ^0.8.0;\ncontract A { event EA(); function f() public virtual { emit EA(); } }\n"
           "contract B is A { uint b; function f() public virtual override { b = 1; super.f(); } }\n"
           "contract C is A { uint c; function f() public virtual override { c = 2; super.f(); } }\n"
           "contract D is B, C { modifier only(uint r) { require(r > 0); _; }\n"
           " function level(uint x) public pure returns (uint) { return x + 1; }\n"
           " function f() public override(B, C) { super.f(); }\n"
           " function g(uint x) public only(level(x)) { f(); } }\n")
    out, idx, owner = _compile_one(src)
    ast = out["sources"]["C.sol"]["ast"]
    d = next(n for n in _children(ast) if n.get("nodeType") == "ContractDefinition" and n["name"] == "D")
    linear = [idx.nodes[i] for i in d["linearizedBaseContracts"]]
    assert [c["name"] for c in linear] == ["D", "C", "B", "A"]
    fn = lambda c, name: next(n for n in c["nodes"] if n.get("name") == name)  # noqa: E731
    assert [owner(n) for n in context_of(fn(d, "f"), idx, linear)] == ["C.f", "B.f", "A.f"]
    assert sorted(owner(n) for n in context_of(fn(d, "g"), idx, linear)) == ["A.f", "B.f", "C.f", "D.f", "D.level",
                                                                            "D.only"]


def test_context_resolves_overridden_modifiers_and_keeps_library_calls_static():
    from tacsol.pairs import _children, context_of

    src = ("pragma solidity ^0.8.0;\nlibrary Lib { function amount(uint x) internal pure returns (uint) { return x * 2; }\n"
           " function amounts(uint x) internal pure returns (uint) { return amount(x) + 1; } }\n"
           "contract Base { address owner; modifier guard() virtual { require(msg.sender == owner); _; }\n"
           " function run() public guard { owner = address(0); } }\n"
           "contract Child is Base { uint n; function check(address a) public view { require(a != address(0)); }\n"
           " modifier guard() override { check(msg.sender); _; }\n"
           " function amount(uint x) public pure returns (uint) { return Lib.amount(x); }\n"
           " function total(uint x) public returns (uint) { n = Lib.amounts(x); return n; } }\n")
    out, idx, owner = _compile_one(src)
    cs = {n["name"]: n for n in _children(out["sources"]["C.sol"]["ast"]) if n.get("nodeType") == "ContractDefinition"}
    linear = [idx.nodes[i] for i in cs["Child"]["linearizedBaseContracts"]]
    run = next(n for n in cs["Base"]["nodes"] if n.get("name") == "run")
    assert [owner(n) for n in context_of(run, idx, linear)] == ["Child.guard", "Child.check"]
    total = next(n for n in cs["Child"]["nodes"] if n.get("name") == "total")
    # Lib.amounts calls Lib.amount, not the contract's public amount(uint) of the same signature
    assert [owner(n) for n in context_of(total, idx, linear)] == ["Lib.amounts", "Lib.amount"]


def test_level2_build_records_its_level_and_keeps_correctness(built):
    """tacsol data build --level 2 on the same sources (compiles from the cache): the manifest and every row of
    correctness.json name the level, its per-unit cache is its own, selectors stay at 100%, and no version/setting
    row's body-fact recall or isolation is lower than level 1's."""
    manifest1, out1, _ = built
    m2 = pairs.build(pairs.BuildConfig(name=NAME + "_l2", folders=[str(FIX / "sol")], settings=["noopt", "opt200"],
                                       progress=False, tac_level=2))
    assert m2["tac_level"] == 2 and manifest1["tac_level"] == 1 and m2["lifter"] != manifest1["lifter"]
    rep1 = json.loads((out1 / "correctness.json").read_text())
    rep2 = json.loads((paths.outputs_dir() / "data" / (NAME + "_l2") / "correctness.json").read_text())
    assert rep1.keys() == rep2.keys() and {r["tac_level"] for r in rep2.values()} == {2}
    for key, r1 in rep1.items():
        r2 = rep2[key]
        assert r2["selector_recovery_pct"] == 100.0, key
        for k in [c for c in r1 if c.endswith("_recall_pct")] + ["isolation_ok_pct"]:
            assert (r2[k] or 0) >= (r1[k] or 0), (key, k)
    d2 = pairs.load(NAME + "_l2")
    assert any("arg0" in r["tac"] for s in pairs.SPLITS for r in d2[s])


_CALLS_TWICE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract Ledger {
    mapping(address => uint256) public balance;
    mapping(address => uint256) public moves;
    uint256 public total;
    address public last;
    event Moved(address indexed to, uint256 value, uint256 total);
    function _credit(address to, uint256 value) internal {
        require(to != address(0), "zero address");
        require(value > 0 && value < 1e30, "bad value");
        balance[to] += value;
        moves[to] += 1;
        total += value;
        last = to;
        emit Moved(to, value, total);
    }
    function credit(address to, uint256 value) public { _credit(to, value); }
    function creditBoth(address a, address b, uint256 value) public { _credit(a, value); _credit(b, value * 2); }
}
"""


def test_a_manifest_without_the_callee_budget_reads_as_the_budget_it_was_built_with(tmp_path, monkeypatch):
    """A build that predates the callee_budget key lifted with the old default, 8,192 characters: decompile and
    training must lift its adapter's bytecode so, not with today's default; a recorded budget is read as recorded."""
    import json

    from tacsol.lift import CALLEE_BUDGET_CHARS, LEGACY_CALLEE_BUDGET_CHARS

    monkeypatch.setenv("TACSOL_OUTPUTS", str(tmp_path))
    for name, manifest in (("old", {"tac_level": 3}), ("new", {"tac_level": 3, "callee_budget": 2048}),
                           ("older", {})):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "manifest.json").write_text(json.dumps(manifest))
    assert LEGACY_CALLEE_BUDGET_CHARS == 8192 and CALLEE_BUDGET_CHARS == 3584
    assert pairs.lift_options("old") == {"level": 3, "callee_budget": 8192}
    assert pairs.lift_options("new") == {"level": 3, "callee_budget": 2048}
    assert pairs.lift_options("older") == {"level": 1, "callee_budget": 8192}
    # a build today records the budget it lifted with, so it never falls back
    assert pairs.lift_options_of_build(pairs.BuildConfig(name="x", tac_level=3)) == {
        "tac_level": 3, "callee_budget": CALLEE_BUDGET_CHARS}


def test_a_build_with_a_callee_budget_records_it_and_lifts_with_it(tmp_path):
    """tacsol data build --callee-budget: the manifest records the budget (pairs.lift_options reads it back for
    training and decompile), the per-unit cache is its own, and with a budget of 0 the callee unit an example
    carries prints as its summary where the default budget prints it whole."""
    from tacsol.lift import CALLEE_BUDGET_CHARS

    with pytest.raises(P.ParamsError, match="callee_budget"):
        pairs.check_build_config(pairs.BuildConfig(name="x", callee_budget=-1), "x.yaml")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "Ledger.sol").write_text(_CALLS_TWICE)
    built = {b: pairs.build(pairs.BuildConfig(name=f"pytest_budget_{b}", folders=[str(tmp_path / "src")],
                                              settings=["noopt"], progress=False, tac_level=2, callee_budget=b))
             for b in (None, 0)}
    assert built[None]["callee_budget"] == CALLEE_BUDGET_CHARS and built[0]["callee_budget"] == 0
    assert built[None]["lifter"] != built[0]["lifter"]
    assert pairs.lift_options("pytest_budget_0") == {"level": 2, "callee_budget": 0}
    tac = {b: {r["signature"]: r["tac"] for s in pairs.SPLITS for r in pairs.load(f"pytest_budget_{b}")[s]}
           for b in (None, 0)}
    both = tac[None]["creditBoth(address,address,uint256)"], tac[0]["creditBoth(address,address,uint256)"]
    assert "\n\nfunction f1(" in both[0] and "// summary of" not in both[0], both[0]
    assert "\n\nfunction f1(arg0, arg1) internal  // summary of " in both[1] and len(both[1]) < len(both[0])
