"""What sending through fidesmail adds to a Mailgun round trip (issue 4, "Speed").

Against the test Mailgun (tests/mailgun_fake.py, its own process on 127.0.0.1), in one run:
- direct: a `requests.Session` posting the very form fidesmail would send (built by fidesmail's own
  `rendering.render` + `build_request`) straight to the fake;
- fidesmail: the same kind of client posting `POST /api/v1/email/send` to fidesmail under gunicorn
  (`python app.py`, a real process), which renders, unseals the key and posts that form to the fake.
Added latency = fidesmail - direct at p50 and p99 (1 client, rounds interleaved); throughput at 1 and
8 concurrent clients (separate client processes) for both. Goal: under 1 ms added at p50.

Run: `python bench/send.py [--quick]`; `bench/run.py` imports `measure` and `rows`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402

DOMAIN = "mg.bench.example.com"
API_KEY = "key-bench-0123456789abcdef"
CONFIG = "cfg_00000"
SEND_BODY = {"config_key": CONFIG, "action_type": "subject_identity_verification", "to": "subject@example.com",
             "body_params": {"verification_code": "123456", "verification_code_ttl_seconds": 600}}

PROFILES = {
    "full": {"rounds": 6, "per_round": 250, "seconds": 3.0},
    "quick": {"rounds": 2, "per_round": 150, "seconds": 1.5},
    "smoke": {"rounds": 1, "per_round": 20, "seconds": 0.5},
}


def _direct_request(fake_url: str, config_dir: Path):
    """The Mailgun request fidesmail would make for SEND_BODY, built by fidesmail's own code."""
    from fidesmail.content import body_params, rendering
    from fidesmail.providers.mailgun.request import build_request
    from fidesmail.tree.loader import load_tree

    params = body_params.load_body_params(SEND_BODY["action_type"], SEND_BODY["body_params"])
    message = rendering.render(SEND_BODY["action_type"], params, load_tree(config_dir).overrides)
    details = lib.config_doc(0, DOMAIN)["details"]
    return build_request(details, API_KEY, message, SEND_BODY["to"], base_url=fake_url)


def _direct_factory(request):
    def factory():
        import requests

        session = requests.Session()

        def call():
            response = session.post(request.url, data=request.data, auth=request.auth, timeout=30,
                                    allow_redirects=False)
            if response.status_code != 200 or "id" not in response.json():
                raise lib.HTTPError(f"direct: {response.status_code} {response.text[:200]}")
        return call
    return factory


def _fidesmail_factory(port: int, bearer: str):
    url = f"http://{lib.HOST}:{port}/api/v1/email/send"
    headers = {"Authorization": f"Bearer {bearer}"}

    def factory():
        import requests

        session = requests.Session()

        def call():
            response = session.post(url, json=SEND_BODY, headers=headers, timeout=30)
            if response.status_code != 200 or "id" not in response.json():
                raise lib.HTTPError(f"fidesmail: {response.status_code} {response.text[:200]}")
        return call
    return factory


