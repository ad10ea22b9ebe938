"""Behavioural equivalence (tacsol.evaluate.behaviour): ABI encoding, traced execution in py-evm, and the three
controls on the shipped sample (its test units ship in lib/tacsol/data/sample/units.json.gz, so no download)."""
from __future__ import annotations

import time

import pytest

from tacsol import pairs
from tacsol.evaluate import abi, behaviour as B, compile_bytecode, controls as C
from tacsol.evaluate import binding as BD, cases as CS, trace as TR
from tacsol.evaluate.execution import BLOCK, execute

TOY = """pragma solidity 0.8.20;
contract Toy {
    address owner;
    mapping(address => uint256) bal;
    event Credited(address indexed who, uint256 amount);
    function credit(address who, uint256 amount) external returns (uint256) {
        require(msg.sender == owner, "not owner");
        bal[who] += amount;
        emit Credited(who, amount);
        return bal[who];
    }
    function spin() external pure { while (true) {} }
}"""
OWNER = bytes.fromhex("a1" * 20)


def test_abi_encoding_matches_the_spec_example():
    # the Solidity ABI spec's example: f(uint256,uint32[],bytes10,bytes) with (0x123, [0x456, 0x789], "1234567890",
    # "Hello, world!")
    _, types = abi.parse_signature("f(uint256,uint32[],bytes10,bytes)")
    enc = abi.encode_tuple(types, [0x123, [0x456, 0x789], b"1234567890", b"Hello, world!"])
    words = [enc[i:i + 32].hex() for i in range(0, len(enc), 32)]
    assert int(words[0], 16) == 0x123 and int(words[1], 16) == 0x80 and int(words[3], 16) == 0xE0
    assert words[2].startswith(b"1234567890".hex())
    assert int(words[4], 16) == 2 and int(words[5], 16) == 0x456 and int(words[6], 16) == 0x789
    assert int(words[7], 16) == 13 and words[8].startswith(b"Hello, world!".hex())
    assert abi.parse_type("(address,bytes)[2]").dynamic and not abi.parse_type("(address,uint8)[2]").dynamic


def _runtime(source: str, contract: str) -> tuple[bytes, dict]:
    """(runtime bytecode, selectors) of `contract` compiled by solc 0.8.20."""
    out = compile_bytecode(source, "0.8.20")[contract]
    return bytes.fromhex(out["bytecode"]), out["selectors"]


@pytest.fixture(scope="module")
def toy():
    return _runtime(TOY, "Toy")


def test_execution_records_storage_logs_and_mapping_preimages(toy):
    code, sel = toy
    _, types = abi.parse_signature("credit(address,uint256)")
    who = int.from_bytes(bytes.fromhex("b2" * 20), "big")
    data = abi.calldata(sel["credit(address,uint256)"], types, [who, 5])
    ok = execute(code, data, {0: int.from_bytes(OWNER, "big")}, caller=OWNER)
    assert ok.success and int.from_bytes(ok.output, "big") == 5
    (slot, value), = ok.writes.items()
    assert value == 5 and ok.preimages[slot] == ("mapping", 1, who)   # bal is slot 1, keyed by who
    assert len(ok.logs) == 1 and ok.logs[0][0][1] == who
    denied = execute(code, data, {0: 7}, caller=OWNER)
    assert not denied.success and CS._fmt_revert(denied.output) == 'Error("not owner")' and not denied.writes


def test_storage_is_a_pure_function_of_the_slot_applied_on_first_touch(toy):
    # no slot preloaded: the owner (slot 0) and the credited balance come from the default, so the guarded path is
    # reached in one run, and the write is reported against the seeded value, not against zero
    code, sel = toy
    _, types = abi.parse_signature("credit(address,uint256)")
    who = int.from_bytes(bytes.fromhex("b2" * 20), "big")
    owner = int.from_bytes(OWNER, "big")
    out = execute(code, abi.calldata(sel["credit(address,uint256)"], types, [who, 5]), {}, caller=OWNER,
                  storage_default=lambda slot, pre: owner if slot == 0 else 100)
    assert out.success and int.from_bytes(out.output, "big") == 105
    (slot, value), = out.writes.items()
    assert value == 105 and out.preimages[slot] == ("mapping", 1, who)
    # the harness's states: 0 is empty, 1 makes the first caller own every declared slot, 4 clears packed bools
    assert CS.seed_value(0, 0, 0) == 0 and CS.seed_value(0, 0, 1) == owner
    assert CS.seed_value(3, 0, 4, {3: [1]}) == owner & ~(0xFF << 8)
    assert 1 <= CS.seed_value(5, 0, 1, {5: ["array"]}) <= 3


def test_struct_members_of_mapping_entries_are_seeded_by_their_type():
    # mapping(uint64 => Sub) at slot 5, Sub {address owner; address[] consumers; bool paused}: an entry's array
    # length is small (a loop over it stays within gas) and its bool is clear in state 4, found via the preimage
    from types import SimpleNamespace

    types = {"t_mapping(t_uint64,t_struct(Sub)1_storage)": {"encoding": "mapping", "value": "t_struct(Sub)1_storage"},
             "t_struct(Sub)1_storage": {"encoding": "inplace", "members": [
                 {"label": "owner", "slot": "0", "offset": 0, "type": "t_address"},
                 {"label": "consumers", "slot": "1", "offset": 0, "type": "t_array(t_address)dyn_storage"},
                 {"label": "paused", "slot": "2", "offset": 0, "type": "t_bool"}]},
             "t_array(t_address)dyn_storage": {"encoding": "dynamic_array"}, "t_address": {"encoding": "inplace"},
             "t_bool": {"encoding": "inplace"}}
    orig = SimpleNamespace(layout=[{"label": "subs", "slot": "5", "offset": 0,
                                    "type": "t_mapping(t_uint64,t_struct(Sub)1_storage)"}], types=types)
    shapes = CS.slot_shapes(orig)
    entry = 2**255 + 12345
    pre = {entry: ("mapping", 5, 7)}
    owner = int.from_bytes(CS.CALLERS[0], "big")
    assert CS.seed_value(entry, 0, 4, shapes, pre) == owner                 # the owner member
    assert 1 <= CS.seed_value(entry + 1, 0, 4, shapes, pre) <= 3            # consumers.length
    assert CS.seed_value(entry + 2, 0, 4, shapes, pre) == owner & ~0xFF      # paused, cleared
    assert CS.seed_value(entry + 1, 0, 4, shapes, None) == owner             # without the preimage: unshaped


