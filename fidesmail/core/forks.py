"""One place that resets per-process state in a forked child (gunicorn forks its workers from the master)."""

from __future__ import annotations

import logging
import os
import weakref

log = logging.getLogger("fidesmail.forks")

_objects: weakref.WeakSet = weakref.WeakSet()


def reset_in_children(obj) -> None:
    """Call `obj.after_fork()` in every child forked from now on (held weakly: no leak for short-lived apps)."""
    _objects.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_objects):
        try:
            obj.after_fork()
        except Exception:  # one object failing must not leave the others with their parent's state
            log.exception("resetting %s after fork failed", type(obj).__name__)


os.register_at_fork(after_in_child=_after_fork_in_child)
