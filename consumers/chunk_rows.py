"""ChunkRows - a scored chunk of one partition -> its prediction rows (and feature rows).

Built before the chunk's offsets count as consumed. Should a chunk's rows fail to build (a defect
some input found), ``build_each`` builds them record by record: a record whose rows cannot be
built goes to the DLQ as ``unstorable``, the others are stored; nothing is both lost and
committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shadow.envelope import UNSTORABLE
from shadow.errors import EnvelopeError
from shadow.feature_columns import Redact
from shadow.prediction_store import chunk_keys, features_table, prediction_table

if TYPE_CHECKING:
    from consumers.ingest import Chunk
    from shadow.prediction_store import ModelScores

logger = logging.getLogger(__name__)

Rows = tuple[pa.Table, pa.Table | None, int]
"""A chunk's prediction rows, its feature rows (None unless stored), its first event time."""

Refuse = Callable[[Any, EnvelopeError], None]


class ChunkRows:
    """Builds the rows a worker buffers for each chunk it consumed."""

    def __init__(self, worker_id: str, store_features: bool, redact: Redact | None = None) -> None:
        self.worker_id = worker_id
        self.store_features = store_features
        self.redact = redact
        """The card guard stored features pass through (records from any producer may carry
        card data the tap would have caught)."""

    def build(self, chunk: Chunk, results: list[ModelScores], scored_at_us: int) -> Rows | None:
        """The chunk's rows (None when it holds no good record)."""
        if not chunk.envelopes:
            return None
        keys = chunk_keys(
            chunk.envelopes, chunk.offsets, chunk.partition, self.worker_id, scored_at_us
        )
        mine = [r.sliced(chunk.start, chunk.stop) for r in results]
        table = prediction_table(keys, chunk.envelopes, mine)
        features = (
            features_table(keys, chunk.envelopes, self.redact) if self.store_features else None
        )
        return table, features, chunk.envelopes[0].event_time

    def build_each(
        self, chunk: Chunk, results: list[ModelScores], scored_at_us: int, refuse: Refuse
    ) -> Rows | None:
        """The rows of the records that can be built alone; the others are refused."""
        built: list[Rows] = []
        for i, message in enumerate(chunk.messages):
            one = replace(
                chunk,
                envelopes=chunk.envelopes[i : i + 1],
                offsets=chunk.offsets[i : i + 1],
                messages=[message],
                start=chunk.start + i,
                stop=chunk.start + i + 1,
            )
            try:
                rows = self.build(one, results, scored_at_us)
            except Exception as exc:  # noqa: BLE001 - this record alone cannot be stored
                refuse(message, EnvelopeError(UNSTORABLE, f"rows not built: {type(exc).__name__}"))
                continue
            if rows is not None:
                built.append(rows)
        if not built:
            return None
        tables = pa.concat_tables([rows[0] for rows in built])
        features = [rows[1] for rows in built if rows[1] is not None]
        return tables, _concat(features), built[0][2]


def _concat(features: list[pa.Table]) -> pa.Table | None:
    from shadow.feature_columns import concat_features

    return concat_features(features) if features else None
