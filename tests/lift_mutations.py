"""Mutations of real runtimes for fuzzing the lifter (tests/test_lift_fuzz.py, tools/fuzz_lift.py): byte flips,
truncations, splices of two runtimes, inserted JUMP/JUMPI to random targets, duplicated regions, a PUSH32 at the
end. Seeds are the committed lifter fixtures, so no compiler is needed."""
from __future__ import annotations

import json
import random
from pathlib import Path

FIX = Path(__file__).resolve().parent / "fixtures" / "lift"


def seeds() -> list[bytes]:
    """Every runtime (and creation input) in the lifter fixtures, deduplicated, in a fixed order."""
    out: dict[bytes, None] = {}
    for name in ("contracts.json", "partial.json", "vyper.json", "inputs.json"):
        for c in json.loads((FIX / name).read_text()):
            for key in ("runtime", "creation"):
                if c.get(key):
                    out[bytes.fromhex(c[key])] = None
    return list(out)


def flip(raw: bytes, rng: random.Random, other: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def truncate(raw: bytes, rng: random.Random, other: bytes) -> bytes:
    return raw[: rng.randint(1, len(raw) - 1)]


def splice(raw: bytes, rng: random.Random, other: bytes) -> bytes:
    return raw[: rng.randint(1, len(raw))] + other[rng.randint(0, len(other) - 1):]


def insert_jumps(raw: bytes, rng: random.Random, other: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        target = rng.randrange(len(b)).to_bytes(2, "big")
        jump = b"\x61" + target + (b"\x56" if rng.random() < 0.5 else b"\x60\x01\x90\x57")  # PUSH2 t JUMP | JUMPI
        at = rng.randrange(len(b))
        b[at:at] = jump
    return bytes(b)


def duplicate(raw: bytes, rng: random.Random, other: bytes) -> bytes:
    i = rng.randrange(len(raw))
    j = min(len(raw), i + rng.randint(1, 256))
    at = rng.randrange(len(raw))
    return raw[:at] + raw[i:j] + raw[at:]


def push32_at_end(raw: bytes, rng: random.Random, other: bytes) -> bytes:
    return raw + b"\x7f" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 32)))


MUTATIONS = (flip, truncate, splice, insert_jumps, duplicate, push32_at_end)


def mutate(seed_list: list[bytes], rng: random.Random) -> tuple[str, bytes]:
    """One case: a mutation applied to a random seed (1-3 times); returns (description, bytes)."""
    raw = rng.choice(seed_list)
    names = []
    for _ in range(rng.randint(1, 3)):
        m = rng.choice(MUTATIONS)
        raw = m(raw, rng, rng.choice(seed_list)) if len(raw) > 1 else raw + b"\x00"
        names.append(m.__name__)
    return "+".join(names), raw
