"""Sealing key pairs: the private keyring (instance dir, mode 0600) and the public `seal.pub` (config tree).

- `seal.pub` (safe to commit): `#` comment lines naming the key id, then the X25519 public key as a
  PEM `PUBLIC KEY` block (SubjectPublicKeyInfo).
- The private keyring (default `<instance dir>/seal.key`, mode 0600): `#` comment lines and one PEM
  `PRIVATE KEY` block (unencrypted PKCS#8) per key pair, newest first, each preceded by a
  `# key id ...` comment. Every key still needed to open a value stays in it.

Messages name files and key ids, never key bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from fidesmail.core import fsutil

logger = logging.getLogger("fidesmail.sealing")

_MAX_KEY_FILE_SIZE = 1 << 20
_PEM_BLOCK_RE = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n(?P<body>.*?)-----END (?P=label)-----", re.DOTALL
)
_KEYRING_HEADER = (
    "# fidesmail private sealing keyring (X25519), newest key first.\n"
    "# Keep it secret (mode 0600), never in the config tree. Old keys open values sealed before a rotation.\n"
)
PUBLIC_KEY_WHAT = "public sealing key file"
KEYRING_WHAT = "private sealing key file"


class KeyringError(Exception):
    """A key file is missing, unreadable or not a key; the message names the path, never key bytes."""

    def __init__(self, path: os.PathLike | str, reason: str):
        super().__init__(reason)
        self.path = str(path)


def raw_public(public_key: X25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: X25519PublicKey) -> str:
    """The key id envelopes name: 16 hex chars of sha256 over the raw public key."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


@dataclass(frozen=True, repr=False)
class KeyPair:
    """One sealing key pair; its repr shows the key id only."""

    key_id: str
    private_key: X25519PrivateKey = dataclasses.field(compare=False)

    def __post_init__(self) -> None:
        # A key id that does not belong to the key would send values to the wrong key.
        if self.key_id != key_id_of(self.private_key.public_key()):
            raise ValueError(f"key id {self.key_id!r} does not belong to this private key")

    @classmethod
    def from_private_key(cls, private_key: X25519PrivateKey) -> KeyPair:
        """Wrap a private key with its key id."""
        return cls(key_id_of(private_key.public_key()), private_key)

    @property
    def public_key(self) -> X25519PublicKey:
        """The public half, the only thing sealing needs."""
        return self.private_key.public_key()

    def __repr__(self) -> str:
        return f"KeyPair(key_id={self.key_id!r})"


def generate_keypair() -> KeyPair:
    """A fresh random key pair."""
    return KeyPair.from_private_key(X25519PrivateKey.generate())


# --- seal.pub -------------------------------------------------------------------------------


def dump_public_key(public_key: X25519PublicKey) -> bytes:
    """The text of `seal.pub`: comment lines, then a PEM public key."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = (
        f"# fidesmail public sealing key (X25519), key id {key_id_of(public_key)}\n"
        "# Safe to commit. Seal a value with: flask secrets seal CONFIG_KEY FIELD < value\n"
    )
    return header.encode("ascii") + pem


def parse_public_key(data: bytes, label: str) -> X25519PublicKey:
    """`seal.pub`'s bytes as a public key; KeyringError naming `label` when they are not one."""
    text = _ascii(data, label, PUBLIC_KEY_WHAT)
    blocks = _pem_blocks(text, label, PUBLIC_KEY_WHAT)
    if len(blocks) != 1 or blocks[0][0] != "PUBLIC KEY":
        raise KeyringError(label, f"{PUBLIC_KEY_WHAT} {label} must hold exactly one PEM PUBLIC KEY block")
    try:
        key = serialization.load_pem_public_key(blocks[0][1])
    except (ValueError, TypeError):
        raise KeyringError(label, f"{PUBLIC_KEY_WHAT} {label} holds a public key that cannot be read") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyringError(label, f"{PUBLIC_KEY_WHAT} {label} holds a public key that is not X25519")
    return key


