"""Check 5 of verifier-guided decoding (tacsol.evaluate.stubrun): a candidate compiled in a stub built from the TAC
and run against the original runtime, with no source. A real contract compiled by solc 0.8.20, lifted at level 3."""
from __future__ import annotations

import pytest

from tacsol.evaluate import compile_bytecode, stubrun, verify
from tacsol.lift import lift

VAULT = """pragma solidity 0.8.20;
contract Vault {
    address public owner;
    mapping(address => uint256) public deposits;
    uint16 public fee;
    address public keeper;
    string public name;
    address[] internal members;
    mapping(address => bool) public allowed;
    event Deposited(address indexed payee, uint256 amount);
    function allMembers() external view returns (address[] memory) { return members; }
    function deposit(address payee) public payable {
        require(msg.sender == owner, "not owner");
        deposits[payee] += msg.value;
        emit Deposited(payee, msg.value);
    }
    function setAllowed(address who, bool on) public { allowed[who] = on; }
}
"""


@pytest.fixture(scope="module")
def vault():
    out = compile_bytecode(VAULT, "0.8.20")["Vault"]
    code = bytes.fromhex(out["bytecode"])
    tacs = {f.selector: f.tac for f in lift(out["bytecode"], level=3).functions}
    return code, {sig: {"id": sig, "tac": tacs[s], "selector": s, "solc_version": "0.8.20"}
                  for sig, s in out["selectors"].items()}


def test_tac_storage_reads_slots_depths_fields_and_key_types(vault):
    _, recs = vault
    deposit = stubrun.tac_storage(recs["deposit(address)"]["tac"])
    assert [(s.base, s.depth, s.bits, s.keys) for s in deposit] == [(0, 0, 160, []), (1, 1, 256, ["address"])]
    keeper = stubrun.tac_storage(recs["keeper()"]["tac"])
    assert [(s.base, s.offset_bits, s.bits) for s in keeper] == [(2, 16, 160)]   # packed after the uint16
    assert stubrun.tac_header(recs["deposit(address)"]["tac"])[2] is True       # payable
    assert stubrun.tac_log_topics(recs["deposit(address)"]["tac"]) == [2]


def test_layout_declarations_place_variables_at_their_slots_and_offsets():
    decl = stubrun.layout_declarations([("a", stubrun.Slot(3, 0, 16, 160), "address"),
                                        ("m", stubrun.Slot(5, 1, 0, 256, ["address"]), "mapping(address => uint256)")])
    assert decl.split("\n    ") == ["uint256[3] private __tacsol_gap0;", "uint16 private __tacsol_pad0;", "address a;",
                                   "uint80 private __tacsol_fill1;", "uint256[1] private __tacsol_gap1;",
                                   "mapping(address => uint256) m;"]
    assert stubrun.layout_declarations([("a", stubrun.Slot(1 << 40, 0), "uint256")]) is None   # a hashed namespace


def test_candidates_run_against_the_runtime(vault):
    code, recs = vault
    rec = recs["deposit(address)"]
    right = """function deposit(address who) public payable onlyOwner {
        _balances[who] += msg.value;
        emit Paid(who, msg.value);
    }"""
    unguarded = right.replace(" onlyOwner", "")                      # the owner check missing: differs
    overwrites = right.replace("+= msg.value", "= msg.value")         # a write of another value: differs
    # an internal function the stub does not have: the cases that reach it are not judged, the others are (the
    # owner check before it agrees)
    internal = right.replace("_balances[who] += msg.value;", "_credit(who);")
    runs = stubrun.check_record(rec, code, [right, unguarded, overwrites, internal])
    assert [r.verdict for r in runs] == ["equivalent", "differs", "differs", "agrees"], [r.reason for r in runs]
    assert "reach a function the stub does not have" in runs[3].reason
    # a getter under another name, of a packed field, and of a string: the stub binds by slot, not by name
    assert stubrun.check_record(recs["keeper()"], code, [
        "function operator() external view returns (address) { return _operator; }",
        "function operator() external view returns (uint256) { return _count; }"])[0].verdict == "equivalent"
    named = stubrun.check_record(recs["name()"], code, [
        "function title() public view returns (string memory) { return _title; }"])
    assert named[0].verdict == "equivalent", named[0].reason
    listed = stubrun.check_record(recs["allMembers()"], code, [   # a dynamic array read whole
        "function everyone() external view returns (address[] memory) { return _people; }",
        "function everyone() external view returns (address[] memory) { return new address[](0); }"])
    assert [r.verdict for r in listed] == ["equivalent", "differs"], [r.reason for r in listed]


def test_rank_puts_the_candidate_that_runs_like_the_bytecode_first(vault):
    code, recs = vault
    rec = recs["deposit(address)"]
    pool = ["""function deposit(address who) public payable {
        _balances[who] += msg.value;
        emit Paid(who, msg.value);
    }""", """function deposit(address who) public payable onlyOwner {
        _balances[who] += msg.value;
        emit Paid(who, msg.value);
    }"""]
    best, checks = verify.rank(rec, pool, compile_check=False)
    assert best == 0 and checks[0].runs == ""                  # without the runtime, greedy stays first
    best, checks = verify.rank(rec, pool, compile_check=False, code=code)
    assert best == 1 and [c.runs for c in checks] == ["differs", "equivalent"]


