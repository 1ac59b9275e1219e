"""Settings - the one frozen configuration object, from a YAML file and SHADOW__* variables."""

from __future__ import annotations

import contextvars
import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from shadow.errors import ConfigError
from shadow.settings_checks import ENV_PREFIX, check_environment, check_yaml, config_error
from shadow.settings_types import (
    TOPIC_MAX,
    BootstrapServers,
    ClientConfig,
    Compression,
    EndpointUrl,
    LogLevel,
    NameList,
    SecurityProtocol,
    TopicName,
)

CONFIG_ENV = "SHADOW_CONFIG"
_yaml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class KafkaSettings(_Section):
    bootstrap_servers: BootstrapServers = None
    """Broker list host:port,...; unset means the local broker of `shadow dev kafka start`."""
    topic: TopicName = "shadow.transactions"
    """Topic the tap writes sampled transactions to and the workers read."""
    dlq_topic: TopicName | None = Field(default=None, validate_default=True)
    """Dead-letter topic for records that fail validation; unset means `<topic>.dlq`."""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    """librdkafka security.protocol (PLAINTEXT, SSL, SASL_SSL, SASL_PLAINTEXT)."""
    sasl_mechanism: str | None = None
    """librdkafka sasl.mechanism, e.g. SCRAM-SHA-512, when SASL is used."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password."""
    client_config: ClientConfig = Field(default_factory=dict)
    """Extra librdkafka properties for every client (producer, consumer, admin); numbers and
    booleans are passed as librdkafka's strings."""
    dev_version: str = "4.4.0"
    """Apache Kafka release the local dev broker runs (Maven org.apache.kafka:kafka_2.13)."""
    dev_home: Path = Path("~/.cache/shadow").expanduser()
    """Cache folder for the dev broker's jars (kafka-<version>) and its state."""

    @property
    def dlq(self) -> str:
        return self.dlq_topic or f"{self.topic}.dlq"

    @field_validator("dlq_topic")
    @classmethod
    def _derived_dlq_fits(cls, value: str | None, info: ValidationInfo) -> str | None:
        topic = info.data.get("topic")
        if value is None and topic and len(topic) + 4 > TOPIC_MAX:
            raise ValueError(
                f"unset, so it would be kafka.topic + '.dlq', {len(topic) + 4} characters (at "
                f"most {TOPIC_MAX}): shorten kafka.topic or set kafka.dlq_topic"
            )
        return value


class TapSettings(_Section):
    sample_rate: float = Field(default=1 / 3, ge=0.0, le=1.0)
    """Share of transactions mirrored, chosen by a keyed hash of txn_id (repeatable)."""
    salt: str = "shadow"
    """Salt of the sampling hash; every service that samples must use the same one."""
    drop_fields: NameList = ("pan", "cvv", "cvv2", "cvc", "track1", "track2", "pin")
    """Feature names removed before anything leaves the process (the PAN too, by default); any
    case matches (PAN, Pan, pan). A list, or `pan,cvv` in the environment variable."""
    hmac_fields: NameList = ()
    """Feature names replaced by HMAC-SHA256(hmac_key, value) hex, e.g. ["pan"] to keep a
    joinable token instead of dropping it; hashing wins over drop_fields; any case matches."""
    hmac_key: SecretStr | None = None
    """Key for hmac_fields and card_guard: hash; required (startup error) when either needs it."""
    card_guard: Literal["drop", "hash", "warn"] = "drop"
    """What happens to a feature, under any name, whose value holds a card number (a Luhn-valid
    run of 13-19 digits, spaces or dashes allowed between groups; or such an integer): drop it,
    hash it (HMAC token, needs hmac_key) or warn (only counted in stats()["card_numbers"] and
    logged, by name, never the value). The worker applies it to the features it stores and,
    unless warn, masks such runs in dead letters."""
    card_guard_exempt: NameList = ()
    """Feature names the card guard leaves alone, any case: e.g. an epoch-ms time feature (13
    digits, Luhn-valid one time in ten)."""
    queue_max_messages: int = Field(default=100_000, gt=0)
    """librdkafka queue.buffering.max.messages. When full, ShadowTap's sender waits (offers are
    dropped once tap.handoff_queue is full too); InlineTap drops at once. Nothing blocks offer()."""
    queue_max_kbytes: int = Field(default=65_536, gt=0)
    """librdkafka queue.buffering.max.kbytes: the memory bound of that queue, full as above."""
    delivery_timeout_ms: int = Field(default=120_000, gt=0)
    """librdkafka message.timeout.ms: a message the broker has not taken by then is failed."""
    linger_ms: float = Field(default=100, ge=0)
    """librdkafka linger.ms: batching delay on the producer. Longer batches cost the live
    process less CPU per record (librdkafka's thread: about 17 us a record at 20 ms, 10 at
    100 ms, at 667 sampled/s) and delay the mirror by that much."""
    compression: Compression = "lz4"
    """librdkafka compression.type."""
    max_envelope_bytes: int = Field(default=64_000, gt=0)
    """Largest encoded envelope the tap sends and the worker accepts."""
    producer_config: ClientConfig = Field(default_factory=dict)
    """librdkafka overrides for the tap's producer (numbers and booleans as in client_config)."""
    inline: bool = False
    """offer() redacts, encodes and calls produce() in the caller's thread (~5 us a sampled
    offer) instead of handing the record to the tap's sender thread (~1 us); the same total
    work, no extra thread. Used by producers.tap.open_tap."""
    handoff_queue: int = Field(default=10_000, gt=0)
    """Records waiting for the tap's sender thread at most; beyond it offers are dropped."""