def test_candidate_selector_reads_as_the_original_where_it_is_forwarded():
    from tacsol.evaluate.execution import Outcome

    o = Outcome(True, b"\x12\x34\x56\x78rest", logs=[((1,), b"\x12\x34\x56\x78")],
                calls=[("call", b"t", 0, b"\x12\x34\x56\x78")])
    got = TR._as_if_called_by(o, "0x12345678", "0xa9059cbb")
    assert got.output.startswith(bytes.fromhex("a9059cbb")) and got.logs[0][1] == bytes.fromhex("a9059cbb")
    assert got.calls[0][3] == bytes.fromhex("a9059cbb") and o.output.startswith(b"\x12")   # the original kept
    assert CS.seed_code(bytes(19) + b"\x01", 1) is None              # precompiles keep no code
    assert CS.seed_code(CS.CALLERS[0], 1) is None                      # the owner stays an account
    assert CS.seed_code(bytes.fromhex("1820a4b7618bde71dce8cdc73aab6c95905fad24"), 3) is not None


GATE = """pragma solidity 0.8.20;
contract Gate {
    address admin;
    uint256 secret;
    mapping(bytes32 => uint256) timestamps;
    mapping(bytes32 => bytes32) commitments;
    function execute(bytes32 id, uint256 code, bytes calldata sig) external returns (uint256) {
        require(msg.sender == admin, "admin");
        require(code == secret, "code");
        require(sig.length == 65, "signature length");
        require(commitments[id] == keccak256(sig), "commitment");
        uint256 t = timestamps[id];
        require(t > 1 && t <= block.timestamp, "not ready");
        timestamps[id] = 1;
        return t;
    }
    function stub(uint256) external pure { revert("not supported"); }
}"""


@pytest.fixture(scope="module")
def gate():
    return _runtime(GATE, "Gate")


def test_state_search_reaches_a_guarded_success_path(gate):
    # no fixed case passes the guards (a stored code, a 65-byte signature, a hash and a timestamp in mapping entries);
    # the search sets the inputs the comparisons read to their other operands until the function returns
    code, sel = gate
    sig = "execute(bytes32,uint256,bytes)"
    _, types = abi.parse_signature(sig)
    cases = CS.make_cases(types, False, 0)
    t = TR.trace_original(code, sel[sig], types, cases, seed=0, shapes={}, search=False)
    assert not any(o.success for o in t.outcomes) and t.searched == 0
    t = TR.trace_original(code, sel[sig], types, cases, seed=0, shapes={})
    found = [(c, o) for c, o in zip(t.cases, t.outcomes) if o.success]
    by_search = [c for c in t.cases[len(cases):] if not c.found.startswith(TR.BRANCH_NOTE)]
    assert found and 0 < t.searched <= TR.SEARCH_RUNS and len(by_search) == sum(1 for c, _ in found
                                                                               if not c.found.startswith(TR.BRANCH_NOTE))
    c, o = found[0]
    assert len(c.args[2]) == 65 and "arg 2 length" in c.found and c.storage   # a length and a stored hash were set
    assert 1 < int.from_bytes(o.output, "big") <= BLOCK["timestamp"]
    # the found cases are run again from their explicit slots: the same outcome, so both sides can be compared
    again = TR._run(code, sel[sig], types, c, 0, {}, time.thread_time() + 5)
    assert again.success and again.output == o.output and again.writes == o.writes



def test_search_points_an_address_without_code_at_a_deployed_contract_and_a_hooked_recipient_at_an_account():
    # solc reverts before calling an address without code: a registry kept in a slot that holds the owner (state
    # 1) or nothing (state 0) stopped every run there; a recipient argument with code must answer a hook the
    # responders do not (ERC-721's onERC721Received)
    from tacsol.evaluate.execution import Outcome

    owner, responder = (int.from_bytes(c, "big") for c in CS.CALLERS[:2])
    deployed, eoa = int.from_bytes(TR.DEPLOYED, "big"), int.from_bytes(CS.CALLERS[3], "big")
    _, types = abi.parse_signature("f(address)")
    case = CS.Case([responder], CS.CALLERS[0], 0, 1)
    out = Outcome(False, b"", probed=[CS.CALLERS[0], CS.CALLERS[1]], read_values={5: owner, 6: 9})
    got = {c.found: c for c in TR._proposals(case, out, types, False)}
    assert got["slot 0x5 = a deployed contract"].storage == {5: deployed}
    assert got["arg 0 = an account without code"].args == [eoa]
    assert TR._has_code(TR.DEPLOYED, case) and not TR._has_code(CS.CALLERS[3], case)
    # a fresh state: the address read is zero; the latest zero-valued slots read are the candidates
    case0 = CS.Case([eoa], CS.CALLERS[0], 0, 0)
    out0 = Outcome(False, b"", probed=[bytes(20)], read_values={3: 0, 4: 0, 9: 7, 11: 0})
    slots = [c.storage for c in TR._proposals(case0, out0, types, False) if "deployed" in c.found]
    assert slots == [{11: deployed}, {4: deployed}]   # _ZERO_SLOTS, latest read first


