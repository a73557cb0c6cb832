"""Opening sealed values with the private keyring, re-read only when its file changes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from . import sealed


class Vault:
    """The private keyring of this process, and the one place sealed values are opened."""

    def __init__(self, keyring_path: Path):
        self.keyring_path = Path(keyring_path)
        self._lock = threading.Lock()
        self._cached: tuple[tuple, tuple[sealed.KeyPair, ...]] | None = None

    def keyring(self) -> tuple[sealed.KeyPair, ...]:
        """The keyring, newest first; KeyringError (naming the file) when it cannot be used."""
        try:
            st = os.stat(self.keyring_path)
        except FileNotFoundError:
            raise sealed.KeyringError(self.keyring_path, f"private sealing key file {self.keyring_path} "
                                                         "is missing") from None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if self._cached is None or self._cached[0] != signature:
                self._cached = (signature, sealed.load_keyring(self.keyring_path))
            return self._cached[1]

    def open(self, secrets_file: sealed.SealedFile, config_key: str, field: str) -> str | None:
        """The plaintext of one field, or None when it is not set; SealError or KeyringError."""
        envelope = secrets_file.get(config_key, field)
        if envelope is None:
            return None
        return sealed.open_sealed(self.keyring(), config_key, field, envelope)
