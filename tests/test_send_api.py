"""Sending through the API to a real test Mailgun on 127.0.0.1: fields, regions, faults, idempotency."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import requests

from fidesmail.content import body_params
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, bearer, free_port

KEY = "key-" + "7f3a9c" * 5
EU_KEY = "key-eu-" + "41b2" * 6
SEND = "/api/v1/email/send"
URL = "/api/v1/email/config"
VERIFY = {"action_type": "subject_identity_verification", "to": "subject@example.com",
          "body_params": {"verification_code": "123456", "verification_code_ttl_seconds": 600}}


@pytest.fixture
def us():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def eu():
    with MailgunFake(domains={"mg.example.eu": EU_KEY}) as fake:
        yield fake


@pytest.fixture
def sender_app(make_app, us, eu):
    """An app pointed at the two test Mailguns, with one config whose key is set."""
    def make(**overrides):
        settings = {"MAILGUN_BASE_URL": us.base_url, "MAILGUN_EU_BASE_URL": eu.base_url,
                    "MAILGUN_TIMEOUT": 1.0, "MAILGUN_RETRIES": 2, "MAILGUN_BACKOFF": 0.01}
        return make_app(**{**settings, **overrides})
    return make


@pytest.fixture
def client(sender_app):
    client = sender_app().test_client()
    add_config(client, CONFIG, KEY)
    return client


def add_config(client, config, key=None):
    assert client.post(URL, json=config, headers=bearer()).status_code == 200
    if key is not None:
        response = client.put(f"{URL}/{config['key']}/secret", json={"mailgun_api_key": key}, headers=bearer())
        assert response.status_code == 200


def send(client, body=VERIFY, **headers):
    return client.post(SEND, json=body, headers={**bearer(auth.SEND), **headers})


def test_a_verification_code_reaches_mailgun_as_the_contract_says(client, us):
    response = send(client, {**VERIFY, "config_key": "my_mailgun"})
    assert response.status_code == 200
    [seen] = us.requests
    message_id = response.json["message_id"]
    assert response.json == {"id": seen.message_id, "message": "Queued. Thank you.", "config_key": "my_mailgun",
                             "message_id": message_id, "status": "accepted", "provider": "mailgun"}
    assert response.headers["Location"] == f"/api/v1/email/messages/{message_id}"
    assert seen.path == "/v3/mg.example.com/messages" and seen.auth_user == "api"
    assert [name for name, _ in seen.form] == ["from", "to", "subject", "html", "text", "o:tag",
                                               "v:fidesmail-message-id"]
    assert seen.field("v:fidesmail-message-id") == message_id
    assert seen.field("from") == "mailgun@mg.example.com"
    assert seen.field("to") == "subject@example.com"
    assert seen.field("o:tag") == "subject_identity_verification"
    assert "123456" in seen.field("text") and "10 minutes" in seen.field("text")
    assert "123456" in seen.field("html")


def test_config_key_may_be_left_out_only_with_exactly_one_config(client, us):
    assert send(client).status_code == 200
    add_config(client, {**CONFIG, "key": "second", "name": "Second"}, KEY)
    response = send(client)
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body", "config_key"]
    assert len(us.requests) == 1


def test_a_send_with_no_config_at_all_is_404_in_fidesops_words(sender_app, us, eu):
    response = send(sender_app().test_client())
    assert response.status_code == 404
    assert response.json == {"detail": "No email config found."}
    assert us.attempts == 0 and eu.attempts == 0


def test_eu_domain_goes_to_the_eu_base_url_with_the_configured_sender(client, us, eu):
    config = {"key": "eu", "name": "EU", "service_type": "mailgun",
              "details": {"domain": "mg.example.eu", "is_eu_domain": True,
                          "sender": "Privacy Team <privacy@mg.example.eu>"}}
    add_config(client, config, EU_KEY)
    assert send(client, {**VERIFY, "config_key": "eu"}).status_code == 200
    assert us.requests == []
    [seen] = eu.requests
    assert seen.field("from") == "Privacy Team <privacy@mg.example.eu>"


@pytest.mark.parametrize("action_type", body_params.ACTION_TYPES)
@pytest.mark.slow
def test_every_action_type_renders_and_sends(client, us, action_type):
    body = {"config_key": "my_mailgun", "action_type": action_type, "to": "subject@example.com",
            "body_params": body_params.SAMPLE_PARAMS[action_type]}
    response = send(client, body)
    assert response.status_code == 200, response.json
    [seen] = us.requests
    assert seen.field("subject") and seen.field("html") and seen.field("text")
    assert seen.field("o:tag") == action_type
    preview = client.post("/api/v1/email/preview", json={k: v for k, v in body.items() if k != "to"},
                          headers=bearer(auth.READ)).json
    assert (preview["subject"], preview["html"], preview["text"]) == \
        (seen.field("subject"), seen.field("html"), seen.field("text"))
    assert len(us.requests) == 1  # the preview sent nothing


def test_user_values_are_escaped_in_html(client, us):
    body = {"action_type": "privacy_request_review_deny", "to": "subject@example.com",
            "body_params": {"rejection_reason": "<script>alert(1)</script> & co"}}
    assert send(client, body).status_code == 200
    [seen] = us.requests
    assert "<script>" not in seen.field("html") and "&lt;script&gt;" in seen.field("html")
    assert "<script>alert(1)</script> & co" in seen.field("text")


def test_a_template_override_in_the_config_tree_is_used_sandboxed(client, us, tree):
    (tree / "templates").mkdir()
    (tree / "templates" / "test_message.subject.txt").write_text("Custom {{ 'subject' | upper }}")
    client.post("/api/v1/reload", headers=bearer())
    send(client, {"action_type": "test_message", "to": "subject@example.com"})
    assert us.requests[0].field("subject") == "Custom SUBJECT"
    (tree / "templates" / "test_message.subject.txt").write_text("{{ ''.__class__.__mro__ }}")
    client.post("/api/v1/reload", headers=bearer())
    # Contract 7: an override that fails with the sample parameters is reported and not used.
    response = send(client, {"action_type": "test_message", "to": "subject@example.com"})
    assert response.status_code == 200 and us.requests[1].field("subject") == "fidesmail test message"
    problems = client.get("/health", headers=bearer(auth.READ)).json["last_reload"]["problems"]
    assert [p["path"] for p in problems] == ["templates/test_message.subject.txt"]
    assert "unsafe" in problems[0]["message"]


BAD_RECIPIENTS = ["a@example.com, b@example.com", "a@example.com;b@example.com", "a@example.com\r\nBcc: x@evil.com",
                  "a@example.com\x00", '"x@evil.com" <a@example.com>', "Name <a@example.com>", "", "not-an-address",
                  "a@example.com\nSubject: hi"]


@pytest.mark.parametrize("to", BAD_RECIPIENTS)
def test_anything_but_one_plain_address_is_422_and_nothing_is_sent(client, us, to):
    response = send(client, {**VERIFY, "to": to})
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body", "to"]
    assert us.requests == []


@pytest.mark.parametrize("body,loc", [
    ({**VERIFY, "to": None}, ["body", "to"]),
    ({k: v for k, v in VERIFY.items() if k != "to"}, ["body", "to"]),
    ({**VERIFY, "action_type": "spam"}, ["body", "action_type"]),
    ({**VERIFY, "body_params": {"verification_code": "12ab56"}}, ["body", "body_params", "verification_code"]),
    ({**VERIFY, "body_params": {"verification_code": "1", "verification_code_ttl_seconds": True}},
     ["body", "body_params", "verification_code_ttl_seconds"]),
    ({**VERIFY, "body_params": {"verification_code": "1", "verification_code_ttl_seconds": -5}},
     ["body", "body_params", "verification_code_ttl_seconds"]),
    ({**VERIFY, "action_type": "privacy_request_complete_access", "body_params": {"download_links": ["ftp://x"]}},
     ["body", "body_params", "download_links", 0]),
    ({**VERIFY, "extra": 1}, ["body", "extra"]),
])
def test_bad_send_bodies_are_422(client, us, body, loc):
    response = send(client, body)
    assert response.status_code == 422
    assert loc in [p["loc"] for p in response.json["detail"]]
    assert us.requests == []


def test_unknown_config_is_404_and_missing_secret_is_409(client, us):
    assert send(client, {**VERIFY, "config_key": "nope"}).json == {"detail": "No email config found with key nope"}
    add_config(client, {**CONFIG, "key": "nokey", "name": "No key"})
    response = send(client, {**VERIFY, "config_key": "nokey"})
    assert (response.status_code, response.json) == (409, {"detail": "Email secrets not found for config with "
                                                                      "key: nokey"})
    assert us.requests == []


def test_missing_private_key_is_a_clear_503(client, tmp_path, us):
    (tmp_path / "instance" / "seal.key").unlink()
    response = send(client)
    assert response.status_code == 503
    assert str(tmp_path / "instance" / "seal.key") in response.json["detail"]
    assert us.requests == []


@pytest.mark.parametrize("fault,attempts,status,words", [
    (lambda f: f.fail_next(429, retry_after=0), 2, 200, None),
    (lambda f: f.fail_next(420, retry_after=0, message="Domain is not allowed to send: try again after 0 seconds"),
     2, 200, None),
    (lambda f: f.fail_next(500), 2, 200, None),
    (lambda f: f.close_next(), 1, 504, "may still be sent"),  # contract 6: dropped after sending, not retried
    (lambda f: f.fail_next(500, times=3), 3, 502, "500"),
    (lambda f: f.fail_next(429, retry_after=0, times=3), 3, 502, "429"),
    (lambda f: f.fail_next(400, message="'to' parameter is not a valid address"), 1, 502, "not a valid address"),
    (lambda f: f.slow_next(2), 1, 504, None),
    (lambda f: f.non_json_200_next(), 1, 502, None),
])
@pytest.mark.slow
def test_mailgun_faults_give_the_contracts_answer_after_the_right_attempts(client, us, fault, attempts, status,
                                                                           words):
    fault(us)
    response = send(client)
    assert response.status_code == status, response.json
    assert us.attempts == attempts
    if words:
        assert words in response.json["detail"]


def test_wrong_key_is_502_with_mailguns_message_and_not_retried(sender_app, us):
    client = sender_app().test_client()
    add_config(client, CONFIG, "key-of-another-domain")
    response = send(client)
    assert response.status_code == 502
    assert "401" in response.json["detail"]
    assert us.attempts == 1
    assert "key-of-another-domain" not in response.get_data(as_text=True)


def test_domain_not_found_hints_at_the_region(client, us):
    add_config(client, {**CONFIG, "key": "wrong", "name": "Wrong",
                        "details": {"domain": "mg.unknown.com"}}, KEY)
    response = send(client, {**VERIFY, "config_key": "wrong"})
    assert response.status_code == 502
    assert "Domain not found" in response.json["detail"] and "is_eu_domain" in response.json["detail"]


def test_unreachable_mailgun_is_502_and_names_the_host(sender_app):
    port = free_port()
    client = sender_app(MAILGUN_BASE_URL=f"http://127.0.0.1:{port}").test_client()
    add_config(client, CONFIG, KEY)
    response = send(client)
    assert response.status_code == 502
    assert f"127.0.0.1:{port}" in response.json["detail"]


def test_the_test_endpoint_sends_in_testmode(client, us):
    url = f"{URL}/my_mailgun/test"
    response = client.post(url, json={"to": "ops@example.com"}, headers=bearer(auth.SEND))
    assert response.json == {"test_status": "succeeded", "failure_reason": None}
    assert us.requests[0].field("o:testmode") == "yes"
    assert us.requests[0].field("o:tag") == "test_message"
    us.fail_next(401)
    failed = client.post(url, json={"to": "ops@example.com"}, headers=bearer(auth.SEND)).json
    assert failed["test_status"] == "failed" and "401" in failed["failure_reason"]
    assert client.post(f"{URL}/nope/test", json={"to": "ops@example.com"},
                       headers=bearer(auth.SEND)).status_code == 404
    assert client.post(url, json={"to": "a@b.com, c@d.com"}, headers=bearer(auth.SEND)).status_code == 422


def test_idempotency_key_sends_once_and_replays_the_answer(client, us, sender_app):
    first = send(client, **{"Idempotency-Key": "order-1"})
    second = send(client, **{"Idempotency-Key": "order-1"})
    assert first.status_code == second.status_code == 200
    assert first.json == second.json
    assert len(us.requests) == 1
    other = send(client, {**VERIFY, "to": "other@example.com"}, **{"Idempotency-Key": "order-1"})
    assert other.status_code == 422 and other.json["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    # A restart changes nothing: the ledger is on disk under the instance dir.
    restarted = sender_app().test_client()
    assert send(restarted, **{"Idempotency-Key": "order-1"}).json == first.json
    assert len(us.requests) == 1
    assert send(client, **{"Idempotency-Key": "order-2"}).status_code == 200
    assert len(us.requests) == 2


def test_an_answer_given_before_mailgun_is_not_kept(client, us):
    response = send(client, {**VERIFY, "config_key": "nope"}, **{"Idempotency-Key": "k"})
    assert response.status_code == 404
    add_config(client, {**CONFIG, "key": "nope", "name": "Nope"}, KEY)
    assert send(client, {**VERIFY, "config_key": "nope"}, **{"Idempotency-Key": "k"}).status_code == 200


def test_a_timeout_is_kept_so_a_retry_does_not_send_twice(client, us):
    us.slow_next(2)
    assert send(client, **{"Idempotency-Key": "slow"}).status_code == 504
    assert send(client, **{"Idempotency-Key": "slow"}).status_code == 504
    assert us.attempts == 1


def test_concurrent_calls_with_one_key_send_once_across_workers(server, us, eu):
    srv = server(FIDESMAIL_MAILGUN_BASE_URL=us.base_url, FIDESMAIL_MAILGUN_EU_BASE_URL=eu.base_url,
                 WEB_CONCURRENCY="2")
    requests.post(srv.url + URL, json=CONFIG, headers=bearer()).raise_for_status()
    requests.put(f"{srv.url}{URL}/my_mailgun/secret", json={"mailgun_api_key": KEY},
                 headers=bearer()).raise_for_status()
    us.slow_next(0.3)  # the first send is in flight while the others arrive
    answers = []

    def call():
        answers.append(requests.post(srv.url + SEND, json=VERIFY, timeout=10,
                                     headers={**bearer(auth.SEND), "Idempotency-Key": "same"}))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a.status_code for a in answers} == {200}, [a.json() for a in answers]
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    assert len(us.requests) == 1
    assert KEY not in srv.log()


def test_the_key_never_appears_in_answers_or_logs(client, us, caplog):
    caplog.set_level(logging.DEBUG)
    bodies = []
    for fault in (lambda: None, lambda: us.fail_next(401), lambda: us.fail_next(500, times=3),
                  lambda: us.non_json_200_next(), lambda: us.slow_next(2)):
        fault()
        bodies.append(send(client).get_data(as_text=True))
    bodies.append(client.get(f"{URL}/my_mailgun", headers=bearer()).get_data(as_text=True))
    for text in bodies + [caplog.text]:
        assert KEY not in text


def test_threads_of_a_new_worker_share_one_mailer(sender_app):
    """The first sends of a fresh worker arrive together: each must get the one pooled transport (HTTP session)."""
    from fidesmail.runtime import services

    app = sender_app()
    barrier = threading.Barrier(16)
    mailers, errors = [], []

    def first_send():
        with app.app_context():
            barrier.wait()
            try:
                mailers.append(services.current().transport)
            except Exception as exc:  # the race showed as a KeyError, i.e. a 500
                errors.append(exc)

    threads = [threading.Thread(target=first_send) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({id(m) for m in mailers}) == 1
