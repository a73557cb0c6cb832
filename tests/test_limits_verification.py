"""FIDESMAIL_VERIFICATION_LIMIT (contract section 17): identity-verification emails per address per rolling hour.

Through HTTP on SQLite and a real PostgreSQL; the race for the last slot across 2 gunicorn workers
(`python app.py`, WEB_CONCURRENCY=2) and across 2 replicas sharing PostgreSQL.
"""

from __future__ import annotations

import logging

import pytest
import requests
from sqlalchemy import update

from fidesmail.records import messages as records
from fidesmail.records.schema import messages as messages_table
from fidesmail.runtime import services
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.reliability.outbox_parts import prepare
from tests.support import SECRET, Server, at_once, bearer, configure_mailgun

KEY = "key-" + "9c4e21" * 5
SEND = "/api/v1/email/send"
MESSAGES = "/api/v1/email/messages"
TO = "Bombed.Person@Example.com"
VERIFY = {"action_type": "subject_identity_verification", "to": TO, "reference": "pri_limit",
          "body_params": {"verification_code": "482913", "verification_code_ttl_seconds": 600}}
RECEIPT = {"action_type": "privacy_request_receipt", "to": TO, "body_params": {"request_types": ["access"]}}
MINUTE = 60 * 1000


@pytest.fixture
def us():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def make_sender(make_app, us, database_url):
    def make(**overrides):
        settings = {"MAILGUN_BASE_URL": us.base_url, "MAILGUN_TIMEOUT": 1.0, "MAILGUN_RETRIES": 0,
                    "DATABASE_URL": database_url, "OUTBOX_POLL": 0.05}
        client = make_app(**{**settings, **overrides}).test_client()
        configure_mailgun(client, KEY)
        return client
    return make


@pytest.fixture
def client(make_sender):
    return make_sender()


def send(client, body=VERIFY, **headers):
    return client.post(SEND, json=body, headers={**bearer(auth.SEND), **headers})


def records_of(client, address=TO):
    listed = client.get(MESSAGES, query_string={"to": address, "size": 100}, headers=bearer(auth.READ))
    return listed.json["items"]


def age(client, message_id, ms):
    """Make a record `ms` old, as if it had been sent then."""
    with services.of(client.application).database.write() as connection:
        connection.execute(update(messages_table).where(messages_table.c.id == message_id)
                           .values(created_at=records.now_ms() - ms))


def test_the_sixth_verification_email_in_an_hour_is_429_and_nothing_is_sent(client, us, caplog):
    for n in range(5):
        assert send(client).status_code == 200, n
    with caplog.at_level(logging.INFO):
        sixth = send(client)
    assert sixth.status_code == 429
    assert 3590 <= int(sixth.headers["Retry-After"]) <= 3600
    assert "at most 5 per hour" in sixth.json["detail"] and "FIDESMAIL_VERIFICATION_LIMIT" in sixth.json["detail"]
    assert "message_id" not in sixth.json and "Location" not in sixth.headers
    assert len(us.requests) == 5 and len(records_of(client)) == 5  # nothing sent, no record made
    logged = caplog.text.lower()
    assert "refused by the verification limit" in logged and "bombed.person" not in logged
    # Other action types to the address, and other addresses, are not limited by it.
    assert send(client, RECEIPT).status_code == 200
    assert send(client, {**VERIFY, "to": "someone.else@example.com"}).status_code == 200
    metrics = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
    assert 'fidesmail_limited_total{limit="verification"} 1.0' in metrics
    assert 'fidesmail_limited_total{limit="rate_limit"} 0.0' in metrics


def test_the_hour_rolls_and_retry_after_counts_to_the_oldest_leaving_it(client, us):
    ids = [send(client).json["message_id"] for _ in range(5)]
    age(client, ids[0], 59 * MINUTE)
    age(client, ids[1], 30 * MINUTE)
    refused = send(client)
    assert refused.status_code == 429 and 55 <= int(refused.headers["Retry-After"]) <= 60
    age(client, ids[0], 61 * MINUTE)  # an hour and a minute ago: out of the window
    assert send(client).status_code == 200
    refused = send(client)
    assert refused.status_code == 429 and 1790 <= int(refused.headers["Retry-After"]) <= 1800


def test_one_address_however_written_and_every_outcome_counts(client, us):
    us.fail_next(400, message="'to' parameter is not a valid address", times=2)
    assert send(client).status_code == 502  # refused by Mailgun: a record was made, so it counts
    assert send(client, {**VERIFY, "to": "BOMBED.PERSON@example.COM"}).status_code == 502
    for _ in range(3):
        assert send(client, {**VERIFY, "to": "bombed.person@example.com"}).status_code == 200
    assert send(client).status_code == 429
    assert len(records_of(client)) == 5


