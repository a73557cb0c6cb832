"""Webhook intake per provider (issue 25): a signed SendGrid, Mandrill or SNS post taken in, beside GET one config.

fidesmail under gunicorn (`python app.py`, a real process, SQLite), one config per provider whose messages
were sent through that provider's stand-in (tests/standins, each its own process; SES is moto behind the
stand-in's proxy). Then, per provider and interleaved with GET one config: p50/p99 of one post carrying one
`delivered`-kind event for one of those messages (a fresh event id each time: verified, written once,
answered `verified`) with 1 client, and events/s with 8 clients (separate processes). The SNS certificate
is served by this process (tests/standins/sns.py) and fetched once per worker (then kept).

Run: `python bench/provider_events.py [--quick | --smoke]`.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
import requests  # noqa: E402

from tests.standins import mandrill_events, sendgrid_events  # noqa: E402
from tests.standins.sns import SnsSigner, ses_event  # noqa: E402

SENDER = "privacy@example.com"
SG_KEY, MD_KEY, MD_HOOK_KEY = "SG.bench." + "k" * 30, "md-bench-" + "m" * 20, "mdhook-bench-0123456789"
AWS = ("AKIABENCHSTANDIN0000", "bench-standin-secret-key-not-a-real-one")
MESSAGES = 20
PROFILES = {
    "full": {"rounds": 4, "per_round": 200, "seconds": 3.0},
    "quick": {"rounds": 2, "per_round": 100, "seconds": 1.5},
    "smoke": {"rounds": 1, "per_round": 15, "seconds": 0.5},
}
HOOK = "/api/v1/email/webhooks/{service_type}/{key}"


def _post(port: int, path: str, headers: dict, body: bytes) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: {lib.HOST}:{port}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def _poster(port: int, make):
    """A factory of calls that post one freshly signed post (`make(number)` -> (path, headers, body))."""
    def factory():
        client = lib.RawClient(port)
        counter = iter(range(10**12))

        def call():
            path, headers, body = make(next(counter))
            status, answer = client.request(_post(port, path, headers, body))
            if status != 200 or b'"verified"' not in answer:
                raise lib.HTTPError(f"webhook: {status} {answer[:300]!r}")
        return call
    return factory


def _sendgrid(signer, sent):
    path = HOOK.format(service_type="twilio_email", key="bench_sendgrid")

    def make(number):
        message = sent[number % len(sent)]
        headers, body = signer.signed([sendgrid_events.event_body(
            "open", email="subject@example.com", x_message_id=message["id"],
            custom_args={"fidesmail_message_id": message["message_id"]})])
        return path, headers, body
    return make


def _mandrill(url_base, sent):
    path = HOOK.format(service_type="mailchimp_transactional", key="bench_mandrill")

    def make(number):
        message = sent[number % len(sent)]
        event = mandrill_events.event_body("open", message_id=message["id"], email="subject@example.com",
                                           metadata={"fidesmail_message_id": message["message_id"]})
        event["_id"] = uuid.uuid4().hex  # a new event each time
        headers, body = mandrill_events.signed_post(MD_HOOK_KEY, url_base + path, [event])
        return path, headers, body
    return make


def _ses(sns, sent):
    path = HOOK.format(service_type="aws_ses", key="bench_ses")

    def make(number):
        message = sent[number % len(sent)]
        event = ses_event("Open", message_id=message["id"], recipient="subject@example.com",
                          tags={"fidesmail-message-id": [message["message_id"]]})
        return path, {"Content-Type": "text/plain"}, json.dumps(sns.notification(event, version=2)).encode()
    return make


def _configure(base: str, bearer: str, key: str, service_type: str, details: dict, secrets: dict) -> list[dict]:
    headers = {"Authorization": f"Bearer {bearer}"}
    requests.post(f"{base}/config", headers=headers, timeout=30, json={
        "key": key, "name": key, "service_type": service_type, "details": details}).raise_for_status()
    requests.put(f"{base}/config/{key}/secret", headers=headers, json=secrets, timeout=30).raise_for_status()
    sent = []
    for number in range(MESSAGES):
        answer = requests.post(f"{base}/send", headers=headers, timeout=30, json={
            "config_key": key, "action_type": "test_message", "to": f"subject{number}@example.com"})
        answer.raise_for_status()
        sent.append(answer.json())
    return sent


def measure(tmp: Path, profile: dict) -> dict:
    """Start the stand-ins and fidesmail, measure each provider's intake and GET one config, stop them all."""
    tmp.mkdir(parents=True, exist_ok=True)
    ports = {name: lib.free_port() for name in ("sendgrid", "mandrill", "ses", "fidesmail")}
    standins = [
        lib.spawn([lib.PY, "-m", "tests.standins.sendgrid", "--port", str(ports["sendgrid"]), "--key", SG_KEY,
                   "--verify", SENDER], lib.base_env(), tmp / "sg.log"),
        lib.spawn([lib.PY, "-m", "tests.standins.mandrill", "--port", str(ports["mandrill"]), "--key", MD_KEY],
                  lib.base_env(), tmp / "md.log"),
        lib.spawn([lib.PY, "-m", "tests.standins.ses", "--port", str(ports["ses"]), "--verify", SENDER,
                   "--key", ":".join(AWS)], lib.base_env(), tmp / "ses.log"),
    ]
    server = None
    try:
        with SnsSigner() as sns:
            for name in ("sendgrid", "mandrill", "ses"):
                lib.wait_port(ports[name], standins[("sendgrid", "mandrill", "ses").index(name)], timeout=60)
            port = ports["fidesmail"]
            tree = lib.make_tree(tmp / "tree", 1)
            env = lib.server_env(tree, port, FIDESMAIL_SENDGRID_BASE_URL=f"http://{lib.HOST}:{ports['sendgrid']}",
                                 FIDESMAIL_MANDRILL_BASE_URL=f"http://{lib.HOST}:{ports['mandrill']}/api/1.0",
                                 FIDESMAIL_SES_ENDPOINT_URL=f"http://{lib.HOST}:{ports['ses']}",
                                 FIDESMAIL_SNS_CERT_URL_PATTERN="^" + re.escape(sns.base_url) + "/",
                                 FIDESMAIL_MAILGUN_RETRIES=0)
            server, _ = lib.start_server([lib.PY, "app.py"], env, tmp / "fidesmail.log", port)
            bearer = lib.token()
            base = f"http://{lib.HOST}:{port}/api/v1/email"
            signer = sendgrid_events.EventSigner()
            makers = {
                "twilio_email": _sendgrid(signer, _configure(
                    base, bearer, "bench_sendgrid", "twilio_email", {"twilio_email_from": SENDER},
                    {"twilio_api_key": SG_KEY, "twilio_email_webhook_public_key": signer.public_key})),
                "mailchimp_transactional": _mandrill(f"http://{lib.HOST}:{port}", _configure(
                    base, bearer, "bench_mandrill", "mailchimp_transactional", {"email_from": SENDER},
                    {"mailchimp_transactional_api_key": MD_KEY, "mailchimp_transactional_webhook_key": MD_HOOK_KEY})),
                "aws_ses": _ses(sns, _configure(
                    base, bearer, "bench_ses", "aws_ses", {"aws_region": "us-east-1", "email_from": SENDER},
                    {"auth_method": "secret_keys", "aws_access_key_id": AWS[0], "aws_secret_access_key": AWS[1]})),
            }
            get_factory = lambda: lib.checked(lib.RawClient(port),  # noqa: E731
                                              lib.get_request(port, "/api/v1/email/config/bench_ses", bearer))
            get_call, results = get_factory(), {}
            for service_type, make in makers.items():
                factory = _poster(port, make)
                call, hooks, gets = factory(), [], []
                for _ in range(profile["rounds"]):
                    hooks.extend(lib.latencies(call, profile["per_round"], warmup=10))
                    gets.extend(lib.latencies(get_call, profile["per_round"], warmup=10))
                results[service_type] = {
                    "hook_p50": lib.pct(hooks, 50), "hook_p99": lib.pct(hooks, 99), "get_p50": lib.pct(gets, 50),
                    "hook_rps": lib.throughput(factory, 8, profile["seconds"]),
                    "get_rps": lib.throughput(get_factory, 8, profile["seconds"])}
            return results
    finally:
        if server is not None:
            lib.stop(server)
        for proc in standins:
            lib.stop(proc)


HEADER = ["provider (SQLite)", "p50 / p99, 1 client", "GET one config p50", "events/s, 8 clients",
          "GET one config req/s, 8 clients"]


def table(results: dict) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    for service_type, r in results.items():
        lines.append(f"| {service_type} | {r['hook_p50'] * 1000:.2f} / {r['hook_p99'] * 1000:.2f} ms | "
                     f"{r['get_p50'] * 1000:.2f} ms | {r['hook_rps']:,.0f} | {r['get_rps']:,.0f} |")
    return "\n".join(lines)


NOTE = ("2 workers x 4 threads; one event per post, each with a fresh event id (verified, kept once with its "
        "post's signed bytes encrypted); 8 clients are separate processes on the same machine.")


def main(argv=None) -> int:
    report = lambda results: f"{table(results)}\n\n{NOTE}"
    return lib.standalone(argv, __doc__.splitlines()[0], PROFILES, measure, report, "provider-events")


if __name__ == "__main__":
    sys.exit(main())
