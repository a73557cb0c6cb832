"""Message records (contract sections 9 and 12), on SQLite and on a real PostgreSQL alike."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import requests
from sqlalchemy import create_engine, text, update

from fidesmail.records import messages as records
from fidesmail.records import record_json
from fidesmail.records.database import engine_url
from fidesmail.records.schema import messages as messages_table
from fidesmail.runtime import services
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, ROOT, SECRET, bearer, configure_mailgun, head_revision

KEY = "key-" + "5e1d7a" * 5
SEND = "/api/v1/email/send"
MESSAGES = "/api/v1/email/messages"
TO = "Subject.Person@Example.com"
CODE = "918273"
VERIFY = {"action_type": "subject_identity_verification", "to": TO, "reference": "pri_123",
          "body_params": {"verification_code": CODE, "verification_code_ttl_seconds": 600}}


@pytest.fixture
def us():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def make_sender(make_app, us, database_url):
    def make(**overrides):
        settings = {"MAILGUN_BASE_URL": us.base_url, "MAILGUN_TIMEOUT": 1.0, "MAILGUN_RETRIES": 1,
                    "MAILGUN_BACKOFF": 0.01, "DATABASE_URL": database_url}
        return make_app(**{**settings, **overrides})
    return make


@pytest.fixture
def client(make_sender):
    client = make_sender().test_client()
    configure_mailgun(client, KEY)
    return client


def send(client, body=VERIFY, **headers):
    return client.post(SEND, json=body, headers={**bearer(auth.SEND), **headers})


def record(client, message_id):
    response = client.get(f"{MESSAGES}/{message_id}", headers=bearer(auth.READ))
    assert response.status_code == 200, response.json
    return response.json


def test_every_send_leaves_a_record_with_no_address_and_no_body(client, us, database_url):
    answer = send(client)
    assert answer.status_code == 200
    message_id = answer.json["message_id"]
    assert answer.headers["Location"] == f"{MESSAGES}/{message_id}"
    [seen] = us.requests
    got = record(client, message_id)
    assert got["status"] == "accepted" and got["mailgun_id"] == seen.message_id == answer.json["id"]
    assert got["config_key"] == "my_mailgun" and got["reference"] == "pri_123"
    assert got["action_type"] == "subject_identity_verification" and got["failure_reason"] is None
    assert got["to"]["masked"] == "s***@example.com" and got["to"]["digest"].startswith("hmac-sha256:")
    sent = b"\x00".join(seen.field(name).encode() for name in ("subject", "html", "text"))
    assert got["content_digest"].startswith("hmac-sha256:")  # keyed: the plain hash of the email is not it
    assert got["content_digest"] != "hmac-sha256:" + hashlib.sha256(sent).hexdigest()
    assert [(a["outcome"], a["http_status"], a["detail"]) for a in got["attempts"]] == \
        [("accepted", 200, "Queued. Thank you.")]
    # Contract 9 and 13: which provider took it, its id there, the config it went by; each attempt names both.
    assert (got["provider"], got["provider_message_id"], got["sent_via"]) == ("mailgun", seen.message_id, "my_mailgun")
    assert [(a["config_key"], a["provider"]) for a in got["attempts"]] == [("my_mailgun", "mailgun")]
    assert got["created_at"].endswith("Z") and got["events"] == []
    # The evidence holds neither the address nor the verification code, in any column.
    with create_engine(engine_url(database_url)).connect() as connection:
        rows = connection.execute(text("SELECT * FROM messages")).all()
    dumped = repr(rows).lower()
    assert "subject.person" not in dumped and "example.com" in dumped and CODE not in dumped


@pytest.mark.slow
def test_the_record_exists_before_mailgun_answers(client, us):
    us.slow_next(0.6)  # within the 1 s timeout
    done = []
    thread = threading.Thread(target=lambda: done.append(send(client)))
    thread.start()
    deadline = time.monotonic() + 5
    seen = None
    while time.monotonic() < deadline and seen is None:
        items = client.get(MESSAGES, headers=bearer(auth.READ)).json["items"]
        seen = items[0] if items else None
        time.sleep(0.02)
    assert seen is not None and seen["status"] == "sending" and done == []
    thread.join()
    assert record(client, seen["message_id"])["status"] == "accepted"


@pytest.mark.parametrize("fault,status,outcomes", [
    (lambda f: f.fail_next(400, message="'to' parameter is not a valid address"), "failed", ["refused"]),
    (lambda f: f.slow_next(3), "unknown", ["unknown"]),
    (lambda f: f.close_next(), "unknown", ["unknown"]),
    (lambda f: f.fail_next(503, times=2), "failed", ["server_error", "server_error"]),
    (lambda f: f.fail_next(429, retry_after=0), "accepted", ["rate_limited", "accepted"]),
])
@pytest.mark.slow
def test_each_outcome_is_recorded_with_every_attempt(client, us, fault, status, outcomes):
    fault(us)
    answer = send(client)
    [got] = client.get(MESSAGES, headers=bearer(auth.READ)).json["items"]
    assert got["status"] == status
    assert [a["outcome"] for a in got["attempts"]] == outcomes
    if status != "accepted":
        assert got["failure_reason"] and answer.status_code in (502, 504)
        assert got["failure_reason"] == answer.json["detail"]


def test_the_list_filters_and_pages_newest_first(client, us):
    ids = []
    for number, (action, to) in enumerate([("subject_identity_verification", "a@example.com"),
                                           ("test_message", "b@example.com"),
                                           ("test_message", "A@Example.com")]):
        body = {"action_type": action, "to": to, "reference": f"ref-{number % 2}"}
        if action == "subject_identity_verification":
            body["body_params"] = VERIFY["body_params"]
        ids.append(send(client, body).json["message_id"])
    us.fail_next(400)
    ids.append(send(client, {"action_type": "test_message", "to": "c@example.com"}).json["message_id"])

    def listed(**query):
        answer = client.get(MESSAGES, query_string=query, headers=bearer(auth.READ))
        assert answer.status_code == 200, answer.json
        return [item["message_id"] for item in answer.json["items"]]

    assert listed() == ids[::-1]
    assert listed(to="a@example.com") == [ids[2], ids[0]]  # normalised, lower-cased: one recipient
    assert listed(reference="ref-1") == [ids[1]]
    assert listed(action_type="test_message") == [ids[3], ids[2], ids[1]]
    assert listed(status="failed") == [ids[3]]
    assert listed(config_key="other") == []
    page = client.get(MESSAGES, query_string={"size": 2, "page": 2}, headers=bearer(auth.READ)).json
    assert [i["message_id"] for i in page["items"]] == [ids[1], ids[0]] and page["total"] == 4
    first = record(client, ids[0])["created_at"]
    assert listed(since=first) == ids[::-1] and listed(until=first) == []
    for bad in ({"status": "lost"}, {"size": 101}, {"to": "a@b@example.com"}, {"since": "yesterday"}):
        answer = client.get(MESSAGES, query_string=bad, headers=bearer(auth.READ))
        assert answer.status_code == 422 and answer.json["detail"][0]["loc"][0] == "query"
    # Unknown query parameters are ignored, as fidesops (FastAPI) ignored them.
    assert client.get(MESSAGES, query_string={"colour": "red"}, headers=bearer(auth.READ)).status_code == 200


def test_an_unknown_record_is_404_and_records_need_a_token(client):
    assert client.get(f"{MESSAGES}/msg_nope", headers=bearer(auth.READ)).status_code == 404
    assert client.get(f"{MESSAGES}/{'x' * 500}", headers=bearer(auth.READ)).status_code == 404
    assert client.get(MESSAGES).status_code == 401
    assert client.get(MESSAGES, headers=bearer(auth.SEND)).status_code == 403


@pytest.mark.slow
def test_resend_sends_unknown_or_failed_again_as_a_new_record(client, us):
    us.slow_next(3)
    unknown = send(client).json
    assert unknown["detail"].startswith("Mailgun") or "may still be sent" in unknown["detail"]
    [old] = client.get(MESSAGES, headers=bearer(auth.READ)).json["items"]
    resend = f"{MESSAGES}/{old['message_id']}/resend"
    body = {"to": TO, "body_params": VERIFY["body_params"]}
    assert client.post(resend, json={**body, "to": "other@example.com"}, headers=bearer(auth.SEND)).status_code == 422
    assert client.post(resend, json={"to": TO, "body_params": {}}, headers=bearer(auth.SEND)).status_code == 422
    assert client.post(resend, json=body, headers=bearer(auth.READ)).status_code == 403
    again = client.post(resend, json=body, headers=bearer(auth.SEND))
    assert again.status_code == 200, again.json
    new = record(client, again.json["message_id"])
    assert new["resend_of"] == old["message_id"] and new["status"] == "accepted"
    assert new["reference"] == "pri_123" and new["to"] == old["to"]
    assert us.sent[-1].field("to") == TO
    accepted = client.post(f"{MESSAGES}/{new['message_id']}/resend", json=body, headers=bearer(auth.SEND))
    assert accepted.status_code == 409 and "accepted" in accepted.json["detail"]


def test_idempotency_key_gives_the_same_message_id_and_sends_once(client, us, make_sender):
    first = send(client, **{"Idempotency-Key": "order-7"})
    again = send(client, **{"Idempotency-Key": "order-7"})
    assert again.status_code == 200 and again.json == first.json and len(us.requests) == 1
    assert again.headers["Location"] == first.headers["Location"]
    other = send(client, {**VERIFY, "reference": "pri_999"}, **{"Idempotency-Key": "order-7"})
    assert other.status_code == 422 and other.json["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    # A restart (a new app on the same database) keeps the ledger.
    restarted = make_sender().test_client()
    assert send(restarted, **{"Idempotency-Key": "order-7"}).json == first.json and len(us.requests) == 1


def test_a_sender_that_stopped_leaves_unknown_and_its_key_answers_interrupted(client, us):
    answer = send(client, **{"Idempotency-Key": "crashed"})
    message_id = answer.json["message_id"]
    found = services.of(client.application)
    with found.database.write() as connection:  # as a worker killed mid-send leaves its record
        connection.execute(update(messages_table).where(messages_table.c.id == message_id).values(
            status="sending", answer=None, lease_until=records.now_ms() - 1))
    replay = send(client, **{"Idempotency-Key": "crashed"})
    assert replay.status_code == 504 and "interrupted" in replay.json["detail"]
    assert found.records.expire_leases() == 1
    assert record(client, message_id)["status"] == "unknown"
    assert len(us.requests) == 1


def test_records_past_retention_are_removed_and_the_count_logged(client, caplog):
    """The default retention is 730 days (CCPA asks 24 months): a 2-year-old record stays, an older one goes."""
    ids = [send(client).json["message_id"] for _ in range(4)]
    found = services.of(client.application)
    day = 24 * 3600 * 1000
    with found.database.write() as connection:
        connection.execute(update(messages_table).where(messages_table.c.id.in_(ids[:2])).values(
            created_at=records.now_ms() - 731 * day))
        connection.execute(update(messages_table).where(messages_table.c.id == ids[2]).values(
            created_at=records.now_ms() - 729 * day))
    with caplog.at_level(logging.INFO, logger="fidesmail.records"):
        found.maintenance.prepare()  # what each process does at start and every minute
    assert "removed 2 message record(s) older than 730 days" in caplog.text
    listed = [i["message_id"] for i in client.get(MESSAGES, headers=bearer(auth.READ)).json["items"]]
    assert listed == [ids[3], ids[2]]


def test_an_unreachable_database_answers_503_and_configs_keep_working(make_app, us, postgres_server):
    url = f"postgresql://fidesmail:s3cret-pw@127.0.0.1:{postgres_server.port + 1}/nowhere"
    client = make_app(MAILGUN_BASE_URL=us.base_url, DATABASE_URL=url).test_client()
    assert client.post("/api/v1/email/config", json=CONFIG, headers=bearer()).status_code == 200
    client.put("/api/v1/email/config/my_mailgun/secret", json={"mailgun_api_key": KEY}, headers=bearer())
    answer = send(client)
    assert answer.status_code == 503 and "127.0.0.1" in answer.json["detail"]
    assert "s3cret-pw" not in answer.get_data(as_text=True) and "fidesmail@" not in answer.json["detail"]
    assert us.requests == []
    assert client.get("/api/v1/email/config/my_mailgun", headers=bearer()).status_code == 200
    public = client.get("/health").json
    assert public["status"] == "degraded" and public["not_ready"] == ["database"]  # contract section 8
    assert public["database"] == {"ok": False}
    detailed = client.get("/health", headers=bearer(auth.READ)).json["database"]
    assert "s3cret-pw" not in detailed["problem"] and "nowhere" in detailed["problem"]


def test_connections_postgresql_cut_are_replaced_not_handed_out_again(make_app, us, postgres_server, postgres_url):
    """The send's own writes run on the driver's connection (records/direct.py): a connection the server
    dropped must leave the pool as SQLAlchemy's own path would, so at most one send per dropped connection
    answers 503 (nothing sent), then sends succeed again."""
    client = make_app(MAILGUN_BASE_URL=us.base_url, DATABASE_URL=postgres_url).test_client()
    configure_mailgun(client, KEY)
    assert send(client).status_code == 200
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as admin:
        cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                            (database,)).fetchone()[0]
    assert cut >= 1
    posted = len(us.sent)
    answers = [send(client) for _ in range(cut + 3)]
    failed = [a for a in answers if a.status_code != 200]
    assert len(failed) <= cut and all(a.status_code == 503 for a in failed), [a.json for a in failed]
    assert [a.status_code for a in answers[-3:]] == [200, 200, 200]
    assert len(us.sent) == posted + len(answers) - len(failed)  # a 503 sent nothing


@pytest.mark.slow  # `flask db` as a process
def test_db_commands_upgrade_and_show_the_revision(tmp_path, database_url):
    env = {"FIDESMAIL_CONFIG_DIR": str(tmp_path), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
           "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}

    def flask(*args):
        return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    assert flask("db", "current").stdout.strip() == "none"
    upgraded = flask("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert flask("db", "current").stdout.strip() == head_revision()


def test_0004_names_the_provider_of_every_old_record(database_url):
    """Records sent before providers were named all went through Mailgun: they say so, and keep Mailgun's id."""
    from alembic import command

    from fidesmail.records.database import Database

    database = Database(database_url)
    with database.engine.connect() as connection:
        command.upgrade(database._alembic(connection), "0003_keyed_digests")
        if not database.is_sqlite:
            connection.commit()
    with database.write() as connection:
        for message_id, mailgun_id in (("msg_SENT", "<old@mg.example.com>"), ("msg_FAILED", None)):
            connection.execute(text(
                "INSERT INTO messages (id, config_key, action_type, to_masked, to_digest, status, created_at, "
                "updated_at, attempts, test_mode, mailgun_id) VALUES (:id, 'my_mailgun', 'test_message', "
                "'s***@example.com', :digest, 'accepted', 1, 1, '[]', 0, :mailgun_id)"),
                {"id": message_id, "digest": b"\0" * 32, "mailgun_id": mailgun_id})
    database.upgrade()
    assert database.current() == head_revision()
    found = records.MessageRecords(database, content_key=None)  # only reading: no digest is made
    sent, failed = (record_json.as_json(found.get(message_id)) for message_id in ("msg_SENT", "msg_FAILED"))
    assert (sent["provider"], sent["provider_message_id"], sent["mailgun_id"], sent["sent_via"]) == (
        "mailgun", "<old@mg.example.com>", "<old@mg.example.com>", "my_mailgun")
    assert (failed["provider"], failed["provider_message_id"], failed["mailgun_id"]) == ("mailgun", None, None)
    database.engine.dispose()


