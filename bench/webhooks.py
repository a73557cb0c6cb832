"""Webhook intake: what taking in one signed Mailgun event costs, beside GET one config (issue 13).

fidesmail under gunicorn (`python app.py`, a real process, SQLite by default or FIDESMAIL_DATABASE_URL),
one config with its API key and webhook signing key, messages sent through the test Mailgun
(tests/mailgun_fake.py, its own process) so that events match them. Then, in one run and interleaved:
- webhook intake: `POST /api/v1/email/webhooks/mailgun/{key}` with an `opened` event for one of those
  messages, signed as Mailgun signs (a fresh token per request, so each one is verified, written once
  and answered `verified`): p50/p99 with 1 client, events/s with 8 clients (separate processes);
- GET one config: the same figures, the floor of an authenticated read.

Run: `python bench/webhooks.py [--quick | --smoke]`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402

DOMAIN = "mg.bench.example.com"
API_KEY = "key-bench-0123456789abcdef"
SIGNING_KEY = "whsec-bench-0123456789abcdef"
CONFIG = "cfg_00000"
MESSAGES = 20

PROFILES = {
    "full": {"rounds": 6, "per_round": 250, "seconds": 3.0},
    "quick": {"rounds": 2, "per_round": 150, "seconds": 1.5},
    "smoke": {"rounds": 1, "per_round": 20, "seconds": 0.5},
}


def _event_request(port: int, message_ids: list[str]):
    """A call that posts one freshly signed `opened` event over a keep-alive socket; raises unless verified."""
    path = f"/api/v1/email/webhooks/mailgun/{CONFIG}"

    def factory():
        client = lib.RawClient(port)
        counter = iter(range(10**12))

        def call():
            number = next(counter)
            timestamp, token = str(int(time.time())), secrets.token_hex(25)
            signature = hmac.new(SIGNING_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
            body = json.dumps({"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                               "event-data": {"event": "opened", "timestamp": time.time(),
                                              "user-variables": {"fidesmail-message-id":
                                                                 message_ids[number % len(message_ids)]}}}).encode()
            raw = (f"POST {path} HTTP/1.1\r\nHost: {lib.HOST}:{port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            status, answer = client.request(raw)
            if status != 200 or b'"verified"' not in answer:
                raise lib.HTTPError(f"webhook: {status} {answer[:300]!r}")
        return call
    return factory


def _get_config(port: int, bearer: str):
    def factory():
        return lib.checked(lib.RawClient(port), lib.get_request(port, f"/api/v1/email/config/{CONFIG}", bearer))
    return factory


def _setup(port: int, bearer: str) -> list[str]:
    """The signing key set through the API, and MESSAGES messages sent (their ids)."""
    import requests

    headers = {"Authorization": f"Bearer {bearer}"}
    base = f"http://{lib.HOST}:{port}/api/v1/email"
    requests.put(f"{base}/config/{CONFIG}/secret", json={"mailgun_webhook_signing_key": SIGNING_KEY},
                 headers=headers, timeout=30).raise_for_status()
    ids = []
    for number in range(MESSAGES):
        sent = requests.post(f"{base}/send", headers=headers, timeout=30, json={
            "config_key": CONFIG, "action_type": "test_message", "to": f"subject{number}@example.com"})
        sent.raise_for_status()
        ids.append(sent.json()["message_id"])
    return ids


def measure(tmp: Path, profile: dict, **env) -> dict:
    """Start the fake and fidesmail, measure webhook intake and GET one config side by side, stop both."""
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    fake_port, port = lib.free_port(), lib.free_port()
    fake = lib.spawn([lib.PY, str(lib.ROOT / "tests" / "mailgun_fake.py"), "--port", str(fake_port),
                      "--domain", f"{DOMAIN}={API_KEY}"], lib.base_env(), tmp / "webhooks-fake.log")
    server = None
    try:
        lib.wait_port(fake_port, fake)
        tree = lib.make_tree(tmp / "webhooks-tree", 1, domain=DOMAIN, api_key=API_KEY)
        server_env = lib.server_env(tree, port, FIDESMAIL_MAILGUN_BASE_URL=f"http://{lib.HOST}:{fake_port}",
                                    FIDESMAIL_MAILGUN_RETRIES=0, **env)
        server, _ = lib.start_server([lib.PY, "app.py"], server_env, tmp / "webhooks-fidesmail.log", port)
        bearer = lib.token()
        message_ids = _setup(port, bearer)
        hook_factory, get_factory = _event_request(port, message_ids), _get_config(port, bearer)
        hook_call, get_call = hook_factory(), get_factory()
        hooks, gets = [], []
        for _ in range(profile["rounds"]):
            hooks.extend(lib.latencies(hook_call, profile["per_round"], warmup=10))
            gets.extend(lib.latencies(get_call, profile["per_round"], warmup=10))
        return {
            "hook_p50": lib.pct(hooks, 50), "hook_p99": lib.pct(hooks, 99),
            "get_p50": lib.pct(gets, 50), "get_p99": lib.pct(gets, 99),
            "hook_rps": lib.throughput(hook_factory, 8, profile["seconds"]),
            "get_rps": lib.throughput(get_factory, 8, profile["seconds"]),
            "samples": len(hooks),
        }
    finally:
        if server is not None:
            lib.stop(server)
        lib.stop(fake)


def measure_backends(tmp: Path, profile: dict) -> dict[str, dict]:
    """measure() on SQLite, then on a throwaway PostgreSQL when one can be had (bench/run.py)."""
    results = {"SQLite": measure(Path(tmp) / "sqlite", profile)}
    sys.path.insert(0, str(lib.ROOT))
    from tests import pg

    bin_dir = pg.find_bin_dir()
    if bin_dir is None:
        print(f"[bench] no PostgreSQL webhook rows: {pg.missing_reason()}", file=sys.stderr)
        return results
    server = pg.PostgresServer(bin_dir).start()
    try:
        results["PostgreSQL"] = measure(Path(tmp) / "postgresql", profile,
                                        FIDESMAIL_DATABASE_URL=server.url(server.create_database()))
    finally:
        server.stop()
    return results


def rows(result: dict, backend: str = "") -> list[list[str]]:
    """Markdown rows: measure | webhook intake | GET one config (floor) | ratio."""
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.2f} ms"

    where = f" ({backend})" if backend else ""
    return [
        *([f"{name}, 1 client{where}", ms(result[f"hook_{name}"]), ms(result[f"get_{name}"]),
           f"{result[f'hook_{name}'] / result[f'get_{name}']:.1f}x"] for name in ("p50", "p99")),
        [f"per second, 8 clients{where}", f"{result['hook_rps']:,.0f} events/s", f"{result['get_rps']:,.0f} req/s",
         f"{result['get_rps'] / result['hook_rps']:.1f}x fewer"],
    ]


NOTE = ("2 workers x 4 threads; 8 clients are separate processes on the same machine; each event has a fresh "
        "token, is verified with the config's signing key and written to the records database once.")
HEADER = ["webhook intake", "POST a signed event (verified, written once)", "GET one config (floor)", "ratio"]


def table(body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter load")
    parser.add_argument("--smoke", action="store_true", help="the smallest run (to check it works)")
    parser.add_argument("--database-url", help="FIDESMAIL_DATABASE_URL for the server (default: SQLite)")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    env = {"FIDESMAIL_DATABASE_URL": args.database_url} if args.database_url else {}
    with tempfile.TemporaryDirectory(prefix="fidesmail-bench-webhooks-") as tmp:
        try:
            result = measure(Path(tmp), profile, **env)
        finally:
            lib.stop_all()
    print(table(rows(result)))
    print()
    print(NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
