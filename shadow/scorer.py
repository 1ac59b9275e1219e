"""OnnxScorer - one verified ONNX model scoring batches of envelopes, on one shared thread pool.

The file's sha256 is checked against the card on the very bytes the session is built from, so a
file swapped on disk is refused even when the registry still lists it. Every session in the
process shares ONNX Runtime's global thread pool (sized once, by the first scorer), so N models
do not run N pools fighting over the same cores. Once that pool exists, ONNX Runtime refuses any
session made with per-session threads (its default): create other sessions with
``create_session`` or with ``SessionOptions.use_per_session_threads = False``.

A ``FeatureFrame`` holds one batch's features as numpy columns, gathered once (the float ones in
one pass over the rows) and shared by every model that scores the batch (``score_columns``).
"""

from __future__ import annotations

import logging
import math
import operator
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shadow.envelope import Envelope
from shadow.errors import ModelError, ModelTimeout, ScoringStopped
from shadow.modelcard import ModelCard, sha256_of
from shadow.watchdog import WATCHDOG

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

_pool_lock = threading.Lock()
_pool_threads: int | None = None

_FEATURES = operator.attrgetter("features")
_NUMPY_TYPES = {"float": np.float32, "double": np.float64, "int64": np.int64, "bool": np.bool_}

DEFAULT_TIMEOUT_S = 60.0
"""Deadline of one scoring call outside the worker (which passes worker.model_timeout_ms)."""


@dataclass(frozen=True)
class ScoreBatch:
    """One model's answer for one batch: a score per envelope, in order."""

    scores: np.ndarray
    """float64 (n,): the positive-class probability (or the model's plain score)."""
    seconds: float
    """Wall time of the batch: building the inputs (columns the frame already holds are reused)
    and running the model."""
    missing: int
    """Feature values that were absent, null or of the wrong type, filled with NaN, "", 0."""


def shared_thread_pool(intra_op_threads: int) -> int:
    """Size the process-wide ONNX Runtime pool once; later calls keep the first size."""
    global _pool_threads
    import onnxruntime

    with _pool_lock:
        if _pool_threads is None:
            # errors reach the caller as ModelError; ONNX Runtime's own log would repeat them
            onnxruntime.set_default_logger_severity(3)
            onnxruntime.set_global_thread_pool_sizes(intra_op_threads, 1)
            _pool_threads = intra_op_threads
        elif _pool_threads != intra_op_threads:
            logger.warning(
                "ONNX Runtime pool already has %d threads; %d ignored",
                _pool_threads,
                intra_op_threads,
            )
        return _pool_threads


def create_session(model_id: str, data: bytes, intra_op_threads: int = 1) -> Any:
    """An InferenceSession on the shared pool; ModelError when the bytes do not load."""
    import onnxruntime

    shared_thread_pool(intra_op_threads)
    options = onnxruntime.SessionOptions()
    options.use_per_session_threads = False
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
        raise ModelError(model_id, f"does not load in ONNX Runtime: {_first_line(exc)}") from None


