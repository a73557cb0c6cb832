"""A config's `rate_limit` (contract section 17): its provider is never sent more than that many messages a second.

The config field through the API, the YAML loader and `flask check`; synchronous sends waiting for
their slot within the 30 s budget, else 429; retries taking slots too. The shared limiter across 2
gunicorn workers and 2 replicas on PostgreSQL is measured where it matters, at the test Mailgun: no
window of 1 s (less a small allowance for thread scheduling) holds more than `rate_limit` posts.
"""

from __future__ import annotations

import re
import threading
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
from tests.support import CONFIG, SECRET, Server, bearer, configure_mailgun, eventually, write_config

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


def test_synchronous_sends_wait_for_their_slots(make_sender, us):
    client = make_sender(rate_limit=20)
    answers = []
    threads = [threading.Thread(target=lambda n=n: answers.append(send(client, n).status_code)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 12
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


def test_a_slot_that_came_while_the_process_was_busy_is_exchanged_for_another(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'pacing.db'}")
    database.upgrade()
    late = [0.05]  # the first wake-up comes 50 ms after its slot (a busy process), the next on time

    def busy_sleep(seconds):
        time.sleep(seconds + (late.pop() if late else 0))

    pacer, pace = Pacer(database, sleep=busy_sleep), Pace("k", 10, within_s=5)
    first, second = pacer.take(pace), pacer.take(pace)
    assert second - first == 100_000
    assert pacer.wait(pace, second)  # late for its slot: it took the next free one and waited for that
    with database.read() as connection:
        assert next_free(connection, "k") == first + 300_000  # three slots taken: none bunched


def test_a_send_that_wakes_too_late_for_every_slot_is_429_and_its_record_says_so(make_sender, us):
    client = make_sender(rate_limit=10)
    sender = services.of(client.application).sender
    sender.retrier.max_total_wait = 0.5
    sender.pacer._sleep = lambda seconds: time.sleep(seconds + 0.05)  # always woken 50 ms late
    assert send(client, 1).status_code == 200  # its slot is now: no wait, so never late
    refused = send(client, 2)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert len(us.requests) == 1
    [record] = [r for r in client.get(MESSAGES, headers=bearer(auth.READ)).json["items"] if r["attempts"] == []]
    assert record["status"] == "failed" and "rate limit of my_mailgun" in record["failure_reason"]


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


def burst(urls, count, extra_headers=None):
    """`count` sends at once (a barrier), spread over `urls`; their answers."""
    barrier = threading.Barrier(count)
    answers = [None] * count

    def one(n):
        session = requests.Session()
        barrier.wait()
        answers[n] = session.post(urls[n % len(urls)] + SEND, json={**RECEIPT, "to": f"p{n}@example.com"},
                                  headers={**bearer(auth.SEND), **(extra_headers or {})}, timeout=40)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def servers(tmp_path, tree, us, count, rate, **env):
    instances = [tmp_path / f"instance-{n}" for n in range(count)]
    prepare(tree, instances, {"my_mailgun": ("mg.example.com", KEY)})
    document = yaml.safe_load((tree / "email" / "my_mailgun.yaml").read_text())
    (tree / "email" / "my_mailgun.yaml").write_bytes(yamlio.dump({**document, "rate_limit": rate}))
    base = {"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_SECRET_KEY": SECRET,
            "FIDESMAIL_MAILGUN_BASE_URL": us.base_url, "FIDESMAIL_THREADS": "16", **env}
    started = [Server({**base, "FIDESMAIL_INSTANCE_DIR": str(instance)}, tmp_path).start() for instance in instances]
    for n in range(4):  # every process's first post opens its connection: not what is measured
        body = {**RECEIPT, "to": f"warm{n}@example.com"}
        assert requests.post(started[n % count].url + SEND, json=body, headers=bearer(auth.SEND), timeout=10).ok
    us.reset()
    return started


def test_two_workers_share_one_limiter(tmp_path, tree, us):
    [srv] = servers(tmp_path, tree, us, 1, 10, WEB_CONCURRENCY="2")
    try:
        answers = burst([srv.url], 20)
    finally:
        srv.stop()
    assert [a.status_code for a in answers] == [200] * 20
    never_faster_than([r.at for r in us.sent], 10)


def test_two_replicas_on_postgresql_share_one_limiter(tmp_path, tree, us, postgres_url):
    replicas = servers(tmp_path, tree, us, 2, 10, WEB_CONCURRENCY="1", FIDESMAIL_DATABASE_URL=postgres_url)
    try:
        answers = burst([r.url for r in replicas], 20)
    finally:
        for replica in replicas:
            replica.stop()
    assert [a.status_code for a in answers] == [200] * 20
    never_faster_than([r.at for r in us.sent], 10)
