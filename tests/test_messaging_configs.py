"""fides' messaging config API over fidesmail's config tree (contract section 16): one tree, two views; the
defaults a reviewer can read; each config's last test in the database. fides' own tests are in
tests/compat/fides."""

from __future__ import annotations

import pytest
import yaml

from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, bearer, eventually, free_port, parse_sealed

FIDES = bearer(auth.MESSAGING_READ, auth.MESSAGING_CREATE_OR_UPDATE, auth.MESSAGING_DELETE)
EMAIL = bearer(auth.READ, auth.CREATE_OR_UPDATE, auth.DELETE)
CONFIGS = "/api/v1/messaging/config"
KEY = "key-messaging"
MAILGUN = {"service_type": "mailgun", "details": {"domain": "mg.example.com"}}


@pytest.fixture
def mailgun():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def client(make_app, mailgun):
    return make_app(MAILGUN_BASE_URL=mailgun.base_url, MAILGUN_RETRIES=0).test_client()


def sealed_fields(tree, key: str) -> set:
    return set(parse_sealed((tree / "secrets.sealed.yaml").read_bytes())[0].fields_of(key))


def defaults_file(tree) -> dict:
    return yaml.safe_load((tree / "messaging.yaml").read_text())


def test_a_config_made_through_one_view_is_served_by_the_other(client, tree):
    made = client.post(CONFIGS, json={**MAILGUN, "secrets": {"mailgun_api_key": KEY}}, headers=FIDES)
    assert made.status_code == 200, made.json
    assert made.json == {"service_type": "mailgun", "details": {"is_eu_domain": False, "api_version": "v3",
                                                                "domain": "mg.example.com"},
                         "name": "Mailgun", "key": "mailgun", "last_test_timestamp": None, "last_test_succeeded": None}
    # fidesops' view serves it, its key sealed; the file is the one /email/config writes.
    served = client.get("/api/v1/email/config/mailgun", headers=EMAIL).json
    assert served["secrets_set"] is True and served["details"]["domain"] == "mg.example.com"
    assert yaml.safe_load((tree / "email" / "mailgun.yaml").read_text())["service_type"] == "mailgun"
    assert sealed_fields(tree, "mailgun") == {"mailgun_api_key"}
    # ... and the other way: fidesops' config, in fides' shape.
    assert client.post("/api/v1/email/config", json=CONFIG, headers=EMAIL).status_code == 200
    shown = client.get(f"{CONFIGS}/my_mailgun", headers=FIDES).json
    assert shown["name"] == "Mailgun EU" and shown["details"]["domain"] == "mg.example.com"
    assert [item["key"] for item in client.get(CONFIGS, headers=FIDES).json["items"]] == ["mailgun", "my_mailgun"]


def test_defaults_are_a_reviewable_file_the_api_keeps(client, tree):
    assert not (tree / "messaging.yaml").exists()
    assert client.get("/api/v1/messaging/default/active", headers=FIDES).status_code == 404
    client.post(CONFIGS, json={**MAILGUN, "key": "first", "name": "First"}, headers=FIDES)
    client.post(CONFIGS, json={**MAILGUN, "key": "second", "name": "Second"}, headers=FIDES)
    client.post(CONFIGS, json={"key": "ses", "name": "SES", "service_type": "aws_ses",
                               "details": {"aws_region": "eu-west-1", "domain": "example.com"}}, headers=FIDES)
    text = (tree / "messaging.yaml").read_text()
    assert text.startswith("# fides' messaging defaults")
    assert yaml.safe_load(text) == {"active": "mailgun",
                                    "created": {"mailgun": ["first", "second"], "aws_ses": ["ses"]}}
    assert client.get("/api/v1/messaging/default/mailgun", headers=FIDES).json["key"] == "first"
    assert client.get("/api/v1/messaging/default/active", headers=FIDES).json["key"] == "first"

    # PUT /messaging/default changes the type's default config and names the type active (contract section 16).
    put = client.put("/api/v1/messaging/default", json={"service_type": "aws_ses", "details": {
        "aws_region": "eu-west-1", "email_from": "privacy@example.com"}}, headers=FIDES)
    assert put.status_code == 200 and put.json["key"] == "ses" and put.json["name"] == "SES"
    assert put.json["details"] == {"email_from": "privacy@example.com", "domain": None, "aws_region": "eu-west-1"}
    assert client.get("/api/v1/messaging/default/active", headers=FIDES).json["key"] == "ses"

    # A reviewer reorders the file in a pull request: the type's default is its first listed config.
    (tree / "messaging.yaml").write_text("active: mailgun\ncreated:\n  mailgun: [second, first]\n")
    assert eventually(lambda: client.get("/api/v1/messaging/default/active", headers=FIDES).json["key"] == "second")
    # Deleting a default (through either view) makes the next one the default.
    assert client.delete("/api/v1/email/config/second", headers=EMAIL).status_code == 204
    assert defaults_file(tree)["created"] == {"mailgun": ["first"]}
    assert client.get("/api/v1/messaging/default/mailgun", headers=FIDES).json["key"] == "first"


