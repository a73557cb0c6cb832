"""Mailgun's signed webhooks (contract section 10), through HTTP, on SQLite and on a real PostgreSQL alike.

The test Mailgun posts its events to fidesmail served on 127.0.0.1 (a real HTTP server in a thread);
where a test needs an event the fake would not send, it signs one itself as Mailgun would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from fidesmail.records.database import engine_url
from fidesmail.web import auth
from tests.mailgun_fake import WEBHOOK_TYPES, MailgunFake
from tests.support import CONFIG, bearer, configure_mailgun, head_revision

KEY = "key-" + "7a11ed" * 5
SIGNING_KEY = "whsec-" + "0c0ffee" * 4
DOMAIN = "mg.example.com"
SEND = "/api/v1/email/send"
MESSAGES = "/api/v1/email/messages"
HOOK = "/api/v1/email/webhooks/mailgun/my_mailgun"
TO = "Subject.Person@Example.com"
VERIFY = {"config_key": "my_mailgun", "action_type": "subject_identity_verification", "to": TO,
          "body_params": {"verification_code": "918273", "verification_code_ttl_seconds": 600}}


@pytest.fixture
def fake():
    with MailgunFake(domains={DOMAIN: KEY}, signing_keys={DOMAIN: SIGNING_KEY}) as fake:
        fake.webhook_retry_delay = 0.05
        yield fake


@pytest.fixture
def app(make_app, fake, database_url):
    return make_app(MAILGUN_BASE_URL=fake.base_url, MAILGUN_TIMEOUT=1.0, MAILGUN_RETRIES=0, MAILGUN_BACKOFF=0.01,
                    DATABASE_URL=database_url)


@pytest.fixture
def client(app):
    client = app.test_client()
    configure_mailgun(client, {"mailgun_api_key": KEY, "mailgun_webhook_signing_key": SIGNING_KEY})
    return client


@pytest.fixture
def hooked(client, fake, serve):
    """fidesmail on real HTTP, every webhook type of the domain registered at the fake to post to it."""
    url = serve(client.application) + HOOK
    fake.webhooks[DOMAIN] = {webhook_type: [url] for webhook_type in WEBHOOK_TYPES}
    return client


def send(client, body=VERIFY, **headers):
    answer = client.post(SEND, json=body, headers={**bearer(auth.SEND), **headers})
    return answer


def record(client, message_id):
    answer = client.get(f"{MESSAGES}/{message_id}", headers=bearer(auth.READ))
    assert answer.status_code == 200, answer.json
    return answer.json


def signature(key=SIGNING_KEY, timestamp=None, token=None):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    token = token or secrets.token_hex(25)
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


def event(name, message_id=None, mailgun_id=None, **more):
    data = {"event": name, "timestamp": time.time(), "id": secrets.token_hex(8), "recipient": TO.lower(),
            "message": {"headers": {"message-id": mailgun_id or "nothing@mg.example.com"}}, **more}
    if message_id is not None:
        data["user-variables"] = {"fidesmail-message-id": message_id}
    return data


def post(client, event_data, sig=None, path=HOOK):
    return client.post(path, json={"signature": sig or signature(), "event-data": event_data})


def counted(client, event_name, outcome, provider="mailgun") -> float:
    text = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
    found = re.search(rf'^fidesmail_webhook_events_total{{event="{event_name}",outcome="{outcome}",'
                      rf'provider="{provider}"}} (\S+)$', text,
                      re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def stored_rows(database_url, table="delivery_events"):
    with create_engine(engine_url(database_url)).connect() as connection:
        return connection.execute(text(f"SELECT * FROM {table}")).all()


def test_a_sent_message_is_delivered_and_its_history_carries_mailguns_signatures(hooked, fake, database_url):
    sent = send(hooked)
    assert sent.status_code == 200 and sent.json["status"] == "accepted"
    posts = fake.wait_for_webhooks(2)
    assert [(p.event, p.status) for p in posts] == [("accepted", 200), ("delivered", 200)]
    got = record(hooked, sent.json["message_id"])
    assert got["status"] == "delivered" and got["failure_reason"] is None
    assert [e["event"] for e in got["events"]] == ["accepted", "delivered"]
    first = got["events"][0]
    assert set(first) == {"event", "at", "severity", "reason", "provider", "signature", "mailgun"}
    assert first["at"].endswith("Z") and first["provider"] == "mailgun" and first["signature"] == first["mailgun"]
    assert got["events"][1]["severity"] is None and got["events"][1]["reason"] is None
    assert first["mailgun"]["token"] == posts[0].token
    # The triple verifies with the signing key: the evidence a third party can check.
    for item in got["events"]:
        triple = item["mailgun"]
        assert hmac.compare_digest(signature(timestamp=triple["timestamp"], token=triple["token"])["signature"],
                                   triple["signature"])
    listed = hooked.get(MESSAGES, headers=bearer(auth.READ)).json["items"]
    assert listed[0]["events"] == got["events"]
    # No address is kept from Mailgun's event (it names the recipient): not in any column.
    assert "subject.person" not in repr(stored_rows(database_url)).lower()
    assert counted(hooked, "delivered", "verified") == 1


@pytest.mark.parametrize("forge", [
    lambda s: {**s, "signature": "0" * 64},
    lambda s: {**s, "token": s["token"][:-1] + ("0" if s["token"][-1] != "0" else "1")},  # another token
    lambda s: {**s, "timestamp": str(int(s["timestamp"]) - 1)},
    lambda s: signature(key="not-the-signing-key"),
    lambda s: {"timestamp": s["timestamp"], "token": s["token"]},
    lambda s: {**s, "signature": s["signature"][:63]},
    lambda s: {**s, "timestamp": int(s["timestamp"])},
    lambda s: {**s, "signature": None},
    lambda s: "signed, honestly",
    lambda s: None,
])
@pytest.mark.slow
def test_forged_or_missing_signatures_are_401_and_record_nothing(hooked, fake, database_url, forge):
    fake.script_events("nobody-posts@example.com", "none")
    sent = send(hooked, {**VERIFY, "to": "nobody-posts@example.com"}).json
    fake_event = event("failed", sent["message_id"], severity="permanent", reason="bounce")
    forged = hooked.post(HOOK, json={"signature": forge(signature()), "event-data": fake_event})
    assert forged.status_code == 401 and forged.json == {"detail": "Mailgun webhook signature missing or wrong."}
    assert "WWW-Authenticate" not in forged.headers  # a bearer token would not help here
    got = record(hooked, sent["message_id"])
    assert got["status"] == "accepted" and got["events"] == []
    assert stored_rows(database_url) == []
    assert counted(hooked, "failed", "bad_signature") == 1


def test_no_webhook_body_at_all_is_401_and_a_bearer_token_is_no_substitute(client):
    assert client.post(HOOK).status_code == 401
    assert client.post(HOOK, json={}, headers=bearer()).status_code == 401
    assert client.post(HOOK + "/", json={}).status_code == 401  # routed with a trailing slash too, as every path


@pytest.mark.parametrize("offset,status", [(-301, 401), (301, 401), (-3600 * 24, 401), (-290, 200), (290, 200)])
@pytest.mark.slow
def test_a_timestamp_more_than_five_minutes_away_either_way_is_refused(client, offset, status):
    sent = send(client).json
    answer = post(client, event("delivered", sent["message_id"]),
                  sig=signature(timestamp=str(int(time.time()) + offset)))
    assert answer.status_code == status
    assert record(client, sent["message_id"])["status"] == ("delivered" if status == 200 else "accepted")
    if status == 401:
        assert "5 minutes" in answer.json["detail"] and counted(client, "delivered", "stale") == 1


def test_a_config_without_a_signing_key_or_no_such_config_is_401(client, make_app):
    other = {**CONFIG, "key": "no_signing_key", "name": "No signing key"}
    assert client.post("/api/v1/email/config", json=other, headers=bearer()).status_code == 200
    client.put("/api/v1/email/config/no_signing_key/secret", json={"mailgun_api_key": KEY}, headers=bearer())
    message_id = send(client, {**VERIFY, "config_key": "no_signing_key"}).json["message_id"]
    for path in ("/api/v1/email/webhooks/mailgun/no_signing_key", "/api/v1/email/webhooks/mailgun/nope"):
        answer = post(client, event("delivered", message_id), path=path)
        assert answer.status_code == 401, path
    assert record(client, message_id)["status"] == "accepted"
    assert counted(client, "delivered", "no_signing_key") == 2


def test_a_replayed_token_is_200_and_changes_nothing_twice(client, database_url):
    message_id = send(client).json["message_id"]
    body = {"signature": signature(), "event-data": event("delivered", message_id)}
    first = client.post(HOOK, json=body)
    assert first.status_code == 200 and first.json["outcome"] == "verified" and first.json["status"] == "delivered"
    # The same token again, even with another event in it (Mailgun signs the token, not the event).
    again = client.post(HOOK, json={**body, "event-data": event("failed", message_id, severity="permanent")})
    assert again.status_code == 200 and again.json["outcome"] == "replay"
    got = record(client, message_id)
    assert got["status"] == "delivered" and [e["event"] for e in got["events"]] == ["delivered"]
    assert len(stored_rows(database_url)) == 1
    assert counted(client, "failed", "replay") == 1


def test_mailguns_retries_of_one_token_at_once_record_it_once(hooked, fake, database_url):
    fake.redeliver = 2  # every event posted twice at the same moment, with the same token
    message_id = send(hooked).json["message_id"]
    posts = fake.wait_for_webhooks(4)
    assert sorted(p.event for p in posts) == ["accepted", "accepted", "delivered", "delivered"]
    assert all(p.status == 200 for p in posts)
    outcomes = sorted(json.loads(p.answer)["outcome"] for p in posts)
    assert outcomes == ["replay", "replay", "verified", "verified"]
    assert [e["event"] for e in record(hooked, message_id)["events"]] == ["accepted", "delivered"]
    assert len(stored_rows(database_url)) == 2


def test_many_copies_of_one_webhook_at_once_are_recorded_once(hooked, serve, database_url):
    """Replicas and workers racing with one token: the unique constraint lets exactly one record it."""
    url = serve(hooked.application) + HOOK
    message_id = send(hooked, {**VERIFY, "to": "racing@example.com"}).json["message_id"]
    body = json.dumps({"signature": signature(), "event-data": event("opened", message_id)}).encode()
    barrier, answers = threading.Barrier(8), []

    def post_copy():
        import requests

        barrier.wait()
        answers.append(requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30))

    threads = [threading.Thread(target=post_copy) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.json()["outcome"] for a in answers) == ["replay"] * 7 + ["verified"]
    opened = [row for row in stored_rows(database_url) if row.event == "opened"]
    assert len(opened) == 1


def test_events_for_messages_fidesmail_did_not_send_are_200_ignored_and_counted(client, database_url):
    other = {**CONFIG, "key": "other", "name": "Other"}
    client.post("/api/v1/email/config", json=other, headers=bearer())
    client.put("/api/v1/email/config/other/secret", json={"mailgun_api_key": KEY,
                                                           "mailgun_webhook_signing_key": "other-signing-key"},
               headers=bearer())
    mine = send(client).json["message_id"]
    for data, path, key in [
        (event("delivered", "msg_00000000000000000000000000"), HOOK, SIGNING_KEY),
        (event("delivered", mailgun_id="20260101.1.ABCDEF@mg.example.com"), HOOK, SIGNING_KEY),
        (event("delivered"), HOOK, SIGNING_KEY),
        # Another config's signing key cannot speak for this config's messages.
        (event("failed", mine, severity="permanent"), "/api/v1/email/webhooks/mailgun/other", "other-signing-key"),
    ]:
        answer = post(client, data, sig=signature(key=key), path=path)
        assert answer.status_code == 200 and answer.json["outcome"] == "unknown_message"
    assert record(client, mine)["status"] == "accepted"
    assert stored_rows(database_url) == []
    assert counted(client, "delivered", "unknown_message") == 3
    assert counted(client, "failed", "unknown_message") == 1


def test_without_the_user_variable_an_event_is_matched_by_mailguns_message_id(client, fake):
    sent = send(client).json
    assert sent["id"].startswith("<") and sent["id"].endswith(">")
    bare_id = sent["id"].strip("<>")  # as Mailgun's events name it
    answer = post(client, event("delivered", mailgun_id=bare_id))
    assert answer.status_code == 200 and answer.json["message_id"] == sent["message_id"]
    assert record(client, sent["message_id"])["status"] == "delivered"


@pytest.mark.parametrize("outcome,status,events", [
    ("delivered", "delivered", ["accepted", "delivered"]),
    ("permanent_failure", "failed", ["accepted", "failed"]),
    ("temporary_failure", "delivered", ["accepted", "failed", "delivered"]),
    ("complained", "delivered", ["accepted", "delivered", "complained"]),
])
@pytest.mark.slow
def test_each_outcome_mailgun_reports_sets_the_status_section_10_names(hooked, fake, database_url, outcome,
                                                                       status, events):
    fake.script_events(TO, outcome)
    message_id = send(hooked).json["message_id"]
    fake.wait_for_webhooks(len(events))
    got = record(hooked, message_id)
    assert got["status"] == status and [e["event"] for e in got["events"]] == events
    if outcome == "permanent_failure":
        failed = got["events"][1]
        assert failed["severity"] == "permanent"
        assert got["failure_reason"] == failed["reason"]
        assert failed["reason"].startswith("550 5.1.1 <s***@example.com>: The email account")
    else:
        assert got["failure_reason"] is None
    if outcome == "temporary_failure":
        assert got["events"][1]["severity"] == "temporary" and got["events"][1]["reason"].startswith("452 4.2.2")
    assert "subject.person" not in repr(stored_rows(database_url)).lower()
    assert "subject.person" not in repr(stored_rows(database_url, "messages")).lower()


def test_engagement_events_are_kept_and_change_no_status(client):
    message_id = send(client).json["message_id"]
    for name in ("opened", "clicked", "unsubscribed", "complained"):
        assert post(client, event(name, message_id, url="https://example.com/t?u=1")).status_code == 200
    got = record(client, message_id)
    assert got["status"] == "accepted"
    assert [e["event"] for e in got["events"]] == ["opened", "clicked", "unsubscribed", "complained"]
    assert "example.com/t" not in json.dumps(got)  # a clicked URL may carry a person's token: not kept


def test_a_later_event_never_moves_a_status_backwards(client):
    delivered = send(client).json["message_id"]
    for name in ("delivered", "accepted"):
        post(client, event(name, delivered))
    assert record(client, delivered)["status"] == "delivered"
    failed = send(client).json["message_id"]
    post(client, event("failed", failed, severity="permanent", reason="bounce"))
    for data in (event("delivered", failed), event("accepted", failed)):
        assert post(client, data).json["status"] == "failed"
    got = record(client, failed)
    assert got["status"] == "failed" and got["failure_reason"] == "bounce"
    assert [e["event"] for e in got["events"]] == ["failed", "delivered", "accepted"]


@pytest.mark.slow
def test_an_unknown_message_is_resolved_by_mailguns_accepted_event(client, fake):
    fake.slow_next(3)  # beyond the 1 s timeout: Mailgun may have it
    answer = send(client)
    assert answer.status_code == 504
    message_id = answer.json["message_id"]
    assert record(client, message_id)["status"] == "unknown"
    taken = post(client, event("accepted", message_id))
    assert taken.status_code == 200 and taken.json["status"] == "accepted"
    got = record(client, message_id)
    assert got["status"] == "accepted" and got["failure_reason"] is None
    assert [a["outcome"] for a in got["attempts"]] == ["unknown"]  # the timeout stays in the history
    resend = client.post(f"{MESSAGES}/{message_id}/resend", json={"to": TO, "body_params": VERIFY["body_params"]},
                         headers=bearer(auth.SEND))
    assert resend.status_code == 409  # resolved: nothing to resend


@pytest.mark.slow
def test_events_arriving_before_the_sends_answer_was_recorded_are_not_undone(hooked, fake):
    """Mailgun's events may reach fidesmail before Mailgun's answer to the send does: the send's
    `accepted` must not lower the `delivered` an event already recorded, and a retry with the same
    Idempotency-Key in that moment waits for the answer instead of calling it interrupted."""
    fake.events_before_answer = True
    replays, threads = [], []

    def meanwhile(_mailgun_id):
        # The record is delivered already and its sender still waits for this answer.
        thread = threading.Thread(target=lambda: replays.append(send(hooked, **{"Idempotency-Key": "early"})))
        thread.start()
        thread.join(0.5)
        threads.append(thread)

    fake.before_answer = meanwhile
    sent = send(hooked, **{"Idempotency-Key": "early"})
    assert sent.status_code == 200 and sent.json["status"] == "accepted"
    threads[0].join(10)
    [replay] = replays
    assert replay.status_code == 200 and replay.json == sent.json
    got = record(hooked, sent.json["message_id"])
    assert got["status"] == "delivered" and [e["event"] for e in got["events"]] == ["accepted", "delivered"]
    assert got["mailgun_id"] == sent.json["id"] and [a["outcome"] for a in got["attempts"]] == ["accepted"]
    assert len(fake.sent) == 1


def test_a_webhook_body_is_untrusted_input(client):
    message_id = send(client).json["message_id"]
    assert client.post(HOOK, data=b"{" * 10, content_type="application/json").status_code == 400
    big = json.dumps({"signature": signature(), "event-data": event("delivered", message_id, pad="x" * 1100000)})
    assert client.post(HOOK, data=big, content_type="application/json").status_code == 413
    for bad in ({"event": 7}, {"event": ""}, {"event": "delivered", "timestamp": "soon"},
                {"event": "delivered", "timestamp": 1e300}, {"event": "delivered", "message": "<id>"},
                {"event": "failed", "delivery-status": {"message": ["5.1.1"]}}, "delivered", None):
        answer = post(client, bad)
        assert answer.status_code == 422, (bad, answer.json)
        assert answer.json["detail"][0]["loc"][:2] == ["body", "event-data"]
    assert record(client, message_id)["events"] == []
    assert counted(client, "other", "invalid") >= 1


def test_control_characters_in_an_event_never_reach_the_database(client):
    """PostgreSQL refuses a NUL in text: such an event is a 422 or ignored, never a 503 that Mailgun retries."""
    message_id = send(client).json["message_id"]
    for data in (event("deli\u0000vered", message_id), event("failed", message_id, severity="perm\u0000anent"),
                 event("delivered", "msg_\u0000"), event("delivered", mailgun_id="a\u0000b@mg.example.com")):
        assert post(client, data).status_code in (200, 422), data
    kept = post(client, event("failed", message_id, severity="permanent", reason="no\u0000such\r\nuser\u0007"))
    assert kept.status_code == 200 and record(client, message_id)["failure_reason"] == "no such user"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=4), max_leaves=12)
_EVENT_DATA = st.fixed_dictionaries({}, optional={
    "event": st.sampled_from(["accepted", "delivered", "failed", "opened", "x" * 70]) | _JSON,
    "timestamp": st.floats() | st.integers() | _JSON, "severity": st.sampled_from(["permanent", "temporary"]) | _JSON,
    "reason": _JSON, "delivery-status": st.dictionaries(st.sampled_from(["message", "description", "code"]), _JSON),
    "message": st.fixed_dictionaries({"headers": st.dictionaries(st.just("message-id"), _JSON)}) | _JSON,
    "user-variables": st.dictionaries(st.just("fidesmail-message-id"), _JSON) | _JSON})


@pytest.mark.slow
def test_no_webhook_body_gives_a_500(client):
    message_id = send(client).json["message_id"]

    @given(data=_EVENT_DATA, signed=st.booleans(), ours=st.booleans(), raw=st.none() | st.binary(max_size=64))
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def fuzz(data, signed, ours, raw):
        if raw is not None:
            answer = client.post(HOOK, data=raw, content_type="application/json")
        else:
            if ours and isinstance(data.get("user-variables"), dict):
                data = {**data, "user-variables": {"fidesmail-message-id": message_id}}
            sig = signature() if signed else {"timestamp": "1", "token": "t", "signature": "s"}
            answer = client.post(HOOK, json={"signature": sig, "event-data": data})
        assert answer.status_code in (200, 400, 401, 422), answer.get_data(as_text=True)
        assert answer.is_json and "detail" in answer.json or answer.status_code == 200

    fuzz()
    assert record(client, message_id)["status"] in ("accepted", "delivered", "failed")


def test_a_database_at_0001_is_migrated_to_0002_with_its_records_kept(database_url):
    from alembic import command

    from fidesmail.records.database import Database

    database = Database(database_url)
    with database.engine.connect() as connection:
        command.upgrade(database._alembic(connection), "0001_message_records")
        if not database.is_sqlite:
            connection.commit()
    with database.write() as connection:
        connection.execute(text(
            "INSERT INTO messages (id, config_key, action_type, to_masked, to_digest, status, created_at, updated_at, "
            "attempts, test_mode) VALUES ('msg_OLD', 'my_mailgun', 'test_message', 's***@example.com', :digest, "
            "'accepted', 1, 1, '[]', 0)"), {"digest": b"\0" * 32})
    database.upgrade()
    assert database.current() == head_revision()  # 0002_delivery_events, the outbox's 0002_outbox, then on
    assert [row.id for row in stored_rows(database_url, "messages")] == ["msg_OLD"]
    assert stored_rows(database_url) == []
