"""Shutdown - SIGTERM/SIGINT honoured within worker.shutdown_seconds, whatever the worker does.

Python runs a signal handler only when the main thread comes back to the interpreter, which a
long librdkafka or ONNX Runtime call may not do for a long time. So the signal is also written
to a wakeup socket (``signal.set_wakeup_fd``) that a watcher thread reads at once. The watcher:

- asks the worker to stop (it flushes, commits and leaves after its current step);
- ends every ONNX Runtime call in flight (the batch being scored is left unconsumed: the
  partition's next owner scores it again);
- starts the deadline: a worker not gone within ``shutdown_seconds`` exits at once, as does one
  that gets a second signal. What it had not committed is replayed by the next owner, exactly as
  after a kill -9, so a forced exit loses nothing.

While the worker is still starting (creating topics, connecting, loading models) nothing has been
consumed: the handler raises Interrupted there and the start-up ends at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

from shadow.errors import ShadowError
from shadow.watchdog import WATCHDOG

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
FORCED_EXIT_CODE = 3
"""Exit code of a worker that did not finish its graceful stop within shutdown_seconds."""


class Interrupted(ShadowError):
    """A signal arrived before the worker consumed anything: it ends without a stop to make."""

    exit_code = 0


class Shutdown:
    """The signal handling of one worker process (install once, from the main thread)."""

    def __init__(self, stop: Callable[[], None], started: threading.Event, seconds: float):
        self.stop = stop
        self.started = started
        self.seconds = seconds
        self.signals = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        for sig in SIGNALS:
            signal.signal(sig, self._handler)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._sockets = (reader, writer)  # kept open for the life of the process
        threading.Thread(
            target=self._watch, args=(reader,), name="shadow-signals", daemon=True
        ).start()

    def _handler(self, signum: int, _frame: object) -> None:
        """Main thread, between two bytecodes: only the start-up is ended from here."""
        if not self.started.is_set():
            raise Interrupted(f"stopped by {signal.Signals(signum).name} while starting")

    def _watch(self, reader: socket.socket) -> None:
        while True:
            received = reader.recv(64)
            for number in received:
                self.signalled(number)

    def signalled(self, number: int) -> None:
        """One signal: the first stops the worker gracefully, a second one ends it now."""
        with self._lock:
            self.signals += 1
            first = self.signals == 1
        name = signal.Signals(number).name if number in set(SIGNALS) else str(number)
        if not first:
            self.force(f"a second {name}")
            return
        logger.info("%s: stopping (flush, commit, leave) within %.0fs", name, self.seconds)
        self.stop()
        WATCHDOG.terminate_all()
        timer = threading.Timer(self.seconds, self.force, args=("worker.shutdown_seconds passed",))
        timer.daemon = True
        timer.start()

    def force(self, why: str) -> None:
        logger.error(
            "exiting now (%s): what was not committed is replayed by the partitions' next owner",
            why,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(FORCED_EXIT_CODE)
