"""The outbox's scheduling policy (outbox/schedule.py), table-driven: each kind of outcome x attempts so
far x before or after the delivery deadline gives one status, next time, gate action and failure reason.

Pure: no database, no clock but the attempt's own stamp. The backoff's jitter is taken out (the upper
bound of each draw) so that every time below is exact; the last test shows the jitter's range.
Times are seconds after the message was created; the policy is FIDESMAIL_OUTBOX_BACKOFF=30 s doubling
to a 1 h cap, FIDESMAIL_DELIVERY_DEADLINE=24 h.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from fidesmail.core.outcomes import Accepted, Refused, Retry, Unknown
from fidesmail.outbox.gates import FAIL, OPEN
from fidesmail.outbox.queue import Claimed
from fidesmail.outbox.schedule import Policy, Tried
from fidesmail.providers.mailgun.provider import Mailgun

CREATED = 1_800_000_000_000  # ms: 2027-01-15T08:00:00.000Z
DEADLINE = 86_400  # s
PROVIDER = Mailgun  # the provider that answered: the policy reads only its static facts (label, service type)


class NoJitter(random.Random):
    """Every backoff at the top of its jitter range, so the times are exact."""

    def uniform(self, a, b):
        return b


def policy(rng=None) -> Policy:
    return Policy(base=30.0, cap=3600.0, deadline=DEADLINE, rng=rng or NoJitter())


def claimed(attempts: int = 0, gate_failures: int = 0) -> Claimed:
    return Claimed("msg_1", "my_mailgun", CREATED, attempts, b"sealed", CREATED + 60_000, [], gate_failures)


def at(seconds: float) -> int:
    """The time `seconds` after the message was created, in ms."""
    return CREATED + int(seconds * 1000)


@dataclass(frozen=True)
class Expected:
    status: str
    next_at: float | None = None  # s after creation
    gate: str | None = None  # what the outcome does to the config's gate
    gate_until: float | None = None  # s after creation
    gate_force: bool = False  # closed now, whatever the count of failures
    reason: str | None = None


UNAVAILABLE = Retry("Service Unavailable", 503)
NO_CONNECTION = Retry("connection refused", None)
THROTTLED = Retry("Too Many Requests", 429, rate_limited=True)
NAMED_2_MIN = Retry("Too Many Requests", 429, delay=120, rate_limited=True)
NAMED_1_H = Retry("Too Many Requests", 429, delay=3600, rate_limited=True)
BUSY_90_S = Retry("busy", 503, delay=90)  # a moment named without a rate limit: the same rule
BAD_ADDRESS = Refused("'to' parameter is not a valid address", 400)
KEY_REFUSED = Refused("Forbidden", 401, key_refused=True)
NO_ANSWER = Unknown("no answer within 1 s: it may still be sent")
TAKEN = Accepted("<1.ABC@mg.example.com>", "Queued. Thank you.")

GAVE_UP_503 = "gave up after 3 attempts over 24 h: Mailgun answered 503: Service Unavailable"

# outcome, attempts so far, the gate's failures in a row when claimed, seconds since creation -> Expected
AFTER = [
    pytest.param(TAKEN, 0, 0, 0, Expected("accepted", gate=OPEN), id="accepted"),
    pytest.param(TAKEN, 4, 3, 90_000, Expected("accepted", gate=OPEN), id="accepted after the deadline"),
    pytest.param(UNAVAILABLE, 0, 0, 0, Expected(
        "queued", 30, FAIL, 30, False, "Mailgun answered 503: Service Unavailable (next try at "
        "2027-01-15T08:00:30.000Z)"), id="5xx, first retry after the base backoff"),
    pytest.param(UNAVAILABLE, 3, 3, 600, Expected(
        "queued", 840, FAIL, 660, False, "Mailgun answered 503: Service Unavailable (next try at "
        "2027-01-15T08:14:00.000Z)"), id="5xx, fourth attempt: backoff doubled three times, the gate's once"),
    pytest.param(UNAVAILABLE, 10, 0, 600, Expected(
        "queued", 4200, FAIL, 630, False, "Mailgun answered 503: Service Unavailable (next try at "
        "2027-01-15T09:10:00.000Z)"), id="5xx, backoff at its cap"),
    pytest.param(UNAVAILABLE, 2, 0, DEADLINE - 60, Expected(
        "queued", DEADLINE, FAIL, DEADLINE - 30, False, "Mailgun answered 503: Service Unavailable (next try at "
        "2027-01-16T08:00:00.000Z)"), id="5xx, the last try is at the deadline"),
    pytest.param(UNAVAILABLE, 2, 0, DEADLINE, Expected(
        "failed", None, FAIL, DEADLINE + 30, False, GAVE_UP_503), id="5xx at the deadline: gave up"),
    pytest.param(UNAVAILABLE, 2, 0, 90_000, Expected(
        "failed", None, FAIL, 90_030, False, "gave up after 3 attempts over 25 h: Mailgun answered 503: "
        "Service Unavailable"), id="5xx after the deadline: gave up"),
    pytest.param(NO_CONNECTION, 0, 0, 0, Expected(
        "queued", 30, FAIL, 30, False, "connection refused (next try at 2027-01-15T08:00:30.000Z)"),
        id="no connection, first retry"),
    pytest.param(NO_CONNECTION, 1, 0, DEADLINE, Expected(
        "failed", None, FAIL, DEADLINE + 30, False, "gave up after 2 attempts over 24 h: connection refused"),
        id="no connection at the deadline: gave up"),
    pytest.param(NAMED_2_MIN, 0, 0, 0, Expected(
        "queued", 120, FAIL, 120, True, "Mailgun answered 429: Too Many Requests (next try at "
        "2027-01-15T08:02:00.000Z)"), id="429 naming a moment: then, and the gate until then"),
    pytest.param(NAMED_1_H, 0, 0, 0, Expected(
        "queued", 3600, FAIL, 3600, True, "Mailgun answered 429: Too Many Requests (next try at "
        "2027-01-15T09:00:00.000Z)"), id="429 naming a moment an hour away, however short the backoff"),
    pytest.param(BUSY_90_S, 5, 0, 0, Expected(
        "queued", 90, FAIL, 90, True, "Mailgun answered 503: busy (next try at 2027-01-15T08:01:30.000Z)"),
        id="a 5xx naming a moment: then, however long the backoff"),
    pytest.param(NAMED_2_MIN, 0, 0, DEADLINE - 60, Expected(
        "failed", None, FAIL, DEADLINE + 60, True, "gave up after 1 attempt over 23 h 59 min: Mailgun answered "
        "429: Too Many Requests (asked to wait until 2027-01-16T08:01:00.000Z, after the delivery deadline)"),
        id="429 naming a moment after the deadline: gave up, saying why"),
    pytest.param(THROTTLED, 1, 0, 0, Expected(
        "queued", 60, FAIL, 30, True, "Mailgun answered 429: Too Many Requests (next try at "
        "2027-01-15T08:01:00.000Z)"), id="429 without a moment: the backoff, and the gate closed at once"),
    pytest.param(THROTTLED, 1, 4, 0, Expected(
        "queued", 120, FAIL, 120, True, "Mailgun answered 429: Too Many Requests (next try at "
        "2027-01-15T08:02:00.000Z)"), id="429 without a moment: not before its gate opens"),
    pytest.param(BAD_ADDRESS, 0, 0, 0, Expected(
        "failed", gate=OPEN, reason="Mailgun answered 400: 'to' parameter is not a valid address"),
        id="refused: failed at once, the gate opened (the provider answers)"),
    pytest.param(BAD_ADDRESS, 3, 3, 90_000, Expected(
        "failed", gate=OPEN, reason="Mailgun answered 400: 'to' parameter is not a valid address"),
        id="refused after the deadline: the provider's reason, not 'gave up'"),
    pytest.param(KEY_REFUSED, 0, 0, 0, Expected("failed", gate=OPEN, reason="Mailgun answered 401: Forbidden"),
                 id="key refused: failed"),
    pytest.param(NO_ANSWER, 0, 0, 0, Expected(
        "unknown", None, FAIL, 30, False, "no answer within 1 s: it may still be sent"),
        id="unknown: never posted again, the gate counts it"),
    pytest.param(NO_ANSWER, 2, 3, 600, Expected(
        "unknown", None, FAIL, 660, False, "no answer within 1 s: it may still be sent"),
        id="unknown, gate already closed: its own backoff doubles"),
    pytest.param(NO_ANSWER, 2, 0, 90_000, Expected(
        "unknown", None, FAIL, 90_030, False, "no answer within 1 s: it may still be sent"),
        id="unknown after the deadline: still unknown, not failed"),
]

ATTEMPT_KIND = {TAKEN: "accepted", UNAVAILABLE: "server_error", NO_CONNECTION: "connection_failed",
                THROTTLED: "rate_limited", NAMED_2_MIN: "rate_limited", NAMED_1_H: "rate_limited",
                BUSY_90_S: "server_error", BAD_ADDRESS: "refused", KEY_REFUSED: "refused", NO_ANSWER: "unknown"}


def tried(outcome, gate_failures: int = 0) -> list[Tried]:
    """One post to the message's own config (no fallback), its gate as it was."""
    return [Tried("my_mailgun", PROVIDER, outcome, gate_failures)]


