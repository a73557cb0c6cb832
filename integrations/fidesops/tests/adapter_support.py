"""Paths and helpers shared by the adapter's tests (a module of its own: `conftest` is a name the repository's
tests/ uses too)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADAPTER = HERE.parent
REPO = ADAPTER.parent.parent
SIDECAR = REPO / "integrations" / "sidecar"  # what both adapters share (fidesmail_sidecar)
# The adapter itself, the package it depends on, fidesmail's test helpers (tests.support).
for path in (ADAPTER / "src", SIDECAR / "src", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.adapter_sidecar import sent_to  # noqa: E402, F401
from tests.support import free_port  # noqa: E402, F401
