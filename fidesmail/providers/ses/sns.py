"""Amazon SNS messages, verified as AWS documents it: signature versions 1 and 2, certificates fetched by rule.

"Verifying the signatures of Amazon SNS messages": the string to sign is each of the message type's keys
present (Notification: Message, MessageId, Subject, Timestamp, TopicArn, Type; the confirmations:
Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type), each as key, newline, value,
newline; `Signature` is RSA PKCS#1 v1.5 over it, SHA1 for `SignatureVersion` "1" and SHA256 for "2",
with the certificate at `SigningCertURL`. That URL comes in the message itself, so it is fetched only
when it matches FIDESMAIL_SNS_CERT_URL_PATTERN (the pattern alone decides which certificates are
trusted), bounded in time and size, never redirected, and each certificate is kept per URL. A
SubscriptionConfirmation's SubscribeURL is fetched under the same rule.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Mapping

import requests
from cachetools import TTLCache
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fidesmail.core import forks
from fidesmail.providers import bounded, webhooks
from fidesmail.providers.webhooks import NotAnEvent, WebhookRefused

NOTIFICATION, SUBSCRIPTION, UNSUBSCRIPTION = "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"
SIGNED_KEYS = {NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
               SUBSCRIPTION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
               UNSUBSCRIPTION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")}
_DIGESTS = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTIFICATE = 64 * 1024
MAX_CONFIRMATION = 64 * 1024
NOT_VERIFIED = "Amazon SNS message signature missing or wrong."
_URL_CHARACTERS = re.compile(r"[\x21-\x7e]{1,2048}")  # no space, no control character, no non-ASCII


def message_of(body: bytes) -> dict[str, str]:
    """The SNS message (a JSON object of strings); NotAnEvent when the body is not one."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise NotAnEvent("the body is not JSON") from None
    if not isinstance(message, dict):
        raise NotAnEvent("the body is not an Amazon SNS message")
    return message


def string_to_sign(message: Mapping) -> bytes:
    """What SNS signed: the type's keys present, each as key, newline, value, newline."""
    keys = SIGNED_KEYS[message["Type"]]
    return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message).encode("utf-8")


class Certificates:
    """SNS signing certificates by URL: fetched only when the URL matches the pattern, bounded, kept."""

    def __init__(self, pattern, timeout: float = 10.0, session: requests.Session | None = None,
                 max_kept: int = 64, keep_seconds: float = 86400.0):
        self.pattern = re.compile(pattern)
        self.timeout = timeout
        self._own_session = session is None
        self._session = session or requests.Session()  # trusts the environment: an operator's HTTPS_PROXY applies
        self._kept: TTLCache = TTLCache(max_kept, keep_seconds)
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        forks.reset_in_children(self)

    def after_fork(self) -> None:
        """A forked worker must not share its parent's pooled connections or locks."""
        if self._own_session:
            self._session = requests.Session()
        self._lock = threading.Lock()
        self._fetching = {}

    def trusted(self, url) -> bool:
        """Whether the rule allows fetching `url` (a plain printable ASCII URL that matches the pattern)."""
        return isinstance(url, str) and bool(_URL_CHARACTERS.fullmatch(url)) and self.pattern.match(url) is not None

    def public_key(self, url: str) -> rsa.RSAPublicKey:
        """The RSA public key of the certificate at a trusted `url` (fetched once per URL and process)."""
        with self._lock:
            key = self._kept.get(url)
            fetching = self._fetching.setdefault(url, threading.Lock())
        if key is not None:
            return key
        with fetching:  # one fetch per URL at a time; the others wait for it
            with self._lock:
                key = self._kept.get(url)
            if key is None:
                key = self._fetch(url)
                with self._lock:
                    self._kept[url] = key
            with self._lock:
                self._fetching.pop(url, None)
        return key

    def _fetch(self, url: str) -> rsa.RSAPublicKey:
        try:
            answer = bounded.request(self._session, "GET", url, timeout=self.timeout, max_bytes=MAX_CERTIFICATE)
        except bounded.BoundedError as exc:
            raise WebhookRefused(webhooks.BAD_SIGNATURE, f"The SNS signing certificate could not be fetched: {exc}") \
                from None
        if answer.status != 200:
            raise WebhookRefused(webhooks.BAD_SIGNATURE, f"The SNS signing certificate could not be fetched: its "
                                                         f"URL answered {answer.status}")
        try:
            key = x509.load_pem_x509_certificate(answer.body).public_key()
        except ValueError:
            raise WebhookRefused(webhooks.BAD_SIGNATURE, "The SNS signing certificate is not a PEM certificate") \
                from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRefused(webhooks.BAD_SIGNATURE, "The SNS signing certificate does not hold an RSA key")
        return key

    def confirm(self, url: str) -> None:
        """Fetch a trusted SubscribeURL (the subscription is confirmed by it); BoundedError when it fails."""
        answer = bounded.request(self._session, "GET", url, timeout=self.timeout, max_bytes=MAX_CONFIRMATION)
        if answer.status != 200:
            raise bounded.BoundedError(f"the SubscribeURL answered {answer.status}")


def verify(certificates: Certificates, message: Mapping) -> None:
    """Check the message's signature with its certificate; WebhookRefused when it cannot be shown to be SNS's."""
    kind = message.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_KEYS \
            or not all(isinstance(message.get(k), str) for k in ("MessageId", "TopicArn", "Type")):
        raise WebhookRefused(webhooks.BAD_SIGNATURE, NOT_VERIFIED)
    if not all(isinstance(message[key], str) for key in SIGNED_KEYS[kind] if key in message):
        raise WebhookRefused(webhooks.BAD_SIGNATURE, NOT_VERIFIED)
    digest = _DIGESTS.get(message.get("SignatureVersion"))
    signature = message.get("Signature")
    if digest is None or not isinstance(signature, str) or len(signature) > 4096:
        raise WebhookRefused(webhooks.BAD_SIGNATURE, NOT_VERIFIED)
    cert_url = message.get("SigningCertURL")
    if not certificates.trusted(cert_url):
        raise WebhookRefused(webhooks.UNTRUSTED_URL, "The SNS message's SigningCertURL does not match "
                                                     "FIDESMAIL_SNS_CERT_URL_PATTERN: nothing was fetched.")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused(webhooks.BAD_SIGNATURE, NOT_VERIFIED) from None
    key = certificates.public_key(cert_url)
    try:
        key.verify(raw, string_to_sign(message), padding.PKCS1v15(), digest())
    except (InvalidSignature, ValueError):
        raise WebhookRefused(webhooks.BAD_SIGNATURE, NOT_VERIFIED) from None


def shown_signature(message: Mapping) -> dict[str, str]:
    """What a record shows of an SNS signature (no address: the recipient is in the Message)."""
    return {"type": message["Type"], "message_id": message["MessageId"], "topic_arn": message["TopicArn"],
            "timestamp": str(message.get("Timestamp", "")), "signature_version": message["SignatureVersion"],
            "signing_cert_url": message["SigningCertURL"], "signature": message["Signature"]}
