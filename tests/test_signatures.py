"""Known signatures (issue 14): the selector → signature table from sources independent of the evaluation splits
(shipped standard interfaces, package declarations, the train split), its leak check, and the hint in the prompt."""
import json
import re

import pytest

from tacsol import evm, params as P, prompt, signatures as S, train

APPROVE = "0x095ea7b3"


def _rec(rid, split, signature, package="pkg@1.0.0", tac=None):
    sel = evm.selector(signature)
    return {"id": rid, "split": split, "selector": sel, "signature": signature, "package": package,
            "tac": tac or f"function {sel}() nonpayable\nb0:\n  stop", "solidity": "function f() {}"}


def test_standard_table_computes_its_selectors():
    t = S.standard_table()
    known = {APPROVE: "approve(address,uint256)", "0xa9059cbb": "transfer(address,uint256)",
             "0x01ffc9a7": "supportsInterface(bytes4)", "0x150b7a02": "onERC721Received(address,address,uint256,bytes)",
             "0x91d14854": "hasRole(bytes32,address)", "0xd505accf": "permit(address,address,uint256,uint256,uint8,"
                                                                   "bytes32,bytes32)", "0x8da5cb5b": "owner()"}
    assert {s: t.get(s) for s in known} == known
    assert all(evm.selector(e.signature) == s for s, e in t.entries.items())
    assert {"IERC20", "IERC721"} <= set(t.entries[APPROVE].sources["standard"])
    # the interface text names no selector: every one is computed from its declaration
    assert not re.search(r"0x[0-9a-fA-F]{8}\b", S.STANDARD.read_text())


def test_declarations_resolve_types_and_skip_what_they_cannot():
    src = """
    pragma solidity ^0.8.0;
    type Price is uint128;
    interface IPool {
        struct Order { address maker; uint256[] amounts; Side side; }
        enum Side { Buy, Sell }
        event Filled(bytes32 id);
        function fill(Order calldata o, IERC20 token, Price p) external returns (bool);
        function bad(Unknown u) external;
        function quote(uint a, bytes memory b) external view returns (uint);
    }
    interface IERC20 { function approve(address spender, uint256 value) external returns (bool); }
    abstract contract Base {
        function done() public virtual;
        function hidden() internal virtual;
        function body() external { }
    }
    contract Old { function total() public constant returns (uint); }
    """
    src = S.corpus.strip_comments(src)
    found, unresolved = S.declared_signatures(src, S._file_scope(src))
    assert [s for _, s in found] == ["fill((address,uint256[],uint8),address,uint128)", "quote(uint256,bytes)",
                                     "approve(address,uint256)", "done()", "total()"]
    assert unresolved == 1  # bad(Unknown): an undeclared type is not guessed as an address


def test_merge_scopes_drops_names_declared_differently():
    a, b = S.Scope(structs={"S": ["uint256"]}, contracts={"C"}), S.Scope(structs={"S": ["address"]}, enums={"E"})
    merged = S.merge_scopes([a, b])
    assert "S" not in merged.structs and merged.enums == {"E"} and merged.contracts == {"C"}


def _splits():
    return {"train": [_rec("t1", "train", "mint(address,uint256)"), _rec("t2", "train", "burn(uint256)", "held@2")],
            "validation": [_rec("v1", "validation", "mint(address,uint256)")],
            "test": [_rec("x1", "test", "secretTestOnly(uint256)"), _rec("x2", "test", "approve(address,uint256)")]}


def test_test_only_selector_is_absent_and_the_leak_check_proves_it():
    splits = _splits()
    t = S.build(splits["train"], dataset="toy")
    assert t.get(evm.selector("secretTestOnly(uint256)")) == ""
    assert t.get(evm.selector("mint(address,uint256)")) == "mint(address,uint256)"
    assert t.entries[APPROVE].sources == {"standard": ["IERC20", "IERC721"]}
    assert S.leaks(t, splits) == []
    # an entry copied from a test record is caught whatever source it claims
    leaked = S.Table.from_json(t.to_json())
    leaked.add("secretTestOnly(uint256)", "train", "pkg@1.0.0")
    leaked.entries["0x12345678"] = S.Entry("g()", {"test": ["pkg@1.0.0"]})
    problems = S.leaks(leaked, splits)
    assert any("secretTestOnly" in p and "no train record" in p for p in problems)
    assert any("0x12345678" in p and "'test'" in p for p in problems) and any("selector is" in p for p in problems)
    with pytest.raises(ValueError, match="only train records"):
        S.build(splits["test"])


