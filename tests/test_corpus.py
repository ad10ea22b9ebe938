"""corpus: manifest, version choice, source scanning, import resolution, cached solcjs compiles, bad sources."""
import uuid
from pathlib import Path

import pytest

from tacsol import corpus, evm

FIX = Path(__file__).parent / "fixtures" / "pairs" / "sol"


@pytest.mark.parametrize("version,spec,ok", [
    ("0.8.20", "^0.8.0", True), ("0.9.0", "^0.8.0", False), ("0.4.24", "^0.4.24", True), ("0.5.0", "^0.4.24", False),
    ("0.7.6", ">=0.6.0 <0.8.0", True), ("0.8.0", ">=0.6.0 <0.8.0", False), ("0.6.12", ">=0.6.0<0.8.0", True),
    ("0.4.26", "~0.4.24", True), ("0.5.1", "~0.4.24", False), ("0.8.6", "0.8.6", True), ("0.8.10", "=0.8.6", False),
    ("0.5.16", "0.5.x", True), ("0.6.6", "^0.5.0 || ^0.6.0", True), ("0.8.26", ">0.8.20", True),
])
def test_version_satisfies(version, spec, ok):
    assert corpus.version_satisfies(version, spec) is ok


def test_version_tuple_reads_versions_as_written():
    """One parser for solc versions: pragmas' candidates, records' solc_version and settings, compiler strings."""
    assert corpus.version_tuple("0.8.19") == (0, 8, 19)
    assert corpus.version_tuple("v0.8.19+commit.7dd6d404") == corpus.version_tuple("0.8.19-nightly.2023.1.1") == (0, 8, 19)
    assert corpus.version_tuple("0.6.6/opt200/istanbul") == (0, 6, 6)
    assert corpus.version_tuple("") == corpus.version_tuple("latest") == (0, 0, 0)
    assert corpus.version_satisfies("v0.8.19+commit.7dd6d404", "^0.8.0")


def test_nearest_installed_for_a_records_version():
    inst = ["0.4.24", "0.6.6", "0.8.10", "0.8.15", "0.8.26"]
    assert corpus.nearest_installed("0.8.15", inst) == "0.8.15"      # exact
    assert corpus.nearest_installed("0.8.11", inst) == "0.8.15"      # the closest patch above
    assert corpus.nearest_installed("0.8.30", inst) == "0.8.26"      # none above: the newest of the minor
    assert corpus.nearest_installed("0.7.6", inst) is None           # another minor changes the language
    assert corpus.nearest_installed("", inst) == "0.8.26"
    assert corpus.nearest_installed("0.3.0") is None                 # the installed solcjs aliases by default


def test_choose_version_policy():
    inst = ["0.4.24", "0.5.16", "0.6.6", "0.7.6", "0.8.10", "0.8.26"]
    assert corpus.choose_version(["^0.8.0"], inst) == "0.8.10"
    assert corpus.choose_version(["^0.8.0"], inst, policy="highest") == "0.8.26"
    assert corpus.choose_version([">=0.6.0 <0.8.0", "^0.7.0"], inst) == "0.7.6"   # every pragma of the unit counts
    assert corpus.choose_version(["^0.9.0"], inst) is None
    with pytest.raises(ValueError, match="policy"):
        corpus.choose_version(["^0.8.0"], inst, policy="newest")


def test_scanning_ignores_comments_and_keeps_strings():
    src = '''pragma solidity ^0.8.0; // pragma solidity ^0.4.0;
    /* import "./Gone.sol"; */ import {A as B} from "./A.sol"; import "lib/X.sol" as X;
    string constant U = "http://x//y"; abstract contract P {} interface I {} contract C {}'''
    assert corpus.pragmas_of(src) == ["^0.8.0"]
    assert corpus.imports_of(src) == ["./A.sol", "lib/X.sol"]
    assert corpus.has_concrete_contract(src)
    assert not corpus.has_concrete_contract("abstract contract P {}\ninterface I {}\nlibrary L {}")


