"""What happens once when the service starts (not for `flask` commands): key material, folders, first load.

`create_app` builds objects and writes nothing, so a CLI command has no side effects; the server
calls `prepare` before it forks its workers, and each worker calls `start_in_worker`.
"""

from __future__ import annotations

import logging
import os

from flask import Flask

from fidesmail.core import fsutil
from fidesmail.core.problems import Problem
from fidesmail.runtime import services
from fidesmail.sealing import keys
from fidesmail.web import auth

log = logging.getLogger("fidesmail")


def prepare(app: Flask) -> None:
    """Make what the service needs and does not have yet, then load the tree (idempotent)."""
    if app.extensions.get("fidesmail.prepared"):
        return
    config = app.config
    found = services.of(app)
    store = found.store
    config["INSTANCE_DIR"].mkdir(parents=True, exist_ok=True, mode=0o700)
    if not config["SECRET_KEYS"]:
        auth.ensure_key_file(config["INSTANCE_DIR"])
    ensure_sealing_keys(config["SEAL_KEY_FILE"], store.public_key_path, read_only=config["READ_ONLY"])
    if not config["READ_ONLY"]:
        _prepare_tree(store)
    try:
        found.evidence_key.ensure()
    except OSError as exc:  # bundles answer 503 until it can be made; sends do not need it
        log.error("cannot create the evidence key %s: %s", found.evidence_key.path, exc.strerror)
    store.listeners.append(_log_new_problems)
    store.listeners.append(lambda fresh, old: _log_public_key_change(fresh, old, found.vault))
    store.listeners.append(found.metrics.observe_reload)
    # A reload may bring or take seal.pub: known with it at once, not at the loop's next round.
    store.listeners.append(lambda fresh, old: found.readiness.record(
        "sealing", found.vault.sealing_problem(fresh.public_key_id)))
    store.look()  # the first load, with the watcher's digest of it: a worker's first look then costs a stat per file
    snapshot = store.snapshot()
    for problem in snapshot.problems:
        log.error("config tree problem: %s", problem)
    mismatch = keys.mismatch(snapshot.public_key_id, _keyring_or_empty(found.vault))
    if mismatch:
        log.error("%s", mismatch)
    # The database's part of it migrates the schema and agrees on the records key (startup's job, never a
    # request's); known before the first request, then kept by a loop in each worker.
    found.readiness.refresh()
    app.extensions["fidesmail.prepared"] = True


def start_in_worker(app: Flask) -> None:
    """In each serving process: prepare (when the master did not), then the background threads."""
    prepare(app)
    found = services.of(app)
    # Catch up only with what was announced since the master loaded the tree (SIGHUP: reload_in_master):
    # a reload here would touch every entry and so copy the shared pages of the master's snapshot.
    found.store.snapshot()
    found.store.watcher.start()
    for loop in found.loops:
        loop.start()
    found.deliverer.start()


def reload_in_master(app: Flask) -> None:
    """SIGHUP: the master looks at the tree, and the workers it forks next start with what it found."""
    services.of(app).store.look(force=True)  # a re-read whatever the stats say, and the watcher's digest of it


def stop_in_worker(app: Flask, wait: float = 3.0) -> None:
    """A worker going away: claim no more queued messages, let the posts in flight finish (briefly)."""
    found = services.of(app)
    for loop in found.loops:
        loop.stop()
    if not found.deliverer.stop(wait):
        log.warning("stopping with queued messages still being posted: each turns unknown when its lease ends")


def _prepare_tree(store) -> None:
    try:
        store.email_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create %s: %s", store.email_dir, exc.strerror)
    with fsutil.locked(store.lock_path):
        for folder in (store.email_dir, store.config_dir):
            for path in fsutil.remove_stale_temp_files(folder):
                log.info("removed a temp file left by an interrupted write: %s", path.name)


def _log_new_problems(fresh, old) -> None:
    for problem in sorted(set(fresh.problems) - set(old.problems if old else ())):
        log.error("config tree problem (last good state kept): %s", problem)


def _log_public_key_change(fresh, old, vault) -> None:
    """seal.pub replaced while serving: the log names it, once per change (the start logs its own state)."""
    if old is None or fresh.public_key_id == old.public_key_id:
        return
    mismatch = keys.mismatch(fresh.public_key_id, _keyring_or_empty(vault))
    if mismatch:
        log.error("seal.pub was replaced while serving: %s", mismatch)
    elif fresh.public_key_id is None:
        log.error("seal.pub was removed while serving (it held key %s): nothing can be sealed until it is "
                  "restored", old.public_key_id)
    else:
        log.warning("seal.pub was replaced while serving: it now holds key %s (was %s), the newest key of the "
                    "private keyring", fresh.public_key_id, old.public_key_id)


def _keyring_or_empty(vault) -> tuple:
    try:
        return vault.keyring()
    except keys.KeyringError:
        return ()


def ensure_sealing_keys(keyring_path, public_key_path, *, read_only: bool) -> None:
    """Create the keyring and `seal.pub` on a first start; never replace either.

    A committed seal.pub without its private key means a key to restore, not to replace: nothing is
    generated. A seal.pub that is not the keyring's newest key is reported, never written over."""
    keyring_exists, public_exists = os.path.lexists(keyring_path), os.path.lexists(public_key_path)
    if not keyring_exists and public_exists:
        log.error("private sealing key file %s is missing (%s exists): sealed secrets cannot be opened "
                  "until it is restored", keyring_path, public_key_path)
        return
    if not keyring_exists:
        pair = keys.generate_keypair()
        try:
            if fsutil.create_file(keyring_path, keys.dump_keyring([pair]), 0o600):
                log.info("generated private sealing key %s into %s (mode 0600)", pair.key_id, keyring_path)
        except OSError as exc:
            log.error("cannot create private sealing key file %s: %s", keyring_path, exc.strerror)
            return
    try:
        keyring = keys.load_keyring(keyring_path)  # also when another process just created it
    except keys.KeyringError as exc:
        # Never replace it: it may hold the only key that opens the committed values.
        log.error("%s; left as it is, sealed secrets cannot be opened", exc)
        return
    if public_exists:
        return  # compared with the keyring on every load; reported, never written over
    if read_only:
        log.warning("%s is missing and FIDESMAIL_READ_ONLY=true: not written; commit the public key of %s "
                    "(key %s) to the config tree", public_key_path, keyring_path, keyring[0].key_id)
        return
    try:
        if fsutil.create_file(public_key_path, keys.dump_public_key(keyring[0].public_key), 0o644):
            log.info("wrote public sealing key %s to %s", keyring[0].key_id, public_key_path)
    except OSError as exc:
        log.warning("cannot write public sealing key file %s (%s); `flask secrets seal` needs it (key %s)",
                    public_key_path, exc.strerror, keyring[0].key_id)


def problems_of_keys(snapshot, vault) -> list[Problem]:
    """What is wrong between seal.pub and the keyring, as tree problems (for /health and `flask check`)."""
    mismatch = keys.mismatch(snapshot.public_key_id, _keyring_or_empty(vault))
    return [Problem("seal.pub", 1, mismatch)] if mismatch else []
