"""`shadow tap replay|synthetic` exit codes: non-zero with one line when nothing is delivered
or too much is lost (librdkafka's chatter held back); `shadow topics create`; `--version`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.integration

SHADOW = [sys.executable, "-m", "shadow"]


def shadow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHADOW, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        timeout=300,
    )


def history(tmp_path: Path, rows: int = 300) -> Path:
    path = tmp_path / "history.parquet"
    ids = [f"h-{i:05d}" for i in range(rows)]
    pq.write_table(pa.table({"txn_id": ids, "live_score": [0.1] * rows}), path)
    return path


def one_line(stderr: str) -> str:
    """The one line a run prints on stderr besides its progress bar."""
    lines = [line for line in stderr.splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    return lines[0]


def test_replay_to_an_unreachable_broker_exits_1_with_one_line(tmp_path: Path) -> None:
    env = {"SHADOW__KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = shadow("tap", "replay", str(history(tmp_path)), "--json", env=env)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("error: kafka: no broker at 127.0.0.1:1 answered")


def test_synthetic_to_an_unreachable_broker_exits_1_with_one_line(tmp_path: Path) -> None:
    env = {"SHADOW__KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = shadow("tap", "synthetic", "--seconds", "1", "--tps", "50", "--json", env=env)
    assert done.returncode == 1
    assert one_line(done.stderr).startswith("error: kafka: no broker at 127.0.0.1:1")


def test_replay_that_delivers_nothing_exits_1_and_says_why(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The broker answers but refuses every record (a topic whose records may hold 64 bytes at
    most): the summary still prints, then one line names the loss and the broker's last word."""
    from confluent_kafka.admin import NewTopic

    topic = f"tiny-{os.urandom(5).hex()}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "64"})])[topic].result(
        30
    )
    env = {
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHADOW__KAFKA__TOPIC": topic,
        "SHADOW__TAP__DELIVERY_TIMEOUT_MS": "3000",
    }
    done = shadow("tap", "replay", str(history(tmp_path)), "--sample-rate", "1", "--json", env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["delivered"] == 0 and summary["rows"] == 300
    line = one_line(done.stderr)
    assert line.startswith(f"error: tap to {topic}: nothing delivered: 300 of 300")
    assert "(broker said: " in line and "too large" in line.lower(), line


def test_an_invalid_topic_name_is_refused_before_any_broker_is_asked(tmp_path: Path) -> None:
    env = {"SHADOW__KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1", "SHADOW__KAFKA__TOPIC": "no spaces"}
    done = shadow("tap", "replay", str(history(tmp_path)), "--json", env=env)
    assert done.returncode == 2
    assert "kafka.topic" in one_line(done.stderr)


def test_replay_with_nothing_sampled_exits_1(kafka_bootstrap: str, unique_topic, tmp_path) -> None:
    env = {
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHADOW__KAFKA__TOPIC": unique_topic(),
    }
    done = shadow("tap", "replay", str(history(tmp_path)), "--sample-rate", "0", env=env)
    assert done.returncode == 1
    assert "no transaction of 300 offered was sampled" in one_line(done.stderr)


def test_replay_and_synthetic_that_deliver_exit_0(
    kafka_bootstrap: str, unique_topic: Callable[..., str], tmp_path: Path
) -> None:
    env = {
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHADOW__KAFKA__TOPIC": unique_topic(),
    }
    replayed = shadow("tap", "replay", str(history(tmp_path)), "--json", env=env)
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert json.loads(replayed.stdout)["delivered"] > 0
    synthetic = shadow("tap", "synthetic", "--seconds", "1", "--tps", "300", "--json", env=env)
    assert synthetic.returncode == 0, synthetic.stderr[-2000:]
    summary = json.loads(synthetic.stdout)
    assert summary["delivered"] > 0 and summary["failed"] == 0


def test_topics_create_is_idempotent_and_reports_what_exists(kafka_bootstrap: str) -> None:
    suffix = os.urandom(4).hex()
    env = {
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHADOW__KAFKA__TOPIC": f"txns-{suffix}",
        "SHADOW__WORKER__PREDICTIONS_TOPIC": f"preds-{suffix}",
    }
    first = shadow("topics", "create", "--partitions", "4", "--json", env=env)
    assert first.returncode == 0, first.stderr
    created = {t["role"]: t for t in json.loads(first.stdout)}
    assert {t["name"] for t in created.values()} == {
        f"txns-{suffix}",
        f"txns-{suffix}.dlq",
        f"preds-{suffix}",
    }
    assert all(t["status"] == "created" and t["partitions"] == 4 for t in created.values())
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=30)
    assert len(metadata.topics[f"txns-{suffix}"].partitions) == 4  # the broker's own word

    again = shadow("topics", "create", "--partitions", "8", "--json", env=env)
    assert again.returncode == 0, again.stderr
    existing = {t["role"]: t for t in json.loads(again.stdout)}
    assert all(t["status"] == "exists" and t["partitions"] == 4 for t in existing.values())
    assert "fewer partitions than the 8 asked" in existing["transactions"]["note"]


def test_topics_create_asking_more_replicas_than_brokers_is_one_line(kafka_bootstrap) -> None:
    env = {
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHADOW__KAFKA__TOPIC": f"txns-{os.urandom(4).hex()}",
    }
    done = shadow("topics", "create", "--replication", "3", env=env)
    assert done.returncode == 1
    assert one_line(done.stderr).startswith("error: kafka: cannot create topic txns-")


def test_version() -> None:
    done = subprocess.run([*SHADOW, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "shadow 0.1.0"
