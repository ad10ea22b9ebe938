"""Level 2 (compact TAC): the passes that run between simplify.eliminate_dead and layout.plan_layout, in order.
Each rewrites FunctionIR.body (or settles branches) without changing what the function does for calls whose
calldata holds the header's arguments (docs/tac-format.md, Level 2)."""
from __future__ import annotations

from itertools import chain
from operator import attrgetter

from .abi import Abi, fold_checks, name_arguments
from .calldata import fold_calldata_copies
from .checked import fold_checked_arithmetic
from .extcall import fold_checked_calls
from .casts import fold_casts, fold_field_stores, fold_negations, merge_storage_fields
from .cse import merge_common
from .inline import inline_adjacent_reads, inline_single_uses
from .loops import (fold_calldata_word_loops, fold_copy_loops, fold_counted_word_loops, fold_memcpy_loops,
                    fold_storage_copy_loops, fold_zero_pads)
from .budget import clock
from .cfg import Program
from .ir import FunctionIR
from .memory import fold_allocations, name_memory, name_message_reverts
from .strings import fold_storage_strings
from .stringstore import fold_storage_string_writes
from .phis import fold_block_params
from .reasons import fold_error_messages
from .redundant import settle_constant_branches, settle_known_checks
from .returndata import fold_returndata_copies
from .rewrite import definitions, prune, reread
from .simplify import eliminate_dead
from .tails import copy_revert_tails
from .values import Values


def compact(fn: FunctionIR, values: Values, prog: Program, abi: Abi, checked: bool = False,
            deadline: float = float("inf")) -> None:
    """Level 2's passes; with `checked` (level 3), solc's overflow and division guards fold into their operations,
    the decoder's validation of an argument against its declared type folds into the header, a free-memory pointer
    the memory model cannot follow starts a new free base, an argument or the return data copied to memory is one
    statement, as is the legacy memcpy loop and an external call with its checks, branches whose outcome is known
    are settled, an allocation at the free pointer prints as `p = alloc(n)`, and a read used once by the next line
    is written there. Raises TimeoutError once `deadline` (budget.clock) has passed, checked between passes and
    inside fold_block_params (a mutated runtime's long chains made that one pass run 5 CPU s past a 2 s limit)."""
    keep_live(fn)
    name_arguments(fn, values, abi)                   # calldataload(0x4 + 32k) → argK
    reread(fn, values)
    fold_casts(fn, values, definitions(fn))           # masks → casts, fields; no-op masks go
    reread(fn, values)
    fold_checks(fn, values, abi, definitions(fn), checked)   # callvalue, short calldata, (3: arguments' types)
    prune(fn)
    fold_block_params(fn, values, deadline)           # parameters carrying one value
    reread(fn, values)
    _in_time(deadline)
    fold_negations(fn, values, definitions(fn))       # if iszero(x) goto A else B → if x goto B else A
    merge_common(fn, values)                          # a pure value computed again where the first dominates
    reread(fn, values)
    if checked:
        copy_revert_tails(fn, values)                 # a revert shared by error builders, copied into each
    _in_time(deadline)
    name_memory(fn, prog.raw, checked)                # mappings, arrays, logs, returns, reverts (3: abi.encode)
    fold_copy_loops(fn, values, definitions(fn), checked)   # word-by-word memory copies → copy(dst, src, n)
    name_message_reverts(fn, prog.raw, checked)       # require(cond, message in memory) → revert(p)
    fold_zero_pads(fn, values, definitions(fn))       # the legacy encoder's cleared tail → zeropad(dst, n)
    name_message_reverts(fn, prog.raw, checked)       # the messages that zeropad ends
    used = eliminate_dead(fn, values)
    _in_time(deadline)
    if checked and _has_op(fn, "panic") and fold_checked_arithmetic(fn, values, definitions(fn)):   # checked(a + b)
        prune(fn)
        used = eliminate_dead(fn, values)
    _in_time(deadline)
    if checked and (fold_calldata_word_loops(fn, values)       # abicoder v2's word loop → calldatacopy
                    + fold_counted_word_loops(fn, values)       # n words counted: copy / calldatacopy(dst, src, 32n)
                    + fold_calldata_copies(fn, values, abi.types)     # p = memory(argK)
                    + fold_memcpy_loops(fn, values)             # legacy memcpy(dst, src, n)
                    + fold_storage_copy_loops(fn, values)       # storagecopy(dst, slot, n): a long string's words
                    + fold_storage_strings(fn, values)          # p = storagestring(slot): the whole read (0.4-0.7)
                    + fold_storage_string_writes(fn, values)    # storagestring(slot) = p: the whole write
                    + fold_returndata_copies(fn, values)        # v = bytes(returndata)
                    + fold_error_messages(fn, values)           # v = error_message(returndata): catch Error(string)
                    + fold_checked_calls(fn, values)            # checked call(...): code, success, size checks
                    + settle_constant_branches(fn, values, prog.raw)   # require(1), if 0 goto
                    + settle_known_checks(fn, values)):         # a check the branch before decided
        before = set(fn.removed)
        prune(fn)
        fn.absorbed |= fn.removed - before            # the sides that never run: their opcodes still count (emit)
        fold_block_params(fn, values, deadline)       # a join left with one way in
        reread(fn, values)
        used = eliminate_dead(fn, values)
    _in_time(deadline)
    if checked and _has_op(fn, "SSTORE") and fold_field_stores(fn, definitions(fn)):   # sstore(slot)[offset:bits] = x
        used = eliminate_dead(fn, values)
    merge_storage_fields(fn, used)                    # sload(slot)[offset:bits]
    if checked:
        fold_allocations(fn, used)                    # p = mload(0x40) ... mstore(0x40, p + n) → p = alloc(n)
    inline_single_uses(fn, values, used, checked)     # a pure value read once goes there (2: later in its line)
    if checked:
        inline_adjacent_reads(fn, values, used)       # sload, mload, gas(), slots read once by the next line


def keep_live(fn: FunctionIR) -> None:
    """Drop the statements dead-code elimination removed, so passes see only what prints."""
    fn.body = [[s for k, s in enumerate(fn.body[n]) if fn.live[n][k]] for n in fn.ids]
    fn.live = [[True] * len(b) for b in fn.body]


def _in_time(deadline: float) -> None:
    if clock() >= deadline:
        raise TimeoutError


_OP = attrgetter("op")


def _has_op(fn: FunctionIR, op: str) -> bool:
    """Some statement of fn is `op` (a test in C): without a panic or an sstore, fold_checked_arithmetic and
    fold_field_stores have nothing to fold, and neither they nor the definitions they take are worth building (on
    the production contracts, most functions: ~5% of compact's time)."""
    return op in map(_OP, chain.from_iterable(fn.body))
