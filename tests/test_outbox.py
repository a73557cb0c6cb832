"""The outbox (contract section 11) through HTTP, on SQLite and on a real PostgreSQL alike."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text, update

from fidesmail.outbox import prefer
from fidesmail.outbox.gates import GATE_THRESHOLD
from fidesmail.records import messages as records
from fidesmail.records.database import engine_url
from fidesmail.records.schema import messages as messages_table
from fidesmail.runtime import services
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, Counter, bearer, configure_mailgun, head_revision, record, settled, tried, wait_until

KEY = "key-" + "0b7c5e" * 5
SEND = "/api/v1/email/send"
MESSAGES = "/api/v1/email/messages"
TO = "Queued.Person@Example.com"
CODE = "604918"
VERIFY = {"action_type": "subject_identity_verification", "to": TO, "reference": "pri_q1",
          "body_params": {"verification_code": CODE, "verification_code_ttl_seconds": 600}}
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def us():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def make_sender(database_url, make_app, us):  # the database set up first, dropped last
    def make(**overrides):
        settings = {"MAILGUN_BASE_URL": us.base_url, "MAILGUN_TIMEOUT": 1.0, "MAILGUN_RETRIES": 0,
                    "MAILGUN_BACKOFF": 0.01, "DATABASE_URL": database_url, "OUTBOX_BACKOFF": 0.05,
                    "OUTBOX_MAX_BACKOFF": 0.2, "OUTBOX_POLL": 0.05}
        app = make_app(**{**settings, **overrides})
        client = app.test_client()
        if client.get("/api/v1/email/config/my_mailgun", headers=bearer()).status_code == 404:
            configure_mailgun(client, KEY)
        return client
    return make


@pytest.fixture
def client(make_sender):
    return make_sender()


def send(client, body=VERIFY, **headers):
    return client.post(SEND, json=body, headers={**bearer(auth.SEND), **headers})


def looks_at_the_queue(client) -> Counter:
    """Counts the deliverer's looks at the queue: "n polls later, still not posted" without a clock."""
    return Counter(services.of(client.application).queue, "next_due")


def posts_of(fake, message_id):
    return [r for r in fake.requests if r.field("v:fidesmail-message-id") == message_id]


def outbox_rows(database_url):
    with create_engine(engine_url(database_url)).connect() as connection:
        return connection.execute(text("SELECT * FROM outbox")).all()


# --- Prefer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers,wanted", [
    (["respond-async"], (True, 0)),
    (["RESPOND-ASYNC, Wait=5"], (True, 5)),
    (["return=minimal, respond-async; foo=bar", "wait=1000"], (True, 30)),
    (['wait="7", respond-async'], (True, 7)),
    (["respond-async, wait=3, wait=9"], (True, 3)),
    (["respond-async, wait=soon"], (True, 0)),
    (["return=minimal", "wait=5"], (False, 5)),
    ([], (False, 0)),
])
def test_prefer_is_read_as_rfc_7240_says(headers, wanted):
    found = prefer.parse(headers)
    assert (found.respond_async, found.wait) == wanted


# --- accepting --------------------------------------------------------------------------------


def test_respond_async_answers_202_with_the_record_then_sends_it_once(client, us):
    answer = send(client, **ASYNC)
    assert answer.status_code == 202, answer.json
    assert answer.headers["Preference-Applied"] == "respond-async"
    body = answer.json
    assert body["status"] == "queued" and body["message_id"].startswith("msg_")
    assert answer.headers["Location"] == f"{MESSAGES}/{body['message_id']}"
    assert body["to"]["masked"] == "q***@example.com" and body["reference"] == "pri_q1" and body["attempts"] == []
    got = settled(client, body["message_id"])
    assert got["status"] == "accepted" and got["mailgun_id"] and got["failure_reason"] is None
    [post] = posts_of(us, body["message_id"])
    assert post.field("to") == TO and CODE in post.field("text") and got["mailgun_id"] == post.message_id
    assert [a["outcome"] for a in got["attempts"]] == ["accepted"]
    assert got["content_digest"] == body["content_digest"]  # rendered once, at acceptance


@pytest.mark.parametrize("value", ["RESPOND-ASYNC", "return=representation, respond-async;x=1"])
def test_prefer_tokens_are_case_insensitive_and_others_ignored(client, us, value):
    answer = send(client, Prefer=value)
    assert answer.status_code == 202 and answer.headers["Preference-Applied"] == "respond-async"


def test_without_respond_async_nothing_changes(client, us):
    answer = send(client, Prefer="return=minimal, wait=5")
    assert answer.status_code == 200 and answer.json["status"] == "accepted"
    assert "Preference-Applied" not in answer.headers and len(us.sent) == 1


