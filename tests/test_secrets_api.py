"""PUT/POST .../secret: sealed on disk, `secrets_set` in the config, never shown, never leaked."""

from __future__ import annotations

import secrets

import pytest
import yaml

from fidesmail.sealing.vault import Vault
from fidesmail.tree.loader import load_tree
from fidesmail.web import auth
from tests.support import CONFIG, bearer, parse_sealed

URL = "/api/v1/email/config"


@pytest.fixture
def configured(client, headers):
    assert client.post(URL, json=CONFIG, headers=headers).status_code == 200
    return client


@pytest.mark.parametrize("method", ["put", "post"])
def test_setting_a_key_seals_it_and_sets_secrets_set(configured, headers, tree, tmp_path, method):
    value = "key-" + secrets.token_hex(16)
    response = getattr(configured, method)(f"{URL}/my_mailgun/secret", json={"mailgun_api_key": value},
                                           headers=headers)
    assert response.status_code == 200
    assert response.json == {"msg": "Secrets updated for EmailConfig with key: my_mailgun.",
                             "test_status": None, "failure_reason": None}
    assert configured.get(f"{URL}/my_mailgun", headers=headers).json["secrets_set"] is True
    text = (tree / "secrets.sealed.yaml").read_text()
    assert value not in text
    document = yaml.safe_load(text)
    assert document["version"] == 1 and list(document["secrets"]["my_mailgun"]) == ["mailgun_api_key"]
    secrets_file, problems = parse_sealed(text.encode())
    assert problems == []
    assert Vault(tmp_path / "instance" / "seal.key").open(secrets_file, "my_mailgun", "mailgun_api_key") == value


def test_unknown_config_is_404(client, headers):
    response = client.put(f"{URL}/nope/secret", json={"mailgun_api_key": "k"}, headers=headers)
    assert response.status_code == 404
    assert response.json == {"detail": "No email config found with key nope"}


@pytest.mark.parametrize("body", [{}, {"mailgun_api_key": ""}, {"mailgun_api_key": "   "}, {"mailgun_api_key": 5},
                                  {"mailgun_api_key": None}, {"mailgun_api_key": "k", "other": "x"},
                                  {"mailgun_api_key": "k\r\nX: y"}, {"api_key": "k"}])
def test_bad_secret_bodies_are_422(configured, headers, tree, body):
    response = configured.put(f"{URL}/my_mailgun/secret", json=body, headers=headers)
    assert response.status_code == 422
    assert all(p["loc"][0] == "body" for p in response.json["detail"])
    assert not (tree / "secrets.sealed.yaml").exists()


def test_secret_endpoint_needs_create_or_update_scope(configured):
    url = f"{URL}/my_mailgun/secret"
    assert configured.put(url, json={"mailgun_api_key": "k"}).status_code == 401
    others = [s for s in auth.SCOPES if s != auth.CREATE_OR_UPDATE]
    assert configured.put(url, json={"mailgun_api_key": "k"}, headers=bearer(*others)).status_code == 403


def test_read_only_mode_refuses_secrets(make_app, tree, headers):
    (tree / "email" / "my_mailgun.yaml").write_text(yaml.safe_dump(CONFIG))
    client = make_app(READ_ONLY=True).test_client()
    response = client.put(f"{URL}/my_mailgun/secret", json={"mailgun_api_key": "k"}, headers=headers)
    assert response.status_code == 403
    assert not (tree / "secrets.sealed.yaml").exists()


def test_delete_removes_the_configs_secrets_only(configured, headers, tree):
    configured.post(URL, json={**CONFIG, "key": "other", "name": "Other"}, headers=headers)
    for key in ("my_mailgun", "other"):
        configured.put(f"{URL}/{key}/secret", json={"mailgun_api_key": f"k-{key}"}, headers=headers)
    assert configured.delete(f"{URL}/my_mailgun", headers=headers).status_code == 204
    document = yaml.safe_load((tree / "secrets.sealed.yaml").read_text())
    assert list(document["secrets"]) == ["other"]
    # A new config with the old key starts without a secret.
    configured.post(URL, json=CONFIG, headers=headers)
    assert configured.get(f"{URL}/my_mailgun", headers=headers).json["secrets_set"] is False


def test_a_tampered_value_affects_only_its_config(configured, headers, tree):
    configured.post(URL, json={**CONFIG, "key": "other", "name": "Other"}, headers=headers)
    for key in ("my_mailgun", "other"):
        configured.put(f"{URL}/{key}/secret", json={"mailgun_api_key": f"k-{key}"}, headers=headers)
    path = tree / "secrets.sealed.yaml"
    document = yaml.safe_load(path.read_text())
    document["secrets"]["my_mailgun"]["mailgun_api_key"] = "not an envelope"
    path.write_text(yaml.safe_dump(document))
    configured.post("/api/v1/reload", headers=headers)
    health = configured.get("/health", headers=headers).json
    [problem] = health["last_reload"]["problems"]
    assert problem["path"] == "secrets.sealed.yaml" and "my_mailgun/mailgun_api_key" in problem["message"]
    assert configured.get(f"{URL}/other", headers=headers).json["secrets_set"] is True
    # Contract 7: the bad entry's config keeps its last good value while serving; a fresh start has none.
    assert configured.get(f"{URL}/my_mailgun", headers=headers).json["secrets_set"] is True
    assert load_tree(tree).configs["my_mailgun"].secret_fields == frozenset()


def test_missing_and_unknown_secret_fields_are_named_in_fidesops_words(configured, headers):
    response = configured.put(f"{URL}/my_mailgun/secret", json={"bad_key": "12345"}, headers=headers)
    assert response.status_code == 422
    assert response.json["detail"] == [
        {"loc": ["body", "mailgun_api_key"], "msg": "field required", "type": "missing"},
        {"loc": ["body", "bad_key"], "msg": "extra fields not permitted", "type": "extra_forbidden"},
    ]
