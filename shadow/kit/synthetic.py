"""Synthetic card transactions - a deterministic generator of features and fraud labels.

Each transaction has 31 raw features (amounts, merchant category, country, channel, velocity
counters, device and IP risk, account and card age...) and a fraud label drawn from a logistic
function of those features, so a model can learn it. The strongest signals are ``device_risk``,
``ip_risk`` and ``amount_to_avg_ratio`` (see ``STRONGEST_FEATURES``): a model trained without
them is clearly worse. The same seed and the same calls give the same rows, byte for byte.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000

_CHANNELS = ("pos", "ecom", "moto", "atm", "recurring")
_CHANNEL_P = (0.55, 0.32, 0.03, 0.05, 0.05)
# MCC -> (share, amount multiplier, fraud log-odds shift)
_MCC = {
    "5411": (0.22, 0.9, -0.6),  # grocery
    "5812": (0.14, 0.6, -0.4),  # restaurants
    "5541": (0.10, 0.8, -0.3),  # fuel
    "5311": (0.08, 1.3, 0.0),  # department stores
    "5912": (0.07, 0.5, -0.3),  # drugstores
    "4121": (0.06, 0.4, -0.2),  # taxis
    "5999": (0.07, 1.0, 0.3),  # misc retail
    "5732": (0.05, 3.0, 0.8),  # electronics
    "7011": (0.04, 3.5, 0.1),  # hotels
    "4511": (0.03, 5.0, 0.4),  # airlines
    "5944": (0.02, 4.0, 1.0),  # jewelry
    "4829": (0.03, 2.0, 1.1),  # money transfer
    "5967": (0.03, 0.8, 0.9),  # direct marketing
    "7995": (0.06, 1.5, 1.2),  # gambling
}
# country -> (share, UTC offset hours, fraud log-odds shift)
_COUNTRIES = {
    "US": (0.62, -5, 0.0),
    "GB": (0.08, 0, 0.1),
    "DE": (0.06, 1, 0.0),
    "FR": (0.05, 1, 0.1),
    "CA": (0.05, -5, 0.0),
    "MX": (0.03, -6, 0.5),
    "BR": (0.03, -3, 0.6),
    "IN": (0.03, 5, 0.5),
    "CN": (0.02, 8, 0.6),
    "NG": (0.015, 1, 1.3),
    "RO": (0.015, 2, 1.0),
    "RU": (0.01, 3, 1.1),
    "NL": (0.01, 1, 0.0),
    "ES": (0.01, 1, 0.1),
}
_CARD_TYPES = ("credit", "debit", "prepaid")
_CARD_TYPE_P = (0.55, 0.40, 0.05)

FEATURE_TYPES: dict[str, str] = {
    "amount": "float",
    "merchant_category": "string",
    "country": "string",
    "channel": "string",
    "card_type": "string",
    "card_present": "bool",
    "card_age_days": "float",
    "account_age_days": "float",
    "hour_of_day": "float",
    "day_of_week": "float",
    "txn_count_1h": "float",
    "txn_count_24h": "float",
    "txn_count_7d": "float",
    "amount_sum_24h": "float",
    "distinct_merchants_24h": "float",
    "minutes_since_last_txn": "float",
    "avg_amount_30d": "float",
    "amount_to_avg_ratio": "float",
    "device_risk": "float",
    "ip_risk": "float",
    "is_new_device": "bool",
    "email_age_days": "float",
    "shipping_billing_mismatch": "bool",
    "is_international": "bool",
    "distance_from_home_km": "float",
    "failed_logins_24h": "float",
    "declined_count_24h": "float",
    "cvv_match": "bool",
    "avs_match": "bool",
    "password_reset_7d": "bool",
    "merchant_risk_score": "float",
}
"""Every feature and its type: "float" (numbers, some integral), "string" or "bool"."""

FEATURE_NAMES: tuple[str, ...] = tuple(FEATURE_TYPES)
STRING_FEATURES: tuple[str, ...] = tuple(n for n, t in FEATURE_TYPES.items() if t == "string")
BOOL_FEATURES: tuple[str, ...] = tuple(n for n, t in FEATURE_TYPES.items() if t == "bool")
NUMERIC_FEATURES: tuple[str, ...] = tuple(n for n, t in FEATURE_TYPES.items() if t == "float")
STRONGEST_FEATURES: tuple[str, ...] = ("device_risk", "ip_risk", "amount_to_avg_ratio")
"""The features the label depends on most; a model trained without them is clearly worse."""
NULLABLE_FEATURES: tuple[str, ...] = ("email_age_days",)
"""Features that are sometimes absent (no e-mail is collected for card-present payments)."""


class TransactionGenerator:
    """Card transactions with a fraud label, deterministic for a seed and a sequence of calls."""

    def __init__(
        self, seed: int, fraud_rate: float = 0.004, calendar_ms: int | None = None
    ) -> None:
        """`calendar_ms`: where the stream's calendar starts (hour of day, day of week; the
        fraud depends on them); unset, it is the event time itself. A stream stamped with the
        wall clock but a fixed calendar gives the same transactions and labels at any hour."""
        if not 0.0 < fraud_rate < 1.0:
            raise ValueError(f"fraud_rate must be in (0, 1), got {fraud_rate}")
        self.seed = seed
        self.fraud_rate = fraud_rate
        self.calendar_ms = calendar_ms
        self._rng = np.random.default_rng(seed)
        self._intercept = _intercept_for(fraud_rate)
        self._count = 0
        self._next_ms: int | None = None
        self._first_ms: int | None = None

    def batch(self, n: int, start_ms: int | None = None, tps: float = 1000) -> pd.DataFrame:
        """The next n transactions, arriving as a Poisson stream of ``tps`` per second.

        ``start_ms`` is the first event time; unset, the stream continues where the previous
        batch ended (2026-01-01 for the first one).
        """
        rng = self._rng
        start = start_ms if start_ms is not None else (self._next_ms or DEFAULT_START_MS)
        gaps = rng.exponential(1000.0 / tps, n)
        offsets = np.cumsum(gaps) - (gaps[0] if n else 0.0)
        event_time = start + np.floor(offsets).astype(np.int64)
        self._next_ms = int(event_time[-1] + max(1, round(1000.0 / tps))) if n else start
        if self._first_ms is None:
            self._first_ms = start
        calendar = event_time
        if self.calendar_ms is not None:
            calendar = event_time - self._first_ms + self.calendar_ms
        frame = _features(rng, calendar)
        logit = fraud_logit(frame) + self._intercept
        label = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
        ids = [f"s{self.seed}-{i:010d}" for i in range(self._count, self._count + n)]
        self._count += n
        frame.insert(0, "txn_id", ids)
        frame.insert(1, "event_time", event_time)
        frame["label"] = label
        return frame


def _features(rng: np.random.Generator, event_time: np.ndarray) -> pd.DataFrame:
    n = len(event_time)
    channel = np.array(_CHANNELS)[rng.choice(len(_CHANNELS), n, p=_CHANNEL_P)]
    card_present = (channel == "pos") | (channel == "atm")
    online = ~card_present
    mcc_codes = np.array(list(_MCC))
    mcc_share = np.array([v[0] for v in _MCC.values()])
    mcc_index = rng.choice(len(mcc_codes), n, p=mcc_share / mcc_share.sum())
    mcc = np.where(channel == "atm", "6011", mcc_codes[mcc_index])
    mcc_mult = np.where(channel == "atm", 2.0, np.array([v[1] for v in _MCC.values()])[mcc_index])
    countries = np.array(list(_COUNTRIES))
    c_share = np.array([v[0] for v in _COUNTRIES.values()])
    c_index = rng.choice(len(countries), n, p=c_share / c_share.sum())
    country = countries[c_index]
    offset_h = np.array([v[1] for v in _COUNTRIES.values()])[c_index]
    local_ms = event_time + offset_h * 3_600_000
    account_age = np.clip(rng.gamma(2.0, 600.0, n), 1, 12_000).round()
    card_age = np.minimum(account_age, np.clip(rng.gamma(1.5, 400.0, n), 0, None).round())
    avg_30d = np.round(np.exp(rng.normal(math.log(60.0), 0.7, n)), 2)
    amount = np.round(avg_30d * mcc_mult * np.exp(rng.normal(0.0, 0.8, n)), 2) + 0.01
    count_1h = rng.poisson(0.3, n)
    count_24h = count_1h + rng.poisson(2.5, n)
    count_7d = count_24h + rng.poisson(14.0, n)
    sum_24h = amount + rng.gamma(np.maximum(count_24h, 1e-9), avg_30d) * (count_24h > 0)
    distinct = np.minimum(count_24h + 1, 1 + rng.binomial(count_24h, 0.7))
    since_last = np.round(rng.exponential(600.0, n) / (1.0 + 3.0 * count_1h), 1)
    international = country != "US"
    distance = np.exp(rng.normal(math.log(8.0), 1.2, n)) + international * rng.gamma(2, 1500, n)
    email_age = np.where(card_present, np.nan, np.clip(rng.gamma(1.5, 700.0, n), 0, None).round())
    return pd.DataFrame(
        {
            "amount": amount,
            "merchant_category": mcc,
            "country": country,
            "channel": channel,
            "card_type": np.array(_CARD_TYPES)[rng.choice(3, n, p=_CARD_TYPE_P)],
            "card_present": card_present,
            "card_age_days": card_age,
            "account_age_days": account_age,
            "hour_of_day": ((local_ms // 3_600_000) % 24).astype(np.int64),
            "day_of_week": (((local_ms // DAY_MS) + 3) % 7).astype(np.int64),  # Monday = 0
            "txn_count_1h": count_1h,
            "txn_count_24h": count_24h,
            "txn_count_7d": count_7d,
            "amount_sum_24h": np.round(sum_24h, 2),
            "distinct_merchants_24h": distinct,
            "minutes_since_last_txn": since_last,
            "avg_amount_30d": avg_30d,
            "amount_to_avg_ratio": np.round(amount / avg_30d, 4),
            "device_risk": np.round(rng.beta(0.7, 5.0, n), 4),
            "ip_risk": np.round(rng.beta(0.8, 6.0, n), 4),
            "is_new_device": online & (rng.random(n) < 0.10),
            "email_age_days": email_age,
            "shipping_billing_mismatch": online & (rng.random(n) < 0.08),
            "is_international": international,
            "distance_from_home_km": np.round(distance, 1),
            "failed_logins_24h": rng.poisson(0.1, n),
            "declined_count_24h": rng.poisson(0.08, n),
            "cvv_match": card_present | (rng.random(n) < 0.97),
            "avs_match": rng.random(n) < 0.92,
            "password_reset_7d": rng.random(n) < 0.02,
            "merchant_risk_score": np.round(rng.beta(2.0, 20.0, n), 4),
        }
    )


def fraud_logit(frame: pd.DataFrame) -> np.ndarray:
    """Log-odds of fraud before the base-rate intercept: what a perfect model would learn."""
    f = frame
    ratio = f["amount_to_avg_ratio"].to_numpy()
    mcc_shift = f["merchant_category"].map({k: v[2] for k, v in _MCC.items()}).fillna(0.2)
    country_shift = f["country"].map({k: v[2] for k, v in _COUNTRIES.items()})
    email = f["email_age_days"].to_numpy()
    young_email = np.where(np.isnan(email), 0.0, np.exp(-np.nan_to_num(email) / 60.0))
    hour = f["hour_of_day"].to_numpy()
    return (
        8.0 * f["device_risk"].to_numpy()
        + 7.0 * f["ip_risk"].to_numpy()
        + 2.0 * np.log(np.maximum(ratio, 1.0))
        + 1.0 * f["is_new_device"].to_numpy() * (ratio > 3.0)
        + 0.5 * np.minimum(f["txn_count_1h"].to_numpy(), 6)
        + 0.5 * f["failed_logins_24h"].to_numpy()
        + 0.7 * f["declined_count_24h"].to_numpy()
        + mcc_shift.to_numpy(dtype=float)
        + country_shift.to_numpy(dtype=float)
        + 0.8 * f["is_new_device"].to_numpy()
        + 0.9 * f["shipping_billing_mismatch"].to_numpy()
        + 1.2 * ~f["cvv_match"].to_numpy()
        + 0.5 * ~f["avs_match"].to_numpy()
        + 0.8 * f["password_reset_7d"].to_numpy()
        - 0.6 * f["card_present"].to_numpy()
        + 0.6 * (f["card_age_days"].to_numpy() < 30)
        + 0.5 * (hour < 6)
        + 0.5 * (f["card_type"].to_numpy() == "prepaid")
        + 0.8 * young_email
        + 3.0 * f["merchant_risk_score"].to_numpy()
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@functools.lru_cache(maxsize=16)
def _intercept_for(fraud_rate: float) -> float:
    """The intercept that makes the mean fraud probability equal fraud_rate (a fixed sample)."""
    rng = np.random.default_rng(20_260_101)
    logit = fraud_logit(_features(rng, np.full(50_000, DEFAULT_START_MS, dtype=np.int64)))
    low, high = -40.0, 10.0
    for _ in range(60):
        mid = (low + high) / 2
        if _sigmoid(logit + mid).mean() < fraud_rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def features_of(row: Any) -> dict[str, float | int | str | bool | None]:
    """One transaction's features (a DataFrame row or mapping) as plain Python values."""
    out: dict[str, float | int | str | bool | None] = {}
    for name in FEATURE_NAMES:
        value = row[name]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[name] = value
    return out


def feature_dicts(frame: pd.DataFrame) -> list[dict[str, float | int | str | bool | None]]:
    """Every row's features as plain Python dicts (missing -> None), ready for make_envelope."""
    columns: dict[str, list[Any]] = {}
    for name in FEATURE_NAMES:
        values = frame[name].tolist()
        if name in NULLABLE_FEATURES:
            values = [None if v != v else v for v in values]  # NaN != NaN
        columns[name] = values
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def labels_of(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Late-arriving labels for generated rows (LABEL_SCHEMA): label_time is 1-30 days later."""
    rng = np.random.default_rng([seed, 0x1ABE1])
    delay = rng.integers(DAY_MS, 30 * DAY_MS, len(frame), endpoint=True)
    label_ms = frame["event_time"].to_numpy(dtype=np.int64) + delay
    return pd.DataFrame(
        {
            "txn_id": frame["txn_id"].astype(str).to_numpy(),
            "label": frame["label"].to_numpy().astype(np.int8),
            "amount": frame["amount"].to_numpy(dtype=np.float64),
            "label_time": pd.to_datetime(label_ms, unit="ms", utc=True).astype(
                "datetime64[ms, UTC]"
            ),
        }
    )