def test_search_reads_a_loop_condition_once_and_sets_a_zero_flag_the_require_tested():
    # AccessControl's revert message is built in a loop (`i < 40`, one comparison per character) after the role
    # check (ISZERO of a membership slot that is zero in the fresh state). Every iteration's comparison made its
    # own proposals and crowded out the role check's; a loop's condition now counts once, at its last test
    from tacsol.evaluate.execution import Outcome

    _, types = abi.parse_signature("f(uint256)")
    case = CS.Case([40], CS.CALLERS[0], 0, 0)
    cmps = [("ISZERO", 0, 0)] + [("LT", i, 40) for i in range(40)]
    out = Outcome(False, b"", read_values={2: 5, 7: 0}, cmps=cmps, cmp_jumps=[10] + [20] * 40)
    got = [c.found for c in TR._proposals(case, out, types, False)]
    assert "slot 0x7 = 0x1" in got and len(got) <= 2 * TR._PER_PARENT
    assert sum(f.startswith("arg 0 = ") for f in got) == 3      # the loop's last test: 40 -> 39, 40, 38
    # a zero slot is set only for an ISZERO: an EQ or LT with zero would propose every slot of a fresh state
    eq = Outcome(False, b"", read_values={7: 0}, cmps=[("EQ", 0, 5)], cmp_jumps=[10])
    assert not any(f.startswith("slot") for f in (c.found for c in TR._proposals(case, eq, types, False)))


def test_search_sets_the_leading_bytes_of_a_bytes_argument_a_comparison_read():
    # a LINK token's transferAndCall payload must start with a whitelisted selector: `bytes4 f := mload(add(data,
    # 32))` reads the first word, and solc compares its top 4 bytes with the selector's
    from tacsol.evaluate.execution import Outcome

    _, types = abi.parse_signature("onTokenTransfer(address,uint256,bytes)")
    data = b"\x01" * 0x44
    case = CS.Case([0, 1, data], CS.CALLERS[1], 0, 2)
    head = int.from_bytes(data[:4], "big") << 224
    out = Outcome(False, b"", cmps=[("EQ", head, 0x40429946 << 224)], cmp_jumps=[7])
    got = {c.found: c for c in TR._proposals(case, out, types, False)}
    child = got["arg 2[:4] = " + hex(0x40429946 << 224)[:20]]
    assert child.args[2] == bytes.fromhex("40429946") + data[4:] and len(child.args[2]) == 0x44
    assert not any("[:32]" in f for f in got)   # the comparison read the 4-byte head, not the whole word

CAPPED_TEMPLATE = """
contract NAME {
    uint256 total;
    event Jackpot(address who);
    function add(uint256 v) external returns (uint256) {
        if (v == JACKPOT) { emit Jackpot(msg.sender); total += 2; } else { total += v % 1000; }
        return total;
    }
}"""
CAPPED = "pragma solidity 0.8.20;" + "".join(CAPPED_TEMPLATE.replace("NAME", n).replace("JACKPOT", k)
                                             for n, k in (("Capped", "777"), ("Mutant", "778")))


NAMED = """pragma solidity 0.8.20;
contract Named {
    string _name;
    string _symbol;
    function name() external view returns (string memory) { return _name; }
}
contract OtherString {
    string _name;
    string _symbol;
    function name() external view returns (string memory) { return _symbol; }
}"""


def test_a_getter_returning_another_string_variable_differs():
    # every string slot once held the same seeded text, so returning `_symbol` for `_name` passed every case
    out = compile_bytecode(NAMED, "0.8.20")
    code, other = bytes.fromhex(out["Named"]["bytecode"]), bytes.fromhex(out["OtherString"]["bytecode"])
    sel = out["Named"]["selectors"]["name()"]
    shapes = {0: ["bytes"], 1: ["bytes"]}
    assert CS.seed_value(0, 0, 1, shapes) != CS.seed_value(1, 0, 1, shapes)
    t = TR.trace_original(code, sel, [], CS.make_cases([], False, 0), seed=0, shapes=shapes, search=False)
    assert sum(o.success for o in t.outcomes) >= 16
    status, detail, n = TR.compare_candidate(t, other, sel, [], seed=0)
    assert status == "differs" and n == 2 and "return data differ" in detail   # case 0: every slot zero
    assert TR.compare_candidate(t, code, sel, [], seed=0)[0] == "equivalent"


def test_branch_search_reaches_a_path_the_fixed_cases_miss():
    # no boundary or random value is 777: the fixed cases never take the jackpot branch, so a mutant of its
    # constant passes them; the branch search sets the argument to the compared value and the mutant differs
    out = compile_bytecode(CAPPED, "0.8.20")
    code, mutant = bytes.fromhex(out["Capped"]["bytecode"]), bytes.fromhex(out["Mutant"]["bytecode"])
    sel = out["Capped"]["selectors"]["add(uint256)"]
    _, types = abi.parse_signature("add(uint256)")
    cases = CS.make_cases(types, False, 0)
    fixed = TR.trace_original(code, sel, types, cases, seed=0, shapes={}, search=False)
    assert len(fixed.cases) == len(cases) and TR.compare_candidate(fixed, mutant, sel, types, seed=0)[0] == "equivalent"
    t = TR.trace_original(code, sel, types, cases, seed=0, shapes={})
    extra = t.cases[len(cases):]
    assert extra and all(c.found.startswith(TR.BRANCH_NOTE) for c in extra) and len(extra) <= TR.BRANCH_FOUND
    assert 0 < t.branch_runs <= TR.BRANCH_RUNS and any(c.args == [777] for c in extra)
    hit = next(o for c, o in zip(t.cases, t.outcomes) if c.args == [777])
    assert hit.success and len(hit.logs) == 1 and not hit.branches and not hit.cmp_jumps   # the search's data goes
    status, detail, _ = TR.compare_candidate(t, mutant, sel, types, seed=0)
    assert status == "differs" and "new branch" in detail and "777" in detail
    assert TR.compare_candidate(t, code, sel, types, seed=0)[0] == "equivalent"


