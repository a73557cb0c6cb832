"""Whether a send can work, part by part (`database`, `sealing`, `tree`): state a background loop refreshes.

Requests only read it (`/health`, `/readyz`, a send's first check): no request ever waits on a check, and none
runs a migration. The state is refreshed once at start, before serving, then every few seconds by a `Loop`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("fidesmail.runtime.readiness")

PARTS = ("database", "sealing", "tree")
NOT_CHECKED = "not checked yet"


class Readiness:
    """The last verdict of each part's check: None when it can serve sends, else why not (for logs and details)."""

    def __init__(self, checks: Mapping[str, Callable[[], str | None]]):
        self._checks = dict(checks)
        self._problems: dict[str, str | None] = {part: NOT_CHECKED for part in self._checks}
        self._lock = threading.Lock()  # one refresh at a time (the loop, or a start)

    def refresh(self, *parts: str) -> None:
        """Run the checks of `parts` (all when none named) now and keep their verdicts."""
        with self._lock:
            for part, check in self._checks.items():
                if parts and part not in parts:
                    continue
                try:
                    problem = check()
                except Exception as exc:  # a check that breaks says the part is not ready, and why
                    log.exception("readiness check of %s failed", part)
                    problem = f"its check failed: {type(exc).__name__}"
                self.record(part, problem)

    def record(self, part: str, problem: str | None) -> None:
        """Keep a verdict found elsewhere (a reload knows seal.pub first); a change is logged once."""
        before, self._problems[part] = self._problems.get(part), problem
        if problem == before:
            return
        if problem is None and before != NOT_CHECKED:
            log.info("%s is ready again", part)
        elif problem is not None:
            log.warning("%s is not ready: sends cannot work (%s)", part, problem)

    def problems(self) -> dict[str, str | None]:
        """Each part's last verdict (None: ready)."""
        return dict(self._problems)

    def not_ready(self) -> list[str]:
        """The parts that cannot serve sends, in the order of PARTS."""
        return [part for part, problem in self._problems.items() if problem is not None]
