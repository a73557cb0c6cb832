"""The private keyring of this process, re-read only when its file changes, and the one place values are opened."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cachetools import TTLCache

from fidesmail.core.problems import Problem
from fidesmail.sealing import envelope, keys
from fidesmail.sealing.sealed_file import FILE_NAME, SealedFile

# How long an opened value is kept for the next send of its config: a burst of sends (a queue drained)
# opens the envelope (X25519, HKDF, AES-GCM) once, not once per message. A changed sealed value or
# keyring is opened afresh at once; the plaintext stays in this process's memory no longer than this.
OPENED_SECONDS = 2.0


class Vault:
    """Opens sealed values with the keyring at `keyring_path`."""

    def __init__(self, keyring_path: Path, timer: Callable[[], float] = time.monotonic):
        self.keyring_path = Path(keyring_path)
        self._lock = threading.Lock()
        self._cached: tuple[tuple, tuple[keys.KeyPair, ...]] | None = None
        # (config, field) -> (sealed value, keyring, plaintext), for OPENED_SECONDS at most
        self._opened: TTLCache = TTLCache(maxsize=4096, ttl=OPENED_SECONDS, timer=timer)

    def keyring(self) -> tuple[keys.KeyPair, ...]:
        """The keyring, newest first; KeyringError (naming the file) when it cannot be used."""
        try:
            st = os.stat(self.keyring_path)
        except FileNotFoundError:
            raise keys.KeyringError(self.keyring_path, f"{keys.KEYRING_WHAT} {self.keyring_path} "
                                                       "is missing") from None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if self._cached is None or self._cached[0] != signature:
                self._cached = (signature, keys.load_keyring(self.keyring_path))
            return self._cached[1]

    def newest_key_id(self) -> str | None:
        """The key id new values must be sealed to, or None when the keyring cannot be read."""
        try:
            keyring = self.keyring()
        except keys.KeyringError:
            return None
        return keyring[0].key_id if keyring else None

    def sealing_problem(self, public_key_id: str | None) -> str | None:
        """Why nothing can be sealed or opened right now (seal.pub missing, keyring unusable, the two not a
        pair), or None."""
        if public_key_id is None:
            return "seal.pub is missing or unreadable: nothing can be sealed"
        try:
            keyring = self.keyring()
        except keys.KeyringError as exc:
            return str(exc)
        return keys.mismatch(public_key_id, keyring)

    def open(self, secrets_file: SealedFile, config_key: str, field: str) -> str | None:
        """The plaintext of one field, or None when it is not set; SealError or KeyringError."""
        sealed_value = secrets_file.get(config_key, field)
        if sealed_value is None:
            return None
        keyring = self.keyring()
        with self._lock:
            kept = self._opened.get((config_key, field))
        if kept is not None and kept[0] == sealed_value and kept[1] is keyring:
            return kept[2]
        value = open_usable(keyring, config_key, field, sealed_value)
        with self._lock:
            self._opened[(config_key, field)] = (sealed_value, keyring, value)
        return value


def is_usable(value: str) -> bool:
    """True for what can be a secret: a non-empty line of printable ASCII, as Mailgun keys are.

    Anything else cannot travel in an HTTP Basic header: requests raises UnicodeEncodeError for
    characters outside Latin-1 and InvalidHeader for a line break, after the send was begun."""
    return bool(value.strip()) and value.isascii() and value.isprintable()


def open_usable(keyring, config_key: str, field: str, sealed_value: str) -> str:
    """Open one value and refuse it (SealError) unless it is usable as a secret."""
    value = envelope.open_sealed(keyring, config_key, field, sealed_value)
    if not is_usable(value):
        raise envelope.SealError(config_key, field, "opens, but is not a usable key: it must be a non-empty line of "
                                                    "printable ASCII characters (seal it again)")
    return value


def check_opens(secrets_file: SealedFile, keyring, path_label: str = FILE_NAME) -> list[Problem]:
    """A Problem for every value the keyring cannot open, or that opens to something no key can be."""
    problems = []
    for config_key, name, sealed_value in secrets_file.places():
        try:
            open_usable(keyring, config_key, name, sealed_value)
        except envelope.SealError as exc:
            problems.append(Problem(path_label, secrets_file.lines.get((config_key, name), 1), str(exc)))
    return problems


def check_sealed_to(secrets_file: SealedFile, public_key_id: str, path_label: str = FILE_NAME) -> list[Problem]:
    """A Problem for every value not sealed to `public_key_id` (what can be proved without the private key)."""
    problems = []
    for config_key, name, sealed_value in secrets_file.places():
        value_key_id = envelope.key_id(sealed_value)
        if value_key_id != public_key_id:
            problems.append(Problem(path_label, secrets_file.lines.get((config_key, name), 1),
                                    f"{config_key}/{name}: sealed to key {value_key_id}, not to seal.pub's key "
                                    f"{public_key_id}: the service may not be able to open it (seal it again "
                                    "with `flask secrets seal`, which uses seal.pub alone)"))
    return problems
