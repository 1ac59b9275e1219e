"""Errors - one root, per-stage errors that carry their context and say what to do."""

from __future__ import annotations


class ShadowError(Exception):
    """Root of every error shadow raises on purpose.

    ``transient`` tells a caller whether retrying the same call may succeed.
    ``exit_code`` is what the CLI exits with when this error ends a command.
    """

    transient: bool = False
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ShadowError):
    """A setting is missing, unknown or invalid."""

    exit_code = 2

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"setting {key}: {problem}")


class UsageError(ShadowError):
    """The command was given input it cannot use (missing file, bad option value)."""

    exit_code = 2


class MappingError(ShadowError):
    """A from-topic mapping file is unreadable or names a field wrongly."""

    exit_code = 2

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        super().__init__(f"mapping {path}, {field}: {problem}")


class DependencyMissing(ShadowError):
    """A program shadow needs (java, mvn, a Python extra) is not installed."""

    exit_code = 2

    def __init__(self, what: str, how: str) -> None:
        self.what = what
        super().__init__(f"{what} is required but was not found: {how}")


class ServiceError(ShadowError):
    """A local service (Kafka broker, S3 API server, PostgreSQL) did not start or stop."""

    def __init__(self, service: str, problem: str, log_tail: str = "") -> None:
        self.service = service
        self.log_tail = log_tail
        tail = f" | last log lines: {log_tail}" if log_tail else ""
        super().__init__(f"{service}: {problem}{tail}")


class EnvelopeError(ShadowError):
    """A Kafka record is not a valid transaction envelope; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"invalid envelope ({reason}): {detail}")


class StoreError(ShadowError):
    """The object store failed; transient errors are retried by the worker."""

    transient = True

    def __init__(self, uri: str, problem: str) -> None:
        self.uri = uri
        super().__init__(f"store {uri}: {problem}")


class StoreAccessDenied(StoreError):
    """The credentials may not read or write the bucket."""

    transient = False


class BucketNotFound(StoreError):
    """The bucket named in store.uri does not exist."""

    transient = False


class ObjectNotFound(StoreError):
    """The object asked for is not in the store."""

    transient = False


class ModelError(ShadowError):
    """A model could not be loaded, verified or run."""

    def __init__(self, model_id: str, problem: str) -> None:
        self.model_id = model_id
        super().__init__(f"model {model_id}: {problem}")


class ModelTimeout(ModelError):
    """A model's scoring call overran its deadline (worker.model_timeout_ms) and was ended."""


class ScoringStopped(ModelError):
    """A scoring call was ended because the process is shutting down: the batch is not the
    model's fault and is left unconsumed, for the partition's next owner to score."""


class RegistryError(ShadowError):
    """The governance store refused an operation (illegal transition, unknown model...)."""


class DeadLetterError(ShadowError):
    """Records refused by the worker were not yet acknowledged by the dead-letter topic."""

    transient = True

    def __init__(self, topic: str, problem: str) -> None:
        self.topic = topic
        super().__init__(f"dead-letter topic {topic}: {problem}")


class CommitError(ShadowError):
    """The broker did not accept a worker's offset commit (the batch is retried or replayed)."""

    transient = True

    def __init__(self, topic: str, partition: int, problem: str) -> None:
        self.topic = topic
        self.partition = partition
        super().__init__(f"commit {topic}[{partition}]: {problem}")


class RegistryUnavailable(RegistryError):
    """The governance database could not be reached or was busy; retrying may succeed."""

    transient = True


class ConcurrentTransition(RegistryError):
    """Another actor changed the model between reading and writing it; re-read and retry."""

    transient = True


class DeliveryFailed(ShadowError):
    """A tap run (replay, synthetic traffic) delivered nothing, or lost more than allowed."""

    def __init__(self, topic: str, problem: str) -> None:
        self.topic = topic
        super().__init__(f"tap to {topic}: {problem}")
