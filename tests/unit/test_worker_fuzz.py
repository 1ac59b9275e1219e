"""Property: whatever bytes arrive, the worker's decode -> validate -> score -> buffer -> flush ->
commit path raises nothing, every record ends in a written object or in the DLQ (never both,
never neither), and nothing committed is missing. Real worker code and real tiny ONNX models;
Kafka, the DLQ producer and the store are in-memory stand-ins (tests/unit/worker_fakes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from worker_fakes import (
    TOPIC,
    CollectingProducer,
    FakeConsumer,
    MemoryStore,
    attached_worker,
    candidate_set,
    messages_of,
    run_to_end,
    tiny_candidate,
)

from consumers.dlq import HEADROOM
from shadow.envelope import FEATURE_TYPE, REASONS, UNSTORABLE
from shadow.settings import load_settings

EXAMPLES = 100
"""Envelope lists tried per run (each of 1-25 records): a few tens of seconds in `make test`."""
MAX_ENVELOPE = 6000
DLQ_BYTES = HEADROOM + 3000
DAY_MS = 1_767_225_600_000

_EDGE_INTS = st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64, 10**30]
)
_EDGE_FLOATS = st.sampled_from(
    [0.0, -0.0, 5e-324, 1e-300, 1e30, 3.5e38, 1e39, 1.7976931348623157e308]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _EDGE_INTS,
    st.floats(allow_nan=False, allow_infinity=False),
    _EDGE_FLOATS,
    st.text(max_size=40),
    st.text(min_size=4090, max_size=4100, alphabet="ab"),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
NAMES = st.one_of(
    st.sampled_from(["amount", "merchant_category", "device_risk", "ip_risk", "country"]),
    st.sampled_from(["", "txn_id", "date", "event_time", "Amount", "x" * 129]),
    st.text(max_size=12),
)
EVENT_TIMES = st.one_of(
    st.integers(DAY_MS - 10**10, DAY_MS + 10**10),
    st.sampled_from([0, -1, 1, 946_684_800_000 - 1, 4_102_444_800_000, 10**15, 2**63, 2**70]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict:
    """An envelope-shaped object, mostly well formed, each field hostile now and then."""
    features = draw(
        st.fixed_dictionaries(
            {
                "amount": st.one_of(st.floats(0, 1e4), SCALARS),
                "merchant_category": st.one_of(st.sampled_from(["5411", "7995"]), SCALARS),
            },
        )
        | st.dictionaries(NAMES, st.one_of(SCALARS, JSON), max_size=6)
    )
    live = {
        "model_id": draw(st.one_of(st.just("fraud@7"), st.text(max_size=300))),
        "score": draw(st.one_of(st.floats(0, 1), SCALARS)),
        "decision": draw(st.one_of(st.just("pass"), st.none(), SCALARS)),
        "latency_ms": draw(st.one_of(st.floats(0, 50), SCALARS)),
    }
    record = {
        "schema": draw(st.sampled_from([1, 1, 1, 1, 2, "1", None])),
        "txn_id": draw(st.one_of(st.text(min_size=1, max_size=20), st.text(max_size=300), SCALARS)),
        "event_time": draw(EVENT_TIMES),
        "live": draw(st.one_of(st.just(live), JSON)),
        "features": draw(st.one_of(st.just(features), JSON)),
    }
    for name in draw(st.lists(st.sampled_from(list(record)), max_size=2, unique=True)):
        del record[name]
    if draw(st.booleans()):
        record[draw(st.text(max_size=6))] = draw(JSON)
    return record


VALID_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _EDGE_FLOATS,
    st.text(max_size=30),
)


@st.composite
def valid_envelopes(draw: st.DrawFn) -> dict:
    """A well-formed envelope whose features take any valid type: the models' inputs and the
    features dataset meet every mix of kinds, across records of one batch."""

    # mostly what the models take (a record they cannot take is refused as feature_type); the
    # features no model takes carry every mix of kinds
    def pick(usual: st.SearchStrategy) -> object:
        return draw(VALID_SCALARS if draw(st.integers(0, 9)) == 0 else usual)

    features = {
        "amount": pick(st.floats(-1e6, 1e6) | st.integers(-(2**53), 2**53)),
        "merchant_category": pick(st.sampled_from(["5411", "7995", 5411, None])),
        "device_risk": pick(st.floats(0, 1)),
        "ip_risk": pick(st.floats(0, 1)),
    }
    extra = st.dictionaries(st.sampled_from(["country", "seen", "n", "Note", "é"]), VALID_SCALARS)
    features.update(draw(extra))
    for name in draw(st.lists(st.sampled_from(list(features)), max_size=3, unique=True)):
        del features[name]
    return {
        "schema": 1,
        "txn_id": draw(st.text(min_size=1, max_size=20)),
        "event_time": draw(st.integers(946_684_800_000, 4_102_444_800_000 - 1)),
        "live": {
            "model_id": "fraud@7",
            "score": draw(st.floats(0, 1)),
            "decision": "pass",
            "latency_ms": draw(st.floats(0, 50)),
        },
        "features": features,
    }


@st.composite
def records(draw: st.DrawFn) -> tuple[int, bytes | None, bytes | None]:
    """(partition, key, value): a valid envelope with features of any type, a hostile one, a
    deep or huge one, or any bytes."""
    partition = draw(st.integers(0, 2))
    kind = draw(
        st.sampled_from(["valid"] * 6 + ["envelope"] * 3 + ["deep", "huge", "bytes", "empty"])
    )
    envelope = draw(valid_envelopes() if kind == "valid" else envelopes())
    if kind == "deep":
        depth = draw(st.integers(60, 3000))
        value = json.dumps({**envelope, "features": "X"}).replace('"X"', "[" * depth + "]" * depth)
        data = value.encode()
    elif kind == "huge":
        data = json.dumps(
            {**envelope, "pad": "x" * draw(st.integers(MAX_ENVELOPE, 3 * MAX_ENVELOPE))}
        ).encode()
    elif kind == "bytes":
        data = draw(st.binary(max_size=200))
    elif kind == "empty":
        data = draw(st.sampled_from([None, b""]))
    else:
        data = json.dumps(envelope, ensure_ascii=draw(st.booleans())).encode()
    txn_id = envelope.get("txn_id")
    key = draw(
        st.one_of(
            st.just(txn_id.encode() if isinstance(txn_id, str) else None),
            st.none(),
            st.binary(max_size=30),
        )
    )
    return partition, key, data


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list:
    folder: Path = tmp_path_factory.mktemp("fuzz-models")
    return [tiny_candidate(folder, "columns", "cols@1"), tiny_candidate(folder, "tensor", "tens@1")]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    batch=st.lists(records(), min_size=3, max_size=25),
    store_features=st.booleans(),
    flush_records=st.integers(1, 30),
    outage=st.sampled_from([0, 0, 0, 0, 0, 1]),
    commit_failures=st.sampled_from([0, 0, 0, 0, 0, 1]),
)
def test_no_record_is_lost_or_committed_unstored(
    models, batch, store_features, flush_records, outage, commit_failures
) -> None:
    conf = {
        "store_features": store_features,
        "flush_records": flush_records,
        "flush_seconds": 0.01,
        "batch_size": 7,
    }
    config = load_settings(
        kafka={"topic": TOPIC}, tap={"max_envelope_bytes": MAX_ENVELOPE}, worker=conf
    )
    messages = messages_of(batch)
    consumer = FakeConsumer(messages, fail_commits=commit_failures)
    store, producer = MemoryStore(fail_puts=outage), CollectingProducer(max_bytes=DLQ_BYTES)
    worker = attached_worker(config, candidate_set(config, models), store, consumer, producer)
    run_to_end(worker, consumer)  # raises whatever escapes the worker

    stored = _stored(store, store_features)
    refused = producer.refused()
    offsets = {(m.partition(), m.offset()) for m in messages}
    assert not set(stored) & set(refused), "a record both stored and refused"
    assert set(stored) | set(refused) == offsets, "a record neither stored nor refused"
    assert set(refused.values()) <= set(REASONS) | {FEATURE_TYPE, UNSTORABLE}
    assert all(len(letter["value"] or b"") <= DLQ_BYTES - HEADROOM for letter in producer.letters())
    assert consumer.committed == {p: consumer.high[p] for p in consumer.high}
    for rows in stored.values():
        assert rows == len(models) + 1  # every candidate (score or error) and the live row
    event(f"records stored: {'some' if stored else 'none'}")
    for reason in set(refused.values()):
        event(f"refused as {reason}")


def _stored(store: MemoryStore, features: bool) -> dict[tuple[int, int], int]:
    """(partition, offset) -> prediction rows, from objects read whole; event times readable
    as datetimes within the worker's range; the features objects hold the same transactions."""
    counts: dict[tuple[int, int], int] = {}
    for table in store.tables("predictions"):
        years = {t.year for t in table.column("event_time").to_pylist()}
        assert years <= set(range(2000, 2100))
        pairs = zip(
            table.column("kafka_partition").to_pylist(),
            table.column("kafka_offset").to_pylist(),
            strict=True,
        )
        for pair in pairs:
            counts[pair] = counts.get(pair, 0) + 1
    if features:
        txns = {t for table in store.tables("features") for t in table.column("txn_id").to_pylist()}
        predicted = pa.concat_tables(store.tables("predictions")) if counts else None
        assert txns == (set(predicted.column("txn_id").to_pylist()) if predicted else set())
    else:
        assert not store.list("features/")
    return counts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["amount", "device_risk", "ip_risk", "merchant_category", "other"]),
            st.one_of(SCALARS, st.integers(min_value=10**20, max_value=10**400)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_scorer_never_fails_a_batch_for_its_inputs_types(models, rows) -> None:
    """A string where a model wants a float, a bool, an integer too large for any type, a
    string too long: the scorer fills what it cannot use and scores the batch (it is handed
    what the worker refuses too, e.g. by a canary or a bench)."""
    from shadow.scorer import FeatureFrame

    frame = FeatureFrame(rows)
    for candidate in models:
        batch = candidate.scorer.score_columns(frame)
        assert batch.scores.shape == (len(rows),)
