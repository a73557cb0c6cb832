"""What the limits and the evidence bundles cost (issue 27, "Speed").

In one run, against the test Mailgun (its own process) and two `python app.py` servers on trees alike:
- the limiter's cost per send: a verification code sent with FIDESMAIL_VERIFICATION_LIMIT=5 to a config
  with a `rate_limit` high enough never to wait (100,000/s), beside the same send with the limit off
  (FIDESMAIL_VERIFICATION_LIMIT=0) to a config without one; every send to a new address (so the limit
  counts, and never refuses), 1 lean client, rounds interleaved: p50 each and the difference;
- the evidence bundle of a reference with 20 records, p50, beside the list of the same 20 records
  (`?reference=&size=20`: the same rows and events, unsigned) as its floor;
- a burst of queued messages to a `rate_limit: 10` config: seconds from the first accepted post to the
  last, beside (N - 1) / 10 s, the least the limit allows.

Run: `python bench/limits.py [--quick]`; `bench/run.py` imports `measure` and `rows`.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
from send import API_KEY, DOMAIN, met, ms, table  # noqa: E402

PROFILES = {
    "full": {"rounds": 6, "per_round": 250, "bundle_rounds": 4, "bundle_per_round": 100, "burst": 100},
    "quick": {"rounds": 2, "per_round": 150, "bundle_rounds": 2, "bundle_per_round": 50, "burst": 100},
    "smoke": {"rounds": 1, "per_round": 20, "bundle_rounds": 1, "bundle_per_round": 10, "burst": 10},
}
# Even configs are US-region (FIDESMAIL_MAILGUN_BASE_URL); the odd one is EU-region, so the burst goes to a
# test Mailgun of its own (FIDESMAIL_MAILGUN_EU_BASE_URL), whose first and last accepted times are the burst's.
PLAIN, PACED, SLOW = "cfg_00000", "cfg_00002", "cfg_00003"
RATES = {PACED: 100_000, SLOW: 10}
REFERENCE = "pri_bench_bundle"
_addresses = itertools.count()


def _tree(base: Path) -> dict:
    tree = lib.make_tree(base, 5, domain=DOMAIN, api_key=API_KEY)
    for key, rate in RATES.items():
        path = tree["config"] / "email" / f"{key}.yaml"
        path.write_bytes(lib.yamlio.dump({**lib.yamlio.load(path.read_bytes())[0], "rate_limit": rate}))
    return tree


def _send(port: int, bearer: str, body: dict, prefer: str | None = None) -> bytes:
    data = lib.dumps(body)
    extra = f"Prefer: {prefer}\r\n" if prefer else ""
    return (f"POST /api/v1/email/send HTTP/1.1\r\nHost: {lib.HOST}:{port}\r\nAuthorization: Bearer {bearer}\r\n"
            f"{extra}Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def _verification(config_key: str) -> dict:
    """A verification code to an address not used before in this run: the limit counts it and lets it pass."""
    return {"config_key": config_key, "action_type": "subject_identity_verification",
            "to": f"subject{next(_addresses)}@example.com",
            "body_params": {"verification_code": "123456", "verification_code_ttl_seconds": 600}}


def _sender(port: int, bearer: str, config_key: str):
    client = lib.RawClient(port)

    def call():
        status, body = client.request(_send(port, bearer, _verification(config_key)))
        if status != 200:
            raise lib.HTTPError(f"send to {config_key}: {status} {body[:300]!r}")
    return call


def _fake_stats(fake_port: int) -> dict:
    with urllib.request.urlopen(f"http://{lib.HOST}:{fake_port}/fake/stats", timeout=10) as answer:
        return json.loads(answer.read())


def _burst(port: int, bearer: str, fake_port: int, count: int) -> float:
    """Queue `count` messages to the 10/s config at once; seconds from its first accepted post to its last
    (at its own test Mailgun, which sees nothing else)."""
    client = lib.RawClient(port)
    for n in range(count):
        body = {"config_key": SLOW, "action_type": "privacy_request_receipt", "to": f"burst{n}@example.com",
                "body_params": {"request_types": ["access"]}}
        status, answer = client.request(_send(port, bearer, body, "respond-async"))
        if status != 202:
            raise lib.HTTPError(f"queue: {status} {answer[:300]!r}")
    queued_at = time.time()
    while (stats := _fake_stats(fake_port))["accepted"] < count:
        if time.time() - queued_at > count / RATES[SLOW] + 60:
            raise RuntimeError(f"only {stats['accepted']} of {count} drained")
        time.sleep(0.1)
    return stats["last_accepted_at"] - stats["first_accepted_at"]


def measure(tmp: Path, profile: dict) -> dict:
    """Start the fake and both servers, measure side by side, stop them."""
    tmp = Path(tmp)
    fake_ports = [lib.free_port(), lib.free_port()]
    fakes = [lib.spawn([lib.PY, str(lib.ROOT / "tests" / "mailgun_fake.py"), "--port", str(fake_port),
                        "--domain", f"{DOMAIN}={API_KEY}"], lib.base_env(), tmp / f"limits-fake-{n}.log")
             for n, fake_port in enumerate(fake_ports)]
    servers = []
    try:
        for fake_port, fake in zip(fake_ports, fakes, strict=True):
            lib.wait_port(fake_port, fake)
        fake_url, burst_url = (f"http://{lib.HOST}:{fake_port}" for fake_port in fake_ports)
        ports = {}
        for name, limit in (("plain", 0), ("limited", 5)):
            port = lib.free_port()
            env = lib.server_env(_tree(tmp / f"limits-{name}"), port, FIDESMAIL_MAILGUN_BASE_URL=fake_url,
                                 FIDESMAIL_MAILGUN_EU_BASE_URL=burst_url, FIDESMAIL_MAILGUN_RETRIES=0,
                                 FIDESMAIL_VERIFICATION_LIMIT=limit)
            servers.append(lib.start_server([lib.PY, "app.py"], env, tmp / f"limits-{name}.log", port)[0])
            ports[name] = port
        bearer = lib.token()
        calls = {"plain": _sender(ports["plain"], bearer, PLAIN), "limited": _sender(ports["limited"], bearer, PACED)}
        samples = {name: [] for name in calls}
        for _ in range(profile["rounds"]):
            for name, call in calls.items():
                samples[name].extend(lib.latencies(call, profile["per_round"], warmup=10))

        port, client = ports["limited"], lib.RawClient(ports["limited"])
        for n in range(20):
            body = {"config_key": PLAIN, "action_type": "privacy_request_receipt", "reference": REFERENCE,
                    "to": f"requester{n}@example.com", "body_params": {"request_types": ["access"]}}
            lib.checked(client, _send(port, bearer, body))()
        reads = {"bundle": f"/api/v1/email/messages/evidence?reference={REFERENCE}",
                 "list": f"/api/v1/email/messages?reference={REFERENCE}&size=20"}
        read_calls = {name: lib.checked(lib.RawClient(port), lib.get_request(port, path, bearer))
                      for name, path in reads.items()}
        if len(json.loads(read_calls["bundle"]())["bundle"]["records"]) != 20:
            raise RuntimeError("the bundle does not hold the reference's 20 records")
        read_samples = {name: [] for name in read_calls}
        for _ in range(profile["bundle_rounds"]):
            for name, call in read_calls.items():
                read_samples[name].extend(lib.latencies(call, profile["bundle_per_round"], warmup=5))

        drain = _burst(port, bearer, fake_ports[1], profile["burst"])
        return {"plain_p50": lib.pct(samples["plain"], 50), "limited_p50": lib.pct(samples["limited"], 50),
                "bundle_p50": lib.pct(read_samples["bundle"], 50), "list_p50": lib.pct(read_samples["list"], 50),
                "burst": profile["burst"], "drain_seconds": drain, "samples": len(samples["plain"])}
    finally:
        for proc in servers + fakes:
            lib.stop(proc)


HEADER = ["measure", "with", "floor", "added / ratio", "goal", "met"]


def rows(result: dict) -> list[list[str]]:
    """Markdown rows: measure | with | floor | added or ratio | goal | met."""
    added = result["limited_p50"] - result["plain_p50"]
    least = (result["burst"] - 1) / RATES[SLOW]
    return [
        ["send p50, 1 lean client: verification limit on and a rate_limit (100,000/s) vs both off",
         ms(result["limited_p50"]), ms(result["plain_p50"]), f"{added * 1000:+.2f} ms", "", ""],
        ["evidence bundle of a reference with 20 records, p50 (floor: the list of the same 20 records)",
         ms(result["bundle_p50"]), ms(result["list_p50"]), f"{result['bundle_p50'] / result['list_p50']:.2f}x",
         "", ""],
        [f"drain {result['burst']} queued to a rate_limit: 10 config (first to last post; floor: (N-1)/10 s)",
         f"{result['drain_seconds']:.2f} s", f"{least:.2f} s", f"{result['drain_seconds'] / least:.2f}x",
         ">= 1.00x (never faster)", met(result["drain_seconds"] >= least * 0.99)],
    ]


NOTE = ("Each verification code goes to a new address, so the limit counts (one index probe of the records "
        "by the address digest, in the record's own transaction) and never refuses; the rate limit takes a slot "
        "from the config's limiter row in the same transaction. The bundle is signed per request (Ed25519) and "
        "served as canonical JSON. The drain's floor is the limit itself: 10 posts a second.")


def main(argv=None) -> int:
    report = lambda result: f"{table(HEADER, rows(result))}\n\n{NOTE}"
    return lib.standalone(argv, __doc__.splitlines()[0], PROFILES, measure, report, "limits")


if __name__ == "__main__":
    sys.exit(main())
