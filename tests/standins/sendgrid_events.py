"""SendGrid's Event Webhook as the stand-in posts it: the events, their signature, and the settings API.

Signing (SendGrid's Signed Event Webhook): an ECDSA P-256 key pair; the signature is ECDSA/SHA-256
over the `X-Twilio-Email-Event-Webhook-Timestamp` header's value followed by the raw body, base64
(DER) in `X-Twilio-Email-Event-Webhook-Signature`; the public key is shown as base64 DER
(SubjectPublicKeyInfo), as SendGrid's settings page and API show it. `EventSigner()` makes a key
(or loads one: `EventSigner.from_file(path)`), `signer.public_key` is that base64 text, and
`signer.headers(body)` / `signer.signed(events)` give what to post. The official
`sendgrid.helpers.eventwebhook.EventWebhook().verify_signature(...)` accepts these signatures.

From the command line (for curl), with a key kept in a PEM file (made when missing):

    python -m tests.standins.sendgrid_events public-key --key-file sg-webhook.pem
    python -m tests.standins.sendgrid_events sign --key-file sg-webhook.pem \
        --event delivered --message-id 14c5d75ce93.dfd.64b469 --fidesmail-message-id msg_123 --email a@example.com

`sign` prints the two headers and the body, ready for `curl -H ... --data-binary ...`.

Events (`event_body`): processed, delivered, bounce, dropped, deferred, open, click, spamreport,
unsubscribe; each with `email`, `timestamp`, `event`, `sg_event_id`, `sg_message_id` (the send's
X-Message-Id, a dot, and a filter suffix, as SendGrid writes it), `smtp-id`, `category`, and the
message's custom args flattened into the event (so `fidesmail_message_id` is a top-level key).
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# What follows an accepted message, per recipient (SendGrid's event names, in the order it posts them).
OUTCOMES = {
    "delivered": ("processed", "delivered"),
    "bounce": ("processed", "bounce"),
    "blocked": ("processed", "blocked"),
    "dropped": ("processed", "dropped"),
    "deferred": ("processed", "deferred", "delivered"),
    "open": ("processed", "delivered", "open"),
    "click": ("processed", "delivered", "click"),
    "spamreport": ("processed", "delivered", "spamreport"),
    "unsubscribe": ("processed", "delivered", "unsubscribe"),
    "none": (),
}
# The event settings' switches (SendGrid's names); "blocked" is a bounce of type blocked.
EVENT_SWITCHES = ("processed", "delivered", "bounce", "dropped", "deferred", "open", "click", "spam_report",
                  "unsubscribe", "group_unsubscribe", "group_resubscribe")
_SWITCH = {"blocked": "bounce", "spamreport": "spam_report"}


class EventSigner:
    """An ECDSA P-256 key pair that signs event webhook bodies as SendGrid does."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None):
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())

    @classmethod
    def from_file(cls, path: str | Path) -> EventSigner:
        """The key kept in a PEM file, made (mode 600) when the file does not exist."""
        path = Path(path)
        if path.exists():
            return cls(serialization.load_pem_private_key(path.read_bytes(), password=None))
        signer = cls()
        path.touch(mode=0o600)
        path.write_bytes(signer.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return signer

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def signature(self, body: bytes, timestamp: str) -> str:
        """Base64 ECDSA/SHA-256 (DER) signature over the timestamp followed by the raw body."""
        return base64.b64encode(self.private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """The headers SendGrid sends with a signed event webhook body."""
        timestamp = timestamp or str(int(time.time()))
        return {"Content-Type": "application/json", SIGNATURE_HEADER: self.signature(body, timestamp),
                TIMESTAMP_HEADER: timestamp, "User-Agent": "SendGrid Event API"}

    def signed(self, events: Sequence[Mapping], timestamp: str | None = None) -> tuple[dict[str, str], bytes]:
        """(headers, body) for a list of events."""
        body = json.dumps(list(events), separators=(",", ":")).encode()
        return self.headers(body, timestamp), body


def sg_message_id(x_message_id: str) -> str:
    """An event's sg_message_id: the send's X-Message-Id, a dot, and a filter suffix."""
    return f"{x_message_id}.filterdrecv-{secrets.randbelow(9000) + 1000}-{secrets.token_hex(4)}-1-0"


def event_body(event: str, *, email: str, x_message_id: str, custom_args: Mapping[str, str] | None = None,
               categories: Sequence[str] = (), timestamp: int | None = None) -> dict:
    """One event as SendGrid posts it (custom args flattened into it)."""
    body = {"email": email, "timestamp": timestamp or int(time.time()), "event": event,
            "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
            "sg_message_id": sg_message_id(x_message_id), "smtp-id": f"<{x_message_id}@geopod-ismtpd-1>"}
    if categories:
        body["category"] = list(categories)
    if event == "delivered":
        body.update(response="250 2.0.0 OK  1700000000 a1si123 - gsmtp", ip="149.72.1.1", tls=1)
    elif event == "bounce":
        body.update(type="bounce", status="5.1.1", bounce_classification="Invalid Address",
                    reason="550 5.1.1 The email account that you tried to reach does not exist.")
    elif event == "blocked":
        body.update(event="bounce", type="blocked", status="5.7.1", bounce_classification="Reputation",
                    reason="550 5.7.1 Message rejected due to local policy")
    elif event == "dropped":
        body.update(reason="Bounced Address", status="5.0.0")
    elif event == "deferred":
        body.update(response="421 4.7.0 Try again later", attempt="1")
    elif event in ("open", "click"):
        body.update(useragent="Mozilla/5.0", ip="203.0.113.7", sg_machine_open=False)
        if event == "click":
            body["url"] = "https://example.com/privacy"
    for name, value in (custom_args or {}).items():
        body.setdefault(name, value)
    return body


def switch_for(event: str) -> str:
    """The event settings switch that must be on for this event to be posted."""
    return _SWITCH.get(event, event)


def main(argv: list[str] | None = None) -> None:
    """`public-key` or `sign`: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("public-key", "sign"))
    parser.add_argument("--key-file", required=True, help="the private key (PEM); made when missing")
    parser.add_argument("--event", default="delivered", help=f"one of {', '.join(OUTCOMES)} (or any event name)")
    parser.add_argument("--email", default="subject@example.com")
    parser.add_argument("--message-id", default="14c5d75ce93.dfd.64b469", help="the send's X-Message-Id")
    parser.add_argument("--fidesmail-message-id", help="the custom arg fidesmail_message_id")
    parser.add_argument("--timestamp", help="Unix seconds (default: now)")
    args = parser.parse_args(argv)
    signer = EventSigner.from_file(args.key_file)
    if args.command == "public-key":
        print(signer.public_key)
        return
    custom = {"fidesmail_message_id": args.fidesmail_message_id} if args.fidesmail_message_id else {}
    headers, body = signer.signed([event_body(args.event, email=args.email, x_message_id=args.message_id,
                                              custom_args=custom)], args.timestamp)
    print(f"{SIGNATURE_HEADER}: {headers[SIGNATURE_HEADER]}")
    print(f"{TIMESTAMP_HEADER}: {headers[TIMESTAMP_HEADER]}")
    print(body.decode())


if __name__ == "__main__":
    main()
