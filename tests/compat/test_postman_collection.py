"""The "Primary Email Config" folder of fidesops 1.8.2's Postman collection
(docs/fidesops/docs/postman/Fidesops.postman_collection.json), replayed over HTTP as Postman sends it.

Its requests use `{{host}}/email/config/` with a trailing slash, which fidesops (FastAPI) answered by
redirecting; fidesmail answers the same route directly (contract section 5).
"""

from __future__ import annotations

from .conftest import EMAIL_CREATE_OR_UPDATE, EMAIL_DELETE, EMAIL_READ, V1_URL_PREFIX

CONFIG = {"key": "my_email_config", "name": "mailgun", "service_type": "mailgun",
          "details": {"domain": "my.mailgun.domain"}}


def test_primary_email_config_folder(api_client, generate_auth_header):
    """The folder's six requests, with their methods, paths and raw JSON bodies; one token holds all scopes."""
    host = V1_URL_PREFIX
    headers = generate_auth_header([EMAIL_CREATE_OR_UPDATE, EMAIL_READ, EMAIL_DELETE])

    post = api_client.post(f"{host}/email/config/", headers=headers, json=CONFIG)  # "Post Email Config"
    assert post.status_code == 200, post.text
    assert post.json()["key"] == "my_email_config"

    patch = api_client.patch(f"{host}/email/config/my_email_config", headers=headers,
                             json={**CONFIG, "name": "mailgun renamed"})  # "Patch Email Config By Key"
    assert patch.status_code == 200 and patch.json()["name"] == "mailgun renamed"

    secret = api_client.put(f"{host}/email/config/my_email_config/secret", headers=headers,
                            json={"mailgun_api_key": "1345234524"})  # "Email Config Secrets"
    assert secret.json() == {"msg": "Secrets updated for EmailConfig with key: my_email_config.",
                             "test_status": None, "failure_reason": None}

    listed = api_client.get(f"{host}/email/config/", headers=headers)  # "Get Email Configs"
    assert listed.status_code == 200
    assert [item["key"] for item in listed.json()["items"]] == ["my_email_config"]

    one = api_client.get(f"{host}/email/config/my_email_config", headers=headers)  # "Get Email Config By Key"
    assert one.status_code == 200 and one.json()["secrets_set"] is True

    # "Delete Email Config By Key" carries a JSON list as its body; a DELETE's body is not read.
    deleted = api_client.delete(f"{host}/email/config/my_email_config", headers=headers, json=[CONFIG])
    assert deleted.status_code == 204
    assert api_client.get(f"{host}/email/config/my_email_config", headers=headers).status_code == 404
