"""Twilio SendGrid (`twilio_email`, contract section 13) through the API, against the SendGrid stand-in.

What reaches SendGrid, its config and secrets by fides' names, and how each of its answers is read: the
sandbox (a success without an id), a 403 naming `from` (the message refused) or not (the key refused), its
errors in its own words, a 429's X-RateLimit-Reset, a 2xx without an id. The promises every provider keeps
(idempotency, the outbox, never twice) are in test_provider_guarantees.py.
"""

from __future__ import annotations

import json

import pytest

from fidesmail.core.email import Message
from fidesmail.providers.base import Email
from fidesmail.providers.http import Transport
from fidesmail.providers.sendgrid.provider import SendGrid
from fidesmail.web import auth
from tests.provider_cases import SENDGRID, SENDGRID_KEY, URL, configure, send_headers
from tests.standins.sendgrid import SendGridFake
from tests.support import bearer, record, tried

SEND = "/api/v1/email/send"
VERIFY = {"action_type": "subject_identity_verification", "to": "subject@example.com",
          "body_params": {"verification_code": "246810", "verification_code_ttl_seconds": 600}}


@pytest.fixture
def fake():
    with SendGridFake([SENDGRID_KEY], verified_senders=["privacy@example.com"]) as fake:
        yield fake


@pytest.fixture
def client(make_app, fake):
    client = make_app(SENDGRID_BASE_URL=fake.base_url, MAILGUN_TIMEOUT=1.0, MAILGUN_RETRIES=1,
                      MAILGUN_BACKOFF=0.01).test_client()
    configure(client, SENDGRID, fake)
    return client


def send(client, **headers):
    return client.post(SEND, json=VERIFY, headers=send_headers(**headers))


