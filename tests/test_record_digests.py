"""Keyed digests (issue 21, finding 1; contract section 9): with the database alone nothing a request or an email
held can be recovered; whoever holds the email can have it proven against its record; old rows are migrated."""

# Fixtures of another test module are imported and then used by name (pytest finds them so): not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from fidesmail.content import body_params, rendering
from fidesmail.records.database import Database, engine_url
from fidesmail.records.messages import legacy_key_hash, now_ms
from fidesmail.web import auth
from tests.support import bearer, configure_mailgun
from tests.test_records import CODE, KEY, MESSAGES, TO, VERIFY, client, make_sender, record, send, us  # noqa: F401

SENTINEL = "000000"


@pytest.fixture
def sqlite_sender(make_app, us, tmp_path):
    """A configured client on a SQLite file of its own (the database file an attacker may copy)."""

    def make(database_file=tmp_path / "fidesmail.db", **overrides):
        app = make_app(MAILGUN_BASE_URL=us.base_url, MAILGUN_RETRIES=0, DATABASE_URL=f"sqlite:///{database_file}",
                       **overrides)
        client = app.test_client()
        if overrides.get("INSTANCE_DIR") is None:
            configure_mailgun(client, KEY)
        return client

    return make


def every_digest(database_file) -> set[bytes]:
    """What an attacker with only the database file sees: every 32-byte value of every row of every table."""
    with sqlite3.connect(database_file) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        values = [value for table in tables for row in connection.execute(f'SELECT * FROM "{table}"') for value in row]
    return {bytes(value) for value in values if isinstance(value, bytes) and len(value) == 32}


