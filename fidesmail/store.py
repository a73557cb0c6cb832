"""The config tree: loaded into immutable snapshots, watched for changes, written atomically.

Reads never touch the disk: a request takes the current `Snapshot`, which is replaced whole
when a file changes. Writes hold a cross-process lock (gunicorn workers share the tree), re-read
the tree, check, write atomically, then bump a counter that every worker compares on each
request, so a write made through one worker is served by all of them at once. Edits made by
hand (git pull, an editor, a ConfigMap swap) are seen within a second by a polling watcher, one per
service (the worker holding `watcher.lock`), which bumps the same counter.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from marshmallow import ValidationError

from . import fsutil, sealed, yamlio
from .problems import Problem
from .schemas import KEY_PATTERN, validate_config

log = logging.getLogger("fidesmail.store")

EMAIL_DIR = "email"
SEALED_FILE = "secrets.sealed.yaml"
PUBLIC_KEY_FILE = "seal.pub"
CONFIG_SUFFIX = ".yaml"


class StoreError(Exception):
    """A write the store refuses; `status` is the HTTP answer it maps to."""

    status = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class PreconditionFailed(StoreError):
    status = 412


class StorageUnavailable(StoreError):
    """The disk refused a write (full, read-only, no permission)."""

    status = 503


@dataclass(frozen=True)
class ConfigEntry:
    """One served config: its canonical document and its ready-made JSON answer."""

    document: Mapping
    path: str
    secret_fields: frozenset
    body: bytes
    etag: str

    @property
    def key(self) -> str:
        return self.document["key"]


@dataclass(frozen=True)
class Snapshot:
    """An immutable, fully validated view of the config tree."""

    configs: Mapping[str, ConfigEntry]
    keys: tuple[str, ...]
    sealed: sealed.SealedFile
    problems: tuple[Problem, ...]
    loaded_at: float
    ok: bool

    def page(self, page: int, size: int) -> list[ConfigEntry]:
        start = (page - 1) * size
        return [self.configs[key] for key in self.keys[start : start + size]]


@dataclass(frozen=True)
class _FileResult:
    """What one file on disk gave, remembered with its stat signature to skip re-parsing."""

    signature: tuple
    document: dict | None = None
    problems: tuple[Problem, ...] = ()
    digest: bytes | None = None  # of the content, while the signature alone cannot be trusted (racy)


# A file changed less than this long before it was read can be replaced by one with the very same
# stat signature: with coarse timestamps (1 s on ext3, HFS+ and some network or overlay file systems,
# a clock tick on ext4 before Linux 6.13), two writes within one tick that reuse the inode number
# and keep the size look alike. Such entries are confirmed by their content until they are older
# (git's "racy index" rule); trusting the stat alone let a worker keep a stale view, and its next
# write silently dropped another worker's acknowledged one.
RACY_NS = 2_000_000_000


def _racy_digest(signature: tuple, data: bytes) -> bytes | None:
    if time.time_ns() - max(signature[3], signature[4]) < RACY_NS:
        return hashlib.blake2b(data, digest_size=16).digest()
    return None


def _confirmed(cached: _FileResult, signature: tuple, path) -> _FileResult | None:
    """`cached` if it still describes the file at `path` (which has `signature`), else None."""
    if cached.signature != signature:
        return None
    if cached.digest is None:
        return cached
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if hashlib.blake2b(data, digest_size=16).digest() != cached.digest:
        return None
    return cached if _racy_digest(signature, b"") is not None else replace(cached, digest=None)


@dataclass
class _ScanState:
    files: dict[str, _FileResult] = field(default_factory=dict)
    listing_problems: list[Problem] = field(default_factory=list)
    sealed_file: _FileResult | None = None
    sealed_value: sealed.SealedFile | None = None


def _signature(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def parse_config_file(data: bytes, relpath: str, expected_key: str) -> _FileResult:
    """Parse and validate one config file; problems carry the line they point at."""
    try:
        document, line_of = yamlio.load(data)
    except yamlio.YAMLProblem as exc:
        return _FileResult((), problems=(Problem(relpath, exc.line, exc.message),))
    if not isinstance(document, dict):
        return _FileResult((), problems=(Problem(relpath, 1, "a config file must be a YAML mapping"),))
    document = dict(document)
    document.setdefault("key", expected_key)
    try:
        valid = validate_config(document)
    except ValidationError as exc:
        return _FileResult((), problems=tuple(
            Problem(relpath, line_of(loc), f"{'.'.join(map(str, loc)) or 'file'}: {msg}")
            for loc, msg in flatten_messages(exc.messages)
        ))
    if valid["key"] != expected_key:
        return _FileResult((), problems=(Problem(
            relpath, line_of(["key"]),
            f"key: {valid['key']!r} differs from the file name (expected {expected_key!r})",
        ),))
    return _FileResult((), document=valid)


def flatten_messages(messages, prefix=()) -> list[tuple[tuple, str]]:
    """Marshmallow's nested error messages as (location, message) pairs."""
    if isinstance(messages, Mapping):
        pairs = []
        for name, inner in messages.items():
            loc = prefix if name == "_schema" else (*prefix, name)
            pairs.extend(flatten_messages(inner, loc))
        return pairs
    if isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            return [(prefix, m) for m in messages]
        pairs = []
        for item in messages:
            pairs.extend(flatten_messages(item, prefix))
        return pairs
    return [(prefix, str(messages))]


