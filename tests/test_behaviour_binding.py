"""Binding an undeclared name by what the candidate's code says of it (evaluate.binding.bind, Shape): each case is
a renamed-control failure on ref_l3_t40_w (2026-12-07) that bound the wrong declaration."""
from __future__ import annotations

from tacsol.evaluate import behaviour as B, controls as C
from tacsol.evaluate import binding as BD

_TYPES = {
    "t_uint256": {"encoding": "inplace"}, "t_uint64": {"encoding": "inplace"}, "t_address": {"encoding": "inplace"},
    "t_contract(LinkTokenInterface)12": {"encoding": "inplace"},
    "t_contract(VRFCoordinatorV2Interface)7": {"encoding": "inplace"},
    "t_array(t_uint256)dyn_storage": {"encoding": "dynamic_array", "base": "t_uint256"},
    "t_struct(RequestStatus)40_storage": {"encoding": "inplace"},
    "t_mapping(t_uint256,t_struct(RequestStatus)40_storage)": {"encoding": "mapping", "key": "t_uint256",
                                                              "value": "t_struct(RequestStatus)40_storage"},
    "t_mapping(t_uint256,t_string_storage)": {"encoding": "mapping", "key": "t_uint256", "value": "t_string_storage"},
    "t_mapping(t_uint256,t_address)": {"encoding": "mapping", "key": "t_uint256", "value": "t_address"},
    "t_string_storage": {"encoding": "bytes"},
}


def _var(label: str, slot: int, type_: str, offset: int = 0) -> dict:
    return {"label": label, "slot": str(slot), "offset": offset, "type": type_}


def _touched(layout: list[dict], written: set[str], depth: dict[str, int] | None = None) -> list[dict]:
    """What touched_variables returns: every variable, in layout (first-access) order."""
    return [{**v, "read": True, "written": v["label"] in written, "depth": (depth or {}).get(v["label"], 0)}
            for v in layout]


def test_shape_reads_what_the_code_says_of_a_name():
    s = BD.shape_of("v2", "function f(uint96 a) external { if (v2 == 0) { v2 = c.create(); } t.send(abi.encode(v2)); }")
    assert (s.numeric, s.members, s.written, s.want) == (True, False, True, "")
    assert BD.shape_of("v0", "function f(address u) external returns (bool) { return v0.contains(u); }").members
    assert BD.shape_of("v1", "function f() external { RequestConfig memory rc = v1; }").want == "RequestConfig"
    s = BD.shape_of("v0", "function tokenURI(uint256 id) public view returns (string) { return v0[id]; }")
    assert (s.depth, s.want) == (1, "string")
    s = BD.shape_of("v0", "function f(uint256 id) external { v0[id] = RequestStatus({paid: 1}); }")
    assert (s.depth, s.want, s.written) == (1, "RequestStatus", True)
    assert BD.shape_of("v2", "function f(uint256 x) external { v2.push(x); }").array
    assert BD.shape_of("v3", "function f(uint256 x) external { uint64 id = v3; }").want == "uint64"
    # SafeMath's `total.add(x)` says nothing of members: total is a number
    s = BD.shape_of("t", "function f(uint256 a) external { t = t.add(a); }")
    assert not s.members and s.written


def test_a_packed_number_and_a_contract_in_one_slot_bind_by_use():
    # VRFConsumerV2: LINKTOKEN (slot 3, offset 0) and s_subId (slot 3, offset 20) share a slot the function writes;
    # `v2 == 0` is a number, `v1.transferAndCall(...)` a contract (first access order bound v2 to LINKTOKEN)
    layout = [_var("COORDINATOR", 2, "t_contract(VRFCoordinatorV2Interface)7"),
              _var("LINKTOKEN", 3, "t_contract(LinkTokenInterface)12"), _var("s_subId", 3, "t_uint64", 20)]
    o = B.Original(b"", {}, layout, _TYPES, {}, {}, {}, {}, set())
    text = ("function createSubscriptionAndFund(uint96 p0) external { if (v2 == 0) { v2 = v0.createSubscription(); "
            "v0.addConsumer(v2, address(this)); } v1.transferAndCall(address(v0), p0, abi.encode(v2)); }")
    renames, notes, unbound = BD.bind(["v2", "v0", "v1"], text, o, _touched(layout, {"LINKTOKEN", "s_subId"}),
                                     set(), set())
    assert not unbound and renames == {"v2": "s_subId", "v0": "COORDINATOR", "v1": "LINKTOKEN"}, notes