def test_the_request_is_the_mail_send_json_the_contract_describes():
    provider = SendGrid(Transport(), "http://sendgrid.test")
    message = Message(subject="Your code", html="<p>246810</p>", text="246810", tag="subject_identity_verification")
    details = {"twilio_email_from": "Privacy Team <privacy@example.com>"}
    request = provider.request(details, {"twilio_api_key": SENDGRID_KEY},
                               Email("Subject@Example.com", message, "msg_01TEST", test_mode=False))
    assert request.url == "http://sendgrid.test/v3/mail/send"
    assert request.headers == {"Authorization": f"Bearer {SENDGRID_KEY}", "Content-Type": "application/json"}
    assert json.loads(request.body) == {
        "personalizations": [{"to": [{"email": "Subject@Example.com"}]}],
        "from": {"email": "privacy@example.com", "name": "Privacy Team"},
        "subject": "Your code",
        "content": [{"type": "text/plain", "value": "246810"}, {"type": "text/html", "value": "<p>246810</p>"}],
        "categories": ["subject_identity_verification"],
        "custom_args": {"fidesmail_message_id": "msg_01TEST"},
    }
    assert SENDGRID_KEY not in repr(request) and "Subject@" not in repr(request)
    sandboxed = provider.request(details, {"twilio_api_key": SENDGRID_KEY},
                                 Email("a@example.com", message, "msg_01TEST", test_mode=True))
    assert json.loads(sandboxed.body)["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_a_send_carries_the_records_id_and_the_action_type(client, fake):
    answer = send(client)
    assert answer.status_code == 200, answer.json
    [accepted] = fake.accepted
    assert answer.json["id"] == accepted.provider_id and answer.json["provider"] == "twilio_email"
    assert accepted.extra["custom_args"] == {"fidesmail_message_id": answer.json["message_id"]}
    assert accepted.extra["categories"] == ["subject_identity_verification"]
    assert accepted.sender == "Privacy Team <privacy@example.com>" and "246810" in accepted.text


def test_a_403_naming_from_refuses_the_message_and_says_what_to_verify(client, fake):
    assert client.patch(f"{URL}/my_provider", json={"details": {"twilio_email_from": "a@unverified.example"}},
                        headers=bearer()).status_code == 200
    answer = send(client)
    assert answer.status_code == 502
    assert answer.json["detail"].startswith("SendGrid answered 403: The from address does not match a verified "
                                            "Sender Identity")
    assert "(field: from)" in answer.json["detail"] and "twilio_email_from" in answer.json["detail"]
    assert fake.attempts == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_401_or_a_403_about_the_key_says_to_check_the_key(client, fake, status):
    fake.fail_next(status, message="access forbidden" if status == 403 else "authorization required")
    answer = send(client)
    assert answer.status_code == 502 and fake.attempts == 1
    assert answer.json["detail"].startswith(f"SendGrid answered {status}: ")
    assert "check the config's twilio_api_key secret" in answer.json["detail"]


def test_sendgrids_words_are_kept_without_the_key_or_an_address(client, fake, caplog):
    fake.fail_next(400, message=f"The key {SENDGRID_KEY} cannot send to someone.else@example.org")
    answer = send(client)
    assert answer.status_code == 502
    assert answer.json["detail"] == "SendGrid answered 400: The key *** cannot send to s***@example.org"
    assert SENDGRID_KEY not in caplog.text and "someone.else" not in caplog.text


def test_a_429_beyond_the_callers_30_s_fails_now_and_the_outbox_waits_for_the_reset(client, fake):
    fake.throttle_next(retry_after=120)  # X-RateLimit-Reset two minutes from now
    answer = send(client)
    assert answer.status_code == 502 and fake.attempts == 1
    assert "would pass the 30 s limit" in answer.json["detail"]
    fake.throttle_next(retry_after=120)
    queued = send(client, Prefer="respond-async").json["message_id"]
    got = tried(client, queued)
    assert got["status"] == "queued" and [a["outcome"] for a in got["attempts"]] == ["rate_limited"]
    assert "next try at" in got["failure_reason"]


def test_a_2xx_without_an_x_message_id_is_unknown_never_sent_again(client, fake):
    fake.non_json_200_next()
    answer = send(client)
    assert answer.status_code == 502 and "without an X-Message-Id" in answer.json["detail"]
    got = record(client, answer.json["message_id"])
    assert got["status"] == "unknown" and fake.attempts == 1


def test_the_test_endpoint_uses_sandbox_mode(client, fake):
    answer = client.post(f"{URL}/my_provider/test", json={"to": "you@example.com"}, headers=bearer(auth.SEND))
    assert answer.json == {"test_status": "succeeded", "failure_reason": None}
    assert fake.attempts == 1 and fake.accepted == []  # checked by SendGrid, sent to no one


def test_the_config_and_its_secrets_take_fides_names(client, fake):
    config = client.get(f"{URL}/my_provider", headers=bearer()).json
    assert config["details"] == {"twilio_email_from": "Privacy Team <privacy@example.com>"}
    assert config["secrets_set"] is True
    bad = client.post(URL, json={"name": "No from", "service_type": "twilio_email", "details": {}}, headers=bearer())
    assert bad.status_code == 422
    assert bad.json["detail"] == [{"loc": ["body", "details", "twilio_email_from"], "msg": "field required",
                                   "type": "missing"}]
    foreign = client.put(f"{URL}/my_provider/secret", json={"mailgun_api_key": "key-1"}, headers=bearer())
    assert foreign.status_code == 422
    assert foreign.json["detail"] == [
        {"loc": ["body", "twilio_api_key"], "msg": "field required", "type": "missing"},
        {"loc": ["body", "mailgun_api_key"], "msg": "extra fields not permitted", "type": "extra_forbidden"}]
    # The webhook's public key alone keeps the API key.
    assert client.put(f"{URL}/my_provider/secret", json={"twilio_email_webhook_public_key": "MFkwEwYHKoZI"},
                      headers=bearer()).status_code == 200
    assert send(client).status_code == 200

