"""The email config API: fidesops' behaviour, our deliberate differences, and every bad input."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from fidesmail.web import auth
from tests.support import CONFIG, bearer, token_for

URL = "/api/v1/email/config"


def snapshot_files(tree):
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in tree.rglob("*") if p.is_file()}


def create(client, headers, body=CONFIG):
    return client.post(URL, json=body, headers=headers)


# -- fidesops compatibility ----------------------------------------------------------------

ENDPOINTS = [
    ("get", URL, auth.READ),
    ("post", URL, auth.CREATE_OR_UPDATE),
    ("get", f"{URL}/my_mailgun", auth.READ),
    ("patch", f"{URL}/my_mailgun", auth.CREATE_OR_UPDATE),
    ("delete", f"{URL}/my_mailgun", auth.DELETE),
    ("post", "/api/v1/reload", auth.CREATE_OR_UPDATE),
    ("put", f"{URL}/my_mailgun/secret", auth.CREATE_OR_UPDATE),
    ("post", f"{URL}/my_mailgun/secret", auth.CREATE_OR_UPDATE),
    ("post", f"{URL}/my_mailgun/test", auth.SEND),
    ("post", "/api/v1/email/send", auth.SEND),
    ("post", "/api/v1/email/preview", auth.READ),
    ("get", "/metrics", auth.READ),
    ("get", "/api/v1/email/messages", auth.READ),
    ("get", "/api/v1/email/messages/msg_none", auth.READ),
    ("post", "/api/v1/email/messages/msg_none/resend", auth.SEND),
    ("post", "/api/v1/email/messages/msg_none/content", auth.READ),
    ("get", "/api/v1/email/messages/evidence", auth.READ),
    # fides' messaging API, with fides' scopes
    ("get", "/api/v1/messaging/templates", auth.MESSAGING_TEMPLATE_UPDATE),
    ("put", "/api/v1/messaging/templates", auth.MESSAGING_TEMPLATE_UPDATE),
    ("get", "/api/v1/messaging/templates/default/test_message", auth.MESSAGING_TEMPLATE_UPDATE),
    ("get", "/api/v1/messaging/templates/test_message", auth.MESSAGING_TEMPLATE_UPDATE),
    ("delete", "/api/v1/messaging/templates/test_message", auth.MESSAGING_TEMPLATE_UPDATE),
    ("get", "/api/v1/messaging/config", auth.MESSAGING_READ),
    ("post", "/api/v1/messaging/config", auth.MESSAGING_CREATE_OR_UPDATE),
    ("get", "/api/v1/messaging/config/my_mailgun", auth.MESSAGING_READ),
    ("patch", "/api/v1/messaging/config/my_mailgun", auth.MESSAGING_CREATE_OR_UPDATE),
    ("delete", "/api/v1/messaging/config/my_mailgun", auth.MESSAGING_DELETE),
    ("put", "/api/v1/messaging/config/my_mailgun/secret", auth.MESSAGING_CREATE_OR_UPDATE),
    ("put", "/api/v1/messaging/default", auth.MESSAGING_CREATE_OR_UPDATE),
    ("get", "/api/v1/messaging/default/active", auth.MESSAGING_READ),
    ("get", "/api/v1/messaging/default/mailgun", auth.MESSAGING_READ),
    ("put", "/api/v1/messaging/default/mailgun/secret", auth.MESSAGING_CREATE_OR_UPDATE),
    ("post", "/api/v1/messaging/test/mailgun", auth.MESSAGING_CREATE_OR_UPDATE),
]


@pytest.mark.parametrize("method,url,scope", ENDPOINTS)
@pytest.mark.slow
def test_every_endpoint_needs_a_valid_token(client, headers, method, url, scope):
    create(client, headers)
    for bad in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"},
                {"Authorization": f"Bearer {token_for(scope, keys=['another-key'])}"},
                {"Authorization": f"Bearer {token_for(scope)}x"}):
        response = getattr(client, method)(url, headers=bad, json={})
        assert response.status_code == 401, (bad, response.json)
        assert response.json == {"detail": "Authentication Failure"}


@pytest.mark.parametrize("method,url,scope", ENDPOINTS)
@pytest.mark.slow
def test_every_endpoint_needs_its_scope(client, headers, method, url, scope):
    create(client, headers)
    also = {"/metrics": auth.METRICS}  # contract section 3: metrics:read reads /metrics too
    others = [s for s in auth.SCOPES if s not in (scope, also.get(url))]
    response = getattr(client, method)(url, headers=bearer(*others), json={})
    assert response.status_code == 403
    assert response.json == {"detail": "Not Authorized for this action"}


PUBLIC = ["/health", "/openapi.json", "/docs", "/livez", "/readyz", "/api/v1/email/evidence-key"]
# Each provider's signature instead of a token: test_webhooks.py, test_provider_events.py, test_ses_events.py.
SIGNED = [f"/api/v1/email/webhooks/{service_type}/my_mailgun"
          for service_type in ("mailgun", "twilio_email", "mailchimp_transactional", "aws_ses")]


@pytest.mark.parametrize("method,url,scope", ENDPOINTS + [("get", url, None) for url in PUBLIC])
@pytest.mark.slow
def test_every_endpoint_answers_with_a_trailing_slash_too(app, client, method, url, scope):
    """fidesops (FastAPI) answered /email/config/ (by a redirect) and its clients post there."""
    mapped = {r.rule.replace("<key>", "my_mailgun").replace("<config_key>", "my_mailgun")
              .replace("<message_id>", "msg_none").replace("<template_type>", "test_message")
              .replace("<template_id>", "test_message").replace("<service_type>", "mailgun")
              for r in app.url_map.iter_rules()
              if r.endpoint not in ("static", "docs_asset")}
    assert mapped <= {u for _, u, _ in ENDPOINTS} | set(PUBLIC) | set(SIGNED), "a new route: add it to ENDPOINTS"
    response = getattr(client, method)(url + "/", json={})
    assert response.status_code == (200 if scope is None else 401), response.json  # routed, not 404 or a redirect


def test_trailing_slash_keeps_method_and_body(client, headers):
    """fidesops' Postman collection: POST {{host}}/email/config/, then the same with a key."""
    created = client.post(URL + "/", json=CONFIG, headers=headers)
    assert created.status_code == 200 and created.json["key"] == "my_mailgun"
    assert client.get(URL + "/", headers=headers).json["total"] == 1
    patched = client.patch(f"{URL}/my_mailgun/", json={"name": "Renamed"}, headers=headers)
    assert patched.status_code == 200 and patched.json["name"] == "Renamed"
    secret = client.put(f"{URL}/my_mailgun/secret/", json={"mailgun_api_key": "key-1"}, headers=headers)
    assert secret.status_code == 200
    assert client.get(f"{URL}/my_mailgun/", headers=headers).json["secrets_set"] is True
    assert client.delete(f"{URL}/my_mailgun/", headers=headers).status_code == 204
    assert client.get(f"{URL}/my_mailgun", headers=headers).status_code == 404


