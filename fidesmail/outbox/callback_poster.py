"""POSTing callbacks (contract section 15): signed, bounded, in order per message, tried again with the backoff.

The deliverer's loop (deliverer.py) pumps this with its claims and sweeps: it claims due callback rows
(callbacks.py) and hands them to a small pool of posters. Each POST carries the status change as JSON
and `X-Fidesmail-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the config's
sealed callback_signing_key (opened as it is now). A receiver's URL is operator-chosen and untrusted:
no redirects, bounded in time and size (providers/bounded.py), and its answer's body is never kept.
A 2xx settles it; anything else is tried again after the outbox's backoff until the delivery deadline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from fidesmail.outbox.callbacks import Callback, CallbackQueue
from fidesmail.providers import bounded
from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY
from fidesmail.records.messages import iso, now_ms
from fidesmail.sealing import envelope, keys
from fidesmail.sending.retrying import backoff_delay

log = logging.getLogger("fidesmail.callbacks")

SIGNATURE_HEADER = "X-Fidesmail-Signature"
MAX_ANSWER = 64 * 1024  # what is read of a receiver's answer (then dropped)


def body_of(callback: Callback) -> bytes:
    """The callback's JSON body (contract section 15)."""
    return json.dumps({"message_id": callback.message_id, "reference": callback.reference, "status": callback.status,
                       "provider": callback.provider, "at": iso(callback.at),
                       "failure_reason": callback.failure_reason}, separators=(",", ":")).encode()


def signature(key: str, body: bytes, at: int) -> str:
    """The X-Fidesmail-Signature header's value: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    mac = hmac.new(key.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


class CallbackPoster:
    """Posts this worker's share of the callbacks, with its own few threads."""

    def __init__(self, services, config, policy, counter):
        self.services = services
        self.counter = counter  # fidesmail_callbacks_total{outcome}
        self.queue = CallbackQueue(services.database)
        self.concurrency = config["OUTBOX_CONCURRENCY"]
        self.timeout = config["MAILGUN_TIMEOUT"]
        self.lease_ms = int(1000 * (3 * self.timeout + 2))
        self.policy = policy  # the outbox's: backoff and delivery deadline
        self._random = random.Random()
        self._session = requests.Session()
        self._session.trust_env = False  # an operator's URL as given, not through this machine's proxy settings
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = 0

    def reset(self) -> None:
        """After a fork: no pool, no pooled connections of the parent."""
        self._session = requests.Session()
        self._session.trust_env = False
        self._lock = threading.Lock()
        self._pool = None
        self._in_flight = 0

    def pump(self, wake: threading.Event) -> float | None:
        """Claim what is due (as many as idle posters) and post it; seconds until the next is due (0: look again
        now; None: nothing to look for before the next poll)."""
        with self._lock:
            free = self.concurrency - self._in_flight
        due = self.queue.next_due() if free > 0 else None
        if due is None:
            return None
        if due > now_ms():
            return (due - now_ms()) / 1000
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fidesmail-callback-post")
        claimed = self.queue.claim(free, self.lease_ms)
        for callback in claimed:
            with self._lock:
                self._in_flight += 1
            try:
                self._pool.submit(self._post, callback, wake)
            except RuntimeError:  # shut down meanwhile: its lease makes it due again
                with self._lock:
                    self._in_flight -= 1
        return 0.0 if claimed else None  # a finished post wakes the loop for the message's next

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def expire_leases(self) -> int:
        return self.queue.expire_leases()

    def _post(self, callback: Callback, wake: threading.Event) -> None:
        try:
            error = self._deliver(callback)
            if error is None:
                self.queue.done(callback)
                self.counter.labels("delivered").inc()
            else:
                self._again(callback, error)
        except Exception:  # its lease makes it due again
            log.exception("callback %s of %s could not be settled", callback.status, callback.message_id)
        finally:
            with self._lock:
                self._in_flight -= 1
            wake.set()  # the message's next status may go now

    def _deliver(self, callback: Callback) -> str | None:
        """POST it once; None when the receiver answered 2xx, else why not."""
        snapshot = self.services.store.snapshot()
        entry = snapshot.configs.get(callback.config_key)
        if entry is None:
            return f"no email config {callback.config_key} (removed since)"
        url = (entry.document.get("callback") or {}).get("url")
        if url is None:
            return f"the config {callback.config_key} names no callback any more"
        try:
            key = self.services.vault.open(snapshot.sealed, callback.config_key, CALLBACK_SIGNING_KEY)
        except (keys.KeyringError, envelope.SealError) as exc:
            return f"its {CALLBACK_SIGNING_KEY} cannot be opened: {exc}"
        if key is None:
            return f"the config {callback.config_key} has no {CALLBACK_SIGNING_KEY}: nothing is posted unsigned"
        body = body_of(callback)
        headers = {"Content-Type": "application/json", "User-Agent": "fidesmail-callbacks",
                   SIGNATURE_HEADER: signature(key, body, int(time.time()))}
        try:
            answer = bounded.request(self._session, "POST", url, timeout=self.timeout, max_bytes=MAX_ANSWER,
                                     data=body, headers=headers)
        except bounded.BoundedError as exc:
            return str(exc)
        if 200 <= answer.status < 300:
            log.info("callback delivered", extra={"message_id": callback.message_id, "status": callback.status,
                                                  "config_key": callback.config_key})
            return None
        return f"the receiver answered {answer.status}"

    def _again(self, callback: Callback, error: str) -> None:
        now = now_ms()
        deadline_at = self.policy.deadline_at(callback.created_at)
        facts = {"message_id": callback.message_id, "status": callback.status, "config_key": callback.config_key,
                 "attempts": callback.attempts + 1}
        if now >= deadline_at:
            log.warning("callback given up at the delivery deadline: %s", error, extra=facts)
            self.queue.done(callback)
            self.counter.labels("given_up").inc()
            return
        delay = backoff_delay(callback.attempts + 1, self.policy.base, self.policy.cap, self._random)
        next_at = min(now + int(delay * 1000), deadline_at)
        log.warning("callback not delivered (tried again at %s): %s", iso(next_at), error, extra=facts)
        self.queue.again(callback, next_at, error)
        self.counter.labels("retried").inc()