DONE = """pragma solidity 0.8.20;
contract Timelock {
    mapping(bytes32 => uint256) private _timestamps;   // 1: done, as OpenZeppelin's TimelockController marks it
    string private _uri;
    function isOperation(bytes32 id) external view returns (bool) { return _timestamps[id] > 0; }
    function hasURI() external view returns (bool) { return bytes(_uri).length > 0; }
}
contract Mutant {
    mapping(bytes32 => uint256) private _timestamps;
    string private _uri;
    function isOperation(bytes32 id) external view returns (bool) { return _timestamps[id] > 1; }
    function hasURI() external view returns (bool) { return bytes(_uri).length > 1; }
}"""


def test_the_ones_state_tells_greater_than_zero_from_greater_than_one_and_leaves_the_first_cases_alone():
    # storage states 0-4 hold zero, addresses, small numbers, block-near values and words, never exactly 1 where
    # it matters: a `> 0` changed to `> 1` passed every case; state ONES (cases 20-23) holds 1 in every slot
    assert CS.make_cases([], False, 0)[:CS.ONES_FROM] == CS.make_cases([], False, 0, n=CS.ONES_FROM)
    assert [c.variant for c in CS.make_cases([], False, 0)[CS.ONES_FROM:]] == [CS.ONES] * 4
    shapes = {1: ["bytes"], 2: ["array"]}
    assert CS.seed_value(0, 0, CS.ONES, shapes) == 1 and CS.seed_value(2, 0, CS.ONES, shapes) == 1
    assert CS.seed_value(1, 0, CS.ONES, shapes) == (ord("a") << 248 | 2)   # a one-byte string
    out = compile_bytecode(DONE, "0.8.20")
    code, mutant = bytes.fromhex(out["Timelock"]["bytecode"]), bytes.fromhex(out["Mutant"]["bytecode"])
    for sig, shapes in (("isOperation(bytes32)", {}), ("hasURI()", {1: ["bytes"]})):
        sel = out["Timelock"]["selectors"][sig]
        _, types = abi.parse_signature(sig)
        first = TR.trace_original(code, sel, types, CS.make_cases(types, False, 0, n=CS.ONES_FROM), seed=0,
                                  shapes=shapes, search=False)
        assert TR.compare_candidate(first, mutant, sel, types, seed=0)[0] == "equivalent", sig   # the old blind spot
        t = TR.trace_original(code, sel, types, CS.make_cases(types, False, 0), seed=0, shapes=shapes, search=False)
        status, detail, _ = TR.compare_candidate(t, mutant, sel, types, seed=0)
        assert status == "differs" and "storage 5" in detail, (sig, detail)
        assert TR.compare_candidate(t, code, sel, types, seed=0)[0] == "equivalent"


FED = """pragma solidity 0.8.20;
interface IToken { function transfer(address to, uint256 v) external returns (bool); }
contract Fed {
    IToken public immutable i_link;
    address public immutable i_router;
    uint32 public immutable i_gas;
    bytes4 public immutable i_tag;
    constructor(IToken l, address r) { i_link = l; i_router = r; i_gas = 50000; i_tag = 0x12345678; }
    function fulfil(address to, uint256 v) external returns (uint256) {
        require(msg.sender == i_router, "only router");
        require(i_link.transfer(to, v), "transfer failed");
        return uint256(i_gas) + uint32(i_tag);
    }
}"""


def test_immutables_are_set_as_a_constructor_would_and_alike_in_the_candidate():
    # deployedBytecode holds zero where immutables are read: a router check would never pass and a call to the
    # token would reach no code. The harness sets them (addresses: responders that are also callers) in the
    # original and, by declaration order, in a candidate compiled with its function placed before them (new ids)
    from tacsol import corpus

    cand = FED.replace("contract Fed {", "contract Fed {\n    function tacsol_candidate(address to, uint256 v) "
                       "external returns (uint256) { require(msg.sender == i_router, \"only router\"); "
                       "require(i_link.transfer(to, v), \"transfer failed\"); return uint256(i_gas) + uint32(i_tag); }"
                       "\n    function tacsol_candidate_1() external view returns (uint256) { return i_gas; }")
    st = corpus.Setting.parse("noopt")
    jobs = [(k, "0.8.20", B._input({"Fed.sol": src}, "Fed.sol", "Fed", st, "0.8.20", True, True))
            for k, src in (("o", FED), ("c", cand))]
    outs = B.Compiler().many(jobs)
    o = B._original_from(outs["o"], "Fed.sol", "Fed")
    assert [(n, t) for _, n, t in o.immutables] == [("i_link", "contract IToken"), ("i_router", "address"),
                                                    ("i_gas", "uint32"), ("i_tag", "bytes4")]
    sig = "fulfil(address,uint256)"
    _, types = abi.parse_signature(sig)
    t = TR.trace_original(o.code, o.selectors[sig], types, CS.make_cases(types, False, 0), seed=0,
                         shapes=CS.slot_shapes(o))
    ok = [(c, x) for c, x in zip(t.cases, t.outcomes) if x.success]
    assert ok and all(c.caller == CS.RESPONDERS[1] for c, _ in ok)            # i_router: the second address
    assert all(x.calls[0][1] == CS.RESPONDERS[0] for _, x in ok)               # i_link: the first
    want = B.immutable_word("i_gas", "uint32", 0) + (B.immutable_word("i_tag", "bytes4", 0) >> 224)
    assert {int.from_bytes(x.output, "big") for _, x in ok} == {want} and 0 < want < 2**33
    runtime, csel = B._candidate_runtime(outs["c"], "Fed.sol", "Fed", "tacsol_candidate", o.immutables)
    assert TR.compare_candidate(t, runtime, csel, types, seed=0)[0] == "equivalent"
    bare, _ = B._candidate_runtime(outs["c"], "Fed.sol", "Fed", "tacsol_candidate")   # left at zero: differs
    assert TR.compare_candidate(t, bare, csel, types, seed=0)[0] == "differs"


