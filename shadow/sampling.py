"""Sampling - keyed, repeatable choice of the transactions the tap mirrors.

A transaction is in the sample when a 64-bit hash of salt and txn_id falls below the rate:

1. ``data = UTF-8(salt) || UTF-8(txn_id)``: plain concatenation, no separator, no length prefix.
2. ``h = XXH64(data, seed=0)`` as an unsigned 64-bit integer (the canonical XXH64 value, e.g.
   ``xxhash.xxh64_intdigest`` in Python, ``net.openhft.hashing.LongHashFunction.xx()`` or
   ``XXHashFactory...hash64().hash(data, 0, len, 0L)`` in Java, ``github.com/cespare/xxhash/v2``
   ``Sum64`` in Go).
3. ``u = h >> 11`` (the top 53 bits, an unsigned shift: ``>>>`` in Java).
4. ``threshold = floor(rate * 2**53)``, computed in IEEE-754 double precision (exact: multiplying
   by a power of two only changes the exponent), then converted to a 64-bit integer.
5. The transaction is sampled when ``u < threshold``. Rate 0 samples nothing, rate 1 everything.

The same txn_id is therefore in or out in every process, every language and every replay.
Test vectors (salt ``"shadow"``, rate 1/3, threshold 3002399751580330)::

    txn_id "t-1"         h = 0x93A782D7A4BECA57  u = 5195125247743961  not sampled
    txn_id "t-2"         h = 0x379E573A2D9F7AB0  u = 1956902649312239  sampled
    txn_id "t-3"         h = 0x0CAF1819A636DAD6  u = 446277220615899   sampled
    txn_id "txn-000003"  h = 0x93B80AE3EE4CB718  u = 5197397311211926  not sampled

Java::

    long h = LongHashFunction.xx(0).hashBytes((salt + txnId).getBytes(UTF_8));
    boolean sampled = (h >>> 11) < (long) Math.floor(rate * 0x1p53);

Go::

    h := xxhash.Sum64([]byte(salt + txnID))
    sampled := h>>11 < uint64(math.Floor(rate*(1<<53)))
"""

from __future__ import annotations

import math

import xxhash

SCALE = 1 << 53
"""The hash's top 53 bits are compared with floor(rate * SCALE)."""

_xxh64 = xxhash.xxh64_intdigest


def threshold(rate: float) -> int:
    """floor(rate * 2**53): the bound the top 53 bits of the hash must stay under."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"sample rate {rate} is outside [0, 1]")
    return math.floor(rate * SCALE)


def sample_hash(txn_id: str, salt: str) -> int:
    """XXH64(UTF-8(salt + txn_id), seed 0) as an unsigned 64-bit integer."""
    return _xxh64((salt + txn_id).encode())


def is_sampled(txn_id: str, rate: float, salt: str) -> bool:
    """True when the transaction belongs to the sample at this rate and salt."""
    return sample_hash(txn_id, salt) >> 11 < threshold(rate)


class Sampler:
    """is_sampled with the salt and threshold worked out once, for hot paths."""

    __slots__ = ("rate", "salt", "threshold")

    def __init__(self, rate: float, salt: str) -> None:
        self.rate = rate
        self.salt = salt
        self.threshold = threshold(rate)

    def __call__(self, txn_id: str) -> bool:
        return _xxh64((self.salt + txn_id).encode()) >> 11 < self.threshold