class SourceSettings(_Section):
    """`shadow tap from-topic`: mirror a live service's own topic of scored transactions."""

    topic: TopicName | None = None
    """Topic of the live service's scored transactions (its own JSON) that `shadow tap
    from-topic` mirrors; required by that command (or --topic)."""
    decisions_topic: TopicName | None = None
    """Topic of the live decisions when they are published apart from the requests: records of
    both are joined on txn_id within source.join_window_s before an envelope is made."""
    mapping: Path | None = None
    """YAML file mapping the source records' fields to the envelope (see the README's
    "Mirroring a live service's topic"); required by `shadow tap from-topic` (or --mapping)."""
    group_id: str = "shadow-source"
    """Consumer group of the source process(es); its committed offsets say where to resume."""
    instance_id: str = "shadow-source-1"
    """Names this process: its transactional.id (`<group_id>.<instance_id>`) and its static
    group membership. Keep it across restarts (a restart then aborts the killed process's open
    transaction at once); give each process of the group its own."""
    start_at: Literal["earliest", "latest"] = "latest"
    """Where a group without committed offsets starts reading: latest mirrors from now on,
    earliest takes the topic's whole history (see also `shadow tap replay`)."""
    dlq_topic: TopicName | None = None
    """Dead-letter topic for source records that cannot be mapped or joined; unset means the
    shadow topic's (kafka.dlq_topic, else `<kafka.topic>.dlq`)."""
    batch_size: int = Field(default=2000, gt=0)
    """Records taken per consume() call."""
    poll_timeout_s: float = Field(default=0.2, gt=0)
    """How long one consume() waits for records."""
    commit_interval_ms: int = Field(default=500, gt=0)
    """A transaction (envelopes, dead letters and the consumed offsets together) is committed
    at least this often while records flow; what a kill -9 costs is redoing at most this."""
    join_window_s: float = Field(default=60.0, gt=0)
    """A request or decision waits this long (by the records' Kafka timestamps, as far as both
    topics have been read) for its other half; then it goes to the DLQ as unmatched."""
    join_max_pending: int = Field(default=200_000, gt=0)
    """Halves (requests or decisions) waiting for their other half at most; beyond it the oldest
    goes to the DLQ (reason join_overflow). Bounds the join's memory and its changelog."""
    consumer_config: ClientConfig = Field(default_factory=dict)
    """librdkafka overrides for the source's consumer (numbers and booleans as in
    client_config)."""
    producer_config: ClientConfig = Field(default_factory=dict)
    """librdkafka overrides for the source's transactional producer (numbers and booleans as in
    client_config), e.g. {"transaction.timeout.ms": 60000}."""

    @property
    def transactional_id(self) -> str:
        return f"{self.group_id}.{self.instance_id}"

    @property
    def changelog_topic(self) -> str:
        """Compacted topic holding the join's waiting halves (joined mode only)."""
        return f"{self.group_id}.join-state"