def test_a_function_that_always_reverts_is_compared_by_its_revert_data(gate):
    from tacsol import lift

    code, sel = gate
    tac = next(f.tac for f in lift.lift(code.hex()).functions if f.selector == sel["stub(uint256)"])
    assert CS.reverts_by_construction(tac)
    execute_tac = next(f.tac for f in lift.lift(code.hex()).functions if f.selector == sel["execute(bytes32,uint256,bytes)"])
    assert not CS.reverts_by_construction(execute_tac) and not CS.reverts_by_construction("")
    assert not CS.reverts_by_construction("b0:\n  goto v3 [b1, b2]\nb1:\n  revert(0x0, 0x0)")


def test_calls_of_one_runtime_share_a_state_but_do_not_see_each_other(toy):
    code, sel = toy
    _, types = abi.parse_signature("credit(address,uint256)")
    who = int.from_bytes(bytes.fromhex("b2" * 20), "big")
    data = abi.calldata(sel["credit(address,uint256)"], types, [who, 5])
    owner = {0: int.from_bytes(OWNER, "big")}
    first = execute(code, data, owner, caller=OWNER)
    second = execute(code, data, owner, caller=OWNER)   # the first call's write was reverted: 5 again, not 10
    assert first.success and int.from_bytes(second.output, "big") == 5 and first.writes == second.writes
    seeded = execute(code, data, {}, caller=OWNER, storage_default=lambda s, pre: owner[0] if s == 0 else 100)
    assert int.from_bytes(seeded.output, "big") == 105
    assert int.from_bytes(execute(code, data, owner, caller=OWNER).output, "big") == 5   # seeds do not linger


def test_candidates_of_one_unit_compile_together_and_errors_stay_their_own(harness, sample_test):
    rec = next(r for r in sample_test if r["signature"] == "interval()")
    good = rec["solidity"]
    bad = "function interval() public view returns (uint256) { return 1 + ; }"
    res = harness.check_many([rec] * 3, [good, bad, good.replace("interval()", "interval( )")])
    assert [x.status for x in res] == ["equivalent", "untestable", "equivalent"]
    assert res[1].reason == "did_not_compile"


def test_original_traces_are_cached_on_disk(harness, sample_test, tmp_path):
    rec = next(r for r in sample_test if r["signature"] == "interval()")
    o = harness.original(rec)
    _, types = abi.parse_signature(rec["signature"])
    fresh = B.Harness(compiler=B.Compiler())
    fresh.compiler.dir = tmp_path
    first = fresh._trace(o, rec["selector"], rec["signature"], types, False)
    assert list(tmp_path.glob("traces/*/*.pkl.gz"))
    again = B.Harness(compiler=B.Compiler())
    again.compiler.dir = tmp_path
    second = again._trace(o, rec["selector"], rec["signature"], types, False)
    assert [(x.success, x.output, x.writes) for x in second.outcomes] == \
        [(x.success, x.output, x.writes) for x in first.outcomes] and len(second.cases) == len(first.cases)


def test_renaming_leaves_named_argument_keys_alone():
    # `Config({gasLimit: gasLimit})`: the key is the struct's member, only the value is the parameter
    text = "function f(uint32 gasLimit) external { s = Config({gasLimit: gasLimit, on: x ? gasLimit : 0}); }"
    out, renames = C.rename_consistently(text, ["s"], [])
    assert "Config({gasLimit: p0_renamed, on: x ? p0_renamed : 0})" in out and renames["gasLimit"] == "p0_renamed"


def test_a_function_binds_only_where_the_arguments_fit_its_parameters():
    # f1(req, 1 * LINK) with `Chainlink.Request memory req`: a function taking (address, uint256) cannot be it
    text = ("function r(string memory c) public { Chainlink.Request memory req = f0(v0, address(this), 1); "
            "f1(req, msg.sender, 5); }")
    args = BD.argument_types("f1", text)
    assert args == ["struct Chainlink.Request", "address", "number"]
    assert BD._params_fit(args, ("struct Chainlink.Request", "address", "uint256"))
    assert not BD._params_fit(args, ("address", "address", "uint256"))
    assert BD._params_fit(BD.argument_types("f0", text), ("bytes32", "address", "uint256"))
    # a conversion names its type: VestingWallet's vestedAmount(uint64(block.timestamp)) is not released(address)
    conv = BD.argument_types("f2", "function release() public { uint256 r = f2(uint64(block.timestamp)) - f1(); }")
    assert conv == ["uint64"] and BD._params_fit(conv, ("uint64",)) and not BD._params_fit(conv, ("address",))