def test_openapi_lists_each_path_once_without_a_trailing_slash(client, headers):
    paths = client.get("/openapi.json", headers=headers).json["paths"]
    assert paths and not [p for p in paths if p.endswith("/") and p != "/"]


def test_expired_token_is_401(client, monkeypatch):
    token = token_for(auth.READ, ttl=1)
    import time
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 5)
    response = client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_rotated_signing_keys_still_verify_old_tokens(make_app):
    old = token_for(auth.READ, keys=["old-key"])
    client = make_app(SECRET_KEYS=["new-key", "old-key"]).test_client()
    assert client.get(URL, headers={"Authorization": f"Bearer {old}"}).status_code == 200
    new = token_for(auth.READ, keys=["new-key", "old-key"])
    # Signed with the newest key: a service that dropped the old key still accepts it.
    dropped = make_app(SECRET_KEYS=["new-key"]).test_client()
    assert dropped.get(URL, headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert dropped.get(URL, headers={"Authorization": f"Bearer {old}"}).status_code == 401


# Minted by an earlier release with `flask token create --scope email:read --ttl 3153600000` under the
# secret below: a token in someone's deployment must keep working when the code moves around.
_EARLIER_SECRET = "a-token-secret-from-an-earlier-release"
_EARLIER_TOKEN = "eyJzY29wZXMiOlsiZW1haWw6cmVhZCJdLCJleHAiOjQ5NTAwMjA2MzB9.Hvfx79st0BwgzSD5ldhQF2lOm7E"


def test_tokens_minted_by_an_earlier_release_still_verify(make_app):
    client = make_app(SECRET_KEYS=[_EARLIER_SECRET]).test_client()
    assert client.get(URL, headers={"Authorization": f"Bearer {_EARLIER_TOKEN}"}).status_code == 200


def test_create_returns_the_config_with_defaults(client, headers):
    response = create(client, headers, {"name": "mailgun", "service_type": "MAILGUN",
                                        "details": {"domain": "mg.example.com"}})
    assert response.status_code == 200
    assert response.json == {"key": "mailgun", "name": "mailgun", "service_type": "mailgun",
                             "details": {"domain": "mg.example.com", "is_eu_domain": False, "api_version": "v3"},
                             "secrets_set": False}


def test_key_is_derived_from_an_accented_name(client, headers):
    body = {"name": "Mañana Mailgun  Config!", "service_type": "mailgun", "details": {"domain": "mg.example.com"}}
    assert create(client, headers, body).json["key"] == "manana_mailgun_config"


def test_unsupported_service_type_is_422(client, headers):
    response = create(client, headers, {**CONFIG, "service_type": "twilio"})
    assert response.status_code == 422
    assert response.json["detail"] == [{"loc": ["body", "service_type"], "type": "enum",
                                        "msg": "value is not a valid enumeration member; permitted: 'mailgun', "
                                               "'twilio_email', 'mailchimp_transactional', 'aws_ses'"}]


def test_invalid_details_name_missing_domain_and_unknown_field(client, headers):
    response = create(client, headers, {**CONFIG, "details": {"invalid": "invalid"}})
    assert response.status_code == 422
    locs = {tuple(p["loc"]) for p in response.json["detail"]}
    assert locs == {("body", "details", "domain"), ("body", "details", "invalid")}
    assert [(p["msg"], p["type"]) for p in response.json["detail"]] == [
        ("field required", "missing"), ("extra fields not permitted", "extra_forbidden")]  # fidesops' words


@pytest.mark.parametrize("key,words", [
    ("*invalid-key", "FidesKey must only contain alphanumeric characters, '.', '_' or '-'."),  # fidesops refused it
    ("a b", "FidesKey must only contain alphanumeric characters, '.', '_' or '-'."),
    ("", "FidesKey must only contain alphanumeric characters, '.', '_' or '-'."),
    ("-dash", "FidesKey must be at most 100 characters and may not start with '.' or '-'."),  # fidesops took these
    ("k" * 101, "FidesKey must be at most 100 characters and may not start with '.' or '-'."),
])
def test_invalid_key_is_422_in_fidesops_words(client, headers, key, words):
    response = create(client, headers, {**CONFIG, "key": key})
    assert response.status_code == 422
    assert response.json["detail"] == [{"loc": ["body", "key"], "msg": words, "type": "value_error"}]


def test_empty_details_is_422(client, headers):
    response = create(client, headers, {**CONFIG, "details": {}})
    assert response.status_code == 422
    assert response.json["detail"] == [{"loc": ["body", "details", "domain"],
                                        "msg": "field required", "type": "missing"}]


def test_get_unknown_is_404_with_fidesops_message(client, headers):
    response = client.get(f"{URL}/nope", headers=headers)
    assert response.status_code == 404
    assert response.json == {"detail": "No email config found with key nope"}


def test_delete_is_204_and_gone(client, headers, tree):
    create(client, headers)
    response = client.delete(f"{URL}/my_mailgun", headers=headers)
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"{URL}/my_mailgun", headers=headers).status_code == 404
    assert not (tree / "email" / "my_mailgun.yaml").exists()
    assert client.delete(f"{URL}/my_mailgun", headers=headers).status_code == 404


