"""Sending while a caller waits: one pooled session, and retries only where the contract allows them."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

from fidesmail.core import forks
from fidesmail.providers.mailgun import attempt, failures
from fidesmail.providers.mailgun.request import MailgunRequest

log = logging.getLogger("fidesmail.mailer")


@dataclass(frozen=True)
class SendResult:
    """Mailgun accepted the message."""

    id: str
    message: str
    attempts: int


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential with jitter, so many senders failing together do not retry in lockstep."""
    return min(cap, base * 2 ** (attempts - 1)) * rng.uniform(0.5, 1.0)


class Mailer:
    """Sends MailgunRequests over one pooled session: retries 420/429/5xx and connections never made, only."""

    def __init__(
        self,
        timeout: float = 10,
        retries: int = 3,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_total_wait: float = 30,
        backoff: float = 0.5,
        max_backoff: float = 8,
        pool_size: int = 32,
    ):
        self.timeout = timeout
        self.retries = retries
        self.max_total_wait = max_total_wait
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._random = random.Random()
        self._pool_size = pool_size
        self._own_session = session is None
        self.session = session if session is not None else self._new_session()
        self._environment: dict[str, dict] = {}
        forks.reset_in_children(self)

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # max_retries=0: urllib3 must not retry on its own; send() applies the contract's policy.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def after_fork(self) -> None:
        """A forked worker must not share its parent's pooled connections."""
        if self._own_session:
            self.session = self._new_session()
            self._environment = {}

    def environment_settings(self, url: str) -> dict:
        """HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE... as requests would apply them to `url`.

        requests reads them from the environment on every call (~80 us a send); they are read once
        per Mailgun origin instead, then handed in explicitly."""
        if not self._own_session:
            return {}
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        settings = self._environment.get(key)
        if settings is None:
            settings = requests.Session().merge_environment_settings(url, {}, None, None, None)
            self._environment[key] = settings
            self.session.trust_env = False  # the settings are passed in explicitly from now on
        return settings

    def post_once(self, request: MailgunRequest) -> attempt.Outcome:
        """One attempt, no retry (the outbox schedules its own)."""
        return attempt.post_once(self.session, request, self.timeout, **self.environment_settings(request.url))

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, request: MailgunRequest, on_attempt: Callable[[attempt.Outcome], None] | None = None) -> SendResult:
        """Send with retries; return Mailgun's id or raise a MailgunError subclass.

        `on_attempt` hears of every attempt's outcome (the message record keeps each one)."""
        host = failures.host_of(request.url)
        gave_up: list[str] = []
        attempts = 0

        def one_attempt() -> attempt.Outcome:
            nonlocal attempts
            attempts += 1
            outcome = self.post_once(request)
            if on_attempt is not None:
                on_attempt(outcome)
            return outcome

        def wait(state: tenacity.RetryCallState) -> float:
            outcome = state.outcome.result()
            if outcome.delay is not None:
                return outcome.delay
            return backoff_delay(state.attempt_number, self.backoff, self.max_backoff, self._random)

        def past_budget(state: tenacity.RetryCallState) -> bool:
            # Never start a wait that would keep the caller past the budget (a 420 "try again in an hour").
            if state.seconds_since_start + (state.upcoming_sleep or 0) > self.max_total_wait:
                gave_up.append(f" (gave up: waiting {state.upcoming_sleep:g} s more would pass the "
                               f"{self.max_total_wait:g} s limit)")
                return True
            return False

        def log_retry(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome.result()
            log.warning("Mailgun %s: %s %s; retry %d of %d in %.2f s", host,
                        outcome.http_status or "connection failed:", outcome.reason, state.attempt_number,
                        self.retries, state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda outcome: isinstance(outcome, attempt.Retry)),
            stop=tenacity.stop_after_attempt(self.retries + 1) | past_budget,
            wait=wait,
            sleep=self._sleep,
            before_sleep=log_retry,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        outcome = retrying(one_attempt)
        return _result(outcome, attempts, "".join(gave_up))


def _result(outcome: attempt.Outcome, attempts: int, note: str) -> SendResult:
    """The final outcome as a SendResult, or the MailgunError that says what it was."""
    if isinstance(outcome, attempt.Accepted):
        return SendResult(outcome.mailgun_id, outcome.message, attempts)
    if isinstance(outcome, attempt.Unknown):
        if outcome.http_status is not None:
            raise failures.MailgunBadAnswer(outcome.reason, attempts=attempts)
        raise failures.MailgunTimeout(outcome.reason, attempts=attempts)
    if isinstance(outcome, attempt.Retry) and outcome.http_status is None:
        raise failures.MailgunUnreachable(outcome.reason + note, attempts=attempts)
    raise failures.MailgunRefused(outcome.http_status, outcome.reason + note, attempts=attempts)
