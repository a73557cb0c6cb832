"""The signing key as a sealed secret, `flask messages verify`, `flask webhooks register`, and the whole loop
with real processes: fidesmail sends through the test Mailgun, which posts its signed events back."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests
import yaml
from sqlalchemy import update

from fidesmail.records import messages as records
from fidesmail.records.schema import delivery_events, messages
from fidesmail.runtime import services
from fidesmail.sealing.vault import Vault
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, ROOT, SECRET, bearer, free_port, parse_sealed
from tests.test_webhooks import HOOK, KEY, SIGNING_KEY, VERIFY, event, post, send

SECRET_URL = "/api/v1/email/config/my_mailgun/secret"
ALL_EVENTS = ["delivered", "permanent_fail", "temporary_fail", "complained", "unsubscribed", "opened", "clicked"]


@pytest.fixture
def fake():
    with MailgunFake(domains={"mg.example.com": KEY, "mg.eu.example.com": KEY},
                     signing_keys={"mg.example.com": SIGNING_KEY}) as fake:
        yield fake


@pytest.fixture
def app(make_app, fake):
    return make_app(MAILGUN_BASE_URL=fake.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0)


@pytest.fixture
def client(app):
    client = app.test_client()
    assert client.post("/api/v1/email/config", json=CONFIG, headers=bearer()).status_code == 200
    return client


# -- the signing key, a second sealed secret ---------------------------------------------------


def test_the_signing_key_alone_keeps_the_api_key_and_secrets_set_stays_about_the_api_key(client, tree, tmp_path, fake):
    assert client.put(SECRET_URL, json={"mailgun_webhook_signing_key": SIGNING_KEY}, headers=bearer()).status_code \
        == 200
    assert client.get("/api/v1/email/config/my_mailgun", headers=bearer()).json["secrets_set"] is False
    assert client.post(SECRET_URL, json={"mailgun_api_key": KEY}, headers=bearer()).status_code == 200
    assert client.put(SECRET_URL, json={"mailgun_webhook_signing_key": SIGNING_KEY + "-2"},
                      headers=bearer()).status_code == 200
    text = (tree / "secrets.sealed.yaml").read_text()
    assert KEY not in text and SIGNING_KEY not in text
    sealed, problems = parse_sealed(text.encode())
    vault = Vault(tmp_path / "instance" / "seal.key")
    assert problems == [] and sorted(sealed.fields_of("my_mailgun")) == ["mailgun_api_key",
                                                                          "mailgun_webhook_signing_key"]
    assert vault.open(sealed, "my_mailgun", "mailgun_api_key") == KEY  # kept
    assert vault.open(sealed, "my_mailgun", "mailgun_webhook_signing_key") == SIGNING_KEY + "-2"
    assert client.get("/api/v1/email/config/my_mailgun", headers=bearer()).json["secrets_set"] is True
    assert send(client).status_code == 200  # the API key still sends
    assert fake.sent[-1].auth_user == "api"


@pytest.mark.parametrize("body,loc", [
    ({}, ["body", "mailgun_api_key"]),
    ({"mailgun_webhook_signing_key": ""}, ["body", "mailgun_webhook_signing_key"]),
    ({"mailgun_webhook_signing_key": "k\r\nX: y"}, ["body", "mailgun_webhook_signing_key"]),
    ({"mailgun_webhook_signing_key": "clé"}, ["body", "mailgun_webhook_signing_key"]),
    ({"mailgun_webhook_signing_key": None}, ["body", "mailgun_webhook_signing_key"]),
    ({"mailgun_webhook_signing_key": "k", "other": "x"}, ["body", "other"]),
])
def test_bad_signing_key_bodies_are_422_and_write_nothing(client, tree, body, loc):
    answer = client.put(SECRET_URL, json=body, headers=bearer())
    assert answer.status_code == 422 and loc in [p["loc"] for p in answer.json["detail"]]
    if body == {}:
        assert answer.json["detail"] == [{"loc": loc, "msg": "field required", "type": "missing"}]
    assert not (tree / "secrets.sealed.yaml").exists()


@pytest.mark.slow  # `flask secrets seal` as a process
def test_flask_secrets_seal_seals_the_signing_key_with_seal_pub_alone(app, client, tree, tmp_path):
    env = {**os.environ, "FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "contributor"),
           "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_SEAL_KEY_FILE": str(tmp_path / "contributor" / "none")}
    sealed = subprocess.run([sys.executable, "-m", "flask", "secrets", "seal", "my_mailgun",
                             "mailgun_webhook_signing_key"], cwd=ROOT, env=env, input=SIGNING_KEY + "\n",
                            capture_output=True, text=True, timeout=60)
    assert sealed.returncode == 0, sealed.stderr
    assert not (tmp_path / "contributor" / "none").exists()
    assert SIGNING_KEY not in sealed.stdout + sealed.stderr + (tree / "secrets.sealed.yaml").read_text()
    assert list(yaml.safe_load((tree / "secrets.sealed.yaml").read_text())["secrets"]["my_mailgun"]) == \
        ["mailgun_webhook_signing_key"]
    client.post("/api/v1/reload", headers=bearer())
    # The service opens it: a webhook signed with it is taken (no message: 200, ignored).
    answer = post(client, event("delivered"))
    assert answer.status_code == 200 and answer.json["outcome"] == "unknown_message"


# -- flask messages verify -----------------------------------------------------------------------


@pytest.fixture
def with_events(client, fake):
    client.put(SECRET_URL, json={"mailgun_api_key": KEY, "mailgun_webhook_signing_key": SIGNING_KEY},
               headers=bearer())
    ids = [send(client).json["message_id"] for _ in range(2)]
    for message_id in ids:
        for name in ("accepted", "delivered"):
            assert post(client, event(name, message_id)).json["outcome"] == "verified"
    return ids


def test_verify_rechecks_every_stored_signature_and_exits_1_on_an_altered_one(app, with_events, runner):
    first, second = with_events
    result = runner.invoke(args=["messages", "verify"])
    assert result.exit_code == 0, result.output
    assert "4 of 4 stored event(s) of all messages verified" in result.output
    found = services.of(app)
    with found.database.write() as connection:
        connection.execute(update(delivery_events).where(delivery_events.c.message_id == second,
                                                         delivery_events.c.event == "delivered")
                           .values(mailgun_signature="f" * 64))
    result = runner.invoke(args=["messages", "verify"])
    assert result.exit_code == 1
    assert f"{second}: delivered at " in result.output and "does not match the webhook signing key" in result.output
    assert "3 of 4" in result.output and SIGNING_KEY not in result.output
    assert runner.invoke(args=["messages", "verify", first]).exit_code == 0
    assert runner.invoke(args=["messages", "verify", second]).exit_code == 1
    unknown = runner.invoke(args=["messages", "verify", "msg_nope"])
    assert unknown.exit_code == 1 and "no message msg_nope" in unknown.output


def test_verify_fails_when_the_signing_key_changed_since(app, client, with_events, runner):
    client.put(SECRET_URL, json={"mailgun_webhook_signing_key": "a-new-signing-key"}, headers=bearer())
    result = runner.invoke(args=["messages", "verify"])
    assert result.exit_code == 1 and "0 of 4" in result.output


def test_retention_removes_a_records_events_with_it(app, client, with_events):
    first, second = with_events
    found = services.of(app)
    with found.database.write() as connection:
        connection.execute(update(messages).where(messages.c.id == first).values(
            created_at=records.now_ms() - 800 * 24 * 3600 * 1000))  # past the 730 days' retention
    found.maintenance.prepare()
    with found.database.read() as connection:
        left = {row.message_id for row in connection.execute(delivery_events.select())}
    assert left == {second}


# -- flask webhooks register ----------------------------------------------------------------------


def test_register_creates_every_webhook_then_finds_them_registered(client, runner, fake):
    client.put(SECRET_URL, json={"mailgun_api_key": KEY}, headers=bearer())
    result = runner.invoke(args=["webhooks", "register", "my_mailgun", "https://fidesmail.example.org"])
    assert result.exit_code == 0, result.output
    target = "https://fidesmail.example.org" + HOOK
    assert fake.webhooks["mg.example.com"] == {name: [target] for name in ALL_EVENTS}
    assert [(r.method, r.path) for r in fake.requests] == \
        [("GET", "/v3/domains/mg.example.com/webhooks")] + [("POST", "/v3/domains/mg.example.com/webhooks")] * 7
    assert all(r.auth_user == "api" for r in fake.requests)
    assert "has no mailgun_webhook_signing_key" in result.output  # a warning: webhooks are refused until set
    assert KEY not in result.output
    fake.reset()
    again = runner.invoke(args=["webhooks", "register", "my_mailgun", target])
    assert again.exit_code == 0 and again.output.count("already registered") == 7
    assert [r.method for r in fake.requests] == ["GET"]


def test_register_keeps_the_urls_others_registered(client, runner, fake):
    client.put(SECRET_URL, json={"mailgun_api_key": KEY}, headers=bearer())
    fake.webhooks["mg.example.com"] = {"delivered": ["https://crm.example.org/mailgun"]}
    result = runner.invoke(args=["webhooks", "register", "my_mailgun", "https://fm.example.org" + HOOK,
                                 "--event", "delivered", "--event", "accepted"])
    assert result.exit_code == 0, result.output
    assert fake.webhooks["mg.example.com"] == {
        "delivered": ["https://crm.example.org/mailgun", "https://fm.example.org" + HOOK],
        "accepted": ["https://fm.example.org" + HOOK]}
    assert [r.method for r in fake.requests] == ["GET", "PUT", "POST"]


def test_register_dry_run_sends_nothing_and_needs_no_key(client, runner, fake):
    result = runner.invoke(args=["webhooks", "register", "my_mailgun", "https://fm.example.org", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert fake.requests == [] and f"GET  {fake.base_url}/v3/domains/mg.example.com/webhooks " in result.output
    assert "https://fm.example.org" + HOOK in result.output and "nothing was sent" in result.output


def test_register_uses_the_eu_base_for_an_eu_domain(make_app, fake, runner):
    with MailgunFake(domains={"mg.eu.example.com": KEY}) as eu:
        app = make_app(MAILGUN_BASE_URL=fake.base_url, MAILGUN_EU_BASE_URL=eu.base_url)
        client = app.test_client()
        eu_config = {**CONFIG, "details": {**CONFIG["details"], "domain": "mg.eu.example.com", "is_eu_domain": True}}
        client.post("/api/v1/email/config", json=eu_config, headers=bearer())
        client.put(SECRET_URL, json={"mailgun_api_key": KEY}, headers=bearer())
        result = app.test_cli_runner().invoke(args=["webhooks", "register", "my_mailgun", "https://fm.example.org"])
        assert result.exit_code == 0, result.output
        assert len(eu.requests) == 8 and fake.requests == []
        assert set(eu.webhooks["mg.eu.example.com"]) == set(ALL_EVENTS)


def test_register_says_what_mailgun_refused_without_the_key(client, runner, fake):
    wrong = "key-wrong-" + "9" * 20
    client.put(SECRET_URL, json={"mailgun_api_key": wrong}, headers=bearer())
    result = runner.invoke(args=["webhooks", "register", "my_mailgun", "https://fm.example.org"])
    assert result.exit_code == 1 and "answered 401" in result.output and wrong not in result.output
    for url in ("ftp://fm.example.org", "fm.example.org"):
        assert runner.invoke(args=["webhooks", "register", "my_mailgun", url]).exit_code == 2
    assert runner.invoke(args=["webhooks", "register", "nope", "https://fm.example.org"]).exit_code == 1


# -- the whole loop, with real processes -----------------------------------------------------------


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the fake exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the fake does not listen")


def test_the_whole_loop_with_real_processes(server, tree, tmp_path):
    """python app.py sends through the standalone test Mailgun, which posts signed events back to it:
    the record shows delivered; `flask messages verify` exits 0, and 1 once a stored signature is altered."""
    port = free_port()
    fake = subprocess.Popen([sys.executable, str(ROOT / "tests" / "mailgun_fake.py"), "--port", str(port),
                             "--domain", f"mg.example.com={KEY}", "--signing-key", SIGNING_KEY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, fake)
        mailgun = f"http://127.0.0.1:{port}"
        service = server(FIDESMAIL_MAILGUN_BASE_URL=mailgun)
        requests.post(service.url + "/api/v1/email/config", json=CONFIG, headers=bearer()).raise_for_status()
        requests.put(service.url + SECRET_URL, json={"mailgun_api_key": KEY,
                                                     "mailgun_webhook_signing_key": SIGNING_KEY},
                     headers=bearer()).raise_for_status()
        env = {**os.environ, "FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
               "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_MAILGUN_BASE_URL": mailgun}

        def flask(*args):
            return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=60)

        registered = flask("webhooks", "register", "my_mailgun", service.url)
        assert registered.returncode == 0, registered.stderr
        assert KEY not in registered.stdout + registered.stderr
        sent = requests.post(service.url + "/api/v1/email/send", json=VERIFY, headers=bearer(auth.SEND), timeout=10)
        assert sent.status_code == 200, sent.text
        url = f"{service.url}/api/v1/email/messages/{sent.json()['message_id']}"
        deadline, got = time.monotonic() + 20, {}
        while time.monotonic() < deadline and got.get("status") != "delivered":
            got = requests.get(url, headers=bearer(auth.READ), timeout=10).json()
            time.sleep(0.05)
        assert got["status"] == "delivered" and [e["event"] for e in got["events"]] == ["delivered"]
        verified = flask("messages", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "1 of 1" in verified.stderr
        with sqlite3.connect(tmp_path / "instance" / "fidesmail.db") as db:
            db.execute("UPDATE delivery_events SET mailgun_signature = ?", ("0" * 64,))
        altered = flask("messages", "verify", got["message_id"])
        assert altered.returncode == 1 and got["message_id"] in altered.stdout
        for output in (service.log(), verified.stdout + verified.stderr, altered.stdout + altered.stderr):
            assert SIGNING_KEY not in output and KEY not in output
    finally:
        fake.terminate()
        fake.wait(10)



def test_the_test_mailgun_keeps_webhooks_as_mailguns_domain_webhooks_api_does(fake):
    base, auth_ = f"{fake.base_url}/v3/domains/mg.example.com/webhooks", ("api", KEY)
    created = requests.post(base, data={"id": "delivered", "url": "https://a.example/hook"}, auth=auth_, timeout=10)
    assert created.status_code == 200 and created.json()["webhook"] == {"urls": ["https://a.example/hook"]}
    assert requests.post(base, data={"id": "delivered", "url": "https://b.example"}, auth=auth_,
                         timeout=10).status_code == 400  # exists: PUT updates it
    assert requests.post(base, data={"id": "bounced", "url": "https://b.example"}, auth=auth_,
                         timeout=10).status_code == 400
    updated = requests.put(f"{base}/delivered", data=[("url", "https://a.example/hook"), ("url", "https://b.example")],
                           auth=auth_, timeout=10)
    assert updated.json()["webhook"]["urls"] == ["https://a.example/hook", "https://b.example"]
    assert requests.get(base, auth=auth_, timeout=10).json() == {
        "webhooks": {"delivered": {"urls": ["https://a.example/hook", "https://b.example"]}}}
    assert requests.get(f"{base}/delivered", auth=auth_, timeout=10).json()["webhook"]["urls"][1] == "https://b.example"
    assert requests.delete(f"{base}/delivered", auth=auth_, timeout=10).status_code == 200
    assert requests.get(f"{base}/delivered", auth=auth_, timeout=10).status_code == 404
    assert requests.get(base, auth=("api", "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{fake.base_url}/v3/domains/nope.example.com/webhooks", auth=auth_,
                        timeout=10).status_code == 404