# -- our differences: several configs, 409 on duplicates, PATCH merges ---------------------

def test_several_configs_are_listed_by_key_with_pagination(client, headers):
    for i in (3, 1, 2, 5, 4):
        body = {**CONFIG, "key": f"cfg{i}", "name": f"Config {i}"}
        assert create(client, headers, body).status_code == 200
    page = client.get(f"{URL}?page=2&size=2", headers=headers).json
    assert [c["key"] for c in page["items"]] == ["cfg3", "cfg4"]
    assert (page["total"], page["page"], page["size"]) == (5, 2, 2)
    assert client.get(f"{URL}?page=9", headers=headers).json["items"] == []
    assert client.get(URL, headers=headers).json["size"] == 50


@pytest.mark.parametrize("query", ["size=0", "size=101", "page=0", "page=x", "size=-1"])
def test_bad_pagination_is_422_in_query(client, headers, query):
    response = client.get(f"{URL}?{query}", headers=headers)
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"][0] == "query"


def test_taken_key_or_name_is_409(client, headers, tree):
    create(client, headers)
    before = snapshot_files(tree)
    assert create(client, headers, {**CONFIG, "name": "Other"}).status_code == 409
    response = create(client, headers, {**CONFIG, "key": "other"})
    assert response.status_code == 409
    assert "name" in response.json["detail"]
    assert snapshot_files(tree) == before