class WorkerSettings(_Section):
    group_id: str = "shadow-workers"
    """Consumer group shared by every worker process."""
    flush_records: int = Field(default=20_000, gt=0)
    """Flush a partition's buffer when it holds this many transactions."""
    flush_seconds: float = Field(default=10.0, gt=0)
    """Flush a partition's buffer when its oldest record waited this long."""
    reload_seconds: float = Field(default=30.0, gt=0)
    """How often the candidate set is re-read from the registry."""
    http_port: int = Field(default=9400, ge=0, le=65535)
    """Port of /metrics, /healthz, /livez, /readyz and /models; 0 picks a free port."""
    batch_size: int = Field(default=2000, gt=0)
    """Messages taken per consume() call."""
    poll_timeout_s: float = Field(default=0.5, gt=0)
    """How long one consume() waits for messages."""
    store_features: bool = False
    """Also write the features dataset beside the predictions (for slice analysis)."""
    predictions_topic: TopicName | None = None
    """Also publish a compact per-transaction prediction record here (for the monitor)."""
    max_model_failures: int = Field(default=5, gt=0)
    """Unload a model after this many failed batches in a row."""
    probe_seconds: float = Field(default=1.0, ge=0)
    """How often each candidate also scores one transaction alone, to record its single-request
    latency (request_latency_us); 0 turns it off."""
    intra_op_threads: int = Field(default=1, gt=0)
    """ONNX Runtime threads per process (one shared pool for all models)."""
    worker_id: str | None = None
    """Name in the predictions' worker_id column and in the worker's temp files (an earlier run
    with the same id owns them); unset means host-pid. No two running workers may share one."""
    liveness_seconds: float = Field(default=60.0, gt=0)
    """/livez answers 503 when the consume loop has not turned for this long (a wedged
    process, for Kubernetes to restart)."""
    consumer_config: ClientConfig = Field(default_factory=dict)
    """librdkafka overrides for the worker's consumer (numbers and booleans as in
    client_config), e.g. {"session.timeout.ms": 45000}."""
    # -- bounds on hostile input and faults (README "Hostile input") --
    event_time_min: dt.date = dt.date(2000, 1, 1)
    """Records with an event_time before this day (UTC) go to the DLQ as bad_event_time."""
    event_time_max: dt.date = dt.date(2100, 1, 1)
    """Records with an event_time on or after this day (UTC) go to the DLQ as bad_event_time."""
    model_timeout_ms: int = Field(default=2000, gt=0)
    """Longest one model may score one batch: a watchdog ends the call, that model gets error
    rows for the batch, and max_model_failures such batches in a row unload it."""
    shutdown_seconds: float = Field(default=30.0, gt=0)
    """After SIGTERM/SIGINT the worker flushes, commits and leaves within this long, else exits
    at once (what it had not committed is replayed by the partition's next owner); a second
    signal exits at once."""

    @model_validator(mode="after")
    def _event_range(self) -> WorkerSettings:
        if self.event_time_min >= self.event_time_max:
            raise ValueError("worker.event_time_min must be before worker.event_time_max")
        return self

    @property
    def event_times(self) -> tuple[int, int]:
        """The accepted event_time range, epoch ms [start, end)."""
        return _epoch_ms(self.event_time_min), _epoch_ms(self.event_time_max)


def _epoch_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


class StoreSettings(_Section):
    uri: str = "./shadow-data"
    """Where datasets live: a local folder or s3://bucket/prefix."""
    endpoint_url: EndpointUrl = None
    """S3 API endpoint for S3-compatible servers (MinIO, moto); unset means AWS."""
    region: str = "us-east-1"
    """S3 region."""
    access_key_id: SecretStr | None = None
    """S3 access key id; unset means the default AWS credential chain."""
    secret_access_key: SecretStr | None = None
    """S3 secret access key."""


class RegistrySettings(_Section):
    url: str = "sqlite:///shadow-data/registry.db"
    """SQLAlchemy URL of the governance store (SQLite file or postgresql+psycopg://...)."""
    model_cache: Path = Path("~/.cache/shadow/registry-models").expanduser()
    """Local folder of verified model copies (ModelRegistry.fetch), <name>/<version>/model.onnx."""


class LiveSettings(_Section):
    poll_seconds: float = Field(default=5.0, gt=0)
    """How often producers.live.LiveModel asks the registry for the production model; a new one
    is loaded and canary-checked while the old one serves, then swapped in."""
    intra_op_threads: int = Field(default=1, gt=0)
    """ONNX Runtime threads of the live service's model (the process-wide pool, sized once)."""


