"""Failover on the synchronous path (contract section 14), against every provider's stand-in.

A message whose provider proves it did not take it (down with a 5xx, throttling, unreachable, its key refused,
its key missing or not opening) goes to the fallback's provider at once, and on down the chain; it stays one
message: one record, one message_id, one Idempotency-Key, the fallback's From. A refusal of the message itself
and anything that may have sent never fail over; neither does the test endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pytest

from fidesmail.sealing import envelope, keys, sealed_file
from fidesmail.web import auth
from tests.failover_parts import PAIRS, SEND, URL, VERIFY, configure, failovers, link, settings_for, standins
from tests.support import bearer, eventually, record


@pytest.fixture(scope="module")
def stands():
    with standins() as started:
        yield started


@pytest.fixture
def app(make_app, stands):
    for stand in stands.values():
        stand.reset()
    return make_app(**settings_for(stands))


@pytest.fixture
def client(app, stands):
    client = app.test_client()
    configure(client, stands)
    return client


def send(client, body=None, **headers):
    return client.post(SEND, json=body or VERIFY, headers={**bearer(auth.SEND), **headers})


def via(client, key: str, **more):
    return send(client, {**VERIFY, "config_key": key, **more}, **{"Idempotency-Key": f"k-{key}"})


@pytest.mark.parametrize("primary,fallback", PAIRS)
@pytest.mark.slow
def test_a_provider_that_is_down_fails_over_at_once_and_it_stays_one_message(client, stands, primary, fallback):
    first, second = stands[primary], stands[fallback]
    link(client, primary, fallback)
    first.standin.down()  # 503 to everything
    answer = via(client, primary, reference="req-1")
    assert answer.status_code == 200, answer.json
    message_id = answer.json["message_id"]
    assert second.taken(message_id) == [second.sender]  # the fallback's From
    assert answer.json == {"id": answer.json["id"], "message": answer.json["message"], "config_key": primary,
                           "message_id": message_id, "status": "accepted", "provider": second.service_type}
    assert answer.json["id"]
    assert first.reached == 1  # not retried first: the next provider at once
    got = record(client, message_id)
    assert (got["config_key"], got["sent_via"], got["provider"], got["status"]) == \
        (primary, fallback, second.service_type, "accepted")
    assert got["provider_message_id"] == answer.json["id"] and got["content_digest"]
    assert [(a["config_key"], a["provider"], a["outcome"], a["http_status"]) for a in got["attempts"]] == \
        [(primary, first.service_type, "server_error", 503), (fallback, second.service_type, "accepted",
                                                               got["attempts"][1]["http_status"])]
    listed = client.get("/api/v1/email/messages?reference=req-1", headers=bearer(auth.READ)).json
    assert [item["message_id"] for item in listed["items"]] == [message_id]  # one record
    again = via(client, primary, reference="req-1")  # the Idempotency-Key replayed after the failover
    assert (again.status_code, again.json) == (200, answer.json)
    assert first.reached == 1 and second.taken(message_id) == [second.sender]
    assert failovers(client) == {(first.service_type, second.service_type): 1.0}


@pytest.mark.parametrize("primary,fallback", PAIRS)
def test_a_refused_key_fails_over(client, stands, primary, fallback):
    first, second = stands[primary], stands[fallback]
    wrong = {"mg": {"mailgun_api_key": "key-" + "0" * 32}, "sg": {"twilio_api_key": "SG.wrong-" + "x" * 20},
             "md": {"mailchimp_transactional_api_key": "md-wrong-" + "y" * 14},
             "ses": {**first.secrets, "aws_secret_access_key": "not-the-secret-" + "z" * 24}}[primary]
    assert client.put(f"{URL}/{primary}/secret", json=wrong, headers=bearer()).status_code == 200
    link(client, primary, fallback)
    answer = via(client, primary)
    assert answer.status_code == 200, answer.json
    assert answer.json["provider"] == second.service_type
    got = record(client, answer.json["message_id"])
    assert got["attempts"][0]["outcome"] == "refused" and got["attempts"][0]["http_status"] in (401, 403, 500)
    assert got["sent_via"] == fallback and second.taken(got["message_id"]) == [second.sender]


@pytest.mark.parametrize("fault", ["throttled", "unreachable", "reset before an answer"])
def test_throttling_and_a_failed_connection_fail_over(client, stands, fault):
    first, second = stands["sg"], stands["mg"]
    link(client, "sg", "mg")
    if fault == "throttled":
        first.standin.throttle_next(retry_after=20)  # a wait the caller would not have: none is made
    elif fault == "unreachable":
        first.standin.down(refuse=True)  # no connection at all
    answer = via(client, "sg") if fault != "reset before an answer" else None
    if fault == "reset before an answer":  # after the request went out: may have sent, so no failover
        first.standin.reset_next()
        answer = via(client, "sg")
        assert answer.status_code in (502, 504), answer.json
        assert second.taken(answer.json["message_id"]) == [] and record(client, answer.json["message_id"])[
            "status"] in ("unknown", "failed")
        return
    assert answer.status_code == 200, answer.json
    got = record(client, answer.json["message_id"])
    assert got["attempts"][0]["outcome"] == ("rate_limited" if fault == "throttled" else "connection_failed")
    assert got["sent_via"] == "mg" and got["provider"] == "mailgun"


def test_a_missing_or_unopenable_key_fails_over(make_app, stands, tree):
    client = make_app(**settings_for(stands)).test_client()
    for stand in stands.values():
        stand.reset()
    configure(client, stands, without_secrets=("mg",))
    link(client, "mg", "md")
    answer = via(client, "mg")
    assert answer.status_code == 200, answer.json
    got = record(client, answer.json["message_id"])
    assert got["attempts"][0] == {**got["attempts"][0], "config_key": "mg", "provider": "mailgun",
                                  "outcome": "not_sent", "http_status": None,
                                  "detail": "Email secrets not found for config with key: mg"}
    assert got["sent_via"] == "md" and stands["mg"].reached == 0
    # A sealed value moved from another config does not open (tampered): the next provider takes it.
    public = keys.parse_public_key((tree / "seal.pub").read_bytes(), "seal.pub")
    moved = envelope.seal(public, "elsewhere", "mailgun_api_key", "key-moved")
    path = tree / sealed_file.FILE_NAME
    parsed = sealed_file.parse(path.read_bytes()).sealed
    path.write_bytes(sealed_file.dump(parsed.with_value("mg", "mailgun_api_key", moved)))
    assert eventually(lambda: client.get(f"{URL}/mg", headers=bearer()).json["secrets_set"])
    answer = send(client, {**VERIFY, "config_key": "mg"})
    assert answer.status_code == 200, answer.json
    got = record(client, answer.json["message_id"])
    assert got["attempts"][0]["outcome"] == "not_sent" and "cannot be opened" in got["attempts"][0]["detail"]
    assert got["sent_via"] == "md" and stands["mg"].reached == 0


def test_a_chain_of_three_and_the_last_keeps_its_retries(client, stands):
    link(client, "ses", "md", "mg")
    stands["ses"].standin.down()
    stands["md"].standin.down()
    stands["mg"].standin.fail_next(503)  # the last is retried, as a send without a fallback is
    answer = via(client, "ses")
    assert answer.status_code == 200, answer.json
    got = record(client, answer.json["message_id"])
    assert [(a["config_key"], a["outcome"]) for a in got["attempts"]] == [
        ("ses", "server_error"), ("md", "server_error"), ("mg", "server_error"), ("mg", "accepted")]
    assert (stands["ses"].reached, stands["md"].reached, stands["mg"].reached) == (1, 1, 2)
    assert failovers(client) == {("aws_ses", "mailchimp_transactional"): 1.0,
                                 ("mailchimp_transactional", "mailgun"): 1.0}


def test_when_every_provider_of_the_chain_is_down_the_record_names_the_last(client, stands):
    link(client, "mg", "sg")
    stands["mg"].standin.down()
    stands["sg"].standin.down()
    answer = via(client, "mg")
    assert answer.status_code == 502
    assert answer.json["provider"] == "twilio_email" and "503" in answer.json["detail"]
    assert "after mg did not take it" in answer.json["detail"]
    got = record(client, answer.json["message_id"])
    assert (got["status"], got["provider"], got["sent_via"]) == ("failed", "twilio_email", "sg")
    assert stands["mg"].reached == 1 and stands["sg"].reached == 3  # the last: 1 + FIDESMAIL_MAILGUN_RETRIES


@pytest.mark.parametrize("primary", ["mg", "sg"])
def test_a_refusal_of_the_message_itself_never_fails_over(client, stands, primary):
    link(client, primary, "md")
    stands[primary].standin.fail_next(400, message="'to' parameter is not a valid address")
    answer = via(client, primary)
    assert answer.status_code == 502 and answer.json["provider"] == stands[primary].service_type
    got = record(client, answer.json["message_id"])
    assert (got["status"], got["sent_via"]) == ("failed", primary) and stands["md"].reached == 0
    assert failovers(client) == {}


def test_an_unverified_sender_never_fails_over(make_app, stands):
    client = make_app(**settings_for(stands)).test_client()
    for stand in stands.values():
        stand.reset()
    configure(client, stands)
    assert client.patch(f"{URL}/ses", json={"details": {"email_from": "notices@unverified.example"}},
                        headers=bearer()).status_code == 200
    link(client, "ses", "mg")
    answer = via(client, "ses")
    assert answer.status_code == 502 and stands["mg"].reached == 0
    assert record(client, answer.json["message_id"])["provider"] == "aws_ses"


@pytest.mark.parametrize("fault", ["close", "slow", "non_json"])
@pytest.mark.slow
def test_anything_that_may_have_sent_never_fails_over(client, stands, fault):
    link(client, "md", "ses")
    {"close": lambda f: f.close_next(), "slow": lambda f: f.slow_next(2),
     "non_json": lambda f: f.non_json_200_next()}[fault](stands["md"].standin)
    answer = via(client, "md")
    assert answer.status_code in (502, 504) and stands["ses"].reached == 0
    got = record(client, answer.json["message_id"])
    assert got["status"] == "unknown" and got["sent_via"] == "md"
    assert stands["md"].reached == 1  # and not posted again


def test_the_test_endpoint_does_not_fail_over(client, stands):
    link(client, "mg", "sg")
    stands["mg"].standin.down()
    answer = client.post(f"{URL}/mg/test", json={"to": "someone@example.com"}, headers=bearer(auth.SEND))
    assert answer.json["test_status"] == "failed" and "503" in answer.json["failure_reason"]
    assert stands["sg"].reached == 0


def test_the_fallbacks_webhook_reports_on_the_message_it_took(client, stands):
    """Mailgun's signed events for a message it took as the fallback reach the one record (its URL names the
    fallback's config, the record the config asked for)."""
    signing_key = "whsec-" + "fa11ba" * 4
    secrets_body = {**stands["mg"].secrets, "mailgun_webhook_signing_key": signing_key}
    assert client.put(f"{URL}/mg/secret", json=secrets_body, headers=bearer()).status_code == 200
    link(client, "ses", "mg")
    stands["ses"].standin.down()
    answer = via(client, "ses")
    assert answer.status_code == 200 and answer.json["provider"] == "mailgun", answer.json
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    delivered = {"event": "delivered", "timestamp": time.time(), "id": secrets.token_hex(8),
                 "recipient": VERIFY["to"], "message": {"headers": {"message-id": answer.json["id"].strip("<>")}},
                 "user-variables": {"fidesmail-message-id": answer.json["message_id"]}}
    hook = client.post("/api/v1/email/webhooks/mailgun/mg", json={
        "signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": delivered})
    assert hook.status_code == 200, hook.json
    got = record(client, answer.json["message_id"])
    assert (got["status"], got["sent_via"]) == ("delivered", "mg")
    assert [e["event"] for e in got["events"]] == ["delivered"]