def test_strip_comments_is_a_left_to_right_scan():
    """The one comment stripper (corpus, evaluate, profile's lexer): strings keep their '//' and '/*', comments
    inside strings and strings inside comments are each what a scan from the left meets first."""
    src = 'a = "x // y /* z"; // it\'s "gone"\nb = \'/*\'; /* c "d */ e /* unterminated'
    assert corpus.strip_comments(src) == 'a = "x // y /* z"; \nb = \'/*\';   e  '
    blank = corpus.strip_comments(src, keep_length=True)
    assert len(blank) == len(src) and blank.index("\n") == src.index("\n") and blank.index(" e ") == src.index(" e ")
    # the corpus' former regex kept an unterminated /* (and everything after it) as source text
    assert corpus.strip_comments("contract C {} /* contract D {}") == "contract C {}  "
    assert not corpus.imports_of('/* import "./A.sol";')
    assert corpus.strip_comments('s = "a\\"//b";//c') == 's = "a\\"//b";'   # an escaped quote does not end it


def test_settings_parse():
    s = corpus.Setting.parse("viair-opt1000@cancun")
    assert (s.optimize, s.runs, s.via_ir, s.evm_version, s.name) == (True, 1000, True, "cancun", "viair-opt1000")
    assert not s.applies_to("0.8.10") and s.applies_to("0.8.20")
    with pytest.raises(ValueError, match="opt200x"):
        corpus.Setting.parse("opt200x")


def test_manifest_has_licences_and_permissive_flags(tmp_path):
    pkgs = corpus.load_manifest()
    names = {p.name for p in pkgs}
    assert {"@openzeppelin/contracts", "@openzeppelin/contracts-upgradeable", "@uniswap/v2-core",
            "@uniswap/v2-periphery", "@aave/core-v3", "@chainlink/contracts", "solmate", "erc721a"} <= names
    oz = [p for p in pkgs if p.name == "@openzeppelin/contracts"]
    assert {p.version.split(".")[0] for p in oz} >= {"2", "3", "4", "5"}
    assert all(p.permissive for p in oz) and not next(p for p in pkgs if p.name == "solmate").permissive
    bad = tmp_path / "m.yaml"
    bad.write_text("packages:\n  - name: foo\n    version: '1.0.0'\n")
    with pytest.raises(ValueError, match=r"foo.*license"):
        corpus.load_manifest(bad)
    with pytest.raises(ValueError, match="nosuchpkg"):
        corpus.load_manifest(None, ["nosuchpkg"])


def test_manifest_production_protocols_and_their_licences():
    """Issue 14's production packages are in the manifest with their licences; copyleft, source-available and dual
    licences ("X OR MIT") are never permissive, so --permissive-only and the shipped sample leave them out."""
    pkgs = {p.key: p for p in corpus.load_manifest()}
    permissive = {"@eth-optimism/contracts-bedrock@0.13.2", "seaport-core@1.6.6", "@sushiswap/core@1.4.2",
                  "@scroll-tech/contracts@4.0.0", "@ethereum-attestation-service/eas-contracts@1.7.1",
                  "@venusprotocol/venus-protocol@9.0.0"}
    other = {"@account-abstraction/contracts@0.7.0": "GPL-3.0",   # package.json says MIT; its sources are GPL-3.0
             "@superfluid-finance/ethereum-contracts@1.12.0": "AGPL-3.0-or-later OR MIT"}
    assert permissive | set(other) <= set(pkgs)
    assert all(pkgs[k].permissive and pkgs[k].compile for k in permissive)
    assert {k: pkgs[k].license for k in other} == other and not any(pkgs[k].permissive for k in other)
    for lic in ("BUSL-1.1", "LZBL-1.2", "GPL-3.0", "GPL-2.0-or-later", "LGPL-3.0", "AGPL-3.0-only", "AGPLv3",
                "AGPL-3.0-or-later OR MIT", "(GPL-3.0-or-later OR MIT)", "UNLICENSED", "MIT AND GPL-3.0"):
        assert not corpus.Package("x", "1", lic).permissive, lic
    assert corpus.Package("x", "1", "BSD-3-Clause").permissive and corpus.Package("x", "1", "ISC").permissive


