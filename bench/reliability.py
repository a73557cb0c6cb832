"""Run the reliability suite (tests/reliability) in its long form and print each part's figures.

    python bench/reliability.py                 # long form: 300 SIGKILLs, 60 s of load, 5000 examples...
    python bench/reliability.py --bounded       # the form CI runs (python -m pytest runs it too)
    python bench/reliability.py --out docs/reliability-figures.md -- -k "crash or load"

The long form is the same tests with FIDESMAIL_RELIABILITY_LONG=1, which scales their durations and
counts; anything after `--` goes to pytest. The figures are printed as a markdown table (and
written to --out when given); the exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _machine() -> str:
    cpus = os.cpu_count()
    try:
        memory = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        memory = f", {int(memory) // 1024 // 1024} GiB RAM"
    except (OSError, StopIteration):
        memory = ""
    return f"{platform.system()} {platform.release()}, {cpus} CPUs{memory}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounded", action="store_true", help="the bounded form (as in CI) instead of the long one")
    parser.add_argument("--out", type=Path, help="also write the figures (markdown) to this file")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "figures.json"
        env = {**os.environ, "FIDESMAIL_RELIABILITY_REPORT": str(report),
               "FIDESMAIL_RELIABILITY_LONG": "0" if args.bounded else "1"}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider",
                               *args.pytest_args], cwd=ROOT, env=env)
        took = time.monotonic() - started
        figures = json.loads(report.read_text()) if report.exists() else {"parts": []}

    form = "bounded" if args.bounded else "long"
    lines = [f"Reliability figures, {form} form, {time.strftime('%Y-%m-%d')}, {_machine()}; "
             f"{took:.0f} s in all, pytest exit status {done.returncode}.", "",
             "| part | figures |", "|---|---|"]
    for part in sorted(figures["parts"], key=lambda p: p["part"]):
        shown = ", ".join(f"{k}={v}" for k, v in part.items() if k != "part")
        lines.append(f"| {part['part']} | {shown} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        args.out.write_text(text)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