class AnalysisSettings(_Section):
    segment_features: NameList = ("merchant_category",)
    """Feature columns to slice the comparison by (a list, or `a,b` in the environment)."""
    min_segment_rows: int = Field(default=500, gt=0)
    """Slices with fewer paired transactions are left out."""
    bootstrap_samples: int = Field(default=200, ge=0)
    """Bootstrap resamples for the confidence intervals of labelled metrics."""
    seed: int = 7
    """Seed for bootstrap resampling."""
    bootstrap_rows: int = Field(default=50_000, gt=0)
    """Rows in the m-out-of-n bootstrap subsample (CI widths rescaled to the whole window)."""
    live_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Live decision threshold; unset means the production card's, else 0.5."""


class LogSettings(_Section):
    level: LogLevel = "INFO"
    """Log level of shadow's own loggers: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."""
    json_lines: bool = False
    """Write logs as JSON lines instead of text."""


MonitorMetric = Literal[
    "count", "error_rate", "nan_rate", "mean_score", "agreement", "psi", "p99_latency_us"
]


class MonitorRule(_Section):
    metric: MonitorMetric
    """Window figure the rule watches."""
    op: Literal[">", "<"]
    """Breach when the figure is above (>) or below (<) the threshold."""
    threshold: float
    """The limit, e.g. 0.05 for an error rate of 5 %."""
    windows: int = Field(default=1, gt=0)
    """Breach only when this many of the candidate's latest judged windows all cross the limit."""


def _default_rules() -> tuple[MonitorRule, ...]:
    return (
        MonitorRule(metric="error_rate", op=">", threshold=0.05, windows=3),
        MonitorRule(metric="agreement", op="<", threshold=0.5, windows=5),
        MonitorRule(metric="nan_rate", op=">", threshold=0.01, windows=1),
        MonitorRule(metric="psi", op=">", threshold=1.0, windows=5),
    )


class MonitorSettings(_Section):
    app_id: str = "shadow-monitor"
    """Faust application id: its consumer group and the prefix of its changelog topics."""
    data_dir: Path = Path("shadow-data/monitor")
    """Faust's local data folder."""
    window_seconds: float = Field(default=60.0, gt=0)
    """Length of the tumbling windows, by the records' event time."""
    grace_seconds: float = Field(default=5.0, ge=0)
    """A window is judged this long after its end, so late records still count."""
    keep_windows: int = Field(default=60, gt=0)
    """Windows kept per candidate in the table and its changelog; older ones are deleted."""
    min_count: int = Field(default=50, gt=0)
    """A candidate's window with fewer records is shown but never judged."""
    live_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Decision threshold of the live model; agreement compares both scores against it."""
    rules: tuple[MonitorRule, ...] = Field(default_factory=_default_rules)
    """Early-warning rules; a breach moves the candidate shadow -> failed in the registry."""
    fail_candidates: bool = True
    """Record breaches in the registry (false: only log them and count them in the metrics)."""
    check_seconds: float = Field(default=5.0, gt=0)
    """How often closed windows are judged against the rules."""
    web_port: int = Field(default=6066, ge=1, le=65535)
    """Port of Faust's web server: /shadow/windows/ (JSON) and /metrics (Prometheus)."""
    web_host: str = "0.0.0.0"
    """Address Faust's web server binds to."""
    partitions: int = Field(default=6, gt=0)
    """Partitions of the predictions topic when the monitor has to create it."""


class Settings(BaseSettings):
    """Everything shadow is configured with; build it with `load_settings()`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    tap: TapSettings = TapSettings()
    source: SourceSettings = SourceSettings()
    worker: WorkerSettings = WorkerSettings()
    store: StoreSettings = StoreSettings()
    registry: RegistrySettings = RegistrySettings()
    live: LiveSettings = LiveSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    log: LogSettings = LogSettings()
    monitor: MonitorSettings = MonitorSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _yaml_path.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings: keyword overrides, then SHADOW__* variables, then the YAML file.

    The file is ``config``, else the one named by SHADOW_CONFIG, else none.
    """
    import os

    path = Path(config) if config else None
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is not None:
        check_yaml(path)
    check_environment(os.environ, Settings.model_fields)
    token = _yaml_path.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise config_error(exc) from None
    except SettingsError as exc:  # a source could not read a value: one line all the same
        raise ConfigError("settings", str(exc)) from None
    finally:
        _yaml_path.reset(token)


def masked_dict(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret masked, for `shadow config show`: SecretStr
    fields, URL passwords and client-config secrets (shadow.masking)."""
    from shadow.masking import masked

    return masked(settings.model_dump(mode="json"))
