"""The reliability suite: its figures are printed at the end of the run (and saved as JSON on request)."""

from __future__ import annotations

import json
import os

import pytest

from .support import FIGURES, LONG


def pytest_collection_modifyitems(config, items):
    if LONG:  # the long forms are what `-m "not slow"` leaves out
        for item in items:
            if "reliability" in item.nodeid:
                item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section(f"reliability figures ({'long' if LONG else 'bounded'} form)")
    FIGURES.sort(key=lambda item: item[0])  # by part number, whatever order the files ran in
    for part, figures in FIGURES:
        terminalreporter.write_line(f"{part}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    path = os.environ.get("FIDESMAIL_RELIABILITY_REPORT")
    if path:
        with open(path, "w") as fh:
            json.dump({"long": LONG, "parts": [{"part": p, **f} for p, f in FIGURES]}, fh, indent=2)
