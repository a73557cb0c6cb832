"""The background deliverer of one worker: claims due messages with a lease, posts them, records what came of it.

One thread per worker process (started by startup.start_in_worker, reset after a fork) claims up to
FIDESMAIL_OUTBOX_CONCURRENCY messages at a time and hands them to a pool of as many poster threads
(concurrent.futures); what is in flight is the pool's unfinished futures. It wakes
at once when this process has just queued a message (a 202 goes out in milliseconds), and otherwise
looks at the table about every FIDESMAIL_OUTBOX_POLL seconds (jittered) for messages queued by other
workers or replicas and for retries come due; every few seconds it also sweeps (expired leases,
payloads of settled messages, the delivery deadline, orphaned gates).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import tenacity

from fidesmail.core import forks, outcomes
from fidesmail.core.addresses import mask
from fidesmail.core.exceptions import Unavailable
from fidesmail.outbox.callback_poster import CallbackPoster
from fidesmail.outbox.metrics import OutboxMetrics
from fidesmail.outbox.payload import Payload, PayloadCipher, PayloadError
from fidesmail.outbox.queue import Claimed, Settlement
from fidesmail.outbox.schedule import Policy
from fidesmail.outbox.tries import ChainTries
from fidesmail.providers.base import Email
from fidesmail.records import messages as records
from fidesmail.records import pacing
from fidesmail.sending import failover
from fidesmail.tree import fallbacks

log = logging.getLogger("fidesmail.outbox")

SWEEP_SECONDS = 5.0
FULL_SWEEP_SECONDS = 300.0
_SETTLE_TRIES = 5
_WAIT_POLL = 0.2  # how often a request waiting for its outcome (wait=N) reads the record
_FINAL_OUTCOMES = {outcomes.ACCEPTED: "sent", outcomes.FAILED: "refused", outcomes.UNKNOWN: "timeout"}


@dataclass
class _Pending:
    """An outcome on its way to the database."""

    claimed: Claimed
    settlement: Settlement
    status: str | None = None
    done: bool = False


def lease_ms(mailgun_timeout: float) -> int:
    """Longer than one attempt can take: connecting and reading may each take the timeout, then the writes."""
    return int(1000 * (3 * mailgun_timeout + 2))


class Deliverer:
    """Posts this worker's share of the outbox in the background."""

    def __init__(self, services, config):
        self.services = services
        self.concurrency = config["OUTBOX_CONCURRENCY"]
        self._batch = (self.concurrency + 1) // 2
        self.poll = config["OUTBOX_POLL"]
        self.policy = Policy(base=config["OUTBOX_BACKOFF"], cap=config["OUTBOX_MAX_BACKOFF"],
                             deadline=config["DELIVERY_DEADLINE"])
        self.lease_ms = lease_ms(config["MAILGUN_TIMEOUT"])
        self._attempt_ms = int(1000 * (2 * config["MAILGUN_TIMEOUT"] + 1))  # the longest one post may take
        self._leased_for: tuple[object, int] = (None, self.lease_ms)  # (snapshot, the hold its chains need)
        self.cipher = PayloadCipher(services.records_key)
        self.metrics = OutboxMetrics(services.metrics, services.queue)
        self._random = random.Random()
        self.callbacks = CallbackPoster(services, config, self.policy, self.metrics.callbacks)  # section 15
        self.metrics.watch_callbacks(services.metrics, self.callbacks.queue)
        self._reset()
        forks.reset_in_children(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._claiming: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: set[Future] = set()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._pending: list[_Pending] = []  # outcomes waiting for the next group commit
        self._settling = threading.Lock()  # one group commit at a time in this process

    def after_fork(self) -> None:
        """A forked worker starts its own threads (the master never runs any)."""
        self._reset()
        self.callbacks.reset()

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._claiming is not None:
            return
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fidesmail-outbox-post")
        self._claiming = threading.Thread(target=self._run, name="fidesmail-outbox", daemon=True)
        self._claiming.start()

    def stop(self, wait: float = 0.0) -> bool:
        """Claim nothing more; wait up to `wait` seconds for posts in flight. True when none is left."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            in_flight = set(self._in_flight)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self.callbacks.stop()
        return not futures.wait(in_flight, timeout=wait).not_done

    def wake(self) -> None:
        """A message was just queued here: look now rather than at the next poll."""
        self._wake.set()

    # -- the claiming loop ----------------------------------------------------------------------

    def _run(self) -> None:
        next_sweep, next_full, said = 0.0, time.monotonic() + FULL_SWEEP_SECONDS, None
        while not self._stop.is_set():
            more, wait = False, self.poll * self._random.uniform(0.5, 1.5)
            try:
                self.services.maintenance.ready()  # records that cannot be kept: nothing is claimed
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(full=now >= next_full)
                    next_sweep = now + SWEEP_SECONDS
                    next_full = now + FULL_SWEEP_SECONDS if now >= next_full else next_full
                # Only as many as there are idle posters: a claimed message not yet posted is `unknown`
                # if this process dies, so none waits here. Claimed once half the posters are idle, in
                # one transaction for all of them. A read first: an idle poll, or a wake for a message
                # parked behind its gate, takes no write lock (SQLite has one writer for all processes).
                with self._lock:
                    busy = len(self._in_flight)
                free = self.concurrency - busy
                free = free if free >= self._batch or not busy else 0
                due = self.services.queue.next_due() if free > 0 else None
                if due is not None and due > records.now_ms():  # a retry comes due before the next poll
                    wait = min(wait, (due - records.now_ms()) / 1000)
                elif due is not None:
                    snapshot = self.services.store.snapshot()
                    rates = snapshot.rate_limits  # paced configs: one slot at a time
                    claimed = self.services.queue.claim(free, self._lease_for(snapshot), rates)
                    for one in claimed:
                        self._post(one)
                    more = len(claimed) == free
                    if claimed and not more:  # a paced config's next slot may come before the next poll
                        wait = self._until_due(wait)
                elif busy:
                    more = True  # a finished post wakes the loop
                callback_due = self.callbacks.pump(self._wake)
                if callback_due is not None:
                    wait = min(wait, callback_due)
                said = None
            except Unavailable as exc:
                if exc.detail != said:  # once per new problem, not once a second
                    log.warning("the outbox waits: %s", exc.detail)
                    said = exc.detail
            except Exception:  # the thread must outlive any one failure
                log.exception("the outbox's claiming loop failed; trying again")
            # With every slot taken, a finished post wakes the loop; otherwise the next poll, or the next
            # retry come due, or a message queued by this process.
            self._wake.wait(self.poll if more else wait)
            self._wake.clear()

    def _lease_for(self, snapshot) -> int:
        """A hold long enough for one post to each config of the longest fallback chain (contract section 14), so
        that a message can go on to its fallbacks in the same claim (computed once per snapshot)."""
        if self._leased_for[0] is not snapshot:
            configs = snapshot.configs
            longest = max((len(fallbacks.chain_of(configs, key)) for key in snapshot.with_fallback),
                          default=1)
            self._leased_for = (snapshot, self.lease_ms + (longest - 1) * self._attempt_ms)
        return self._leased_for[1]

    def _until_due(self, wait: float) -> float:
        """`wait`, or less when the next message comes due sooner."""
        due = self.services.queue.next_due()
        return wait if due is None else min(wait, max(0.0, (due - records.now_ms()) / 1000))

    def _sweep(self, full: bool) -> None:
        falls_back = self.services.store.snapshot().with_fallback
        done = self.services.queue.sweep(int(self.policy.deadline * 1000), full=full, falls_back=falls_back)
        if self.callbacks.expire_leases():
            log.warning("callbacks held by a process that stopped are due again (posted at least once)")
        if done["expired"]:
            log.warning("%d queued message(s) were being posted by a process that stopped: now unknown (never "
                        "posted again on their own; see their records)", done["expired"])
        if done["unparked"]:
            log.warning("queued messages of %d config(s) were parked behind a gate no longer closed: due now",
                        done["unparked"])
        if done["gave_up"]:
            log.warning("%d queued message(s) reached FIDESMAIL_DELIVERY_DEADLINE (%g s) unsent: now failed",
                        done["gave_up"], self.policy.deadline)
        for what in ("expired", "gave_up"):
            if done[what]:
                self.metrics.swept.labels(what).inc(done[what])

    # -- posting --------------------------------------------------------------------------------

    def _post(self, claimed: Claimed) -> None:
        """Hand a claimed message to an idle poster of the pool (or, stopping, back to the queue unposted)."""
        try:
            future = self._pool.submit(self._deliver, claimed)
        except RuntimeError:  # stop() shut the pool down meanwhile: nothing was posted
            self._settle(claimed, Settlement(outcomes.QUEUED, next_at=records.now_ms()))
            return
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(lambda done: self._posted(claimed, done))

    def _posted(self, claimed: Claimed, future: Future) -> None:
        """A poster is free again: wake the claiming loop and whoever waits for this message."""
        if future.exception() is not None:  # its lease ends it as `unknown`
            log.error("posting queued message %s failed", claimed.message_id, exc_info=future.exception())
        with self._lock:
            self._in_flight.discard(future)
            waiters = list(self._waiters.get(claimed.message_id, ()))
        for event in waiters:
            event.set()
        self._wake.set()

    def _deliver(self, claimed: Claimed) -> None:
        if claimed.lease_until - records.now_ms() < self._attempt_ms:
            # Waited here too long (a slow provider ahead of it): its lease could run out mid-post. Nothing
            # was posted, so it goes back to the queue as it was, for any worker.
            self._settle(claimed, Settlement(outcomes.QUEUED, next_at=records.now_ms()))
            return
        try:
            payload = self.cipher.open(claimed.message_id, claimed.payload)
        except PayloadError as exc:
            log.error("%s: failed", exc)
            payload, settlement = None, self.policy.broken(str(exc))
        else:
            settlement = self._attempt(claimed, payload)
        if settlement is None:  # late for its rate-limit slot: back to the queue, not posted, for the next slot
            self._settle(claimed, Settlement(outcomes.QUEUED, next_at=records.now_ms()))
            return
        status = self._settle(claimed, settlement)
        self._observe(claimed, payload, settlement, status)

    def _attempt(self, claimed: Claimed, payload: Payload) -> Settlement | None:
        """Open the keys of the config and its fallbacks as they are now and walk the chain (one post per config at
        most); or say why it cannot be posted now (None: its rate-limit slot passed while this process was busy,
        and posting now could bunch it with the next)."""
        found = self.services
        snapshot = found.store.snapshot()
        entry = snapshot.configs.get(claimed.config_key)
        if entry is None:
            return self.policy.hold(claimed, f"No email config found with key {claimed.config_key} (removed after "
                                             "the message was queued; it is sent if the config is back before the "
                                             "delivery deadline)", records.now_ms())
        email = Email(payload.to, payload.message, claimed.message_id, payload.test_mode)
        legs = found.sender.legs_for(snapshot, entry, email)  # the secrets as they are now (Vault.open caches)
        if failover.last_usable(legs) < 0:  # a key missing or not opening: a person may fix it in time
            return self.policy.hold(claimed, legs[0].not_sent().detail, records.now_ms(),
                                    parks=not entry.document.get("fallback"))
        rate = entry.document.get("rate_limit")
        if claimed.slot_us is not None and rate and not pacing.on_time(found.database, entry.key, claimed.slot_us,
                                                                         rate):
            return None
        tries = ChainTries(found.queue, found.metrics, claimed, legs, self._attempt_ms, found.sender.pacer)
        failover.walk(legs, tries.attempt, found.metrics)  # its own config, then its fallbacks (section 14)
        return self.policy.after(claimed, tries.tried, records.now_ms())

    def _settle(self, claimed: Claimed, settlement: Settlement) -> str | None:
        """Record the outcome, with whatever other posters of this process finished meanwhile (one
        transaction for all: a group commit). The record's status, or None if it could not be written."""
        mine = _Pending(claimed, settlement)
        with self._lock:
            self._pending.append(mine)
        with self._settling:
            if not mine.done:
                with self._lock:
                    batch, self._pending = self._pending, []
                self._write(batch)
        return mine.status

    def _write(self, batch: list[_Pending]) -> None:
        """Trying again while the database is briefly unavailable; if it stays so, each lease ends its
        message as `unknown` (it may have been posted), never as `queued`."""
        settle = tenacity.Retrying(retry=tenacity.retry_if_exception_type(Unavailable), reraise=True,
                                   stop=tenacity.stop_after_attempt(_SETTLE_TRIES),
                                   wait=tenacity.wait_exponential(multiplier=0.1))
        try:
            statuses = settle(self.services.queue.settle_many, [(p.claimed, p.settlement) for p in batch])
        except Unavailable as exc:
            log.error("the outcome of %d queued message(s) could not be recorded: %s (%s)", len(batch),
                      exc.detail, ", ".join(p.claimed.message_id for p in batch))
            statuses = [None] * len(batch)
        for pending, status in zip(batch, statuses, strict=True):
            pending.status, pending.done = status, True

    def _observe(self, claimed: Claimed, payload: Payload | None, settlement: Settlement, status: str | None) -> None:
        metrics = self.services.metrics
        for attempt in settlement.attempts or ({"outcome": "not_sent"},):
            self.metrics.attempts.labels(attempt["outcome"]).inc()
        facts = {"config_key": claimed.config_key, "message_id": claimed.message_id, "queued": True,
                 "action_type": payload.tag if payload else None,
                 "to": mask(payload.to) if payload else None, "attempts": claimed.attempts + settlement.posted}
        if settlement.status == outcomes.QUEUED:
            log.warning("queued message not sent yet: %s", settlement.failure_reason,
                        extra={**facts, "outcome": "retry"})
            return
        outcome = _FINAL_OUTCOMES.get(settlement.status, settlement.status)
        if settlement.status == outcomes.FAILED and settlement.failure_reason.startswith("gave up"):
            outcome = "gave_up"
        metrics.count_send(facts["action_type"] or "unknown", outcome, settlement.provider)
        if settlement.status == outcomes.ACCEPTED:
            log.info("sent", extra={**facts, "outcome": outcome, "provider": settlement.provider,
                                    "provider_message_id": settlement.provider_message_id, "status": status})
        else:
            log.warning("queued message %s: %s", settlement.status, settlement.failure_reason,
                        extra={**facts, "outcome": outcome, "status": status})

    # -- waiting for an outcome ----------------------------------------------------------------

    def wait_for(self, message_id: str, seconds: float):
        """The record once it left the queue, or as it is after `seconds`."""
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(message_id, set()).add(event)
        deadline = time.monotonic() + seconds
        try:
            while True:
                row = self.services.records.get(message_id)
                left = deadline - time.monotonic()
                if row is None or row.status not in (outcomes.QUEUED, outcomes.SENDING) or left <= 0:
                    return row
                event.wait(min(left, _WAIT_POLL))
                event.clear()
        finally:
            with self._lock:
                waiting = self._waiters.get(message_id)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._waiters[message_id]

