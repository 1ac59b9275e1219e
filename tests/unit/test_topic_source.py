"""from-topic without a broker: the mapping (paths, checks, one-line errors), the transform
(sampling first, redaction, the worker's verdict), the join (window, bounds, changelog)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consumers.kafka import consumer_config
from producers.source_clients import consumer_config as source_consumer_config
from producers.topic_join import DECISION, REQUEST, DecisionJoin, JoinClock, Joined, Unjoined
from producers.topic_mapping import load_mapping
from producers.topic_transform import SourceTransform
from shadow.envelope import JoinHalf, LiveScore, decode, decode_join_half
from shadow.errors import EnvelopeError, MappingError
from shadow.sampling import Sampler
from shadow.settings import load_settings

MAPPING = """
txn_id: id
event_time: at
live: {model_id: m.id, score: m.score, decision: m.decision, latency_ms: m.ms}
features: {under: f, exclude: [label], fields: {country: merchant.country, odd: [meta, "x.y"]}}
"""


def _mapping(tmp_path: Path, text: str = MAPPING, joined: bool = False) -> Any:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return load_mapping(path, joined)


def _transform(tmp_path: Path, text: str = MAPPING, **tap: Any) -> SourceTransform:
    settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"}, tap=tap)
    return SourceTransform(settings, _mapping(tmp_path, text, "decisions:" in text))


def _record(txn_id: Any = "t-2", **changes: Any) -> dict[str, Any]:
    record = {
        "id": txn_id,
        "at": 1_767_225_600_000,
        "m": {"id": "fraud@7", "score": 0.25, "decision": "pass", "ms": 3},
        "f": {"amount": 12.5, "mcc": "5411", "label": 1, "pan": "4111111111111111"},
        "merchant": {"country": "DE"},
        "meta": {"x.y": True},
    }
    record.update(changes)
    return record


def _bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


def test_a_mapped_record_becomes_the_envelope_the_worker_accepts(tmp_path: Path) -> None:
    transform = _transform(tmp_path, sample_rate=1.0)
    txn_id, value = transform.mirror(_bytes(_record()), 99) or ("", b"")
    envelope = decode(value, txn_id.encode())
    assert envelope.txn_id == "t-2" and envelope.event_time == 1_767_225_600_000
    assert envelope.live == LiveScore("fraud@7", 0.25, "pass", 3.0)
    # the pan dropped by the tap's default drop_fields, the label excluded, named fields added
    assert envelope.features == {"amount": 12.5, "mcc": "5411", "country": "DE", "odd": True}


def test_sampling_comes_first_and_follows_the_tap(tmp_path: Path) -> None:
    transform = _transform(tmp_path)
    sampler = Sampler(1 / 3, "shadow")
    ids = [f"t-{i}" for i in range(300)]
    # m={} cannot be mapped: only the sampled records are read that far (and fail)
    outcomes = {}
    for txn_id in ids:
        try:
            outcomes[txn_id] = transform.mirror(_bytes(_record(txn_id, m={})), 1)
        except EnvelopeError as exc:
            outcomes[txn_id] = exc.reason
    assert {t for t, o in outcomes.items() if o == "missing_field"} == set(filter(sampler, ids))
    assert {t for t, o in outcomes.items() if o is None} == {t for t in ids if not sampler(t)}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"{nope", "not_json"),
        (b"[1, 2]", "not_object"),
        (_bytes({"at": 1}), "missing_txn_id"),
        (_bytes(_record(1.5)), "wrong_type"),
        (_bytes(_record(m={"id": "x", "decision": "pass"})), "missing_field"),
        (_bytes(_record(m={"id": "x", "score": "high"})), "wrong_type"),
        (_bytes(_record(m={"id": 7, "score": 0.1})), "wrong_type"),
        (_bytes(_record(at="yesterday")), "bad_event_time"),
        (_bytes(_record(at=-5)), "bad_event_time"),
        (_bytes(_record(f={"geo": {"lat": 1}})), "wrong_type"),
        (_bytes(_record(f=[1])), "wrong_type"),
        (_bytes(_record(f={"blob": "x" * 70_000})), "oversized"),
    ],
)
def test_records_that_do_not_fit_get_a_reason(tmp_path: Path, value: bytes, reason: str) -> None:
    transform = _transform(tmp_path, sample_rate=1.0)
    with pytest.raises(EnvelopeError) as caught:
        transform.mirror(value, 1)
    assert caught.value.reason == reason
    assert "4111" not in caught.value.detail


def test_integer_ids_iso_times_and_the_kafka_time(tmp_path: Path) -> None:
    transform = _transform(tmp_path, sample_rate=1.0)
    txn_id, value = transform.mirror(_bytes(_record(123, at="2026-01-01T00:00:00Z")), 1) or (
        "",
        b"",
    )
    assert txn_id == "123" and decode(value).event_time == 1_767_225_600_000
    no_time = MAPPING.replace("event_time: at\n", "")
    other = _transform(tmp_path, no_time, sample_rate=1.0)
    # type: ignore below: mirror() gives a (key, value) pair for a mapped record
    assert decode(other.mirror(_bytes(_record()), 4242)[1]).event_time == 4242  # type: ignore[index]


def test_a_constant_live_model_and_hashed_fields(tmp_path: Path) -> None:
    text = MAPPING.replace("model_id: m.id", "model_id_value: fraud@9")
    transform = _transform(tmp_path, text, sample_rate=1.0, hmac_fields=["pan"], hmac_key="k" * 32)
    # type: ignore below: mirror() gives a (key, value) pair for a mapped record
    envelope = decode(transform.mirror(_bytes(_record()), 1)[1])  # type: ignore[index]
    assert envelope.live.model_id == "fraud@9"
    assert len(envelope.features["pan"]) == 64  # the tap's HMAC token, never the PAN


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("live: {score: s, model_id: m}\nfeatures: {under: f}", "txn_id"),
        ("txn_id: id\nfeatures: {under: f}", "live"),
        ("txn_id: id\nlive: {score: s}\nfeatures: {under: f}", "live"),
        ("txn_id: id\nlive: {model_id: m, score: s}\nfeatures: {}", "features"),
        (
            "txn_id: id\nlive: {model_id: m, score: s}\nfeatures: {exclude: [a], fields: {b: c}}",
            "features",
        ),
        ("txn_id: a..b\nlive: {model_id: m, score: s}\nfeatures: {under: f}", "txn_id"),
        (
            "txn_id: id\nlive: {model_id: m, score: s, colour: c}\nfeatures: {under: f}",
            "live.colour",
        ),
        ("txn_id: 5\nlive: {model_id: m, score: s}\nfeatures: {under: f}", "txn_id"),
        ("- a list", "file"),
        ("txn_id: [unclosed", "file"),
    ],
)
def test_bad_mappings_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(MappingError) as caught:
        _mapping(tmp_path, text)
    assert caught.value.field == field and caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


def test_a_joined_mapping_needs_decisions(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        _mapping(tmp_path, MAPPING, joined=True)
    assert caught.value.field == "decisions"


def test_the_cli_says_one_line_and_exits_2_for_a_bad_mapping(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("txn_id: id\nlive: {model_id: m}\nfeatures: {under: f}\n")
    command = "from shadow.app.cli import main; main()"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            command,
            "tap",
            "from-topic",
            "--topic",
            "src",
            "--mapping",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: mapping {path}, live.score: Field required"
    ]


def test_the_consumers_read_committed() -> None:
    settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"})
    assert consumer_config(settings, "w")["isolation.level"] == "read_committed"
    assert source_consumer_config(settings)["isolation.level"] == "read_committed"


# -- the join ---------------------------------------------------------------------------------


def _half(kind: str, txn_id: str, stamp: int, offset: int = 0) -> JoinHalf:
    live = LiveScore("fraud@7", 0.5) if kind == DECISION else None
    features = {"amount": 1} if kind == REQUEST else None
    return JoinHalf(kind, txn_id, stamp, "src", 0, offset, stamp, features, live)


def test_halves_pair_whichever_comes_first() -> None:
    join = DecisionJoin(window_ms=1000, max_pending=10)
    assert join.offer(_half(REQUEST, "a", 1)) == []
    assert join.offer(_half(DECISION, "b", 2)) == []
    first, second = join.offer(_half(DECISION, "a", 3)), join.offer(_half(REQUEST, "b", 4))
    assert isinstance(first[0], Joined) and first[0].request.txn_id == "a"
    assert isinstance(second[0], Joined) and second[0].decision.txn_id == "b"
    assert len(join) == 0


def test_the_window_follows_the_partition_read_least_far() -> None:
    join, wall = DecisionJoin(window_ms=1000, max_pending=10), [0.0]
    join.clock = JoinClock(lambda: wall[0])
    join.clock.expect(REQUEST, [0])
    join.clock.expect(DECISION, [0, 1])
    join.offer(_half(REQUEST, "a", 100))
    join.clock.tick(REQUEST, 0, 5000)
    join.clock.tick(DECISION, 0, 5000)
    assert join.expire() == []  # decisions partition 1 not heard from: the clock stands
    join.clock.tick(DECISION, 1, 900)
    assert join.expire() == []  # partition 1 is behind: a's decision may still come
    join.clock.caught_up(DECISION, 1)  # read to its end at 900: it stands there...
    assert join.expire() == []  # (100 + 1000 >= 900: its next records may only be late)
    wall[0] = 0.5  # ...and moves on with the wall clock while idle: 1400
    (gone,) = join.expire()
    assert isinstance(gone, Unjoined) and gone.reason == "unmatched_request"


def test_memory_is_bounded_and_duplicates_refused() -> None:
    join = DecisionJoin(window_ms=10**9, max_pending=3)
    for i in range(3):
        assert join.offer(_half(REQUEST, f"r{i}", i)) == []
    (dup,) = join.offer(_half(REQUEST, "r1", 9))
    assert isinstance(dup, Unjoined) and dup.reason == "duplicate"
    (over,) = join.offer(_half(DECISION, "d", 10))
    assert isinstance(over, Unjoined) and over.reason == "join_overflow"
    assert over.half.txn_id == "r0" and len(join) == 3


def test_the_changelog_holds_exactly_what_waits() -> None:
    join = DecisionJoin(window_ms=10**9, max_pending=100)
    join.offer(_half(REQUEST, "a", 1))
    join.offer(_half(REQUEST, "b", 2))
    join.offer(_half(DECISION, "b", 3))  # joined within the transaction: never logged
    first = dict(join.changes())
    assert set(first) == {b"request:a"} and decode_join_half(first[b"request:a"]).txn_id == "a"
    join.offer(_half(DECISION, "a", 4))
    join.offer(_half(REQUEST, "a", 5, offset=7))  # a new request under the same id
    ((key, value),) = join.changes()
    assert key == b"request:a" and decode_join_half(value or b"").offset == 7
    join.offer(_half(DECISION, "a", 6))
    assert join.changes() == [(b"request:a", None)]
    restored = DecisionJoin(window_ms=10**9, max_pending=100)
    restored.restore([_half(REQUEST, "z", 1)])
    assert restored.changes() == [] and len(restored) == 1


# -- the loop, on an in-memory stand-in for its Kafka side ------------------------------------


class _Record:
    def __init__(self, topic: str, offset: int, value: bytes) -> None:
        self._topic, self._offset, self._value = topic, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_767_225_600_000 + self._offset)


class _Clients:
    """SourceClients in memory: batches to hand out, what was produced and committed; the
    first commit can be refused (the broker aborted the transaction)."""

    def __init__(self, batches: list[list[_Record]], refuse_first_commit: bool) -> None:
        self.batches = batches
        self.refuse = refuse_first_commit
        self.open: list[tuple[str, bytes | None]] = []
        self.committed: list[tuple[str, bytes | None]] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.rewound = 0
        self.changelog_topic = "cl"

    def consume(self) -> list[_Record]:
        return self.batches.pop(0) if self.batches else []

    def begin(self) -> None:
        self.open = []

    def produce(self, topic: str, value: bytes | None, key: bytes | None, _headers: Any) -> None:
        self.open.append((topic, key))

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from producers.source_clients import TransactionAborted

        if self.refuse:
            self.refuse, self.open = False, []
            raise TransactionAborted("aborted by the broker")
        self.committed += self.open
        self.offsets.update(offsets)

    def rewind(self) -> None:
        self.rewound += 1


def test_an_aborted_transaction_is_read_again_and_counted_once(tmp_path: Path) -> None:
    from producers.topic_source import TopicSource

    settings = load_settings(
        kafka={"bootstrap_servers": "127.0.0.1:1", "topic": "shadow"},
        tap={"sample_rate": 1.0},
        source={"topic": "src"},
    )
    source = TopicSource(settings, _mapping(tmp_path))
    batch = [_Record("src", i, _bytes(_record(f"t-{i}"))) for i in range(3)]
    bad = [_Record("src", 3, b"{nope")]
    # read, refused at commit, read again (rewound), committed; then a dead letter
    fake = _Clients([batch, [], list(batch), [], bad, []], refuse_first_commit=True)
    # type: ignore below: an in-memory stand-in for the source's Kafka clients
    source.clients = fake  # type: ignore[assignment]
    for _ in range(6):
        source.step()
    assert fake.rewound == 1 and source.counts["aborted"] == 1
    assert [key for topic, key in fake.committed if topic == "shadow"] == [b"t-0", b"t-1", b"t-2"]
    assert [topic for topic, _ in fake.committed].count("shadow.dlq") == 1
    assert fake.offsets == {("src", 0): 4}
    assert source.stats()["consumed"] == 4 and source.stats()["mirrored"] == 3


def test_the_window_clock_survives_a_restart() -> None:
    join = DecisionJoin(window_ms=1000, max_pending=10)
    join.offer(_half(REQUEST, "late", 500))
    join.clock.tick(REQUEST, 0, 1200)
    join.clock.tick(DECISION, 0, 1200)
    records = dict(join.changes())
    assert decode_join_half(records[b"clock"]).newest == {"request:0": 1200, "decision:0": 1200}
    # restarted: the changelog's halves and clock, and no record read yet
    restored, wall = DecisionJoin(window_ms=1000, max_pending=10), [0.0]
    restored.clock = JoinClock(lambda: wall[0])
    restored.restore([decode_join_half(value) for value in records.values() if value])
    restored.clock.expect(REQUEST, [0, 1])
    restored.clock.expect(DECISION, [0])
    assert len(restored) == 1 and restored.expire() == []  # request partition 1 not heard from
    restored.clock.caught_up(REQUEST, 1)  # read to its end at once: nothing came
    assert restored.expire() == []  # 500 + 1000 >= 1200
    restored.clock.tick(REQUEST, 0, 1600)
    restored.clock.caught_up(DECISION, 0)  # stood at 1200 before the restart, nothing new
    assert restored.expire() == []
    wall[0] = 0.4  # idle for 0.4 s: 1600
    (gone,) = restored.expire()
    assert gone.reason == "unmatched_request" and gone.half.txn_id == "late"
