"""Readiness (contract section 8, issue 22): each part's state is kept by a background loop; /health says
`degraded` naming the part, /readyz answers 503 naming it (never a path, host or password), /livez 200 while the
process serves; no request runs a migration."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import requests

from fidesmail.runtime import services
from fidesmail.runtime.loops import Loop
from fidesmail.runtime.readiness import Readiness
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import bearer, configure_mailgun, eventually

KEY = "key-" + "7a2c" * 8
SEND = {"action_type": "test_message", "to": "subject@example.com"}
FAST = {"READINESS_INTERVAL": 0.05}


def ready(client) -> tuple[int, dict]:
    answer = client.get("/readyz")
    return answer.status_code, answer.json


def test_a_ready_service_answers_200_everywhere(client):
    assert client.get("/livez").status_code == 200
    assert ready(client) == (200, {"status": "ready"})
    health = client.get("/health").json
    assert health["status"] == "healthy" and health["not_ready"] == []
    assert health["tree"] == health["sealing"] == health["database"] == {"ok": True}


def test_a_missing_seal_pub_is_sealing_not_ready_and_back_when_restored(make_app, tree):
    client = make_app(**FAST).test_client()
    public_key = (tree / "seal.pub").read_bytes()
    (tree / "seal.pub").unlink()
    assert eventually(lambda: ready(client)[0] == 503, timeout=10)
    status, body = ready(client)
    assert body == {"detail": "not ready: sealing", "not_ready": ["sealing"]}
    health = client.get("/health").json
    assert health["status"] == "degraded" and health["not_ready"] == ["sealing"]
    assert health["sealing"] == {"ok": False}  # no details without a token
    assert "seal.pub" in client.get("/health", headers=bearer(auth.READ)).json["sealing"]["problem"]
    assert client.get("/livez").status_code == 200  # alive all the same: a restart would not help
    (tree / "seal.pub").write_bytes(public_key)
    assert eventually(lambda: ready(client)[0] == 200, timeout=10)


def test_a_tree_that_goes_away_is_tree_not_ready(make_app, tmp_path):
    mounted = tmp_path / "mounted"
    (mounted / "email").mkdir(parents=True)
    client = make_app(CONFIG_DIR=mounted, **FAST).test_client()
    assert ready(client)[0] == 200
    mounted.rename(tmp_path / "elsewhere")  # a volume unmounted, a git-sync link gone
    # tree (and sealing too, once a reload finds no seal.pub there)
    assert eventually(lambda: "tree" in (ready(client)[1].get("not_ready") or []), timeout=10)
    assert str(tmp_path) not in client.get("/readyz").get_data(as_text=True)  # never a path
    (tmp_path / "elsewhere").rename(mounted)
    assert eventually(lambda: ready(client)[0] == 200, timeout=10)


def test_a_database_down_at_start_is_migrated_by_the_loop_never_by_a_request(make_app, postgres_server):
    """The database does not exist yet at start: sends answer 503 at once (the request only reads the flag);
    once it exists, the readiness loop migrates it and the service becomes ready; only then does a send go out."""
    name = f"later_{uuid.uuid4().hex[:8]}"
    url = postgres_server.url(name).replace("fidesmail@", "fidesmail:pw-9f3e@")
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        app = make_app(DATABASE_URL=url, MAILGUN_BASE_URL=fake.base_url, READINESS_INTERVAL=0.2)
        client = app.test_client()
        configure_mailgun(client, KEY)
        status, body = ready(client)
        assert status == 503 and body["not_ready"] == ["database"]
        text = client.get("/readyz").get_data(as_text=True)
        assert "127.0.0.1" not in text and "pw-9f3e" not in text and name not in text
        loops = services.of(app).loops
        for loop in loops:
            loop.stop()  # no loop: the flag stays as it is, and a request must not try on its own
        with psycopg.connect(postgres_server.conninfo(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            answer = client.post("/api/v1/email/send", json=SEND, headers=bearer(auth.SEND))
            assert answer.status_code == 503 and "records cannot be kept" in answer.json["detail"]
            assert fake.requests == []
            assert services.of(app).database.current() is None  # the request migrated nothing
            fresh = Loop("readiness", services.of(app).readiness.refresh, 0.05)
            fresh.start()
            try:
                assert eventually(lambda: ready(client)[0] == 200, timeout=15)
            finally:
                fresh.stop()
            assert services.of(app).database.current() is not None  # the loop migrated it
            assert client.post("/api/v1/email/send", json=SEND, headers=bearer(auth.SEND)).status_code == 200
        finally:
            postgres_server.drop_database(name)


def test_a_database_lost_while_serving_is_degraded(make_app, postgres_server):
    name = postgres_server.create_database()
    client = make_app(DATABASE_URL=postgres_server.url(name), **FAST).test_client()
    assert ready(client)[0] == 200
    postgres_server.drop_database(name)
    assert eventually(lambda: ready(client)[0] == 503, timeout=15)
    health = client.get("/health").json
    assert health["status"] == "degraded" and "database" in health["not_ready"] and health["database"]["ok"] is False
    assert client.get("/api/v1/email/config", headers=bearer()).status_code == 200  # configs keep working


def test_a_check_that_breaks_is_not_ready_and_the_loop_goes_on():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return None

    readiness = Readiness({"database": flaky, "tree": lambda: None})
    readiness.refresh()
    assert readiness.not_ready() == ["database"] and "RuntimeError" in readiness.problems()["database"]
    loop = Loop("test", readiness.refresh, 0.01)
    loop.start()
    try:
        assert eventually(lambda: readiness.not_ready() == [], timeout=5)
    finally:
        loop.stop()


def test_probes_under_gunicorn(server, tree):
    """The server as a process: /livez and /readyz answer, and /readyz turns 503 when seal.pub goes."""
    srv = server(FIDESMAIL_READINESS_INTERVAL="0.1")
    assert requests.get(srv.url + "/livez", timeout=5).status_code == 200
    assert requests.get(srv.url + "/readyz", timeout=5).status_code == 200
    (tree / "seal.pub").unlink()
    assert eventually(lambda: requests.get(srv.url + "/readyz", timeout=5).status_code == 503, timeout=10)
    assert requests.get(srv.url + "/livez", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/health"])
def test_probes_need_no_token(client, path):
    assert client.get(path).status_code == 200
    assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 200