def _entry(document: dict, path: str, secret_fields: frozenset) -> ConfigEntry:
    body = json.dumps({**document, "secrets_set": "mailgun_api_key" in secret_fields},
                      separators=(",", ":")).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    return ConfigEntry(MappingProxyType(document), path, secret_fields, body, etag)


class Store:
    """The config tree of one process: the current snapshot, its watcher and its writer."""

    def __init__(self, config_dir: Path, instance_dir: Path, *, read_only: bool = False,
                 watch_interval: float = 1.0):
        self.config_dir = Path(config_dir)
        self.email_dir = self.config_dir / EMAIL_DIR
        self.sealed_path = self.config_dir / SEALED_FILE
        self.public_key_path = self.config_dir / PUBLIC_KEY_FILE
        self.instance_dir = Path(instance_dir)
        self.lock_path = self.instance_dir / "store.lock"
        self.read_only = read_only
        self.watch_interval = watch_interval
        self._scan_lock = threading.Lock()
        self._state = _ScanState()
        self._generation = None
        self._counter_fd = None
        self._counter_pid = None
        self._watcher_pid = None
        self._poller_fd = None
        self._poller_pid = None
        self._stop = threading.Event()
        self.on_install = None  # called with each snapshot put in service (metrics)
        self._snapshot = self._scan()
        for problem in self._snapshot.problems:
            log.error("config tree problem: %s", problem)

    # -- reading --------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot; first catches up with writes made by other processes."""
        self._ensure_watcher()
        if self._read_generation() != self._generation:
            self.reload()
        return self._snapshot

    def reload(self, reuse: bool = False) -> Snapshot:
        """Re-read the tree now (reusing what did not change on disk; with `reuse`, the whole
        snapshot when nothing changed, so a forked worker keeps sharing its parent's pages)."""
        with self._scan_lock:
            generation = self._read_generation()
            self._install(self._scan(reuse=reuse))
            self._generation = generation
            return self._snapshot

    def reload_everywhere(self) -> Snapshot:
        """Re-read now, and make every other worker of this service re-read on its next request."""
        return self.write_then_read(lambda snapshot: None)[1]

    def _install(self, fresh: Snapshot) -> None:
        """Serve `fresh` from now on; log problems that are new."""
        old = self._snapshot
        if fresh.problems != old.problems:
            for problem in set(fresh.problems) - set(old.problems):
                log.error("config tree problem (last good state kept): %s", problem)
        self._snapshot = fresh
        if self.on_install is not None:
            self.on_install(fresh)

    def _scan(self, reuse: bool = False) -> Snapshot:
        """Read every file that changed since the last scan and build a new snapshot.

        With `reuse`, a tree in which no file changed gives back the current snapshot itself: the
        watcher's idle poll then costs one stat per file and no rebuild (10k configs: 83 -> ~45 ms).
        """
        previous = getattr(self, "_snapshot", None)
        state = self._state
        previous_files = state.files
        file_changed = False
        problems: list[Problem] = []
        files: dict[str, _FileResult] = {}
        try:
            entries = list(os.scandir(self.email_dir))  # sorted below, only when a snapshot is built
        except FileNotFoundError:
            entries = []
        except OSError as exc:
            problems.append(Problem(EMAIL_DIR, 1, f"cannot read the folder: {exc.strerror}"))
            entries = []
        for dirent in entries:
            name = dirent.name
            if name.startswith("."):
                continue  # hidden files and the writer's temp files
            if not name.endswith(CONFIG_SUFFIX):
                if name.endswith(".yml"):
                    problems.append(Problem(f"{EMAIL_DIR}/{name}", 1, "ignored: config files must end in .yaml"))
                continue
            try:
                signature = _signature(dirent.stat())
            except OSError:
                continue  # removed between listing and stat
            cached = previous_files.get(name)
            cached = _confirmed(cached, signature, dirent.path) if cached is not None else None
            if cached is not None:
                files[name] = cached
                continue
            file_changed = True
            files[name] = self._read_config_file(dirent.path, f"{EMAIL_DIR}/{name}", name[: -len(CONFIG_SUFFIX)],
                                                 signature)
        state.files = files
        sealed_before = state.sealed_value
        secrets_file, secret_problems = self._read_sealed()
        problems.sort()
        if (reuse and previous is not None and not file_changed and len(files) == len(previous_files)
                and secrets_file is sealed_before and problems == state.listing_problems):
            return previous
        state.listing_problems = list(problems)
        problems.extend(secret_problems)

        configs: dict[str, ConfigEntry] = {}
        names: dict[str, str] = {}
        previous_by_path = {e.path: e for e in previous.configs.values()} if previous else {}
        for name, result in sorted(files.items()):
            relpath = f"{EMAIL_DIR}/{name}"
            problems.extend(result.problems)
            document = result.document
            if document is None:
                last_good = previous_by_path.get(relpath)
                if last_good is None:
                    continue
                document = dict(last_good.document)  # keep serving the last good version
            key = document["key"]
            if document["name"] in names:
                problems.append(Problem(relpath, 1, f"name: {document['name']!r} is already used "
                                                    f"by config {names[document['name']]!r}"))
                continue
            names[document["name"]] = key
            secret_fields = secrets_file.fields_of(key)
            cached = previous.configs.get(key) if previous else None
            if cached is not None and cached.document == document and cached.secret_fields == secret_fields \
                    and cached.path == relpath:
                configs[key] = cached
            else:
                configs[key] = _entry(document, relpath, secret_fields)
        for key in secrets_file.entries.keys() - configs.keys():
            line = min(secrets_file.lines.get((key, f), 1) for f in secrets_file.fields_of(key))
            problems.append(Problem(SEALED_FILE, line, f"{key}: secrets for a config that does not exist "
                                                       "(renamed or removed? move or remove them)"))
        problems.sort()
        return Snapshot(
            configs=MappingProxyType(configs),
            keys=tuple(sorted(configs)),
            sealed=secrets_file,
            problems=tuple(problems),
            loaded_at=time.time(),
            ok=not problems,
        )

    def _read_config_file(self, path: str, relpath: str, expected_key: str, signature: tuple) -> _FileResult:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return _FileResult(signature, problems=(Problem(relpath, 1, f"cannot read: {exc.strerror}"),))
        if not KEY_PATTERN.fullmatch(expected_key):
            return _FileResult(signature, problems=(Problem(relpath, 1, "the file name is not a valid config key"),))
        result = parse_config_file(data, relpath, expected_key)
        return _FileResult(signature, result.document, result.problems, _racy_digest(signature, data))

    def _read_sealed(self) -> tuple[sealed.SealedFile, list[Problem]]:
        """The sealed secrets file's structure (values are opened only when sending)."""
        state = self._state
        try:
            signature = _signature(os.stat(self.sealed_path))
        except FileNotFoundError:
            if state.sealed_file is not None or state.sealed_value is None:  # the same empty value while absent
                state.sealed_file, state.sealed_value = None, sealed.SealedFile()
            return state.sealed_value, []
        cached = state.sealed_file and _confirmed(state.sealed_file, signature, self.sealed_path)
        if cached:
            state.sealed_file = cached
            return state.sealed_value, list(cached.problems)
        digest = None
        try:
            data = self.sealed_path.read_bytes()
        except OSError as exc:
            parsed, problems = sealed.SealedFile(), [Problem(SEALED_FILE, 1, f"cannot read: {exc.strerror}")]
        else:
            parsed, problems = sealed.parse_sealed_file(data, SEALED_FILE)
            digest = _racy_digest(signature, data)
        state.sealed_file = _FileResult(signature, problems=tuple(problems), digest=digest)
        state.sealed_value = parsed
        return parsed, problems

    # -- cross-process change counter --------------------------------------------------------

    def _counter(self) -> int | None:
        """File descriptor of the lock file, whose first 8 bytes count the writes."""
        if self._counter_pid != os.getpid():
            try:
                self._counter_fd = os.open(self.lock_path, os.O_RDONLY)
                self._counter_pid = os.getpid()
            except OSError:
                return None
        return self._counter_fd

    def _read_generation(self) -> int | None:
        fd = self._counter()
        if fd is None:
            return None
        raw = os.pread(fd, 8, 0)
        return struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0

    def _bump_generation(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            raw = os.pread(fd, 8, 0)
            current = struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0
            os.pwrite(fd, struct.pack("<Q", current + 1), 0)
        finally:
            os.close(fd)

    # -- watching --------------------------------------------------------------------------

    def _ensure_watcher(self) -> None:
        """Start the polling thread in this process (again after a fork)."""
        if self._watcher_pid == os.getpid() or self.watch_interval <= 0:
            return
        self._watcher_pid = os.getpid()
        thread = threading.Thread(target=self._watch, name="fidesmail-config-watcher", daemon=True)
        thread.start()

    def _watch(self) -> None:
        try:
            while not self._stop.wait(self.watch_interval):
                try:
                    if self._is_poller():
                        self._poll()
                    elif self._read_generation() != self._generation:
                        self.reload()  # the poller (or a write) changed the tree
                except Exception:  # the watcher must outlive any one bad scan
                    log.exception("config tree scan failed")
        finally:
            self._release_poller()

    def _poll(self) -> None:
        """Stat every file; on a change, serve it and bump the counter so every other worker re-reads."""
        with self._scan_lock:
            fresh = self._scan(reuse=True)
            if fresh is self._snapshot or not self._changed(fresh):
                return
        with fsutil.locked(self.lock_path):
            with self._scan_lock:
                self._install(self._scan())  # again under the lock: a write may have landed meanwhile
                self._bump_generation()
                self._generation = self._read_generation()

    def _is_poller(self) -> bool:
        """One process polls the tree for all workers: the one holding an flock on `watcher.lock`.

        Polling costs one stat per file per second (10,000 files: ~3% of a core), so one poller
        instead of one per worker; the others follow the change counter, as after a write. When the
        lock or the counter cannot be used, every process polls for itself, as before.
        """
        if self._poller_pid == os.getpid():
            return True
        if self._poller_fd is not None:  # inherited through a fork: the lock stays the parent's
            os.close(self._poller_fd)
            self._poller_fd = None
        if not os.access(self.lock_path, os.W_OK):
            return True
        try:
            fd = os.open(self.instance_dir / "watcher.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._poller_fd, self._poller_pid = fd, os.getpid()
        return True

    def _release_poller(self) -> None:
        if self._poller_fd is not None and self._poller_pid == os.getpid():
            os.close(self._poller_fd)
            self._poller_fd = self._poller_pid = None

    def _changed(self, fresh: Snapshot) -> bool:
        old = self._snapshot
        return (fresh.problems != old.problems or fresh.keys != old.keys or fresh.sealed is not old.sealed
                or any(fresh.configs[k] is not old.configs.get(k) for k in fresh.keys))

    def stop(self) -> None:
        self._stop.set()

    # -- writing ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Make the folders and clean temp files a killed writer left (start-up, under the lock)."""
        self.instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with fsutil.locked(self.lock_path):
            if not self.read_only:
                try:
                    self.email_dir.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    log.warning("cannot create %s: %s", self.email_dir, exc.strerror)
                for folder in (self.email_dir, self.config_dir):
                    for path in fsutil.remove_stale_temp_files(folder):
                        log.info("removed a temp file left by an interrupted write: %s", path.name)
        self.reload()

    def write(self, change):
        """Run `change(snapshot)` under the write lock on a fresh snapshot, then re-read; its result."""
        return self.write_then_read(change)[0]

    def write_then_read(self, change) -> tuple:
        """`write`, and the snapshot read back under the same lock: what a write's answer must show,
        since by the time `snapshot()` is called another thread or worker may have changed or removed it."""
        try:
            with fsutil.locked(self.lock_path):
                with self._scan_lock:
                    self._install(self._scan())
                    result = change(self._snapshot)
                    self._bump_generation()
                    self._generation = self._read_generation()
                    self._install(self._scan())
                    written = self._snapshot
        except OSError as exc:
            raise StorageUnavailable(_describe_os_error(exc)) from None
        return result, written

    def save_config(self, document: dict) -> None:
        """Write one config file (call inside `write`)."""
        path = self.email_dir / f"{document['key']}{CONFIG_SUFFIX}"
        self.email_dir.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(path, yamlio.dump(document))

    def delete_config(self, key: str) -> None:
        """Remove one config's sealed secrets, then its file (call inside `write`).

        Secrets first: a process killed between the two steps leaves a config without its secret
        (a valid tree), never secrets of a config that is gone (which `flask check` rejects). When
        the file cannot be removed, the sealed file is put back as it was: a refused delete changes nothing.
        """
        path = self.email_dir / f"{key}{CONFIG_SUFFIX}"
        current = self._state.sealed_value or sealed.SealedFile()
        original = self.sealed_path.read_bytes() if current.fields_of(key) else None
        if original is not None:
            self.save_sealed(current.without_config(key))
        try:
            fsutil.atomic_delete(path)
        except OSError:
            if original is not None and path.exists():
                try:
                    fsutil.atomic_write(self.sealed_path, original)
                except OSError as exc:
                    log.error("could not put back the secrets of %s after a failed delete: %s", key, exc.strerror)
            raise

    def save_sealed(self, secrets_file: sealed.SealedFile) -> None:
        """Write the sealed secrets file (call inside `write`)."""
        fsutil.atomic_write(self.sealed_path, sealed.dump_sealed_file(secrets_file))


def _describe_os_error(exc: OSError) -> str:
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
    }
    reason = reasons.get(exc.errno, exc.strerror or "an I/O error")
    return f"The configuration could not be written: {reason}. Nothing was changed."