@pytest.mark.parametrize("expr,ok", [
    ("MIT", True), ("mit", True), ("ISC", True), ("BSD-3-Clause", True), ("Unlicense", True), ("CC0-1.0", True),
    ("GPL-3.0-or-later OR MIT", True), ("(GPL-3.0-or-later OR MIT)", True), ("MIT OR BUSL-1.1", True),
    ("Apache 2.0", True), ("GPL 3.0", False), ("MIT License", False),
    ("Apache-2.0 WITH LLVM-exception", True), ("MIT AND (BUSL-1.1 OR ISC)", True),
    ("BUSL-1.1", False), ("LZBL-1.2", False), ("GPL-3.0", False), ("GPL-3.0-only", False), ("AGPL-3.0-or-later", False),
    ("LGPL-3.0", False), ("UNLICENSED", False), ("NOASSERTION", False), ("", False), ("MIT AND GPL-3.0", False),
    ("LicenseRef-GNU-GPL-header", False), ("MIT OR", False), ("(MIT", False), ("MIT BUSL-1.1", False), ("user", False),
])
def test_spdx_expressions_permissive_only_when_a_permissive_licence_covers_everything(expr, ok):
    """A file is permissive when its licence is in PERMISSIVE or dual-licensed with a permissive option; an AND of
    licences (a unit) only when every side is; UNLICENSED (no licence granted), unknown and unparsable are not."""
    assert corpus.is_permissive(expr) is ok


def test_file_licence_from_spdx_line_gnu_header_or_package():
    """solc's SPDX line (// or /* */, the first one; not inside a string), else a GNU licence header (vendored WETH9
    has the text but no SPDX line), else the licence of the package the file comes from."""
    f = corpus.file_license
    assert f("a.sol", "// SPDX-License-Identifier: BUSL-1.1\npragma solidity ^0.8.0;", "MIT").license == "BUSL-1.1"
    assert f("a.sol", "/* SPDX-License-Identifier: GPL-3.0-or-later OR MIT */\npragma solidity 0.8.0;", "x").license \
        == "GPL-3.0-or-later OR MIT"
    assert f("a.sol", "// SPDX-License-Identifier:MIT\r\n// SPDX-License-Identifier: GPL-3.0\n", "x").license == "MIT"
    s = f("a.sol", 'pragma solidity ^0.4.24;\ncontract A { string s = "SPDX-License-Identifier: GPL-3.0"; }', "ISC")
    assert (s.license, s.how, s.permissive) == ("ISC", "package", True)
    gnu = f("v/WETH9.sol", "// This program is free software: ... the GNU General Public License as published by\n"
            "pragma solidity ^0.4.18;\ncontract WETH9 {}", "MIT")
    assert (gnu.license, gnu.how, gnu.permissive) == ("LicenseRef-GNU-GPL-header", "gnu-header", False)
    assert str(gnu) == "v/WETH9.sol is LicenseRef-GNU-GPL-header (GNU licence text, no SPDX line)"
    body = f("b.sol", "pragma solidity ^0.8.0;\n// see the GNU Affero General Public License\ncontract B {}", "MIT")
    assert body.license == "MIT"   # only a header before the code counts
    assert str(f("k.sol", "// SPDX-License-Identifier: BUSL-1.1\n", "MIT")) == "k.sol is BUSL-1.1"


