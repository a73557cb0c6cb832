"""Atomic file writes and cross-process locks for the config tree and the instance dir."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, data: bytes | Iterable[bytes], mode: int = 0o644) -> None:
    """Replace `path` with `data` (bytes, or chunks of them) so readers see the old file or the new one, never a mix."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            for chunk in _batches(data):
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)  # the umask may have narrowed O_CREAT's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def _batches(data: bytes | Iterable[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """`data` in pieces of about `size` bytes: a large file written from many small chunks, never whole in memory."""
    if isinstance(data, bytes | bytearray | memoryview):
        yield data
        return
    batch, length = [], 0
    for chunk in data:
        batch.append(chunk)
        length += len(chunk)
        if length >= size:
            yield b"".join(batch)
            batch, length = [], 0
    if batch:
        yield b"".join(batch)


_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
}


def describe_os_error(exc: OSError) -> str:
    """What went wrong, for a person: "the disk is full", "permission denied", ..."""
    return _REASONS.get(exc.errno, exc.strerror or "an I/O error")


def atomic_delete(path: Path) -> bool:
    """Remove `path` durably; False when it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(Path(path).parent)
    return True


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(lock_path: Path, *, create: bool = True) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path`; excludes other threads and processes alike.

    With `create=False` a missing lock file means nobody else uses it (no running service): no lock."""
    # flock locks belong to the open file description, so each caller opens its own:
    # two threads of one process then exclude each other just as two processes do.
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o600)
    except FileNotFoundError:
        if create:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process is killed


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete temp files a killed writer left behind; call only while holding the write lock."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def create_file(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Create `path` with `data` unless it exists (never replacing it); True when this call created it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
        os.fchmod(fd, mode)  # the umask may have narrowed O_CREAT's mode
    finally:
        os.close(fd)
    try:
        # link() fails when the target exists: two workers starting at once agree on one key.
        os.link(tmp, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)
    return created


def warn_if_exposed(path: Path, what: str, logger: logging.Logger, info: os.stat_result | None = None) -> bool:
    """Log what to do when a key file can be read by others than the service; True when it can.

    Accepted as it is: a read-only file of another owner that only its group can read, which is what a
    Kubernetes Secret mounted with `defaultMode: 0440` and the pod's `fsGroup` (the service's group) gives:
    the service reads it through its group and cannot chmod it, and nobody else can read it."""
    if info is None:
        try:
            info = os.stat(path)
        except OSError:
            return False
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return False
    if info.st_uid == os.geteuid():
        logger.warning("%s %s can be read by group or others (mode %04o); run: chmod 600 %s", what, path, mode, path)
        return True
    if not mode & 0o007 and not mode & 0o222:
        return False
    logger.warning("%s %s can be %s (mode %04o, owned by uid %d, so this process cannot chmod it): mount it read-only "
                   "with mode 0440 and the service's group (Kubernetes: the Secret volume's defaultMode: 0440 and the "
                   "pod's fsGroup), or 0400 owned by the service's uid", what, path,
                   "read by others" if mode & 0o007 else "written", mode, info.st_uid)
    return True
