"""Amazon SNS messages carrying SES events, signed as SNS signs them, with the certificate served on 127.0.0.1.

    with SnsSigner() as sns:
        event = ses_event("Bounce", message_id="0100018f...", recipient="a@example.com",
                          tags={"fidesmail-message-id": ["msg_123"]}, bounce_type="Permanent")
        body = sns.notification(event, version=2)          # a dict: post json.dumps(body) to fidesmail
        confirmation = sns.subscription_confirmation()     # its SubscribeURL is served here too
        sns.wait_for_subscribe(1)                          # after fidesmail fetched it

The signer makes an RSA key and a self-signed certificate and serves the certificate at
`cert_url` (`SigningCertURL`, a path like SNS's `/SimpleNotificationService-<hash>.pem`). Signatures
follow AWS's "Verifying the signatures of Amazon SNS messages": the canonical string is each of the
type's keys (Notification: Message, MessageId, Subject if present, Timestamp, TopicArn, Type;
SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId, SubscribeURL, Timestamp,
Token, TopicArn, Type), each followed by a newline, its value and a newline; signed with RSA PKCS#1
v1.5 over SHA1 (`SignatureVersion` "1") or SHA256 ("2"), base64 in `Signature`.
`GET /confirm?Token=...` (the `SubscribeURL`) and `GET /unsubscribe?...` are recorded
(`subscribe_fetches`, `wait_for_subscribe(n)`) and answered with SNS's XML; certificate GETs are
counted (`cert_fetches`).

`ses_event(kind, ...)` builds the SES event JSON (the SNS `Message`): `Send`, `Delivery`, `Bounce`
(`bounce_type` Permanent/Transient, `bouncedRecipients[].diagnosticCode`), `Complaint`, `Reject`,
`DeliveryDelay`, `Open`, `Click`; `style="event"` (event publishing: `eventType`, `mail.tags` as SES
writes them, a dict of lists) or `style="notification"` (identity notifications: `notificationType`,
no tags).

Standalone (for curl): `python -m tests.standins.sns serve --port 9995 --key-dir DIR` serves the
certificate; `python -m tests.standins.sns sign --key-dir DIR --cert-url URL --event Bounce
--message-id ID --fidesmail-message-id msg_123` prints a signed Notification's JSON.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .server import Request, Standin
from .standalone import run_in_foreground

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:fidesmail-ses-events"
_KEYS = {"Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
         "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
         "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")}


def canonical(message: Mapping[str, str]) -> bytes:
    """SNS's string to sign: the type's keys present in the message, each as key, newline, value, newline."""
    keys = _KEYS[message["Type"]]
    return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message).encode()


class SnsSigner(Standin):
    """Signs SNS messages with a self-signed certificate it serves, and records SubscribeURL fetches."""

    server_name = "sns-standin"

    def __init__(self, *, key_dir: str | Path | None = None, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self.private_key, self.certificate = _key_and_certificate(Path(key_dir) if key_dir else None)
        pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        self.cert_pem = pem
        self.cert_path = f"/SimpleNotificationService-{hashlib.sha256(pem).hexdigest()[:32]}.pem"
        self.subscribe_fetches: list[dict[str, str]] = []
        self.cert_fetches = 0  # GETs of the certificate (a verifier that keeps it fetches it once)

    @property
    def cert_url(self) -> str:
        return self.base_url + self.cert_path

    def wait_for_subscribe(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, str]]:
        """Wait until the SubscribeURL (or an UnsubscribeURL) was fetched `count` times; the fetches' queries."""
        self.wait_for(lambda: len(self.subscribe_fetches) >= count, timeout)
        with self._changed:
            return list(self.subscribe_fetches)

    # --- messages ---

    def sign(self, message: dict[str, str], version: int = 1) -> dict[str, str]:
        """Add SignatureVersion, SigningCertURL and Signature to a message (in place); the message."""
        message["SignatureVersion"] = str(version)
        message["SigningCertURL"] = self.cert_url
        digest = hashes.SHA1() if version == 1 else hashes.SHA256()
        signature = self.private_key.sign(canonical(message), padding.PKCS1v15(), digest)
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    def notification(self, event: Mapping | str, *, topic_arn: str = TOPIC_ARN, subject: str | None = None,
                     version: int = 1) -> dict[str, str]:
        """A signed Notification whose Message is the event (JSON-encoded when it is not a string)."""
        message = {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn,
                   "Message": event if isinstance(event, str) else json.dumps(event), "Timestamp": _now()}
        if subject is not None:
            message["Subject"] = subject
        message["UnsubscribeURL"] = f"{self.base_url}/unsubscribe?SubscriptionArn={topic_arn}:{uuid.uuid4()}"
        return self.sign(message, version)

    def subscription_confirmation(self, *, topic_arn: str = TOPIC_ARN, version: int = 1,
                                  subscribe_url: str | None = None) -> dict[str, str]:
        """A signed SubscriptionConfirmation; its SubscribeURL is this server's /confirm unless given."""
        return self._confirmation("SubscriptionConfirmation", topic_arn, version, subscribe_url)

    def unsubscribe_confirmation(self, *, topic_arn: str = TOPIC_ARN, version: int = 1) -> dict[str, str]:
        return self._confirmation("UnsubscribeConfirmation", topic_arn, version, None)

    def _confirmation(self, kind: str, topic_arn: str, version: int, subscribe_url: str | None) -> dict[str, str]:
        token = base64.b16encode(uuid.uuid4().bytes * 4).decode().lower()
        action = "confirm" if kind == "SubscriptionConfirmation" else "resubscribe"
        text = (f"You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the "
                "SubscribeURL included in this message." if action == "confirm" else
                f"You have chosen to deactivate subscription to the topic {topic_arn}.")
        message = {"Type": kind, "MessageId": str(uuid.uuid4()), "Token": token, "TopicArn": topic_arn,
                   "Message": text, "Timestamp": _now(),
                   "SubscribeURL": subscribe_url or f"{self.base_url}/{action}?Action=ConfirmSubscription"
                                                    f"&TopicArn={topic_arn}&Token={token}"}
        return self.sign(message, version)

    # --- serving ---

    def handle(self, request: Request) -> None:
        if request.method in ("GET", "HEAD") and request.path == self.cert_path:
            with self._changed:
                self.cert_fetches += 1
            request.answer(200, self.cert_pem, content_type="application/x-x509-ca-cert")
        elif request.method == "GET" and request.path in ("/confirm", "/resubscribe", "/unsubscribe"):
            with self._changed:
                self.subscribe_fetches.append({"path": request.path, **request.query})
                self._changed.notify_all()
            arn = f"{request.query.get('TopicArn', TOPIC_ARN)}:{uuid.uuid4()}"
            request.answer(200, "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
                                f"<ConfirmSubscriptionResult><SubscriptionArn>{arn}</SubscriptionArn>"
                                "</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>", content_type="text/xml")
        else:
            request.answer(404, "Not Found", content_type="text/plain")


