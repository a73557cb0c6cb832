"""What sending through fidesmail adds to each provider's round trip beside Mailgun (issue 23, "Speed").

Against each provider's stand-in (tests/standins, each its own process on 127.0.0.1), in one run:
- direct: the request fidesmail would make for SEND_BODY, built by fidesmail's own request builder and
  posted straight to the stand-in with a requests.Session (SendGrid, Mailchimp Transactional), or sent
  with a bare boto3 SES v2 client's `send_email` (SES: moto's server behind the stand-in's proxy);
- fidesmail: a requests.Session posting `POST /api/v1/email/send` (config_key: that provider's config) to
  fidesmail under gunicorn (`python app.py`), which renders, unseals the keys and makes that request.
Added latency = fidesmail - direct at p50 and p99 (1 client, the providers' rounds interleaved). Goal: as
for Mailgun, under 1 ms added at p50.
- failover (contract section 14): a Mailgun config whose `fallback` is the SendGrid config, the test Mailgun
  (its own process) down, answering 503 at once: each send is refused by Mailgun and taken by SendGrid. Beside
  it, fidesmail's own send through the SendGrid config: the difference is what failing over costs (Mailgun's
  503 round trip, and the record naming the next config before it goes).

Run: `python bench/providers.py [--quick]`; `bench/run.py` imports `measure` and `rows`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
from send import PROFILES, met, ms, table  # noqa: E402

SENDER = "Privacy Team <privacy@example.com>"
SEND_BODY = {"action_type": "subject_identity_verification", "to": "subject@example.com",
             "body_params": {"verification_code": "123456", "verification_code_ttl_seconds": 600}}
SENDGRID_KEY, MANDRILL_KEY = "SG.bench-key-0123456789", "md-bench-key-0123456789"
AWS_KEY = ("AKIAFIDESMAILBENCH00", "fidesmail-bench-secret-key-not-a-real-one")
MAILGUN_DOMAIN, MAILGUN_KEY = "mg.example.com", "key-" + "be4c" * 8
FAILOVER = "failover"  # the Mailgun config falling back to the SendGrid one
LABELS = {"twilio_email": "SendGrid", "mailchimp_transactional": "Mailchimp Transactional", "aws_ses": "Amazon SES"}
CONFIGS = {
    "twilio_email": ({"twilio_email_from": SENDER}, {"twilio_api_key": SENDGRID_KEY}),
    "mailchimp_transactional": ({"email_from": SENDER}, {"mailchimp_transactional_api_key": MANDRILL_KEY}),
    "aws_ses": ({"aws_region": "us-east-1", "email_from": SENDER},
                {"auth_method": "secret_keys", "aws_access_key_id": AWS_KEY[0], "aws_secret_access_key": AWS_KEY[1]}),
}


def make_tree(base: Path) -> dict:
    """A config tree with one config per provider (its key is its service type) and their sealed secrets."""
    from fidesmail.core import yamlio
    from fidesmail.sealing import envelope, keys, sealed_file

    config, instance = base / "config", base / "instance"
    (config / "email").mkdir(parents=True)
    instance.mkdir(mode=0o700)
    pair = keys.generate_keypair()
    (instance / "seal.key").write_bytes(keys.dump_keyring([pair]))
    (instance / "seal.key").chmod(0o600)
    (config / "seal.pub").write_bytes(keys.dump_public_key(pair.public_key))
    entries = {}
    for service_type, (details, secrets) in CONFIGS.items():
        doc = {"key": service_type, "name": LABELS[service_type], "service_type": service_type, "details": details}
        (config / "email" / f"{service_type}.yaml").write_bytes(yamlio.dump(doc))
        entries[service_type] = {field: envelope.seal(pair.public_key, service_type, field, value)
                                 for field, value in secrets.items()}
    doc = {"key": FAILOVER, "name": "Mailgun, else SendGrid", "service_type": "mailgun", "fallback": "twilio_email",
           "details": {"domain": MAILGUN_DOMAIN}}
    (config / "email" / f"{FAILOVER}.yaml").write_bytes(yamlio.dump(doc))
    entries[FAILOVER] = {"mailgun_api_key": envelope.seal(pair.public_key, FAILOVER, "mailgun_api_key", MAILGUN_KEY)}
    (config / "secrets.sealed.yaml").write_bytes(sealed_file.dump(sealed_file.SealedFile(entries)))
    return {"config": config, "instance": instance, "count": len(CONFIGS) + 1}


def _standins(tmp: Path) -> dict[str, tuple]:
    """Each provider's stand-in as its own process: service type -> (process, the URL fidesmail is given)."""
    ports = {service_type: lib.free_port() for service_type in CONFIGS}
    argv = {
        "twilio_email": ["-m", "tests.standins.sendgrid", "--key", SENDGRID_KEY, "--verify", "privacy@example.com"],
        "mailchimp_transactional": ["-m", "tests.standins.mandrill", "--key", MANDRILL_KEY],
        "aws_ses": ["-m", "tests.standins.ses", "--verify", "privacy@example.com", "--key", ":".join(AWS_KEY)],
    }
    urls = {"twilio_email": "http://{}:{}", "mailchimp_transactional": "http://{}:{}/api/1.0",
            "aws_ses": "http://{}:{}"}
    started = {}
    for service_type, port in ports.items():
        proc = lib.spawn([lib.PY, *argv[service_type], "--port", str(port)], lib.base_env(),
                         tmp / f"standin-{service_type}.log")
        started[service_type] = (proc, urls[service_type].format(lib.HOST, port))
    port = lib.free_port()  # the failover's primary: the test Mailgun, down (503 to everything)
    proc = lib.spawn([lib.PY, "tests/mailgun_fake.py", "--port", str(port), "--domain",
                      f"{MAILGUN_DOMAIN}={MAILGUN_KEY}"], lib.base_env(), tmp / "standin-mailgun.log")
    started["mailgun"], ports["mailgun"] = (proc, f"http://{lib.HOST}:{port}"), port
    for service_type, (proc, _) in started.items():
        lib.wait_port(ports[service_type], proc, timeout=60)
    import requests

    requests.post(started["mailgun"][1] + "/fake/down", timeout=10).raise_for_status()
    return started


