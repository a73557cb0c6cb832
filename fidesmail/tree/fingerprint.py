"""A digest of what the tree's folders hold, by stat alone: whether a look at the tree can be skipped.

The watcher looks at the whole tree every 30 s (and after inotify events). A look through the loader
touches every entry of the snapshot a worker shares with the master, and so copies those pages (at
10,000 configs, ~25 MB per worker). This digest of names and stat signatures, kept apart from the
snapshot, lets an unchanged tree be passed over without touching it. No file is opened.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable

from fidesmail.tree.statcache import RACY_NS


def of(folders: Iterable[str], files: Iterable[str] = ()) -> bytes | None:
    """The digest of `folders`' entries and of `files`; None when a change could hide from the stat (an
    entry modified within RACY_NS: a rewrite in the same clock tick keeps its signature)."""
    digest = hashlib.blake2b(digest_size=16)
    racy_after = time.time_ns() - RACY_NS
    for folder in sorted(folders):
        digest.update(b"\0D" + os.fsencode(folder))
        # In the folder's own order, one entry at a time: sorting would hold every entry of the folder at once
        # (~4 MB at 10,000 files), allocated in the pages a worker shares with the master, so copying them.
        # A folder's order changes only when its entries do, and then the digest differs anyway.
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not _add(digest, entry.name, entry.stat, racy_after):
                        return None
        except OSError as exc:
            digest.update(b"!" + str(exc.errno).encode())
    for path in sorted(files):
        if not _add(digest, path, lambda path=path: os.stat(path), racy_after):
            return None
    return digest.digest()


def _add(digest, name: str, stat, racy_after: int) -> bool:
    try:
        st = stat()  # through symlinks: a ConfigMap's `..data` swap changes what the names lead to
    except OSError as exc:
        digest.update(b"\0F" + os.fsencode(name) + b"!" + str(exc.errno).encode())
        return True
    if max(st.st_mtime_ns, st.st_ctime_ns) > racy_after:
        return False
    digest.update(b"\0F" + os.fsencode(name) + b"%d:%d:%d:%d:%d:%d" % (
        st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return True