def ses_event(kind: str, *, message_id: str, recipient: str, source: str = "privacy@example.com",
              subject: str = "Your request", tags: Mapping[str, Sequence[str]] | None = None,
              bounce_type: str = "Permanent", diagnostic: str | None = None, style: str = "event") -> dict[str, Any]:
    """An SES event as SES publishes it to SNS (the Notification's Message)."""
    now = _now()
    mail: dict[str, Any] = {
        "timestamp": now, "source": source, "sourceArn": f"arn:aws:ses:us-east-1:123456789012:identity/{source}",
        "sendingAccountId": "123456789012", "messageId": message_id, "destination": [recipient],
        "headersTruncated": False, "headers": [{"name": "From", "value": source}, {"name": "To", "value": recipient},
                                               {"name": "Subject", "value": subject}],
        "commonHeaders": {"from": [source], "to": [recipient], "messageId": message_id, "subject": subject}}
    if style == "event":
        mail["tags"] = {"ses:operation": ["SendEmail"], "ses:source-ip": ["127.0.0.1"],
                        **{name: list(values) for name, values in (tags or {}).items()}}
    event: dict[str, Any] = {("eventType" if style == "event" else "notificationType"): kind, "mail": mail}
    if kind == "Delivery":
        event["delivery"] = {"timestamp": now, "processingTimeMillis": 546, "recipients": [recipient],
                             "smtpResponse": "250 2.6.0 Message received",
                             "reportingMTA": "a8-70.smtp-out.amazonses.com"}
    elif kind == "Bounce":
        permanent = bounce_type == "Permanent"
        event["bounce"] = {"bounceType": bounce_type, "bounceSubType": "General" if permanent else "MailboxFull",
                           "bouncedRecipients": [{"emailAddress": recipient, "action": "failed",
                                                  "status": "5.1.1" if permanent else "4.2.2",
                                                  "diagnosticCode": diagnostic or (
                                                      "smtp; 550 5.1.1 user unknown" if permanent else
                                                      "smtp; 452 4.2.2 mailbox full")}],
                           "timestamp": now, "feedbackId": str(uuid.uuid4()),
                           "reportingMTA": "dsn; a8-70.amazonses.com"}
    elif kind == "Complaint":
        event["complaint"] = {"complainedRecipients": [{"emailAddress": recipient}], "timestamp": now,
                              "feedbackId": str(uuid.uuid4()), "complaintFeedbackType": "abuse"}
    elif kind == "Reject":
        event["reject"] = {"reason": "Bad content"}
    elif kind == "Send":
        event["send"] = {}
    elif kind == "DeliveryDelay":
        event["deliveryDelay"] = {"timestamp": now, "delayType": "TransientCommunicationFailure",
                                  "expirationTime": now, "delayedRecipients": [
                                      {"emailAddress": recipient, "status": "4.4.1",
                                       "diagnosticCode": "smtp; 421 4.4.1 Unable to connect"}]}
    elif kind in ("Open", "Click"):
        event[kind.lower()] = {"timestamp": now, "userAgent": "Mozilla/5.0", "ipAddress": "203.0.113.7",
                               **({"link": "https://example.com/privacy"} if kind == "Click" else {})}
    else:
        raise ValueError(f"unknown SES event {kind!r}")
    return event


