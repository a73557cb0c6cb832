"""SQLite's single writer, queued for without its busy handler's sleeps.

SQLite makes a writer that finds the database locked sleep 1, 2, 5, 10 ms... before it looks again;
with two workers and their outbox threads writing side by side, those sleeps, not the writes, set
the pace. fidesmail's writers of one database queue here instead, before BEGIN IMMEDIATE: threads of
a process on a lock (woken at once), processes on an flock of `<database>.write.lock` looked at again
every 50 µs to 1 ms. Anything else writing the file (a sqlite3 shell) still meets busy_timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

_FIRST_WAIT, _LONGEST_WAIT = 50e-6, 1e-3


class WriterLockTimeout(Exception):
    """Another writer held the database longer than the timeout."""


class WriterLock:
    """One writer at a time among this database's threads and processes (an flock dies with its process)."""

    def __init__(self, database_path: Path | None, timeout: float):
        self.path = database_path.with_name(database_path.name + ".write.lock") if database_path else None
        self.timeout = timeout
        self._threads = threading.Lock()
        self._fd: int | None = None

    def after_fork(self) -> None:
        """flock belongs to the open file: a child opens its own, or it would share its parent's lock."""
        if self._fd is not None:
            os.close(self._fd)
        self._threads, self._fd = threading.Lock(), None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            raise WriterLockTimeout()
        try:
            fd = self._file()
            if fd is not None:
                self._flock(fd, deadline)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int | None:
        if self.path is not None and self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:  # no lock file beside the database (a read-only folder): SQLite's busy_timeout alone
                self.path = None
        return self._fd

    @staticmethod
    def _flock(fd: int, deadline: float) -> None:
        wait = _FIRST_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriterLockTimeout() from None
                time.sleep(wait)
                wait = min(wait * 2, _LONGEST_WAIT)
