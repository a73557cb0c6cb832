"""The SendGrid stand-in, proven with SendGrid's own Python package: its client sends through it and sees each
error as SendGrid's client reports them, and its EventWebhook verifier accepts the stand-in's signed events."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from python_http_client import exceptions as sg_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import Category, CustomArg, Mail, MailSettings, SandBoxMode

from tests.standins.inbox import Inbox
from tests.standins.sendgrid import SendGridFake
from tests.standins.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER, EventSigner
from tests.support import ROOT

KEY = "SG.test-key"
SENDER = "privacy@example.com"


@pytest.fixture
def fake():
    with SendGridFake({KEY}, verified_senders={SENDER, "@verified.example"}) as fake:
        yield fake


def mail(to="subject@example.com", sender=SENDER, fidesmail_id="msg_1", sandbox=False) -> Mail:
    message = Mail(from_email=sender, to_emails=to, subject="Your code", plain_text_content="Code: 123",
                   html_content="<p>Code: <b>123</b></p>")
    message.custom_arg = CustomArg("fidesmail_message_id", fidesmail_id)
    message.category = Category("identity_verification")
    if sandbox:
        message.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
    return message


def client(fake, key=KEY) -> SendGridAPIClient:
    return SendGridAPIClient(key, host=fake.base_url)


def sendgrid_errors(error: sg_errors.HTTPError) -> list[dict]:
    return json.loads(error.body)["errors"]


def test_the_official_client_sends_and_the_message_is_readable_back(fake):
    answer = client(fake).send(mail())
    assert answer.status_code == 202 and answer.body == b""
    x_message_id = answer.headers["X-Message-Id"]
    (accepted,) = fake.wait_for_accepted(1)
    assert (accepted.provider_id, accepted.recipient, accepted.sender, accepted.subject) == (
        x_message_id, "subject@example.com", SENDER, "Your code")
    assert (accepted.text, accepted.html) == ("Code: 123", "<p>Code: <b>123</b></p>")
    assert accepted.fidesmail_message_id == "msg_1"
    assert accepted.extra["categories"] == ["identity_verification"]
    assert fake.attempts == 1


def test_a_domain_authenticated_sender_is_accepted_too(fake):
    assert client(fake).send(mail(sender="notices@verified.example")).status_code == 202


def test_sandbox_mode_answers_200_without_an_id_and_sends_nothing(fake):
    answer = client(fake).send(mail(sandbox=True))
    assert (answer.status_code, answer.body, answer.headers.get("X-Message-Id")) == (200, b"", None)
    assert fake.accepted == []


def test_keys_refused_as_sendgrid_refuses_them(fake):
    with pytest.raises(sg_errors.UnauthorizedError) as refused:
        client(fake, "SG.wrong").send(mail())
    assert sendgrid_errors(refused.value) == [
        {"message": "The provided authorization grant is invalid, expired, or revoked", "field": None, "help": None}]
    answer = requests.post(fake.base_url + "/v3/mail/send", json=mail().get(), timeout=5)
    assert answer.status_code == 401 and answer.json()["errors"][0]["message"] == "authorization required"
    assert fake.accepted == []


def test_an_unverified_from_is_403_naming_the_from_field(fake):
    with pytest.raises(sg_errors.ForbiddenError) as refused:
        client(fake).send(mail(sender="someone@unverified.example"))
    (error,) = sendgrid_errors(refused.value)
    assert error["field"] == "from" and "does not match a verified Sender Identity" in error["message"]


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda body: body.pop("personalizations"), "personalizations", "at least one personalization"),
    (lambda body: body.pop("subject"), "subject", "The subject is required"),
    (lambda body: body.pop("from"), "from.email", "The from object must be provided"),
    (lambda body: body.update({"from": {"email": "not-an-address"}}), "from.email", "does not contain a valid"),
    (lambda body: body.update(content=[]), "content", "at least one defined content block"),
    (lambda body: body["content"].reverse(), "content", "text/plain needs to be first"),
    (lambda body: body.update(custom_args={"fidesmail_message_id": 7}), "custom_args", "must be strings"),
    (lambda body: body.update(categories=[f"c{n}" for n in range(11)]), "categories", "limit of 10 categories"),
    (lambda body: body["personalizations"][0].update(to=[{"email": "nobody"}]), "personalizations.0.to.0.email",
     "valid email address"),
    (lambda body: body.update(mail_settings={"sandbox_mode": {"enable": "yes"}}), "mail_settings.sandbox_mode.enable",
     "boolean"),
])
def test_bodies_are_checked_as_sendgrid_checks_them(fake, change, field, words):
    body = mail().get()
    change(body)
    with pytest.raises(sg_errors.BadRequestsError) as refused:
        client(fake).client.mail.send.post(request_body=body)
    errors = sendgrid_errors(refused.value)
    assert any(error["field"] == field and words in error["message"] for error in errors), errors
    assert all(set(error) == {"message", "field", "help"} for error in errors)
    assert fake.accepted == []


def test_throttling_is_429_with_sendgrids_rate_limit_headers(fake):
    fake.throttle_next(retry_after=30)
    with pytest.raises(sg_errors.TooManyRequestsError) as refused:
        client(fake).send(mail())
    headers = refused.value.headers
    assert headers["X-RateLimit-Limit"] == "600" and headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) > 0
    assert sendgrid_errors(refused.value)[0]["message"] == "too many requests"
    assert client(fake).send(mail()).status_code == 202  # the next one goes through


@pytest.mark.parametrize(("status", "error"), [(500, sg_errors.InternalServerError),
                                                (503, sg_errors.ServiceUnavailableError)])
def test_server_errors_reach_the_client_as_its_own_errors(fake, status, error):
    fake.fail_next(status)
    with pytest.raises(error) as refused:
        client(fake).send(mail())
    assert sendgrid_errors(refused.value)[0]["message"]
    assert fake.accepted == [] and fake.attempts == 1


def test_dropped_connections_and_slow_answers_reach_the_client(fake):
    fake.close_next()
    with pytest.raises(OSError):  # http.client.RemoteDisconnected under urllib
        client(fake).send(mail())
    fake.slow_next(2)
    with pytest.raises(OSError):  # a timeout
        client(fake).client.mail.send.post(request_body=mail().get(), timeout=0.3)
    assert fake.attempts == 2 and fake.accepted == []


def test_event_webhook_settings_and_signed_events_verify_with_sendgrids_verifier(fake):
    sg = client(fake)
    with Inbox() as inbox:
        url = inbox.base_url + "/webhooks/twilio_email/key"
        settings = sg.client.user.webhooks.event.settings.patch(request_body={
            "enabled": True, "url": url, "processed": True, "delivered": True, "bounce": True, "dropped": True})
        assert json.loads(settings.body)["url"] == url
        signed = json.loads(sg.client.user.webhooks.event.settings.signed.patch(request_body={"enabled": True}).body)
        public_key = signed["public_key"]
        assert json.loads(sg.client.user.webhooks.event.settings.signed.get().body)["public_key"] == public_key
        fake.script_events("bounces@example.com", "bounce")
        x_message_id = sg.send(mail()).headers["X-Message-Id"]
        sg.send(mail(to="bounces@example.com", fidesmail_id="msg_2"))
        posts = inbox.wait_for_posts(4)
    verifier = EventWebhook()
    key = verifier.convert_public_key_to_ecdsa(public_key)
    events = []
    for post in posts:
        payload = post.body.decode()
        assert verifier.verify_signature(payload, post.headers[SIGNATURE_HEADER], post.headers[TIMESTAMP_HEADER], key)
        events += json.loads(payload)
    assert [(e["email"], e["event"]) for e in events] == [
        ("subject@example.com", "processed"), ("subject@example.com", "delivered"),
        ("bounces@example.com", "processed"), ("bounces@example.com", "bounce")]
    assert events[1]["sg_message_id"].startswith(x_message_id + ".") and events[1]["fidesmail_message_id"] == "msg_1"
    assert events[3]["fidesmail_message_id"] == "msg_2" and events[3]["reason"].startswith("550 5.1.1")
    assert len({e["sg_event_id"] for e in events}) == 4
    altered = posts[1].body.replace(b"delivered", b"bounce")
    assert not verifier.verify_signature(altered.decode(), posts[1].headers[SIGNATURE_HEADER],
                                         posts[1].headers[TIMESTAMP_HEADER], key)
    assert fake.wait_for_webhooks(4)[0].status == 200


def test_webhooks_by_id_and_unsigned_ones(fake):
    sg = client(fake)
    with Inbox() as inbox:
        created = sg.client.user.webhooks.event.settings.post(request_body={"url": inbox.base_url, "delivered": True})
        hook = json.loads(created.body)
        assert created.status_code == 201 and "public_key" not in hook
        assert json.loads(sg.client.user.webhooks.event.settings.all.get().body)["webhooks"][0]["id"] == hook["id"]
        with pytest.raises(sg_errors.BadRequestsError):  # the same URL twice
            sg.client.user.webhooks.event.settings.post(request_body={"url": inbox.base_url})
        sg.send(mail())
        (post,) = inbox.wait_for_posts(1)
        assert SIGNATURE_HEADER not in post.headers and json.loads(post.body)[0]["event"] == "delivered"
        assert sg.client.user.webhooks.event.settings._(hook["id"]).delete().status_code == 204
        with pytest.raises(sg_errors.NotFoundError):
            sg.client.user.webhooks.event.settings._(hook["id"]).get()


def test_signing_helper_on_the_command_line(tmp_path):
    key_file = tmp_path / "sg.pem"
    command = [sys.executable, "-m", "tests.standins.sendgrid_events"]
    public_key = subprocess.run([*command, "public-key", "--key-file", str(key_file)], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
    printed = subprocess.run([*command, "sign", "--key-file", str(key_file), "--event", "bounce",
                              "--fidesmail-message-id", "msg_9"], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.splitlines()
    headers = dict(line.split(": ", 1) for line in printed[:2])
    assert EventWebhook(public_key).verify_signature(printed[2], headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])
    assert json.loads(printed[2])[0]["fidesmail_message_id"] == "msg_9"
    assert EventSigner.from_file(key_file).public_key == public_key  # the same key next time


def test_runs_standalone_and_stops_on_sigterm():
    command = [sys.executable, "-m", "tests.standins.sendgrid", "--port", "0", "--key", KEY, "--verify", SENDER]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            base_url = process.stdout.readline().split()[-1]
            assert client(type("Fake", (), {"base_url": base_url})).send(mail()).status_code == 202
            assert requests.get(base_url + "/fake/stats", timeout=5).json()["accepted"] == 1
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