def test_restricted_drops_held_out_packages_and_sources():
    t = S.build(_splits()["train"])
    burn = evm.selector("burn(uint256)")
    assert t.get(burn) and not t.restricted(exclude_packages=["held"]).get(burn)
    assert t.restricted(exclude_packages=["held@2"]).get(APPROVE)  # standard entries belong to no package
    assert not t.restricted(["train"]).get(APPROVE) and t.restricted(["standard"]).counts()["train"] == 0


def test_save_load_round_trip(tmp_path):
    t = S.build(_splits()["train"], dataset="toy")
    path = S.save(t, tmp_path)
    assert path.name == S.FILE and S.load(path).to_json() == t.to_json()
    assert json.loads(path.read_text())["counts"]["train"] == 2


def test_hint_in_the_prompt_replaces_the_records_own_signature():
    tac = "function 0x095ea7b3(address,uint256) nonpayable\nb0:\n  stop"
    rec = _rec("x2", "test", "approve(address,uint256)", tac=tac)
    plain = prompt.build_prompt(rec)
    assert "signature: approve(address,uint256)" in plain and "//" not in plain  # unchanged without hints
    [hinted] = S.hint_records([rec], S.standard_table())
    text = prompt.build_prompt(hinted)
    assert "function 0x095ea7b3(address,uint256) nonpayable  // approve(address,uint256)\nb0:" in text
    assert "signature:" not in text
    back = prompt.parse(text)
    assert back["tac"] == rec["tac"] and back["signature_hint"] == "approve(address,uint256)"
    # unknown selector: no hint and still no signature line (the record's own is the label)
    [unknown] = S.hint_records([_rec("x1", "test", "secretTestOnly(uint256)")], S.standard_table())
    assert unknown["signature_hint"] == "" and "signature:" not in prompt.build_prompt(unknown)
    assert "//" not in prompt.build_prompt(unknown)
    # an adapter trained without hints reads known signatures from the metadata line instead
    [meta] = S.hint_records([{"id": "b", "tac": tac, "selector": "", "signature": ""}], S.standard_table(),
                            in_header=False)
    assert meta["signature"] == "approve(address,uint256)" and "signature_hint" not in meta


def test_annotate_and_split_hint_are_inverse():
    tac = "function 0x095ea7b3(address,uint256) nonpayable\nb0:\n  stop"
    assert S.annotate(tac, "") == tac and S.split_hint(tac) == (tac, "")
    assert S.split_hint(S.annotate(tac, "approve(address,uint256)")) == (tac, "approve(address,uint256)")


def test_shipped_sample_table_is_leak_free_and_used_by_runs():
    splits = train.load_records("sample")
    table = S.table_for("sample", splits)
    assert (S.dataset_folder("sample") / S.FILE).is_file() and S.leaks(table, splits) == []
    cov = S.coverage(table, splits["test"])
    assert 0 < cov["selectors_resolved"] <= cov["selectors"]
    assert cov["records_signature_equal"] == cov["records_resolved"]
    whole = train.run_records({**train.DEFAULTS, "signature_hints": True, "train_hints": "table"})
    assert all(r["signature_hint"] == r["signature"] for r in whole["train"] if r["selector"].startswith("0x"))
    recs = train.run_records({**train.DEFAULTS, "signature_hints": True})  # train_hints: as_held_out
    assert all("signature_hint" in r for s in recs.values() for r in s)
    assert all(r["signature_hint"] in ("", r["signature"]) for r in recs["train"])
    named = sum(1 for r in recs["train"] if r["signature_hint"])
    assert 0 < named < sum(1 for r in whole["train"] if r["signature_hint"])
    assert [r["signature_hint"] for r in recs["test"]] == [r["signature_hint"] for r in whole["test"]]
    hinted_test = sum(1 for r in recs["test"] if r["signature_hint"])
    assert hinted_test == cov["records_resolved"]
    # the package-held-out stratum gets no hint from its own packages' train records or declarations
    pkg = splits["train"][0]["package"]
    held = train.run_records({**train.DEFAULTS, "signature_hints": True, "holdout_packages": [pkg]})
    only_own = {s for s, e in table.entries.items()
                if set(e.sources) <= {"train", "interface"} and all(o == pkg for v in e.sources.values() for o in v)}
    assert only_own and not any(r["signature_hint"] and r["selector"] in only_own for s in held.values() for r in s)
    assert "signature_hint" not in train.run_records(dict(train.DEFAULTS))["test"][0]


