"""Re-sealing every value under a new key pair, and dropping the old keys nothing needs any more."""

from __future__ import annotations

from collections.abc import Sequence

from fidesmail.sealing import envelope
from fidesmail.sealing.keys import KeyPair, generate_keypair
from fidesmail.sealing.sealed_file import FILE_VERSION, SealedFile


def rotate(sealed: SealedFile, keyring: Sequence[KeyPair]) -> tuple[SealedFile, tuple[KeyPair, ...]]:
    """Re-seal every value under a new key pair; return the new file and the keyring with it first."""
    new = generate_keypair()
    entries: dict[str, dict[str, str]] = {}
    for config_key, name, sealed_value in sealed.places():
        # All or nothing: one value that does not open stops the rotation (SealError).
        plaintext = envelope.open_sealed(keyring, config_key, name, sealed_value)
        entries.setdefault(config_key, {})[name] = envelope.seal(new.public_key, config_key, name, plaintext)
    return SealedFile(entries, FILE_VERSION), (new, *keyring)


def drop_unused(sealed: SealedFile, keyring: Sequence[KeyPair]) -> tuple[KeyPair, ...]:
    """The keyring without the old keys no value of `sealed` is sealed to (the newest key always stays)."""
    used = {envelope.key_id(sealed_value) for _, _, sealed_value in sealed.places()}
    return tuple(pair for index, pair in enumerate(keyring) if index == 0 or pair.key_id in used)
