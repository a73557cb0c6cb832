"""What every provider's webhook package shares: the request as received, its refusal, its verified events.

A provider's webhook (providers/<p>/webhooks.py) verifies a post its own way and turns its events into
records.events.Event: plain data and no HTTP (the SNS certificate fetch is the one piece of I/O, in
providers/ses/sns.py). Everything after verification (events kept once, statuses forward only, counts)
is written once above (events/, records/).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fidesmail.core.addresses import mask_addresses
from fidesmail.records.events import Event
from fidesmail.records.webhook_posts import SignedPost

MAX_SKEW_SECONDS = 300  # a signed timestamp more than 5 minutes away from now is refused
MAX_REASON = 500
# Outcomes of a refused webhook (a metric label each).
BAD_SIGNATURE, STALE, NO_KEY, WRONG_TOPIC, UNTRUSTED_URL = (
    "bad_signature", "stale", "no_signing_key", "wrong_topic", "untrusted_url")
# Names, ids and keys as they reach the database: printable ASCII without control characters (PostgreSQL
# refuses a NUL outright, and records hold no control characters).
_NAME = re.compile(r"[A-Za-z0-9_.: -]{1,64}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")
RECORD_ID = re.compile(r"[A-Za-z0-9_]{1,32}")


@dataclass(frozen=True)
class Inbound:
    """One webhook request as received: the raw body, its headers and the URL it was posted to (as signed)."""

    body: bytes
    headers: Mapping[str, str]  # case-insensitive (werkzeug's Headers)
    url: str


class WebhookRefused(Exception):
    """The post cannot be shown to come from the provider (401, nothing recorded); `outcome` is its label."""

    def __init__(self, outcome: str, detail: str):
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


class NotAnEvent(ValueError):
    """A verified post whose body is not the provider's events (422, nothing recorded): what is wrong."""


@dataclass(frozen=True)
class Verified:
    """A verified post: what re-verifies it, its events, and how many items in it were not delivery events."""

    post: SignedPost
    events: list[Event]
    ignored: int = 0  # e.g. Mandrill's sync events, an SNS message that carries no SES event
    subscribe_url: str | None = None  # an SNS SubscriptionConfirmation: the URL that confirms it
    labels: list[str] = field(default_factory=list)  # each event's metric label, in order


def name(value, what: str) -> str:
    """An event's name as the provider gave it; NotAnEvent when it is not a plain name."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise NotAnEvent(f"{what}: not an event name")
    return value


def token(value, what: str) -> str:
    """An event's id or a message id: printable ASCII, at most 255 characters; NotAnEvent otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise NotAnEvent(f"{what}: missing, or not an id")
    return value


def optional_token(value) -> str | None:
    """A message id when it is one, else None (nothing matches it)."""
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def record_id(value) -> str | None:
    """The record's id the send carried, when it is one."""
    return value if isinstance(value, str) and RECORD_ID.fullmatch(value) else None


def seconds_ms(value) -> int | None:
    """A Unix time in seconds (int or float) as milliseconds; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not (math.isfinite(value) and 0 <= value < 1e11):
        return None
    return int(value * 1000)


def reason_text(*candidates) -> str | None:
    """The first non-empty of the provider's words, printable, addresses masked, cut to length (records keep no
    address: one in an MTA's words, "550 5.1.1 <a@b.c>: no such user", is masked)."""
    words = next((w.strip() for w in candidates if isinstance(w, str) and w.strip()), None)
    if words is None:
        return None
    words = "".join(char if char.isprintable() else " " for char in words)
    words = " ".join(mask_addresses(words).split())
    return words[:MAX_REASON] + "..." if len(words) > MAX_REASON else words


def label(event_name: str, known: frozenset[str]) -> str:
    """An event's name as a metric label: the provider's known names, anything else "other" (bounded series)."""
    return event_name if event_name in known else "other"