def test_compiler_of_reads_the_metadata(vault):
    code, _ = vault
    assert stubrun.compiler_of(code) == "0.8.20"
    assert stubrun.compiler_of(b"\x60\x00") == ""


def test_a_failing_run_check_leaves_the_ranking_to_the_other_checks(vault, monkeypatch):
    code, recs = vault
    monkeypatch.setattr(stubrun, "build_runtimes", lambda *a: (_ for _ in ()).throw(RuntimeError("py-evm broke")))
    checks = verify.check_candidates(recs["owner()"], ["function owner() public view returns (address) { return o; }"],
                                     compile_check=False, code=code)
    assert checks[0].runs == "" and "check 5 failed: RuntimeError: py-evm broke" in checks[0].runs_detail


def test_events_and_headers_typed_as_the_stub_declares_them(vault):
    code, recs = vault
    # an event's argument that is a state variable takes the variable's type; the TAC's topics say what is indexed
    assert stubrun._event("Renounced", "emit Renounced(owner, 5);", 2, {"owner": "address"}) == \
        "event Renounced(address indexed, uint256);"
    # a header without visibility (solc < 0.5 made it public) runs as the public function the selector calls
    got = stubrun.check_record(recs["owner()"], code, ["function owner() view returns (address) { return _o; }"])
    assert got[0].verdict == "equivalent", got[0].reason
    # an 8-bit field the code assigns a bool (a bool parameter) is a bool, not a uint8 solc would refuse
    got = stubrun.check_record(recs["setAllowed(address,bool)"], code, [
        "function setAllowed(address account, bool ok) public { _ok[account] = ok; }",
        "function setAllowed(address account, bool ok) public { _ok[msg.sender] = ok; }"])
    assert [g.verdict for g in got] == ["equivalent", "differs"], got
    # a public state variable runs as its getter: bound to the TAC's slot, or (a constant) returning its value
    got = stubrun.check_record(recs["deposits(address)"], code, [
        "mapping(address => uint256) public balances;", "uint256 public constant FEE = 30;"])
    assert [g.verdict for g in got] == ["equivalent", "differs"], got


ORDERS = """pragma solidity 0.8.20;
contract Orders {
    struct Order { uint256 amount; bytes data; }
    uint256 public total;
    function place(Order calldata o, uint8 side) external returns (uint256) {
        total += o.amount + o.data.length + side;
        return total;
    }
}
"""


def test_headers_read_back_at_every_level_tuples_and_hints_included():
    """lift.abi.parse_header reads what function_header writes: one reader for the stub (argument types), the
    argument check (names) and the storage keys; level 1's unnamed types give no run signature, and do not crash."""
    from tacsol.lift.abi import parse_header
    from tacsol.signatures import annotate

    out = compile_bytecode(ORDERS, "0.8.20")["Orders"]
    sel = out["selectors"]["place((uint256,bytes),uint8)"]
    tac = {level: next(f.tac for f in lift(out["bytecode"], level=level).functions if f.selector == sel)
           for level in (1, 3)}
    l1, l3 = parse_header(tac[1]), parse_header(annotate(tac[3], "place((uint256,bytes),uint8)"))
    assert (l1.selector, l1.params, l1.mutability, l1.named) == (sel, (("", "(uint256,bytes)"), ("", "uint8")),
                                                                 "nonpayable", False)
    assert (l3.selector, l3.params, l3.mutability, l3.named) == (sel, (("arg0", "(uint256,bytes)"),
                                                                       ("arg1", "uint8")), "", True)
    assert stubrun.tac_header(tac[1]) is None
    s, types, payable = stubrun.tac_header(tac[3])
    assert (s, [t.base for t in types], [f.base for f in types[0].fields], payable) == (sel, ["tuple", "uint"],
                                                                                      ["uint", "bytes"], False)
    assert parse_header("b0:\n  stop") is None


TOKENS = """pragma solidity 0.8.20;
contract Tokens {
    mapping(uint256 => address) private _owners;
    mapping(uint256 => address) private _tokenApprovals;
    mapping(address => mapping(address => bool)) private _operatorApprovals;
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    function ownerOf(uint256 tokenId) public view returns (address) {
        address owner = _owners[tokenId];
        require(owner != address(0), "invalid token ID");
        return owner;
    }
    function isApprovedForAll(address owner, address operator) public view returns (bool) {
        return _operatorApprovals[owner][operator];
    }
    function approve(address to, uint256 tokenId) public {
        address owner = ownerOf(tokenId);
        require(to != owner, "approval to current owner");
        require(msg.sender == owner || isApprovedForAll(owner, msg.sender), "not owner nor approved");
        _approve(to, tokenId);
    }
    function _approve(address to, uint256 tokenId) internal {
        _tokenApprovals[tokenId] = to;
        emit Approval(ownerOf(tokenId), to, tokenId);
    }
}
"""