def test_unit_licence_combines_every_file_and_files_without_spdx_inherit_their_package():
    """A unit's licence is the AND of its files' distinct licences (an OR kept in parentheses); a file without an
    SPDX line has the licence of the package its unit path belongs to (a dep's from the manifest)."""
    pkg = corpus.Package("@chainlink/contracts", "0.8.0", "MIT", deps={"@openzeppelin/contracts": "4.9.6",
                                                                       "other": "1.0.0"})
    ss = corpus.SourceSet(pkg.key, pkg.license, [], corpus.Resolver({}),
                          corpus.inherited_licenses(pkg, {"@openzeppelin/contracts@4.9.6": "MIT"}))
    files = ss.file_licenses({
        "@chainlink/contracts/src/v0.8/tests/Upkeep.sol": "pragma solidity ^0.8.0; contract U {}",
        "@chainlink/contracts/src/v0.8/automation/v2_1/KeeperRegistryBase2_1.sol":
            "// SPDX-License-Identifier: BUSL-1.1\npragma solidity 0.8.16;",
        "@openzeppelin/contracts/access/Ownable.sol": "pragma solidity ^0.8.0;",
        "other/X.sol": "pragma solidity ^0.8.0;",   # a dep the manifest does not know: unknown
        "@chainlink/contracts/src/v0.8/Dual.sol": "// SPDX-License-Identifier: GPL-3.0-or-later OR MIT\n"})
    assert [(f.license, f.how) for f in files] == [
        ("GPL-3.0-or-later OR MIT", "spdx"), ("BUSL-1.1", "spdx"), ("MIT", "package"), ("MIT", "package"),
        ("", "package")]
    lic = corpus.unit_license(files)
    assert lic == "BUSL-1.1 AND (GPL-3.0-or-later OR MIT) AND MIT AND NOASSERTION" and not corpus.is_permissive(lic)
    ok = corpus.unit_license([f for f in files if f.license in ("MIT", "GPL-3.0-or-later OR MIT")])
    assert ok == "(GPL-3.0-or-later OR MIT) AND MIT" and corpus.is_permissive(ok)
    assert corpus.unit_license(files[2:4]) == "MIT"


def test_manifest_deps_name_manifest_entries():
    """Every `deps` entry is a manifest package at that version (otherwise its imports are silently missing)."""
    pkgs = corpus.load_manifest()
    keys = {p.key for p in pkgs}
    dangling = [(p.key, f"{d}@{v}") for p in pkgs for d, v in p.deps.items() if f"{d}@{v}" not in keys]
    assert not dangling


def test_excluded_files_are_not_mains_but_still_resolve_as_imports(tmp_path):
    """exclude only drops main files: an excluded base (seaport-core's src/lib, a vendored file) is still compiled
    into the units that import it."""
    root = tmp_path / "package"
    (root / "src" / "lib").mkdir(parents=True)
    (root / "src" / "lib" / "Base.sol").write_text("pragma solidity ^0.8.0;\ncontract Base { uint public x; }\n")
    (root / "src" / "C.sol").write_text('pragma solidity ^0.8.0;\nimport "./lib/Base.sol";\ncontract C is Base {}\n')
    pkg = corpus.Package("demo", "1.0.0", "MIT", include=["src/**"], exclude=["src/lib/**"])
    ss = corpus.package_sources(pkg, {pkg.key: root})
    assert ss.mains == ["demo/src/C.sol"]
    sources, missing = ss.resolver.closure("demo/src/C.sol")
    assert set(sources) == {"demo/src/C.sol", "demo/src/lib/Base.sol"} and not missing


def test_folder_sources_foundry_layout_and_bad_sources():
    ss = corpus.folder_sources(FIX)
    assert "src/Base08.sol" not in ss.mains  # abstract only: nothing to deploy
    sources, missing = ss.resolver.closure("src/Vault08.sol")
    assert {"src/Vault08.sol", "src/Base08.sol", "mini/IERC20Like.sol"} <= set(sources) and not missing
    units, rejects = corpus.plan_units(ss, [corpus.Setting.parse("noopt")])
    by = {r.item.split(":")[-1]: r for r in rejects}
    assert by["src/MissingImport.sol"].reason == "missing_import" and "DoesNotExist" in by["src/MissingImport.sol"].detail
    assert by["src/FutureCompiler.sol"].reason == "no_compiler" and "^0.9.0" in by["src/FutureCompiler.sol"].detail
    assert {u.main: u.version for u in units}["src/Token04.sol"] == "0.4.24"


def test_compile_cache_and_method_identifiers():
    ss = corpus.folder_sources(FIX)
    ss.mains = ["src/Token04.sol", "src/Vault08.sol"]
    units, _ = corpus.plan_units(ss, [corpus.Setting.parse("noopt")])
    arts, rejects = corpus.compile_units(units, progress=False)
    assert not rejects
    for u in units:
        assert corpus.load_cached(u.key) is not None  # cached by (source hash, version, settings)
        for c in arts[u.key]["contracts"].values():
            for sig, sel in c["method_identifiers"].items():
                assert evm.selector(sig) == "0x" + sel  # our keccak agrees with solc
    tok = arts[units[0].key]["contracts"]["Token04"]
    assert tok["bytecode"] and tok["source_map"] and tok["evm_version"] == "byzantium"
    assert arts[units[0].key]["sources"]["src/Token04.sol"]["ast"]["nodeType"] == "SourceUnit"


