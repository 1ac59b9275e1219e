"""Ties - the one rule for every "top k" figure: exactly k alerts, ties at the cut shared.

When a model alerts on its k riskiest transactions and several score exactly the k-th highest
value, only some of them fit. Every top-k figure (recall and precision at the live alert rate,
alert overlap at the matched rate, top-1 % overlap) then counts each tied transaction as a
fraction of an alert: the places left at the cut divided by the transactions tied there. The
figure is the expected value over every order of the tied scores (McSherry & Najork,
"Computing information retrieval performance measures efficiently in the presence of tied
scores", ECIR 2008), so it never depends on the order the rows arrived in: a constant model
alerts on every transaction with probability k / n, never on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cut:
    """Where a model's k alerts end: its k-th highest score, how many rows score above it
    and how many score exactly it."""

    value: float
    above: int
    tied: int
    k: int

    @property
    def share(self) -> float:
        """The chance that a row tied at the cut is among the k alerts."""
        return (self.k - self.above) / self.tied


def cut(ascending: np.ndarray, k: int) -> Cut:
    """The cut of the k highest values of an ASCENDING sorted array (1 <= k <= n)."""
    n = len(ascending)
    value = ascending[n - k]
    below = int(np.searchsorted(ascending, value, side="left"))
    above = n - int(np.searchsorted(ascending, value, side="right"))
    return Cut(float(value), above, n - below - above, k)


def alerts_within(values: np.ndarray, at: Cut, rows: np.ndarray) -> float:
    """Expected number of alerts among `rows` (a boolean mask) when `values` alert at `at`."""
    inside = values[rows]
    return float(np.count_nonzero(inside > at.value)) + at.share * float(
        np.count_nonzero(inside == at.value)
    )


def shared_alerts(a: np.ndarray, at_a: Cut, b: np.ndarray, at_b: Cut) -> float:
    """Expected number of rows among both models' k alerts, the ties of each broken
    independently: the sum over rows of the product of their chances to alert."""
    above_a, tied_a = a > at_a.value, a == at_a.value
    above_b, tied_b = b > at_b.value, b == at_b.value
    return (
        float(np.count_nonzero(above_a & above_b))
        + at_b.share * float(np.count_nonzero(above_a & tied_b))
        + at_a.share * float(np.count_nonzero(tied_a & above_b))
        + at_a.share * at_b.share * float(np.count_nonzero(tied_a & tied_b))
    )


def top_k(rate: float, n: int) -> int:
    """The number of alerts at an alert rate: round(rate * n), at least 1, at most n."""
    return min(n, max(1, round(rate * n)))