def test_two_replicas_on_one_postgresql_share_records_and_keys(server, us, postgres_url, tmp_path):
    shared = {"FIDESMAIL_DATABASE_URL": postgres_url, "FIDESMAIL_MAILGUN_BASE_URL": us.base_url}
    first = server(**shared)
    (tmp_path / "instance-2").mkdir()
    for name in ("records.key", "content.key", "seal.key"):  # what replicas share
        (tmp_path / "instance-2" / name).write_bytes((tmp_path / "instance" / name).read_bytes())
    second = server(FIDESMAIL_INSTANCE_DIR=str(tmp_path / "instance-2"), **shared)
    requests.post(first.url + "/api/v1/email/config", json=CONFIG, headers=bearer()).raise_for_status()
    requests.put(first.url + "/api/v1/email/config/my_mailgun/secret", json={"mailgun_api_key": KEY},
                 headers=bearer()).raise_for_status()
    headers = {**bearer(auth.SEND), "Idempotency-Key": "across-replicas"}
    one = requests.post(first.url + SEND, json=VERIFY, headers=headers, timeout=10)
    two = requests.post(second.url + SEND, json=VERIFY, headers=headers, timeout=10)
    assert one.status_code == two.status_code == 200 and one.json() == two.json() and len(us.requests) == 1
    found = requests.get(second.url + MESSAGES, params={"to": TO}, headers=bearer(auth.READ), timeout=10).json()
    assert [item["message_id"] for item in found["items"]] == [one.json()["message_id"]]


def test_a_replica_with_another_records_key_is_refused_and_says_so(server, us, postgres_url, tmp_path):
    server(FIDESMAIL_DATABASE_URL=postgres_url)
    other = server(FIDESMAIL_DATABASE_URL=postgres_url, FIDESMAIL_INSTANCE_DIR=str(tmp_path / "instance-2"))
    health = requests.get(other.url + "/health", headers=bearer(auth.READ), timeout=10).json()
    assert health["database"]["ok"] is False and "records key" in health["database"]["problem"]