class OnnxScorer:
    """Scores batches of envelopes with one model; a failing batch raises ModelError, one that
    overruns ``timeout_s`` is ended by the watchdog and raises ModelTimeout."""

    def __init__(
        self,
        card: ModelCard,
        path: Path,
        intra_op_threads: int = 1,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.card = card
        self.model_id = card.model_id
        self.timeout_s = timeout_s
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ModelError(card.model_id, f"cannot read {path}: {exc.strerror}") from None
        # verify the very bytes the session is built from: no window to swap the file between
        digest = sha256_of(data)
        if digest != card.sha256:
            raise ModelError(
                card.model_id,
                f"sha256 mismatch: file {path} has {digest[:12]}..., card {card.sha256[:12]}...",
            )
        self._session: onnxruntime.InferenceSession = create_session(
            card.model_id, data, intra_op_threads
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._ranks = {i.name: len(i.shape) for i in self._session.get_inputs()}
        logger.info("loaded model %s (%s inputs)", self.model_id, card.input_kind)

    def score(self, envelopes: Sequence[Envelope]) -> ScoreBatch:
        """Score a batch; ModelError when the model raises or answers in the wrong shape."""
        return self.score_columns(FeatureFrame.of(envelopes))

    def score_features(self, rows: Sequence[Mapping[str, Any]]) -> ScoreBatch:
        """Score feature dicts directly (canaries, benches)."""
        return self.score_columns(FeatureFrame(rows))

    def score_canary(self) -> float:
        """The model's score for the card's canary transaction."""
        return float(self.score_features([self.card.canary]).scores[0])

    def score_columns(self, frame: FeatureFrame) -> ScoreBatch:
        """Score a batch whose columns are gathered once and shared by every model."""
        started = time.perf_counter()
        n = len(frame)
        if n == 0:
            return ScoreBatch(np.empty(0, dtype=np.float64), 0.0, 0)
        feeds, missing = self._feeds(frame)
        outputs = self._run(feeds)
        scores = _positive_scores(self.model_id, outputs[0], n)
        return ScoreBatch(scores, time.perf_counter() - started, missing)

    def _run(self, feeds: dict[str, np.ndarray]) -> Any:
        """One session call under the watchdog's deadline."""
        with WATCHDOG.guard(self.timeout_s) as run:
            try:
                return self._session.run([self.card.score_output], feeds, run.options)
            except Exception as exc:  # noqa: BLE001 - any failure fails this model's batch only
                if run.ended == "shutdown":
                    raise ScoringStopped(self.model_id, "scoring ended: shutting down") from None
                if run.ended is not None:
                    raise ModelTimeout(self.model_id, _ended(self.timeout_s)) from None
                raise ModelError(self.model_id, f"scoring failed: {_first_line(exc)}") from None

    def _feeds(self, frame: FeatureFrame) -> tuple[dict[str, np.ndarray], int]:
        features = self.card.features
        columns = frame.columns(features)
        missing = sum(m for _, m in columns)
        if self.card.input_kind == "tensor":
            dtype = _NUMPY_TYPES.get(next(iter(features.values())), np.float32)
            matrix: np.ndarray = np.column_stack([c for c, _ in columns]).astype(dtype, copy=False)
            return {self._inputs[0]: matrix}, missing
        feeds = {
            name: column.reshape(-1, 1) if self._ranks.get(name) == 2 else column
            for name, (column, _) in zip(features, columns, strict=True)
        }
        return feeds, missing


class FeatureFrame:
    """A batch's features gathered once: each (feature, type) column is built on first use and
    shared, read-only, by every model that asks for it."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = rows
        self._values: dict[str, Sequence[Any]] = {}
        self._columns: dict[tuple[str, str], tuple[np.ndarray, int]] = {}

    @classmethod
    def of(cls, envelopes: Sequence[Envelope]) -> FeatureFrame:
        """The frame of a batch of envelopes, in order."""
        return cls(list(map(_FEATURES, envelopes)))

    def __len__(self) -> int:
        return len(self.rows)

    def values(self, name: str) -> Sequence[Any]:
        """One feature's raw values across the batch (None where absent)."""
        values = self._values.get(name)
        if values is None:
            values = self._values[name] = [row.get(name) for row in self.rows]
        return values

    def spread(self, names: Iterable[str]) -> None:
        """Gather these features' values at once: one pass over the rows and one transpose,
        both in C, when every row holds every one of them (else values() gathers each)."""
        todo = [name for name in names if name not in self._values]
        if len(todo) < 2 or not self.rows:
            return
        try:
            columns = list(zip(*map(operator.itemgetter(*todo), self.rows), strict=True))
        except KeyError:
            return
        self._values.update(zip(todo, columns, strict=True))

    def column(self, name: str, kind: str) -> tuple[np.ndarray, int]:
        """One feature as a read-only numpy column of the card's type, and how many values were
        filled (absent, null, NaN or of the wrong type: NaN, "" or 0)."""
        built = self._columns.get((name, kind))
        if built is None:
            built = self._columns[(name, kind)] = _column(self.values(name), kind)
            built[0].flags.writeable = False
        return built

    def columns(self, features: Mapping[str, str]) -> list[tuple[np.ndarray, int]]:
        """A card's features (name -> type) as columns, in order; the float ones not built yet
        are gathered together, in one pass over the rows."""
        for kind in ("float", "double"):
            todo = [n for n, k in features.items() if k == kind and (n, k) not in self._columns]
            if len(todo) > 1:
                self._gather(todo, kind)
        return [self.column(name, kind) for name, kind in features.items()]

    def _gather(self, names: list[str], kind: str) -> None:
        self.spread(names)
        spread = all(name in self._values for name in names)
        block: np.ndarray
        try:
            # numpy turns None into NaN; one conversion for the whole (names, rows) block; a
            # value beyond float32 becomes infinity (consumers.feature_check refuses it)
            with np.errstate(over="ignore"):
                if spread:  # the gathered values, one column a row: no transpose
                    block = np.array([self._values[n] for n in names], dtype=_NUMPY_TYPES[kind])
                else:
                    pick = operator.itemgetter(*names)
                    rows: np.ndarray = np.array(
                        [pick(row) for row in self.rows], dtype=_NUMPY_TYPES[kind]
                    )
                    block = np.ascontiguousarray(rows.T)
        except (KeyError, TypeError, ValueError, OverflowError):
            return  # an absent feature or a value of the wrong type: built column by column
        if block.shape != (len(names), len(self.rows)):
            return
        block.flags.writeable = False
        for name, column in zip(names, block, strict=True):
            self._columns[(name, kind)] = (column, int(np.count_nonzero(np.isnan(column))))


def _column(values: Sequence[Any], kind: str) -> tuple[np.ndarray, int]:
    """One feature's values as a numpy array of the card's type, and how many were filled."""
    if kind == "string":
        missing = values.count(None)
        return np.array(["" if v is None else str(v) for v in values], dtype=object), missing
    dtype = _NUMPY_TYPES.get(kind, np.float32)
    floats = kind in ("float", "double")
    fill = math.nan if floats else 0
    try:
        # numpy turns None into NaN for float columns; other types get the fill value first
        with np.errstate(over="ignore"):
            column: np.ndarray = np.array(values if floats else _filled(values, fill), dtype=dtype)
        filled = 0 if floats else values.count(None)
    except (TypeError, ValueError, OverflowError):
        # a value of the wrong type (a string where a number belongs, an integer too large for
        # the column) is filled like a gap
        usable = [_fits(v, dtype) for v in values]
        with np.errstate(over="ignore"):
            picked = [v if ok else fill for v, ok in zip(values, usable, strict=True)]
            column = np.array(picked, dtype)
        filled = usable.count(False)
    # a float column's gaps are its NaNs: None, wrong types, and NaN itself
    return column, int(np.count_nonzero(np.isnan(column))) if floats else filled


def _filled(values: Sequence[Any], fill: float) -> list[Any]:
    return [fill if v is None else v for v in values]


def _fits(value: Any, dtype: type) -> bool:
    """Whether a value goes into a column of this type (None never does)."""
    if value is None:
        return False
    try:
        with np.errstate(over="ignore"):
            cast: np.ndarray = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        return False
    return not (cast.dtype.kind == "f" and np.isinf(cast))  # beyond the type's range


def _positive_scores(model_id: str, output: Any, n: int) -> np.ndarray:
    """Column 1 of an [n, 2] probability matrix, or a plain [n] / [n, 1] score, as float64."""
    array = np.asarray(output)
    if array.ndim == 2 and array.shape == (n, 2):
        array = array[:, 1]
    elif array.ndim == 2 and array.shape == (n, 1):
        array = array[:, 0]
    if array.shape != (n,) or array.dtype.kind not in "fiu":
        raise ModelError(
            model_id, f"returned {array.dtype} of shape {np.shape(output)} for {n} rows"
        )
    return array.astype(np.float64, copy=False)


def _ended(timeout_s: float) -> str:
    return f"scoring ended after {timeout_s * 1000:.0f} ms (worker.model_timeout_ms)"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"
