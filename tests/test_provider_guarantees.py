"""Every provider keeps sections 6, 9, 11 and 13's promises (contract section 13), each against its stand-in.

Per provider, through the API as a user would: the send reaches the provider carrying the record's id and
answers the provider's id; Idempotency-Key sends once, synchronously and with Prefer: respond-async; a
connection dropped after the request went out is `unknown` and never posted again; a rate limit (the
provider's own 429 and headers) and a 5xx are retried; the key or the sender refused fails at once; the
outbox parks a config behind its gate while its provider is down and delivers every message once after.
"""

from __future__ import annotations

import time

import pytest

from fidesmail.outbox.gates import GATE_THRESHOLD
from fidesmail.web import auth
from tests.provider_cases import CASES, URL, configure, send_headers
from tests.support import bearer, record, settled

SEND = "/api/v1/email/send"
MESSAGES = "/api/v1/email/messages"
TO = "Subject.Person@Example.com"
CODE = "731594"
VERIFY = {"action_type": "subject_identity_verification", "to": TO, "config_key": "my_provider",
          "body_params": {"verification_code": CODE, "verification_code_ttl_seconds": 600}}
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module", params=CASES, ids=str)
def started(request):
    """The case and its stand-in, one per module (SES' moto is process-wide and slow to start)."""
    with request.param.make_standin() as standin:
        yield request.param, standin


@pytest.fixture
def case(started):
    case, standin = started
    standin.reset()
    standin.up()
    return case


@pytest.fixture
def standin(started):
    return started[1]


@pytest.fixture
def make_client(make_app, case, standin):
    def make(secrets: dict | None = None, **overrides):
        settings = {**case.settings(standin), "MAILGUN_TIMEOUT": 1.0, "MAILGUN_RETRIES": 2, "MAILGUN_BACKOFF": 0.01,
                    "OUTBOX_BACKOFF": 0.05, "OUTBOX_MAX_BACKOFF": 0.2, "OUTBOX_POLL": 0.05, **overrides}
        client = make_app(**settings).test_client()
        configure(client, case, standin, secrets=secrets)
        return client
    return make


@pytest.fixture
def client(make_client):
    return make_client()


def send(client, body=VERIFY, **headers):
    return client.post(SEND, json=body, headers=send_headers(**headers))


def carried(standin, message_id):
    """The messages the stand-in accepted that carried this record's id."""
    return [accepted for accepted in standin.accepted if accepted.fidesmail_message_id == message_id]


def never_shown(case, standin, *texts):
    for secret in case.secret_values(standin):
        assert all(secret not in text for text in texts)


# --- one send ------------------------------------------------------------------------------------


def test_a_send_reaches_the_provider_with_the_records_id_and_answers_the_providers_id(client, case, standin):
    answer = send(client)
    assert answer.status_code == 200, answer.json
    message_id = answer.json["message_id"]
    [accepted] = carried(standin, message_id)
    assert answer.json == {"id": accepted.provider_id, "message": answer.json["message"], "config_key": "my_provider",
                           "message_id": message_id, "status": "accepted", "provider": case.service_type}
    assert accepted.recipient == "Subject.Person@Example.com" and CODE in accepted.text and CODE in accepted.html
    assert accepted.sender == "Privacy Team <privacy@example.com>"
    got = record(client, message_id)
    assert (got["status"], got["provider"], got["provider_message_id"], got["sent_via"], got["mailgun_id"]) == (
        "accepted", case.service_type, accepted.provider_id, "my_provider", None)
    assert [(a["config_key"], a["provider"], a["outcome"]) for a in got["attempts"]] == [
        ("my_provider", case.service_type, "accepted")]


def test_without_its_secrets_a_send_is_409_and_nothing_reaches_the_provider(make_app, case, standin):
    client = make_app(**case.settings(standin)).test_client()
    assert client.post(URL, json=case.config(), headers=bearer()).status_code == 200
    assert client.get(f"{URL}/my_provider", headers=bearer()).json["secrets_set"] is False
    answer = send(client)
    assert answer.status_code == 409
    assert answer.json == {"detail": "Email secrets not found for config with key: my_provider"}
    assert standin.attempts == 0


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
@pytest.mark.slow
def test_an_idempotency_key_sends_once(client, standin, prefer):
    first = send(client, **prefer, **{"Idempotency-Key": "verify-once"})
    again = send(client, **prefer, **{"Idempotency-Key": "verify-once"})
    assert first.status_code == again.status_code == (202 if prefer else 200)
    assert first.json["message_id"] == again.json["message_id"]
    assert settled(client, first.json["message_id"])["status"] == "accepted"
    assert len(carried(standin, first.json["message_id"])) == 1 and standin.attempts == 1


def test_respond_async_answers_202_and_delivers_in_the_background(client, case, standin):
    answer = send(client, **ASYNC)
    assert answer.status_code == 202 and answer.json["status"] == "queued"
    got = settled(client, answer.json["message_id"])
    [accepted] = carried(standin, answer.json["message_id"])
    assert (got["status"], got["provider"], got["provider_message_id"]) == (
        "accepted", case.service_type, accepted.provider_id)


# --- what may be posted again --------------------------------------------------------------------


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
@pytest.mark.slow
def test_a_connection_dropped_after_sending_is_unknown_and_never_posted_again(client, standin, prefer):
    standin.close_next()
    answer = send(client, **prefer)
    assert answer.status_code == (202 if prefer else 504), answer.json
    got = settled(client, answer.json["message_id"])
    assert got["status"] == "unknown" and "may still be sent" in got["failure_reason"]
    assert [a["outcome"] for a in got["attempts"]] == ["unknown"]
    time.sleep(0.3)  # the outbox's next looks: nothing is posted again on its own
    assert standin.attempts == 1


