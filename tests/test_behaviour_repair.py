"""Type-only repairs (evaluate.repair, behaviour stage 3b): a candidate that fails to compile only on a difference
of type the bytecode cannot show is compiled again, repaired, and says so; any other error is left alone."""
import pytest

from tacsol.evaluate import behaviour as B
from tacsol.evaluate import binding as BD
from tacsol.evaluate.repair import NOTE, apply_repairs, repairs_for


def _err(kind, message, file="A.sol", at=None, sources=None):
    e = {"type": kind, "message": message, "severity": "error"}
    if at is not None:
        start = sources[file].index(at)
        e["sourceLocation"] = {"file": file, "start": start, "end": start + len(at)}
    return e


def test_a_contract_returned_as_an_address_is_converted_and_an_integer_is_not():
    cand = "function tacsol_candidate() public view returns (address) { return _token; }"
    srcs = {"A.sol": "contract A { IERC20 _token; " + cand + " }"}
    out = {"errors": [_err("TypeError", "Return argument type contract IERC20 is not implicitly convertible to "
                           "expected type (type of first return variable) address.", at="_token;", sources=srcs)]}
    out["errors"][0]["sourceLocation"]["end"] -= 1   # the expression, without its semicolon
    fixes = repairs_for(out, srcs, cand, set())
    assert fixes and apply_repairs(cand, fixes).endswith("{ return address(_token); }")
    assert fixes[0].note.startswith(NOTE)
    # the reverse: an address where the function returns a contract type
    cand2 = "function tacsol_candidate() public view returns (IERC20) { return token; }"
    srcs2 = {"A.sol": "contract A { address token; " + cand2 + " }"}
    out2 = {"errors": [_err("TypeError", "Return argument type address is not implicitly convertible to expected "
                            "type (type of first return variable) contract IERC20.", at="token", sources=srcs2)]}
    out2["errors"][0]["sourceLocation"]["start"] = srcs2["A.sol"].index("token; }")
    out2["errors"][0]["sourceLocation"]["end"] = out2["errors"][0]["sourceLocation"]["start"] + 5
    assert apply_repairs(cand2, repairs_for(out2, srcs2, cand2, set())).endswith("{ return IERC20(token); }")
    # an integer returned as an address is a real difference (a conversion with a mask), never repaired
    bad = {"errors": [_err("TypeError", "Return argument type uint256 is not implicitly convertible to expected "
                           "type (type of first return variable) address.", at="_token", sources=srcs)]}
    assert repairs_for(bad, srcs, cand, set()) is None


def test_every_error_must_be_repairable_and_a_repair_must_change_the_text():
    cand = "function tacsol_candidate() public view returns (address payable) { return owner; }"
    srcs = {"A.sol": "contract A { address owner; " + cand + " }"}
    parse = _err("ParserError", "Expected ',' but got 'payable'")
    fixes = repairs_for({"errors": [parse]}, srcs, cand, set())
    assert apply_repairs(cand, fixes) == "function tacsol_candidate() public view returns (address) { return owner; }"
    other = _err("TypeError", "Wrong argument count for function call: 1 arguments given but expected 2.")
    assert repairs_for({"errors": [parse, other]}, srcs, cand, set()) is None
    assert repairs_for({"errors": [parse]}, srcs, "function f() public { }", set()) is None   # nothing to rewrite


def test_a_getter_call_on_a_public_state_variable_reads_it():
    cand = ("function tacsol_candidate(address a) public { require(state() == State.Active, \"x\"); "
            "deposits(a); }")
    srcs = {"A.sol": "contract A { " + cand + " }"}
    call = _err("TypeError", "Type is not callable", at="state()", sources=srcs)
    fixes = repairs_for({"errors": [call]}, srcs, cand, {"state", "deposits"})
    assert "require(state == State.Active" in apply_repairs(cand, fixes)
    mapping = _err("TypeError", "Type is not callable", at="deposits(a)", sources=srcs)
    assert "deposits[a];" in apply_repairs(cand, repairs_for({"errors": [mapping]}, srcs, cand, {"state", "deposits"}))
    assert repairs_for({"errors": [call]}, srcs, cand, {"deposits"}) is None   # not a state variable: not ours


