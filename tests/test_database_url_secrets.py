"""No part of a database URL that can hold a secret is ever shown (issue 21, finding 3; contract section 12).

Through a real `python app.py` and the `flask` CLI: the password in the userinfo, in `?password=` and
in libpq's query-string form (`postgresql:///db?host=...&password=...`), and any other query parameter,
stay out of `/health`, of 503 answers, of every log line, of `flask db current` and of start errors;
and the query-string form connects to a real PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, ROOT, SECRET, bearer, free_port

KEY = "key-" + "d8b5ec" * 5
SECRETS = ("userinfo-pw-3f9a", "query-pw-71c2", "ssl-pw-90ab", "opt-e4d1")
VERIFY = {"action_type": "subject_identity_verification", "to": "s@example.com",
          "body_params": {"verification_code": "424242", "verification_code_ttl_seconds": 600}}


def assert_no_secret(*texts: str) -> None:
    for found in texts:
        for secret in SECRETS:
            assert secret not in found, f"{secret} shown in: {found[:2000]}"


@pytest.fixture
def mailgun():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


def configure(url: str) -> None:
    requests.post(url + "/api/v1/email/config", json=CONFIG, headers=bearer(), timeout=10).raise_for_status()
    requests.put(url + "/api/v1/email/config/my_mailgun/secret", json={"mailgun_api_key": KEY}, headers=bearer(),
                 timeout=10).raise_for_status()


def flask(tmp_path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {"FIDESMAIL_CONFIG_DIR": str(tmp_path / "config"), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
           "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("form", ["userinfo and query", "libpq query string"])
def test_an_unreachable_database_is_named_without_any_secret_of_its_url(server, mailgun, tmp_path, form):
    port = free_port()  # nothing listens there
    url = {"userinfo and query": f"postgresql://fidesmail:{SECRETS[0]}@127.0.0.1:{port}/records"
                                 f"?password={SECRETS[1]}&sslpassword={SECRETS[2]}&options=-c%20x%3D{SECRETS[3]}",
           "libpq query string": f"postgresql:///records?host=127.0.0.1&port={port}&user=fidesmail"
                                 f"&password={SECRETS[1]}&sslpassword={SECRETS[2]}&passfile=/{SECRETS[3]}"}[form]
    srv = server(FIDESMAIL_DATABASE_URL=url, FIDESMAIL_MAILGUN_BASE_URL=mailgun.base_url)
    configure(srv.url)
    refused = requests.post(srv.url + "/api/v1/email/send", json=VERIFY, headers=bearer(auth.SEND), timeout=10)
    assert refused.status_code == 503 and f"postgresql://127.0.0.1:{port}/records" in refused.json()["detail"]
    health = requests.get(srv.url + "/health", headers=bearer(auth.READ), timeout=10)
    public = requests.get(srv.url + "/health", timeout=10)
    assert health.json()["database"]["ok"] is False and public.json()["database"] == {"ok": False}
    current = flask(tmp_path, url, "db", "current")
    assert current.returncode == 1 and f"127.0.0.1:{port}/records" in current.stderr
    srv.stop()
    assert "cannot be used" in srv.log()
    assert_no_secret(refused.text, health.text, public.text, srv.log(), current.stdout + current.stderr)
    assert mailgun.requests == []


def test_libpq_query_string_form_connects_and_is_never_shown(server, mailgun, postgres_server, tmp_path):
    database = postgres_server.create_database()
    url = (f"postgresql:///{database}?host=127.0.0.1&port={postgres_server.port}&user=postgres"
           f"&password={SECRETS[1]}&application_name=fidesmail")  # the test server trusts: any password connects
    srv = server(FIDESMAIL_DATABASE_URL=url, FIDESMAIL_MAILGUN_BASE_URL=mailgun.base_url)
    configure(srv.url)
    sent = requests.post(srv.url + "/api/v1/email/send", json=VERIFY, headers=bearer(auth.SEND), timeout=10)
    assert sent.status_code == 200 and len(mailgun.sent) == 1
    listed = requests.get(srv.url + "/api/v1/email/messages", headers=bearer(auth.READ), timeout=10).json()
    assert [item["message_id"] for item in listed["items"]] == [sent.json()["message_id"]]
    current = flask(tmp_path, url, "db", "current")
    upgraded = flask(tmp_path, url, "db", "upgrade")
    assert current.returncode == 0 and upgraded.returncode == 0
    assert f"postgresql://127.0.0.1:{postgres_server.port}/{database}" in upgraded.stderr
    srv.stop()
    assert f"postgresql://127.0.0.1:{postgres_server.port}/{database}" in srv.log()  # "migrated from empty to ..."
    assert_no_secret(sent.text, srv.log(), current.stdout + current.stderr, upgraded.stdout + upgraded.stderr)
    postgres_server.drop_database(database)


@pytest.mark.parametrize("url", [
    f"postgresql://u:{SECRETS[0]}@db:notaport/records?password={SECRETS[1]}",
    f"mysql://u:{SECRETS[0]}@db/records?password={SECRETS[1]}",
    f"host=db password={SECRETS[1]}",
])
@pytest.mark.slow
def test_a_database_url_that_cannot_be_used_stops_the_start_in_one_line_without_its_secrets(tmp_path, url):
    (tmp_path / "config" / "email").mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "FIDESMAIL_CONFIG_DIR": str(tmp_path / "config"),
           "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"), "FIDESMAIL_DATABASE_URL": url,
           "FIDESMAIL_PORT": str(free_port())}
    done = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "FIDESMAIL_DATABASE_URL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert_no_secret(done.stdout + done.stderr)