@pytest.mark.slow
def test_wait_answers_200_as_a_sync_send_when_sent_in_time_and_202_otherwise(client, us):
    quick = send(client, Prefer="respond-async, wait=10")
    assert quick.status_code == 200, quick.json
    assert set(quick.json) == {"id", "message", "config_key", "message_id", "status", "provider"}
    assert quick.json["message"] == "Queued. Thank you." and quick.json["status"] == "accepted"
    assert quick.json["id"] == us.sent[-1].message_id
    assert quick.headers["Location"] == f"{MESSAGES}/{quick.json['message_id']}"
    us.refuse_for(60, status=503)  # down for longer than the caller waits
    slow = send(client, Prefer="respond-async, wait=1")
    assert slow.status_code == 202 and slow.json["status"] == "queued"


def test_refusals_before_queueing_queue_nothing(client, us, database_url):
    assert send(client, {**VERIFY, "config_key": "nope"}, **ASYNC).status_code == 404
    assert send(client, {**VERIFY, "to": "a@b@example.com"}, **ASYNC).status_code == 422
    assert client.post("/api/v1/email/config", json={**CONFIG, "key": "bare", "name": "Bare"},
                       headers=bearer()).status_code == 200
    missing = send(client, {**VERIFY, "config_key": "bare"}, **ASYNC)
    assert missing.status_code == 409 and "Email secrets not found" in missing.json["detail"]
    assert outbox_rows(database_url) == [] and us.requests == []