def test_an_array_and_a_mapping_of_structs_bind_by_push_and_by_the_struct_assigned():
    # VRFv2Consumer.requestRandomWords: `v0[id] = RequestStatus({...})` is the mapping of structs (its accesses
    # reach depth 2, through the struct's array), `v2.push(id)` the array (both were bound the other way round)
    layout = [_var("s_requests", 2, "t_mapping(t_uint256,t_struct(RequestStatus)40_storage)"),
              _var("requestIds", 4, "t_array(t_uint256)dyn_storage"), _var("lastRequestId", 5, "t_uint256")]
    o = B.Original(b"", {}, layout, _TYPES, {}, {}, {}, {"RequestStatus"}, set())
    text = ("function requestRandomWords(uint32 p3) external returns (uint256 p5) { p5 = 7; "
            "v0[p5] = RequestStatus({randomWords: new uint256[](0), exists: true}); v2.push(p5); v3 = p5; }")
    touched = _touched(layout, {"s_requests", "requestIds", "lastRequestId"},
                       {"s_requests": 2, "requestIds": 1})
    renames, notes, unbound = BD.bind(["v0", "v2", "v3"], text, o, touched, set(), set())
    assert not unbound and renames == {"v0": "s_requests", "v2": "requestIds", "v3": "lastRequestId"}, notes


def test_a_returned_element_binds_the_mapping_of_its_type():
    # ERC721Token.tokenURI: `return v0[id];` returning a string is tokenURIs, not tokenOwner (read first)
    layout = [_var("tokenOwner", 1, "t_mapping(t_uint256,t_address)"),
              _var("tokenURIs", 9, "t_mapping(t_uint256,t_string_storage)")]
    o = B.Original(b"", {}, layout, _TYPES, {}, {}, {}, {}, set())
    text = "function tokenURI(uint256 p0) public view returns (string) { require(ok(p0)); return v0[p0]; }"
    renames, notes, unbound = BD.bind(["v0"], text, o, _touched(layout, set(), {"tokenOwner": 1, "tokenURIs": 1}),
                                     set(), set())
    assert not unbound and renames == {"v0": "tokenURIs"}, notes


def test_a_variable_only_read_that_a_callee_names_yields_to_one_it_does_not():
    # UpkeepPerformCounterRestrictive.performUpkeep: eligible() reads testRange before the function reads
    # averageEligibilityCadence; `v2 * 2` is the cadence
    layout = [_var("testRange", 2, "t_uint256"), _var("averageEligibilityCadence", 3, "t_uint256")]
    o = B.Original(b"", {}, layout, _TYPES, {}, {}, {}, {}, set())
    text = "function performUpkeep(bytes calldata) external { require(eligible()); next = 1 + (7 % (v2 * 2)); }"
    callees = "function eligible() public view returns (bool) { return block.number - initialCall < testRange; }"
    renames, notes, unbound = BD.bind(["v2"], text, o, _touched(layout, set()), set(), set(), callees)
    assert not unbound and renames == {"v2": "averageEligibilityCadence"}, notes


_SIGS = {"acceptOwnership": ((), ()), "_validateOwnership": ((), ()), "_subscribe": ((), ("uint256",)),
         "allowance": (("address", "address"), ("uint256",)), "transfer": (("address", "uint256"), ("bool",)),
         "_msgSender": ((), ("address",)), "totalSupply": ((), ("uint256",)),
         "_getRouter": ((), ("contract IFunctionsRouter",)), "getAdminFee": ((), ("uint72",)),
         "_checkRole": (("bytes32", "address"), ()), "_revokeRole": (("bytes32", "address"), ("bool",))}


def _original(names: list[str], external: set[str] = frozenset()) -> B.Original:
    sigs = {f: _SIGS[f] for f in names}
    return B.Original(b"", {}, [], {}, {}, {f: len(p) for f, (p, _) in sigs.items()}, {}, {}, set(),
                      returning={f for f, (_, r) in sigs.items() if r}, signatures=sigs, external=set(external))


def test_a_statement_call_binds_the_reached_function_whose_result_it_ignores():
    # VRFV2PlusConsumerExample: `f0();` is _subscribe(), which the original reaches and which returns the
    # subscription id; acceptOwnership is external (a bare call cannot name it) and _validateOwnership unreached
    o = _original(["acceptOwnership", "_validateOwnership", "_subscribe"], external={"acceptOwnership"})
    text = "function createSubscriptionAndFundNative() external payable { f0(); v0.fund{value: msg.value}(v1); }"
    callees = "function _subscribe() internal returns (uint256) { return 1; }"
    renames, notes, unbound = BD.bind(["f0"], text, o, [], set(), set(), callees)
    assert not unbound and renames == {"f0": "_subscribe"}, notes


