"""Replay: rows become the tap's offers, malformed rows are numbered and skipped, pacing holds."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from producers.replay import ColumnMap, count_rows, replay
from shadow.app.cli.tap import parse_rate
from shadow.envelope import LiveScore
from shadow.errors import UsageError


class RecordingTap:
    """Our tap's interface, keeping what it was offered."""

    def __init__(self) -> None:
        self.offers: list[tuple[str, dict[str, Any], LiveScore, int | None]] = []

    def offer(self, txn_id: str, features: dict, live: LiveScore, event_time: int | None = None):
        self.offers.append((txn_id, features, live, event_time))
        return True

    def stats(self) -> dict[str, int]:
        return {"offered": len(self.offers)}

    def room(self) -> bool:
        return True


CSV = """txn_id,event_time,live_score,mcc,amount,label
a1,1767225600000,0.1,5411,12.5,0
a2,2026-01-01T00:00:01Z,0.2,0042,13.5,1
a3,1767225600002,abc,5411,14.5,0
a4,1767225600003,0.4
,1767225600004,0.5,5411,16.5,0
a6,yesterday,0.6,5411,17.5,0
a7,1767225600006,0.7,5411,18.5,0
"""


def test_csv_rows_offered_and_malformed_rows_numbered(tmp_path: Path) -> None:
    path = tmp_path / "txns.csv"
    path.write_text(CSV)
    tap = RecordingTap()
    columns = ColumnMap(exclude=("label",), string_columns=("mcc",))
    summary = replay(path, tap, columns)
    assert [o[0] for o in tap.offers] == ["a1", "a2", "a7"]
    assert summary.rows == 7
    assert summary.malformed == 4
    assert [number for number, _ in summary.problems] == [3, 4, 5, 6]
    _, features, live, event_time = tap.offers[1]
    assert features == {"mcc": "0042", "amount": 13.5}
    assert live == LiveScore("live@replay", 0.2, None, 0.0)
    assert event_time == 1_767_225_601_000
    assert count_rows(path) == 7


def test_jsonl_with_column_mapping_and_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "txns.jsonl"
    path.write_text(
        '{"id": "j1", "ts": 5, "p": 0.9, "model": "fraud@3", "d": "alert", "ms": 2.5, "x": 1}\n'
        "{not json\n"
        "\n"
        '{"id": "j2", "p": 0.1, "model": "fraud@3", "x": true, "when": "2026-01-01"}\n'
        "[1, 2]\n"
    )
    tap = RecordingTap()
    columns = ColumnMap(
        txn_id="id",
        event_time="ts",
        live_score="p",
        model_id_column="model",
        decision="d",
        latency_ms="ms",
    )
    summary = replay(path, tap, columns)
    assert [number for number, _ in summary.problems] == [2, 5]
    assert tap.offers[0] == ("j1", {"x": 1}, LiveScore("fraud@3", 0.9, "alert", 2.5), 5)
    assert tap.offers[1] == (
        "j2",
        {"x": True, "when": "2026-01-01"},
        LiveScore("fraud@3", 0.1),
        None,
    )


def test_parquet_with_timestamps(tmp_path: Path) -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    table = pa.table(
        {
            "txn_id": ["p1", "p2", None],
            "event_time": pa.array([when, when, when], pa.timestamp("ms", tz="UTC")),
            "live_score": [0.5, None, 0.1],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    path = tmp_path / "txns.parquet"
    pq.write_table(table, path)
    tap = RecordingTap()
    summary = replay(path, tap)
    assert [o[0] for o in tap.offers] == ["p1"]
    assert tap.offers[0][3] == 1_767_225_600_000
    assert [n for n, _ in summary.problems] == [2, 3]
    assert count_rows(path) == 3


def test_rate_limit_paces_rows(tmp_path: Path) -> None:
    path = tmp_path / "txns.jsonl"
    path.write_text("".join(f'{{"txn_id": "r{i}", "live_score": 0.1}}\n' for i in range(60)))
    started = time.monotonic()
    summary = replay(path, RecordingTap(), rate_limit=200)
    elapsed = time.monotonic() - started
    assert summary.rows == 60
    assert elapsed >= 0.25  # 60 rows at 200/s take 0.3 s


def test_parse_rate() -> None:
    assert parse_rate("500/s") == 500
    assert parse_rate("250") == 250
    assert parse_rate(None) is None
    with pytest.raises(UsageError):
        parse_rate("fast")


def test_unknown_format_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "txns.xlsx"
    path.write_text("x")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shadow.app.cli import main; main()",
            "tap",
            "replay",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:")
    assert "Traceback" not in done.stderr


class SlowTap(RecordingTap):
    """A tap whose queue holds 2 records and takes one out every 5 ms."""

    def __init__(self) -> None:
        super().__init__()
        self.queued = 0
        self.last = time.monotonic()
        self.refused = 0

    def _drain(self) -> None:
        taken = int((time.monotonic() - self.last) / 0.005)
        if taken:
            self.queued, self.last = max(0, self.queued - taken), time.monotonic()

    def offer(self, txn_id: str, features: dict, live: LiveScore, event_time: int | None = None):
        self._drain()
        if self.queued >= 2:
            self.refused += 1
            return False
        self.queued += 1
        return super().offer(txn_id, features, live, event_time)

    def room(self) -> bool:
        self._drain()
        return self.queued < 2


def test_replay_waits_for_room_instead_of_dropping(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    rows = pa.table({"txn_id": [f"r{i}" for i in range(40)], "live_score": [0.1] * 40})
    pq.write_table(rows, path)
    tap = SlowTap()
    started = time.monotonic()
    summary = replay(path, tap)
    assert summary.rows == 40 and len(tap.offers) == 40
    assert tap.refused == 0
    assert time.monotonic() - started >= 38 * 0.005 * 0.9  # paced by the tap, not dropped


class FullTap(RecordingTap):
    """A tap that never has room (the broker is away for good)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def room(self) -> bool:
        self.asked += 1
        return False


def test_a_tap_that_stays_full_is_waited_for_once_not_per_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("producers.replay.PATIENCE_S", 0.05)
    path = tmp_path / "rows.parquet"
    rows = pa.table({"txn_id": [f"f{i}" for i in range(200)], "live_score": [0.1] * 200})
    pq.write_table(rows, path)
    started = time.monotonic()
    summary = replay(path, FullTap())
    assert summary.rows == 200
    assert time.monotonic() - started < 1.0  # one 0.05 s wait, not 200 of them
