"""Keeping every worker of one service on the same view of the tree.

- `ChangeCounter`: the first 8 bytes of `<instance>/store.lock` count announced changes. A process
  serves a changed snapshot only after bumping it (under the write lock), and every request first
  compares it with the count its own snapshot was loaded at: once any answer shows a change, every
  later answer from any worker shows it too.
- `Watcher`: one process per service looks for edits made by hand (git pull, an editor, a ConfigMap
  swap): the one holding an flock on `<instance>/watcher.lock`. The others wait on that lock in a
  thread that costs nothing until the watcher dies, then one of them takes over. The watcher is
  told of changes by inotify (watchdog) and re-reads once per burst; where inotify cannot be used
  or says nothing (network file systems), it polls.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from fidesmail.core import forks

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


# What changes the tree. Not opens, reads and closes without a write: the watcher's own reads
# would wake it again.
_CHANGES = [FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent,
            DirCreatedEvent, DirDeletedEvent, DirMovedEvent]

DEBOUNCE = 0.05  # a git checkout writes many files: re-read once they have been quiet this long...
MAX_DELAY = 0.5  # ...or after this long, for a burst that never pauses
SAFETY_INTERVAL = 30.0  # a full look now and then anyway: inotify can miss (a queue overflow, some overlays)

# File systems whose changes made elsewhere (another client, the host) inotify does not report.
_SILENT_FILE_SYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "gpfs",
                        "afs", "fuse.sshfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "vboxsf", "prl_fs")


def folders_to_watch(root: Path, subfolders: Iterable[str]) -> set[str]:
    """The directories whose entries make up the tree at `root`: the root, the given subfolders, the real
    folders behind symlinks, and the folder holding each symlink on the way (where a swap of it happens:
    a ConfigMap's `email -> ..data/email`, git-sync's `/git/current -> rev-1234`)."""
    root = os.path.abspath(root)
    links = [prefix for prefix in _prefixes(root) if os.path.islink(prefix)]
    links += [path for path in (os.path.join(root, name) for name in subfolders) if os.path.islink(path)]
    found = {os.path.realpath(os.path.dirname(link)) for link in links}
    for path in (root, *(os.path.join(root, name) for name in subfolders)):
        real = os.path.realpath(path)
        if os.path.isdir(real):
            found.add(real)
    return {folder for folder in found if os.path.isdir(folder)}


def _prefixes(path: str) -> list[str]:
    """/a/b/c -> [/a, /a/b, /a/b/c]."""
    parts = path.strip(os.sep).split(os.sep)
    return [os.sep + os.path.join(*parts[: i + 1]) for i in range(len(parts))] if parts != [""] else []


def file_system_type(path: str) -> str | None:
    """The type of the file system `path` is on (from /proc/self/mountinfo), None when unknown."""
    real = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) < 5 or not right:
                    continue
                point = fields[4].replace("\\040", " ")
                if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, kind = point, right.split()[0]
    except OSError:
        return None
    return kind


def _identity(folder: str) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Changed(FileSystemEventHandler):
    """Tells the watcher that something in `folder` changed (which file does not matter), and when the
    folder itself went away (its watch ends with it: a folder made again there needs a new one)."""

    def __init__(self, folder: str, watcher: Watcher):
        self.folder = folder
        self.watcher = watcher

    def on_any_event(self, event) -> None:
        if isinstance(event, DirDeletedEvent) and event.src_path == self.folder:
            with self.watcher._lock:
                self.watcher._dead.add(self.folder)
        self.watcher._changed.set()


class Watcher:
    """Runs `check()` after the tree changed, in the one process of the service that holds `lock_path`.

    inotify (watchdog) on `folders()` says when; the folders are looked up again after every check,
    so a swapped symlink or a re-created folder is followed. A burst of changes gives one check,
    DEBOUNCE after the last one; a full check runs every SAFETY_INTERVAL anyway. Where inotify cannot
    be used (no watch left, not Linux, a network file system), `check()` runs every `interval` seconds.
    `interval` <= 0: no watching at all.
    """

    def __init__(self, lock_path: Path, check: Callable[[], object], interval: float,
                 folders: Callable[[], set[str]] = set):
        self.lock_path = Path(lock_path)
        self.check = check
        self.interval = interval
        self.folders = folders
        self.mode: str | None = None  # "inotify" or "poll" once this process watches
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self._watches: dict[str, tuple] = {}  # folder -> (watchdog's watch, the folder's device and inode)
        self._dead: set[str] = set()  # watched folders that were removed (their watch is gone)
        self._lock = threading.Lock()
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
        self._changed.set()

    def after_fork(self) -> None:
        """A forked child has neither the parent's threads nor its lock: it starts its own when asked."""
        self._thread = None
        self._observer = None
        self._watches = {}
        self._dead = set()
        self._lock = threading.Lock()
        self.mode = None

    def _run(self) -> None:
        fd = self._elect()
        try:
            if self._stop.is_set():
                return
            if self._start_observer():
                self.mode = "inotify"
                self._check()  # what changed before the watches were in place
                self._follow_events()
            else:
                self.mode = "poll"
                self._poll()
        finally:
            self._stop_observer()
            if fd is not None:
                os.close(fd)

    def _check(self) -> None:
        try:
            self.check()
        except Exception:  # the watcher must outlive any one bad scan
            log.exception("config tree scan failed")

    # -- polling ----------------------------------------------------------------------------

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._check()

    # -- inotify ----------------------------------------------------------------------------

    def _start_observer(self) -> bool:
        """Watch the tree's folders with inotify; False (and a log line saying why) when it cannot be."""
        folders = self.folders()
        silent = sorted({kind for kind in map(file_system_type, folders) if kind in _SILENT_FILE_SYSTEMS})
        if silent:
            log.info("config tree on %s: inotify would miss changes made elsewhere; looking every %s s",
                     ", ".join(silent), self.interval)
            return False
        try:
            self._observer = Observer(timeout=SAFETY_INTERVAL)  # its thread waits on a queue, not a clock
            self._rewatch(folders)
            self._observer.start()
        except Exception as exc:  # no inotify instance or watch left (EMFILE, ENOSPC), not Linux, ...
            log.warning("cannot watch the config tree with inotify (%s); looking every %s s instead",
                        getattr(exc, "strerror", None) or exc, self.interval)
            self._stop_observer()
            return False
        log.info("watching the config tree with inotify (%d folders; a full look every %d s besides)",
                 len(self._watches), SAFETY_INTERVAL)
        return True

    def _rewatch(self, folders: set[str]) -> None:
        """Watch exactly `folders`: after a symlink swap the old targets go and the new ones come, and a
        folder removed and made again (a checkout) is watched anew (its old watch died with it)."""
        current = {folder: _identity(folder) for folder in folders}
        with self._lock:
            dead, self._dead = self._dead, set()
        for folder in sorted(self._watches):
            watch, identity = self._watches[folder]
            if current.get(folder) == identity and folder not in dead:  # an inode number may be reused
                continue
            del self._watches[folder]
            try:
                self._observer.unschedule(watch)
            except Exception:  # its folder is gone, and so is the watch
                log.debug("unwatching %s failed", folder, exc_info=True)
        for folder in sorted(folders - self._watches.keys()):
            if current[folder] is None:
                continue
            try:
                watch = self._observer.schedule(_Changed(folder, self), folder, event_filter=_CHANGES)
            except FileNotFoundError:
                continue  # removed since it was looked up: the change brings another look
            self._watches[folder] = (watch, current[folder])
        if not self._watches:
            raise FileNotFoundError(f"none of the config tree's folders exists: {sorted(folders)}")

    def _stop_observer(self) -> None:
        observer, self._observer, self._watches = self._observer, None, {}
        if observer is not None:
            try:
                observer.stop()
                if observer.is_alive():
                    observer.join(5)
            except Exception:
                log.debug("stopping the inotify observer failed", exc_info=True)

    def _follow_events(self) -> None:
        next_full_look = time.monotonic() + SAFETY_INTERVAL
        while not self._stop.is_set():
            woken = self._changed.wait(max(0.0, next_full_look - time.monotonic()))
            if self._stop.is_set():
                return
            if woken:
                self._settle()
            self._check()
            next_full_look = time.monotonic() + SAFETY_INTERVAL
            try:
                self._rewatch(self.folders())
            except Exception as exc:
                log.warning("cannot watch the config tree with inotify any more (%s); looking every %s s instead",
                            getattr(exc, "strerror", None) or exc, self.interval)
                self._stop_observer()
                self.mode = "poll"
                self._poll()
                return

    def _settle(self) -> None:
        """Wait until changes have been quiet for DEBOUNCE, or MAX_DELAY has passed since the first."""
        first = time.monotonic()
        while not self._stop.is_set():
            self._changed.clear()  # cleared before the look: a change during it wakes the next round
            if not self._changed.wait(DEBOUNCE) or time.monotonic() - first >= MAX_DELAY:
                return

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
