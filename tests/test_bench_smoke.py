"""The benchmark at its smallest size, so it cannot rot: it runs end to end and reports every row.

No timing is asserted here; the figures themselves are for bench/RESULTS.md (`python bench/run.py`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg

pytestmark = pytest.mark.slow  # the benchmark end to end

ROOT = Path(__file__).resolve().parent.parent

EXPECTED_ROWS = [
    "GET one config: p50, 1 client",
    "GET one config: p99, 1 client",
    "GET one config: req/s, 8 clients",
    "list page (size 50): p50, 1 client",
    "list page (size 50): p99, 1 client",
    "list page (size 50): req/s, 8 clients",
    "send p50, 1 client",
    "send p99, 1 client",
    "sends/s, 1 client",
    "sends/s, 8 clients",
    "SendGrid send p50, 1 client",
    "Mailchimp Transactional send p50, 1 client",
    "Amazon SES send p50, 1 client",
    "send that fails over (Mailgun 503, then SendGrid) p50",
    "202 accept p50, 1 client (SQLite",
    "202 accepts/s, 8 clients (SQLite",
    "drain 80 queued to the loopback fake (SQLite",
    "GET one record p50 (SQLite, 10 records)",
    "list by reference p50 (SQLite, 2,000 records)",
    "list by to p50 (SQLite, 2,000 records)",
    "bytes per record (SQLite, 2,000 records)",
    "p50, 1 client (SQLite)",
    "per second, 8 clients (SQLite)",
    "send p50, 1 lean client: verification limit on and a rate_limit",
    "evidence bundle of a reference with 20 records, p50",
    "drain 10 queued to a rate_limit: 10 config",
    "twilio_email",  # webhook intake per provider
    "mailchimp_transactional",
    "aws_ses",
    "callbacks posted by fidesmail",
    "direct posts to the same receiver",
    "start to first /health 200",
    "floor: bare Flask start",
    "GET one config, p50",
    "list page (size 50), p50",
    "edit on disk until every worker serves it",
    "`flask check` over the tree",
    "worker RSS",
    "worker PSS",
    "idle CPU over",
    "floor: one stat() of every config file",
    "RSS per worker (largest)",
    "RSS of the process tree",
    "PSS of the process tree",
    "CPU while idle over",
]

# PostgreSQL beside SQLite (CI installs it; tests/pg.py says where it looks).
POSTGRES_ROWS = [
    "GET one record p50 (PostgreSQL, 2,000 records)",
    "bytes per record (PostgreSQL, 2,000 records)",
    "p50, 1 client (PostgreSQL)",
    "202 accepts/s, 8 clients (PostgreSQL, 3 replicas",
    "drain 80 queued to the loopback fake (PostgreSQL, 3 replicas",
]


def _rows(report: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_the_benchmark_runs_at_its_smallest_size_and_reports_every_row(tmp_path):
    out = tmp_path / "RESULTS.md"
    before = (ROOT / "bench" / "RESULTS.md").read_bytes() if (ROOT / "bench" / "RESULTS.md").exists() else None
    result = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=360)
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    assert report.strip() == result.stdout.strip()
    for heading in ("## API latency", "## Send", "## Send through each provider", "## Message records",
                    "## Webhook intake", "## Webhook intake per provider", "## Callbacks", "## Outbox",
                    "## Limits and evidence", "## Scale", "## Idle"):
        assert heading in report
    assert "CPU:" in report and "Python " in report and "cores" in report
    rows = _rows(report)
    expected_rows = EXPECTED_ROWS + (POSTGRES_ROWS if pg.find_bin_dir() is not None else [])
    for expected in expected_rows:
        matching = [name for name in rows if name.startswith(expected)]
        assert matching, f"no row {expected!r} in:\n{report}"
        for name in matching:
            assert all(cell not in ("nan ms", "inf s", "0.0 MB") for cell in rows[name]), (name, rows[name])
    # The smoke run leaves the committed results alone.
    after = (ROOT / "bench" / "RESULTS.md").read_bytes() if (ROOT / "bench" / "RESULTS.md").exists() else None
    assert after == before