def _key_and_certificate(key_dir: Path | None) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An RSA key and a self-signed certificate (kept in key_dir when given, so that signatures outlive a run)."""
    if key_dir and (key_dir / "sns-key.pem").exists():
        key = serialization.load_pem_private_key((key_dir / "sns-key.pem").read_bytes(), password=None)
        return key, x509.load_pem_x509_certificate((key_dir / "sns-cert.pem").read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com (test stand-in)")])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    if key_dir:
        key_dir.mkdir(parents=True, exist_ok=True)
        (key_dir / "sns-key.pem").touch(mode=0o600)
        (key_dir / "sns-key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (key_dir / "sns-cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key, certificate


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def main(argv: list[str] | None = None) -> None:
    """`serve` the certificate (and SubscribeURL), or `sign` a Notification carrying an SES event."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("serve", "sign", "confirmation"))
    parser.add_argument("--key-dir", required=True, help="where the key and certificate are kept (made when missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9995, help="serve: the port; sign: the port `serve` uses")
    parser.add_argument("--event", default="Delivery", help="Delivery, Bounce, Complaint, Reject, Send, ...")
    parser.add_argument("--bounce-type", default="Permanent")
    parser.add_argument("--message-id", default="0100018f00000000-00000000-0000-0000-0000-000000000000-000000")
    parser.add_argument("--recipient", default="subject@example.com")
    parser.add_argument("--fidesmail-message-id")
    parser.add_argument("--topic-arn", default=TOPIC_ARN)
    parser.add_argument("--signature-version", type=int, choices=(1, 2), default=1)
    args = parser.parse_args(argv)
    signer = SnsSigner(key_dir=args.key_dir, host=args.host, port=args.port if args.command == "serve" else 0)
    if args.command != "serve":
        signer._port = args.port  # the URLs name the port `serve` listens on
        signer.close()
        if args.command == "confirmation":
            print(json.dumps(signer.subscription_confirmation(topic_arn=args.topic_arn,
                                                              version=args.signature_version)))
            return
        tags = {"fidesmail-message-id": [args.fidesmail_message_id]} if args.fidesmail_message_id else {}
        event = ses_event(args.event, message_id=args.message_id, recipient=args.recipient, tags=tags,
                          bounce_type=args.bounce_type)
        print(json.dumps(signer.notification(event, topic_arn=args.topic_arn, version=args.signature_version)))
        return
    run_in_foreground(signer, lambda served: [f"SNS certificate at {served.cert_url}"])


if __name__ == "__main__":
    main()