def test_a_call_statement_may_name_a_function_whose_result_it_ignores_and_a_struct_local_types_its_builder():
    # ChainlinkClient: `Chainlink.Request memory req = buildChainlinkRequest(...)` then `sendChainlinkRequest(req,
    # payment);`, which returns the request id the statement ignores. The only function of arity 2 whose parameters
    # fit (struct, uint256) returns a value: statement calls preferred those returning nothing and bound
    # addChainlinkExternalRequest(address, bytes32) (did not compile); the builder is the one returning the struct
    sigs = {"buildChainlinkRequest": (("bytes32", "address", "bytes4"), ("struct Chainlink.Request",)),
            "_buildOperatorRequest": (("bytes32", "bytes4"), ("struct Chainlink.Request",)),
            "_requestId": (("bytes32", "bytes4"), ("bytes32",)),   # takes the same arguments, returns no struct
            "sendChainlinkRequest": (("struct Chainlink.Request", "uint256"), ("bytes32",)),
            "addChainlinkExternalRequest": (("address", "bytes32"), ()),
            "setChainlinkOracle": (("address",), ())}
    o = B.Original(b"", {}, [], {}, {}, {f: len(p) for f, (p, _) in sigs.items()}, {}, {}, set(),
                   returning={f for f, (_, r) in sigs.items() if r}, signatures=sigs)
    text = ("function request(bytes32 id, uint256 payment) public { Request memory req = f0_renamed(id, this.cb.selector);"
            " f1_renamed(req, payment); }")
    renames, notes, unbound = BD.bind(["f0_renamed", "f1_renamed"], text, o, [], set(), set())
    assert not unbound and renames == {"f0_renamed": "_buildOperatorRequest", "f1_renamed": "sendChainlinkRequest"}, notes
    assert "returning the struct Request" in notes[0]


def test_a_call_inside_a_modifiers_arguments_is_a_function_not_a_modifier():
    # AccessControl's revokeRole(role, account) ... onlyRole(getRoleAdmin(role)): the renamed getRoleAdmin was bound
    # as a modifier (reinitializer), which did not compile
    t = ("function revokeRole(bytes32 p0, address p1) public virtual override onlyRole(f0(p0)) whenNotPaused "
         "returns (uint256 x) { f1(p0, p1); }")
    assert [BD.role_of(n, t) for n in ("f0", "onlyRole", "whenNotPaused", "f1")] == \
        ["function", "modifier", "modifier", "function"]

def test_an_overloaded_function_binds_by_the_overload_of_its_arity():
    # ERC721's _safeMint(to, id) and _safeMint(to, id, data): the 3-argument call is _safeMint, not the only other
    # 3-argument function (_beforeTokenTransfer(address,address,uint256), whose second parameter takes no uint256)
    o = B.Original(b"", {}, [], {}, {}, {"_safeMint": 2, "_beforeTokenTransfer": 3}, {}, {}, set(),
                   signatures={"_safeMint": (("address", "uint256"), ()),
                               "_beforeTokenTransfer": (("address", "address", "uint256"), ())},
                   overloads={"_safeMint": [(("address", "uint256"), ()), (("address", "uint256", "bytes"), ())]})
    text = "function safeMint(address to, uint256 id, bytes memory data) public { f0_renamed(to, id, data); }"
    renames, notes, unbound = BD.bind(["f0_renamed"], text, o, [], set(), set())
    assert not unbound and renames == {"f0_renamed": "_safeMint"}, notes


def test_a_variable_no_case_touched_binds_among_the_few_that_fit():
    layout = [{"label": "owner", "slot": "0", "offset": 0, "type": "t_address"},
              {"label": "limits", "slot": "1", "offset": 0, "type": "t_mapping(t_address,t_uint256)"},
              {"label": "total", "slot": "2", "offset": 0, "type": "t_uint256"}]
    types = {"t_mapping(t_address,t_uint256)": {"encoding": "mapping"}, "t_uint256": {"encoding": "inplace"},
             "t_address": {"encoding": "inplace"}}
    o = B.Original(b"", {}, layout, types, {}, {}, {}, {}, set())
    text = "function limitOf(address who) external view returns (uint256) { return v0_renamed[who]; }"
    renames, notes, unbound = BD.bind(["v0_renamed"], text, o, [], set(), set())
    assert not unbound and renames == {"v0_renamed": "limits"} and "no case touched it" in notes[0]
    # the TAC at level 2 names the mapping's slot: that is evidence enough, as a traced access would be
    touched = BD.touched_variables(o, [], "  v2 = mapping(0x1)[arg0]\n  v3 = sload(v2)")
    assert [v["label"] for v in touched] == ["limits"] and touched[0]["depth"] == 1
    # level 3 reads a storage string whole: its slot is read
    touched = BD.touched_variables(o, [], "  v1 = checked storagestring(0x2)\n  return bytes(v1)")
    assert [(v["label"], v["read"], v["written"]) for v in touched] == [("total", True, False)], touched


# valid from 0.4.24 to 0.8: packing, a constant, inheritance (base first), an enum, packed and wide static arrays,
# structs (alone, in an array, behind mappings), a dynamic array, string, bytes, a contract-typed variable
LAYOUT = """pragma solidity >=0.4.24 <0.9.0;
contract Base {
    uint8 small; bool flag; address owner;
    uint256 constant CAP = 10;
    mapping(address => uint256) balances;
}
contract Store is Base {
    enum Phase { Open, Closed }
    struct Entry { uint128 a; uint64 b; bool c; uint256 d; }
    Phase phase; uint16[40] packed; uint256[3] wide; Entry entry; Entry[2] entries;
    mapping(address => mapping(uint256 => Entry)) nested; uint256[] list;
    string title; bytes blob; bytes4 tag; Base other; uint96 tail;
    function getTitle() public view returns (string memory) { return title; }
}"""


