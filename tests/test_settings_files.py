"""Settings an operator of containers needs (contract section 2): every secret also read from `<variable>_FILE`
(Docker and Kubernetes secrets), the log's level and format, and the stop in the wrong folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from fidesmail.runtime import settings
from fidesmail.web import auth
from tests.support import ROOT, Server, bearer, token_for

SECRET_SETTINGS = settings.secret_settings()


def test_the_secrets_are_declared_in_the_table():
    """A setting that holds a secret says so in runtime/settings.py's table and gets its _FILE form from that."""
    assert {"FIDESMAIL_SECRET_KEY", "FIDESMAIL_DATABASE_URL"} <= set(SECRET_SETTINGS)
    assert "FIDESMAIL_PORT" not in SECRET_SETTINGS


@pytest.mark.parametrize("content", ["k-new,k-old\n", "k-new,k-old", "k-new,k-old\r\n"])
def test_a_secret_from_its_file_less_one_trailing_newline(tmp_path, content):
    (tmp_path / "secret").write_text(content, newline="")
    config = settings.from_environment({"FIDESMAIL_SECRET_KEY_FILE": str(tmp_path / "secret")})
    assert config["SECRET_KEYS"] == ["k-new", "k-old"]


def test_the_database_url_from_its_file(tmp_path):
    (tmp_path / "url").write_text("postgresql://fidesmail:pw@db.internal/fidesmail\n")
    config = settings.from_environment({"FIDESMAIL_DATABASE_URL_FILE": str(tmp_path / "url")})
    assert config["DATABASE_URL"] == "postgresql://fidesmail:pw@db.internal/fidesmail"


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_both_set_is_an_error_naming_both(tmp_path, name):
    (tmp_path / "value").write_text("x\n")
    with pytest.raises(settings.SettingsError) as raised:
        settings.from_environment({name: "y", name + "_FILE": str(tmp_path / "value")})
    assert name in str(raised.value) and name + "_FILE" in str(raised.value)


def test_a_file_that_cannot_be_read_is_named_without_content(tmp_path):
    with pytest.raises(settings.SettingsError) as raised:
        settings.from_environment({"FIDESMAIL_SECRET_KEY_FILE": str(tmp_path / "missing")})
    assert "FIDESMAIL_SECRET_KEY_FILE" in str(raised.value) and str(tmp_path / "missing") in str(raised.value)


def test_a_setting_that_is_no_secret_has_no_file_form(tmp_path):
    (tmp_path / "port").write_text("9999\n")
    assert settings.from_environment({"FIDESMAIL_PORT_FILE": str(tmp_path / "port")})["PORT"] == 8080


@pytest.mark.parametrize("env, words", [
    ({"FIDESMAIL_LOG_LEVEL": "loud"}, ["FIDESMAIL_LOG_LEVEL", "DEBUG, INFO, WARNING"]),
    ({"FIDESMAIL_LOG_FORMAT": "xml"}, ["FIDESMAIL_LOG_FORMAT", "json, text"]),
])
def test_log_settings_are_checked(env, words):
    with pytest.raises(settings.SettingsError) as raised:
        settings.from_environment(env)
    assert all(word in str(raised.value) for word in words)


def test_log_level_is_case_insensitive():
    assert settings.from_environment({"FIDESMAIL_LOG_LEVEL": "warning"})["LOG_LEVEL"] == "WARNING"


def _served(tmp_path, **env) -> Server:
    (tmp_path / "config").mkdir(exist_ok=True)
    srv = Server(env, tmp_path)
    srv.env = {k: v for k, v in srv.env.items() if not k.startswith("FIDESMAIL_") or k in env
               or k in ("FIDESMAIL_PORT", "FIDESMAIL_HOST")}
    return srv.start()


def test_the_service_verifies_tokens_with_the_key_from_its_file(tmp_path):
    (tmp_path / "secret").write_text("from-a-file\n")
    srv = _served(tmp_path, FIDESMAIL_SECRET_KEY_FILE=str(tmp_path / "secret"))
    try:
        good = {"Authorization": f"Bearer {token_for(auth.READ, keys=('from-a-file',))}"}
        assert requests.get(srv.url + "/api/v1/email/config", headers=good, timeout=5).status_code == 200
        assert requests.get(srv.url + "/api/v1/email/config", headers=bearer(), timeout=5).status_code == 401
        assert not (tmp_path / "instance" / "secret_key").exists()  # no key generated: the file's is used
    finally:
        assert srv.stop() == 0
    assert "from-a-file" not in srv.log()


@pytest.mark.slow
def test_text_log_format_and_warning_level(tmp_path):
    srv = _served(tmp_path, FIDESMAIL_LOG_FORMAT="text", FIDESMAIL_SECRET_KEY="k")
    try:
        requests.get(srv.url + "/api/v1/email/config", headers={"Authorization": "Bearer k"}, timeout=5)
    finally:
        assert srv.stop() == 0
    lines = [line for line in srv.log().splitlines() if line.strip()]
    assert lines and not any(line.startswith("{") for line in lines)
    assert any(" INFO    gunicorn.error: Starting gunicorn" in line for line in lines)
    assert any("fidesmail.request: GET /api/v1/email/config 401" in line and "status=401" in line for line in lines)

    quiet = tmp_path / "quiet"
    quiet.mkdir()
    srv = _served(quiet, FIDESMAIL_LOG_LEVEL="WARNING", FIDESMAIL_SECRET_KEY="k")
    try:
        requests.get(srv.url + "/health", timeout=5)
        requests.get(srv.url + "/api/v1/email/config", timeout=5)  # a 401: a WARNING line
    finally:
        assert srv.stop() == 0
    records = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    assert records and all(record["level"] in ("WARNING", "ERROR", "CRITICAL") for record in records)
    assert any("auth_failure" in record for record in records)
    assert not any(record["logger"] == "fidesmail.request" for record in records)  # request lines are INFO


@pytest.mark.slow
def test_the_wrong_folder_stops_in_one_line_and_makes_nothing(tmp_path):
    """Contract section 2: no ./config here means the wrong folder: never an empty service with new keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIDESMAIL_", "FLASK_"))}
    started = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=30)
    assert started.returncode == 1 and "Traceback" not in started.stderr
    [line] = started.stderr.splitlines()
    assert line.startswith("fidesmail: cannot start: FIDESMAIL_CONFIG_DIR") and str(tmp_path / "config") in line
    minted = subprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "app.py"), "token", "create",
                             "--scope", "email:send"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=30)
    assert minted.returncode == 1 and minted.stdout == "" and "FIDESMAIL_CONFIG_DIR" in minted.stderr
    assert list(tmp_path.iterdir()) == []  # no ./instance, no ./config, no key


@pytest.mark.slow
def test_a_401_says_why_in_the_log_never_the_token(tmp_path):
    srv = _served(tmp_path, FIDESMAIL_SECRET_KEY="the-real-key")
    other = token_for(auth.READ, keys=("another-folder's-key",))
    try:
        for headers in ({"Authorization": f"Bearer {other}"}, {}, {"Authorization": "Basic abc"}):
            assert requests.get(srv.url + "/api/v1/email/config", headers=headers, timeout=5).status_code == 401
    finally:
        assert srv.stop() == 0
    reasons = [json.loads(line) for line in srv.log().splitlines() if '"auth_failure"' in line]
    said = " | ".join(record["msg"] for record in reasons)
    assert "not signed by any of this service's signing keys" in said
    assert "no Authorization header" in said and "is not 'Bearer <token>'" in said
    assert all(record["level"] == "WARNING" for record in reasons)
    assert other not in srv.log()