def load_public_key(path: os.PathLike | str) -> X25519PublicKey:
    """Read a public key file outside the config tree (inside it, the tree's loader reads `seal.pub`)."""
    data, _ = _read_key_file(Path(path), PUBLIC_KEY_WHAT)
    return parse_public_key(data, str(path))


# --- the private keyring --------------------------------------------------------------------


def dump_keyring(pairs: Iterable[KeyPair]) -> bytes:
    """The text of the private keyring: every key pair as PKCS#8 PEM, in the given order (newest first)."""
    parts = [_KEYRING_HEADER]
    for pair in pairs:
        pem = pair.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        parts.append(f"# key id {pair.key_id}\n{pem.decode('ascii')}")
    return "".join(parts).encode("ascii")


def load_keyring(path: os.PathLike | str) -> tuple[KeyPair, ...]:
    """Read the private keyring, newest first; KeyringError naming the path when it is unusable."""
    path = Path(path)
    data, info = _read_key_file(path, KEYRING_WHAT)
    fsutil.warn_if_exposed(path, KEYRING_WHAT, logger, info)
    pairs: dict[str, KeyPair] = {}
    text = _ascii(data, str(path), KEYRING_WHAT)
    for number, (label, pem) in enumerate(_pem_blocks(text, str(path), KEYRING_WHAT), start=1):
        if label != "PRIVATE KEY":
            raise KeyringError(path, f"{KEYRING_WHAT} {path}: key {number} is not a PEM PRIVATE KEY block")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise KeyringError(path, f"{KEYRING_WHAT} {path}: key {number} cannot be read") from None
        if not isinstance(key, X25519PrivateKey):
            raise KeyringError(path, f"{KEYRING_WHAT} {path}: key {number} is not an X25519 key")
        pair = KeyPair.from_private_key(key)
        pairs.setdefault(pair.key_id, pair)  # a key listed twice is harmless; keep its newest place
    return tuple(pairs.values())


def mismatch(public_key_id: str | None, keyring: tuple[KeyPair, ...]) -> str | None:
    """Why `seal.pub` must not be sealed to, or None when it is the public half of the newest key."""
    if public_key_id is None or not keyring or public_key_id == keyring[0].key_id:
        return None
    return (f"seal.pub holds key {public_key_id}, but the newest key of the private keyring is "
            f"{keyring[0].key_id}: nothing is sealed until they match (restore the team's seal.pub, "
            "or mount the keyring that belongs to it)")


# --- reading key files ------------------------------------------------------------------------


def _read_key_file(path: Path, what: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a key file and its stat; KeyringError naming the path otherwise."""
    try:
        # O_NONBLOCK: a FIFO put in the key's place must not hang the start.
        handle = os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb")
    except FileNotFoundError:
        raise KeyringError(path, f"{what} {path} is missing") from None
    except PermissionError:
        raise KeyringError(path, f"{what} {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise KeyringError(path, f"{what} {path} cannot be read: {exc.strerror}") from None
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyringError(path, f"{what} {path} is not a regular file")
        if info.st_size > _MAX_KEY_FILE_SIZE:
            raise KeyringError(path, f"{what} {path} is not a key file (too large)")
        try:
            return handle.read(_MAX_KEY_FILE_SIZE + 1), info
        except OSError as exc:
            raise KeyringError(path, f"{what} {path} cannot be read: {exc.strerror}") from None


def _ascii(data: bytes, label: str, what: str) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyringError(label, f"{what} {label} is not a key file (not ASCII text)") from None


def _pem_blocks(text: str, label: str, what: str) -> list[tuple[str, bytes]]:
    """The (label, PEM bytes) blocks of a key file; anything but comments between them is refused."""
    blocks = [(m["label"], m.group(0).encode("ascii") + b"\n") for m in _PEM_BLOCK_RE.finditer(text)]
    # Blank out the blocks, keeping their lines, so a stray line can be reported by number.
    rest = _PEM_BLOCK_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for number, line in enumerate(rest.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            # Name the line without quoting it: it may be part of a key.
            raise KeyringError(label, f"{what} {label} is not a key file (line {number} is not part of a key)")
    if not blocks:
        raise KeyringError(label, f"{what} {label} is not a key file (no PEM key block in it)")
    return blocks
