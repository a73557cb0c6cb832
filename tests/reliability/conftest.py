"""The reliability suite: slow (not in `-m "not slow"`), its figures gathered by figures.py."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/reliability/" in item.nodeid:  # the bounded form runs in the full suite, not the edit loop's
            item.add_marker(pytest.mark.slow)
