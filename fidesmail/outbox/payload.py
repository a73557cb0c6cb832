"""What a queued message needs to be posted later, encrypted at rest (records/cipher.py: AES-256-GCM).

Records keep no address and no body (contract section 9), so a message accepted for later keeps them
here, in the outbox row, only while it is queued or being posted: the recipient and the rendered
message (subject, html, text, tag), never the provider's key. The key is derived from the records key
of the instance dir; the message id is the associated data, so a payload moved to another message does
not open.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from fidesmail.core.email import Message
from fidesmail.records.cipher import CipherError, RecordsCipher
from fidesmail.records.privacy import RecordsKey

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
        self._cipher = RecordsCipher(records_key, _INFO)

    def seal(self, message_id: str, payload: Payload) -> bytes:
        plain = json.dumps(asdict(payload), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._cipher.seal(message_id.encode("ascii"), plain)

    def open(self, message_id: str, sealed: bytes) -> Payload:
        try:
            plain = self._cipher.open(message_id.encode("ascii"), sealed)
        except CipherError as exc:
            raise PayloadError(f"the queued payload of {message_id} {exc}") from None
        return Payload(**json.loads(plain))