def _direct_factory(service_type: str, url: str, tree: dict):
    """A client making the very request fidesmail would make for SEND_BODY, straight to the stand-in."""
    from fidesmail.content import body_params, rendering
    from fidesmail.providers.base import Email
    from fidesmail.providers.http import Transport
    from fidesmail.providers.mandrill.provider import Mandrill
    from fidesmail.providers.sendgrid.provider import SendGrid
    from fidesmail.providers.ses.request import build_request as ses_request
    from fidesmail.tree.loader import load_tree

    params = body_params.load_body_params(SEND_BODY["action_type"], SEND_BODY["body_params"])
    message = rendering.render(SEND_BODY["action_type"], params, load_tree(tree["config"]).overrides)
    email = Email(SEND_BODY["to"], message, "msg_bench")
    details, secrets = CONFIGS[service_type]
    if service_type == "aws_ses":
        request = ses_request(details, secrets, email)

        def ses_factory():
            import boto3
            from botocore.config import Config

            client = boto3.client("sesv2", endpoint_url=url, region_name="us-east-1", aws_access_key_id=AWS_KEY[0],
                                  aws_secret_access_key=AWS_KEY[1],
                                  config=Config(retries={"total_max_attempts": 1}, read_timeout=30))
            return lambda: client.send_email(**request.params)
        return ses_factory
    provider = (SendGrid if service_type == "twilio_email" else Mandrill)(Transport(), url)
    request = provider.request(details, secrets, email)
    expected = 202 if service_type == "twilio_email" else 200

    def factory():
        import requests

        session = requests.Session()
        headers = getattr(request, "headers", {"Content-Type": "application/json"})

        def call():
            response = session.post(request.url, data=request.body, headers=headers, timeout=30)
            if response.status_code != expected:
                raise lib.HTTPError(f"direct {service_type}: {response.status_code} {response.text[:200]}")
        return call
    return factory


def _fidesmail_factory(port: int, bearer: str, service_type: str, config_key: str | None = None):
    """Sends through fidesmail with `config_key` (default: the provider's own config), taken by `service_type`."""
    url = f"http://{lib.HOST}:{port}/api/v1/email/send"
    body, headers = {**SEND_BODY, "config_key": config_key or service_type}, {"Authorization": f"Bearer {bearer}"}

    def factory():
        import requests

        session = requests.Session()

        def call():
            response = session.post(url, json=body, headers=headers, timeout=30)
            if response.status_code != 200 or not response.json().get("id") or \
                    response.json().get("provider") != service_type:
                raise lib.HTTPError(f"fidesmail {service_type}: {response.status_code} {response.text[:200]}")
        return call
    return factory


