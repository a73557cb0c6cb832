"""A caller's callback receiver on 127.0.0.1 (contract section 15): records each POST, checks its signature.

    with CallbackReceiver(key="...") as receiver:
        receiver.wait_for_callbacks(2)     # [Received(message_id, status, body, verified, ...)]
        receiver.fail_next(503)            # faults as every stand-in has them (faults.py); down()/up()

Each POST is answered 200 (`answer_status` to change it; `redirect_to` answers 307 there instead) and
recorded with its parsed body and whether `X-Fidesmail-Signature` verified under `key` (the same check
as the README's verifier). Standalone (a process to kill -9): `python -m tests.standins.callback_receiver
--port N --key KEY --log FILE` appends each verified callback to FILE as a JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .server import Request, Standin
from .standalone import run_in_foreground

SIGNATURE_HEADER = "X-Fidesmail-Signature"


def verified(key: str, header: str, body: bytes, tolerance: float | None = 300) -> bool:
    """Whether the header is `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under `key`, t recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    if tolerance is not None and abs(time.time() - int(parts["t"])) > tolerance:
        return False
    expected = hmac.new(key.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@dataclass(frozen=True)
class Received:
    message_id: str | None
    status: str | None
    body: dict
    signature: str
    verified: bool  # signed under the key, and answered 2xx
    at: float
    raw: bytes = b""  # the body as posted


class CallbackReceiver(Standin):
    """Records callbacks; answers 200 unless told otherwise."""

    server_name = "callback-receiver"

    def __init__(self, *, key: str, log: Path | None = None, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self.key = key
        self.log = log
        self.answer_status = 200
        self.redirect_to: str | None = None
        self.received: list[Received] = []

    @property
    def url(self) -> str:
        return self.base_url + "/callbacks"

    def wait_for_callbacks(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Wait until `count` callbacks were answered 2xx; all that were received."""
        self.wait_for(lambda: len(self.delivered()) >= count, timeout)
        with self._changed:
            return list(self.received)

    def delivered(self) -> list[Received]:
        """The callbacks answered 2xx, in the order they arrived."""
        with self._changed:
            return [one for one in self.received if one.verified]

    def handle(self, request: Request) -> None:
        if request.method != "POST" or request.path != "/callbacks":
            request.answer(404, {"error": "not found"})
            return
        header = request.headers.get(SIGNATURE_HEADER, "")
        body = request.json() if isinstance(request.json(), dict) else {}
        ok = verified(self.key, header, request.body)
        if self.redirect_to is not None:
            request.answer(307, None, headers={"Location": self.redirect_to})
            return
        status = self.answer_status if ok else 401
        one = Received(body.get("message_id"), body.get("status"), body, header, ok and status < 300, time.time(),
                       request.body)
        if one.verified and self.log is not None:
            with self.log.open("a") as out:
                out.write(json.dumps(body) + "\n")
        with self._changed:
            self.received.append(one)
            self._changed.notify_all()
        request.answer(status, {"ok": status < 300})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    run_in_foreground(CallbackReceiver(key=args.key, log=args.log, port=args.port),
                      lambda receiver: [f"callback receiver at {receiver.url}"])


if __name__ == "__main__":
    main()
