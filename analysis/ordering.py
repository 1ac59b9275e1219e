"""Ordering - argsorts and order statistics of large score and latency arrays.

numpy sorts integer keys with SIMD, faster than it argsorts floats; packing a float's
order-preserving bits and the row number into one 64-bit key gets an argsort from a sort, and
a histogram of the keys finds order statistics without sorting everything.
"""

from __future__ import annotations

import numpy as np

_SIGN = np.uint64(1 << 63)


def argsort(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An argsort of float64 values (ties in any order) and the values in that order.

    Finite values are sorted as one array of 64-bit keys, the value's order-preserving bits
    above and the row number below (numpy sorts integers with SIMD, about 1.5x faster than
    an argsort); the few rows whose values share the kept bits are then re-sorted by value.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    n = len(values)
    bits = max(1, (n - 1).bit_length())
    if bits > 32 or not np.isfinite(values).all():
        return _plain_argsort(values)
    raw = values.view(np.uint64)
    key = raw >> np.uint64(63)  # in-place steps: few big temporaries (each costs page faults)
    key *= np.uint64(2**63 - 1)
    key |= _SIGN
    key ^= raw  # order-preserving: negatives reversed, the sign bit of positives set
    low = np.uint64((1 << bits) - 1)
    key &= ~low
    rows = np.arange(n, dtype=np.uint64)
    key |= rows
    key.sort()
    order = np.bitwise_and(key, low, out=rows).view(np.intp)  # row numbers < 2**32
    ordered = values[order]
    wrong = np.flatnonzero(ordered[1:] < ordered[:-1])
    if len(wrong) > n // 64:  # values crowded below the kept bits: a plain argsort is cheaper
        return _plain_argsort(values)
    if len(wrong):
        _resort(key >> np.uint64(bits), wrong, order, ordered)
    return order, ordered


def _plain_argsort(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(values)
    return order, values[order]


def _resort(kept: np.ndarray, wrong: np.ndarray, order: np.ndarray, ordered: np.ndarray) -> None:
    """Sort by value, in place, the runs of equal kept bits that hold an inversion. The runs
    are found from their edges around each inversion (numbering every run with a cumulative
    sum over the whole array cost ~0.09 s per 2.5 M rows)."""
    edges = np.concatenate(([0], np.flatnonzero(kept[1:] != kept[:-1]) + 1, [len(kept)]))
    which = np.unique(np.searchsorted(edges, wrong, side="right") - 1)  # runs with inversions
    starts, lengths = edges[which], edges[which + 1] - edges[which]
    placed = np.cumsum(lengths) - lengths  # where each run's rows begin among `rows`
    rows = np.arange(int(lengths.sum())) + np.repeat(starts - placed, lengths)
    fix = np.lexsort((ordered[rows], np.repeat(np.arange(len(which)), lengths)))
    order[rows] = order[rows][fix]
    ordered[rows] = ordered[rows][fix]


_SHIFT = 12  # buckets of the top 20 bits: ~2,000 per octave of latency
_BUCKETS = 1 << (32 - _SHIFT)


def order_statistics(values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """np.sort(values)[ranks] for finite float32 values, without sorting them all: a
    histogram of the top 20 bits of order-preserving keys tells each rank's bucket, and only
    the elements of those buckets are sorted."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    key = bits ^ ((bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000))
    bucket = key >> np.uint32(_SHIFT)
    counts = np.bincount(bucket, minlength=_BUCKETS)
    ends = np.cumsum(counts)
    at = np.searchsorted(ends, ranks, side="right")
    need = np.zeros(_BUCKETS, dtype=bool)
    need[at] = True
    chosen = np.sort(key[need[bucket]])
    kept = np.where(need, counts, 0)
    index = (np.cumsum(kept) - kept)[at] + (ranks - (ends[at] - counts[at]))
    found = chosen[index]
    positive = found >> np.uint32(31)  # 1 where the value was >= +0.0
    found ^= positive * np.uint32(0x80000000) | (1 - positive) * np.uint32(0xFFFFFFFF)
    return found.view(np.float32)
