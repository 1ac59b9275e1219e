"""Joined from-topic: requests on one topic, live decisions on another, paired on txn_id in a
window; the unmatched go to the DLQ; the join's state survives a stop and kill -9 exactly once."""

from __future__ import annotations

import collections
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from source_support import (
    JOINED_MAPPING,
    Spawner,
    committed_total,
    headers_of,
    produce_json,
    read_all,
    sampled,
    write_mapping,
)

from producers.topic_mapping import load_mapping
from producers.topic_source import TopicSource
from shadow.sampling import Sampler
from shadow.settings import load_settings

pytestmark = pytest.mark.integration

RATE, SALT = 0.5, "join-test"
BASE_MS = time.time_ns() // 1_000_000 - 2 * 3_600_000
"""Two hours ago: the records' Kafka timestamps must stay within the broker's retention (a
segment whose newest timestamp is older is deleted) and not lie in the future."""
WINDOW_S = 10.0
"""Longer than a run waits idle (a partition read to its end moves on with the wall clock)."""
ROOT = Path(__file__).resolve().parents[2]


def _traffic(n: int) -> tuple[list[Any], list[int], list[Any], list[int]]:
    """Requests and decisions: every 100th request has no decision, every 100th decision
    (offset by 50) has no request; a decision is 50 ms after its request."""
    requests, request_ts, decisions, decision_ts = [], [], [], []
    for i in range(n):
        txn = f"j-{i:06d}"
        requests.append((txn.encode(), _request(txn, i)))
        request_ts.append(BASE_MS + i)
        if i % 100 == 50:
            txn = f"orphan-{i:06d}"  # a decision whose request never comes
        if i % 100 != 0:
            decisions.append((txn.encode(), _decision(txn, i)))
            decision_ts.append(BASE_MS + i + 50)
    return requests, request_ts, decisions, decision_ts


def _end_of_traffic(bootstrap: str, topic: str, partitions: int, make: Any) -> None:
    """A record out of the sample on every partition, minutes after the traffic: the window's
    clock passes every unmatched half's window (the record itself is never joined)."""
    sampler = Sampler(RATE, SALT)
    ids = [t for t in (f"end-{i}" for i in range(100)) if not sampler(t)][:partitions]
    records = [(t.encode(), make(t, 0)) for t in ids]
    stamps = [BASE_MS + 1_000_000] * partitions
    produce_json(bootstrap, topic, records, stamps, list(range(partitions)))


def _request(txn: str, i: int) -> dict[str, Any]:
    return {"id": txn, "created_at": BASE_MS + i, "payload": {"amount": i, "label": 1}}


def _decision(txn: str, i: int) -> dict[str, Any]:
    return {"txn": txn, "model": "fraud@7", "score": (i % 1000) / 1000, "outcome": "pass"}


def _expected(requests: list[Any], decisions: list[Any]) -> tuple[set[str], set[str], set[str]]:
    asked = {key.decode() for key, _ in requests}
    answered = {key.decode() for key, _ in decisions}
    return (
        sampled(sorted(asked & answered), RATE, SALT),
        sampled(sorted(asked - answered), RATE, SALT),
        sampled(sorted(answered - asked), RATE, SALT),
    )


def _settings(bootstrap: str, tmp_path: Path, topics: dict[str, str], group: str) -> dict:
    return {
        "kafka": {"bootstrap_servers": bootstrap, "topic": topics["shadow"]},
        "tap": {"sample_rate": RATE, "salt": SALT},
        "source": {
            "topic": topics["requests"],
            "decisions_topic": topics["decisions"],
            "mapping": str(write_mapping(tmp_path, JOINED_MAPPING)),
            "group_id": group,
            "instance_id": "joined",
            "start_at": "earliest",
            "join_window_s": WINDOW_S,
            "commit_interval_ms": 200,
            "batch_size": 500,
        },
    }