def test_compile_timeout_is_a_reject_not_an_abort():
    res = corpus.Resolver({})
    res._text["T.sol"] = f"pragma solidity ^0.8.0; contract T{uuid.uuid4().hex} {{ function f() public {{}} }}"
    units, _ = corpus.plan_units(corpus.SourceSet("t", "MIT", ["T.sol"], res), [corpus.Setting.parse("noopt")])
    arts, rejects = corpus.compile_units(units, timeout_s=0.01, retries=1, progress=False)
    assert not arts and rejects[0].reason == "compile_crash" and "timeout" in rejects[0].detail
    assert rejects[0].item == "t:T.sol"


def test_record_units_lead_from_a_records_columns_to_its_build(tmp_path, monkeypatch):
    """A record's columns (package, unit_main, file, solc_version, settings) name the unit the build compiled: its
    sources, and its cached compile under either spelling of the setting (EVM version pinned by the build or solc's
    default); baselines' bytecode lookup and evaluate's in-place units read them through the same RecordUnits."""
    from tacsol import baselines
    from tacsol.evaluate.compile import OriginalUnits

    monkeypatch.setenv("TACSOL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cache" / "npm" / "demo@1.0.0" / "package"
    (root / "contracts").mkdir(parents=True)
    (root / "contracts" / "Base.sol").write_text(
        "pragma solidity ^0.8.0;\nabstract contract Base { uint public x; function set(uint v) public { x = v; } }\n")
    (root / "contracts" / "C.sol").write_text('pragma solidity ^0.8.0;\nimport "./Base.sol";\ncontract C is Base {}\n')
    (root.parent / ".complete").write_text("demo@1.0.0")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("packages:\n  - name: demo\n    version: '1.0.0'\n    license: MIT\n    include: ['contracts/**']\n")
    pkg = corpus.load_manifest(manifest)[0]
    built, _ = corpus.plan_units(corpus.package_sources(pkg, {pkg.key: root}), [corpus.Setting.parse("opt200@paris")],
                                 installed=["0.8.19"])
    arts, _ = corpus.compile_units(built, workers=1, progress=False)
    art = arts[built[0].key]
    rec = {"id": "r", "package": "demo@1.0.0", "unit_main": "demo/contracts/C.sol", "file": "demo/contracts/Base.sol",
           "contract": "C", "solc_version": "0.8.19", "settings": "0.8.19/opt200/paris"}
    units = corpus.RecordUnits(manifest=manifest)
    main, srcs = units.sources(rec)
    assert main == "demo/contracts/C.sol" and set(srcs) == {"demo/contracts/C.sol", "demo/contracts/Base.sol"}
    assert units.artifact(rec) == art                       # found under the pinned spelling
    with pytest.raises(corpus.UnitNotFound, match="not in outputs/cache/solc"):
        units.artifact({**rec, "settings": "0.8.19/noopt/paris"})
    with pytest.raises(corpus.UnitNotFound, match="not in the corpus manifest"):
        units.sources({**rec, "package": "nope@0.0.0"})
    older = {k: v for k, v in rec.items() if k != "unit_main"}  # built before unit_main: the contract's main file
    assert units.sources(older)[0] == main and units.sources({**older, "contract_key": "demo:contracts/C.sol:C"})[0] == main

    found, missing = baselines.bytecode_from_cache([rec, {**rec, "id": "s", "settings": "0.8.19/imported"}],
                                                   manifest=manifest)
    assert found == {"r": art["contracts"]["C"]["bytecode"]} and "do not name a build setting" in missing["s"]
    assert set(OriginalUnits(units=units).sources(rec)) == {"demo/contracts/Base.sol"}   # the compile check's unit: the file's closure