# compiled by solc 0.8.20: a contract-typed variable, a public state variable read by its getter's syntax, and a
# function whose name a generated `uint256 public rate;` would take
UNIT = """pragma solidity ^0.8.0;
interface IERC20 { function balanceOf(address) external view returns (uint256); }
interface ITyped { function typeAndVersion() external pure returns (string memory); }
contract Vault is ITyped {
    string public constant override typeAndVersion = "Vault 1.0.0";
    enum State { Active, Closed }
    State public state;      // a slot of its own (packed beside the address, the binder may pick either)
    uint256 private _rate;
    IERC20 private _token;
    constructor(IERC20 t) { _token = t; _rate = 5; }
    function token() public view returns (IERC20) {
        return _token;
    }
    function close() public {
        require(state == State.Active);
        state = State.Closed;
    }
    function rate() public view returns (uint256) {
        return _rate;
    }
}
"""


class _Units:
    """One unit for every record (the harness reads units through corpus.RecordUnits otherwise)."""

    def sources(self, rec):
        return "Vault.sol", {"Vault.sol": UNIT}

    def main_of(self, rec):
        return "Vault.sol"


def _record(signature, reference):
    from tacsol import evm

    return {"package": "test-repair", "file": "Vault.sol", "contract": "Vault", "solc_version": "0.8.20",
            "settings": "0.8.20/noopt", "signature": signature, "selector": evm.selector(signature),
            "solidity": reference, "mutability": "", "tac": "", "context": ""}


@pytest.fixture(scope="module")
def repaired_results(tmp_path_factory):
    h = B.Harness(units=_Units(), workers=1)
    h.trace_dir = tmp_path_factory.mktemp("traces")
    recs = [_record("token()", "function token() public view returns (IERC20) {\n        return _token;\n    }"),
            _record("close()", "function close() public {\n        require(state == State.Active);\n"
                               "        state = State.Closed;\n    }"),
            _record("rate()", "function rate() public view returns (uint256) {\n        return _rate;\n    }"),
            _record("rate()", "function rate() public view returns (uint256) {\n        return _rate;\n    }"),
            _record("typeAndVersion()", 'string public constant override typeAndVersion = "Vault 1.0.0";')]
    texts = ["function token() public view virtual returns (address) { return _token; }",
             "function close() public { require(state() == State.Active); state = State.Closed; }",
             "uint256 public rate;",
             "function rate() public view returns (address) { return _rate; }",   # uint256 as address: not ours
             'string public constant typeAndVersion = "Vault 1.0.0";']   # a public constant the interface names
    return h.check_many(recs, texts)


def test_candidates_differing_only_in_type_are_repaired_compiled_and_equivalent(repaired_results):
    token, close, rate, wrong, constant = repaired_results
    assert token.status == "equivalent", (token.reason, token.detail)
    assert any("return address(_token)" in b for b in token.bindings), token.bindings
    assert close.status == "equivalent", (close.reason, close.detail)
    assert any(b.startswith(NOTE) and "state() -> state" in b for b in close.bindings), close.bindings
    assert rate.status == "equivalent", (rate.reason, rate.detail)
    assert any(b.startswith(NOTE + "rate -> rate_var") for b in rate.bindings), rate.bindings
    assert any(b.startswith("rate_var -> _rate") for b in rate.bindings), rate.bindings   # then bound by slot
    assert wrong.status == "untestable" and wrong.reason == "did_not_compile", wrong
    # a getter whose name an interface declares as a function reads its own constant: nothing to repair
    assert constant.status == "equivalent" and not constant.bindings, (constant.reason, constant.detail)
    s = B.summarize(repaired_results)
    assert s["repaired"] == 3 and s["equivalent"] == 4


def test_a_public_constant_returns_its_value_and_is_never_bound_to_state(tmp_path):
    # the embedded model's favourite wrong answer for a plain getter: a role constant of another name. Read as a
    # variable it was bound to the original's `_rate` and called equivalent (13 candidates of the reference pools)
    h = B.Harness(units=_Units(), workers=1)
    h.trace_dir = tmp_path
    rec = _record("rate()", "function rate() public view returns (uint256) {\n        return _rate;\n    }")
    role, fee, variable = h.check_many([rec] * 3, [
        'uint256 public constant CANCELLER_ROLE = keccak256("CANCELLER_ROLE");', "uint256 public constant FEE = 30;",
        "uint256 public current;"])
    assert role.reason == "did_not_compile" and "bytes32" in role.detail   # what solc says of it as a constant
    assert fee.status == "differs" and not fee.bindings, (fee.reason, fee.detail, fee.bindings)
    assert variable.status == "equivalent" and any(b.startswith("current -> _rate") for b in variable.bindings)


