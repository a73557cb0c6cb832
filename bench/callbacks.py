"""Callback delivery (issue 25): 10,000 status changes POSTed by fidesmail, beside as many direct posts to the
same receiver.

1. fidesmail (`python app.py`, 2 workers, SQLite) sends N messages through the test Mailgun (8 clients);
   its config names a callback, so each `accepted` enqueues one (the database trigger). It runs with
   FIDESMAIL_OUTBOX_POLL=60 so that its deliverers hardly look at the callbacks while the sends go on (any
   they tried then, the receiver not being up, is made due again before step 2).
2. fidesmail is stopped, the receiver (tests/standins/callback_receiver.py, its own process, checking
   every signature and appending each callback to a file) started, and fidesmail started again with the
   usual poll: its deliverers post the N queued callbacks (2 workers x OUTBOX_CONCURRENCY posters, each
   claimed with a lease, signed, deleted on the 2xx). Measured: first to last callback at the receiver.
3. The same receiver then takes N direct posts of the same kind (signed bodies) from 8 client processes:
   the receiver's own ceiling on this machine.

Run: `python bench/callbacks.py [--quick | --smoke]`.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
import requests  # noqa: E402

from fidesmail.core import yamlio  # noqa: E402
from fidesmail.sealing import envelope, keys, sealed_file  # noqa: E402
from tests.standins.callback_receiver import SIGNATURE_HEADER  # noqa: E402

DOMAIN, API_KEY = "mg.bench.example.com", "key-bench-0123456789abcdef"
CALLBACK_KEY = "cb-bench-" + "0123456789abcdef" * 2
PROFILES = {"full": {"changes": 10_000}, "quick": {"changes": 2_000}, "smoke": {"changes": 200}}


def _sign(body: bytes) -> str:
    import hashlib
    import hmac

    t = int(time.time())
    return f"t={t},v1={hmac.new(CALLBACK_KEY.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def _send_some(port: int, bearer: str, numbers: range, queue) -> None:
    session, headers = requests.Session(), {"Authorization": f"Bearer {bearer}"}
    for number in numbers:
        session.post(f"http://{lib.HOST}:{port}/api/v1/email/send", headers=headers, timeout=30, json={
            "config_key": "bench_callbacks", "action_type": "test_message",
            "to": f"subject{number}@example.com"}).raise_for_status()
    queue.put(len(numbers))


def _post_some(url: str, numbers: range, queue) -> None:
    session = requests.Session()
    for number in numbers:
        body = json.dumps({"message_id": f"msg_direct{number}", "reference": None, "status": "accepted",
                           "provider": "mailgun", "at": "2026-12-05T00:00:00.000Z", "failure_reason": None},
                          separators=(",", ":")).encode()
        session.post(url, data=body, timeout=30, headers={"Content-Type": "application/json",
                                                            SIGNATURE_HEADER: _sign(body)}).raise_for_status()
    queue.put(len(numbers))


def _in_parallel(target, count: int, clients: int, *args) -> float:
    """Run `target(*args, numbers, queue)` in `clients` processes over range(count); the seconds it took."""
    queue = multiprocessing.Queue()
    share = [range(i, count, clients) for i in range(clients)]
    procs = [multiprocessing.Process(target=target, args=(*args, numbers, queue)) for numbers in share]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    done = sum(queue.get(timeout=600) for _ in procs)
    for proc in procs:
        proc.join()
    assert done == count
    return time.perf_counter() - started


def _tree(base: Path, receiver_url: str) -> dict:
    tree = lib.make_tree(base, 1, domain=DOMAIN, api_key=API_KEY)
    document = {"key": "bench_callbacks", "name": "bench callbacks", "service_type": "mailgun",
                "details": {"domain": DOMAIN, "is_eu_domain": False, "api_version": "v3"},
                "callback": {"url": receiver_url}}
    (tree["config"] / "email" / "bench_callbacks.yaml").write_bytes(yamlio.dump(document))
    public = keys.load_public_key(tree["config"] / "seal.pub")
    sealed = sealed_file.parse((tree["config"] / "secrets.sealed.yaml").read_bytes(), "sealed").sealed
    for field, value in (("mailgun_api_key", API_KEY), ("callback_signing_key", CALLBACK_KEY)):
        sealed = sealed.with_value("bench_callbacks", field, envelope.seal(public, "bench_callbacks", field, value))
    (tree["config"] / "secrets.sealed.yaml").write_bytes(sealed_file.dump(sealed))
    return tree


def _all_due(tree: dict) -> int:
    """Every queued callback due now (one a worker tried while the receiver was not up yet waits for its backoff
    otherwise); how many are queued."""
    import sqlite3

    with sqlite3.connect(tree["instance"] / "fidesmail.db") as db:
        db.execute("UPDATE callbacks SET due_at = ?, lease_until = NULL", (int(time.time() * 1000),))
        return db.execute("SELECT count(*) FROM callbacks").fetchone()[0]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def measure(tmp: Path, profile: dict) -> dict:
    changes = profile["changes"]
    ports = {name: lib.free_port() for name in ("mailgun", "receiver", "fidesmail")}
    receiver_url = f"http://{lib.HOST}:{ports['receiver']}/callbacks"
    log = tmp / "received.jsonl"
    fake = lib.spawn([lib.PY, str(lib.ROOT / "tests" / "mailgun_fake.py"), "--port", str(ports["mailgun"]),
                      "--domain", f"{DOMAIN}={API_KEY}"], lib.base_env(), tmp / "fake.log")
    receiver = server = None
    try:
        lib.wait_port(ports["mailgun"], fake)
        tree = _tree(tmp / "tree", receiver_url)
        env = lib.server_env(tree, ports["fidesmail"], FIDESMAIL_MAILGUN_BASE_URL=f"http://{lib.HOST}:{ports['mailgun']}",
                             FIDESMAIL_MAILGUN_RETRIES=0)
        server, _ = lib.start_server([lib.PY, "app.py"], {**env, "FIDESMAIL_OUTBOX_POLL": "60"}, tmp / "fm1.log",
                                     ports["fidesmail"])
        bearer = lib.token()
        send_seconds = _in_parallel(_send_some, changes, 8, ports["fidesmail"], bearer)
        lib.stop(server)
        queued = _all_due(tree)
        receiver = lib.spawn([lib.PY, "-m", "tests.standins.callback_receiver", "--port", str(ports["receiver"]),
                              "--key", CALLBACK_KEY, "--log", str(log)], lib.base_env(), tmp / "receiver.log")
        lib.wait_port(ports["receiver"], receiver)
        server, _ = lib.start_server([lib.PY, "app.py"], env, tmp / "fm2.log", ports["fidesmail"])
        while _lines(log) == 0:
            time.sleep(0.005)
        first = time.perf_counter()
        deadline = first + 600
        while _lines(log) < changes and time.perf_counter() < deadline:
            time.sleep(0.01)
        callback_seconds = time.perf_counter() - first
        delivered = _lines(log)
        direct_seconds = _in_parallel(_post_some, changes, 8, receiver_url)
        assert queued == changes, (queued, changes)
        return {"changes": changes, "delivered": delivered, "callback_seconds": callback_seconds,
                "direct_seconds": direct_seconds, "send_seconds": send_seconds}
    finally:
        for proc in (server, receiver, fake):
            if proc is not None:
                lib.stop(proc)


def table(result: dict) -> str:
    n = result["changes"]
    return "\n".join([
        "| callbacks | count | seconds | per second |", "|---|---|---|---|",
        f"| callbacks posted by fidesmail (2 workers x 4 posters) | {result['delivered']:,} of {n:,} | "
        f"{result['callback_seconds']:.1f} | {result['delivered'] / result['callback_seconds']:,.0f} |",
        f"| direct posts to the same receiver (8 client processes) | {n:,} | {result['direct_seconds']:.1f} | "
        f"{n / result['direct_seconds']:,.0f} |",
    ])


def main(argv=None) -> int:
    return lib.standalone(argv, __doc__.splitlines()[0], PROFILES, measure, table, "callbacks")


if __name__ == "__main__":
    sys.exit(main())