def test_queued_sends_and_resends_count_and_are_refused_alike(client, us):
    us.fail_next(400, message="'to' parameter is not a valid address")
    failed = send(client).json["message_id"]
    queued = [send(client, **{"Prefer": "respond-async"}) for _ in range(3)]
    assert [answer.status_code for answer in queued] == [202, 202, 202]
    resend = client.post(f"{MESSAGES}/{failed}/resend", json={"to": TO, "body_params": VERIFY["body_params"]},
                         headers=bearer(auth.SEND))
    assert resend.status_code == 200  # the fifth
    refused = send(client, **{"Prefer": "respond-async"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    again = client.post(f"{MESSAGES}/{failed}/resend", json={"to": TO, "body_params": VERIFY["body_params"]},
                        headers=bearer(auth.SEND))
    assert again.status_code == 429
    assert len(records_of(client)) == 5  # nothing queued for the refused ones


def test_an_idempotency_key_replays_its_answer_after_the_limit_is_reached(client, us):
    first = send(client, **{"Idempotency-Key": "code-1"})
    for _ in range(4):
        send(client)
    replay = send(client, **{"Idempotency-Key": "code-1"})
    assert replay.status_code == 200 and replay.json == first.json
    assert send(client, **{"Idempotency-Key": "code-2"}).status_code == 429
    assert len(us.requests) == 5


@pytest.mark.parametrize("limit, allowed", [(0, 7), (2, 2)])
def test_the_limit_is_set_or_turned_off_with_the_setting(make_sender, us, limit, allowed):
    client = make_sender(VERIFICATION_LIMIT=limit)
    answers = [send(client).status_code for _ in range(7)]
    assert answers == [200] * allowed + [429] * (7 - allowed)


def test_the_test_endpoint_is_not_limited(client, us):
    for _ in range(6):
        send(client)
    tested = client.post("/api/v1/email/config/my_mailgun/test", json={"to": TO}, headers=bearer(auth.SEND))
    assert tested.json == {"test_status": "succeeded", "failure_reason": None}


# --- the race for the last slot, across processes ------------------------------------------------


def race(urls, count, headers):
    """`count` verification codes to one address at once, spread over `urls`; their statuses."""
    def one(n):
        return requests.post(urls[n % len(urls)] + SEND, json=VERIFY, headers={**bearer(auth.SEND), **headers(n)},
                             timeout=30).status_code
    return at_once(count, one)


def async_every_other(n):
    return {"Prefer": "respond-async"} if n % 2 else {}


@pytest.mark.slow
def test_two_workers_racing_for_the_last_slots_never_both_pass(tmp_path, tree, us):
    instance = tmp_path / "instance"
    prepare(tree, [instance], {"my_mailgun": ("mg.example.com", KEY)})
    srv = Server({"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(instance),
                  "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_MAILGUN_BASE_URL": us.base_url,
                  "WEB_CONCURRENCY": "2", "FIDESMAIL_THREADS": "8"}, tmp_path).start()
    try:
        for _ in range(3):
            assert requests.post(srv.url + SEND, json=VERIFY, headers=bearer(auth.SEND), timeout=10).ok
        statuses = race([srv.url], 16, headers=async_every_other)  # 2 slots left, 16 at once
        assert sorted(statuses).count(429) == 14, statuses
        assert set(statuses) <= {200, 202, 429}
        listed = requests.get(srv.url + MESSAGES, params={"to": TO}, headers=bearer(auth.READ), timeout=10).json()
        assert listed["total"] == 5
    finally:
        srv.stop()


@pytest.mark.slow
def test_two_replicas_on_postgresql_share_one_count(tmp_path, tree, us, postgres_url):
    instances = [tmp_path / "instance-1", tmp_path / "instance-2"]
    prepare(tree, instances, {"my_mailgun": ("mg.example.com", KEY)})
    replicas = [Server({"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(instance),
                        "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_MAILGUN_BASE_URL": us.base_url,
                        "FIDESMAIL_DATABASE_URL": postgres_url, "WEB_CONCURRENCY": "1", "FIDESMAIL_THREADS": "8"},
                       tmp_path).start() for instance in instances]
    try:
        statuses = race([replica.url for replica in replicas], 20, headers=async_every_other)
        assert statuses.count(429) == 15 and statuses.count(200) + statuses.count(202) == 5, statuses
        listed = requests.get(replicas[1].url + MESSAGES, params={"to": TO}, headers=bearer(auth.READ),
                              timeout=10).json()
        assert listed["total"] == 5
    finally:
        for replica in replicas:
            replica.stop()