def test_a_declaration_solc_could_not_see_is_not_chosen_again_and_super_is_never_bound():
    layout = [{"label": "_hiddenA", "slot": "0", "offset": 0, "type": "t_bool"},
              {"label": "_hiddenB", "slot": "0", "offset": 1, "type": "t_bool"},
              {"label": "flag", "slot": "1", "offset": 0, "type": "t_bool"}]
    o = B.Original(b"", {}, layout, {"t_bool": {"encoding": "inplace"}}, {}, {}, {}, {}, set())
    text = "function f() public view returns (bool) { return _escrow; }"
    # the rounds once went _escrow -> _hiddenA -> _hiddenB -> _hiddenA ...: each undeclared where the candidate is
    renames, _, unbound = BD.bind(["_escrow"], text, o, [], set(), set(), invisible={"_hiddenA", "_hiddenB"})
    assert not unbound and renames == {"_escrow": "flag"}
    assert BD.bind(["super"], "function f() public { super.f(); }", o, [], set(), set())[2] == "super"


def test_a_summary_counts_the_functions_that_compiled_only_through_a_repair():
    import pandas as pd

    from tacsol.evaluate.aggregate import behaviour_summary

    df = pd.DataFrame({"id": ["a", "b", "c"], "behaviour": ["equivalent", "differs", "equivalent"],
                       "behaviour_reason": ["", "", ""], "behaviour_detail": ["", "case 1 ...", ""],
                       "behaviour_bindings": [NOTE + "return address(_token) (...)", NOTE + "state() -> state (...)",
                                              "_x -> x (variable, ...)"]})
    s = behaviour_summary(df)
    assert (s["repaired"], s["repaired_equivalent"], s["binding_needed"], s["equivalent"]) == (2, 1, 3, 2)


# a struct whose first member is a mapping at the struct's own slot, and a dynamic array whose length is the word
# at its slot: two layouts an answer may read under another type with the same bytecode
ROLES_UNIT = """pragma solidity ^0.8.0;
contract Roles {
    struct RoleData { mapping(address => bool) members; bytes32 adminRole; }
    mapping(bytes32 => RoleData) private _roles;
    uint256[] private _allTokens;
    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _roles[role].members[account];
    }
    function getRoleAdmin(bytes32 role) public view returns (bytes32) {
        return _roles[role].adminRole;
    }
    function totalSupply() public view returns (uint256) {
        return _allTokens.length;
    }
    function grant(bytes32 role, address account) public {
        _roles[role].members[account] = true;
        _allTokens.push(uint256(role));
    }
}
"""


class _RolesUnits:
    def sources(self, rec):
        return "Roles.sol", {"Roles.sol": ROLES_UNIT}

    def main_of(self, rec):
        return "Roles.sol"


def test_a_struct_first_mapping_and_an_array_length_read_as_other_types_are_repaired(tmp_path):
    h = B.Harness(units=_RolesUnits(), workers=1)
    h.trace_dir = tmp_path
    recs = [dict(_record("hasRole(bytes32,address)", "function hasRole(bytes32 role, address account) public view "
                         "returns (bool) {\n        return _roles[role].members[account];\n    }"),
                 file="Roles.sol", contract="Roles"),
            dict(_record("totalSupply()", "function totalSupply() public view returns (uint256) {\n"
                         "        return _allTokens.length;\n    }"), file="Roles.sol", contract="Roles"),
            dict(_record("getRoleAdmin(bytes32)", "function getRoleAdmin(bytes32 role) public view returns (bytes32) "
                         "{\n        return _roles[role].adminRole;\n    }"), file="Roles.sol", contract="Roles")]
    texts = ["function hasRole(bytes32 role, address operator) public view returns (bool) {\n"
             "        return _roles[role][operator];\n    }",
             "function totalSupply() public view returns (uint256) { return _totalSupply; }",
             # the second member is not at the struct's slot: indexing the struct is a real difference
             "function getRoleAdmin(bytes32 role) public view returns (bytes32) { return _roles[role][0]; }"]
    has_role, total, admin = h.check_many(recs, texts)
    assert has_role.status == "equivalent", (has_role.reason, has_role.detail, has_role.bindings)
    assert any(b.startswith(NOTE) and ".members[" in b for b in has_role.bindings), has_role.bindings
    assert total.status == "equivalent", (total.reason, total.detail, total.bindings)
    assert any(b.startswith(NOTE + "return _allTokens.length") for b in total.bindings), total.bindings
    assert admin.status != "equivalent", (admin.status, admin.bindings)


