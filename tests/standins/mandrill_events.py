"""Mailchimp Transactional (Mandrill) webhooks as the stand-in posts them: events, form body and signature.

Mandrill posts `application/x-www-form-urlencoded` with one field, `mandrill_events`: a JSON array of
events. It signs each post with `X-Mandrill-Signature`: base64 of HMAC-SHA1, under the webhook's
`auth_key`, of the webhook URL exactly as registered followed by each form key and its value, keys
sorted (`signature(key, url, form)`; the algorithm django-anymail checks in anymail/webhooks/mandrill.py).
`signed_post(key, url, events)` gives (headers, body) ready to post.

From the command line (for curl):

    python -m tests.standins.mandrill_events --key WEBHOOK_KEY --url http://127.0.0.1:8080/api/v1/email/webhooks/... \
        --event hard_bounce --message-id 0a8b3c... --fidesmail-message-id msg_123 --email a@example.com

prints the `X-Mandrill-Signature` header and the form body (`curl -H ... --data-binary ...`).

Events (`event_body`): send, hard_bounce, soft_bounce, deferral, reject, open, click, spam, unsub;
each `{"event", "_id", "ts", "msg": {"_id", "ts", "state", "email", "sender", "subject", "tags",
"metadata", ...}}`, bounces with `bounce_description` and `diag`, deferrals with `smtp_events`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

SIGNATURE_HEADER = "X-Mandrill-Signature"
# What follows an accepted message, per recipient: the send answer's status and reject_reason, then the events.
OUTCOMES: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "sent": ("sent", None, ("send",)),
    "queued": ("queued", None, ("send",)),
    "scheduled": ("scheduled", None, ()),
    "hard_bounce": ("sent", None, ("hard_bounce",)),
    "soft_bounce": ("sent", None, ("soft_bounce",)),
    "deferral": ("sent", None, ("deferral", "send")),
    "rejected": ("rejected", "hard-bounce", ("reject",)),
    "invalid": ("invalid", None, ()),
    "open": ("sent", None, ("send", "open")),
    "click": ("sent", None, ("send", "click")),
    "spam": ("sent", None, ("send", "spam")),
    "unsub": ("sent", None, ("send", "unsub")),
    "none": ("sent", None, ()),
}
EVENTS = ("send", "hard_bounce", "soft_bounce", "open", "click", "spam", "unsub", "reject", "deferral")
_STATE = {"send": "sent", "hard_bounce": "bounced", "soft_bounce": "soft-bounced", "deferral": "deferred",
          "reject": "rejected"}


def signature(key: str, url: str, form: Mapping[str, str]) -> str:
    """X-Mandrill-Signature: base64 HMAC-SHA1 under the webhook key of the URL, then each key and value by key."""
    signed = url + "".join(name + form[name] for name in sorted(form))
    return base64.b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def signed_post(key: str, url: str, events: Sequence[Mapping]) -> tuple[dict[str, str], bytes]:
    """(headers, body) of one webhook post of these events to `url`."""
    form = {"mandrill_events": json.dumps(list(events), separators=(",", ":"))}
    headers = {"Content-Type": "application/x-www-form-urlencoded", SIGNATURE_HEADER: signature(key, url, form),
               "User-Agent": "Mandrill-Webhook/1.0"}
    return headers, urlencode(form).encode()


def event_body(event: str, *, message_id: str, email: str, sender: str = "", subject: str = "",
               tags: Sequence[str] = (), metadata: Mapping[str, str] | None = None, ts: int | None = None) -> dict:
    """One event as Mandrill posts it."""
    ts = ts or int(time.time())
    msg = {"_id": message_id, "ts": ts, "state": _STATE.get(event, "sent"), "email": email, "sender": sender,
           "subject": subject, "tags": list(tags), "metadata": dict(metadata or {}), "opens": [], "clicks": [],
           "smtp_events": [], "resends": [], "_version": "exampleaaaaaaaaaaaaaaa", "subaccount": None}
    if event == "hard_bounce":
        msg.update(bounce_description="bad_mailbox", bgtools_code=10,
                   diag="smtp;550 5.1.1 The email account that you tried to reach does not exist.")
    elif event == "soft_bounce":
        msg.update(bounce_description="mailbox_full", bgtools_code=22, diag="smtp;552 5.2.2 Over Quota")
    elif event == "deferral":
        msg["smtp_events"] = [{"ts": ts, "type": "deferred", "diag": "451 4.3.5 Temporary local problem",
                               "source_ip": "127.0.0.1", "destination_ip": "127.0.0.1", "size": 0}]
    body = {"event": event, "_id": message_id, "ts": ts, "msg": msg}
    if event in ("open", "click"):
        body.update(ip="203.0.113.7", user_agent="Mozilla/5.0", location=None, user_agent_parsed=None)
        if event == "click":
            body["url"] = "https://example.com/privacy"
    return body


def main(argv: list[str] | None = None) -> None:
    """Print a signed webhook post: the signature header, then the form body."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True,
                        help="the webhook's auth_key (fidesmail's mailchimp_transactional_webhook_key)")
    parser.add_argument("--url", required=True, help="the webhook URL exactly as registered")
    parser.add_argument("--event", default="send", choices=EVENTS)
    parser.add_argument("--message-id", default="0a8b3c5d7e9f4a1b2c3d4e5f6a7b8c9d", help="the send answer's _id")
    parser.add_argument("--email", default="subject@example.com")
    parser.add_argument("--fidesmail-message-id", help="metadata.fidesmail_message_id")
    args = parser.parse_args(argv)
    metadata = {"fidesmail_message_id": args.fidesmail_message_id} if args.fidesmail_message_id else {}
    headers, body = signed_post(args.key, args.url, [event_body(args.event, message_id=args.message_id,
                                                                email=args.email, metadata=metadata)])
    print(f"{SIGNATURE_HEADER}: {headers[SIGNATURE_HEADER]}")
    print(body.decode())


if __name__ == "__main__":
    main()
