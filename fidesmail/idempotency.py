"""The Idempotency-Key ledger: one answer per key, kept on disk, shared by every worker.

Mailgun has no idempotency key of its own, so the service keeps one. A record is a small
JSON file named by a hash of the key; a per-key flock makes a second call with the same key
wait for the first and then replay its answer instead of sending again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import fsutil

log = logging.getLogger("fidesmail.idempotency")

RETENTION_SECONDS = 24 * 3600
_SWEEP_EVERY_SECONDS = 600


INTERRUPTED = ("An earlier request with this Idempotency-Key was interrupted before its outcome was recorded; "
               "the message may have been sent, so it is not sent again. Send with a new Idempotency-Key "
               "to send it anyway.")


class KeyReused(ValueError):
    """The key was first used with another request body."""


@dataclass(frozen=True)
class Answer:
    """A stored answer: HTTP status and JSON body."""

    status: int
    body: dict


def fingerprint(request_body: dict) -> str:
    """A stable digest of what the caller asked for."""
    canonical = json.dumps(request_body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Ledger:
    """Idempotency records under `<instance dir>/idempotency/`."""

    def __init__(self, directory: Path, retention: float = RETENTION_SECONDS):
        self.directory = Path(directory)
        self.retention = retention
        self._last_sweep = 0.0

    def run(self, key: str, request_fingerprint: str,
            produce: Callable[[], tuple[Answer, bool]]) -> tuple[Answer, bool]:
        """The first answer kept for `key`, else `produce()`'s (kept when it says so); (answer, replayed).

        The key is reserved on disk before `produce()` runs: a send that could not be remembered
        (disk full, read-only) is not made at all (503), and a process killed while Mailgun had the
        message leaves the reservation, so a retry answers "outcome unknown" instead of sending twice.
        """
        name = hashlib.sha256(key.encode()).hexdigest()
        record_path = self.directory / f"{name}.json"
        with contextlib.ExitStack() as stack:
            try:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                stack.enter_context(fsutil.locked(self._lock_path(name)))
                stored = self._read(record_path)
                if stored is None:
                    self._write(record_path, {"fingerprint": request_fingerprint, "pending": True})
            except OSError as exc:
                log.error("Idempotency-Key ledger %s cannot be written: %s", self.directory, exc)
                return Answer(503, {"detail": "The Idempotency-Key could not be recorded: "
                                              f"{fsutil.describe_os_error(exc)}. Nothing was sent."}), False
            if stored is not None:
                if stored["fingerprint"] != request_fingerprint:
                    raise KeyReused("this Idempotency-Key was already used with a different request body")
                if stored.get("pending"):
                    return Answer(504, {"detail": INTERRUPTED}), True
                return Answer(stored["status"], stored["body"]), True
            answer, keep = produce()
            try:
                if keep:
                    self._write(record_path, {"fingerprint": request_fingerprint, "status": answer.status,
                                              "body": answer.body})
                else:
                    record_path.unlink(missing_ok=True)
            except OSError as exc:
                # The answer is given all the same; the reservation stays, so a retry is not sent again.
                log.error("Idempotency-Key ledger %s: the outcome of a send could not be recorded: %s",
                          self.directory, exc)
        try:
            self._maybe_sweep()
        except OSError as exc:  # a record another worker removed meanwhile: never fail a send for it
            log.warning("Idempotency-Key ledger %s: sweep skipped: %s", self.directory, exc)
        return answer, False

    def _write(self, path: Path, record: dict) -> None:
        fsutil.atomic_write(path, json.dumps({**record, "created": time.time()}).encode(), 0o600)

    def _read(self, path: Path) -> dict | None:
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable: treat as absent rather than refuse every retry
        if time.time() - record.get("created", 0) > self.retention:
            return None
        return record

    def _maybe_sweep(self) -> None:
        """Drop records past retention, at most every few minutes per process."""
        now = time.time()
        if now - self._last_sweep < _SWEEP_EVERY_SECONDS:
            return
        self._last_sweep = now
        for path in self._expired(now):
            with contextlib.suppress(OSError), fsutil.locked(self._lock_path(path.stem)):
                if self._read(path) is None:
                    path.unlink(missing_ok=True)

    def _lock_path(self, name: str) -> Path:
        # 4096 lock stripes, never deleted: deleting a lock file another process waits on
        # would let a third one lock a new file of the same name and run beside it.
        return self.directory / f"stripe-{name[:3]}.lock"

    def _expired(self, now: float) -> Iterator[Path]:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.directory):
                if entry.name.endswith(".json") and now - entry.stat().st_mtime > self.retention:
                    yield Path(entry.path)
