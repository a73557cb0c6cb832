"""Running a stand-in standalone (python -m tests.standins.NAME): the shared options and the foreground loop.

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any


def standalone_arguments(description: str, port: int, outcomes: Iterable[str],
                         webhook_help: str) -> argparse.ArgumentParser:
    """The options the HTTP-API stand-ins share standalone: --host, --port, --key, --webhook, --events."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--key", action="append", default=[], help="an API key it accepts (repeatable)")
    parser.add_argument("--webhook", metavar="URL", help=webhook_help)
    parser.add_argument("--events", action="append", default=[], metavar="ADDRESS=OUTCOME",
                        help=f"what follows a message to ADDRESS: {', '.join(outcomes)} (repeatable)")
    return parser


def script_events(standin, items: Iterable[str]) -> None:
    """`standin.script_events(address, outcome)` for each ADDRESS=OUTCOME of --events."""
    for item in items:
        address, _, outcome = item.rpartition("=")
        standin.script_events(address, outcome)


def run_in_foreground(standin, prepare: Callable[[Any], Iterable[str]]) -> None:
    """A stand-in's standalone mode: start it, `prepare(it)` (scripts, webhooks) and print the lines that returns,
    then serve until Ctrl-C or SIGTERM (exit status 0)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with standin:
        for line in prepare(standin):
            print(line, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
