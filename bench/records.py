"""Message records at scale (issue 12, "Speed and size"), on SQLite and PostgreSQL side by side.

For each backend and each size (10 and 1,000,000 records, or --records), in one run:
- GET one record p50, beside GET one config on the same server (its floor), rounds interleaved;
- the list filtered by `reference` and by `to` (HMAC digest lookup) p50;
- bytes per record on disk (SQLite: pages in use / records; PostgreSQL: pg_total_relation_size).
Records are inserted straight into the database with fidesmail's own schema and digest code (the
API would take hours for a million); the server is a real `python app.py` on that database.

Run: `python bench/records.py [--quick] [--records N]`; `bench/run.py` imports `measure` and `rows`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
from send import met, ms, table  # noqa: E402

PROFILES = {
    "full": {"sizes": (10, 1_000_000), "rounds": 4, "per_round": 400},
    "quick": {"sizes": (10, 100_000), "rounds": 2, "per_round": 200},
    "smoke": {"sizes": (10, 2_000), "rounds": 1, "per_round": 20},
}
PROBE_TO = "probe.subject@example.com"
PROBE_REFERENCE = "pri_probe"


def _rows(first: int, count: int, total: int, key) -> list[dict]:
    """Records first..first+count of `total`, as a busy service leaves them: many recipients, references,
    configs; the probe address and reference once in all `total`."""
    from fidesmail.records import messages as records

    now = records.now_ms()
    attempts = json.dumps([{"at": "2026-12-01T08:00:00.000Z", "outcome": "accepted", "http_status": 200,
                            "detail": "Queued. Thank you."}])
    rows = []
    for i in range(first, first + count):
        at = now - (total - i) * 1000
        to = PROBE_TO if i == total // 2 else f"subject{i % 50_000}@example.com"
        rows.append({"id": records.new_message_id(at), "config_key": f"cfg_{i % 7:05d}",
                     "action_type": "subject_identity_verification",
                     "reference": PROBE_REFERENCE if i == total // 3 else f"pri_{i}",
                     "to_masked": "s***@example.com", "to_digest": key.digest(to), "status": "accepted",
                     "created_at": at, "updated_at": at + 150,
                     "mailgun_id": f"<20261201080000.{i}.{secrets.token_hex(6).upper()}@mg.bench.example.com>",
                     "content_hmac": secrets.token_bytes(32), "attempts": attempts, "test_mode": 0})
    return rows


def fill(url: str, instance: Path, count: int) -> float:
    """Create the schema and insert `count` records; seconds taken."""
    from fidesmail.records.database import Database
    from fidesmail.records.privacy import KEY_FILE, RecordsKey
    from fidesmail.records.schema import messages

    key = RecordsKey(instance / KEY_FILE)
    key.ensure()
    database = Database(url)
    database.upgrade()
    started = time.perf_counter()
    batch = 20_000
    for first in range(0, count, batch):
        chunk = _rows(first, min(batch, count - first), count, key)
        with database.write() as connection:
            connection.execute(messages.insert(), chunk)
    with database.write() as connection:
        if not database.is_sqlite:
            connection.exec_driver_sql("ANALYZE messages")
    database.engine.dispose()
    return time.perf_counter() - started


def bytes_per_record(url: str, count: int) -> float:
    from sqlalchemy import text

    from fidesmail.records.database import Database

    database = Database(url)
    with database.read() as connection:
        if database.is_sqlite:
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
            free = connection.exec_driver_sql("PRAGMA freelist_count").scalar()
            size = connection.exec_driver_sql("PRAGMA page_size").scalar()
            total = (pages - free) * size
        else:
            total = connection.execute(text("SELECT pg_total_relation_size('messages')")).scalar()
    database.engine.dispose()
    return total / count


def _backends(tmp: Path):
    yield "SQLite", lambda name: f"sqlite:///{tmp / name / 'fidesmail.db'}", None
    sys.path.insert(0, str(lib.ROOT))
    from tests import pg

    bin_dir = pg.find_bin_dir()
    if bin_dir is None:
        print(f"[bench] PostgreSQL skipped: {pg.missing_reason()}", file=sys.stderr)
        return
    server = pg.PostgresServer(bin_dir).start()
    try:
        yield "PostgreSQL", lambda name: server.url(server.create_database()), server
    finally:
        server.stop()


def measure(tmp: Path, profile: dict) -> list[dict]:
    tmp = Path(tmp)
    results = []
    for backend, url_for, _server in _backends(tmp):
        for count in profile["sizes"]:
            name = f"records-{backend.lower()}-{count}"
            tree = lib.make_tree(tmp / name, 1)
            url = url_for(name)
            fill_seconds = fill(url, tree["instance"], count)
            per_record = bytes_per_record(url, count)
            breakdown = where_the_bytes_go(url, count) if backend == "SQLite" and count > 1000 else {}
            port = lib.free_port()
            server, _ = lib.start_server([lib.PY, "app.py"], lib.server_env(tree, port, FIDESMAIL_DATABASE_URL=url),
                                         tmp / f"{name}.log", port)
            try:
                bearer = lib.token()
                listed = json.loads(lib.fetch(port, "/api/v1/email/messages?size=1", bearer)[1])
                one_id = listed["items"][0]["message_id"]
                paths = {
                    "config": f"/api/v1/email/config/{lib.config_key(0)}",
                    "record": f"/api/v1/email/messages/{one_id}",
                    "by_reference": f"/api/v1/email/messages?reference={PROBE_REFERENCE}",
                    "by_to": f"/api/v1/email/messages?to={quote(PROBE_TO)}",
                }
                found = json.loads(lib.fetch(port, paths["by_to"], bearer)[1])
                assert found["total"] == 1, found
                calls = {what: lib.checked(lib.RawClient(port), lib.get_request(port, path, bearer))
                         for what, path in paths.items()}
                samples = {what: [] for what in paths}
                for _ in range(profile["rounds"]):
                    for what, call in calls.items():
                        samples[what].extend(lib.latencies(call, profile["per_round"], warmup=20))
                results.append({"backend": backend, "records": count, "fill_s": fill_seconds,
                                "bytes_per_record": per_record, "breakdown": breakdown,
                                **{f"{what}_p50": lib.pct(values, 50) for what, values in samples.items()}})
            finally:
                lib.stop(server)
    return results


def where_the_bytes_go(url: str, count: int) -> dict[str, float]:
    """SQLite: bytes per record of the table and of each index (the dbstat table), largest first."""
    from fidesmail.records.database import Database

    database = Database(url)
    try:
        with database.read() as connection:
            sizes = connection.exec_driver_sql("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").all()
    except Exception:  # noqa: BLE001 - a SQLite built without dbstat: the total alone
        return {}
    finally:
        database.engine.dispose()
    return {name: size / count for name, size in sorted(sizes, key=lambda item: -item[1]) if size / count >= 1}


NOTE = ("Records are inserted straight into the database with fidesmail's schema and digest code (accepted, one "
        "attempt, a Mailgun id each; 7 configs, 50,000 recipients); the probe address and reference occur once. "
        "Bytes per record (at the large size): SQLite pages in use / records; PostgreSQL "
        "pg_total_relation_size('messages') / records, indexes included.")


# GET one record over GET one config (issue 29): PostgreSQL's round trip is allowed more than SQLite's read.
GOAL = {"SQLite": 1.3, "PostgreSQL": 1.5}


def rows(results: list[dict]) -> list[list[str]]:
    """Markdown rows: measure | fidesmail | floor | ratio | goal | met."""
    body = []
    for r in results:
        where = f"{r['backend']}, {r['records']:,} records"
        ratio = r["record_p50"] / r["config_p50"]
        goal = GOAL[r["backend"]]
        body.append([f"GET one record p50 ({where})", ms(r["record_p50"]), ms(r["config_p50"]) + " (GET one config)",
                     f"{ratio:.2f}x", f"≤ {goal}x", met(ratio <= goal)])
        for what, label in (("by_reference", "reference"), ("by_to", "to")):
            value = r[f"{what}_p50"]
            body.append([f"list by {label} p50 ({where})", ms(value), "", "", "< 5 ms", met(value < 0.005)])
        if r["records"] >= 1000:  # below that, the database's fixed pages are the figure
            body.append([f"bytes per record ({where})", f"{r['bytes_per_record']:.0f} B", "", "", "< 600 B",
                         met(r["bytes_per_record"] < 600)])
    return body


def breakdown_lines(results: list[dict]) -> list[str]:
    """Where a SQLite record's bytes go, for the report."""
    return [f"Where a record's bytes go ({r['backend']}, {r['records']:,} records): "
            + ", ".join(f"{name} {size:.0f} B" for name, size in r["breakdown"].items())
            for r in results if r.get("breakdown")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--records", type=int, help="the large size instead of the profile's")
    args = parser.parse_args(argv)
    profile = dict(PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"])
    if args.records:
        profile["sizes"] = (10, args.records)
    with tempfile.TemporaryDirectory(prefix="fidesmail-bench-records-") as tmp:
        results = measure(Path(tmp), profile)
    print(table(["measure", "fidesmail", "floor", "ratio", "goal", "met"], rows(results)))
    print()
    print(NOTE)
    for line in breakdown_lines(results):
        print(line)
    for r in results:
        print(f"[bench] {r['backend']} {r['records']:,} records inserted in {r['fill_s']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
