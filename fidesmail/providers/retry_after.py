"""When a provider asks to be tried again: a Retry-After header (seconds or an HTTP date), or its words.

Mailgun names the moment in its message too ("try again after 2026-12-01 10:00:00 UTC", or after N
seconds); a date is read before a number, so that the year is not taken for seconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A date first: "try again after 2026-12-01 10:00:00 UTC" must not read as 2026 seconds.
_TRY_AGAIN = re.compile(r"try again after\s+(?P<when>[^.;()]{6,40}?\d{2}:\d{2}(?::\d{2})?"
                        r"(?:\s*(?:GMT|UTC|[+-]\d{2}:?\d{2}|Z))?|\d+(?:\.\d+)?\s*(?:seconds?|s)?\b)", re.IGNORECASE)
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def retry_after(header: str, text: str, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or HTTP date), else from "try again after <seconds or date>"."""
    header = header.strip()
    if _SECONDS.match(header):
        return float(header)
    when = _moment(header, now) if header else None
    if when is not None:
        return when
    found = _TRY_AGAIN.search(text)
    if found is None:
        return None
    phrase = found.group("when").strip()
    number = re.match(r"\d+(?:\.\d+)?", phrase)
    if number and not re.search(r"\d{2}:\d{2}", phrase):
        return float(number.group(0))
    return _moment(phrase, now)


def _moment(text: str, now: datetime | None) -> float | None:
    """Seconds until a date written as an HTTP date or ISO 8601; None when it is neither."""
    when = None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text.replace(" UTC", "+00:00").replace("Z", "+00:00"))
        except ValueError:
            return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