def test_patch_merges_details(client, headers, tree):
    create(client, headers)
    response = client.patch(f"{URL}/my_mailgun", json={"details": {"is_eu_domain": True}}, headers=headers)
    assert response.status_code == 200
    assert response.json["details"] == {"domain": "mg.example.com", "is_eu_domain": True, "api_version": "v3"}
    assert response.json["name"] == "Mailgun EU"
    on_disk = yaml.safe_load((tree / "email" / "my_mailgun.yaml").read_text())
    assert on_disk["details"]["is_eu_domain"] is True


def test_patch_sets_and_clears_the_sender(client, headers):
    create(client, headers)
    url = f"{URL}/my_mailgun"
    sender = "Privacy Team <privacy@mg.example.com>"
    assert client.patch(url, json={"details": {"sender": sender}}, headers=headers).json["details"]["sender"] == sender
    assert "sender" not in client.patch(url, json={"details": {"sender": None}}, headers=headers).json["details"]


def test_patch_with_another_key_in_body_is_422(client, headers, tree):
    create(client, headers)
    before = snapshot_files(tree)
    response = client.patch(f"{URL}/my_mailgun", json={"key": "other"}, headers=headers)
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body", "key"]
    assert snapshot_files(tree) == before
    assert client.patch(f"{URL}/my_mailgun", json={"key": "my_mailgun"}, headers=headers).status_code == 200


def test_patch_unknown_is_404(client, headers):
    assert client.patch(f"{URL}/nope", json={"name": "x"}, headers=headers).status_code == 404


KEY_ROUTES = [("patch", URL + "/nope"), ("put", URL + "/nope/secret"), ("post", URL + "/nope/secret"),
              ("post", URL + "/nope/test")]
BODIES_NOT_JUDGED = {
    "another key": {"json": {"key": "my_mailgun", "name": "x"}},  # fidesops' test: 404, not 422
    "unknown field": {"json": {"colour": "red"}},
    "wrong types": {"json": {"name": 5, "to": ["a", "b"], "mailgun_api_key": None}},
    "malformed JSON": {"data": b"{nope", "content_type": "application/json"},
    "not JSON": {"data": b"name=x", "content_type": "application/x-www-form-urlencoded"},
    "no body": {},
}


@pytest.mark.parametrize("method,url", KEY_ROUTES)
@pytest.mark.parametrize("body", sorted(BODIES_NOT_JUDGED))
def test_a_missing_config_is_404_before_its_body_is_judged(client, headers, tree, method, url, body):
    create(client, headers)
    before = snapshot_files(tree)
    response = getattr(client, method)(url, headers=headers, **BODIES_NOT_JUDGED[body])
    assert response.status_code == 404
    assert response.json == {"detail": "No email config found with key nope"}
    assert snapshot_files(tree) == before