def raw_send(port: int, bearer: str, send_body: dict = SEND_BODY) -> bytes:
    """POST /api/v1/email/send as prebuilt bytes for the lean client."""
    body = lib.dumps(send_body)
    return (f"POST /api/v1/email/send HTTP/1.1\r\nHost: {lib.HOST}:{port}\r\nAuthorization: Bearer {bearer}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def measure(tmp: Path, profile: dict) -> dict:
    """Start the fake and fidesmail, measure both paths side by side, stop both."""
    tmp = Path(tmp)
    fake_port, port = lib.free_port(), lib.free_port()
    fake = lib.spawn([lib.PY, str(lib.ROOT / "tests" / "mailgun_fake.py"), "--port", str(fake_port),
                      "--domain", f"{DOMAIN}={API_KEY}"], lib.base_env(), tmp / "send-fake.log")
    server = None
    try:
        lib.wait_port(fake_port, fake)
        fake_url = f"http://{lib.HOST}:{fake_port}"
        tree = lib.make_tree(tmp / "send-tree", 1, domain=DOMAIN, api_key=API_KEY)
        assert not lib.config_doc(0)["details"]["is_eu_domain"]  # US region: FIDESMAIL_MAILGUN_BASE_URL applies
        env = lib.server_env(tree, port, FIDESMAIL_MAILGUN_BASE_URL=fake_url, FIDESMAIL_MAILGUN_RETRIES=0)
        server, _ = lib.start_server([lib.PY, "app.py"], env, tmp / "send-fidesmail.log", port)
        bearer = lib.token()
        direct_factory = _direct_factory(_direct_request(fake_url, tree["config"]))
        fm_factory = _fidesmail_factory(port, bearer)

        direct_call, fm_call = direct_factory(), fm_factory()
        lean_call = lib.checked(lib.RawClient(port), raw_send(port, bearer))
        direct, through, lean = [], [], []
        for _ in range(profile["rounds"]):
            direct.extend(lib.latencies(direct_call, profile["per_round"], warmup=10))
            through.extend(lib.latencies(fm_call, profile["per_round"], warmup=10))
            lean.extend(lib.latencies(lean_call, profile["per_round"], warmup=10))
        rps = {}
        for clients in (1, 8):
            rps[("direct", clients)] = lib.throughput(direct_factory, clients, profile["seconds"])
            rps[("fidesmail", clients)] = lib.throughput(fm_factory, clients, profile["seconds"])
        return {
            "direct_p50": lib.pct(direct, 50), "direct_p99": lib.pct(direct, 99),
            "fm_p50": lib.pct(through, 50), "fm_p99": lib.pct(through, 99),
            "lean_p50": lib.pct(lean, 50), "lean_p99": lib.pct(lean, 99),
            "rps": rps, "samples": len(through),
        }
    finally:
        if server is not None:
            lib.stop(server)
        lib.stop(fake)


def rows(result: dict) -> list[list[str]]:
    """Markdown rows: measure | through fidesmail | direct (floor) | added / ratio | goal | met."""
    added50 = result["fm_p50"] - result["direct_p50"]
    added99 = result["fm_p99"] - result["direct_p99"]
    lean50 = result["lean_p50"] - result["direct_p50"]
    out = [
        ["send p50, 1 client", ms(result["fm_p50"]), ms(result["direct_p50"]), f"+{added50 * 1000:.2f} ms",
         "< 1 ms added", met(added50 < 0.001)],
        ["send p99, 1 client", ms(result["fm_p99"]), ms(result["direct_p99"]), f"+{added99 * 1000:.2f} ms", "", ""],
        ["send p50, 1 lean client (raw socket to fidesmail: the server's own share)", ms(result["lean_p50"]),
         ms(result["direct_p50"]), f"+{lean50 * 1000:.2f} ms", "< 0.6 ms added, with the record",
         met(lean50 < 0.0006)],
    ]
    for clients in (1, 8):
        fm, direct = result["rps"][("fidesmail", clients)], result["rps"][("direct", clients)]
        out.append([f"sends/s, {clients} client{'s' if clients > 1 else ''}", f"{fm:,.0f}/s", f"{direct:,.0f}/s",
                    f"{direct / fm:.2f}x", "", ""])
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


NOTE = ("Added = fidesmail's figure minus the direct post's, both with a requests.Session client (what a "
        "requests-based caller sees: the extra hop, its own client overhead on it, and the server's work). The "
        "lean-client row sends the same request to fidesmail over a raw keep-alive socket, leaving out the "
        "caller's client overhead on the extra hop.")

SEND_HEADER = ["send", "through fidesmail", "direct requests.Session (floor)", "added (ratio for /s)", "goal", "met"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter load")
    parser.add_argument("--smoke", action="store_true", help="the smallest run (to check it works)")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    with tempfile.TemporaryDirectory(prefix="fidesmail-bench-send-") as tmp:
        try:
            result = measure(Path(tmp), profile)
        finally:
            lib.stop_all()
    print(table(SEND_HEADER, rows(result)))
    print()
    print(NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
