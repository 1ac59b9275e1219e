"""LiveModel - the live service's model: the registry's production model, followed blue-green.

``LiveModel(name, settings)`` loads the production model of ``name`` (its file sha256-verified,
its canary score reproduced) and scores requests with it: ``predict(features)`` gives the
``LiveScore`` (model id, score, decision at the card's threshold, latency) that the service
answers with and hands to the tap, so every mirrored record names the model that scored it.

A thread polls the registry every ``live.poll_seconds``. When production names another model it
fetches and verifies that model and checks its canary while the current one keeps serving, then
swaps one reference: a request is scored wholly by the old model or wholly by the new one. A
model that fails its checks is not swapped in, the failure is recorded in its history, and it is
not tried again until the registry names another file. The previous model stays loaded, so a
rollback to it swaps back at once. Nothing here raises into the request path: a failed request
is answered with a null decision and counted; a failed poll keeps the model being served.
Imports stay light (onnxruntime, SQLAlchemy): no analysis library is loaded in the service.
"""

from __future__ import annotations

import itertools
import logging
import math
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shadow.envelope import LiveScore
from shadow.errors import ModelError, RegistryError, ShadowError
from shadow.modelcard import ModelCard
from shadow.registry import ModelRecord, ModelRegistry
from shadow.registry_checks import check_canary
from shadow.scorer import OnnxScorer
from shadow.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swap:
    """One switch of the serving model."""

    at: float
    """time.time() when the new model started serving."""
    from_model: str
    to_model: str
    load_seconds: float
    """Fetching, verifying, loading and canary-checking the new model (0 when it was the
    previous model, still loaded)."""


@dataclass(frozen=True)
class _Loaded:
    card: ModelCard
    scorer: OnnxScorer

    @property
    def key(self) -> tuple[str, str]:
        return self.card.model_id, self.card.sha256