def test_a_reached_function_returning_what_the_statement_ignores_stays_an_alternative():
    # TimelockController.revokeRole: `f1(role, account);` bound _checkRole (the modifier's, reached first);
    # _revokeRole returns a bool the statement ignores: it must remain an alternative for the behaviour to choose
    o = _original(["_checkRole", "_revokeRole"])
    text = "function revokeRole(bytes32 p0, address p1) public onlyRole(p0) { f1(p0, p1); }"
    callees = ("modifier onlyRole(bytes32 role) { _checkRole(role, msg.sender); _; }\n"
               "function _checkRole(bytes32 role, address a) internal view {}\n"
               "function _revokeRole(bytes32 role, address a) internal returns (bool) {}")
    alts: dict = {}
    renames, notes, unbound = BD.bind(["f1"], text, o, [], set(), set(), callees, alternatives=alts)
    assert renames == {"f1": "_checkRole"} and alts == {"f1": ["_revokeRole"]}, (notes, alts)


def test_a_call_whose_result_has_members_binds_a_function_returning_a_contract():
    # FunctionsCoordinator.estimateCost: `f0().isValidCallbackGasLimit(...)` is _getRouter(), not getAdminFee()
    o = _original(["getAdminFee", "_getRouter"])
    text = "function estimateCost(uint64 p0, uint32 p2) external view { f0().isValidCallbackGasLimit(p0, p2); }"
    callees = "function getAdminFee() public view returns (uint72) {}\nfunction _getRouter() internal view {}"
    renames, notes, unbound = BD.bind(["f0"], text, o, [], set(), set(), callees)
    assert not unbound and renames == {"f0": "_getRouter"}, notes


def test_words_of_a_string_are_not_names_the_code_uses():
    # ERC20Burnable.burnFrom: "ERC20: burn amount exceeds allowance" kept allowance() out of the candidates, and
    # SafeMath's `.sub(` on the call's result says it returns a uint256
    o = _original(["allowance", "transfer", "_msgSender", "totalSupply"])
    text = ('function burnFrom(address p0, uint256 p1) public { uint256 d = f1(p0, f0()).sub(p1, '
            '"ERC20: burn amount exceeds allowance"); }')
    renames, notes, unbound = BD.bind(["f1", "f0"], text, o, [], set(), set())
    assert not unbound and renames == {"f1": "allowance", "f0": "_msgSender"}, notes


def test_mutants_never_write_a_variable_the_function_cannot_name():
    # MultiWordConsumer writes `ensNode`, private in its base ChainlinkClient: the mutant did not compile as
    # written, binding gave the write back to the variable the original writes, and it passed as equivalent
    layout = [_var("ensNode", 1, "t_bytes32"), _var("first", 8, "t_bytes32"), _var("second", 9, "t_bytes32")]
    private = {("src/ChainlinkClient.sol:ChainlinkClient", "ensNode"), ("src/Consumer.sol:Consumer", "secret")}
    hidden = C.invisible_variables(private, "Consumer")
    assert hidden == {"ensNode"}
    text = "function fulfill(bytes32 a, bytes32 b) public { first = a; second = b; }"
    kinds = dict(C.mutants(text, layout))
    assert "ensNode = a" in kinds["write_other_variable"]
    assert "write_other_variable" not in dict(C.mutants(text, layout, hidden))


def test_a_candidate_never_delegates_to_the_original_it_stands_for():
    # the unit keeps the original function beside the candidate: `function initialize() { _init(); }` with _init
    # bound to initialize, or a body calling its own name, ran the original and came out `equivalent`
    o = _original(["acceptOwnership", "_validateOwnership"])
    text = "function tacsol_candidate() external { f0(); }"
    renames, notes, unbound = BD.bind(["f0"], text, o, [], set(), set(), itself=("acceptOwnership", 0))
    assert renames == {"f0": "_validateOwnership"}, notes
    assert BD.bind(["f0"], text, o, [], set(), set(), itself=("_validateOwnership", 0))[0] == \
        {"f0": "acceptOwnership"}
    # a call of its own name with its own arity is recursion: it calls the candidate; another overload stays
    cand, why = B.candidate_function(
        "function mint(address to, uint256 n) public { if (n > 1) { mint(to, n - 1); } mint(to); }", o)
    assert why == "" and "tacsol_candidate(to, n - 1)" in cand and "mint(to);" in cand, cand
    # Coordinator's getId(bytes) calls its overload getId(ServiceAgreement): solc tells them apart, so it stays
    o = B.Original(b"", {}, [], {}, {}, {"getId": 1}, {}, {}, {"ServiceAgreement"},
                   overloads={"getId": [(("bytes",), ("bytes32",)), (("struct ServiceAgreement",), ("bytes32",))]})
    cand, _ = B.candidate_function("function getId(bytes memory d) public pure returns (bytes32) { "
                                   "ServiceAgreement memory a = decode(d); return getId(a); }", o)
    assert "return getId(a);" in cand, cand


def test_an_external_self_call_recurses_too():
    assert B._calls_renamed("{ this.f(a); x.f(b); f(c); f(d, e); }", "f", 1, "C") == "{ this.C(a); x.f(b); C(c); f(d, e); }"
