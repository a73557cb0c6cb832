"""A webhook receiver on 127.0.0.1 for tests of the stand-ins (or of anything that posts): it records every request.

    with Inbox() as inbox:
        fake.add_webhook(inbox.base_url + "/hooks/sendgrid")
        ...
        post = inbox.wait_for_posts(2)[0]   # Received(method, path, query, headers, body)

It answers `status` (default 200) to everything; the faults of `faults.py` apply, so a receiver's
outage is `inbox.down()`. Only the standard library is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .server import Request, Standin


@dataclass(frozen=True)
class Received:
    """One request the inbox received."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


class Inbox(Standin):
    """Records every request and answers `status`."""

    server_name = "inbox"

    def __init__(self, *, status: int = 200, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self.status = status
        self._received: list[Received] = []

    @property
    def received(self) -> list[Received]:
        with self._changed:
            return list(self._received)

    def wait_for_posts(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Wait until `count` requests arrived (or `timeout` passed); all of them."""
        self.wait_for(lambda: len(self._received) >= count, timeout)
        return self.received

    def handle(self, request: Request) -> None:
        with self._changed:
            self._received.append(Received(request.method, request.path, dict(request.query),
                                           dict(request.headers.items()), request.body))
            self._changed.notify_all()
        request.answer(self.status, {"ok": self.status < 300})
