"""One rendered email, as every layer passes it on: built by content/, posted by providers/, digested by records/."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One rendered email."""

    subject: str
    html: str
    text: str
    tag: str