@pytest.fixture(scope="module")
def layout_outputs():
    from tacsol import corpus

    st = corpus.Setting.parse("noopt")
    jobs = [(v, v, B._input({"L.sol": LAYOUT}, "L.sol", "Store", st, v, True, True)) for v in ("0.4.24", "0.5.16", "0.8.20")]
    return B.Compiler().many(jobs)


def _layout_rows(sl):
    types = {k: {f: v.get(f) for f in ("encoding", "label", "numberOfBytes", "key", "value", "base")} |
             {"members": [(m["label"], m["slot"], m["offset"], m["type"]) for m in v.get("members") or []]}
             for k, v in (sl.get("types") or {}).items()}
    return [(e["label"], e["slot"], e["offset"], e["type"]) for e in sl["storage"]], types


@pytest.mark.parametrize("version", ["0.5.16", "0.8.20"])
def test_the_storage_layout_computed_from_the_ast_is_solcs_own(layout_outputs, version):
    from tacsol.evaluate import layout

    out = layout_outputs[version]
    solc = out["contracts"]["L.sol"]["Store"]["storageLayout"]
    mine = layout.storage_layout(out["sources"], "L.sol", "Store")
    assert _layout_rows(mine) == _layout_rows(solc)
    # the packing it exercises: 22 bytes in slot 0, a mapping's own slot, 16 uint16 per slot, a struct of 2 slots,
    # a value that does not fit what is left of a slot starts the next
    rows = {label: (slot, offset) for label, slot, offset, _ in _layout_rows(mine)[0]}
    assert [rows[k] for k in ("small", "flag", "owner", "balances", "phase")] == \
        [("0", 0), ("0", 1), ("0", 2), ("1", 0), ("2", 0)]
    assert rows["packed"] == ("3", 0) and rows["wide"] == ("6", 0) and rows["entry"] == ("9", 0)
    assert rows["entries"] == ("11", 0) and rows["nested"] == ("15", 0)
    assert rows["tag"] == ("19", 0) and rows["other"] == ("19", 4) and rows["tail"] == ("20", 0)


def test_units_of_compilers_without_storage_layout_bind_state_variables_by_slot(layout_outputs):
    # solc 0.4.24 outputs no storageLayout: the harness computes it from the AST, so that a generated getter's own
    # name for a variable binds to the declared one at the slot the original reads
    old, new = layout_outputs["0.4.24"], layout_outputs["0.5.16"]
    assert "storageLayout" not in old["contracts"]["L.sol"]["Store"]
    o = B._original_from(old, "L.sol", "Store")
    want = B._original_from(new, "L.sol", "Store")
    assert [(v["label"], v["slot"], v["offset"]) for v in o.layout] == \
        [(v["label"], v["slot"], v["offset"]) for v in want.layout]
    assert [o.types[v["type"]]["encoding"] for v in o.layout] == [want.types[v["type"]]["encoding"] for v in want.layout]
    sig = "getTitle()"
    t = TR.trace_original(o.code, o.selectors[sig], [], CS.make_cases([], False, 0), seed=0, shapes=CS.slot_shapes(o))
    text = "function tacsol_candidate() public view returns (string memory) { return _title; }"
    renames, notes, unbound = BD.bind(["_title"], text, o, BD.touched_variables(o, t.outcomes), set(), set())
    assert not unbound and renames == {"_title": "title"}, notes
    assert CS.slot_shapes(o) == CS.slot_shapes(want)   # seeded alike: the string's slot holds a string


def test_a_runaway_loop_is_stopped_and_reported(toy):
    code, sel = toy
    out = execute(code, bytes.fromhex(sel["spin()"][2:]), {}, caller=OWNER, time_limit_s=0.5)
    assert not out.success and out.error in ("OutOfGas", "Timeout")


@pytest.fixture(scope="module")
def sample_test():
    return [dict(r) for r in pairs.load("sample")["test"]]


@pytest.fixture(scope="module")
def harness():
    return B.Harness()


@pytest.fixture(scope="module")
def reference_results(harness, sample_test):
    return harness.check_many(sample_test, [r["solidity"] for r in sample_test])


def test_reference_control_is_equivalent_and_covers_the_sample(reference_results):
    s = B.summarize(reference_results)
    testable = s["n"] - s["untestable"]
    assert testable >= 0.9 * s["n"], s["untestable_reasons"]          # coverage goal: >= 90%
    assert s["equivalent"] >= 0.98 * testable, [x.detail for x in reference_results if x.status == "differs"]
    for x in reference_results:   # every untestable one says why
        assert x.status != "untestable" or x.reason in B.UNTESTABLE_REASONS
    assert s["reference_ok_share"] > 0.3   # the cases reach the function's success path, not only its guards