def test_internal_calls_run_the_originals_public_functions_and_leave_the_rest_unjudged():
    """OpenZeppelin's ERC721 `approve` as the model writes it: `ownerOf` and `isApprovedForAll` are public functions of
    the original (run from the runtime itself, on the stub's storage), `_approve` an internal one no stub has."""
    out = compile_bytecode(TOKENS, "0.8.20")["Tokens"]
    code = bytes.fromhex(out["bytecode"])
    sel = out["selectors"]["approve(address,uint256)"]
    tac = next(f.tac for f in lift(out["bytecode"], level=3).functions if f.selector == sel)
    rec = {"id": "approve", "tac": tac, "selector": sel, "solc_version": "0.8.20"}
    right = """function approve(address to, uint256 tokenId) public virtual override {
        address owner = ERC721.ownerOf(tokenId);
        require(to != owner, "approval to current owner");
        require(_msgSender() == owner || isApprovedForAll(owner, _msgSender()), "not owner nor approved");
        _approve(to, tokenId);
    }"""
    unchecked = """function approve(address to, uint256 tokenId) public {
        require(msg.sender == to || isApprovedForAll(to, msg.sender), "not owner nor approved");
        _approve(to, tokenId);
    }"""
    inlined = right.replace("_approve(to, tokenId);", "_approvals[tokenId] = to;\n        "
                            "emit Approved(ownerOf(tokenId), to, tokenId);")
    itself = "function approve(address to, uint256 id) public { super.approve(to, id); }"
    runs = stubrun.check_record(rec, code, [right, unchecked, inlined, itself])
    assert [r.verdict for r in runs] == ["agrees", "differs", "equivalent", "ran"], [r.reason for r in runs]
    assert "invalid token ID" not in runs[0].reason and runs[1].reason.startswith("case ")
    # the function itself is never run in the candidate's place: `super.approve` reaches only a stand-in
    assert runs[3].reason.startswith("every case reaches a function the stub does not have"), runs[3].reason
    best, checks = verify.rank(rec, [unchecked, itself, right], compile_check=False, code=code)
    assert best == 2 and [c.runs for c in checks] == ["differs", "ran", "agrees"]
    # a candidate the stub could build and run ranks above one it could not (here: an unknown modifier)
    guarded = right.replace("public virtual override", "public whenNotPaused")
    best, checks = verify.rank(rec, [guarded, itself], compile_check=False, code=code)
    assert best == 1 and [c.runs for c in checks] == ["", "ran"] and "whenNotPaused" in checks[0].runs_detail


def test_stand_ins_type_what_the_call_site_shows():
    text = """function f(address a, uint256 n) public returns (bool) {
        uint64 t = stamp(n);
        _move(a, n);
        require(allowed(a, 3), "no");
        return check(a);
    }"""
    assert stubrun.returned_types("stamp", text) == ["uint64"]
    assert stubrun.returned_types("_move", text) == []
    assert stubrun.returned_types("allowed", text) == ["bool"]
    assert stubrun.returned_types("check", text) == ["bool"]
    more = """function g(uint256 id) public view returns (uint256) {
        (bool found, uint256 value) = _valueAt(id, _snapshots);
        require(id <= current(), "not yet");
        return found ? value : supply();
    }"""
    assert stubrun.returned_types("_valueAt", more) == ["bool", "uint256"]
    assert stubrun.returned_types("current", more) == ["uint256"]
    assert stubrun.returned_types("supply", more) is None            # the code does not say: uint256 in the stub
    decl, _ = stubrun.stand_in("_valueAt", more, frozenset(), "", True, {"_snapshots": "uint256"})
    assert "function _valueAt(uint256 a0, uint256 a1) internal pure returns (bool r0, uint256 r1)" in decl
    sels = frozenset({"0x" + "00" * 4, __import__("tacsol").evm.selector("allowed(address,uint8)")})
    decl, delegates = stubrun.stand_in("allowed", text, sels, "", True)   # the literal's type tried among numbers
    assert delegates and "allowed(address a0, uint8 a1) internal returns (bool r0)" in decl
    decl, delegates = stubrun.stand_in("allowed", text, sels, "", False)  # no delegation (payable, solc < 0.5)
    assert not delegates and "internal pure returns (bool r0)" in decl and stubrun.UNKNOWN_MARK.hex() in decl


def test_every_verdict_is_ranked_and_told_to_the_reader():
    """Each verdict check 5 gives has its place in the ranking and its words in `tacsol decompile`'s output (an
    "agrees" printed as "differs from the bytecode" would mislead)."""
    from tacsol import infer

    assert set(infer.RUNS_NOTE) == set(verify.RUNS_RANK) == {"equivalent", "agrees", "ran", "differs"}
    assert verify.RUNS_RANK["equivalent"] > verify.RUNS_RANK["agrees"] > verify.RUNS_RANK["ran"] > 0 > \
        verify.RUNS_RANK["differs"]
    assert "like the bytecode" in infer.RUNS_NOTE["equivalent"] and "not on all" in infer.RUNS_NOTE["agrees"]
