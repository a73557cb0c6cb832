"""Mailgun sending (the provider, and the synchronous retries over it) against a real HTTP server that behaves like
Mailgun (tests/mailgun_fake.py)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import urllib3

from fidesmail.core import outcomes
from fidesmail.core.addresses import AddressError
from fidesmail.core.email import Message
from fidesmail.providers.http import Transport
from fidesmail.providers.mailgun.provider import Mailgun
from fidesmail.providers.mailgun.request import build_request
from fidesmail.sending.retrying import Finished, Retrier
from fidesmail.web.errors import status_of_result
from tests.mailgun_fake import MailgunFake

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
DOMAIN = "mg.example.com"
MESSAGE = Message(subject="Your one-time code", html="<p>123456</p>", text="123456", tag="test_message")
DETAILS = {"domain": DOMAIN, "is_eu_domain": False, "api_version": "v3"}


@pytest.fixture
def fake():
    with MailgunFake(domains={DOMAIN: KEY, "mg#1.example.com": KEY}) as server:
        yield server


@pytest.fixture
def waits():
    return []


class Mailer:
    """Mailgun through the provider-neutral retrier: the synchronous send without its record."""

    def __init__(self, timeout: float = 10, retries: int = 3, *, sleep=lambda s: None, max_total_wait: float = 30):
        self.transport = Transport(timeout)
        self.mailgun = Mailgun(self.transport)
        self.retrier = Retrier(retries, sleep=sleep, max_total_wait=max_total_wait)

    def send(self, request) -> Finished:
        return self.retrier.run(lambda: self.mailgun.post(request), label="Mailgun", host=request.host)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.transport.close()


def result(finished: Finished) -> str:
    return outcomes.result_of(finished.outcome)


def reason(finished: Finished) -> str:
    """The failure reason the record and the answer give."""
    return outcomes.describe(finished.outcome, "Mailgun") + finished.note


@pytest.fixture
def mailer(waits):
    with Mailer(timeout=2, retries=3, sleep=waits.append) as m:
        yield m


@pytest.fixture(autouse=True)
def no_key_in_logs(caplog):
    """Every test here also proves the key never reaches a log line."""
    caplog.set_level(logging.DEBUG)
    yield
    assert KEY not in caplog.text


def request_to(fake, details=DETAILS, key=KEY, to="subject@example.com", **kwargs):
    return build_request(details, key, MESSAGE, to, base_url=fake.base_url, **kwargs)


def assert_key_hidden(finished: Finished):
    assert KEY not in reason(finished) and KEY not in repr(finished)


# --- build_request (pure) -----------------------------------------------------------------


def test_request_defaults_to_us_and_carries_fields_in_order():
    request = build_request(DETAILS, KEY, MESSAGE, "Subject@Example.com")
    assert request.method == "POST"
    assert request.url == "https://api.mailgun.net/v3/mg.example.com/messages"
    assert request.auth == ("api", KEY)
    assert request.data == (
        ("from", "mailgun@mg.example.com"),
        ("to", "Subject@Example.com"),
        ("subject", "Your one-time code"),
        ("html", "<p>123456</p>"),
        ("text", "123456"),
        ("o:tag", "test_message"),
    )


def test_request_uses_eu_region_sender_and_test_mode():
    details = dict(DETAILS, is_eu_domain=True, sender='"Privacy Team" <privacy@mg.example.com>')
    request = build_request(details, KEY, MESSAGE, "a@example.com", test_mode=True)
    assert request.url == "https://api.eu.mailgun.net/v3/mg.example.com/messages"
    assert request.data[0] == ("from", "Privacy Team <privacy@mg.example.com>")
    assert request.data[-1] == ("o:testmode", "yes")
    overridden = build_request(details, KEY, MESSAGE, "a@example.com", base_url="http://us", eu_base_url="http://eu/")
    assert overridden.url == "http://eu/v3/mg.example.com/messages"


def test_request_repr_and_str_hide_the_key():
    request = build_request(DETAILS, KEY, MESSAGE, "a@example.com")
    for text in (repr(request), str(request), f"{request}", repr([request])):
        assert KEY not in text and "'***'" in text


@pytest.mark.parametrize("domain", ["mg.example.com/../other", "mg.example.com/", "", None])
def test_request_refuses_a_domain_that_is_not_one_path_segment(domain):
    with pytest.raises(ValueError, match="domain"):
        build_request(dict(DETAILS, domain=domain), KEY, MESSAGE, "a@example.com")


@pytest.mark.parametrize(
    "to", ["a@example.com, b@example.com", "a@example.com\r\nBcc: b@example.com", "Eve <a@example.com>", "nope", ""]
)
def test_request_refuses_anything_but_one_bare_address(to):
    with pytest.raises(AddressError):
        build_request(DETAILS, KEY, MESSAGE, to)


# --- sending --------------------------------------------------------------------------------


def test_send_delivers_exact_fields_and_auth_and_reuses_the_connection(fake, mailer):
    request = request_to(fake)
    results = [mailer.send(request) for _ in range(3)]
    assert [r.attempts for r in results] == [1, 1, 1]
    assert results[0].outcome.detail == "Queued. Thank you."
    assert results[0].outcome.provider_id.startswith("<") and results[0].outcome.provider_id.endswith(f"@{DOMAIN}>")
    assert [r.outcome.provider_id for r in results] == [r.message_id for r in fake.sent]
    seen = fake.requests[0]
    assert seen.path == "/v3/mg.example.com/messages"
    assert seen.auth_user == "api"
    assert seen.form == request.data
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert len({r.client_port for r in fake.requests}) == 1  # one pooled keep-alive connection


def test_us_and_eu_domains_go_to_their_own_base_url(mailer):
    with MailgunFake({DOMAIN: KEY}) as us, MailgunFake({DOMAIN: KEY}) as eu:
        urls = {"base_url": us.base_url, "eu_base_url": eu.base_url}
        mailer.send(build_request(DETAILS, KEY, MESSAGE, "a@example.com", **urls))
        mailer.send(build_request(dict(DETAILS, is_eu_domain=True), KEY, MESSAGE, "b@example.com", **urls))
        assert [r.field("to") for r in us.sent] == ["a@example.com"]
        assert [r.field("to") for r in eu.sent] == ["b@example.com"]


def test_sender_default_and_configured_reach_mailgun(fake, mailer):
    mailer.send(request_to(fake))
    mailer.send(request_to(fake, dict(DETAILS, sender="Privacy <privacy@mg.example.com>"), test_mode=True))
    first, second = fake.sent
    assert first.field("from") == "mailgun@mg.example.com" and first.field("o:testmode") is None
    assert second.field("from") == "Privacy <privacy@mg.example.com>" and second.field("o:testmode") == "yes"


def test_domain_is_quoted_into_one_path_segment(fake, mailer):
    mailer.send(request_to(fake, dict(DETAILS, domain="mg#1.example.com")))
    assert fake.sent[0].path == "/v3/mg%231.example.com/messages"
    assert fake.sent[0].domain == "mg#1.example.com"


# --- retry policy ---------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(fake, mailer, waits):
    fake.fail_next(429, retry_after=1)
    fake.fail_next(429, retry_after=0)
    result = mailer.send(request_to(fake))
    assert result.attempts == 3 and fake.attempts == 3
    assert waits == [1.0, 0.0]


def test_420_waits_for_the_try_again_after_in_its_message(fake, mailer, waits):
    fake.fail_next(420, message="Domain mg.example.com is not allowed to send: try again after 2 seconds")
    assert mailer.send(request_to(fake)).attempts == 2
    assert waits == [2.0]


def test_retry_after_beyond_the_wait_budget_fails_without_sleeping(fake, waits):
    fake.fail_next(429, retry_after=120)
    with Mailer(retries=3, sleep=waits.append, max_total_wait=60) as mailer:
        finished = mailer.send(request_to(fake))
    assert result(finished) == outcomes.REFUSED and finished.outcome.http_status == 429
    assert status_of_result(result(finished)) == 502
    assert "120 s more would pass the 60 s limit" in reason(finished)
    assert waits == [] and fake.attempts == 1


def test_5xx_backs_off_exponentially_then_gives_up_after_retries_plus_one(fake, mailer, waits):
    fake.fail_next(500, times=10)
    finished = mailer.send(request_to(fake))
    assert fake.attempts == 4 and finished.attempts == 4
    assert finished.outcome.http_status == 500 and status_of_result(result(finished)) == 502
    assert reason(finished) == "Mailgun answered 500: Internal Server Error"
    assert len(waits) == 3
    for n, wait in enumerate(waits):
        assert 0.5 * 2**n * 0.5 <= wait <= 0.5 * 2**n  # 0.5 s base doubling, jittered down to half
    assert_key_hidden(finished)


def test_5xx_then_success_is_a_success(fake, mailer):
    fake.fail_next(503, times=2)
    assert mailer.send(request_to(fake)).attempts == 3
    assert len(fake.sent) == 1


def test_connection_closed_after_the_request_went_out_is_not_retried(fake, mailer, waits):
    # Contract section 6 (changed from "retried"): Mailgun read the request and may have queued it, so
    # this is like a timeout: 504, one attempt, never posted again.
    fake.close_next(times=4)
    finished = mailer.send(request_to(fake))
    assert result(finished) == outcomes.TIMEOUT and "closed or reset after the request was sent" in reason(finished)
    assert fake.attempts == 1 and waits == [] and status_of_result(result(finished)) == 504
    assert "may still be sent" in reason(finished)
    assert_key_hidden(finished)


def test_slow_answer_is_a_timeout_after_exactly_one_attempt(fake, waits):
    fake.slow_next(3)
    with Mailer(timeout=0.3, retries=3, sleep=waits.append) as mailer:
        finished = mailer.send(request_to(fake))
    assert result(finished) == outcomes.TIMEOUT
    assert status_of_result(result(finished)) == 504 and finished.attempts == 1
    assert "may still be sent" in reason(finished)
    assert fake.attempts == 1 and waits == []
    assert_key_hidden(finished)


def test_200_without_json_id_is_a_bad_answer(fake, mailer):
    fake.non_json_200_next()
    finished = mailer.send(request_to(fake))
    assert result(finished) == outcomes.BAD_ANSWER
    assert status_of_result(result(finished)) == 502 and fake.attempts == 1
    fake.fail_next(200, message="Queued. Thank you.")  # JSON, but no id
    finished = mailer.send(request_to(fake))
    assert result(finished) == outcomes.BAD_ANSWER and "without a message id" in reason(finished)


def test_wrong_key_is_refused_once_without_retry(fake, mailer, waits):
    finished = mailer.send(request_to(fake, key="key-wrong"))
    assert result(finished) == outcomes.REFUSED
    assert finished.outcome.http_status == 401 and finished.outcome.detail.startswith("Forbidden")
    assert "mailgun_api_key" in reason(finished)
    assert fake.attempts == 1 and waits == []


def test_unknown_domain_is_refused_with_a_region_hint(fake, mailer):
    finished = mailer.send(request_to(fake, dict(DETAILS, domain="eu-only.example.com")))
    assert result(finished) == outcomes.REFUSED
    assert finished.outcome.http_status == 404 and fake.attempts == 1
    assert reason(finished).startswith("Mailgun answered 404: Domain not found: eu-only.example.com")
    assert "is_eu_domain" in reason(finished)


def test_other_4xx_is_not_retried_and_never_echoes_the_key(fake, mailer, waits):
    fake.fail_next(400, message=f"'to' parameter is not a valid address; key {KEY} echoed")
    finished = mailer.send(request_to(fake))
    assert result(finished) == outcomes.REFUSED
    assert finished.outcome.http_status == 400 and fake.attempts == 1 and waits == []
    assert "key *** echoed" in reason(finished)
    assert_key_hidden(finished)


def test_connection_refused_is_unreachable_after_retries(mailer, waits):
    port = _closed_port()
    request = build_request(DETAILS, KEY, MESSAGE, "a@example.com", base_url=f"http://127.0.0.1:{port}")
    finished = mailer.send(request)
    assert result(finished) == outcomes.UNREACHABLE
    assert reason(finished) == (f"connection to 127.0.0.1:{port} refused (is the base URL right and the service up?)")
    assert finished.attempts == 4 and len(waits) == 3 and status_of_result(result(finished)) == 502
    assert_key_hidden(finished)


@pytest.mark.parametrize(
    ("failure", "says"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "cannot resolve api.mailgun.net:443"),
        (TimeoutError("timed out"), "connecting to api.mailgun.net:443 timed out"),
    ],
)
def test_dns_failure_and_connect_timeout_are_retried_then_unreachable(monkeypatch, mailer, waits, failure, says):
    calls = []

    def fail(*args, **kwargs):
        calls.append(args[0])
        raise failure

    # The request never left this machine, so a retry cannot send twice.
    monkeypatch.setattr(urllib3.util.connection, "create_connection", fail)
    finished = mailer.send(build_request(DETAILS, KEY, MESSAGE, "a@example.com"))
    assert result(finished) == outcomes.UNREACHABLE and says in reason(finished)
    assert calls == [("api.mailgun.net", 443)] * 4 and len(waits) == 3
    assert_key_hidden(finished)


def test_tls_failure_is_unreachable_and_names_tls(fake, mailer):
    request = build_request(DETAILS, KEY, MESSAGE, "a@example.com", base_url=f"https://127.0.0.1:{fake.port}")
    finished = mailer.send(request)
    assert result(finished) == outcomes.UNREACHABLE
    assert reason(finished).startswith(f"TLS error talking to 127.0.0.1:{fake.port}")
    assert_key_hidden(finished)


def test_every_failure_has_an_api_status():
    for failed, status in [(outcomes.BAD_ANSWER, 502), (outcomes.UNREACHABLE, 502), (outcomes.TIMEOUT, 504),
                           (outcomes.REFUSED, 502)]:
        assert status_of_result(failed) == status


def test_random_faults_are_absorbed_by_retries(fake):
    fake.random_faults(p_5xx=0.2, p_429=0.1, p_slow=0, p_close=0, seed=7)  # a close is never retried
    with Mailer(retries=10, sleep=lambda s: None) as mailer:
        results = [mailer.send(request_to(fake)) for _ in range(30)]
    assert len(fake.sent) == 30 and sum(r.attempts for r in results) == fake.attempts > 30


# --- the fake itself ------------------------------------------------------------------------


def test_fake_accepts_multipart_and_checks_required_fields(fake):
    url = f"{fake.base_url}/v3/{DOMAIN}/messages"
    parts = [("from", (None, "a@mg.example.com")), ("to", (None, "b@example.com")), ("text", (None, "hi"))]
    answer = requests.post(url, files=[*parts, ("attachment", ("report.csv", b"x,y"))], auth=("api", KEY), timeout=5)
    assert answer.status_code == 200 and answer.json()["message"] == "Queued. Thank you."
    assert fake.sent[0].field("attachment") == "report.csv"
    answer = requests.post(url, files=parts[1:], auth=("api", KEY), timeout=5)
    assert (answer.status_code, answer.json()) == (400, {"message": "'from' parameter is missing"})
    answer = requests.post(url, data={"from": "a@mg.example.com", "to": "b@example.com"}, auth=("api", KEY), timeout=5)
    assert answer.status_code == 400 and "Need at least one of 'text', 'html'" in answer.json()["message"]
    answer = requests.post(url, data={}, auth=("user", KEY), timeout=5)
    assert (answer.status_code, answer.text) == (401, "Forbidden")


def test_fake_runs_standalone_and_stops_on_sigterm():
    script = Path(__file__).with_name("mailgun_fake.py")
    command = [sys.executable, str(script), "--port", "0", "--domain", f"{DOMAIN}={KEY}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            banner = process.stdout.readline()
            base_url = banner.split()[3]
            request = build_request(DETAILS, KEY, MESSAGE, "a@example.com", base_url=base_url)
            with Mailer(retries=0) as mailer:
                finished = mailer.send(request)
                assert result(finished) == outcomes.SENT and finished.attempts == 1
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0


def test_proxy_settings_from_the_environment_are_honoured(fake, monkeypatch):
    """HTTP(S)_PROXY and NO_PROXY work as with plain requests, though read once per Mailgun origin."""
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    monkeypatch.setenv("NO_PROXY", "")
    with Mailer(retries=0) as mailer:
        assert result(mailer.send(request_to(fake))) == outcomes.UNREACHABLE  # through the proxy, which is not there
    assert fake.attempts == 0
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Mailer(retries=0) as mailer:
        assert mailer.send(request_to(fake)).outcome.provider_id  # the proxy is bypassed for this host
        assert mailer.send(request_to(fake)).outcome.provider_id  # and stays so with the settings read once
    assert fake.attempts == 2


def _closed_port() -> int:
    """A port nothing listens on: bound, then closed again at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