def test_train_hints_hide_the_records_own_group():
    """A train prompt shows a train-only signature only when another near-duplicate group backs it, as a held-out
    function would see the table; standard and interface entries always; packages the table dropped back nothing."""
    sig_a, sig_b, sig_c = "mint(address,uint256)", "burnAll()", "transfer(address,uint256)"
    table = S.Table()
    table.add(sig_a, "train", "p@1")
    table.add(sig_b, "train", "p@1")
    table.add(sig_c, "standard", "IERC20")

    def rec(sig, group, package="p@1"):
        return {"selector": evm.selector(sig), "signature": sig, "group": group, "package": package, "tac": ""}
    records = [rec(sig_a, "g1"), rec(sig_a, "g1"), rec(sig_a, "g2"),  # two implementations of mint
               rec(sig_b, "g3"), rec(sig_b, "g3"),                    # one implementation (two builds) of burnAll
               rec(sig_b, "g4", package="held@1"),  # a package the table dropped: backs nothing, sees g3's entry
               rec(sig_c, "g5")]                                      # a standard interface
    hints = [r["signature_hint"] for r in S.hint_train_records(records, table)]
    assert hints == [sig_a, sig_a, sig_a, "", "", sig_b, sig_c]
    assert [r["signature_hint"] for r in S.hint_records(records, table)] == [sig_a] * 3 + [sig_b] * 3 + [sig_c]


def test_train_hints_param_is_checked():
    with pytest.raises(P.ParamsError, match="train_hints.*'all'"):
        train.load_params({"train_hints": "all"})


def test_unknown_signature_source_is_refused():
    with pytest.raises(P.ParamsError, match="signature_sources.*unknown \\['test'\\]"):
        train.load_params({"signature_sources": ["train", "test"]})


# ------------------------------------------------------------------------------------------------ known events
TRANSFER = "Transfer(address,address,uint256)"


def test_standard_table_names_its_events_by_their_computed_topics():
    t = S.standard_table()
    assert t.events[S.topic(TRANSFER)].sources["standard"] == ["IERC20", "IERC721"]
    assert S.topic(TRANSFER) == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"  # ERC-20's
    assert {"OwnershipTransferred(address,address)", "RoleGranted(bytes32,address,address)",
            "TransferBatch(address,address,address,uint256[],uint256[])", "URI(string,uint256)"} <= \
        {e.signature for e in t.events.values()}
    assert all(S.topic(e.signature) == tp for tp, e in t.events.items())


def test_event_declarations_resolve_types_and_skip_anonymous_ones():
    src = S.corpus.strip_comments("""
    interface IPool {
        struct Order { address maker; uint256[] amounts; }
        enum Side { Buy, Sell }
        event Filled(bytes32 indexed id, Order o, Side indexed side, IPool pool);
        event Quiet(uint256 a) anonymous;
        event Bad(Unknown u);
    }
    contract Pool { event Swept(address indexed to, uint amount); function f() external {} }
    """)
    found, unresolved = S.declared_events(src, S._file_scope(src))
    assert found == [("IPool", "interface", "Filled(bytes32,(address,uint256[]),uint8,address)"),
                     ("Pool", "contract", "Swept(address,uint256)")]
    assert unresolved == 1


def _event_package(root):
    (root / "contracts").mkdir(parents=True)
    (root / "contracts" / "Token.sol").write_text("""
    interface IMinter { event Minted(address indexed to, uint256 amount); }
    contract Token {
        event Burned(address indexed from, uint256 amount);
        event SecretTestOnly(uint256 x);
        function burn(uint256 a) external { emit Burned(msg.sender, a); }
    }
    """)
    return root


def _event_rec(rid, split, solidity, contract, context=""):
    return {**_rec(rid, split, "burn(uint256)"), "solidity": solidity, "context": context,
            "contract_key": contract, "group": rid}