def test_idempotency_key_with_respond_async_queues_once_and_replays_the_202(client, us):
    us.refuse_for(60, status=503)
    first = send(client, **ASYNC, **{"Idempotency-Key": "later-1"})
    again = send(client, **ASYNC, **{"Idempotency-Key": "later-1"})
    assert first.status_code == again.status_code == 202 and again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]
    other = send(client, {**VERIFY, "reference": "pri_other"}, **ASYNC, **{"Idempotency-Key": "later-1"})
    assert other.status_code == 422 and other.json["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    sync = send(client, **{"Idempotency-Key": "later-1"})  # the same key without Prefer: the same answer
    assert sync.status_code == 202 and sync.json == first.json
    us.up()
    assert settled(client, first.json["message_id"])["status"] == "accepted"
    assert len([r for r in us.sent]) == 1 and len(client.get(MESSAGES, headers=bearer(auth.READ)).json["items"]) == 1


# --- what is stored while queued ----------------------------------------------------------------


def test_while_queued_the_payload_is_encrypted_and_it_is_deleted_once_sent(client, us, database_url):
    us.refuse_for(60, status=503)
    message_id = send(client, **ASYNC).json["message_id"]
    [row] = outbox_rows(database_url)
    stored = repr(row).lower() + row.payload.hex()
    assert "queued.person" not in stored and CODE not in stored and "one-time" not in stored
    with create_engine(engine_url(database_url)).connect() as connection:
        dumped = repr(connection.execute(text("SELECT * FROM messages")).all()).lower()
    assert "queued.person" not in dumped and CODE not in dumped
    us.up()
    assert settled(client, message_id)["status"] == "accepted"
    assert outbox_rows(database_url) == []


def test_a_payload_that_does_not_open_fails_the_message_without_posting(make_sender, us, database_url):
    us.down()
    client = make_sender(OUTBOX_BACKOFF=60, OUTBOX_MAX_BACKOFF=60)
    message_id = send(client, **ASYNC).json["message_id"]
    tried(client, message_id)
    with create_engine(engine_url(database_url)).begin() as connection:
        connection.execute(text("UPDATE outbox SET payload = :p, due_at = 0"), {"p": b"\x01" + b"\x00" * 40})
        connection.execute(text("DELETE FROM outbox_gates"))
    before = len(posts_of(us, message_id))  # refused while Mailgun was down
    us.up()
    got = settled(client, message_id)
    assert got["status"] == "failed" and "does not open" in got["failure_reason"]
    assert len(posts_of(us, message_id)) == before and outbox_rows(database_url) == []


# --- retries ------------------------------------------------------------------------------------


def test_5xx_and_failed_connections_are_retried_with_backoff_until_accepted(client, us):
    us.fail_next(503, times=2)
    message_id = send(client, **ASYNC).json["message_id"]
    got = settled(client, message_id)
    assert got["status"] == "accepted"
    assert [a["outcome"] for a in got["attempts"]] == ["server_error", "server_error", "accepted"]
    assert len(posts_of(us, message_id)) == 3


@pytest.mark.slow
def test_429_is_retried_at_the_moment_mailgun_names_however_far(client, us):
    us.fail_next(429, retry_after=3600)
    message_id = send(client, **ASYNC).json["message_id"]
    got = tried(client, message_id)
    assert got["status"] == "queued" and [a["outcome"] for a in got["attempts"]] == ["rate_limited"]
    next_try = datetime.fromisoformat(got["failure_reason"].rsplit("next try at ", 1)[1].rstrip(")"))
    assert 3590 < (next_try - datetime.now(UTC)).total_seconds() <= 3600
    looks_at_the_queue(client).wait_for_more(5, what="looks at the queue")  # many polls later:
    assert len(posts_of(us, message_id)) == 1  # not posted again before its time


def test_other_4xx_fail_at_once(client, us, database_url):
    us.fail_next(400, message="'to' parameter is not a valid address")
    message_id = send(client, **ASYNC).json["message_id"]
    got = settled(client, message_id)
    assert got["status"] == "failed" and "Mailgun answered 400" in got["failure_reason"]
    assert len(posts_of(us, message_id)) == 1 and outbox_rows(database_url) == []


@pytest.mark.parametrize("fault", ["slow", "close"])
@pytest.mark.slow
def test_no_clean_answer_is_unknown_and_never_posted_again(client, us, fault):
    us.slow_next(3) if fault == "slow" else us.close_next()
    message_id = send(client, **ASYNC).json["message_id"]
    got = settled(client, message_id)
    assert got["status"] == "unknown" and "may still be sent" in got["failure_reason"]
    looks_at_the_queue(client).wait_for_more(5, what="looks at the queue")
    assert us.attempts == 1  # counted on arrival (the slow answer is recorded only once it is given)
    # A person settles it: resend (here with Prefer too) makes a new record pointing to it.
    again = client.post(f"{MESSAGES}/{message_id}/resend", json={"to": TO, "body_params": VERIFY["body_params"]},
                        headers={**bearer(auth.SEND), **ASYNC})
    assert again.status_code == 202 and again.json["resend_of"] == message_id
    assert settled(client, again.json["message_id"])["status"] == "accepted"


@pytest.mark.slow
def test_a_status_never_moves_backwards_when_a_webhook_lands_while_posting(client, us, database_url):
    us.latency = 0.6
    us.fail_next(503)
    message_id = send(client, **ASYNC).json["message_id"]
    deadline = time.monotonic() + 5
    while us.attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with create_engine(engine_url(database_url)).begin() as connection:  # as the webhook's `accepted` does
        connection.execute(update(messages_table).where(messages_table.c.id == message_id).values(
            status="accepted", provider_message_id="<from-webhook@mg.example.com>"))
    got = tried(client, message_id)  # the 503, answered after the webhook's `accepted`
    assert got["status"] == "accepted" and got["mailgun_id"] == "<from-webhook@mg.example.com>"
    assert [a["outcome"] for a in got["attempts"]] == ["server_error"]
    us.latency = 0
    looks_at_the_queue(client).wait_for_more(5, what="looks at the queue")
    assert len(posts_of(us, message_id)) == 1 and outbox_rows(database_url) == []


# --- a key or config gone at delivery time ----------------------------------------------------


def test_a_config_gone_at_delivery_time_keeps_the_message_queued_until_it_is_back(client, us, tree):
    us.down()
    message_id = send(client, **ASYNC).json["message_id"]
    tried(client, message_id)
    saved = {p.name: p.read_bytes() for p in (tree / "email").iterdir()}
    sealed = (tree / "secrets.sealed.yaml").read_bytes()
    assert client.delete("/api/v1/email/config/my_mailgun", headers=bearer()).status_code == 204
    deadline = time.monotonic() + 10
    while "No email config found" not in (record(client, message_id)["failure_reason"] or "") \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    held = record(client, message_id)["failure_reason"]
    us.up()
    # Mailgun is back, the config is not: it is looked at again, and waits again (a new next try).
    wait_until(lambda: record(client, message_id)["failure_reason"] not in (held, None),
               what="the message held again after Mailgun came back")
    got = record(client, message_id)
    # Queued (or being looked at again right now), and saying why it waits.
    assert got["status"] in ("queued", "sending")
    assert "No email config found with key my_mailgun" in got["failure_reason"]
    assert message_id not in us.posts_by_message(accepted_only=True)
    for name, data in saved.items():  # a person restores it (git revert)
        (tree / "email" / name).write_bytes(data)
    (tree / "secrets.sealed.yaml").write_bytes(sealed)
    client.post("/api/v1/reload", headers=bearer())
    assert settled(client, message_id)["status"] == "accepted"
    assert us.posts_by_message(accepted_only=True) == {message_id: 1}


@pytest.mark.slow
def test_the_deadline_fails_what_could_not_be_sent_in_time(make_sender, us):
    us.refuse_for(60, status=503)
    client = make_sender(DELIVERY_DEADLINE=1.0)
    first = send(client, **ASYNC).json["message_id"]
    second = send(client, {**VERIFY, "reference": "pri_q2"}, **ASYNC).json["message_id"]
    for message_id in (first, second):
        got = settled(client, message_id, timeout=20)
        assert got["status"] == "failed" and got["failure_reason"].startswith("gave up after "), got
        assert "503" in got["failure_reason"]


# --- cancelling ---------------------------------------------------------------------------------


def test_delete_cancels_a_queued_message_and_deletes_its_payload(make_sender, us, database_url):
    us.down()
    client = make_sender(OUTBOX_BACKOFF=60, OUTBOX_MAX_BACKOFF=60)
    message_id = send(client, **ASYNC).json["message_id"]
    tried(client, message_id)  # refused once, queued for a minute
    url = f"{MESSAGES}/{message_id}"
    assert client.delete(url, headers=bearer(auth.READ)).status_code == 403
    assert client.delete(url).status_code == 401
    cancelled = client.delete(url, headers=bearer(auth.SEND))
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert cancelled.json["message_id"] == message_id and outbox_rows(database_url) == []
    again = client.delete(url, headers=bearer(auth.SEND))
    assert again.status_code == 409 and "cancelled" in again.json["detail"]
    us.up()
    looks_at_the_queue(client).wait_for_more(5, what="looks at the queue")
    assert message_id not in us.posts_by_message(accepted_only=True)
    assert record(client, message_id)["status"] == "cancelled"
    assert client.delete(f"{MESSAGES}/msg_nope", headers=bearer(auth.SEND)).status_code == 404
    sent = send(client).json["message_id"]
    assert client.delete(f"{MESSAGES}/{sent}", headers=bearer(auth.SEND)).status_code == 409


@pytest.mark.slow
def test_a_message_being_posted_cannot_be_cancelled(client, us):
    us.slow_next(0.8)
    message_id = send(client, **ASYNC).json["message_id"]
    deadline = time.monotonic() + 5
    while us.attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    busy = client.delete(f"{MESSAGES}/{message_id}", headers=bearer(auth.SEND))
    assert busy.status_code == 409 and "being sent right now" in busy.json["detail"]
    assert settled(client, message_id)["status"] == "accepted"


# --- a worker that dies while posting -----------------------------------------------------------


def test_a_lease_that_ran_out_makes_the_message_unknown_never_posted_again(client, us, database_url):
    found = services.of(client.application)
    found.deliverer.stop(wait=2)  # this test plays the dead worker itself
    message_id = send(client, **ASYNC).json["message_id"]
    [claimed] = found.queue.claim(1, lease_ms=0)  # claimed, then the worker is gone
    assert record(client, message_id)["status"] == "sending"
    wait_until(lambda: records.now_ms() > claimed.lease_until, what="the lease's end")
    assert found.queue.sweep(86_400_000)["expired"] == 1
    got = record(client, message_id)
    assert got["status"] == "unknown" and "stopped" in got["failure_reason"]
    assert outbox_rows(database_url) == [] and us.requests == []
    assert found.queue.claim(10, lease_ms=10_000) == []


# --- health and metrics -------------------------------------------------------------------------


def test_health_and_metrics_show_the_queue_without_details(client, us):
    us.refuse_for(60, status=503)
    for _ in range(2):
        send(client, **ASYNC)

    def server_errors() -> float:
        metrics = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
        counted = [line for line in metrics.splitlines()
                   if line.startswith('fidesmail_outbox_attempts_total{outcome="server_error"}')]
        return float(counted[0].split()[-1]) if counted else 0.0

    wait_until(lambda: server_errors() >= 1, what="a refused attempt counted")
    outbox = client.get("/health").json["outbox"]
    assert outbox["ok"] is True and outbox["queued"] + outbox["sending"] == 2
    assert outbox["oldest_queued_seconds"] is None or outbox["oldest_queued_seconds"] >= 0
    assert set(outbox) == {"ok", "queued", "sending", "oldest_queued_seconds"}
    metrics = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
    assert 'fidesmail_outbox_messages{status="queued"}' in metrics
    assert "fidesmail_outbox_oldest_queued_age_seconds" in metrics
    assert 'fidesmail_outbox_attempts_total{outcome="server_error"}' in metrics
    served = [line for line in metrics.splitlines() if line.startswith('fidesmail_outbox_attempts_total{outcome="se')]
    assert float(served[0].split()[-1]) >= 1


@pytest.mark.slow
def test_after_an_outage_queued_messages_go_out_once_each_in_order_of_creation(make_sender, us):
    us.down()
    client = make_sender(OUTBOX_CONCURRENCY=1)  # one poster: the order Mailgun sees is the order of posting
    ids = []
    bodies = [{**VERIFY, "to": f"queued.{n}@example.com"} for n in range(12)]  # within the verification limit
    threads = [threading.Thread(target=lambda body=body: ids.append(send(client, body, **ASYNC).json["message_id"]))
               for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 12
    created = sorted(ids, key=lambda i: (record(client, i)["created_at"], i))
    wait_until(lambda: us.attempts >= GATE_THRESHOLD, what="refusals enough to close the gate")
    looks_at_the_queue(client).wait_for_more(5, what="looks at the queue")  # and the gate holds the rest
    tried_while_down = set(us.posts_by_message())
    us.up()
    for message_id in ids:
        assert settled(client, message_id)["status"] == "accepted"
    accepted = [r.field("v:fidesmail-message-id") for r in us.sent]
    assert accepted == created  # each once, oldest first
    # While Mailgun refused, the config's queue waited behind its oldest message once the gate closed
    # (after GATE_THRESHOLD failures in a row; one more: twelve requests race to be stored first).
    assert len(tried_while_down) <= GATE_THRESHOLD + 1, tried_while_down


# --- the schema, and a real server ------------------------------------------------------------


def test_0002_outbox_migrates_a_database_with_records_in_it(database_url, tmp_path):
    from alembic import command

    from fidesmail.records.database import Database

    database = Database(database_url)
    with database.engine.connect() as connection:  # as issue 12 left it
        command.upgrade(database._alembic(connection), "0001_message_records")
        if not database.is_sqlite:
            connection.commit()
        connection.execute(text("INSERT INTO messages (id, config_key, action_type, to_masked, to_digest, status, "
                                "created_at, updated_at, attempts, test_mode) VALUES ('msg_OLD', 'k', 'test_message', "
                                "'a***@example.com', :d, 'accepted', 1, 1, '[]', 0)"), {"d": b"\x00" * 32})
        connection.commit()
    assert database.current() == "0001_message_records"
    database.upgrade()
    assert database.current() == head_revision()
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM messages WHERE id = 'msg_OLD'")).scalar() == "accepted"
        assert connection.execute(text("SELECT count(*) FROM outbox")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM outbox_gates")).scalar() == 0
    database.engine.dispose()


def test_under_gunicorn_health_and_metrics_count_the_queue_of_every_worker(server, us, tmp_path):
    srv = server(FIDESMAIL_MAILGUN_BASE_URL=us.base_url, FIDESMAIL_OUTBOX_BACKOFF="60")
    import requests

    requests.post(srv.url + "/api/v1/email/config", json=CONFIG, headers=bearer(), timeout=10).raise_for_status()
    requests.put(srv.url + "/api/v1/email/config/my_mailgun/secret", json={"mailgun_api_key": KEY},
                 headers=bearer(), timeout=10).raise_for_status()
    us.down()
    for _ in range(3):
        answer = requests.post(srv.url + SEND, json=VERIFY, headers={**bearer(auth.SEND), **ASYNC}, timeout=10)
        assert answer.status_code == 202
    wait_until(lambda: us.attempts >= 3, what="three refusals (they close the gate)")
    # Each refusal settled (back to queued) and counted; the gate then holds all three for a minute.
    outbox = wait_until(lambda: (found := requests.get(srv.url + "/health", timeout=10).json()["outbox"])["sending"]
                        == 0 and found, what="no message being sent")
    assert outbox["queued"] == 3 and outbox["oldest_queued_seconds"] > 0

    def served() -> list[str]:
        metrics = requests.get(srv.url + "/metrics", headers=bearer(auth.READ), timeout=10).text
        return [line for line in metrics.splitlines() if line.startswith('fidesmail_outbox_attempts_total{outcome="se')]

    counted = wait_until(lambda: (lines := served()) and float(lines[0].split()[-1]) >= 3 and lines,
                         what="three refused attempts counted")
    assert float(counted[0].split()[-1]) == 3.0  # summed over both workers
    metrics = requests.get(srv.url + "/metrics", headers=bearer(auth.READ), timeout=10).text
    assert 'fidesmail_outbox_messages{status="queued"} 3.0' in metrics