class LiveModel:
    """The production model of one name, scoring requests and following the registry."""

    def __init__(
        self, name: str, settings: Settings, registry: ModelRegistry | None = None
    ) -> None:
        """Load the current production model; RegistryError/ModelError at startup when there is
        none or it does not verify (a service should not start without its model)."""
        self.name = name
        self._settings = settings
        self._own_registry = registry is None
        self._registry = registry or ModelRegistry.from_settings(settings)
        self.actor = f"live-model@{socket.gethostname()}"
        record = self._registry.production(name)
        if record is None:
            raise RegistryError(f"no model named {name} is in production: nothing to serve")
        self._serving = self._load(record)
        self._previous: _Loaded | None = None
        self._refused: set[tuple[str, str]] = set()
        self._troubled: str | None = None
        self.swaps: list[Swap] = []
        self._requests, self._failed = itertools.count(), itertools.count()
        self._stop = threading.Event()
        self._follower = threading.Thread(target=self._follow, name=f"live-{name}", daemon=True)
        self._follower.start()
        logger.info("live model %s: serving %s", name, self.model_id)

    @property
    def model_id(self) -> str:
        """The model serving now."""
        return self._serving.card.model_id

    def predict(self, features: Mapping[str, Any]) -> LiveScore:
        """Score one request; never raises (a failure gives score NaN and decision None)."""
        return self.predict_many([features])[0]

    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[LiveScore]:
        """Score a micro-batch with one model (the one serving when the call began)."""
        serving = self._serving
        card = serving.card
        started = time.perf_counter()
        try:
            scores = serving.scorer.score_features(rows).scores.tolist()
        except Exception as exc:  # noqa: BLE001 - the request path never sees our failure
            logger.warning("live model %s: a request failed: %s", card.model_id, str(exc)[:200])
            scores = [math.nan] * len(rows)
        latency_ms = (time.perf_counter() - started) * 1000
        answers = []
        for score in scores:
            next(self._requests)
            decision = card.decision(score) if math.isfinite(score) else None
            if decision is None:
                next(self._failed)
            answers.append(LiveScore(card.model_id, score, decision, latency_ms))
        return answers

    def stats(self) -> dict[str, Any]:
        """The serving model, requests answered, failed requests (no decision), swaps made."""
        return {
            "model_id": self.model_id,
            "requests": _read(self._requests),
            "failed": _read(self._failed),
            "swaps": len(self.swaps),
            "refused": len(self._refused),
        }

    def poll(self) -> bool:
        """Look at the registry once and swap if production changed; True when it swapped.
        Never raises: on any failure the serving model stays."""
        try:
            return self._poll()
        except Exception:  # the follower must outlive any surprise
            logger.exception(
                "live model %s: poll failed, still serving %s", self.name, self.model_id
            )
            return False

    def close(self) -> None:
        self._stop.set()
        if self._follower.is_alive():
            self._follower.join(30)
        if self._own_registry:
            self._registry.close()

    def _follow(self) -> None:
        while not self._stop.wait(self._settings.live.poll_seconds):
            self.poll()

    def _poll(self) -> bool:
        try:
            record = self._registry.production(self.name)
        except ShadowError as exc:
            self._trouble("registry unreadable", str(exc))
            return False
        if record is None:
            self._trouble("no production model in the registry")
            return False
        self._troubled = None
        key = (record.model_id, record.card.sha256)
        if key == self._serving.key or key in self._refused:
            return False
        started = time.monotonic()
        try:
            loaded = self._previous_if(key) or self._load(record)
        except Exception as exc:  # noqa: BLE001 - one bad model never stops the service
            if isinstance(exc, ShadowError) and exc.transient:
                logger.warning("live model %s: %s not loaded yet: %s", self.name, key[0], exc)
            else:
                self._refuse(record, exc)
            return False
        self._swap(loaded, time.monotonic() - started)
        return True

    def _load(self, record: ModelRecord) -> _Loaded:
        """Fetch (sha256 verified), build the session, check the canary; ModelError if not."""
        card = record.card
        path = self._registry.fetch(card.model_id, self._settings.registry.model_cache)
        scorer = OnnxScorer(card, path, self._settings.live.intra_op_threads)
        _check_canary(card, scorer)
        return _Loaded(card, scorer)

    def _previous_if(self, key: tuple[str, str]) -> _Loaded | None:
        previous = self._previous
        if previous is None or previous.key != key:
            return None
        _check_canary(previous.card, previous.scorer)
        return previous

    def _swap(self, loaded: _Loaded, load_seconds: float) -> None:
        old = self._serving
        self._serving = loaded  # one reference: a request sees the old model or the new one
        self._previous = old
        self.swaps.append(Swap(time.time(), old.card.model_id, loaded.card.model_id, load_seconds))
        logger.info(
            "live model %s: now serving %s (was %s; verified and loaded in %.2fs)",
            self.name,
            loaded.card.model_id,
            old.card.model_id,
            load_seconds,
        )

    def _refuse(self, record: ModelRecord, exc: Exception) -> None:
        self._refused.add((record.model_id, record.card.sha256))
        why = str(exc) if isinstance(exc, ShadowError) else f"{type(exc).__name__}: {exc}"
        logger.error(
            "live model %s: %s not swapped in, serving %s: %s",
            self.name,
            record.model_id,
            self.model_id,
            why,
        )
        reason = f"not swapped in by the live service, which keeps {self.model_id}: {why[:300]}"
        try:
            self._registry.record_event(record.model_id, self.actor, reason)
        except ShadowError as failed:
            logger.error("live model %s: the refusal was not recorded: %s", self.name, failed)

    def _trouble(self, what: str, detail: str = "") -> None:
        """Log a poll's trouble once, until a poll reads the registry again."""
        if self._troubled != what:
            logger.warning(
                "live model %s: %s, serving %s %s", self.name, what, self.model_id, detail
            )
        self._troubled = what


def _check_canary(card: ModelCard, scorer: OnnxScorer) -> None:
    if card.canary_score is None:
        raise ModelError(card.model_id, "the card has no canary score to check")
    check_canary(card.model_id, scorer.score_canary(), card.canary_score)


def _read(counter: itertools.count) -> int:
    """How many times next() was called on a count (its repr is "count(N)"), without taking one:
    next() on an itertools.count is atomic under the GIL, a += on an int is not."""
    return int(repr(counter)[6:-1])
