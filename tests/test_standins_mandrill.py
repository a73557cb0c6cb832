"""The Mailchimp Transactional (Mandrill) stand-in, proven with Mailchimp's own `mailchimp-transactional` client,
and its webhook signatures checked with django-anymail's published algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from urllib.parse import parse_qsl

import mailchimp_transactional
import pytest
import requests
from mailchimp_transactional.api_client import ApiClientError

from tests.standins.inbox import Inbox
from tests.standins.mandrill import MandrillFake
from tests.support import ROOT

KEY = "md-test-key"
SENDER = "privacy@example.com"


@pytest.fixture
def fake():
    with MandrillFake({KEY}) as fake:
        yield fake


def client(fake, key=KEY) -> mailchimp_transactional.Client:
    """The official client pointed at the stand-in (its host is a plain attribute of its ApiClient)."""
    mailchimp = mailchimp_transactional.Client(key)
    mailchimp.api_client.host = fake.base_url
    mailchimp.api_client.set_timeout(5)
    return mailchimp


def message(to="subject@example.com", fidesmail_id="msg_1", **changes) -> dict:
    return {"message": {"from_email": SENDER, "from_name": "Privacy Team", "subject": "Your code", "html": "<p>123</p>",
                        "text": "123", "to": [{"email": to, "type": "to"}], "tags": ["identity_verification"],
                        "metadata": {"fidesmail_message_id": fidesmail_id}, **changes}}


def anymail_check(key: str, url: str, form: dict, signature: str) -> bool:
    """django-anymail's check, following anymail/webhooks/mandrill.py (MandrillSignatureMixin.validate_request):
    signed_data = url, then for each key in sorted(params): key + params[key]; b64encode(HMAC-SHA1) compared."""
    signed_data = url
    for name in sorted(form.keys()):
        signed_data += name + form[name]
    expected = base64.b64encode(hmac.new(key=key.encode("ascii"), msg=signed_data.encode("utf-8"),
                                         digestmod=hashlib.sha1).digest())
    return hmac.compare_digest(signature.encode(), expected)


def mandrill_error(error: ApiClientError) -> tuple[int, str]:
    return error.status_code, error.text["name"]


def test_the_official_client_sends_and_the_message_is_readable_back(fake):
    (answer,) = client(fake).messages.send(message())
    assert answer["email"] == "subject@example.com" and answer["status"] == "sent" and len(answer["_id"]) == 32
    (accepted,) = fake.wait_for_accepted(1)
    assert (accepted.provider_id, accepted.recipient, accepted.sender, accepted.subject) == (
        answer["_id"], "subject@example.com", f"Privacy Team <{SENDER}>", "Your code")
    assert (accepted.html, accepted.text, accepted.fidesmail_message_id) == ("<p>123</p>", "123", "msg_1")
    assert accepted.extra["tags"] == ["identity_verification"]


def test_per_recipient_answers_rejected_invalid_queued(fake):
    fake.script_events("bounced-before@example.com", "rejected")
    fake.script_events("busy@example.com", "queued")
    mailchimp = client(fake)
    (rejected,) = mailchimp.messages.send(message(to="bounced-before@example.com"))
    assert (rejected["status"], rejected["reject_reason"]) == ("rejected", "hard-bounce")
    (invalid,) = mailchimp.messages.send(message(to="not-an-address"))
    assert invalid["status"] == "invalid"
    (queued,) = mailchimp.messages.send(message(to="busy@example.com"))
    assert queued["status"] == "queued"
    assert [m.recipient for m in fake.accepted] == ["busy@example.com"]


def test_an_unverified_sending_domain_is_rejected_unsigned():
    with MandrillFake({KEY}, verified_domains={"verified.example"}) as fake:
        (answer,) = client(fake).messages.send(message())
        assert (answer["status"], answer["reject_reason"]) == ("rejected", "unsigned")
        assert fake.accepted == []


def test_errors_are_500_and_named(fake):
    with pytest.raises(ApiClientError) as refused:
        client(fake, "md-wrong").messages.send(message())
    assert mandrill_error(refused.value) == (500, "Invalid_Key")
    assert refused.value.text == {"status": "error", "code": -1, "name": "Invalid_Key", "message": "Invalid API key"}
    for broken in ({"message": {"to": []}}, message(from_email="nobody"), {"message": "text"}):
        with pytest.raises(ApiClientError) as refused:
            client(fake).messages.send(broken)
        assert mandrill_error(refused.value) == (500, "ValidationError")
        assert refused.value.text["message"].startswith("Validation error: ")
    fake.fail_next(500)
    with pytest.raises(ApiClientError) as refused:
        client(fake).messages.send(message())
    assert mandrill_error(refused.value) == (500, "GeneralError")
    fake.throttle_next(retry_after=3)
    answer = requests.post(fake.base_url + "/messages/send", json={"key": KEY, **message()}, timeout=5)
    assert (answer.status_code, answer.headers["Retry-After"], answer.json()["status"]) == (429, "3", "error")
    assert fake.accepted == [] and fake.attempts == 6


def test_dropped_connections_and_slow_answers_reach_the_client(fake):
    fake.reset_next()
    with pytest.raises(requests.ConnectionError):
        client(fake).messages.send(message())
    fake.slow_next(2)
    slow = client(fake)
    slow.api_client.set_timeout(0.3)
    with pytest.raises(requests.Timeout):
        slow.messages.send(message())
    fake.non_json_200_next()
    answer = client(fake).messages.send(message())  # the client hands back the text when it is not JSON
    assert answer.startswith("<html>")
    assert fake.accepted == []


def test_webhooks_api_and_signed_events_pass_anymails_check(fake):
    mailchimp = client(fake)
    with Inbox() as inbox:
        url = inbox.base_url + "/api/v1/email/webhooks/mailchimp_transactional/key"
        hook = mailchimp.webhooks.add({"url": url, "description": "fidesmail", "events": ["send", "hard_bounce"]})
        assert hook["url"] == url and hook["auth_key"] and hook["events"] == ["send", "hard_bounce"]
        assert [h["id"] for h in mailchimp.webhooks.list()] == [hook["id"]]
        fake.script_events("gone@example.com", "hard_bounce")
        sent = mailchimp.messages.send(message())[0]["_id"]
        bounced = mailchimp.messages.send(message(to="gone@example.com", fidesmail_id="msg_2"))[0]["_id"]
        posts = inbox.wait_for_posts(2)
    forms = [dict(parse_qsl(post.body.decode())) for post in posts]
    for post, form in zip(posts, forms, strict=True):
        assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert anymail_check(hook["auth_key"], url, form, post.headers["X-Mandrill-Signature"])
    events = [json.loads(form["mandrill_events"])[0] for form in forms]
    assert [(e["event"], e["_id"]) for e in events] == [("send", sent), ("hard_bounce", bounced)]
    assert events[0]["msg"]["metadata"]["fidesmail_message_id"] == "msg_1" and events[0]["ts"] > 0
    assert events[1]["msg"]["metadata"] == {"fidesmail_message_id": "msg_2"}
    assert events[1]["msg"]["diag"].startswith("smtp;550") and events[1]["msg"]["bounce_description"] == "bad_mailbox"
    altered = {**forms[1], "mandrill_events": forms[1]["mandrill_events"].replace("hard_bounce", "send")}
    assert not anymail_check(hook["auth_key"], url, altered, posts[1].headers["X-Mandrill-Signature"])
    assert not anymail_check(hook["auth_key"], url + "x", forms[1], posts[1].headers["X-Mandrill-Signature"])
    assert mailchimp.webhooks.delete({"id": hook["id"]})["id"] == hook["id"]
    with pytest.raises(ApiClientError) as refused:
        mailchimp.webhooks.info({"id": hook["id"]})
    assert mandrill_error(refused.value) == (500, "Unknown_Webhook")


def test_a_webhook_only_gets_its_events_and_a_refusing_receiver_gets_retries(fake):
    fake.events.retry_delay = 0.01
    with Inbox(status=500) as inbox:
        fake.add_webhook(inbox.base_url + "/only-opens", events=["open"])
        fake.add_webhook(inbox.base_url + "/all")
        fake.script_events("reader@example.com", "open")
        client(fake).messages.send(message(to="reader@example.com"))
        posts = fake.wait_for_webhooks(9)  # send and open to /all, open to /only-opens: each tried 3 times
    assert sorted({(p.url.rpartition("/")[2], p.events) for p in posts}) == [
        ("all", ("open",)), ("all", ("send",)), ("only-opens", ("open",))]
    assert len(posts) == 9 and {p.status for p in posts} == {500} and max(p.attempt for p in posts) == 3


def test_signing_helper_on_the_command_line():
    url = "http://127.0.0.1:8080/api/v1/email/webhooks/mailchimp_transactional/key"
    printed = subprocess.run([sys.executable, "-m", "tests.standins.mandrill_events", "--key", "whk", "--url", url,
                              "--event", "hard_bounce", "--fidesmail-message-id", "msg_5"],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout.splitlines()
    signature = printed[0].split(": ", 1)[1]
    form = dict(parse_qsl(printed[1]))
    assert anymail_check("whk", url, form, signature)
    assert json.loads(form["mandrill_events"])[0]["msg"]["metadata"]["fidesmail_message_id"] == "msg_5"


def test_runs_standalone_and_stops_on_sigterm():
    command = [sys.executable, "-m", "tests.standins.mandrill", "--port", "0", "--key", KEY]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            base_url = process.stdout.readline().split()[-1]
            mailchimp = mailchimp_transactional.Client(KEY)
            mailchimp.api_client.host = base_url
            assert mailchimp.messages.send(message())[0]["status"] == "sent"
            assert mailchimp.users.ping() == "PONG!"
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