def check(settlement, expected: Expected) -> None:
    assert settlement.status == expected.status
    assert settlement.next_at == (None if expected.next_at is None else at(expected.next_at))
    assert len(settlement.gates) <= 1 and all(change.config_key == "my_mailgun" for change in settlement.gates)
    change = settlement.gates[0] if settlement.gates else None
    assert (change.action if change else None) == expected.gate
    until = change.until if change is not None and change.action == FAIL else None
    assert until == (None if expected.gate_until is None else at(expected.gate_until))
    assert (change.force if change else False) is expected.gate_force
    assert settlement.failure_reason == expected.reason
    if expected.status == "queued":  # what the record shows as the last error: the reason without its next try
        assert settlement.last_error == expected.reason.rsplit(" (next try at ", 1)[0]
        assert change.reason == settlement.last_error
    else:
        assert settlement.last_error is None


@pytest.mark.parametrize("outcome,attempts,gate_failures,now_s,expected", AFTER)
def test_after_a_post(outcome, attempts, gate_failures, now_s, expected):
    settlement = policy().after(claimed(attempts, gate_failures), tried(outcome, gate_failures), at(now_s))
    check(settlement, expected)
    assert settlement.posted == 1 and settlement.sent_via == "my_mailgun"
    assert {k: settlement.attempts[0][k] for k in ("outcome", "http_status", "detail")} == {
        "outcome": ATTEMPT_KIND[outcome], "http_status": outcome.http_status, "detail": outcome.detail}
    assert settlement.provider_message_id == (outcome.provider_id if isinstance(outcome, Accepted) else None)
    assert settlement.provider == "mailgun"


