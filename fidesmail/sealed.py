"""Sealed secrets: seal with the public key alone, open only with the private keyring.

Formats (all text, all versioned):

- Envelope, one ASCII string per value::

      fm1:<kid>:<eph>:<box>

  ``fm1`` names this format. ``kid`` is the key id of the sealing key pair (16 lowercase
  hex chars: the start of sha256 over the raw 32-byte X25519 public key). ``eph`` is the
  sender's ephemeral X25519 public key and ``box`` is the 12-byte nonce followed by the
  AES-256-GCM ciphertext and tag, both unpadded base64url. The AES key comes from
  HKDF-SHA256 over the X25519 shared secret, with ``eph`` and the recipient's public key
  bound into HKDF's info; the associated data is ``"<config key>/<field>"``, so a value
  altered or moved to another config or field does not open.

- ``config/secrets.sealed.yaml`` (safe to commit; keys in the clear, values sealed)::

      version: 1
      secrets:
        my_mailgun:
          mailgun_api_key: fm1:...

- ``config/seal.pub`` (safe to commit): ``#`` comment lines naming the key id, then the
  X25519 public key as a PEM ``PUBLIC KEY`` block (SubjectPublicKeyInfo).

- The private keyring (default ``<instance dir>/seal.key``, mode 0600): ``#`` comment lines
  and one PEM ``PRIVATE KEY`` block (unencrypted PKCS#8) per key pair, newest first, each
  preceded by a ``# key id ...`` comment. Every key still needed to open a value stays in it.

No secret value and no private key ever appears in an exception message, a log line or a
repr: messages name the config key, the field and the key file path only.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import fsutil, yamlio
from .problems import Problem
from .schemas import KEY_PATTERN

logger = logging.getLogger("fidesmail.sealed")

SECRET_FIELDS = ("mailgun_api_key",)
FILE_VERSION = 1
SUPPORTED_VERSIONS = (FILE_VERSION,)
# The contract's pattern; always fullmatch it, since `$` alone lets a trailing "\n" through.
CONFIG_KEY_RE = KEY_PATTERN  # the config schema's rule: a secret belongs to a config key

ENVELOPE_PREFIX = "fm1"
_KID_RE = re.compile(r"[0-9a-f]{16}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_HKDF_INFO = b"fidesmail sealed secret fm1\x00"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_RAW_KEY_SIZE = 32
_MAX_KEY_FILE_SIZE = 1 << 20
_PEM_BLOCK_RE = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n(?P<body>.*?)-----END (?P=label)-----", re.DOTALL
)

_KEYRING_HEADER = (
    "# fidesmail private sealing keyring (X25519), newest key first.\n"
    "# Keep it secret (mode 0600), never in the config tree. Old keys open values sealed before a rotation.\n"
)

TAMPERED = "sealed value was altered or belongs to another config or field"


class SealError(Exception):
    """A value cannot be sealed or opened; the message names config and field, never the value."""

    def __init__(self, config_key: str, field: str, reason: str):
        super().__init__(f"{config_key}/{field}: {reason}")
        self.config_key = config_key
        self.field = field
        self.reason = reason


class KeyringError(Exception):
    """A key file is missing, unreadable or not a key; the message names the path, never key bytes."""

    def __init__(self, path: os.PathLike | str, reason: str):
        super().__init__(reason)
        self.path = str(path)


# --- keys ---------------------------------------------------------------------------------


def _raw_public(public_key: X25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: X25519PublicKey) -> str:
    """The key id envelopes name: 16 hex chars of sha256 over the raw public key."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


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