@pytest.mark.slow
def test_no_answer_in_time_is_unknown_and_never_posted_again(client, standin):
    standin.slow_next(3)  # beyond the 1 s timeout
    answer = send(client)
    assert answer.status_code == 504 and "may still be sent" in answer.json["detail"]
    # It was: the provider took it after fidesmail stopped waiting, and it was never posted again.
    assert len(standin.wait_for_accepted(1, timeout=10)) == 1 and standin.attempts == 1


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
@pytest.mark.slow
def test_the_providers_rate_limit_is_retried_at_its_moment(client, standin, prefer):
    standin.throttle_next(retry_after=1)
    answer = send(client, **prefer)
    got = settled(client, answer.json["message_id"])
    assert got["status"] == "accepted", got
    assert [a["outcome"] for a in got["attempts"]] == ["rate_limited", "accepted"]
    assert len(carried(standin, answer.json["message_id"])) == 1 and standin.attempts == 2


def test_a_5xx_is_retried_then_sent(client, standin):
    standin.fail_next(503)
    answer = send(client)
    assert answer.status_code == 200, answer.json
    got = record(client, answer.json["message_id"])
    assert [a["outcome"] for a in got["attempts"]] == ["server_error", "accepted"]


def test_a_provider_that_stays_down_answers_502_after_the_retries(client, case, standin):
    standin.down()
    answer = send(client)
    assert answer.status_code == 502 and answer.json["provider"] == case.service_type
    assert answer.json["detail"].startswith(f"{case.label} answered 503")
    assert standin.attempts == 3  # FIDESMAIL_MAILGUN_RETRIES=2 further tries


def test_a_provider_that_cannot_be_reached_answers_502_naming_the_host(make_client, case, standin):
    standin.down(refuse=True)
    try:
        answer = send(make_client())
    finally:
        standin.up()
    assert answer.status_code == 502 and "refused" in answer.json["detail"].lower()


# --- refused for good ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
@pytest.mark.slow
def test_a_refused_key_fails_at_once_and_is_never_shown(make_client, case, standin, caplog, prefer):
    client = make_client(secrets=case.wrong_secrets(standin))
    answer = send(client, **prefer)
    got = settled(client, answer.json["message_id"])
    assert got["status"] == "failed" and [a["outcome"] for a in got["attempts"]] == ["refused"]
    if not prefer:
        assert answer.status_code == 502 and answer.json["detail"] == got["failure_reason"]
    assert standin.attempts == 1 and standin.accepted == []
    texts = (repr(answer.json), repr(got), caplog.text)
    for value in case.wrong_secrets(standin).values():
        assert all(value not in text for text in texts)


def test_an_unverified_sender_is_refused_at_once_in_the_providers_words(make_client, case, standin):
    client = make_client()
    assert client.patch(f"{URL}/my_provider", json={"details": case.unverified}, headers=bearer()).status_code == 200
    answer = send(client)
    assert answer.status_code == 502, answer.json
    assert standin.attempts == 1 and standin.accepted == []
    got = record(client, answer.json["message_id"])
    assert got["status"] == "failed" and got["failure_reason"] == answer.json["detail"]
    assert "unverified.example" in answer.json["detail"] or "verif" in answer.json["detail"].lower()
    assert "notices@unverified.example" not in repr(got)  # an address in the provider's words is masked


# --- the outbox ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_outbox_waits_behind_its_gate_while_the_provider_is_down_then_sends_each_once(make_client, standin):
    client = make_client(OUTBOX_CONCURRENCY=1)  # one poster: the order the provider sees is the order of posting
    standin.down()
    bodies = [{**VERIFY, "to": f"queued.{n}@example.com"} for n in range(8)]  # within the verification limit
    queued = [send(client, body, **ASYNC).json["message_id"] for body in bodies]
    deadline = time.monotonic() + 10
    while standin.attempts < GATE_THRESHOLD + 2 and time.monotonic() < deadline:  # the gate closed, probes came
        time.sleep(0.02)
    tried_while_down = [m for m in queued if record(client, m)["attempts"]]
    standin.up()
    assert [settled(client, message_id)["status"] for message_id in queued] == ["accepted"] * 8
    assert [a.fidesmail_message_id for a in standin.accepted] == queued  # each once, oldest first
    # While the provider refused, the config's queue waited behind its oldest message once the gate closed.
    assert len(tried_while_down) <= GATE_THRESHOLD + 1, tried_while_down


# --- the test endpoint ---------------------------------------------------------------------------


def test_the_test_endpoint_goes_through_the_configs_provider(client, case, standin):
    answer = client.post(f"{URL}/my_provider/test", json={"to": "you@example.com"}, headers=bearer(auth.SEND))
    assert answer.json == {"test_status": "succeeded", "failure_reason": None}
    [got] = client.get(MESSAGES, headers=bearer(auth.READ)).json["items"]
    assert got["test_mode"] is True and got["provider"] == case.service_type and standin.attempts == 1
    if case.service_type == "twilio_email":  # sandbox mode: checked by SendGrid, not sent, no id
        assert standin.accepted == [] and got["provider_message_id"] is None
    else:
        assert [a.provider_id for a in standin.accepted] == [got["provider_message_id"]]