@pytest.mark.parametrize("method,url", KEY_ROUTES)
def test_a_missing_config_is_still_401_and_403_first(client, method, url):
    assert getattr(client, method)(url, json={}).status_code == 401
    assert getattr(client, method)(url, json={}, headers=bearer(auth.READ)).status_code == 403


def test_patch_to_a_taken_name_is_409(client, headers):
    create(client, headers)
    create(client, headers, {**CONFIG, "key": "b", "name": "B"})
    assert client.patch(f"{URL}/b", json={"name": "Mailgun EU"}, headers=headers).status_code == 409


def test_patch_that_breaks_the_config_is_422_and_changes_nothing(client, headers, tree):
    create(client, headers)
    before = snapshot_files(tree)
    for body in ({"details": {"domain": "not a domain"}}, {"name": ""}, {"details": {"bogus": 1}},
                 {"service_type": "smtp"}, {"details": {"is_eu_domain": "yes"}}, {"name": None},
                 {"details": ["domain", "mg.example.com"]}, {"details": "mg.example.com"}):
        response = client.patch(f"{URL}/my_mailgun", json=body, headers=headers)
        assert response.status_code == 422, body
    assert snapshot_files(tree) == before


# -- ETag / If-Match -----------------------------------------------------------------------

def test_etag_and_if_match(client, headers):
    etag = create(client, headers).headers["ETag"]
    url = f"{URL}/my_mailgun"
    assert client.get(url, headers=headers).headers["ETag"] == etag
    assert client.get(url, headers={**headers, "If-None-Match": etag}).status_code == 304
    changed = client.patch(url, json={"name": "New"}, headers={**headers, "If-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    stale = client.patch(url, json={"name": "Newer"}, headers={**headers, "If-Match": etag})
    assert stale.status_code == 412
    assert client.get(url, headers=headers).json["name"] == "New"
    assert client.delete(url, headers={**headers, "If-Match": etag}).status_code == 412
    assert client.delete(url, headers={**headers, "If-Match": changed.headers["ETag"]}).status_code == 204


# -- bad input: the contract's error, nothing changed on disk ------------------------------

BAD_BODIES = {
    "bad key": {**CONFIG, "key": "bad key!"},
    "dotdot key": {**CONFIG, "key": "../etc"},
    "hidden key": {**CONFIG, "key": ".hidden"},
    "long key": {**CONFIG, "key": "k" * 101},
    "slash key": {**CONFIG, "key": "a/b"},
    "newline key": {**CONFIG, "key": "abc\n"},
    "name derives empty key": {k: v for k, v in {**CONFIG, "name": "!!!"}.items() if k != "key"},
    "missing name": {k: v for k, v in CONFIG.items() if k != "name"},
    "empty name": {**CONFIG, "name": ""},
    "blank name": {**CONFIG, "name": "   "},
    "long name": {**CONFIG, "name": "n" * 201},
    "no service type": {k: v for k, v in CONFIG.items() if k != "service_type"},
    "missing details": {k: v for k, v in CONFIG.items() if k != "details"},
    "domain missing": {**CONFIG, "details": {"is_eu_domain": True}},
    "unknown detail": {**CONFIG, "details": {**CONFIG["details"], "region": "eu"}},
    "unknown top field": {**CONFIG, "colour": "red"},
    "domain not dns": {**CONFIG, "details": {"domain": "not a domain"}},
    "domain url": {**CONFIG, "details": {"domain": "https://mg.example.com/x"}},
    "domain ip": {**CONFIG, "details": {"domain": "10.0.0.1"}},
    "name int": {**CONFIG, "name": 5},
    "key int": {**CONFIG, "key": 5},
    "details list": {**CONFIG, "details": ["mg.example.com"]},
    "domain bool": {**CONFIG, "details": {"domain": False}},
    "eu string": {**CONFIG, "details": {"domain": "mg.example.com", "is_eu_domain": "true"}},
    "eu int": {**CONFIG, "details": {"domain": "mg.example.com", "is_eu_domain": 1}},
    "api version": {**CONFIG, "details": {"domain": "mg.example.com", "api_version": "v9"}},
    "sender two": {**CONFIG, "details": {"domain": "mg.example.com", "sender": "a@b.com, c@d.com"}},
    "sender crlf": {**CONFIG, "details": {"domain": "mg.example.com", "sender": "a@b.com\r\nBcc: c@d.com"}},
    "null name": {**CONFIG, "name": None},
    "body list": [CONFIG],
    "body string": "config",
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_bodies_are_422_and_change_nothing(client, headers, tree, case):
    before = snapshot_files(tree)
    response = create(client, headers, BAD_BODIES[case])
    assert response.status_code == 422, response.json
    problems = response.json["detail"]
    assert problems and all(p["loc"][0] == "body" and p["msg"] and p["type"] for p in problems)
    assert snapshot_files(tree) == before
    assert client.get(URL, headers=headers).json["total"] == 0


def test_name_deriving_no_key_points_at_name(client, headers):
    response = create(client, headers, BAD_BODIES["name derives empty key"])
    assert response.json["detail"][0]["loc"] == ["body", "name"]


def test_malformed_json_is_400(client, headers, tree):
    before = snapshot_files(tree)
    response = client.post(URL, data='{"name": ', headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json["detail"]
    assert snapshot_files(tree) == before


def test_non_json_content_type_is_422(client, headers):
    response = client.post(URL, data=json.dumps(CONFIG), headers={**headers, "Content-Type": "text/plain"})
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body"]


def test_two_mebibyte_body_is_413(client, headers, tree):
    before = snapshot_files(tree)
    body = copy.deepcopy(CONFIG)
    body["name"] = "x" * (2 * 1024 * 1024)
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 413
    assert "1 MiB" in response.json["detail"]
    assert snapshot_files(tree) == before


def test_unknown_route_and_wrong_method_are_json(client, headers):
    response = client.get("/api/v1/nope", headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "Not Found"})
    response = client.put(URL, headers=headers)
    assert response.status_code == 405
    assert response.json["detail"]
    assert "GET" in response.headers["Allow"]


def test_unexpected_failure_is_500_without_trace(app, headers, monkeypatch, caplog):
    from fidesmail.web import configs

    monkeypatch.setattr(configs.context, "current", lambda: 1 / 0)
    response = app.test_client().get(URL, headers=headers)
    assert response.status_code == 500
    assert response.json == {"detail": "Internal Server Error"}
    assert "Traceback" not in response.get_data(as_text=True)
    assert "ZeroDivisionError" in caplog.text  # the operator still learns what happened


# -- read-only mode ------------------------------------------------------------------------

def test_read_only_mode_refuses_every_write(make_app, tree, headers):
    (tree / "email" / "my_mailgun.yaml").write_text(yaml.safe_dump(CONFIG))
    client = make_app(READ_ONLY=True).test_client()
    before = snapshot_files(tree)
    for method, url, body in (("post", URL, {**CONFIG, "key": "x", "name": "X"}),
                              ("patch", f"{URL}/my_mailgun", {"name": "Y"}),
                              ("delete", f"{URL}/my_mailgun", None)):
        response = getattr(client, method)(url, json=body, headers=headers)
        assert response.status_code == 403
        assert "managed in git" in response.json["detail"]
    assert snapshot_files(tree) == before
    assert client.get(f"{URL}/my_mailgun", headers=headers).status_code == 200
    assert client.get("/health").json["read_only"] is True


# -- health and reload ---------------------------------------------------------------------

def test_health_needs_no_token_and_counts_configs(client, headers):
    create(client, headers)
    body = client.get("/health").json
    assert body["status"] == "healthy"
    assert body["configs_loaded"] == 1
    assert body["last_reload"]["ok"] is True


def test_reload_reads_the_tree_at_once(client, headers, tree):
    (tree / "email" / "hand.yaml").write_text(yaml.safe_dump({**CONFIG, "key": "hand", "name": "Hand"}))
    response = client.post("/api/v1/reload", headers=headers)
    assert response.status_code == 200
    assert response.json["configs_loaded"] == 1
    assert client.get(f"{URL}/hand", headers=headers).status_code == 200
