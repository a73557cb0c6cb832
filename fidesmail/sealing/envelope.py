"""One sealed value: an envelope that opens only with the right private key, for its config and field.

    fm1:<kid>:<eph>:<box>

`fm1` names this format. `kid` is the key id of the sealing key pair (16 lowercase hex chars: the
start of sha256 over the raw 32-byte X25519 public key). `eph` is the sender's ephemeral X25519
public key and `box` is the 12-byte nonce followed by the AES-256-GCM ciphertext and tag, both
unpadded base64url. The AES key comes from HKDF-SHA256 over the X25519 shared secret, with `eph`
and the recipient's public key bound into HKDF's info; the associated data is
`"<config key>/<field>"`, so a value altered or moved to another config or field does not open.
Messages name the config key and field, never the value.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fidesmail.core.config_keys import KEY_PATTERN
from fidesmail.sealing.keys import KeyPair, key_id_of, raw_public

# What a secret field's name may be. Which names a config takes is its provider's business (providers/
# catalog.py, checked by the tree's loader and the API): sealing only keeps names that are safe in a file.
FIELD_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
ENVELOPE_PREFIX = "fm1"
TAMPERED = "sealed value was altered or belongs to another config or field"

_KID_RE = re.compile(r"[0-9a-f]{16}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_HKDF_INFO = b"fidesmail sealed secret fm1\x00"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_RAW_KEY_SIZE = 32


class SealError(Exception):
    """A value cannot be sealed or opened; the message names config and field, never the value."""

    def __init__(self, config_key: str, field: str, reason: str):
        super().__init__(f"{config_key}/{field}: {reason}")
        self.config_key = config_key
        self.field = field
        self.reason = reason


def _b64encode(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict unpadded base64url: None unless `text` is the one canonical encoding of its bytes."""
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Non-canonical spare bits would let a changed character still open.
    return data if _b64encode(data) == text else None


def _aes_key(shared: bytes, eph_raw: bytes, recipient_raw: bytes) -> bytes:
    """The AES-256 key of one envelope, bound to both public keys."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO + eph_raw + recipient_raw).derive(
        shared
    )


def _associated_data(config_key: str, field: str) -> bytes:
    """What ties a value to its place: a value moved elsewhere fails to open."""
    return f"{config_key}/{field}".encode()


def check_place(config_key: Any, field: Any) -> None:
    """Refuse a place a sealed file could not hold."""
    if not isinstance(config_key, str) or not KEY_PATTERN.fullmatch(config_key):
        raise SealError(str(config_key)[:100], str(field)[:100], "config key must match " + KEY_PATTERN.pattern)
    if not isinstance(field, str) or not FIELD_PATTERN.fullmatch(field):
        raise SealError(config_key, str(field)[:100], f"not a secret field name (must match {FIELD_PATTERN.pattern})")


def seal(public_key: X25519PublicKey, config_key: str, field: str, value: str) -> str:
    """Seal `value` for `config_key`/`field` with the public key alone."""
    check_place(config_key, field)
    if not isinstance(value, str):
        raise SealError(config_key, field, f"value to seal must be text, not {type(value).__name__}")
    ephemeral = X25519PrivateKey.generate()
    eph_raw, recipient_raw = raw_public(ephemeral.public_key()), raw_public(public_key)
    key = _aes_key(ephemeral.exchange(public_key), eph_raw, recipient_raw)
    nonce = secrets.token_bytes(_NONCE_SIZE)
    box = nonce + AESGCM(key).encrypt(nonce, value.encode("utf-8"), _associated_data(config_key, field))
    return ":".join((ENVELOPE_PREFIX, key_id_of(public_key), _b64encode(eph_raw), _b64encode(box)))


@dataclass(frozen=True)
class Envelope:
    """The parts of a well-formed envelope."""

    key_id: str
    eph_raw: bytes
    box: bytes


def parse(envelope: Any) -> Envelope | str:
    """The parts of an envelope, or why it is not one (the reason never quotes it)."""
    if not isinstance(envelope, str):
        return f"sealed value must be text, not {type(envelope).__name__}"
    parts = envelope.split(":")
    if parts[0] != ENVELOPE_PREFIX:
        return f"not a sealed value (expected {ENVELOPE_PREFIX}:<key id>:...; seal it with `flask secrets seal`)"
    if len(parts) != 4:
        return "sealed value is truncated or malformed (expected 4 parts separated by ':')"
    _, kid, eph_text, box_text = parts
    eph_raw, box = _b64decode(eph_text), _b64decode(box_text)
    if not _KID_RE.fullmatch(kid) or eph_raw is None or box is None or len(eph_raw) != _RAW_KEY_SIZE:
        return "sealed value is truncated or malformed"
    if len(box) < _NONCE_SIZE + _TAG_SIZE:
        return "sealed value is truncated or malformed (too short)"
    return Envelope(kid, eph_raw, box)


def key_id(envelope: str) -> str | None:
    """The key id an envelope was sealed for, or None when it is not an envelope."""
    parsed = parse(envelope)
    return parsed.key_id if isinstance(parsed, Envelope) else None


def open_sealed(keyring: Sequence[KeyPair], config_key: str, field: str, envelope: str) -> str:
    """Open one value sealed for `config_key`/`field`; SealError on anything wrong."""
    parsed = parse(envelope)
    if isinstance(parsed, str):
        raise SealError(config_key, field, parsed)
    pair = next((pair for pair in keyring if pair.key_id == parsed.key_id), None)
    if pair is None:
        raise SealError(
            config_key, field,
            f"sealed for another key pair (key id {parsed.key_id}, not in the private keyring)",
        )
    try:
        eph = X25519PublicKey.from_public_bytes(parsed.eph_raw)
        shared = pair.private_key.exchange(eph)  # ValueError on a low-order (forged) point
        key = _aes_key(shared, parsed.eph_raw, raw_public(pair.public_key))
        nonce, ciphertext = parsed.box[:_NONCE_SIZE], parsed.box[_NONCE_SIZE:]
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _associated_data(config_key, field))
        return plaintext.decode("utf-8")
    except (InvalidTag, ValueError):
        raise SealError(config_key, field, TAMPERED) from None
