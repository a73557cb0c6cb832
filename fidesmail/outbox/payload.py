"""What a queued message needs to be posted later, encrypted at rest (AES-256-GCM).

Records keep no address and no body (contract section 9), so a message accepted for later keeps them
here, in the outbox row, only while it is queued or being posted: the recipient and the rendered
message (subject, html, text, tag), never the Mailgun key. The key is derived (HKDF-SHA256) from the
records key of the instance dir, which every replica of a database already shares; the message id is
the associated data, so a payload moved to another message does not open.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fidesmail.core.email import Message
from fidesmail.records.privacy import RecordsKey

_VERSION = b"\x01"
_NONCE_BYTES = 12
_INFO = b"fidesmail outbox payload v1"


class PayloadError(ValueError):
    """A stored payload that cannot be opened (another records key, or altered)."""


@dataclass(frozen=True)
class Payload:
    """One queued message: to whom, and what, exactly as it will be posted."""

    to: str
    subject: str
    html: str
    text: str
    tag: str
    test_mode: bool = False

    @property
    def message(self) -> Message:
        return Message(subject=self.subject, html=self.html, text=self.text, tag=self.tag)


class PayloadCipher:
    """Seals and opens payloads with a key derived from the records key (read once, when first needed)."""

    def __init__(self, records_key: RecordsKey):
        self._records_key = records_key
        self._aead: AESGCM | None = None

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(self._records_key.key())
            self._aead = AESGCM(key)
        return self._aead

    def seal(self, message_id: str, payload: Payload) -> bytes:
        plain = json.dumps(asdict(payload), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._cipher().encrypt(nonce, plain, message_id.encode("ascii"))

    def open(self, message_id: str, sealed: bytes) -> Payload:
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise PayloadError(f"the queued payload of {message_id} is not one this version wrote")
        nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
        try:
            plain = self._cipher().decrypt(nonce, body, message_id.encode("ascii"))
        except InvalidTag:
            raise PayloadError(f"the queued payload of {message_id} does not open with this instance's records "
                               "key (another key, or altered)") from None
        return Payload(**json.loads(plain))
