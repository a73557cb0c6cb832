"""What a record keeps instead of an address or a body: a mask, an HMAC digest, a digest of the content.

A privacy tool keeps evidence, not copies: the recipient is kept as `s***@example.com` and as an
HMAC-SHA256 under a key of the instance dir (so `?to=<address>` finds an address's records, while the
database alone cannot be searched for addresses by guessing); the content as a SHA-256 that proves
what was sent to whoever holds the email, without holding the verification code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from pathlib import Path

from fidesmail.core import fsutil
from fidesmail.core.email import Message

log = logging.getLogger("fidesmail.records")

KEY_FILE = "records.key"


class RecordsKey:
    """The HMAC key of the address digests (instance dir, mode 0600; replicas must share it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._key: bytes | None = None

    def ensure(self) -> None:
        """Create the key file unless it exists (at start of a serving process)."""
        if fsutil.create_file(self.path, secrets.token_hex(32).encode("ascii"), 0o600):
            log.info("generated the records key (address digests) into %s (mode 0600); replicas that share "
                     "a database must share this file", self.path)

    def key(self) -> bytes:
        if self._key is None:
            text = self.path.read_text(encoding="ascii").strip()
            self._key = bytes.fromhex(text)
        return self._key

    @property
    def key_id(self) -> str:
        """Names the key without revealing it (stored in the database, compared by every replica)."""
        return hashlib.sha256(b"fidesmail records key id\x00" + self.key()).hexdigest()[:16]

    def digest(self, address: str) -> bytes:
        """HMAC-SHA256 of the normalised, lower-cased address."""
        return hmac.new(self.key(), address.strip().lower().encode("utf-8"), hashlib.sha256).digest()


def mask(address: str) -> str:
    """s***@example.com (lower-cased, as the digest is): enough to tell recipients apart, not to mail them."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


def content_digest(message: Message) -> bytes:
    """SHA-256 over subject, html and text exactly as sent, each UTF-8, separated by a NUL byte."""
    return hashlib.sha256(b"\x00".join(part.encode("utf-8") for part in (message.subject, message.html,
                                                                             message.text))).digest()