def _check(bootstrap: str, shadow: str, requests: list[Any], decisions: list[Any]) -> int:
    joined, lone_requests, lone_decisions = _expected(requests, decisions)
    envelopes = read_all(bootstrap, shadow)
    seen = collections.Counter(message.key().decode() for message in envelopes)
    assert max(seen.values()) == 1
    assert set(seen) == joined
    for message in envelopes:
        value = msgspec.json.decode(message.value())
        i = int(value["txn_id"].removeprefix("j-"))
        assert value["live"]["score"] == (i % 1000) / 1000  # from the decision
        assert value["features"] == {"amount": i}  # from the request
    letters = [(m.key().decode(), headers_of(m)) for m in read_all(bootstrap, f"{shadow}.dlq")]
    reasons = collections.Counter((key, h["shadow-dlq-reason"]) for key, h in letters)
    assert max(reasons.values()) == 1
    assert {k for k, r in reasons if r == "unmatched_request"} == lone_requests
    assert {k for k, r in reasons if r == "unmatched_decision"} == lone_decisions
    return len(envelopes)


def test_requests_and_decisions_are_joined_across_a_restart(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path
) -> None:
    topics = {"requests": unique_topic(3), "decisions": unique_topic(2), "shadow": unique_topic()}
    settings = load_settings(**_settings(kafka_bootstrap, tmp_path, topics, unique_group))
    spec = load_mapping(settings.source.mapping, joined=True)
    requests, request_ts, decisions, decision_ts = _traffic(3000)
    half = len(decisions) // 2
    produce_json(kafka_bootstrap, topics["requests"], requests, request_ts)
    produce_json(kafka_bootstrap, topics["decisions"], decisions[:half], decision_ts[:half])
    first = TopicSource(settings, spec).run(idle_exit_s=3)
    assert first["join_waiting"] > 0  # requests still waiting for decisions: in the changelog
    produce_json(kafka_bootstrap, topics["decisions"], decisions[half:], decision_ts[half:])
    _end_of_traffic(kafka_bootstrap, topics["requests"], 3, _request)
    _end_of_traffic(kafka_bootstrap, topics["decisions"], 2, _decision)
    second = TopicSource(settings, spec).run(idle_exit_s=3)
    assert second["join_waiting"] == 0
    count = _check(kafka_bootstrap, topics["shadow"], requests, decisions)
    assert count == first["mirrored"] + second["mirrored"]


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    spawner = Spawner(ROOT)
    yield spawner
    spawner.stop_all()


def test_kill_9_three_times_while_joining(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path, spawn: Spawner
) -> None:
    topics = {"requests": unique_topic(3), "decisions": unique_topic(3), "shadow": unique_topic()}
    config = tmp_path / "source.yaml"
    config.write_text(yaml.safe_dump(_settings(kafka_bootstrap, tmp_path, topics, unique_group)))
    requests, request_ts, decisions, decision_ts = _traffic(20_000)

    def feed() -> None:  # 99 decisions for every 100 requests, then the end
        for k, i in enumerate(range(0, len(requests), 1000)):
            produce_json(
                kafka_bootstrap,
                topics["requests"],
                requests[i : i + 1000],
                request_ts[i : i + 1000],
            )
            j = slice(k * 990, (k + 1) * 990)
            produce_json(kafka_bootstrap, topics["decisions"], decisions[j], decision_ts[j])
            time.sleep(0.8)
        _end_of_traffic(kafka_bootstrap, topics["requests"], 3, _request)
        _end_of_traffic(kafka_bootstrap, topics["decisions"], 3, _decision)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    log, rng, progress = tmp_path / "source.log", random.Random(3), [0]
    total = lambda: committed_total(kafka_bootstrap, unique_group, topics["requests"], 3)  # noqa: E731
    for _ in range(3):
        proc = spawn(config, log)
        deadline = time.monotonic() + 120
        while total() <= progress[-1]:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        progress.append(total())
    feeder.join(180)
    proc = spawn(config, log, "--idle-exit", "5")
    assert proc.wait(300) == 0, log.read_text()[-3000:]
    count = _check(kafka_bootstrap, topics["shadow"], requests, decisions)
    print(f"joined kill -9 x3 at committed request offsets {progress[1:]}: {count} envelopes")
    assert 0 < max(progress) < len(requests)