def test_event_table_comes_from_interfaces_and_train_emits_only(tmp_path):
    root = _event_package(tmp_path / "pkg")
    splits = {"train": [_event_rec("t1", "train", "function burn(uint256 a) external { _burn(a); }", "pkg:Token",
                                   context="function _burn(uint256 a) internal { emit Burned(msg.sender, a); }")],
              "test": [_event_rec("x1", "test", "function f() external { emit SecretTestOnly(1); }", "pkg:Other")]}
    t = S.build(splits["train"], {"pkg@1.0.0": root})
    sigs = {e.signature: e.sources for e in t.events.values()}
    assert sigs["Minted(address,uint256)"] == {"interface": ["pkg@1.0.0"]}
    assert sigs["Burned(address,uint256)"] == {"train": ["pkg@1.0.0"]}  # emitted by an internal function it reaches
    assert "SecretTestOnly(uint256)" not in sigs  # declared, but only a test record emits it
    assert S.leaks(t, splits) == []
    leaked = S.Table.from_json(t.to_json())
    leaked.add_event("SecretTestOnly(uint256)", "train", "pkg@1.0.0")
    leaked.events["0x" + "00" * 32] = S.Entry("Fake()", {"standard": ["X"]})
    problems = S.leaks(leaked, splits)
    assert any("SecretTestOnly" in p and "no train record" in p for p in problems)
    assert any("Fake()" in p and "topic is" in p for p in problems)
    assert not t.restricted(exclude_packages=["pkg"]).events.get(S.topic("Burned(address,uint256)"))


def test_event_names_replace_topics_of_log_statements_only_and_exactly():
    names = S.standard_table().event_names()
    sent = "Sent(address,address,address,uint256,bytes,bytes)"  # topic 0x06b541dd...: printed without its 0
    names[int(S.topic(sent), 16)] = sent
    tac = ("  log3(0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef, v1, v2; v3)\n"
           "  log4(v4, v5 - v4, 0x6b541ddaa720db2b10a4d0cdac39b8d360425fc073085fac19bc82614677987, v1, v2, v3)\n"
           "  v6 = 0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef\n"
           "  log1(0x1234; v6)")
    out = S.name_events(tac, names).splitlines()
    assert out == [f"  log3({TRANSFER}, v1, v2; v3)", f"  log4(v4, v5 - v4, {sent}, v1, v2, v3)",
                   tac.splitlines()[2], "  log1(0x1234; v6)"]  # a constant outside a log, an unknown topic: kept
    table = S.Table(events={S.topic(TRANSFER): S.Entry(TRANSFER, {"standard": ["IERC20"]})})
    cov = S.event_coverage(table, [{"tac": tac}])  # hash-like constants of log lines: two, one named (0x1234 isn't)
    assert (cov["topics"], cov["topics_named"], cov["distinct_topics_named_share"]) == (2, 1, 0.5)
    # exact: every name stands for the constant it replaced
    for before, after in zip(tac.splitlines(), out):
        for const in set(re.findall(r"0x[0-9a-f]+", before)) - set(re.findall(r"0x[0-9a-f]+", after)):
            assert names[int(const, 16)] in after and int(S.topic(names[int(const, 16)]), 16) == int(const, 16)


def test_train_prompts_name_a_train_only_event_when_another_contract_emits_it():
    table = S.Table()
    table.add_event("Burned(address,uint256)", "train", "p@1")
    table.add_event(TRANSFER, "standard", "IERC20")
    burned = S.topic("Burned(address,uint256)")
    tac = (f"function 0x42966c68(uint256) nonpayable\nb0:\n  log2({burned}, caller; arg0)\n"
           f"  log3({S.topic(TRANSFER)}, caller, 0x0; arg0)\n  stop")

    def rec(contract, package="p@1"):
        return {"selector": "0x42966c68", "signature": "burn(uint256)", "group": contract, "package": package,
                "contract_key": contract, "tac": tac,
                "solidity": "function burn(uint256 a) external { emit Burned(msg.sender, a); }"}
    alone = S.hint_train_records([rec("A")], table, events=True)[0]["tac"]
    assert burned in alone and TRANSFER in alone  # only its own contract emits Burned: as a held-out one, unnamed
    two = S.hint_train_records([rec("A"), rec("B")], table, events=True)
    assert all("log2(Burned(address,uint256), caller; arg0)" in r["tac"] for r in two)
    held = S.hint_train_records([rec("A"), rec("B", package="held@1")], table, events=True)  # dropped package
    assert burned in held[0]["tac"]
    assert S.hint_records([rec("A")], table)[0]["tac"] == tac  # events off: the TAC as lifted


