"""The `Prefer` request header (RFC 7240): whether the caller asked for `respond-async`, and its `wait`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from werkzeug.http import parse_list_header, parse_options_header, unquote_header_value

RESPOND_ASYNC = "respond-async"
MAX_WAIT = 30.0  # contract section 11: N at most 30 (a larger N is taken as 30)


@dataclass(frozen=True)
class Preferences:
    """What the caller prefers; `wait` in seconds (0 when not given)."""

    respond_async: bool = False
    wait: float = 0.0


def parse(headers: Iterable[str]) -> Preferences:
    """Every `Prefer` header of a request, as RFC 7240 reads them: tokens case-insensitive, the first
    instance of a preference wins, parameters after `;` and preferences this service does not know
    are ignored, and so is a `wait` that is not a number of seconds."""
    seen: dict[str, str | None] = {}
    for header in headers:
        for item in parse_list_header(header):
            head, _params = parse_options_header(item)
            name, equals, value = head.partition("=")
            name = name.strip().lower()
            if name and name not in seen:
                seen[name] = unquote_header_value(value.strip()) if equals else None
    return Preferences(respond_async=RESPOND_ASYNC in seen, wait=_seconds(seen.get("wait")))


def _seconds(value: str | None) -> float:
    if value is None or not value.isdigit():  # delta-seconds: digits only
        return 0.0
    return min(float(int(value[:6])), MAX_WAIT)
