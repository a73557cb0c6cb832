"""A config's `rate_limit` (contract section 17): its provider is never sent more than that many messages a second.

The config field through the API, the YAML loader and `flask check`; synchronous sends waiting for
their slot within the 30 s budget, else 429; retries taking slots too. The shared limiter across 2
gunicorn workers and 2 replicas on PostgreSQL is measured where it matters, at the test Mailgun: no
window of 1 s (less a small allowance for thread scheduling) holds more than `rate_limit` posts.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
import yaml

from fidesmail.core import yamlio
from fidesmail.records.database import Database
from fidesmail.records.pacing import Pace, Pacer, next_free
from fidesmail.runtime import services
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.reliability.outbox_parts import prepare
from tests.support import (
    CONFIG,
    SECRET,
    Server,
    at_once,
    bearer,
    configure_mailgun,
    eventually,
    head_revision,
    write_config,
)

KEY = "key-" + "61d0aa" * 5
URL = "/api/v1/email/config"
SEND = "/api/v1/email/send"
MESSAGES = "/api/v1/email/messages"
RECEIPT = {"action_type": "privacy_request_receipt", "body_params": {"request_types": ["access"]}}
# What the measurement allows: fidesmail starts a post at most 20 ms after its slot (pacing.LATE_US), and
# the test Mailgun, in this busy test process, stamps arrivals late by a few tens of ms at times.
JITTER = 0.1


@pytest.fixture
def us():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def make_sender(make_app, us, database_url):
    def make(rate_limit=None, **overrides):
        settings = {"MAILGUN_BASE_URL": us.base_url, "MAILGUN_TIMEOUT": 1.0, "MAILGUN_RETRIES": 1,
                    "MAILGUN_BACKOFF": 0.01, "DATABASE_URL": database_url}
        client = make_app(**{**settings, **overrides}).test_client()
        configure_mailgun(client, KEY)
        if rate_limit is not None:
            changed = client.patch(f"{URL}/my_mailgun", json={"rate_limit": rate_limit}, headers=bearer())
            assert changed.status_code == 200 and changed.json["rate_limit"] == rate_limit
        return client
    return make


def send(client, n=0, **headers):
    body = {**RECEIPT, "to": f"person.{n}@example.com"}
    return client.post(SEND, json=body, headers={**bearer(auth.SEND), **headers})


def never_faster_than(times, rate):
    """No `rate` + 1 posts within one second (less JITTER): the gap spanning every rate + 1 posts."""
    times = sorted(times)
    spans = [times[i + int(rate)] - times[i] for i in range(len(times) - int(rate))]
    assert all(span >= 1 - JITTER for span in spans), min(spans)
    return spans


# --- the config field ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["10", True, 0, -2, 1e7, [5]])
def test_rate_limit_must_be_a_number_above_zero(client, value):
    answer = client.post(URL, json={**CONFIG, "rate_limit": value}, headers=bearer())
    assert answer.status_code == 422
    [problem] = answer.json["detail"]
    assert problem["loc"] == ["body", "rate_limit"]
    assert "Must be a number" in problem["msg"] or "greater than 0" in problem["msg"]


def test_rate_limit_is_set_changed_and_removed_through_the_api_and_kept_in_the_yaml(client, tree):
    created = client.post(URL, json={**CONFIG, "rate_limit": 0.5}, headers=bearer())
    assert created.status_code == 200 and created.json["rate_limit"] == 0.5
    assert yaml.safe_load((tree / "email" / "my_mailgun.yaml").read_text())["rate_limit"] == 0.5
    changed = client.patch(f"{URL}/my_mailgun", json={"rate_limit": 20}, headers=bearer()).json
    assert changed["rate_limit"] == 20 and client.get(f"{URL}/my_mailgun", headers=bearer()).json["rate_limit"] == 20
    removed = client.patch(f"{URL}/my_mailgun", json={"rate_limit": None}, headers=bearer()).json
    assert "rate_limit" not in removed
    assert "rate_limit" not in yaml.safe_load((tree / "email" / "my_mailgun.yaml").read_text())


def test_the_loader_and_flask_check_judge_rate_limit_in_yaml(client, tree, runner):
    write_config(tree, "paced", rate_limit=12)
    (tree / "email" / "broken.yaml").write_bytes(yamlio.dump({**CONFIG, "key": "broken", "name": "Broken",
                                                              "rate_limit": "fast"}))
    assert eventually(lambda: client.get(f"{URL}/paced", headers=bearer()).status_code == 200)
    assert client.get(f"{URL}/paced", headers=bearer()).json["rate_limit"] == 12
    assert client.get(f"{URL}/broken", headers=bearer()).status_code == 404
    checked = runner.invoke(args=["check"])
    assert checked.exit_code == 1
    assert re.search(r"email/broken\.yaml:\d+: rate_limit: Must be a number", checked.stdout), checked.stdout


# --- synchronous sends ----------------------------------------------------------------------------


@pytest.mark.slow
def test_synchronous_sends_wait_for_their_slots(make_sender, us):
    client = make_sender(rate_limit=20)
    assert at_once(12, lambda n: send(client, n).status_code) == [200] * 12
    times = [r.at for r in us.sent]
    assert len(times) == 12 and max(times) - min(times) >= 11 / 20 - JITTER
    never_faster_than(times, 20)


def test_a_send_whose_slot_is_beyond_30_s_is_429_and_leaves_no_record(make_sender, us):
    client = make_sender(rate_limit=0.02)  # one message every 50 s
    assert send(client, 1).status_code == 200
    refused = send(client, 2)
    assert refused.status_code == 429 and 45 <= int(refused.headers["Retry-After"]) <= 50
    assert "rate limit of my_mailgun (0.02 messages per second)" in refused.json["detail"]
    assert "Nothing was sent" in refused.json["detail"] and "message_id" not in refused.json
    assert len(us.requests) == 1
    assert client.get(MESSAGES, headers=bearer(auth.READ)).json["total"] == 1
    metrics = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
    assert 'fidesmail_limited_total{limit="rate_limit"} 1.0' in metrics


def test_retries_take_slots_too(make_sender, us):
    client = make_sender(rate_limit=4)
    us.fail_next(503)
    assert send(client).status_code == 200
    first, second = us.requests
    assert first.status == 503 and second.at - first.at >= 0.25 - JITTER  # not the 10 ms backoff alone


def test_a_retry_with_no_slot_in_the_budget_is_not_posted(make_sender, us):
    client = make_sender(rate_limit=0.02)
    us.fail_next(503)
    answer = send(client)
    assert answer.status_code == 502
    assert "gave up: the rate limit leaves no slot within the 30 s limit" in answer.json["detail"]
    assert len(us.requests) == 1


def test_a_slot_that_came_while_the_process_was_busy_moves_or_is_exchanged(tmp_path):
    """A post never starts more than 20 ms after its slot: a late one moves its slot to now when no later
    slot was handed out, else takes the next free one and waits again."""
    database = Database(f"sqlite:///{tmp_path / 'pacing.db'}")
    database.upgrade()
    pace = Pace("k", 10, within_s=5)
    late, others = [0.05], []

    def busy_sleep(seconds):  # the first wake-up comes 50 ms after its slot, the next on time
        time.sleep(seconds + (late.pop() if late else 0))
        if others:  # meanwhile another worker takes a slot
            Pacer(database).take(others.pop())

    def free():
        with database.read() as connection:
            return next_free(connection, "k")

    pacer = Pacer(database, sleep=busy_sleep)
    first = pacer.take(pace)
    assert pacer.wait(pace, pacer.take(pace))  # late and the last slot handed out: moved to now
    moved = free()
    assert moved - first >= 100_000 + 50_000 + 100_000  # its slot + 50 ms late, then one interval
    late.append(0.05)
    others.append(pace)
    slot = pacer.take(pace)
    assert pacer.wait(pace, slot)  # late, and the next slot was taken meanwhile: it waited for another
    assert free() >= slot + 3 * 100_000  # its own, the other's, and the one it posted in (or later: a busy machine)


@pytest.mark.slow
def test_a_send_that_wakes_too_late_for_every_slot_is_429_and_its_record_says_so(make_sender, us):
    client = make_sender(rate_limit=10)
    found = services.of(client.application)
    found.sender.retrier.max_total_wait = 0.5
    pace = Pace("my_mailgun", 10, within_s=5)

    def busy_sleep(seconds):  # always woken 50 ms late, while another worker takes the next slot
        time.sleep(seconds + 0.05)
        Pacer(found.database).take(pace)

    found.sender.pacer._sleep = busy_sleep
    Pacer(found.database).take(pace)  # another worker's: this send's slot is 100 ms away
    refused = send(client, 2)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert us.requests == []
    [record] = client.get(MESSAGES, headers=bearer(auth.READ)).json["items"]
    assert record["status"] == "failed" and record["attempts"] == []
    assert "rate limit of my_mailgun" in record["failure_reason"]


def test_other_configs_are_not_paced(make_sender, us):
    client = make_sender(rate_limit=0.02)
    other = {**CONFIG, "key": "other", "name": "Other"}
    assert client.post(URL, json=other, headers=bearer()).status_code == 200
    client.put(f"{URL}/other/secret", json={"mailgun_api_key": KEY}, headers=bearer())
    paced = {**RECEIPT, "to": "someone@example.com", "config_key": "my_mailgun"}
    assert client.post(SEND, json=paced, headers=bearer(auth.SEND)).status_code == 200
    assert client.post(SEND, json=paced, headers=bearer(auth.SEND)).status_code == 429
    body = {**RECEIPT, "to": "someone@example.com", "config_key": "other"}
    assert [client.post(SEND, json=body, headers=bearer(auth.SEND)).status_code for _ in range(3)] == [200] * 3


# --- across workers and replicas -----------------------------------------------------------------


def burst(urls, count):
    """`count` sends at once, spread over `urls`; their answers."""
    def one(n):
        body = {**RECEIPT, "to": f"p{n}@example.com"}
        return requests.post(urls[n % len(urls)] + SEND, json=body, headers=bearer(auth.SEND), timeout=40)
    return at_once(count, one)


def servers(tmp_path, tree, us, count, rate, **env):
    instances = [tmp_path / f"instance-{n}" for n in range(count)]
    prepare(tree, instances, {"my_mailgun": ("mg.example.com", KEY)})
    document = yaml.safe_load((tree / "email" / "my_mailgun.yaml").read_text())
    (tree / "email" / "my_mailgun.yaml").write_bytes(yamlio.dump({**document, "rate_limit": rate}))
    base = {"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_SECRET_KEY": SECRET,
            "FIDESMAIL_MAILGUN_BASE_URL": us.base_url, "FIDESMAIL_THREADS": "16", **env}
    started = [Server({**base, "FIDESMAIL_INSTANCE_DIR": str(instance)}, tmp_path).start() for instance in instances]
    for n in range(8):  # every process's first posts open its connection and keys: not what is measured
        body = {**RECEIPT, "to": f"warm{n}@example.com"}
        headers = {**bearer(auth.SEND), **({"Prefer": "respond-async"} if n % 2 else {})}
        assert requests.post(started[n % count].url + SEND, json=body, headers=headers, timeout=10).ok
    assert eventually(lambda: len(us.sent) == 8, 10)
    us.reset()
    return started


@pytest.mark.slow
def test_two_workers_share_one_limiter(tmp_path, tree, us):
    [srv] = servers(tmp_path, tree, us, 1, 10, WEB_CONCURRENCY="2")
    try:
        answers = burst([srv.url], 20)
    finally:
        srv.stop()
    assert [a.status_code for a in answers] == [200] * 20
    never_faster_than([r.at for r in us.sent], 10)


@pytest.mark.slow
def test_two_replicas_on_postgresql_share_one_limiter(tmp_path, tree, us, postgres_url):
    replicas = servers(tmp_path, tree, us, 2, 10, WEB_CONCURRENCY="1", FIDESMAIL_DATABASE_URL=postgres_url)
    try:
        answers = burst([r.url for r in replicas], 20)
    finally:
        for replica in replicas:
            replica.stop()
    assert [a.status_code for a in answers] == [200] * 20
    never_faster_than([r.at for r in us.sent], 10)


# --- the outbox paces itself ----------------------------------------------------------------------


def queue(client_or_url, count, start=0):
    """`count` sends with Prefer: respond-async, one after the other; their message ids."""
    ids = []
    for n in range(start, start + count):
        body = {**RECEIPT, "to": f"queued{n}@example.com"}
        headers = {**bearer(auth.SEND), "Prefer": "respond-async"}
        if isinstance(client_or_url, str):
            answer = requests.post(client_or_url + SEND, json=body, headers=headers, timeout=10)
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["message_id"])
        else:
            answer = client_or_url.post(SEND, json=body, headers=headers)
            assert answer.status_code == 202, answer.json
            ids.append(answer.json["message_id"])
    return ids


def in_order_of_creation(read_records, ids):
    """The ids as the records order them (created_at, then id): the order the outbox claims them in."""
    created = {item["message_id"]: item["created_at"] for item in read_records()}
    return sorted(ids, key=lambda message_id: (created[message_id], message_id))


def drained(us, count, timeout=60.0):
    assert eventually(lambda: len(us.sent) >= count, timeout), len(us.sent)
    return [r.field("v:fidesmail-message-id") for r in sorted(us.sent, key=lambda r: r.at)]


@pytest.mark.slow
def test_a_burst_of_queued_messages_drains_at_the_rate_in_order(make_sender, us):
    client = make_sender(rate_limit=5, OUTBOX_POLL=0.5)
    queue(client, 1, start=99)  # the process's first post opens its keys and connection: not what is measured
    drained(us, 1)
    us.reset()
    ids = queue(client, 12)
    posted = drained(us, 12)
    listed = lambda: client.get(MESSAGES, query_string={"size": 100}, headers=bearer(auth.READ)).json["items"]
    assert posted == in_order_of_creation(listed, ids)
    times = sorted(r.at for r in us.sent)
    assert times[-1] - times[0] >= 11 / 5 - JITTER
    never_faster_than(times, 5)
    assert eventually(lambda: all(item["status"] == "accepted" for item in listed()), 10)


@pytest.mark.slow
def test_queued_and_synchronous_sends_share_the_slots(make_sender, us):
    client = make_sender(rate_limit=10, OUTBOX_POLL=0.5)
    queue(client, 10)
    answers = [send(client, n).status_code for n in range(5)]  # each waits for a slot among the queue's
    assert answers == [200] * 5
    drained(us, 15)
    never_faster_than([r.at for r in us.sent], 10)


def test_a_paced_retry_takes_a_slot_and_removing_the_limit_releases_the_queue(make_sender, us):
    client = make_sender(rate_limit=0.5, OUTBOX_BACKOFF=0.05, OUTBOX_MAX_BACKOFF=0.1, OUTBOX_POLL=0.1)
    us.fail_next(503)
    ids = queue(client, 4)
    assert eventually(lambda: len(us.requests) >= 1, 5)
    assert len(us.requests) == 1  # the retry and the rest wait for slots 2 s apart
    assert client.patch(f"{URL}/my_mailgun", json={"rate_limit": None}, headers=bearer()).status_code == 200
    posted = drained(us, 4, timeout=10)
    assert sorted(posted) == sorted(ids)


# Two processes sharing a paced queue: 200-ms slots. A post that starts more than a whole slot late goes out
# one place later than its turn (README, "Limits"); on a CPU-starved test run 100-ms slots came to that.
SHARED_RATE = 5


@pytest.mark.slow
def test_two_workers_drain_a_paced_queue_together_in_order(tmp_path, tree, us):
    [srv] = servers(tmp_path, tree, us, 1, SHARED_RATE, WEB_CONCURRENCY="2")
    try:
        ids = queue(srv.url, 30)
        posted = drained(us, 30)
        listed = lambda: requests.get(srv.url + MESSAGES, params={"size": 100}, headers=bearer(auth.READ),
                                      timeout=10).json()["items"]
        assert posted == in_order_of_creation(listed, ids)
    finally:
        srv.stop()
    never_faster_than([r.at for r in us.sent], SHARED_RATE)


@pytest.mark.slow
def test_two_replicas_on_postgresql_drain_a_paced_queue_together(tmp_path, tree, us, postgres_url):
    replicas = servers(tmp_path, tree, us, 2, SHARED_RATE, WEB_CONCURRENCY="1", FIDESMAIL_DATABASE_URL=postgres_url)
    try:
        ids = queue(replicas[0].url, 15) + queue(replicas[1].url, 15, start=15)
        posted = drained(us, 30)
        listed = lambda: requests.get(replicas[1].url + MESSAGES, params={"size": 100}, headers=bearer(auth.READ),
                                      timeout=10).json()["items"]
        assert posted == in_order_of_creation(listed, ids)
    finally:
        for replica in replicas:
            replica.stop()
    never_faster_than([r.at for r in us.sent], SHARED_RATE)


def test_0005_adds_the_limiter_to_a_database_with_a_queue_in_it(database_url):
    from alembic import command
    from sqlalchemy import text

    database = Database(database_url)
    with database.engine.connect() as connection:  # as the outbox's issue left it, one message queued
        command.upgrade(database._alembic(connection), "0004_providers")
        if not database.is_sqlite:
            connection.commit()
        connection.execute(text("INSERT INTO outbox (message_id, config_key, created_at, due_at, attempts, payload) "
                                "VALUES ('msg_Q', 'k', 1, 1, 0, :p)"), {"p": b"sealed"})
        connection.commit()
    database.upgrade()
    assert database.current() == head_revision()
    with database.read() as connection:
        assert connection.execute(text("SELECT message_id, due_at FROM outbox")).all() == [("msg_Q", 1)]
        assert connection.execute(text("SELECT count(*) FROM rate_limits")).scalar() == 0
    database.engine.dispose()
