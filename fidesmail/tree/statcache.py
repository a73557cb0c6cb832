"""What each file of the tree gave when last read, kept by its stat signature so unchanged files are not re-read."""

from __future__ import annotations

import hashlib
import struct
import time
from dataclasses import dataclass, replace
from typing import Any

from fidesmail.tree import files

# A file changed less than this long before it was read can be replaced by one with the very same
# stat signature: with coarse timestamps (1 s on ext3, HFS+ and some network or overlay file systems,
# a clock tick on ext4 before Linux 6.13), two writes within one tick that reuse the inode number
# and keep the size look alike. Such entries are confirmed by their content until they are older
# (git's "racy index" rule); trusting the stat alone let a worker keep a stale view, and its next
# write silently dropped another worker's acknowledged one.
RACY_NS = 2_000_000_000


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


_SIGNATURE = struct.Struct("<QQqqq")  # device and inode unsigned; times may be before 1970


def _packed(signature: tuple) -> bytes:
    """A file's stat signature as one small object (a tuple of five ints is six, ~240 bytes per file)."""
    return _SIGNATURE.pack(*signature)


def _is_racy(signature: tuple) -> bool:
    return time.time_ns() - max(signature[3], signature[4]) < RACY_NS


@dataclass(frozen=True, slots=True)
class _Entry:
    signature: bytes  # _packed
    value: Any
    digest: bytes | None  # of the content, while the signature alone cannot be trusted (racy)


class StatCache:
    """relative path -> the value parsed from that file, valid while the file keeps its signature."""

    def __init__(self):
        self._entries: dict[str, _Entry] = {}

    def get(self, relpath: str, found: files.TreeFile) -> tuple[bool, Any]:
        """(True, value) when the cached value still describes the file, else (False, None)."""
        entry = self._entries.get(relpath)
        if entry is None or entry.signature != _packed(found.signature):
            return False, None
        if entry.digest is None:
            return True, entry.value
        try:
            data = files.read(found)
        except files.Refused:
            return False, None
        if _digest(data) != entry.digest:
            return False, None
        if not _is_racy(found.signature):
            self._entries[relpath] = replace(entry, digest=None)  # old enough now: the stat is proof
        return True, entry.value

    def put(self, relpath: str, found: files.TreeFile, data: bytes, value: Any) -> None:
        """Remember what `data` (read from `found`) gave."""
        digest = _digest(data) if _is_racy(found.signature) else None
        self._entries[relpath] = _Entry(_packed(found.signature), value, digest)

    def get_value(self, name: str, digest: bytes) -> tuple[bool, Any]:
        """(True, value) when `name` was last put with this content `digest` (for values built from several files)."""
        entry = self._entries.get(name)
        if entry is None or entry.digest != digest:
            return False, None
        return True, entry.value

    def put_value(self, name: str, digest: bytes, value: Any) -> None:
        """Remember a value built from content with this `digest`."""
        self._entries[name] = _Entry(b"", value, digest)

    def forget_except(self, names: set[str]) -> bool:
        """Drop entries of files that are gone; True when there were any."""
        gone = self._entries.keys() - names
        for name in gone:
            del self._entries[name]
        return bool(gone)
