"""The synthetic transaction generator: deterministic, realistic base rate, envelope-ready."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from shadow.envelope import LiveScore, decode, encode, make_envelope
from shadow.kit.synthetic import (
    DAY_MS,
    FEATURE_NAMES,
    FEATURE_TYPES,
    TransactionGenerator,
    feature_dicts,
    features_of,
    labels_of,
)
from shadow.predictions import LABEL_SCHEMA


def test_same_seed_same_rows_and_different_seed_differs():
    first = TransactionGenerator(3).batch(2000)
    again = TransactionGenerator(3).batch(2000)
    other = TransactionGenerator(4).batch(2000)
    assert first.equals(again)
    assert not first["amount"].equals(other["amount"])


def test_batches_continue_the_stream_with_unique_ids_and_rising_time():
    generator = TransactionGenerator(5)
    a = generator.batch(1000, tps=500)
    b = generator.batch(1000, tps=500)
    ids = set(a["txn_id"]) | set(b["txn_id"])
    assert len(ids) == 2000
    assert a["event_time"].is_monotonic_increasing
    assert b["event_time"].iloc[0] > a["event_time"].iloc[-1]
    # 1000 events at 500/s span about two seconds
    assert 1500 < a["event_time"].iloc[-1] - a["event_time"].iloc[0] < 2500


def test_columns_and_types():
    frame = TransactionGenerator(1).batch(500, start_ms=1_800_000_000_000)
    assert list(frame.columns) == ["txn_id", "event_time", *FEATURE_NAMES, "label"]
    assert len(FEATURE_NAMES) >= 30
    assert frame["event_time"].iloc[0] == 1_800_000_000_000
    assert frame["event_time"].dtype == "int64"
    assert set(frame["label"].unique()) <= {0, 1}
    assert set(FEATURE_TYPES.values()) == {"float", "string", "bool"}


def test_base_rate_is_near_the_requested_fraud_rate():
    frame = TransactionGenerator(11, fraud_rate=0.004).batch(100_000)
    assert 0.003 < frame["label"].mean() < 0.005
    frame = TransactionGenerator(11, fraud_rate=0.05).batch(20_000)
    assert 0.04 < frame["label"].mean() < 0.06


def test_fraud_depends_on_the_strongest_features():
    frame = TransactionGenerator(2, fraud_rate=0.02).batch(50_000)
    risky = frame["device_risk"] > frame["device_risk"].quantile(0.9)
    assert frame.loc[risky, "label"].mean() > 2 * frame.loc[~risky, "label"].mean()


def test_feature_dicts_make_valid_envelopes():
    frame = TransactionGenerator(9).batch(300)
    dicts = feature_dicts(frame)
    assert dicts[7] == features_of(frame.iloc[7])
    for txn_id, event_time, features in zip(
        frame["txn_id"], frame["event_time"], dicts, strict=True
    ):
        envelope = make_envelope(txn_id, features, LiveScore("fraud@1", 0.1), int(event_time))
        assert decode(encode(envelope)).features == features
    card_present = frame["card_present"].to_numpy()
    assert all(d["email_age_days"] is None for d, cp in zip(dicts, card_present, strict=True) if cp)
    assert all(type(d["card_present"]) is bool for d in dicts)


def test_labels_match_the_label_schema_and_arrive_later():
    frame = TransactionGenerator(4).batch(1000)
    labels = labels_of(frame, seed=4)
    table = pa.Table.from_pandas(labels, schema=LABEL_SCHEMA, preserve_index=False)
    assert table.num_rows == 1000
    delay = labels["label_time"].astype("int64").to_numpy() - frame["event_time"].to_numpy()
    assert delay.min() >= DAY_MS
    assert delay.max() <= 30 * DAY_MS
    assert labels["label"].tolist() == frame["label"].tolist()
    assert labels.equals(labels_of(frame, seed=4))


def test_rejects_an_impossible_fraud_rate():
    with pytest.raises(ValueError, match="fraud_rate"):
        TransactionGenerator(1, fraud_rate=0.0)


def test_an_empty_batch_has_the_columns_and_no_rows():
    frame = TransactionGenerator(1).batch(0)
    assert len(frame) == 0 and "label" in frame.columns


def test_a_fixed_calendar_gives_the_same_traffic_at_any_hour() -> None:
    """The demo's traffic is stamped with the wall clock but tells the same story at any hour:
    its calendar (hour of day, day of week) starts at a fixed moment."""
    from shadow.kit.synthetic import TransactionGenerator

    runs = []
    for start in (1_767_225_600_000, 1_767_225_600_000 + 5 * 3_600_000 + 17):
        gen = TransactionGenerator(3, 0.01, calendar_ms=1_767_268_800_000)
        frames = [gen.batch(500, start), gen.batch(500)]
        runs.append(pd.concat(frames).drop(columns=["event_time"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(runs[0], runs[1])
    wall = [TransactionGenerator(3, 0.01).batch(2000, s) for s in (0, 3 * 3_600_000)]
    assert not wall[0]["hour_of_day"].equals(wall[1]["hour_of_day"])
