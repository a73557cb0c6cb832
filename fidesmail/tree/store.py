"""The config tree of one process: the snapshot it serves, and the one way to change the tree.

Reads never touch the disk: a request takes the current `Snapshot`, replaced whole when the tree
changes. A process installs a changed snapshot only while holding the write lock (an flock on
`<instance>/store.lock`, shared by every worker) and after announcing the change on the counter in
that file (sync.py), so no worker ever answers from an older view than one already answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from fidesmail.core import fsutil, yamlio
from fidesmail.core.exceptions import Conflict, Unavailable
from fidesmail.sealing import sealed_file
from fidesmail.tree import fallbacks, fingerprint, loader, messaging_defaults, messaging_files
from fidesmail.tree.lastgood import SharedLastGood
from fidesmail.tree.snapshot import Snapshot
from fidesmail.tree.statcache import StatCache
from fidesmail.tree.sync import ChangeCounter, Watcher, folders_to_watch

log = logging.getLogger("fidesmail.store")


def same_content(a: Snapshot, b: Snapshot) -> bool:
    """True when two snapshots serve the same thing (the one may be a rebuild of the other)."""
    if a is b:
        return True
    same_entry = lambda k: a.configs[k] is b.configs[k] or a.configs[k].body == b.configs[k].body  # noqa: E731
    return (a.keys == b.keys and all(map(same_entry, a.keys))
            and a.sealed == b.sealed and a.public_key_id == b.public_key_id and a.problems == b.problems
            and a.overrides.sources == b.overrides.sources and a.overrides.usable == b.overrides.usable
            and a.messaging_templates == b.messaging_templates and a.messaging_defaults == b.messaging_defaults)


class Store:
    """The config tree at `config_dir`, with its lock and change counter in `instance_dir`."""

    def __init__(self, config_dir: Path, instance_dir: Path, *, read_only: bool = False, watch_interval: float = 1.0):
        self.config_dir = Path(config_dir)
        self.email_dir = self.config_dir / loader.EMAIL_DIR
        self.sealed_path = self.config_dir / loader.SEALED_FILE
        self.public_key_path = self.config_dir / loader.PUBLIC_KEY_FILE
        self.instance_dir = Path(instance_dir)
        self.lock_path = self.instance_dir / "store.lock"
        self.read_only = read_only
        self.listeners: list[Callable[[Snapshot, Snapshot | None], None]] = []  # told of each snapshot served
        self._cache = StatCache()
        self._scan_lock = threading.Lock()
        self._counter = ChangeCounter(self.lock_path)
        self._last_good = SharedLastGood(self.instance_dir)  # the service's, not this process's (lastgood.py)
        self._generation: int | None = None
        self._snapshot: Snapshot | None = None  # what this process serves
        self._loaded: Snapshot | None = None  # the latest load, which `_cache` describes (served or not yet)
        self._fingerprint: bytes | None = None  # of the tree at the last look (fingerprint.py)
        self.watcher = Watcher(self.instance_dir / "watcher.lock", self.look, watch_interval, folders=self._folders)

    def _folders(self) -> set[str]:
        return folders_to_watch(self.config_dir, (loader.EMAIL_DIR, loader.TEMPLATES_DIR, messaging_files.FOLDER))

    # -- reading --------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot; first catches up with changes another process announced."""
        if self._snapshot is None or self._counter.read() != self._generation:
            return self.reload()
        return self._snapshot

    def look(self, *, force: bool = False) -> None:
        """The watcher's look (and the first load; SIGHUP with `force`): a reload, unless no name or stat in the
        tree changed since the last look. Taken before the reload reads anything: a change made meanwhile
        differs next time."""
        current = fingerprint.of(self._folders())
        if not force and current is not None and current == self._fingerprint and self._snapshot is not None:
            return
        self.reload()
        self._fingerprint = current

    def reload(self) -> Snapshot:
        """Look at the tree now; serve what changed (announcing it first)."""
        with self._scan_lock:  # a cheap look first, without the write lock: usually nothing changed
            generation = self._counter.read()
            self._load()
            if self._snapshot is not None and same_content(self._loaded, self._snapshot):
                # Whatever was announced up to `generation` was on disk before this load: we serve it already.
                self._generation = generation
                return self._snapshot
        try:
            # Always the write lock first, then the scan lock (as write() does): no two threads wait on each other.
            with fsutil.locked(self.lock_path), self._scan_lock:
                self._install(self._load(), announce=True, share=True)
        except OSError:  # no usable lock (a read-only instance dir): this process keeps its own view
            with self._scan_lock:
                self._install(self._load(), announce=False)
        return self._snapshot

    def _load(self) -> Snapshot:
        """Read what changed since the latest load (call with the scan lock)."""
        self._loaded = loader.load_tree(self.config_dir, self._loaded, self._cache, self._last_good.read)
        return self._loaded

    def reload_everywhere(self) -> Snapshot:
        """Re-read now, and make every other worker of this service re-read on its next request."""
        return self.write(lambda snapshot: None)[1]

    def _install(self, fresh: Snapshot, *, announce: bool, share: bool = False) -> None:
        """Serve `fresh` from now on (call with the scan lock, and the write lock when `announce` or `share`);
        `share`: record it as the service's last good state first (a serving process, not the CLI)."""
        old = self._snapshot
        if old is not None and same_content(old, fresh):
            fresh = old  # a touched but unchanged file: nothing new to serve or announce
        else:
            if share:
                self._last_good.save(fresh)
            if old is not None and announce:
                self._counter.bump()
        self._snapshot = fresh
        self._generation = self._counter.read()
        if fresh is not old:
            for listener in self.listeners:
                listener(fresh, old)

    # -- writing ---------------------------------------------------------------------------

    def write(self, change: Callable[[Snapshot], object], *, create_lock: bool = True) -> tuple[object, Snapshot]:
        """Run `change(snapshot)` under the write lock on the tree as it is now; its result and the snapshot
        read back under the same lock (what a write's answer must show: by the time `snapshot()` is
        called again another thread or worker may have changed it). The CLI passes `create_lock=False`:
        without a lock file no service runs on this instance dir, and the CLI creates nothing there."""
        try:
            with fsutil.locked(self.lock_path, create=create_lock), self._scan_lock:
                current = self._load()
                self._install(current, announce=True, share=create_lock)
                result = change(current)
                self._install(self._load(), announce=False, share=create_lock)
                self._counter.bump()  # whatever `change` wrote, every worker looks again
                self._generation = self._counter.read()
                return result, self._snapshot
        except OSError as exc:
            raise Unavailable(f"The configuration could not be written: {fsutil.describe_os_error(exc)}. "
                              "Nothing was changed.") from None

    def save_config(self, document: dict) -> None:
        """Write one config file (call inside `write`)."""
        path = self.email_dir / f"{document['key']}{loader.CONFIG_SUFFIX}"
        self.email_dir.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(path, yamlio.dump(document))

    def delete_config(self, snapshot: Snapshot, key: str) -> None:
        """Remove one config's sealed secrets, then its file, then its place in fides' defaults (call inside `write`).

        Secrets first: a process killed between the two steps leaves a config without its secret
        (a valid tree), never secrets of a config that is gone (which `flask check` rejects). When
        the file cannot be removed, the sealed file is put back as it was: a refused delete changes nothing.
        Conflict while another config falls back to it: that one would lose its way out unseen.
        """
        falling_back = fallbacks.dependents(snapshot.configs, key)
        if falling_back:
            raise Conflict(f"The email config {key} is the fallback of {', '.join(falling_back)}: change or remove "
                           f"their fallback first.")
        path = self.email_dir / f"{key}{loader.CONFIG_SUFFIX}"
        original = self.sealed_path.read_bytes() if snapshot.sealed.fields_of(key) else None
        if original is not None:
            self.check_sealed_file_writable(snapshot)
            self.save_sealed(snapshot.sealed.without_config(key))
        try:
            fsutil.atomic_delete(path)
        except OSError:
            if original is not None and path.exists():
                try:
                    fsutil.atomic_write(self.sealed_path, original)
                except OSError as exc:
                    log.error("could not put back the secrets of %s after a failed delete: %s", key, exc.strerror)
            raise
        try:  # last: a key fides' defaults still list is passed over once its config is gone
            self.note_deleted(snapshot, key)
        except OSError as exc:
            log.warning("%s still lists the deleted config %s: %s", messaging_defaults.FILE_NAME, key,
                        fsutil.describe_os_error(exc))

    def save_messaging_template(self, template) -> None:
        """Write one fides messaging template file (call inside `write`)."""
        path = self.config_dir / messaging_files.relpath_of(template.type)
        path.parent.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(path, messaging_files.dump(template))

    def delete_messaging_template(self, template_type: str) -> bool:
        """Remove one fides messaging template file (call inside `write`); False when there was none."""
        return fsutil.atomic_delete(self.config_dir / messaging_files.relpath_of(template_type))

    def save_messaging_defaults(self, snapshot: Snapshot, defaults: messaging_defaults.MessagingDefaults) -> None:
        """Write fides' messaging defaults file when `defaults` differ from `snapshot`'s (call inside `write`)."""
        if defaults != snapshot.messaging_defaults:
            fsutil.atomic_write(self.config_dir / messaging_defaults.FILE_NAME, messaging_defaults.dump(defaults))

    def note_created(self, snapshot: Snapshot, key: str, service_type: str, *, activate: bool = False) -> None:
        """A config was created (or changed type) through either API: listed last of its type in fides' defaults,
        and its type the active default when asked or when there was none (fides: the first config posted).
        Call inside `write`."""
        defaults = snapshot.messaging_defaults
        had_active = defaults.active_default({k: e for k, e in snapshot.configs.items() if k != key})
        defaults = defaults.with_created(key, service_type)
        activate = activate or not had_active
        self.save_messaging_defaults(snapshot, defaults.with_active(service_type) if activate else defaults)

    def note_deleted(self, snapshot: Snapshot, key: str) -> None:
        """A config was deleted through either API: no longer listed in fides' defaults (call inside `write`)."""
        self.save_messaging_defaults(snapshot, snapshot.messaging_defaults.without(key))

    def check_sealed_file_writable(self, snapshot: Snapshot) -> None:
        """Conflict while the sealed file has problems: rewriting it would drop what could not be parsed."""
        if snapshot.sealed_file_problem is not None:
            raise Conflict(f"{loader.SEALED_FILE} has problems ({snapshot.sealed_file_problem}); fix the file "
                           "before changing secrets through the API, so that nothing in it is lost.")

    def save_sealed(self, secrets_file: sealed_file.SealedFile) -> None:
        """Write the sealed secrets file (call inside `write`)."""
        fsutil.atomic_write(self.sealed_path, sealed_file.dump(secrets_file))
