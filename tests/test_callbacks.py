"""Callbacks (contract section 15): every status change POSTed to the config's receiver, signed, in order, at
least once, through the receiver's outages; through HTTP, after real sends and real signed provider events.

fidesmail sends through the SendGrid stand-in, which posts its signed `processed` and `delivered` events
back to fidesmail served on 127.0.0.1; each status change reaches a real receiver (tests/standins/
callback_receiver.py) that checks X-Fidesmail-Signature as the README's verifier does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidesmail.records.schema import callbacks
from fidesmail.runtime import services
from fidesmail.web import auth
from tests.provider_cases import SENDGRID, SENDGRID_KEY, URL, send_headers
from tests.standins.callback_receiver import CallbackReceiver, verified
from tests.standins.sendgrid import SendGridFake
from tests.support import bearer, eventually, record
from tests.test_provider_events import SG_HOOK, TO, send

CALLBACK_KEY = "cb-" + "0123456789abcdef" * 2
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def receiver():
    with CallbackReceiver(key=CALLBACK_KEY) as one:
        yield one


@pytest.fixture
def sendgrid():
    with SendGridFake([SENDGRID_KEY], verified_senders=["privacy@example.com"]) as fake:
        fake.events.retry_delay = 0.05
        yield fake


def configure(client, sendgrid, callback_url, key=CALLBACK_KEY):
    """A SendGrid config naming a callback; its API key, webhook key and callback key sealed."""
    hook = sendgrid.add_webhook(client.served + SG_HOOK)
    body = {**SENDGRID.config("my_provider"), "callback": {"url": callback_url}}
    answer = client.post(URL, json=body, headers=bearer())
    assert answer.status_code == 200 and answer.json["callback"] == {"url": callback_url}, answer.json
    secrets = {"twilio_api_key": SENDGRID_KEY, "twilio_email_webhook_public_key": hook["public_key"]}
    if key is not None:
        secrets["callback_signing_key"] = key
    assert client.put(f"{URL}/my_provider/secret", json=secrets, headers=bearer()).status_code == 200


@pytest.fixture
def make_client(make_app, sendgrid, serve, database_url):
    def make(**settings):
        app = make_app(SENDGRID_BASE_URL=sendgrid.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0,
                       DATABASE_URL=database_url, OUTBOX_POLL=0.05, OUTBOX_BACKOFF=0.05, OUTBOX_MAX_BACKOFF=0.2,
                       **settings)
        client = app.test_client()
        client.served = serve(app)
        return client
    return make


@pytest.fixture
def client(make_client, sendgrid, receiver):
    client = make_client()
    configure(client, sendgrid, receiver.url)
    return client


def statuses(received, message_id):
    return [one.status for one in received if one.message_id == message_id and one.verified]


def waiting(client) -> int:
    with services.of(client.application).database.read() as connection:
        return connection.execute(select(func.count()).select_from(callbacks)).scalar()


def test_each_status_change_is_posted_signed_in_order(client, sendgrid, receiver):
    sent = send(client, to=TO)
    received = receiver.wait_for_callbacks(2)
    assert statuses(received, sent["message_id"]) == ["accepted", "delivered"]
    last = received[-1]
    assert set(last.body) == {"message_id", "reference", "status", "provider", "at", "failure_reason"}
    assert last.body["provider"] == "twilio_email" and last.body["failure_reason"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", last.body["at"])
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", last.signature)
    assert record(client, sent["message_id"])["status"] == "delivered"
    assert not [one for one in receiver.received if not one.verified]
    assert eventually(lambda: waiting(client) == 0, timeout=10)  # delivered callbacks leave nothing behind


def test_a_failure_is_posted_with_its_reason(client, sendgrid, receiver):
    sendgrid.script_events(TO, "bounce")
    sent = send(client, to=TO)
    receiver.wait_for_callbacks(2)
    failed = [one for one in receiver.delivered() if one.status == "failed"]
    assert failed[0].body["message_id"] == sent["message_id"]
    assert failed[0].body["failure_reason"] == "550 5.1.1 The email account that you tried to reach does not exist."


def test_a_receivers_outage_delays_callbacks_but_loses_none_and_keeps_their_order(client, sendgrid, receiver):
    receiver.answer_status = 503
    sent = send(client, to=TO)
    sendgrid.wait_for_webhooks(2)
    assert record(client, sent["message_id"])["status"] == "delivered"
    receiver.wait_for(lambda: len(receiver.received) >= 3)  # tried again, refused each time
    assert receiver.delivered() == []
    assert {one.status for one in receiver.received} == {"accepted"}  # never `delivered` before `accepted`
    metrics = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
    assert re.search(r"^fidesmail_callbacks_waiting 2\.0$", metrics, re.MULTILINE), metrics
    receiver.answer_status = 200
    receiver.wait_for_callbacks(2)
    assert statuses(receiver.delivered(), sent["message_id"]) == ["accepted", "delivered"]
    assert eventually(lambda: 'fidesmail_callbacks_total{outcome="delivered"} 2.0' in client.get(
        "/metrics", headers=bearer(auth.READ)).get_data(as_text=True), timeout=10)


def test_redirects_are_not_followed(client, sendgrid, receiver):
    with CallbackReceiver(key=CALLBACK_KEY) as elsewhere:
        receiver.redirect_to = elsewhere.url
        send(client, to=TO)
        receiver.wait_for(lambda: receiver.attempts >= 2)  # redirected, then tried again: still redirected
        assert elsewhere.received == [] and elsewhere.attempts == 0


def test_without_a_signing_key_nothing_is_posted_until_one_is_sealed(make_client, sendgrid, receiver):
    client = make_client()
    configure(client, sendgrid, receiver.url, key=None)
    sent = send(client, to=TO)
    sendgrid.wait_for_webhooks(2)
    assert receiver.attempts == 0 and waiting(client) == 2
    answer = client.put(f"{URL}/my_provider/secret", json={"callback_signing_key": CALLBACK_KEY}, headers=bearer())
    assert answer.status_code == 200
    assert statuses(receiver.wait_for_callbacks(2), sent["message_id"]) == ["accepted", "delivered"]
    send(client, to=TO)  # the API key was kept: a body with the callback key alone changes nothing else


def test_a_config_without_a_callback_enqueues_nothing(make_client, sendgrid, receiver):
    client = make_client()
    configure(client, sendgrid, receiver.url)
    assert client.patch(f"{URL}/my_provider", json={"callback": None}, headers=bearer()).json.get("callback") is None
    send(client, to=TO)
    sendgrid.wait_for_webhooks(2)
    assert waiting(client) == 0 and receiver.attempts == 0


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://"])
def test_a_callback_url_must_be_http(make_client, url):
    client = make_client()
    answer = client.post(URL, json={**SENDGRID.config("my_provider"), "callback": {"url": url}}, headers=bearer())
    assert answer.status_code == 422 and "callback" in answer.get_data(as_text=True)


def test_the_readmes_verifier_checks_a_real_callback(client, sendgrid, receiver):
    text = README.read_text()
    code = text.split("<!-- callback-verifier -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 12
    namespace: dict = {}
    exec(code, namespace)  # the README's own words, run as a receiver would
    send(client, to=TO)
    one = receiver.wait_for_callbacks(1)[0]
    raw = one.raw
    assert namespace["verify"](CALLBACK_KEY, one.signature, raw) is True
    assert namespace["verify"]("another-key-0123456789", one.signature, raw) is False
    assert namespace["verify"](CALLBACK_KEY, one.signature, raw.replace(b"accepted", b"failed")) is False
    assert verified(CALLBACK_KEY, one.signature, raw)


def test_a_cancelled_message_is_posted_as_cancelled(client, sendgrid, receiver):
    sendgrid.down()  # the provider refuses: the queued message waits for its retry, and is cancelled meanwhile
    answer = client.post("/api/v1/email/send", json={"config_key": "my_provider", "action_type": "test_message",
                                                     "to": TO}, headers={**send_headers(), "Prefer": "respond-async"})
    assert answer.status_code == 202, answer.json
    message_id = answer.json["message_id"]
    assert eventually(lambda: sendgrid.attempts >= 1, timeout=10)
    assert eventually(lambda: client.delete(f"/api/v1/email/messages/{message_id}",
                                            headers=send_headers()).status_code == 200, timeout=10)
    receiver.wait_for_callbacks(1)
    assert statuses(receiver.delivered(), message_id) == ["cancelled"]  # never `queued` or `sending`


@pytest.mark.slow
def test_two_replicas_share_the_callbacks_and_keep_each_messages_order(make_client, sendgrid, receiver):
    first = make_client()
    configure(first, sendgrid, receiver.url)
    second = make_client()  # a replica: the same tree, instance keys and database, its own deliverer
    sendgrid.add_webhook(second.served + SG_HOOK)  # each replica receives its own share of the events too
    sent = [send(first if number % 2 else second, to=f"r{number}@example.com") for number in range(12)]
    received = receiver.wait_for_callbacks(2 * len(sent), timeout=60)
    for message in sent:
        seen = [one.status for one in received if one.message_id == message["message_id"] and one.verified]
        assert seen[0] == "accepted" and "delivered" in seen and seen.index("delivered") > seen.index("accepted"), seen
        assert seen[-1] == "delivered" and "accepted" not in seen[seen.index("delivered"):], seen
    assert eventually(lambda: waiting(first) == 0, timeout=10)
