"""Bytes that name a recipient, encrypted at rest (AES-256-GCM) under a key derived from the records key.

Records keep no address (contract section 9), yet two things must keep one for a while: a queued
message's payload (outbox/payload.py) and the signed bytes of a provider's webhook post, which
re-verify its events later (webhook_posts.py). Each purpose derives its own key (HKDF-SHA256 with its
own label) from the records key of the instance dir, which every replica of a database already
shares; the associated data binds a value to its place, so a value moved elsewhere does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fidesmail.records.privacy import RecordsKey

_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16


class CipherError(ValueError):
    """Sealed bytes that do not open (another records key, another place, or altered); the message is a
    predicate ("is not one this version wrote") to follow what it is about."""


class RecordsCipher:
    """Seals and opens bytes for one purpose (`label`), with a key derived from the records key when first used."""

    def __init__(self, records_key: RecordsKey, label: bytes):
        self._records_key = records_key
        self._label = label
        self._aead: AESGCM | None = None

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._label).derive(
                self._records_key.key())
            self._aead = AESGCM(key)
        return self._aead

    def seal(self, place: bytes, plain: bytes) -> bytes:
        """Version, nonce, ciphertext and tag; `place` (e.g. a message id) is the associated data."""
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._cipher().encrypt(nonce, plain, place)

    def open(self, place: bytes, sealed: bytes) -> bytes:
        """The plain bytes; CipherError when they were not sealed for `place` with this records key."""
        if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES or sealed[:1] != _VERSION:
            raise CipherError("is not one this version wrote")
        nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
        try:
            return self._cipher().decrypt(nonce, body, place)
        except InvalidTag:
            raise CipherError("does not open with this instance's records key (another key, or altered)") from None
