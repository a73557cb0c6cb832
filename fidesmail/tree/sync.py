"""Keeping every worker of one service on the same view of the tree.

- `ChangeCounter`: the first 8 bytes of `<instance>/store.lock` count announced changes. A process
  serves a changed snapshot only after bumping it (under the write lock), and every request first
  compares it with the count its own snapshot was loaded at: once any answer shows a change, every
  later answer from any worker shows it too.
- `Watcher`: one process per service looks for edits made by hand (git pull, an editor, a ConfigMap
  swap): the one holding an flock on `<instance>/watcher.lock`. The others wait on that lock in a
  thread that costs nothing until the watcher dies, then one of them takes over.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
from pathlib import Path

from .. import forks

log = logging.getLogger("fidesmail.store")


class ChangeCounter:
    """A counter shared by the processes of one service, in the first 8 bytes of the lock file."""

    def __init__(self, lock_path: Path):
        self.lock_path = Path(lock_path)
        self._fd: int | None = None

    def read(self) -> int | None:
        """The current count; None when the lock file cannot be used (then each process is on its own)."""
        if self._fd is None:
            try:
                self._fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
        raw = os.pread(self._fd, 8, 0)
        return struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0

    def bump(self) -> None:
        """Announce a change; call only while holding the write lock on the same file."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # no lock file: no service shares this instance dir, nobody to tell
        try:
            raw = os.pread(fd, 8, 0)
            current = struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0
            os.pwrite(fd, struct.pack("<Q", current + 1), 0)
        finally:
            os.close(fd)


class Watcher:
    """Runs `check()` every `interval` seconds in the one process of the service that holds `lock_path`."""

    def __init__(self, lock_path: Path, check, interval: float):
        self.lock_path = Path(lock_path)
        self.check = check
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        forks.reset_in_children(self)

    def start(self) -> None:
        """Start watching in this process (once; again in a forked child)."""
        if self._thread is not None or self.interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fidesmail-tree-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def after_fork(self) -> None:
        """A forked child has neither the parent's thread nor its lock: it starts its own when asked."""
        self._thread = None

    def _run(self) -> None:
        fd = self._elect()
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.check()
                except Exception:  # the watcher must outlive any one bad scan
                    log.exception("config tree scan failed")
        finally:
            if fd is not None:
                os.close(fd)

    def _elect(self) -> int | None:
        """Block until this process holds the watcher lock; None when it cannot be used (then every process polls)."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        while not self._stop.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits, without CPU, while another worker watches
                return fd
            except InterruptedError:
                continue
            except OSError:
                os.close(fd)
                return None
        os.close(fd)
        return None
