"""The only way a file of the config tree is opened: a regular file, inside the tree, within its size limit.

Whoever can merge a pull request writes the tree, so a name in it may be a symlink to the private
keyring, a FIFO that blocks whoever opens it, `/dev/zero`, or a file of gigabytes. Each of those is
refused, with a reason naming no content, before it is opened. Symlinks that stay inside the tree
(a Kubernetes ConfigMap's `x.yaml -> ..data/x.yaml`) are followed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

KIB = 1024
CONFIG_LIMIT = 64 * KIB
SEALED_LIMIT = 8 * KIB * KIB
TEMPLATE_LIMIT = 256 * KIB
PUBLIC_KEY_LIMIT = 64 * KIB

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class Refused(Exception):
    """A name in the tree that is not opened; the reason is for a person and quotes nothing of the file."""


@dataclass(frozen=True)
class TreeFile:
    """A regular file inside the tree, stat'ed but not yet read."""

    real_path: str
    signature: tuple  # device, inode, size, mtime, ctime: a change of any means "read it again"
    limit: int


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _human(size: int) -> str:
    return f"{size // (KIB * KIB)} MiB" if size % (KIB * KIB) == 0 else f"{size // KIB} KiB"


def signature_of(st: os.stat_result) -> tuple:
    """What identifies one version of a file without reading it."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def inside(root_real: str, real_path: str) -> bool:
    """True when `real_path` (resolved) is `root_real` or below it."""
    return real_path == root_real or real_path.startswith(root_real.rstrip(os.sep) + os.sep)


def locate(root_real: str, path: str, limit: int, entry: os.DirEntry | None = None) -> TreeFile:
    """Resolve and stat `path`; Refused unless it is a regular file inside the tree within `limit` bytes.

    `entry` is the path's entry in a folder listed by `list_dir` (already resolved): when it is not a
    symlink it needs no resolving, which saves a readlink per component of every file on every look."""
    if entry is not None and not entry.is_symlink():
        real = entry.path
    else:
        real = os.path.realpath(path)
        if not inside(root_real, real):
            raise Refused("a symlink that leaves the config tree (not opened)")
    try:
        st = os.stat(real)  # stat never blocks, not even on a FIFO
    except FileNotFoundError:
        raise Refused("a dangling symlink (its target does not exist)") from None
    except OSError as exc:
        raise Refused(f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{_kind(st.st_mode)}, not a regular file (not opened)")
    if st.st_size > limit:
        raise Refused(f"{st.st_size} bytes, over the {_human(limit)} limit for this file (not opened)")
    return TreeFile(real, signature_of(st), limit)


def read(found: TreeFile) -> bytes:
    """The bytes of a located file; Refused when it was swapped for something else since `locate`."""
    try:
        # O_NONBLOCK and O_NOFOLLOW: if the name became a FIFO or a symlink meanwhile, do not wait or follow.
        fd = os.open(found.real_path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise Refused(f"cannot be read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{_kind(st.st_mode)}, not a regular file (not opened)")
        chunks, remaining = [], found.limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise Refused(f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > found.limit:
        raise Refused(f"over the {_human(found.limit)} limit for this file (not read)")
    return data


def read_file(root_real: str, path: str, limit: int) -> bytes:
    """`locate` then `read`: the bytes of one file of the tree."""
    return read(locate(root_real, path, limit))


def list_dir(root_real: str, path: str) -> list[os.DirEntry] | None:
    """The entries of a folder of the tree; None when it is absent; Refused when it leaves the tree."""
    real = os.path.realpath(path)
    if not inside(root_real, real):
        raise Refused("a symlink that leaves the config tree (not opened)")
    try:
        with os.scandir(real) as entries:
            return list(entries)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise Refused("not a folder") from None
    except OSError as exc:
        raise Refused(f"cannot read the folder: {exc.strerror}") from None