def recover_code(digests: set[bytes], to: str):
    """The attack of issue 21: every six-digit code through the public built-in template and the public request
    format, each plain SHA-256 looked for in the database. The code when one is found, else None."""
    params = body_params.load_body_params("subject_identity_verification", {**VERIFY["body_params"],
                                                                              "verification_code": SENTINEL})
    email = rendering.render("subject_identity_verification", params)
    joined = "\x00".join((email.subject, email.html, email.text))
    start = joined.index(SENTINEL)
    head, tail = hashlib.sha256(joined[:start].encode()), joined[start:]
    request = json.dumps({**VERIFY, "to": to, "body_params": {**VERIFY["body_params"], "verification_code": SENTINEL}},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for number in range(1_000_000):
        code = f"{number:06d}"
        content = head.copy()
        content.update(tail.replace(SENTINEL, code).encode())
        if content.digest() in digests or hashlib.sha256(request.replace(SENTINEL, code).encode()).digest() in digests:
            return code
    return None


@pytest.mark.slow
def test_the_database_file_alone_gives_away_neither_the_code_nor_the_address(sqlite_sender, us, tmp_path):
    database_file = tmp_path / "stolen.db"
    # With an Idempotency-Key: the ledger's request fingerprint is stored too.
    answer = send(sqlite_sender(database_file), **{"Idempotency-Key": "verify-pri_123"})
    assert answer.status_code == 200 and CODE in us.sent[0].field("text")
    digests = every_digest(database_file)
    assert len(digests) >= 3  # the address's, the content's and the request's digests are all there...
    assert recover_code(digests, TO) is None  # ...and no code, with the right address guessed, matches any


def content_of(sent) -> dict:
    return {name: sent.field(name) for name in ("subject", "html", "text")}


def check(client, message_id, body, headers=None):
    return client.post(f"{MESSAGES}/{message_id}/content", json=body,
                       headers=bearer(auth.READ) if headers is None else headers)


def test_whoever_holds_the_email_can_have_it_proven(client, us):
    sent = send(client).json
    got = record(client, sent["message_id"])
    assert got["content_digest"].startswith("hmac-sha256:") and len(got["content_digest"]) == 12 + 64
    email = content_of(us.sent[0])
    assert check(client, sent["message_id"], email).json == {"matches": True}
    altered = {**email, "text": email["text"].replace(CODE, "111111")}
    assert check(client, sent["message_id"], altered).json == {"matches": False}
    assert check(client, "msg_nope", email).status_code == 404
    for bad in ({"subject": email["subject"], "html": email["html"]}, {**email, "tag": "x"}, {**email, "html": 7}):
        answer = check(client, sent["message_id"], bad)
        assert answer.status_code == 422 and answer.json["detail"][0]["loc"][0] == "body"
    assert check(client, sent["message_id"], email, headers={}).status_code == 401
    assert check(client, sent["message_id"], email, headers=bearer(auth.SEND)).status_code == 403


def test_a_queued_message_is_proven_by_what_was_posted_later(client, us):
    queued = send(client, **{"Prefer": "respond-async, wait=10"})
    assert queued.status_code == 200, queued.json  # posted within the wait
    assert check(client, queued.json["message_id"], content_of(us.sent[0])).json == {"matches": True}


def test_ten_checks_that_do_not_match_are_all_one_message_answers(client, us):
    message_id = send(client).json["message_id"]
    email = content_of(us.sent[0])
    assert check(client, message_id, email).json == {"matches": True}  # a match does not count
    for guess in range(10):
        assert check(client, message_id, {**email, "text": f"guess {guess}"}).json == {"matches": False}
    refused = check(client, message_id, email)  # even the right email: no more answers, so no oracle
    assert refused.status_code == 429 and "10 content checks" in refused.json["detail"]


def test_a_database_from_before_keyed_digests_loses_its_plain_hashes_and_never_sends_twice(make_sender, us,
                                                                                           database_url):
    database = Database(database_url)
    with database.engine.connect() as connection:  # as the code before issue 21 left it
        command.upgrade(database._alembic(connection), "0002_outbox")
        if not database.is_sqlite:
            connection.commit()
    plain_content, plain_request = hashlib.sha256(b"old email").digest(), hashlib.sha256(b"old request").digest()
    with database.write() as connection:
        connection.execute(text(
            "INSERT INTO messages (id, config_key, action_type, to_masked, to_digest, status, created_at, updated_at, "
            "attempts, test_mode, content_digest, idempotency_key, request_fingerprint, answer) VALUES ('msg_OLD', "
            "'my_mailgun', 'test_message', 's***@example.com', :to, 'accepted', :at, :at, '[]', 0, :content, :key, "
            ":request, :answer)"), {"to": b"\0" * 32, "at": now_ms(), "content": plain_content,
                                    "request": plain_request, "key": legacy_key_hash("old-key"),
                                    "answer": json.dumps({"status": 200, "body": {"message_id": "msg_OLD"}})})
    database.engine.dispose()
    client = make_sender(DATABASE_URL=database_url).test_client()
    configure_mailgun(client, KEY)
    with create_engine(engine_url(database_url)).connect() as connection:
        rows = connection.execute(text("SELECT * FROM messages")).all()
    assert len(rows) == 1 and plain_content not in rows[0] and plain_request not in rows[0]
    old = record(client, "msg_OLD")
    assert old["content_digest"] is None and old["status"] == "accepted"
    refused = check(client, "msg_OLD", {"subject": "s", "html": "h", "text": "t"})
    assert refused.status_code == 409 and "cannot be proven" in refused.json["detail"]
    # An old Idempotency-Key is still known, but its request can no longer be compared: nothing is sent.
    reused = send(client, **{"Idempotency-Key": "old-key"})
    assert reused.status_code == 422 and "use a new Idempotency-Key" in reused.json["detail"][0]["msg"]
    assert us.requests == []
    first, again = (send(client, **{"Idempotency-Key": "new-key"}) for _ in range(2))
    assert first.status_code == 200 and again.json == first.json and len(us.requests) == 1


def test_a_replica_with_another_content_key_is_refused_and_says_so(sqlite_sender, tmp_path):
    sqlite_sender()
    (tmp_path / "instance-2").mkdir()
    for name in ("records.key", "seal.key"):  # the content key is not shared
        (tmp_path / "instance-2" / name).write_bytes((tmp_path / "instance" / name).read_bytes())
    other = sqlite_sender(INSTANCE_DIR=tmp_path / "instance-2", SEAL_KEY_FILE=tmp_path / "instance-2" / "seal.key")
    problem = other.get("/health", headers=bearer(auth.READ)).json["database"]["problem"]
    assert "content key" in problem and "content.key" in problem
    assert other.post("/api/v1/email/send", json=VERIFY, headers=bearer(auth.SEND)).status_code == 503


@pytest.mark.parametrize("async_", [False, True])
@pytest.mark.slow
def test_resend_honours_idempotency_key(client, us, async_):
    us.fail_next(400, message="mailbox unavailable")
    failed = send(client).json["message_id"]
    resend = f"{MESSAGES}/{failed}/resend"
    body = {"to": TO, "body_params": VERIFY["body_params"]}
    headers = {**bearer(auth.SEND), "Idempotency-Key": "resend-1"}
    if async_:
        headers["Prefer"] = "respond-async, wait=10"
    answers = [client.post(resend, json=body, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3, answers[0].json
    assert answers[0].json == answers[1].json == answers[2].json
    listed = client.get(MESSAGES, query_string={"size": 100}, headers=bearer(auth.READ)).json
    assert listed["total"] == 2 and len(us.sent) == 1  # the failed one and one resend; one post accepted
    other = client.post(resend, json={**body, "body_params": {**body["body_params"], "verification_code": "1"}},
                        headers=headers)
    assert other.status_code == 422 and other.json["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    # The same key on /send (another request) is refused too, and a resend with a new key is a new one.
    assert send(client, **{"Idempotency-Key": "resend-1"}).status_code == 422
    assert client.post(resend, json=body, headers={**headers, "Idempotency-Key": "resend-2"}).status_code == 200
    assert len(us.sent) == 2


def test_the_content_key_is_read_only_by_its_owner(sqlite_sender, tmp_path, caplog):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    (instance / "content.key").write_text("ab" * 32)
    (instance / "content.key").chmod(0o644)
    sqlite_sender()
    assert f"content key (content digests, request fingerprints) {instance / 'content.key'} can be read by group " \
           "or others (mode 0644)" in caplog.text