def test_the_struct_and_array_repairs_need_the_layout_that_makes_them_the_same_word():
    types = {"t_struct(R)1_storage": {"label": "struct A.R", "encoding": "inplace", "members": [
                 {"label": "admin", "slot": "0", "offset": 0, "type": "t_bytes32"},
                 {"label": "members", "slot": "1", "offset": 0, "type": "t_mapping(t_address,t_bool)"}]},
             "t_mapping(t_address,t_bool)": {"encoding": "mapping"}, "t_bytes32": {"encoding": "inplace"}}
    cand = "function f(bytes32 r, address a) public view returns (bool) { return _roles[r][a]; }"
    srcs = {"A.sol": "contract A { " + cand + " }"}
    e = _err("TypeError", "Indexed expression has to be a type, mapping or array (is struct A.R storage ref)",
             at="_roles[r]", sources=srcs)
    assert repairs_for({"errors": [e]}, srcs, cand, set(), types) is None   # the mapping is not the first member
    types["t_struct(R)1_storage"]["members"].reverse()
    types["t_struct(R)1_storage"]["members"][0]["slot"] = "0"
    assert "_roles[r].members[a]" in apply_repairs(cand, repairs_for({"errors": [e]}, srcs, cand, set(), types))
    ret = "function f() public view returns (uint8) { return _all; }"
    srcs = {"A.sol": "contract A { " + ret + " }"}
    narrow = _err("TypeError", "Return argument type uint256[] storage ref is not implicitly convertible to expected "
                  "type (type of first return variable) uint8.", at="_all", sources=srcs)
    assert repairs_for({"errors": [narrow]}, srcs, ret, set()) is None   # uint8 would mask the length
    text = _err("TypeError", "Return argument type string storage ref is not implicitly convertible to expected "
                "type (type of first return variable) uint256.", at="_all", sources=srcs)
    assert repairs_for({"errors": [text]}, srcs, ret.replace("uint8", "uint256"), set()) is None


def test_a_missing_or_other_data_location_takes_the_one_solc_names():
    def at(src, text):
        s = src.index(text)
        return {"file": "A.sol", "start": s, "end": s + len(text)}

    cand = "function f(string tokenId) public returns (string) { string memory s = tokenId; return s; }"
    srcs = {"A.sol": "contract A { " + cand + " }"}
    param = {"type": "TypeError", "sourceLocation": at(srcs["A.sol"], "string tokenId"),
             "message": 'Data location must be "memory" or "calldata" for parameter in function, but none was given.'}
    ret = {"type": "TypeError", "sourceLocation": at(srcs["A.sol"], "string) {"),
           "message": 'Data location must be "memory" or "calldata" for return parameter in function, but none was '
                      'given.'}
    ret["sourceLocation"]["end"] = ret["sourceLocation"]["start"] + len("string")
    fixed = apply_repairs(cand, repairs_for({"errors": [param, ret]}, srcs, cand, set()))
    assert fixed == ("function f(string memory tokenId) public returns (string memory) { string memory s = tokenId; "
                     "return s; }")
    ext = "function g(bytes memory context) external { }"
    srcs = {"A.sol": "contract A { " + ext + " }"}
    e = {"type": "TypeError", "sourceLocation": at(srcs["A.sol"], "bytes memory context"),
         "message": 'Data location must be "calldata" for parameter in external function, but "memory" was given.'}
    assert apply_repairs(ext, repairs_for({"errors": [e]}, srcs, ext, set())) == \
        "function g(bytes calldata context) external { }"
    local = {"type": "TypeError", "sourceLocation": at(srcs["A.sol"], "bytes memory context"),
             "message": 'Data location must be "storage", "memory" or "calldata" for variable, but none was given.'}
    assert repairs_for({"errors": [local]}, srcs, ext, set()) is None   # a local's location is not ours to choose
