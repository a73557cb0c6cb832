"""What came of a message, in one vocabulary from the provider to the record, the metrics and the answer.

One post to a provider ends in one of four outcomes, and only the provider's own package decides which
(providers/*): Accepted; Retry (it did not take the message and may be asked again); Refused (asking
again would be refused again); Unknown (the request went out and no clean answer came: the provider may
have it, so it is never posted again on its own). A fifth, NotSent, is fidesmail's own: nothing was posted
(the config's key is missing or will not open, its queue is parked behind its gate). `never_sent` is the
failover rule (contract section 14), written once: only then may the message go to the next config.

A send, after whatever retries its path allows, ends in one result (SENT, REFUSED, ...): the result is
the metrics label, `RECORD_STATUS` gives the record's status, and only web/ turns a result into an HTTP
status. The record's statuses are here too, with their order: a later report never moves a message back.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- one post -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The provider took the message."""

    provider_id: str | None  # its id for the message (None: accepted without one, as a sandboxed SendGrid send)
    detail: str  # its words ("Queued. Thank you.")
    http_status: int | None = 200


@dataclass(frozen=True)
class Retry:
    """Not taken, and may be asked again: after `delay` seconds when the provider named the moment."""

    detail: str
    http_status: int | None  # None: no connection was made
    delay: float | None = None
    rate_limited: bool = False  # a 429/420 or a throttling error: the moment holds for the whole account


@dataclass(frozen=True)
class Refused:
    """Refused for good: the same request would be refused again."""

    detail: str
    http_status: int | None
    key_refused: bool = False  # the provider refused the credentials (401/403), not the message


@dataclass(frozen=True)
class Unknown:
    """The request went out and no clean answer came: the provider may have the message."""

    detail: str
    http_status: int | None = None  # set when it answered, but not as a success can be read


@dataclass(frozen=True)
class NotSent:
    """Nothing was posted: the config cannot be used now (`why`: KEY, PARKED or LATER)."""

    detail: str
    why: str = "key"
    http_status: None = None


KEY, PARKED, LATER = "key", "parked", "later"  # a key missing or not opening; a gate closed; no time left


Outcome = Accepted | Retry | Refused | Unknown | NotSent


def never_sent(outcome: Outcome) -> bool:
    """True when the answer proves the provider did not take the message: the only case another may be tried
    (a connection that failed before sending, a 5xx, a 429 or throttling, the key refused; or nothing posted)."""
    return isinstance(outcome, (Retry, NotSent)) or (isinstance(outcome, Refused) and outcome.key_refused)


def attempt_kind(outcome: Outcome) -> str:
    """An attempt as the record names it: accepted, rate_limited, server_error, connection_failed, refused, unknown,
    not_sent."""
    if isinstance(outcome, Accepted):
        return "accepted"
    if isinstance(outcome, NotSent):
        return "not_sent"
    if isinstance(outcome, Retry):
        if outcome.rate_limited:
            return "rate_limited"
        return "server_error" if outcome.http_status else "connection_failed"
    return "refused" if isinstance(outcome, Refused) else "unknown"


def describe(outcome: Outcome, provider_label: str) -> str:
    """The outcome as a failure reason: the provider's status and words, or what happened to the connection."""
    if isinstance(outcome, (Retry, Refused)) and outcome.http_status:
        return f"{provider_label} answered {outcome.http_status}: {outcome.detail}"
    return outcome.detail


# -- a send's result ----------------------------------------------------------------------------

SENT, REFUSED, UNREACHABLE, TIMEOUT, BAD_ANSWER, GAVE_UP = (
    "sent", "refused", "unreachable", "timeout", "bad_answer", "gave_up")
QUEUED_FOR_LATER = "queued"  # Prefer: respond-async: stored, to be sent in the background
INTERRUPTED = "interrupted"  # an earlier request with the same Idempotency-Key stopped before its outcome


def result_of(outcome: Outcome) -> str:
    """The result of a send whose last attempt ended in `outcome`."""
    if isinstance(outcome, Accepted):
        return SENT
    if isinstance(outcome, Unknown):
        return BAD_ANSWER if outcome.http_status is not None else TIMEOUT
    if isinstance(outcome, (Retry, NotSent)) and outcome.http_status is None:
        return UNREACHABLE
    return REFUSED


# -- the record's status ------------------------------------------------------------------------

QUEUED, SENDING, ACCEPTED, DELIVERED, FAILED, UNKNOWN, CANCELLED = (
    "queued", "sending", "accepted", "delivered", "failed", "unknown", "cancelled")
STATUSES = (QUEUED, SENDING, ACCEPTED, DELIVERED, FAILED, UNKNOWN, CANCELLED)
# How far along a message is: a later report never moves it back (an `accepted` settles an `unknown`).
RANK = {QUEUED: 0, SENDING: 1, UNKNOWN: 2, ACCEPTED: 3, DELIVERED: 4, FAILED: 4, CANCELLED: 4}
RECORD_STATUS = {SENT: ACCEPTED, REFUSED: FAILED, UNREACHABLE: FAILED, GAVE_UP: FAILED, TIMEOUT: UNKNOWN,
                 BAD_ANSWER: UNKNOWN, QUEUED_FOR_LATER: QUEUED}