NO_CONFIG = "No email config found with key my_mailgun"

# Not posted (the config or its key cannot be used now): attempts so far, gate failures, seconds -> Expected
HOLD = [
    pytest.param(1, 0, 0, Expected(
        "queued", 30, FAIL, 30, True, f"{NO_CONFIG} (next try at 2027-01-15T08:00:30.000Z)"),
        id="held: its config waits, as in an outage"),
    pytest.param(1, 5, 600, Expected(
        "queued", 840, FAIL, 840, True, f"{NO_CONFIG} (next try at 2027-01-15T08:14:00.000Z)"),
        id="held again: the gate's backoff doubles with its failures"),
    pytest.param(0, 0, DEADLINE - 10, Expected(
        "queued", DEADLINE, FAIL, DEADLINE + 20, True, f"{NO_CONFIG} (next try at 2027-01-16T08:00:00.000Z)"),
        id="held near the deadline: the last try at the deadline"),
    pytest.param(1, 0, DEADLINE, Expected(
        "failed", None, FAIL, DEADLINE + 30, True, f"gave up after 1 attempt over 24 h: {NO_CONFIG}"),
        id="held at the deadline: gave up, counting only real posts"),
]


@pytest.mark.parametrize("attempts,gate_failures,now_s,expected", HOLD)
def test_hold(attempts, gate_failures, now_s, expected):
    settlement = policy().hold(claimed(attempts, gate_failures), NO_CONFIG, at(now_s))
    check(settlement, expected)
    assert not settlement.posted and settlement.provider_message_id is None


def test_a_payload_that_does_not_open_fails_without_a_post_or_a_gate():
    settlement = policy().broken("the payload of msg_1 does not open")
    assert (settlement.status, settlement.failure_reason) == ("failed", "the payload of msg_1 does not open")
    assert not settlement.posted and settlement.gates == () and settlement.next_at is None


def test_the_deadline_is_counted_from_creation():
    assert policy().deadline_at(CREATED) == at(DEADLINE)


def test_the_backoff_is_jittered_between_half_and_all_of_its_step():
    """Many senders failing together do not all come back at once."""
    jittered = policy(random.Random(7))
    waits = {jittered.after(claimed(2), tried(UNAVAILABLE), at(0)).next_at - at(0) for _ in range(200)}
    assert min(waits) >= 60_000 and max(waits) <= 120_000  # the third step: 120 s, jittered
    assert len(waits) > 100
