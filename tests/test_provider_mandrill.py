"""Mailchimp Transactional (`mailchimp_transactional`, contract section 13) through the API, against its stand-in.

What reaches messages/send, its config and secrets by fides' names, and how its answers are read: one answer
per recipient (sent, queued, rejected, invalid), and errors that are all HTTP 500, told apart by their name
(Invalid_Key, ValidationError, anything else). The promises every provider keeps are in
test_provider_guarantees.py.
"""

from __future__ import annotations

import json

import pytest
import requests

from fidesmail.core.email import Message
from fidesmail.providers.base import Email
from fidesmail.providers.http import Transport
from fidesmail.providers.mandrill import attempt
from fidesmail.providers.mandrill.provider import Mandrill
from tests.provider_cases import MANDRILL, MANDRILL_KEY, URL, configure, send_headers
from tests.standins.mandrill import MandrillFake
from tests.support import bearer, record

SEND = "/api/v1/email/send"
TO = "subject@example.com"
VERIFY = {"action_type": "privacy_request_receipt", "to": TO, "body_params": {"request_types": ["access"]}}


@pytest.fixture
def fake():
    with MandrillFake([MANDRILL_KEY], verified_domains=["example.com"]) as fake:
        yield fake


@pytest.fixture
def client(make_app, fake):
    client = make_app(MANDRILL_BASE_URL=fake.base_url, MAILGUN_TIMEOUT=1.0, MAILGUN_RETRIES=1,
                      MAILGUN_BACKOFF=0.01).test_client()
    configure(client, MANDRILL, fake)
    return client


def send(client, **headers):
    return client.post(SEND, json=VERIFY, headers=send_headers(**headers))


def test_the_request_is_the_messages_send_json_the_contract_describes():
    provider = Mandrill(Transport(), "http://mandrill.test/api/1.0")
    message = Message(subject="Received", html="<p>We have it</p>", text="We have it", tag="privacy_request_receipt")
    request = provider.request({"email_from": "Privacy Team <privacy@example.com>"},
                               {"mailchimp_transactional_api_key": MANDRILL_KEY},
                               Email("Subject@Example.com", message, "msg_01TEST"))
    assert request.url == "http://mandrill.test/api/1.0/messages/send"
    assert json.loads(request.body) == {"key": MANDRILL_KEY, "message": {
        "from_email": "privacy@example.com", "from_name": "Privacy Team", "subject": "Received",
        "html": "<p>We have it</p>", "text": "We have it", "to": [{"email": "Subject@Example.com", "type": "to"}],
        "tags": ["privacy_request_receipt"], "metadata": {"fidesmail_message_id": "msg_01TEST"}}}
    assert MANDRILL_KEY not in repr(request) and "Subject@" not in repr(request)


def test_a_send_carries_the_records_id_and_answers_mandrills_id(client, fake):
    answer = send(client)
    assert answer.status_code == 200, answer.json
    [accepted] = fake.accepted
    assert (answer.json["id"], answer.json["message"], answer.json["provider"]) == (
        accepted.provider_id, "sent", "mailchimp_transactional")
    assert accepted.extra["metadata"] == {"fidesmail_message_id": answer.json["message_id"]}
    assert accepted.extra["tags"] == ["privacy_request_receipt"]
    assert record(client, answer.json["message_id"])["provider_message_id"] == accepted.provider_id


def test_a_queued_recipient_is_accepted(client, fake):
    fake.script_events(TO, "queued")
    answer = send(client)
    assert answer.status_code == 200 and answer.json["message"] == "queued"
    assert fake.accepted[0].extra["status"] == "queued"


@pytest.mark.parametrize(("outcome", "words"), [("rejected", "the recipient was rejected: hard-bounce"),
                                                ("invalid", "the recipient was invalid")])
def test_a_rejected_or_invalid_recipient_fails_at_once_with_its_reason(client, fake, outcome, words):
    fake.script_events(TO, outcome)
    answer = send(client)
    assert answer.status_code == 502
    assert answer.json["detail"] == f"Mailchimp Transactional answered 200: {words}"
    got = record(client, answer.json["message_id"])
    assert got["status"] == "failed" and [a["outcome"] for a in got["attempts"]] == ["refused"]
    assert fake.attempts == 1 and fake.accepted == []


def test_an_invalid_key_is_refused_at_once_and_says_which_secret(make_app, fake):
    client = make_app(MANDRILL_BASE_URL=fake.base_url, MAILGUN_RETRIES=2).test_client()
    configure(client, MANDRILL, fake, secrets={"mailchimp_transactional_api_key": "md-wrong-key"})
    answer = send(client)
    assert answer.status_code == 502 and fake.attempts == 1
    assert answer.json["detail"] == ("Mailchimp Transactional answered 500: Invalid_Key: Invalid API key (check the "
                                     "config's mailchimp_transactional_api_key secret)")


def test_any_other_500_is_retried_and_its_words_keep_no_key(client, fake, caplog):
    fake.fail_next(500, message=f"Something broke for key {MANDRILL_KEY}", times=2)
    answer = send(client)
    assert answer.status_code == 502 and fake.attempts == 2  # FIDESMAIL_MAILGUN_RETRIES=1: tried again once
    assert answer.json["detail"] == "Mailchimp Transactional answered 500: GeneralError: Something broke for key ***"
    assert MANDRILL_KEY not in caplog.text
    fake.fail_next(500)
    assert send(client).status_code == 200


def test_its_own_500_answers_are_told_apart_by_their_name(fake):
    """Real answers of the stand-in (built from Mandrill's API reference), read as fidesmail reads them."""
    def classify(body):
        response = requests.post(fake.base_url + "/messages/send", json=body, timeout=5)
        assert response.status_code == 500
        return attempt.classify(response, (MANDRILL_KEY,), "mandrill.test:443", TO)

    malformed = classify({"key": MANDRILL_KEY, "message": {"to": []}})
    assert type(malformed).__name__ == "Refused" and not malformed.key_refused
    assert malformed.detail.startswith("ValidationError: Validation error:")
    wrong_key = classify({"key": "md-nope", "message": {}})
    assert type(wrong_key).__name__ == "Refused" and wrong_key.key_refused
    fake.fail_next(500)
    general = classify({"key": MANDRILL_KEY, "message": {}})
    assert type(general).__name__ == "Retry" and general.http_status == 500


def test_the_config_and_its_secrets_take_fides_names(client, fake):
    config = client.get(f"{URL}/my_provider", headers=bearer()).json
    assert config["details"] == {"email_from": "Privacy Team <privacy@example.com>"} and config["secrets_set"]
    bad = client.post(URL, json={"name": "Bad", "service_type": "mailchimp_transactional",
                                 "details": {"email_from": "two@example.com, three@example.com"}}, headers=bearer())
    assert bad.status_code == 422 and bad.json["detail"][0]["loc"] == ["body", "details", "email_from"]
    foreign = client.put(f"{URL}/my_provider/secret", json={"twilio_api_key": "SG.x"}, headers=bearer())
    assert foreign.status_code == 422 and [p["loc"][-1] for p in foreign.json["detail"]] == [
        "mailchimp_transactional_api_key", "twilio_api_key"]
    assert client.put(f"{URL}/my_provider/secret", json={"mailchimp_transactional_webhook_key": "whk-123"},
                      headers=bearer()).status_code == 200
    assert send(client).status_code == 200  # the webhook key alone kept the API key
