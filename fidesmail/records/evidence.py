"""Signed evidence bundles: every record of one reference, in canonical JSON, signed with Ed25519 (section 17).

A bundle is data, then a signature: `bundle` holds the records as GET /messages/{id} serves them (their
attempts, their events with the providers' signatures, their content digests) and a SHA-256 digest of
each record's canonical JSON; `signature` is an Ed25519 signature over the canonical bytes of
`bundle`, under the service's evidence key (`evidence.key` in the instance dir). Anyone holding the
public key (GET /api/v1/email/evidence-key) can check it offline; the per-record digests name the
record that was altered. docs/evidence.md is the format for third parties.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fidesmail.core import fsutil
from fidesmail.records import canonical

log = logging.getLogger("fidesmail.records")

EVIDENCE_KEY_FILE = "evidence.key"
FORMAT = "fidesmail-evidence/1"
ALGORITHM = "Ed25519"


class EvidenceKeyError(Exception):
    """The evidence key cannot be used (missing, unreadable, not an Ed25519 key); the message says which."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Names a public key: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(raw(public_key)).hexdigest()[:16]


def raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class EvidenceKey:
    """The Ed25519 key that signs bundles (instance dir, PKCS#8 PEM, mode 0600; replicas must share it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._private: Ed25519PrivateKey | None = None

    def ensure(self) -> None:
        """Create the key file unless it exists (at start of a serving process)."""
        pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
        if fsutil.create_file(self.path, pem, 0o600):
            log.info("generated the evidence key (signs evidence bundles) into %s (mode 0600); replicas must share "
                     "this file, or the bundles each signs verify with a different key", self.path)

    def private(self) -> Ed25519PrivateKey:
        if self._private is None:
            try:
                loaded = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
            except FileNotFoundError:
                raise EvidenceKeyError(f"the evidence key {self.path} does not exist (a serving process generates "
                                       "it at start; copy the service's key there to verify its bundles)") from None
            except OSError as exc:
                raise EvidenceKeyError(f"the evidence key {self.path} cannot be read: "
                                       f"{fsutil.describe_os_error(exc)}") from None
            except ValueError:
                raise EvidenceKeyError(f"the evidence key {self.path} is not a PEM private key") from None
            if not isinstance(loaded, Ed25519PrivateKey):
                raise EvidenceKeyError(f"the evidence key {self.path} is not an Ed25519 key")
            self._private = loaded
        return self._private

    def public(self) -> Ed25519PublicKey:
        return self.private().public_key()

    def published(self) -> dict:
        """The public half as GET /api/v1/email/evidence-key answers it."""
        public = self.public()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"algorithm": ALGORITHM, "key_id": key_id_of(public),
                "public_key": base64.b64encode(raw(public)).decode("ascii"), "public_key_pem": pem.decode("ascii")}


def digest(record: dict) -> str:
    """A record's SHA-256 (hex) over its canonical JSON: what a bundle lists to name an altered record."""
    return hashlib.sha256(canonical.dumps(record)).hexdigest()


def sign(key: EvidenceKey, reference: str, records: list[dict], generated_at: str) -> dict:
    """The signed bundle of `records` (oldest first, as the API serves them) for `reference`."""
    records = [canonical.integral(record) for record in records]
    public = key.public()
    bundle = {"format": FORMAT, "reference": reference, "generated_at": generated_at, "key_id": key_id_of(public),
              "records": records,
              "record_digests": [{"message_id": r.get("message_id"), "sha256": digest(r)} for r in records]}
    signature = key.private().sign(canonical.dumps(bundle))
    return {"bundle": bundle, "signature": {"algorithm": ALGORITHM, "key_id": key_id_of(public),
                                            "public_key": base64.b64encode(raw(public)).decode("ascii"),
                                            "value": base64.b64encode(signature).decode("ascii")}}


@dataclass
class Verdict:
    """What checking a bundle found: intact, or the altered records by message_id and what else is wrong."""

    intact: bool
    altered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def verify(document, public_key: Ed25519PublicKey) -> Verdict:
    """Check a bundle with `public_key` (the service's, never the one the bundle carries)."""
    if not (isinstance(document, dict) and isinstance(document.get("bundle"), dict)
            and isinstance(document.get("signature"), dict)):
        return Verdict(False, problems=["not an evidence bundle: no `bundle` and `signature` objects"])
    bundle, signature = document["bundle"], document["signature"]
    verdict = Verdict(False)
    _altered_records(bundle, verdict)
    try:
        value = base64.b64decode(signature.get("value", ""), validate=True)
        public_key.verify(value, canonical.dumps(bundle))
    except (InvalidSignature, binascii.Error, TypeError, canonical.NotCanonical):
        if not verdict.altered:
            verdict.problems.append(_why_not_signed(signature, public_key))
        return verdict
    verdict.intact = not verdict.altered and not verdict.problems
    return verdict


def _altered_records(bundle: dict, verdict: Verdict) -> None:
    """The records that do not match the digests the bundle lists (by the listed message_id)."""
    records, listed = bundle.get("records"), bundle.get("record_digests")
    if not isinstance(records, list) or not isinstance(listed, list):
        verdict.problems.append("the bundle has no `records` and `record_digests` lists")
        return
    for position, entry in enumerate(listed):
        name = entry.get("message_id") if isinstance(entry, dict) else None
        name = name if isinstance(name, str) else f"record {position + 1}"
        record = records[position] if position < len(records) else None
        try:
            same = record is not None and isinstance(entry, dict) and digest(record) == entry.get("sha256")
        except canonical.NotCanonical:
            same = False
        if not same:
            verdict.altered.append(name)
    if len(records) > len(listed):
        verdict.problems.append(f"{len(records) - len(listed)} record(s) more than the bundle lists")


def _why_not_signed(signature: dict, public_key: Ed25519PublicKey) -> str:
    ours = key_id_of(public_key)
    claimed = signature.get("public_key")
    if claimed != base64.b64encode(raw(public_key)).decode("ascii") or signature.get("key_id") != ours:
        return (f"not signed by this service's evidence key (key id {ours}); the bundle names key "
                f"{signature.get('key_id')!s}")
    return "the signature does not match the bundle: its header, digest list or signature was altered"
