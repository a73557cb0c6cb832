"""Posting a provider's webhooks from a stand-in: one background thread, posts in order, retried as providers do.

A stand-in builds each webhook request (URL, raw body, headers with the provider's signature) and
`submit`s it; the poster sends them one after another (so a message's events arrive in order),
posts again while the receiver does not answer 2xx (`retries`, `retry_delay`), and records every
post as a `WebhookPost`. `wait_for_webhooks(n)` waits until n posts were made and nothing is
pending. Only the standard library is used.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from .server import Standin


class WebhookStandin(Standin):
    """A stand-in that posts its provider's webhooks: per-recipient scripted outcomes and an `EventPoster`."""

    OUTCOMES: Mapping[str, object] = {}  # the provider's outcomes, by name
    DEFAULT_OUTCOME = ""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self._lock = threading.Lock()
        self._scripts: dict[str, str] = {}
        self.events = EventPoster(self.server_name, self._changed)

    def close(self) -> None:
        self.events.close()
        super().close()

    def script_events(self, recipient: str, outcome: str) -> None:
        """What follows messages to `recipient` once accepted: a key of the provider module's OUTCOMES."""
        if outcome not in self.OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r} (known: {', '.join(self.OUTCOMES)})")
        with self._lock:
            self._scripts[recipient.strip().lower()] = outcome

    def outcome_for(self, recipient: str):
        """The scripted outcome for a recipient (the provider's default when none)."""
        with self._lock:
            return self.OUTCOMES[self._scripts.get(recipient.strip().lower(), self.DEFAULT_OUTCOME)]

    @property
    def webhook_posts(self) -> list[WebhookPost]:
        """Every webhook post so far (each retry its own), in order."""
        return self.events.posts

    def wait_for_webhooks(self, count: int, timeout: float = 10.0) -> list[WebhookPost]:
        """Wait until `count` posts were made and none is pending; all posts."""
        return self.events.wait_for_webhooks(count, timeout)


@dataclass(frozen=True)
class WebhookPost:
    """One webhook request the stand-in posted, and the receiver's answer (status None: no answer)."""

    url: str
    events: tuple[str, ...]  # the event names in the body, in order
    message_ids: tuple[str, ...]  # the provider's message ids the events are about
    body: bytes
    headers: Mapping[str, str]
    status: int | None
    answer: str = ""
    attempt: int = 1


@dataclass
class _Job:
    url: str
    body: bytes
    headers: dict[str, str]
    events: tuple[str, ...]
    message_ids: tuple[str, ...] = field(default=())


class EventPoster:
    """A background thread that posts submitted webhook requests in order and records each post."""

    def __init__(self, name: str, changed: threading.Condition, *, retries: int = 2, retry_delay: float = 0.2):
        self.retries = retries  # further posts while the receiver does not answer 2xx
        self.retry_delay = retry_delay
        self._changed = changed  # the stand-in's condition, notified after every post
        self._jobs: deque[_Job] = deque()
        self._posts: list[WebhookPost] = []
        self._closing = threading.Event()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"{name}-webhooks", daemon=True)
        self._thread.start()

    def submit(self, url: str, body: bytes, headers: Mapping[str, str], events: tuple[str, ...],
               message_ids: tuple[str, ...] = ()) -> None:
        """Queue one webhook request."""
        with self._ready:
            self._jobs.append(_Job(url, body, dict(headers), tuple(events), tuple(message_ids)))
            self._ready.notify()

    @property
    def posts(self) -> list[WebhookPost]:
        with self._ready:
            return list(self._posts)

    @property
    def idle(self) -> bool:
        with self._ready:
            return not self._jobs

    def wait_for_webhooks(self, count: int, timeout: float = 10.0) -> list[WebhookPost]:
        """Wait until at least `count` posts were made and none is pending (or `timeout` passed); all posts."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (len(self.posts) >= count and self.idle):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.1))
        return self.posts

    def close(self) -> None:
        self._closing.set()
        with self._ready:
            self._ready.notify_all()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._closing.is_set():
            with self._ready:
                while not self._jobs and not self._closing.is_set():
                    self._ready.wait(0.1)
                if self._closing.is_set():
                    return
                job = self._jobs[0]
            try:
                self._deliver(job)
            finally:
                with self._ready:
                    self._jobs.popleft()
                with self._changed:
                    self._changed.notify_all()

    def _deliver(self, job: _Job) -> None:
        for attempt in range(1, self.retries + 2):
            request = urllib.request.Request(job.url, data=job.body, method="POST", headers=job.headers)
            status, answer = None, ""
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, answer = response.status, response.read(2000).decode("utf-8", "replace")
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, exc.read(2000).decode("utf-8", "replace")
            except (OSError, ValueError) as exc:
                answer = f"{type(exc).__name__}: {exc}"
            post = WebhookPost(job.url, job.events, job.message_ids, job.body, job.headers, status, answer, attempt)
            with self._ready:
                self._posts.append(post)
            with self._changed:
                self._changed.notify_all()
            if status is not None and 200 <= status < 300:
                return
            if attempt <= self.retries and self._closing.wait(self.retry_delay):
                return
