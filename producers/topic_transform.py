"""SourceTransform - one live service record -> the envelope bytes the tap would have sent.

The same steps as the tap, in the same order: the keyed sampling hash on txn_id first (a record
out of the sample costs a JSON parse and a hash, nothing more), then the mapping, redaction
(``shadow.redaction.Redactor``, the tap's), the envelope (``shadow.envelope``) and, last, the
worker's own ``decode`` of the bytes: nothing reaches the shadow topic that a worker would send
to its DLQ. Whatever does not fit raises EnvelopeError (reason and a detail that names a path).
"""

from __future__ import annotations

from typing import Any

from producers.topic_mapping import (
    EventTimeReader,
    FeatureReader,
    LiveReader,
    MappingSpec,
    TxnIdReader,
)
from shadow.envelope import (
    FeatureValue,
    LiveScore,
    decode,
    decode_source,
    encode,
    make_envelope,
)
from shadow.errors import EnvelopeError
from shadow.redaction import Redactor
from shadow.sampling import Sampler
from shadow.settings import Settings

MAX_SOURCE_BYTES = 1_000_000
"""Largest source record read (the live service's records may carry more than the features)."""


class SourceTransform:
    """Sampling, mapping, redaction, encoding and the worker's verdict, for one record."""

    def __init__(self, settings: Settings, spec: MappingSpec) -> None:
        self.sampler = Sampler(settings.tap.sample_rate, settings.tap.salt)
        self.redactor = Redactor.from_settings(settings.tap)
        self.max_bytes = settings.tap.max_envelope_bytes
        self.txn_id = TxnIdReader(spec.txn_id)
        self.event_time = EventTimeReader(spec.event_time)
        self.features = FeatureReader(spec.features)
        self.live = LiveReader(spec.live) if spec.live else None
        self.decision_txn_id = TxnIdReader(spec.decisions.txn_id) if spec.decisions else None
        self.decision_live = LiveReader(spec.decisions.live) if spec.decisions else None

    def mirror(self, value: bytes | None, kafka_ms: int) -> tuple[str, bytes] | None:
        """(txn_id, envelope bytes) of a scored transaction; None when it is not sampled."""
        record = decode_source(value, MAX_SOURCE_BYTES)
        txn_id = self.txn_id(record)
        if not self.sampler(txn_id):
            return None
        assert self.live is not None  # plain mode: the mapping was checked for live
        live = self.live(record)
        event_time = self.event_time(record, kafka_ms)
        features = self.redacted(self.features(record))
        return txn_id, self.checked(txn_id, features, live, event_time)

    def request(
        self, value: bytes | None, kafka_ms: int
    ) -> tuple[str, int, dict[str, FeatureValue]] | None:
        """(txn_id, event time, redacted features) of a request; None when not sampled."""
        record = decode_source(value, MAX_SOURCE_BYTES)
        txn_id = self.txn_id(record)
        if not self.sampler(txn_id):
            return None
        event_time = self.event_time(record, kafka_ms)
        return txn_id, event_time, self.redacted(self.features(record))

    def decision(self, value: bytes | None) -> tuple[str, LiveScore] | None:
        """(txn_id, live answer) of a decision record; None when not sampled."""
        assert self.decision_txn_id is not None and self.decision_live is not None
        record = decode_source(value, MAX_SOURCE_BYTES)
        txn_id = self.decision_txn_id(record)
        if not self.sampler(txn_id):
            return None
        return txn_id, self.decision_live(record)

    def redacted(self, features: dict[str, Any]) -> dict[str, FeatureValue]:
        """The tap's redaction; a nested or unsupported value refuses the record."""
        try:
            return self.redactor.redact(features)
        except ValueError as exc:
            raise EnvelopeError("wrong_type", str(exc)) from None

    def checked(
        self, txn_id: str, features: dict[str, FeatureValue], live: LiveScore, event_time: int
    ) -> bytes:
        """The envelope's bytes, once the worker's decode accepts them (EnvelopeError if not)."""
        value = encode(make_envelope(txn_id, features, live, event_time))
        decode(value, txn_id.encode(), self.max_bytes)
        return value
