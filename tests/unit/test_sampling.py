"""Sampling: the documented vectors hold, the rate is right, and every process agrees."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from shadow.sampling import Sampler, sample_hash, threshold
from shadow.sampling import is_sampled as sampled

VECTORS = [
    ("t-1", 0x93A782D7A4BECA57, False),
    ("t-2", 0x379E573A2D9F7AB0, True),
    ("t-3", 0x0CAF1819A636DAD6, True),
    ("txn-000003", 0x93B80AE3EE4CB718, False),
]


@pytest.mark.parametrize(("txn_id", "digest", "inside"), VECTORS)
def test_documented_vectors(txn_id: str, digest: int, inside: bool) -> None:
    assert sample_hash(txn_id, "shadow") == digest
    assert sampled(txn_id, 1 / 3, "shadow") is inside
    assert Sampler(1 / 3, "shadow")(txn_id) is inside


def test_threshold_is_rate_times_two_to_the_53() -> None:
    assert threshold(1 / 3) == 3002399751580330
    assert threshold(0.0) == 0
    assert threshold(1.0) == 2**53
    with pytest.raises(ValueError):
        threshold(1.5)


@pytest.mark.parametrize("rate", [0.01, 1 / 3, 0.5])
def test_rate_within_binomial_bounds(rate: float) -> None:
    n = 100_000
    sampler = Sampler(rate, "shadow")
    hits = sum(sampler(f"txn-{i:08d}") for i in range(n))
    sd = math.sqrt(n * rate * (1 - rate))
    assert abs(hits - n * rate) < 5 * sd


def test_rate_zero_and_one() -> None:
    ids = [f"id-{i}" for i in range(2000)]
    assert not any(Sampler(0.0, "s")(i) for i in ids)
    assert all(Sampler(1.0, "s")(i) for i in ids)


def test_salt_changes_the_sample_and_rates_nest() -> None:
    ids = [f"id-{i}" for i in range(5000)]
    a = {i for i in ids if sampled(i, 0.5, "a")}
    b = {i for i in ids if sampled(i, 0.5, "b")}
    assert a != b
    small = {i for i in ids if sampled(i, 0.1, "a")}
    assert small <= a  # raising the rate only adds transactions


def test_unicode_ids_hash_their_utf8_bytes() -> None:
    import xxhash

    assert sample_hash("tx-é€", "s") == xxhash.xxh64_intdigest("stx-é€".encode())


def test_same_choice_in_another_process() -> None:
    ids = [f"txn-{i}" for i in range(3000)]
    script = (
        "import json, sys; from shadow.sampling import is_sampled;"
        "ids = json.load(sys.stdin); print(json.dumps([is_sampled(i, 1/3, 'shadow') for i in ids]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert json.loads(done.stdout) == [sampled(i, 1 / 3, "shadow") for i in ids]
