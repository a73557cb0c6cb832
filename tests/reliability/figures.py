"""The reliability parts' figures, printed at the end of the run (and saved as JSON on request).

A pytest plugin (tests/conftest.py loads it), so that it runs where the terminal summary is written:
under pytest-xdist that is the controller, which runs no test. `support.report()` leaves a part's
figures for the report of the test (or the module teardown) that made them; they travel with that
report to the controller, as its user properties, and are gathered here.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from .support import LONG

PROPERTY = "reliability figures"
FIGURES: list[tuple[str, dict]] = []  # gathered from every test's report, in this process


def _pending() -> list[list]:
    """support.PENDING of every copy of support.py loaded: the tests import it as `reliability.support`
    (tests/ is not a package), this plugin and other helpers as `tests.reliability.support`."""
    return [module.PENDING for name, module in list(sys.modules.items())
            if name.endswith("reliability.support") and hasattr(module, "PENDING")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    for pending in _pending():
        while pending:
            outcome.get_result().user_properties.append((PROPERTY, pending.pop(0)))


def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        if name == PROPERTY:
            part, figures = value
            FIGURES.append((part, figures))


def pytest_terminal_summary(terminalreporter):
    if not FIGURES or hasattr(terminalreporter.config, "workerinput"):  # an xdist worker: the controller prints
        return
    terminalreporter.section(f"reliability figures ({'long' if LONG else 'bounded'} form)")
    FIGURES.sort(key=lambda item: item[0])  # by part number, whatever order the files ran in
    for part, figures in FIGURES:
        terminalreporter.write_line(f"{part}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    path = os.environ.get("FIDESMAIL_RELIABILITY_REPORT")
    if path:
        with open(path, "w") as fh:
            json.dump({"long": LONG, "parts": [{"part": p, **f} for p, f in FIGURES]}, fh, indent=2)