def test_runs_name_events_only_with_signature_hints(tmp_path):
    with pytest.raises(P.ParamsError, match="event_names.*signature_hints"):
        train.load_params({"event_names": True})
    recs = train.run_records({**train.DEFAULTS, "signature_hints": True, "event_names": True})
    plain = train.run_records({**train.DEFAULTS, "signature_hints": True})
    named = [r for s in recs for r in recs[s] if "Transfer(address,address,uint256)" in r["tac"]]
    assert named and all(S.split_hint(r["tac"])[0] for r in named)
    changed = sum(a["tac"] != b["tac"] for s in recs for a, b in zip(recs[s], plain[s]))
    assert changed >= len(named)
    assert all(a["signature_hint"] == b["signature_hint"] for s in recs for a, b in zip(recs[s], plain[s]))


def test_a_table_saved_before_events_loads_without_them(tmp_path):
    t = S.build(_splits()["train"], dataset="toy")
    doc = t.to_json()
    old = {**{k: v for k, v in doc.items() if k != "events"}, "format": 1}
    assert S.Table.from_json(old).events is None and S.Table.from_json(old).event_names() == {}
    path = S.save(t, tmp_path)
    assert S.load(path).to_json() == doc and json.loads(path.read_text())["counts"]["events"] == len(t.events)


def test_a_records_file_uses_the_table_saved_beside_it_unless_it_leaks(tmp_path):
    splits = _splits()
    data = tmp_path / "arm.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for s in splits.values() for r in s))
    assert S.table_for(str(data), splits).events == S.standard_table().events  # nothing beside: built in memory
    t = S.build(splits["train"], dataset="toy")
    t.add_event("Burned(address,uint256)", "interface", "pkg@1.0.0")
    S.save_as(t, S.sidecar(data))
    assert S.sidecar(data).name == "arm.signatures.json"
    assert S.table_for(str(data), splits).events[S.topic("Burned(address,uint256)")].signature
    t.add("secretTestOnly(uint256)", "train", "pkg@1.0.0")
    S.save_as(t, S.sidecar(data))
    with pytest.raises(ValueError, match="arm.signatures.json.*secretTestOnly"):
        S.table_for(str(data), splits)


def test_a_train_emit_whose_name_has_two_declarations_names_neither(tmp_path):
    """Which of two same-named events a train record emits is not known, and the other may be a held-out
    contract's own: neither enters the table from the train source, unless the record's own file declares one."""
    root = tmp_path / "pkg"
    (root / "contracts").mkdir(parents=True)
    (root / "contracts" / "A.sol").write_text("contract A { event Moved(address to); function f() external {} }")
    (root / "contracts" / "B.sol").write_text("contract B { event Moved(uint256 amount); function g() external {} }")
    train_rec = _event_rec("t1", "train", "function f() external { emit Moved(msg.sender); }", "pkg:A")
    t = S.build([train_rec], {"pkg@1.0.0": root})
    assert not any(e.signature.startswith("Moved(") for e in t.events.values())
    assert t.built_from["train_events_ambiguous"] == 1
    # the record's own file declares one of them: that is the one it emits
    t = S.build([{**train_rec, "file": "pkg/contracts/A.sol"}], {"pkg@1.0.0": root})
    assert [e.signature for e in t.events.values() if e.signature.startswith("Moved(")] == ["Moved(address)"]


def test_retrieval_prompts_come_from_trained_on_records_only():
    """run_records with retrieval_prompts: every split's prompt shows a trained-on neighbour; the held-out
    packages (the package-held-out stratum) are never one, as they are never trained on."""
    from tacsol import prompt

    splits = train.load_records("sample")
    pkg = splits["train"][0]["package"]
    recs = train.run_records({**train.DEFAULTS, "signature_hints": True, "retrieval_prompts": True,
                              "holdout_packages": [pkg]})
    trained = {r["id"] for r in splits["train"] if r["package"] != pkg}
    assert all(r["neighbour_id"] in trained for s in recs.values() for r in s)
    assert all(r["neighbour"] and "// nearest training function by TAC" in prompt.build_prompt(r)
               for r in recs["test"])
    with pytest.raises(P.ParamsError, match="retrieval_max_chars"):
        train.load_params({"retrieval_max_chars": 0})
