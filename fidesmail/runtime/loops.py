"""The one helper for a serving process's background loops: a daemon thread that runs a step every few seconds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fidesmail.core import forks

log = logging.getLogger("fidesmail.runtime.loops")


class Loop:
    """Runs `step()` every `interval` seconds in a daemon thread until `stop()`.

    A step that fails is logged and tried again at the next round: the thread outlives any one failure.
    Threads do not survive a fork, so each gunicorn worker starts its own (`start` after the fork)."""

    def __init__(self, name: str, step: Callable[[], None], interval: float):
        self.name = name
        self.step = step
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        forks.reset_in_children(self)

    def start(self) -> None:
        """Start the thread (once; not at all with an interval of 0)."""
        if self._thread is None and self.interval > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"fidesmail-{self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Run no more steps (a step under way finishes)."""
        self._stop.set()

    def after_fork(self) -> None:
        self._thread = None
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
            except Exception:  # logged; the next round tries again
                log.exception("background loop %s: a round failed", self.name)
