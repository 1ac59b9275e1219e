"""RunWatchdog - ends ONNX Runtime calls that overrun their deadline, from another thread.

``InferenceSession.run`` cannot be interrupted from the thread that called it, and a model may
loop for as long as an input tells it to (a ``Loop`` whose trip count comes from a feature). Each
call gets its own ``RunOptions``; one watchdog thread sets ``terminate = True`` on the options of
a call whose deadline passed, and ONNX Runtime then stops the call between two kernels (every
iteration of a Loop) and raises. ``terminate_all`` ends every call now (the worker's shutdown).

A single kernel that runs for long on its own (one huge MatMul) is only stopped when it ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class GuardedRun:
    """One guarded call: the options to pass to run(), and why it was ended, if it was."""

    options: Any
    deadline: float
    ended: str | None = None
    """``"deadline"`` or ``"shutdown"`` once the watchdog set terminate."""
    started: float = field(default_factory=time.monotonic)


class RunWatchdog:
    """One thread watching the deadlines of every guarded call of the process."""

    def __init__(self) -> None:
        self._runs: set[GuardedRun] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, seconds: float) -> Iterator[GuardedRun]:
        """A RunOptions for one run() call that is terminated after ``seconds``."""
        import onnxruntime

        options = onnxruntime.RunOptions()
        options.log_severity_level = 4  # the caller reports the failure, once
        run = GuardedRun(options, time.monotonic() + seconds)
        with self._wake:
            self._start()
            self._runs.add(run)
            self._wake.notify()
        try:
            yield run
        finally:
            with self._wake:
                self._runs.discard(run)

    def terminate_all(self) -> int:
        """End every guarded call now; returns how many were running."""
        with self._wake:
            for run in self._runs:
                self._end(run, "shutdown")
            return len(self._runs)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="shadow-watchdog", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for run in self._runs:
                    if run.ended is None and run.deadline <= now:
                        self._end(run, "deadline")
                waiting = [r.deadline for r in self._runs if r.ended is None]
                self._wake.wait(min(waiting) - now if waiting else None)

    @staticmethod
    def _end(run: GuardedRun, why: str) -> None:
        if run.ended is None:
            run.ended = why
            run.options.terminate = True


WATCHDOG = RunWatchdog()
"""The process's watchdog: every OnnxScorer call is guarded by it."""