def test_renamed_control_binds_by_slot_and_stays_equivalent(harness, sample_test, reference_results):
    ok = [(r, harness.original(r)) for r, x in zip(sample_test, reference_results) if x.status != "untestable"]
    texts = [C.rename_consistently(r["solidity"], [v["label"] for v in o.layout], list(o.functions))[0]
             for r, o in ok]
    res = harness.check_many([r for r, _ in ok], texts)
    s = B.summarize(res)
    assert s["differs"] == 0, [x.detail for x in res if x.status == "differs"]   # a wrong binding would differ
    assert s["binding_needed"] >= len(ok) // 2
    # the binding is typed: `f1(f0(), amount)` binds f1 -> _burn(address,uint256) (the only arity-2 callee), then
    # f0 -> the arity-0 function returning the address _burn takes, not any other getter
    burn = next(x for (r, _), x in zip(ok, res) if r["signature"] == "burn(uint256)" and x.bindings
                and any("_burn" in b for b in x.bindings))
    assert burn.status == "equivalent" and any("-> _msgSender" in b and "returning the address" in b
                                               for b in burn.bindings), burn.bindings
    assert s["equivalent"] >= 0.95 * len(ok), [(x.reason, x.detail[:120]) for x in res if x.status != "equivalent"]
    assert all(x.reason == "unbound_name" for x in res if x.status == "untestable" and x.reason != "did_not_compile")


def test_mutant_control_differs(harness, sample_test, reference_results):
    made = []
    for r, x in zip(sample_test, reference_results):
        if x.status != "untestable":
            o = harness.original(r)
            made += [(k, r, t) for k, t in C.mutants(r["solidity"], o.layout,
                                                      C.invisible_variables(o.private_vars, r["contract"]))]
    assert len({k for k, _, _ in made}) == 6, "every mutation kind occurs on the sample"
    res = harness.check_many([r for _, r, _ in made], [t for _, _, t in made])
    testable = [x for x in res if x.status != "untestable"]
    assert len(testable) >= 0.9 * len(made)
    assert sum(x.status == "differs" for x in testable) >= 0.9 * len(testable)
    first = next(x for x in res if x.status == "differs")
    assert first.detail.startswith("case ") and "original" in first.detail and "generated" in first.detail


def test_bad_generations_are_reported_not_crashed(harness, sample_test):
    rec = next(r for r in sample_test if r["signature"] == "interval()")
    texts = ["function interval() public view returns (uint256) { while (true) {} }",   # runaway
             "function interval() public returns (uint256) { selfdestruct(payable(msg.sender)); }",
             # indexed three deep: interval() touches no mapping, so nothing the bytecode shows can bind it
             "function interval() public view returns (uint256) { return totallyUnknownThing[msg.sender][7][3]; }",
             "not solidity at all", None]
    res = harness.check_many([rec] * len(texts), texts)
    assert [x.status for x in res] == ["differs", "differs", "untestable", "untestable", "untestable"]
    assert "failed" in res[0].detail or "time limit" in res[0].detail
    assert res[2].reason == "unbound_name" and res[2].detail == "totallyUnknownThing"
    assert res[3].reason == "unparsable"


def test_evaluate_reports_behaviour_per_function_and_in_the_summary(tmp_path, sample_test):
    from tacsol import evaluate

    recs = [r for r in sample_test if r["signature"] in ("interval()", "addAccess(address)", "burn(uint256)")][:3]
    gens = {recs[0]["id"]: recs[0]["solidity"], recs[1]["id"]: "function f() public {}"}
    s = evaluate.evaluate_run(recs, gens, tmp_path, figures=False, n_boot=50, behaviour=True,
                              verbose=False)
    import pandas as pd

    df = pd.read_parquet(tmp_path / "eval" / "functions.parquet")
    assert list(df["behaviour"]) == ["equivalent", "differs", "untestable"]
    assert df["behaviour_reason"].iloc[2] == "no_output"
    m = s["metrics"]
    assert m["behaviour_rate"] == pytest.approx(1 / 3) and m["behaviour_untestable"] == 1
    assert s["aggregates"]["behaviour"]["differs"] == 1


def _outcome_rows(results):
    return [(x.status, x.reason, x.detail, x.cases, x.bindings) for x in results]


def test_worker_processes_give_the_results_of_one_process(sample_test, tmp_path):
    # the harness's py-evm stage runs in a process per core; a job's result must not depend on where it ran
    # (each harness traces its originals anew: a trace folder of its own)
    one = B.Harness(workers=1)
    recs = [r for r in sample_test if one.original(r) and not isinstance(one.original(r), str)][:6]
    texts = [r["solidity"] for r in recs]
    for r in recs[:3]:
        for _, text in C.mutants(r["solidity"], one.original(r).layout)[:3]:
            recs.append(r)
            texts.append(text)
    got = {}
    for n, h in ((1, one), (2, B.Harness(workers=2))):
        h.trace_dir = tmp_path / str(n)
        try:
            got[n] = _outcome_rows(h.check_many(recs, texts))
        finally:
            h.close()
    assert got[1] == got[2]
    assert {s for s, *_ in got[1]} >= {"equivalent", "differs"}


def test_branch_search_runs_only_for_originals_a_candidate_agrees_with(sample_test, tmp_path):
    h = B.Harness(workers=1)
    h.trace_dir = tmp_path
    rec = next(r for r in sample_test if r["signature"] == "tokenByIndex(uint256)")
    wrong = rec["solidity"].replace("return _allTokens[index];", "return index;")
    assert wrong != rec["solidity"] and h.check_many([rec], [wrong])[0].status == "differs"
    (t,) = h._traces.values()
    assert t.branches_pending and t.branch_runs == 0        # the candidate differed on the first cases
    assert h.check_many([rec], [rec["solidity"]])[0].status == "equivalent"
    (t,) = h._traces.values()
    assert not t.branches_pending and not t.explored and t.branch_runs > 0
    again = B.Harness(workers=1)
    again.trace_dir = tmp_path
    assert again.check_many([rec], [rec["solidity"]])[0].status == "equivalent"
    (t2,) = again._traces.values()
    assert not t2.branches_pending and len(t2.cases) == len(t.cases)   # read back complete from the disk cache
