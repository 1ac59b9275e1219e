"""Replay - mirrors historical transactions from a file through the tap's own path.

Parquet, CSV or JSON Lines rows go through ``ShadowTap.offer`` exactly as live traffic does
(same sampling, redaction and encoding). A malformed row is reported by its number (1-based
count of data rows; a CSV's header is not a row) and skipped; the rest go on.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shadow.envelope import FeatureValue, LiveScore
from shadow.errors import UsageError

if TYPE_CHECKING:
    from producers.tap import Tap

logger = logging.getLogger(__name__)

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
REPORTED_PROBLEMS = 20
"""Malformed rows logged one by one; beyond this they are only counted."""
PROGRESS_EVERY = 1000
PATIENCE_S = 60.0
"""How long replay waits for room in the tap before it offers anyway (dropped and counted)
until room returns."""


@dataclass(frozen=True)
class ColumnMap:
    """Which file columns hold the envelope's fields; every other column is a feature."""

    txn_id: str = "txn_id"
    event_time: str | None = "event_time"
    """Epoch ms, ISO-8601 text or a timestamp; a missing column means "now"."""
    live_score: str = "live_score"
    model_id: str = "live@replay"
    """The live model's id for every row, unless model_id_column names a column."""
    model_id_column: str | None = None
    decision: str | None = None
    latency_ms: str | None = None
    exclude: tuple[str, ...] = ()
    """Columns that are neither envelope fields nor features (e.g. a label)."""
    string_columns: tuple[str, ...] = ()
    """CSV columns kept as text even when they look numeric (e.g. merchant_category)."""

    def reserved(self) -> frozenset[str]:
        named = (self.txn_id, self.event_time, self.live_score, self.model_id_column)
        extra = (self.decision, self.latency_ms, *self.exclude)
        return frozenset(name for name in (*named, *extra) if name)


@dataclass
class ReplaySummary:
    """What a replay did: rows read, malformed rows skipped, the tap's counters, time taken."""

    rows: int = 0
    malformed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class MalformedRow(ValueError):
    """A row that cannot become an envelope; the message names the column, never its value."""


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: unknown format; use .parquet, .csv or .jsonl")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    return fmt


def count_rows(path: Path) -> int:
    """Data rows in the file (for a progress bar): Parquet metadata, else lines."""
    fmt = file_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(0, lines - 1) if fmt == "csv" else lines


def read_rows(path: Path, columns: ColumnMap) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(row number, row) pairs; row is None when the file's own structure is broken there."""
    fmt = file_format(path)
    if fmt == "parquet":
        return _parquet_rows(path)
    if fmt == "csv":
        return _csv_rows(path, columns.string_columns)
    return _jsonl_rows(path)


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _csv_rows(
    path: Path, string_columns: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, Any] | None]]:
    import pyarrow as pa
    import pyarrow.csv as pc

    broken: set[int] = set()

    def skip(row: Any) -> str:
        # row.number is the file's line number; the header is line 1, so data row = line - 1
        broken.add(row.number - 1 if row.number else 0)
        return "skip"

    table = pc.read_csv(
        path,
        read_options=pc.ReadOptions(use_threads=False),
        parse_options=pc.ParseOptions(invalid_row_handler=skip),
        convert_options=pc.ConvertOptions(
            column_types={name: pa.string() for name in string_columns},
            strings_can_be_null=True,
        ),
    )
    number = 0
    for batch in table.to_batches(max_chunksize=4096):
        for row in batch.to_pylist():
            number += 1
            while number in broken:
                yield number, None
                number += 1
            yield number, row
    for number in sorted(n for n in broken if n > number or n == 0):
        yield number, None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    import msgspec

    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = msgspec.json.decode(line)
            except msgspec.DecodeError:
                row = None
            yield number, row if isinstance(row, dict) else None


