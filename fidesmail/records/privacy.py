"""What a record keeps instead of an address or a body: a mask and digests keyed by the instance dir.

A privacy tool keeps evidence, not copies, and an unkeyed hash of a six-digit code is undone in
seconds by anyone holding the database and the public templates. So every digest in the database is
an HMAC-SHA256 under a key of the instance dir: the recipient's under the records key (so `?to=`
finds an address's records, while the database alone cannot be searched for addresses by guessing);
the content's, the request's (the Idempotency-Key ledger's fingerprint) and the Idempotency-Key's
under the content key, a second key, so whoever may search by address cannot also test guesses of
what a message said. Replicas that share a database share both files (maintenance.py checks it).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import secrets
from pathlib import Path

from fidesmail.core import fsutil
from fidesmail.core.email import Message

log = logging.getLogger("fidesmail.records")

KEY_FILE = "records.key"
CONTENT_KEY_FILE = "content.key"


class InstanceKey:
    """A random 256-bit key in a file of the instance dir (mode 0600), read once, named by a key id."""

    what = "instance key"
    meta_name = ""  # its key id's row in the database's meta table (maintenance.py)
    _id_label = b""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._key: bytes | None = None

    def ensure(self) -> None:
        """Create the key file unless it exists (at start of a serving process)."""
        if fsutil.create_file(self.path, secrets.token_hex(32).encode("ascii"), 0o600):
            log.info("generated the %s into %s (mode 0600); replicas that share a database must share this file",
                     self.what, self.path)

    def key(self) -> bytes:
        if self._key is None:
            text = self.path.read_text(encoding="ascii").strip()
            fsutil.warn_if_exposed(self.path, self.what, log)
            self._key = bytes.fromhex(text)
        return self._key

    @property
    def key_id(self) -> str:
        """Names the key without revealing it (stored in the database, compared by every replica)."""
        return hashlib.sha256(self._id_label + self.key()).hexdigest()[:16]


class RecordsKey(InstanceKey):
    """The HMAC key of the address digests (and, derived from it, the outbox payloads' cipher)."""

    what = "records key (address digests)"
    meta_name = "records_key_id"
    _id_label = b"fidesmail records key id\x00"

    def digest(self, address: str) -> bytes:
        """HMAC-SHA256 of the normalised, lower-cased address."""
        return hmac.new(self.key(), address.strip().lower().encode("utf-8"), hashlib.sha256).digest()


class ContentKey(InstanceKey):
    """The second key: content digests, request fingerprints and Idempotency-Keys, each under its own subkey."""

    what = "content key (content digests, request fingerprints)"
    meta_name = "content_key_id"
    _id_label = b"fidesmail content key id\x00"

    @functools.cached_property
    def _subkeys(self) -> dict[str, bytes]:
        # One HMAC-SHA256 per purpose (HKDF-Expand's single block): a value of one kind never equals another's.
        return {purpose: hmac.new(self.key(), f"fidesmail {purpose} v1\x01".encode(), hashlib.sha256).digest()
                for purpose in ("content digest", "request fingerprint", "idempotency key")}

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._subkeys[purpose], data, hashlib.sha256).digest()

    def content_digest(self, message: Message) -> bytes:
        """HMAC-SHA256 over subject, html and text exactly as sent, each UTF-8, separated by a NUL byte."""
        return self._mac("content digest", b"\x00".join(
            part.encode("utf-8") for part in (message.subject, message.html, message.text)))

    def matches(self, digest: bytes, message: Message) -> bool:
        """Whether `message` is the one whose content digest is `digest` (compared in constant time)."""
        return hmac.compare_digest(digest, self.content_digest(message))

    def request_digest(self, request_body) -> bytes:
        """HMAC-SHA256 of the request's canonical JSON: what the Idempotency-Key ledger compares."""
        canonical = json.dumps(request_body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return self._mac("request fingerprint", canonical.encode("utf-8", "surrogatepass"))

    def idempotency_digest(self, idempotency_key: str) -> bytes:
        """HMAC-SHA256 of an Idempotency-Key (keys may carry anything the caller put in them)."""
        return self._mac("idempotency key", idempotency_key.encode("utf-8", "surrogatepass"))
