"""The service's last good state, shared by its workers and kept across restarts: `<instance>/last-good.json`.

"A bad edit keeps the last good state" must mean the service's last good state, not one worker's:
a worker that had no request while a good sealed file was in place would otherwise meet the
broken one with an older view (every secret gone, sends 409), and a worker that never saw the
serving config would give its name to the newcomer. The process that installs a changed snapshot
writes what it serves here, under the write lock and before the change is announced; a load
merges with it when a file failed or a name is contested (the loader reads it only then). Without
a usable instance dir each process falls back to its own previous view.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from fidesmail.content.messaging_templates import MessagingTemplate
from fidesmail.core import fsutil
from fidesmail.sealing.sealed_file import SealedFile
from fidesmail.tree import messaging_defaults, messaging_files

log = logging.getLogger("fidesmail.store")

FILE_NAME = "last-good.json"
# 2: each config as the JSON body it is served with (its document and `secrets_set`), written from the
# bodies the snapshot already holds; 1 (older versions) held the bare documents.
FORMAT = 2
FORMATS = (1, 2)
_SERVED_ONLY = "secrets_set"  # in a format 2 body, not part of the document


@dataclass(frozen=True)
class LastGood:
    """What the service served last: config documents by their path in the tree, and the sealed values."""

    configs: MappingProxyType  # "email/x.yaml" -> document
    sealed: SealedFile
    # "templates/messaging/x.yaml" -> fides' messaging template
    messaging_templates: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    messaging_defaults: messaging_defaults.MessagingDefaults = messaging_defaults.EMPTY


class SharedLastGood:
    """Reads and writes `<instance>/last-good.json`; reads are cached by the file's stat."""

    def __init__(self, instance_dir: Path):
        self.path = Path(instance_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._cached: tuple[tuple, LastGood | None] | None = None
        self._warned = False

    def read(self) -> LastGood | None:
        """The last good state another process (or this one) saved; None when there is none or it is unusable."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if self._cached is None or self._cached[0] != signature:
                self._cached = (signature, self._parse())
            return self._cached[1]

    def _parse(self) -> LastGood | None:
        try:
            document = json.loads(self.path.read_bytes())
            if document.get("format") not in FORMATS:
                return None
            configs = {str(path): dict(doc) for path, doc in document["configs"].items()}
            if document["format"] == 2:
                for doc in configs.values():
                    doc.pop(_SERVED_ONLY, None)
            sealed = SealedFile({str(key): {str(f): str(v) for f, v in fields.items()}
                                 for key, fields in document["sealed"].items()})
            # "messaging_templates" is absent from the files of older versions.
            templates = {str(path): MessagingTemplate(str(t["type"]), str(t["subject"]), str(t["body"]),
                                                      bool(t["enabled"]))
                         for path, t in document.get("messaging_templates", {}).items()}
            defaults = messaging_defaults.from_document(document.get("messaging_defaults", {}))  # newer than 1
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)  # it is a cache: the tree itself still serves
            return None
        return LastGood(MappingProxyType(configs), sealed, MappingProxyType(templates), defaults)

    def save(self, snapshot) -> None:
        """Record what `snapshot` serves (call with the write lock, before announcing it)."""
        try:
            fsutil.atomic_write(self.path, _chunks(snapshot), 0o600)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot write %s (%s): each worker keeps its own last good state",
                            self.path, fsutil.describe_os_error(exc))


def _chunks(snapshot) -> Iterator[bytes]:
    """last-good.json of `snapshot`, a piece at a time: never the whole file (MBs at 10,000 configs) in memory,
    and the configs from the bodies already built rather than their documents serialised again (which
    would touch, and so copy into this worker, every value it shares with the master)."""
    dump = functools.partial(json.dumps, separators=(",", ":"))
    yield b'{"format":%d,"configs":{' % FORMAT
    for number, entry in enumerate(snapshot.configs.values()):
        yield b"%s%s:%s" % (b"," if number else b"", dump(entry.path).encode(), entry.body)
    yield b'},"sealed":{'
    for number, (key, fields) in enumerate(snapshot.sealed.entries.items()):
        yield b"%s%s:%s" % (b"," if number else b"", dump(key).encode(), dump(dict(fields)).encode())
    templates = {messaging_files.relpath_of(t.type): dataclasses.asdict(t)
                 for t in snapshot.messaging_templates.values()}
    yield b'},"messaging_templates":%s,"messaging_defaults":%s}' % (
        dump(templates).encode(), dump(snapshot.messaging_defaults.document()).encode())