def measure(tmp: Path, profile: dict) -> dict:
    """Start the three stand-ins and fidesmail, measure each provider's two paths side by side, stop them all."""
    tmp = Path(tmp)
    standins = _standins(tmp)
    server = None
    try:
        tree = make_tree(tmp / "providers-tree")
        port = lib.free_port()
        env = lib.server_env(tree, port, FIDESMAIL_MAILGUN_RETRIES=0,
                             FIDESMAIL_SENDGRID_BASE_URL=standins["twilio_email"][1],
                             FIDESMAIL_MANDRILL_BASE_URL=standins["mailchimp_transactional"][1],
                             FIDESMAIL_SES_ENDPOINT_URL=standins["aws_ses"][1],
                             FIDESMAIL_MAILGUN_BASE_URL=standins["mailgun"][1])
        server, _ = lib.start_server([lib.PY, "app.py"], env, tmp / "providers-fidesmail.log", port)
        bearer = lib.token()
        calls = {service_type: (_direct_factory(service_type, url, tree)(),
                                _fidesmail_factory(port, bearer, service_type)())
                 for service_type, (_, url) in standins.items() if service_type != "mailgun"}
        # Beside fidesmail's send through SendGrid: the same send asked of the Mailgun config that fails over to it.
        calls[FAILOVER] = (calls["twilio_email"][1], _fidesmail_factory(port, bearer, "twilio_email", FAILOVER)())
        samples = {service_type: ([], []) for service_type in calls}
        for _ in range(profile["rounds"]):
            for service_type, (direct_call, fm_call) in calls.items():
                direct, through = samples[service_type]
                direct.extend(lib.latencies(direct_call, profile["per_round"], warmup=10))
                through.extend(lib.latencies(fm_call, profile["per_round"], warmup=10))
        return {service_type: {"direct_p50": lib.pct(direct, 50), "direct_p99": lib.pct(direct, 99),
                               "fm_p50": lib.pct(through, 50), "fm_p99": lib.pct(through, 99),
                               "samples": len(through)}
                for service_type, (direct, through) in samples.items()}
    finally:
        if server is not None:
            lib.stop(server)
        for proc, _ in standins.values():
            lib.stop(proc)


FLOOR = {"twilio_email": "direct requests.Session", "mailchimp_transactional": "direct requests.Session",
         "aws_ses": "bare boto3 send_email"}


def rows(result: dict) -> list[list[str]]:
    """Markdown rows: measure | through fidesmail | direct (floor) | added | goal | met."""
    out = []
    for service_type, figures in result.items():
        if service_type == FAILOVER:
            added50 = figures["fm_p50"] - figures["direct_p50"]
            out.append(["send that fails over (Mailgun 503, then SendGrid) p50, 1 client (beside: fidesmail's send "
                        "through the SendGrid config)", ms(figures["fm_p50"]), ms(figures["direct_p50"]),
                        f"+{added50 * 1000:.2f} ms", "", ""])
            continue
        label, floor = LABELS[service_type], FLOOR[service_type]
        added50 = figures["fm_p50"] - figures["direct_p50"]
        added99 = figures["fm_p99"] - figures["direct_p99"]
        out.append([f"{label} send p50, 1 client (floor: {floor})", ms(figures["fm_p50"]), ms(figures["direct_p50"]),
                    f"+{added50 * 1000:.2f} ms", "< 1 ms added", met(added50 < 0.001)])
        out.append([f"{label} send p99, 1 client", ms(figures["fm_p99"]), ms(figures["direct_p99"]),
                    f"+{added99 * 1000:.2f} ms", "", ""])
    return out


HEADER = ["send", "through fidesmail", "direct (floor)", "added", "goal", "met"]
NOTE = ("Each provider's stand-in runs as its own process (SES: moto's server, SigV4 checked, behind the stand-in's "
        "proxy). Direct = the request fidesmail's own builder makes, sent straight to the stand-in (SES: a bare boto3 "
        "sesv2 client, botocore's retries off); added = fidesmail's figure minus the direct one, both measured with "
        "a requests.Session client in the same run, rounds interleaved. The send that fails over: a Mailgun config "
        "whose fallback is the SendGrid config, the test Mailgun answering 503 at once; beside it, fidesmail's own "
        "send through the SendGrid config (the difference: Mailgun's 503 round trip and the record's extra write).")


def main(argv=None) -> int:
    report = lambda result: f"{table(HEADER, rows(result))}\n\n{NOTE}"
    return lib.standalone(argv, __doc__.splitlines()[0], PROFILES, measure, report, "providers")


if __name__ == "__main__":
    sys.exit(main())