def to_offer(
    row: dict[str, Any], columns: ColumnMap
) -> tuple[str, dict[str, FeatureValue], LiveScore, int | None]:
    """A row's (txn_id, features, live score, event time), or MalformedRow naming the column."""
    txn_id = row.get(columns.txn_id)
    if isinstance(txn_id, int) and not isinstance(txn_id, bool):
        txn_id = str(txn_id)
    if not isinstance(txn_id, str) or not txn_id:
        raise MalformedRow(f"no {columns.txn_id}")
    score = _number(row.get(columns.live_score), columns.live_score)
    model_id = columns.model_id
    if columns.model_id_column:
        found = row.get(columns.model_id_column)
        if not isinstance(found, str) or not found:
            raise MalformedRow(f"no {columns.model_id_column}")
        model_id = found
    decision = row.get(columns.decision) if columns.decision else None
    if decision is not None and not isinstance(decision, str):
        raise MalformedRow(f"{columns.decision} is not text")
    latency = row.get(columns.latency_ms) if columns.latency_ms else None
    latency_ms = 0.0 if latency is None else _number(latency, str(columns.latency_ms))
    live = LiveScore(model_id, score, decision, latency_ms)
    event_time = _event_time(row.get(columns.event_time)) if columns.event_time else None
    reserved = columns.reserved()
    features = {k: _feature(k, v) for k, v in row.items() if k not in reserved}
    return txn_id, features, live, event_time


def _number(value: Any, column: str) -> float:
    if isinstance(value, bool) or value is None:
        raise MalformedRow(f"{column} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MalformedRow(f"{column} is not a number") from None
    if not math.isfinite(number):
        raise MalformedRow(f"{column} is not finite")
    return number


def _event_time(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            return _event_time(dt.datetime.fromisoformat(value))
        except ValueError:
            pass
    raise MalformedRow("event time is neither epoch ms nor ISO-8601")


def _feature(name: str, value: Any) -> FeatureValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise MalformedRow(f"feature {name} has an unsupported type {type(value).__name__}")


def replay(
    path: Path,
    tap: Tap,
    columns: ColumnMap | None = None,
    rate_limit: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Offer every row of the file to the tap, at most `rate_limit` rows per second."""
    columns = columns or ColumnMap()
    summary = ReplaySummary()
    started = time.monotonic()
    room = _Backpressure(tap)
    for number, row in read_rows(path, columns):
        summary.rows += 1
        try:
            if row is None:
                raise MalformedRow("not a well-formed record")
            offer = to_offer(row, columns)
            room.wait()
            tap.offer(*offer)
        except MalformedRow as problem:
            _report(summary, number, str(problem))
        if rate_limit:
            ahead = summary.rows / rate_limit - (time.monotonic() - started)
            if ahead > 0.002:
                time.sleep(ahead)
        if progress and summary.rows % PROGRESS_EVERY == 0:
            progress(summary.rows)
    if progress:
        progress(summary.rows)
    summary.seconds = time.monotonic() - started
    summary.stats = tap.stats()
    return summary


class _Backpressure:
    """A replay is slowed to what the tap and broker take, instead of dropping. After
    PATIENCE_S without room (the broker is away) it stops waiting: the offers drop, counted,
    until the tap has room again."""

    def __init__(self, tap: Tap) -> None:
        self.tap = tap
        self.gave_up = False

    def wait(self) -> None:
        if self.tap.room():
            self.gave_up = False
            return
        if self.gave_up:
            return
        deadline = time.monotonic() + PATIENCE_S
        while not self.tap.room():
            if time.monotonic() > deadline:
                logger.warning("no room in the tap for %.0fs: dropping until there is", PATIENCE_S)
                self.gave_up = True
                return
            time.sleep(0.001)


def _report(summary: ReplaySummary, number: int, problem: str) -> None:
    summary.malformed += 1
    if len(summary.problems) < REPORTED_PROBLEMS:
        summary.problems.append((number, problem))
        logger.warning("row %d skipped: %s", number, problem)
    elif summary.malformed == REPORTED_PROBLEMS + 1:
        logger.warning("more malformed rows: counting them without a line each")