def test_a_config_made_by_hand_is_its_types_default_after_the_listed_ones(client, tree):
    (tree / "email" / "zeta.yaml").write_text(yaml.safe_dump({**CONFIG, "key": "zeta", "name": "Zeta"}))
    (tree / "email" / "alpha.yaml").write_text(yaml.safe_dump({**CONFIG, "key": "alpha", "name": "Alpha"}))
    assert eventually(lambda: client.get(CONFIGS, headers=FIDES).json["total"] == 2)
    assert client.get("/api/v1/messaging/default/mailgun", headers=FIDES).json["key"] == "alpha"  # by key
    # No config was posted: nothing is the active default until one is (fides: the setting is unset).
    assert client.get("/api/v1/messaging/default/active", headers=FIDES).status_code == 404
    client.post(CONFIGS, json={**MAILGUN, "key": "posted", "name": "Posted"}, headers=FIDES)
    assert client.get("/api/v1/messaging/default/active", headers=FIDES).json["key"] == "posted"


def test_a_bad_defaults_file_is_reported_and_the_last_good_defaults_serve(client, tree):
    client.post(CONFIGS, json=MAILGUN, headers=FIDES)
    # At once, as a merge lands it: the watcher (every 0.2 s) must not see the file half-written (empty is
    # a valid defaults file: no defaults), which would make "no defaults" the last good ones.
    (tree / "messaging.yaml.new").write_text("active: twilio_text\n")
    (tree / "messaging.yaml.new").replace(tree / "messaging.yaml")
    problems = client.post("/api/v1/reload", headers=bearer()).json["last_reload"]["problems"]
    assert any(p["path"] == "messaging.yaml" and "active" in p["message"] for p in problems)
    assert client.get("/api/v1/messaging/default/active", headers=FIDES).json["key"] == "mailgun"


def test_a_second_config_of_a_type_is_a_second_config_and_the_same_key_updates(client, tree):
    first = client.post(CONFIGS, json=MAILGUN, headers=FIDES)
    again = client.post(CONFIGS, json={**MAILGUN, "details": {"domain": "new.example.com"}}, headers=FIDES)
    assert first.json["key"] == again.json["key"] == "mailgun"  # fides: create or update by key
    assert again.json["details"]["domain"] == "new.example.com"
    second = client.post(CONFIGS, json={**MAILGUN, "key": "other"}, headers=FIDES)
    # fides answers 500 (one config per type); the contract: a second config. Its default name is free.
    assert second.status_code == 200 and second.json["name"] == "Mailgun (other)"
    assert client.get(CONFIGS, headers=FIDES).json["total"] == 2
    taken = client.post(CONFIGS, json={**MAILGUN, "key": "third", "name": "Mailgun"}, headers=FIDES)
    assert taken.status_code == 409 and "third" in taken.json["detail"]


def test_a_change_of_provider_keeps_no_secret_of_the_old_one(client, tree):
    client.post(CONFIGS, json={**MAILGUN, "key": "x", "secrets": {"mailgun_api_key": KEY}}, headers=FIDES)
    changed = client.patch(f"{CONFIGS}/x", json={"service_type": "twilio_email", "details": {
        "twilio_email_from": "privacy@example.com"}, "secrets": {"twilio_api_key": "SG.key"}}, headers=FIDES)
    assert changed.status_code == 200, changed.json
    assert sealed_fields(tree, "x") == {"twilio_api_key"}
    assert defaults_file(tree)["created"] == {"twilio_email": ["x"]}


def test_bad_secrets_in_a_post_change_nothing(client, tree):
    answer = client.post(CONFIGS, json={**MAILGUN, "secrets": {"twilio_api_key": "x"}}, headers=FIDES)
    assert answer.status_code == 422
    assert answer.json["detail"] == [
        {"type": "missing", "loc": ["body", "secrets", "mailgun_api_key"], "msg": "Field required"},
        {"type": "extra_forbidden", "loc": ["body", "secrets", "twilio_api_key"], "msg": "Extra inputs are not "
                                                                                         "permitted"}]
    assert sorted(p.name for p in tree.rglob("*") if p.is_file()) == ["seal.pub"]


def test_secrets_puts_need_every_required_field_and_keep_the_webhook_key(client, tree):
    client.post(CONFIGS, json=MAILGUN, headers=FIDES)
    url = f"{CONFIGS}/mailgun/secret"
    both = {"mailgun_api_key": KEY, "mailgun_webhook_signing_key": "whsec"}
    assert client.put(url, json=both, headers=FIDES).status_code == 200
    alone = client.put(url, json={"mailgun_webhook_signing_key": "whsec-2"}, headers=FIDES)
    # /email/config/{key}/secret takes a signing key alone; fides takes no body without the API key.
    assert alone.status_code == 422
    assert alone.json["detail"] == [{"type": "missing", "loc": ["mailgun_api_key"], "msg": "Field required"}]
    assert client.put(url, json={"mailgun_api_key": "key-2"}, headers=FIDES).status_code == 200
    assert sealed_fields(tree, "mailgun") == set(both)


