"""kill -9 `shadow tap from-topic` five times while 50,000 source records arrive: the shadow
topic, read committed, holds exactly the sampled set (worked out from the sampling formula, not
our code), each once, and every unmappable record is in the DLQ once."""

from __future__ import annotations

import collections
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import yaml
from source_support import (
    Spawner,
    committed_total,
    headers_of,
    produce_json,
    read_all,
    sampled,
    scored_record,
    write_mapping,
)

pytestmark = pytest.mark.integration

RECORDS = 50_000
BAD_EVERY = 1000  # one record in a thousand cannot be mapped (no score, or not JSON)
KILLS = 5
RATE, SALT = 1 / 3, "kill-test"
CHUNK = 1000
ROOT = Path(__file__).resolve().parents[2]


def _source_records() -> list[tuple[bytes | None, object]]:
    records: list[tuple[bytes | None, object]] = []
    for i in range(RECORDS):
        record = scored_record(i)
        if i % BAD_EVERY == 7:
            # type: ignore below: scored_record() is a JSON-like dict: its nested values are typed object
            del record["scoring"]["score"]  # type: ignore[attr-defined]
        elif i % BAD_EVERY == 507:
            # type: ignore below: scored_record() is a JSON-like dict: its nested values are typed object
            records.append((record["id"].encode(), b"{not json"))  # type: ignore[union-attr]
            continue
        # type: ignore below: scored_record() is a JSON-like dict: its nested values are typed object
        records.append((record["id"].encode(), record))  # type: ignore[union-attr]
    return records


def _config(tmp_path: Path, bootstrap: str, source: str, shadow: str, group: str) -> Path:
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "topic": shadow},
        "tap": {"sample_rate": RATE, "salt": SALT},
        "source": {
            "topic": source,
            "mapping": str(write_mapping(tmp_path)),
            "group_id": group,
            "instance_id": "killed",
            "start_at": "earliest",
            "commit_interval_ms": 200,
            "batch_size": 500,
        },
        "log": {"level": "INFO"},
    }
    path = tmp_path / "source.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    spawner = Spawner(ROOT)
    yield spawner
    spawner.stop_all()


def _wait_for_progress(group_total, beyond: int, proc: subprocess.Popen, log: Path) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        total = group_total()
        if total > beyond:
            return total
        time.sleep(0.2)
    raise AssertionError("the source committed nothing in 120 s: " + log.read_text()[-3000:])


def test_kill_9_five_times_during_50k_source_records(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path, spawn: Spawner
) -> None:
    source, shadow = unique_topic(3, "src"), unique_topic(3, "shadow")
    config = _config(tmp_path, kafka_bootstrap, source, shadow, unique_group)
    records = _source_records()
    where: list[tuple[int, int]] = []
    feeder = threading.Thread(  # the live service keeps publishing through every kill
        target=lambda: [
            (
                where.extend(produce_json(kafka_bootstrap, source, records[i : i + CHUNK])),
                time.sleep(0.4),
            )
            for i in range(0, RECORDS, CHUNK)
        ],
        daemon=True,
    )
    feeder.start()
    log, rng = tmp_path / "source.log", random.Random(20)
    group_total = lambda: committed_total(kafka_bootstrap, unique_group, source, 3)  # noqa: E731
    killed_at = [0]
    for _ in range(KILLS):
        proc = spawn(config, log)
        _wait_for_progress(group_total, killed_at[-1], proc, log)
        time.sleep(rng.uniform(0.0, 0.8))  # land anywhere: mid-batch, mid-commit, between
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        killed_at.append(group_total())
    feeder.join(180)
    proc = spawn(config, log, "--idle-exit", "5", "--json")
    assert proc.wait(300) == 0, log.read_text()[-3000:]

    # type: ignore below: value is bytes or a record dict; _mappable tells them apart
    good = [key.decode() for key, value in records if _mappable(value)]  # type: ignore[union-attr]
    expected = sampled(good, RATE, SALT)
    # beyond its txn_id, a record out of the sample is never read: only the sampled ones
    # without a score are dead letters, with every record that is not JSON
    no_score = sampled([k.decode() for k, v in records if isinstance(v, dict)], RATE, SALT)
    bad = {
        where[i]
        for i, (key, value) in enumerate(records)
        if not isinstance(value, dict) or (not _mappable(value) and key.decode() in no_score)
    }
    envelopes = read_all(kafka_bootstrap, shadow)
    seen = collections.Counter(message.key().decode() for message in envelopes)
    assert max(seen.values()) == 1, [t for t, n in seen.items() if n > 1][:5]
    assert set(seen) == expected
    scores = {f"src-{i:07d}": (i % 1000) / 1000 for i in range(RECORDS)}
    for message in envelopes:
        value = msgspec.json.decode(message.value())
        assert value["live"]["score"] == scores[value["txn_id"]]
        assert set(value["features"]) == {"amount", "mcc", "country"}  # cvv dropped, label out
    letters = read_all(kafka_bootstrap, f"{shadow}.dlq")
    spots = collections.Counter(
        (int(h["shadow-source-partition"]), int(h["shadow-source-offset"]))
        for h in map(headers_of, letters)
    )
    assert max(spots.values()) == 1
    assert set(spots) == bad, (len(spots), len(bad), sorted(bad - set(spots))[:5])
    aborted = len(read_all(kafka_bootstrap, shadow, "read_uncommitted")) - len(envelopes)
    print(
        f"kill -9 x{KILLS}, committed source offsets at each kill {killed_at[1:]}; "
        f"{len(envelopes)} envelopes of {len(records)} records, {len(bad)} dead letters; "
        f"{aborted} records of aborted transactions left behind by the kills"
    )
    assert 0 < max(killed_at) < RECORDS, "every kill must land mid-run"


def _mappable(value: object) -> bool:
    # type: ignore below: value is a record dict here: isinstance just said so
    return isinstance(value, dict) and "score" in value["scoring"]  # type: ignore[index]
