"""Shared by the reliability parts: bounded/long scaling, figures, process memory, the contract's answers."""

from __future__ import annotations

import os
from pathlib import Path

# FIDESMAIL_RELIABILITY_LONG=1 runs the long forms (bench/reliability.py sets it); otherwise the
# bounded forms run inside the normal test command.
LONG = os.environ.get("FIDESMAIL_RELIABILITY_LONG", "").strip().lower() not in ("", "0", "false", "no")

PENDING: list[tuple[str, dict]] = []  # reported, not yet on a test's report (figures.py gathers them)


def scaled(bounded, long):
    """The bounded figure in the normal run, the long one with FIDESMAIL_RELIABILITY_LONG=1."""
    return long if LONG else bounded


def report(part: str, **figures) -> None:
    """Record one part's figures; printed in the terminal summary (and as JSON for bench/reliability.py)."""
    PENDING.append((part, figures))
    print(f"[reliability] {part}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


def rss_kib(pid: int) -> int:
    """Resident memory of one process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """The direct children of a process (the gunicorn workers of a master)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


# What the contract lets each endpoint answer (sections 3 to 6); anything else is a failure.
ALLOWED = {
    "list": {200},
    "get": {200, 304, 404},
    "health": {200},
    "create": {200, 409},
    "patch": {200, 404, 409, 412},
    "delete": {204, 404, 412},
    "secret": {200, 404},
    "send": {200, 404, 409, 502, 504},
    "preview": {200},
}