def test_fides_admin_ui_bodies_are_taken(client):
    """fides' admin UI sends `is_eu_domain: "false"` (a string: pydantic reads it as false)."""
    made = client.post(CONFIGS, json={"service_type": "mailgun", "details": {"is_eu_domain": "false",
                                                                             "domain": "mg.example.com"},
                                      "secrets": {"mailgun_api_key": KEY}}, headers=FIDES)
    assert made.status_code == 200 and made.json["details"]["is_eu_domain"] is False
    edited = client.patch(f"{CONFIGS}/mailgun", json={"key": "mailgun", "name": "Mailgun", "service_type": "mailgun",
                                                      "details": {**made.json["details"], "is_eu_domain": "true"}},
                          headers=FIDES)
    assert edited.status_code == 200 and edited.json["details"]["is_eu_domain"] is True


def test_a_test_sends_fides_test_message_and_its_outcome_is_kept(client, mailgun, tree):
    client.post(CONFIGS, json={**MAILGUN, "secrets": {"mailgun_api_key": KEY}}, headers=FIDES)
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    sent = client.post("/api/v1/messaging/test/MAILGUN", json={"to_identity": {"email": "admin@example.com"}},
                       headers=bearer(auth.MESSAGING_CREATE_OR_UPDATE))
    assert sent.status_code == 200 and sent.json == {"details": "Test message successfully sent"}
    [seen] = mailgun.requests
    assert seen.field("to") == "admin@example.com" and seen.field("o:tag") == "test_message"
    assert seen.field("o:testmode") is None  # fides sends its test message for real
    tested = client.get(f"{CONFIGS}/mailgun", headers=FIDES).json
    assert tested["last_test_succeeded"] is True and tested["last_test_timestamp"].endswith("Z")
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before  # state, not configuration

    mailgun.fail_next(401, message="Invalid private key")
    failed = client.post("/api/v1/messaging/test/mailgun", json={"to_identity": {"email": "admin@example.com"}},
                         headers=FIDES)
    assert failed.status_code == 400
    assert failed.json["detail"].startswith("There was an error sending the test message: Mailgun answered 401")
    assert client.get(f"{CONFIGS}/mailgun", headers=FIDES).json["last_test_succeeded"] is False
    # A config deleted and made again under its key starts untested.
    client.delete(f"{CONFIGS}/mailgun", headers=FIDES)
    assert client.post(CONFIGS, json=MAILGUN, headers=FIDES).json["last_test_timestamp"] is None


def test_no_email_identity_is_fides_words_and_a_failed_test(client):
    client.post(CONFIGS, json={**MAILGUN, "secrets": {"mailgun_api_key": KEY}}, headers=FIDES)
    answer = client.post("/api/v1/messaging/test/mailgun", json={"to_identity": {"phone_number": "+19198675309"}},
                         headers=FIDES)
    assert answer.status_code == 400
    assert answer.json == {"detail": "There was an error sending the test message: No email identity supplied."}
    assert client.get(f"{CONFIGS}/mailgun", headers=FIDES).json["last_test_succeeded"] is False


def test_configs_answer_while_the_database_cannot_be_used(make_app):
    nowhere = f"postgresql://fidesmail:pw@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    client = make_app(DATABASE_URL=nowhere).test_client()
    made = client.post(CONFIGS, json=MAILGUN, headers=FIDES)
    assert made.status_code == 200 and made.json["last_test_timestamp"] is None
    assert client.get(CONFIGS, headers=FIDES).json["total"] == 1
    assert client.delete(f"{CONFIGS}/mailgun", headers=FIDES).status_code == 204


def test_read_only_mode_refuses_every_messaging_write(make_app, tree):
    client = make_app(READ_ONLY=True).test_client()
    before = sorted(p.name for p in tree.rglob("*"))
    for method, url, body in (("post", CONFIGS, MAILGUN), ("patch", f"{CONFIGS}/x", MAILGUN),
                              ("delete", f"{CONFIGS}/x", None), ("put", f"{CONFIGS}/x/secret", {}),
                              ("put", "/api/v1/messaging/default", MAILGUN),
                              ("put", "/api/v1/messaging/default/mailgun/secret", {})):
        answer = getattr(client, method)(url, json=body, headers=FIDES)
        assert answer.status_code == 403 and "FIDESMAIL_READ_ONLY" in answer.json["detail"], (method, url)
    assert sorted(p.name for p in tree.rglob("*")) == before