def dump_public_key(public_key: X25519PublicKey) -> bytes:
    """The text of `seal.pub`: comment lines, then a PEM public key."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = (
        f"# fidesmail public sealing key (X25519), key id {key_id_of(public_key)}\n"
        "# Safe to commit. Seal a value with: flask secrets seal CONFIG_KEY FIELD < value\n"
    )
    return header.encode("ascii") + pem


def _read_key_file(path: Path, what: str) -> tuple[str, os.stat_result]:
    """The text of a key file and its stat; KeyringError naming the path otherwise."""
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
            data = handle.read(_MAX_KEY_FILE_SIZE + 1)
        except OSError as exc:
            raise KeyringError(path, f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        return data.decode("ascii"), info
    except UnicodeDecodeError:
        raise KeyringError(path, f"{what} {path} is not a key file (not ASCII text)") from None


def _pem_blocks(text: str, path: Path, what: str) -> list[tuple[str, bytes]]:
    """The (label, PEM bytes) blocks of a key file; anything but comments between them is refused."""
    blocks = [(m["label"], m.group(0).encode("ascii") + b"\n") for m in _PEM_BLOCK_RE.finditer(text)]
    # Blank out the blocks, keeping their lines, so a stray line can be reported by number.
    rest = _PEM_BLOCK_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for number, line in enumerate(rest.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            # Name the line without quoting it: it may be part of a key.
            raise KeyringError(path, f"{what} {path} is not a key file (line {number} is not part of a key)")
    if not blocks:
        raise KeyringError(path, f"{what} {path} is not a key file (no PEM key block in it)")
    return blocks


def load_public_key(path: os.PathLike | str) -> X25519PublicKey:
    """Read `seal.pub`; KeyringError naming the path when it is missing or not an X25519 public key."""
    path = Path(path)
    what = "public sealing key file"
    text, _ = _read_key_file(path, what)
    blocks = _pem_blocks(text, path, what)
    if len(blocks) != 1 or blocks[0][0] != "PUBLIC KEY":
        raise KeyringError(path, f"{what} {path} must hold exactly one PEM PUBLIC KEY block")
    try:
        key = serialization.load_pem_public_key(blocks[0][1])
    except (ValueError, TypeError):
        raise KeyringError(path, f"{what} {path} holds a public key that cannot be read") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyringError(path, f"{what} {path} holds a public key that is not X25519")
    return key


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
    what = "private sealing key file"
    text, info = _read_key_file(path, what)
    if info.st_mode & 0o077:
        logger.warning(
            "%s %s can be read by group or others (mode %04o); run: chmod 600 %s",
            what, path, stat.S_IMODE(info.st_mode), path,
        )
    pairs: dict[str, KeyPair] = {}
    for number, (label, pem) in enumerate(_pem_blocks(text, path, what), start=1):
        if label != "PRIVATE KEY":
            raise KeyringError(path, f"{what} {path}: key {number} is not a PEM PRIVATE KEY block")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise KeyringError(path, f"{what} {path}: key {number} cannot be read") from None
        if not isinstance(key, X25519PrivateKey):
            raise KeyringError(path, f"{what} {path}: key {number} is not an X25519 key")
        pair = KeyPair.from_private_key(key)
        pairs.setdefault(pair.key_id, pair)  # a key listed twice is harmless; keep its newest place
    return tuple(pairs.values())


def drop_old(keyring: Sequence[KeyPair]) -> tuple[KeyPair, ...]:
    """The keyring with only its newest key pair (after a rotation, once nothing needs the old ones)."""
    return tuple(keyring[:1])


def ensure_keys(
    keyring_path: os.PathLike | str, public_key_path: os.PathLike | str, log: logging.Logger | logging.LoggerAdapter
) -> None:
    """On start: create the keyring when absent, and make `seal.pub` match its newest key."""
    keyring_path, public_key_path = Path(keyring_path), Path(public_key_path)
    if not os.path.lexists(keyring_path) and os.path.lexists(public_key_path):
        # seal.pub is committed but its private key is not here (an unmounted Secret, a new
        # machine): a fresh key pair would strand every sealed value, so make none.
        log.error("private sealing key file %s is missing (%s exists): sealed secrets cannot be opened "
                  "until it is restored", keyring_path, public_key_path)
        return
    if not os.path.lexists(keyring_path):
        pair = generate_keypair()
        try:
            created = fsutil.write_private_file(keyring_path, dump_keyring([pair]))
        except OSError as exc:
            log.error("cannot create private sealing key file %s: %s", keyring_path, exc.strerror)
            return
        if created:
            log.info("generated private sealing key %s into %s (mode 0600)", pair.key_id, keyring_path)
    try:
        keyring = load_keyring(keyring_path)  # also when another process just created it
    except KeyringError as exc:
        # Never replace it: it may hold the only key that opens the committed values.
        log.error("%s; left as it is, sealed secrets cannot be opened", exc)
        return
    _ensure_public_key(keyring, public_key_path, log)


def _ensure_public_key(keyring: Sequence[KeyPair], path: Path, log: logging.Logger | logging.LoggerAdapter) -> None:
    """Write `seal.pub` for the newest key unless it already holds it; warn when it cannot."""
    newest = keyring[0]
    try:
        current = key_id_of(load_public_key(path))
    except KeyringError:
        current = None
    if current == newest.key_id:
        return
    if current is not None and current not in {pair.key_id for pair in keyring}:
        log.warning(
            "public sealing key file %s holds key %s, which is not in the private keyring: "
            "values sealed with it cannot be opened here", path, current,
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(path, dump_public_key(newest.public_key), 0o644)
    except OSError as exc:
        log.warning(
            "cannot write public sealing key file %s (%s); `flask secrets seal` needs it (key %s)",
            path, exc.strerror, newest.key_id,
        )
        return
    log.info("wrote public sealing key %s to %s", newest.key_id, path)


# --- envelopes ----------------------------------------------------------------------------


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


def _check_place(config_key: Any, field: Any) -> None:
    """Refuse a place a sealed file could not hold."""
    if not isinstance(config_key, str) or not CONFIG_KEY_RE.fullmatch(config_key):
        raise SealError(str(config_key)[:100], str(field)[:100], "config key must match " + CONFIG_KEY_RE.pattern)
    if field not in SECRET_FIELDS:
        raise SealError(config_key, str(field)[:100], f"unknown secret field (known: {', '.join(SECRET_FIELDS)})")


def seal(public_key: X25519PublicKey, config_key: str, field: str, value: str) -> str:
    """Seal `value` for `config_key`/`field` with the public key alone."""
    _check_place(config_key, field)
    if not isinstance(value, str):
        raise SealError(config_key, field, f"value to seal must be text, not {type(value).__name__}")
    ephemeral = X25519PrivateKey.generate()
    eph_raw, recipient_raw = _raw_public(ephemeral.public_key()), _raw_public(public_key)
    key = _aes_key(ephemeral.exchange(public_key), eph_raw, recipient_raw)
    nonce = secrets.token_bytes(_NONCE_SIZE)
    box = nonce + AESGCM(key).encrypt(nonce, value.encode("utf-8"), _associated_data(config_key, field))
    return ":".join((ENVELOPE_PREFIX, key_id_of(public_key), _b64encode(eph_raw), _b64encode(box)))


@dataclass(frozen=True)
class _Envelope:
    key_id: str
    eph_raw: bytes
    box: bytes


def _parse_envelope(envelope: Any) -> _Envelope | str:
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
    return _Envelope(kid, eph_raw, box)


def envelope_key_id(envelope: Any) -> str | None:
    """The key id an envelope was sealed for, or None when it is not an envelope."""
    parsed = _parse_envelope(envelope)
    return parsed.key_id if isinstance(parsed, _Envelope) else None


def open_sealed(keyring: Sequence[KeyPair], config_key: str, field: str, envelope: str) -> str:
    """Open one value sealed for `config_key`/`field`; SealError on anything wrong."""
    parsed = _parse_envelope(envelope)
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
        key = _aes_key(shared, parsed.eph_raw, _raw_public(pair.public_key))
        nonce, ciphertext = parsed.box[:_NONCE_SIZE], parsed.box[_NONCE_SIZE:]
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _associated_data(config_key, field))
        return plaintext.decode("utf-8")
    except (InvalidTag, ValueError):
        raise SealError(config_key, field, TAMPERED) from None


# --- the sealed file ----------------------------------------------------------------------


def _freeze(entries: Mapping[str, Mapping[str, str]]) -> Mapping[str, Mapping[str, str]]:
    """Read-only copies, sorted, without configs that have no field."""
    return MappingProxyType(
        {key: MappingProxyType(dict(sorted(fields.items()))) for key, fields in sorted(entries.items()) if fields}
    )


@dataclass(frozen=True)
class SealedFile:
    """The parsed `secrets.sealed.yaml`: config key -> field -> envelope (immutable)."""

    entries: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    version: int = FILE_VERSION
    # Where each value was in the file, for problems; not part of the value.
    lines: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", _freeze(self.entries))
        object.__setattr__(self, "lines", MappingProxyType(dict(self.lines)))

    def fields_of(self, config_key: str) -> frozenset[str]:
        """The secret fields set for a config."""
        return frozenset(self.entries.get(config_key, ()))

    def get(self, config_key: str, field: str) -> str | None:
        """The envelope of one field, or None."""
        return self.entries.get(config_key, {}).get(field)

    def with_value(self, config_key: str, field: str, envelope: str) -> SealedFile:
        """A copy with one envelope set."""
        entries = {key: dict(fields) for key, fields in self.entries.items()}
        entries.setdefault(config_key, {})[field] = envelope
        lines = {place: line for place, line in self.lines.items() if place != (config_key, field)}
        return SealedFile(entries, self.version, lines)

    def without_config(self, config_key: str) -> SealedFile:
        """A copy without any secret of one config."""
        entries = {key: fields for key, fields in self.entries.items() if key != config_key}
        lines = {place: line for place, line in self.lines.items() if place[0] != config_key}
        return SealedFile(entries, self.version, lines)

    def places(self) -> Iterable[tuple[str, str, str]]:
        """Every (config key, field, envelope), sorted."""
        for config_key, fields in self.entries.items():
            for name, envelope in fields.items():
                yield config_key, name, envelope


def _is_blank(data: bytes) -> bool:
    """True for a file of nothing but blank and comment lines."""
    return all(not line.strip() or line.lstrip().startswith(b"#") for line in data.splitlines())


def parse_sealed_file(data: bytes, path_label: str = "secrets.sealed.yaml") -> tuple[SealedFile, list[Problem]]:
    """Check the structure (no decryption); keep every good entry, list a Problem per bad one."""
    if _is_blank(data):
        return SealedFile(), []  # an empty file means no secrets yet
    try:
        doc, locate = yamlio.load(data)
    except yamlio.YAMLProblem as exc:
        return SealedFile(), [Problem(path_label, exc.line, exc.message)]
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        problems.append(Problem(path_label, locate(path), message))

    sealed = _parse_document(doc, locate, problem)
    return sealed, sorted(problems)


def _parse_document(doc: Any, locate, problem) -> SealedFile:
    """The good part of a loaded document; `problem(path, message)` hears about the rest."""
    if not isinstance(doc, dict):
        problem((), "must be a mapping with `version` and `secrets`")
        return SealedFile()
    for key in doc:
        if key not in ("version", "secrets"):
            problem((key,), f"unknown key {str(key)[:100]!r} (expected `version` and `secrets`)")
    if "version" not in doc:
        problem((), f"`version` is missing (expected version: {FILE_VERSION})")
        return SealedFile()
    version = doc["version"]
    if type(version) is not int or version not in SUPPORTED_VERSIONS:  # `type`: YAML's true is not 1
        problem(("version",), f"unsupported version {repr(version)[:40]} (this fidesmail reads version {FILE_VERSION})")
        return SealedFile()
    section = doc.get("secrets")
    if section is None:
        return SealedFile(version=version)
    if not isinstance(section, dict):
        problem(("secrets",), "`secrets` must map config keys to their sealed fields")
        return SealedFile(version=version)
    entries, lines = _parse_entries(section, locate, problem)
    return SealedFile(entries, version, lines)


def _parse_entries(section: dict, locate, problem) -> tuple[dict, dict]:
    """The good entries of the `secrets` mapping, and the line of each."""
    entries: dict[str, dict[str, str]] = {}
    lines: dict[tuple[str, str], int] = {}
    for config_key, fields in section.items():
        where = ("secrets", config_key)
        if not isinstance(config_key, str) or not CONFIG_KEY_RE.fullmatch(config_key):
            problem(where, f"config key {str(config_key)[:100]!r} must match {CONFIG_KEY_RE.pattern}")
            continue
        if not isinstance(fields, dict):
            problem(where, f"{config_key}: must map secret field names to sealed values")
            continue
        for name, envelope in fields.items():
            if name not in SECRET_FIELDS:
                problem(where + (name,), f"{config_key}/{str(name)[:100]}: unknown secret field "
                                         f"(known: {', '.join(SECRET_FIELDS)})")
                continue
            parsed = _parse_envelope(envelope)
            if isinstance(parsed, str):
                problem(where + (name,), f"{config_key}/{name}: {parsed}")
                continue
            entries.setdefault(config_key, {})[name] = envelope
            lines[(config_key, name)] = locate(where + (name,))
    return entries, lines


def dump_sealed_file(sealed: SealedFile) -> bytes:
    """The file's text: keys sorted, read back identically by `yaml.safe_load` and `parse_sealed_file`."""
    doc = {
        "version": sealed.version,
        "secrets": {key: dict(sorted(fields.items())) for key, fields in sorted(sealed.entries.items())},
    }
    header = (
        b"# fidesmail sealed secrets: safe to commit; only the service's private key opens a value.\n"
        b"# Add or replace one with: flask secrets seal CONFIG_KEY FIELD < value\n"
    )
    return header + yamlio.dump(doc)


def check_opens(
    sealed: SealedFile, keyring: Sequence[KeyPair], path_label: str = "secrets.sealed.yaml"
) -> list[Problem]:
    """A Problem for every value the keyring cannot open."""
    problems = []
    for config_key, name, envelope in sealed.places():
        try:
            open_sealed(keyring, config_key, name, envelope)
        except SealError as exc:
            problems.append(Problem(path_label, sealed.lines.get((config_key, name), 1), str(exc)))
    return problems


def rotate(sealed: SealedFile, keyring: Sequence[KeyPair]) -> tuple[SealedFile, tuple[KeyPair, ...]]:
    """Re-seal every value under a new key pair; return the new file and the keyring with it first."""
    new = generate_keypair()
    entries: dict[str, dict[str, str]] = {}
    for config_key, name, envelope in sealed.places():
        # All or nothing: one value that does not open stops the rotation (SealError).
        plaintext = open_sealed(keyring, config_key, name, envelope)
        entries.setdefault(config_key, {})[name] = seal(new.public_key, config_key, name, plaintext)
    return SealedFile(entries, FILE_VERSION), (new, *keyring)
