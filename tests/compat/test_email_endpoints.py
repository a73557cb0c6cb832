"""fidesops 1.8.2's tests/ops/api/v1/endpoints/test_email_endpoints.py, replayed over HTTP.

One test per original test, with its name. Where the contract differs from fidesops on purpose, the
test asserts the contract and says why in a comment headed CONTRACT.
"""

from __future__ import annotations

import pytest

from .conftest import (
    EMAIL_BY_KEY,
    EMAIL_CONFIG,
    EMAIL_CREATE_OR_UPDATE,
    EMAIL_DELETE,
    EMAIL_READ,
    EMAIL_SECRETS,
    V1_URL_PREFIX,
    basic_auth,
)

PAGE_SIZE = 50  # fastapi_pagination's Params().size, fidesmail's default size too


class TestPostEmailConfig:
    @pytest.fixture(scope="function")
    def url(self) -> str:
        return V1_URL_PREFIX + EMAIL_CONFIG

    @pytest.fixture(scope="function")
    def payload(self):
        return {"name": "mailgun", "service_type": "mailgun", "details": {"domain": "my.mailgun.domain"}}

    def test_post_email_config_not_authenticated(self, api_client, payload, url):
        """Port of TestPostEmailConfig.test_post_email_config_not_authenticated."""
        response = api_client.post(url, headers={}, json=payload)
        assert 401 == response.status_code

    def test_post_email_config_incorrect_scope(self, api_client, payload, url, generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_incorrect_scope."""
        auth_header = generate_auth_header([EMAIL_READ])
        response = api_client.post(url, headers=auth_header, json=payload)
        assert 403 == response.status_code

    def test_post_email_config_with_invalid_mailgun_details(self, api_client, url, payload, generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_with_invalid_mailgun_details."""
        payload["details"] = {"invalid": "invalid"}

        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.post(url, headers=auth_header, json=payload)
        assert 422 == response.status_code
        assert response.json()["detail"][0]["msg"] == "field required"
        assert response.json()["detail"][1]["msg"] == "extra fields not permitted"

    def test_post_email_config_with_not_supported_service_type(self, api_client, url, payload,
                                                                generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_with_not_supported_service_type."""
        payload["service_type"] = "twilio"

        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.post(url, headers=auth_header, json=payload)
        assert 422 == response.status_code
        # fidesops permitted 'mailgun' alone; fidesmail permits fides' email providers too, mailgun first
        # (contract section 13): the words are fidesops', the list is longer on purpose.
        assert response.json()["detail"][0]["msg"] == ("value is not a valid enumeration member; permitted: "
                                                       "'mailgun', 'twilio_email', 'mailchimp_transactional', "
                                                       "'aws_ses'")

    def test_post_email_config_with_no_key(self, api_client, payload, url, generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_with_no_key."""
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.post(url, headers=auth_header, json=payload)

        assert 200 == response.status_code
        assert response.json()["key"] == "mailgun"
        # fidesops read the row back from its database; here the config is served under that key.
        stored = api_client.get(V1_URL_PREFIX + EMAIL_BY_KEY.format(config_key="mailgun"),
                                headers=generate_auth_header([EMAIL_READ]))
        assert stored.status_code == 200 and stored.json()["name"] == "mailgun"

    def test_post_email_config_with_invalid_key(self, api_client, payload, url, generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_with_invalid_key."""
        payload["key"] = "*invalid-key"
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.post(url, headers=auth_header, json=payload)
        assert 422 == response.status_code
        assert (response.json()["detail"][0]["msg"]
                == "FidesKey must only contain alphanumeric characters, '.', '_' or '-'.")

    def test_post_email_config_with_key(self, api_client, payload, url, generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_with_key."""
        payload["key"] = "my_email_config"
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])

        response = api_client.post(url, headers=auth_header, json=payload)
        assert 200 == response.status_code

        # CONTRACT (section 5): every config answer also carries "secrets_set"; fidesops' answer
        # did not have it. Everything fidesops answered is answered unchanged.
        expected_response = {
            "key": "my_email_config",
            "name": "mailgun",
            "service_type": "mailgun",
            "details": {"api_version": "v3", "domain": "my.mailgun.domain", "is_eu_domain": False},
            "secrets_set": False,
        }
        assert expected_response == response.json()
        stored = api_client.get(V1_URL_PREFIX + EMAIL_BY_KEY.format(config_key="my_email_config"),
                                headers=generate_auth_header([EMAIL_READ]))
        assert stored.json() == expected_response

    def test_post_email_config_missing_detail(self, api_client, url, generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_missing_detail."""
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.post(
            url,
            headers=auth_header,
            json={
                "key": "my_email_config",
                "name": "mailgun",
                "service_type": "mailgun",
                "details": {
                    # "domain": "my.mailgun.domain"
                },
            },
        )
        assert response.status_code == 422
        errors = response.json()["detail"]
        assert "details" in errors[0]["loc"]
        assert errors[0]["msg"] == "field required"

    def test_post_email_config_already_exists(self, api_client, url, email_config, generate_auth_header):
        """Port of TestPostEmailConfig.test_post_email_config_already_exists."""
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.post(
            url,
            headers=auth_header,
            json={
                "key": "my_email_config",
                "name": "mailgun",
                "service_type": "mailgun",
                "details": {"domain": "my.mailgun.domain"},
            },
        )
        # CONTRACT (section 5): several configs may exist, so fidesops' 400 "Only one email config is
        # supported at a time. ..." is gone; a key (or name) that is taken is 409, and the stored
        # config is not overwritten.
        assert response.status_code == 409
        assert response.json() == {"detail": "An email config with key my_email_config already exists."}
        stored = api_client.get(V1_URL_PREFIX + EMAIL_BY_KEY.format(config_key="my_email_config"),
                                headers=generate_auth_header([EMAIL_READ]))
        assert stored.json()["name"] == email_config["name"]
        assert stored.json()["details"]["domain"] == "some.domain"


class TestPatchEmailConfig:
    @pytest.fixture(scope="function")
    def url(self, email_config) -> str:
        return (V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key=email_config["key"])

    @pytest.fixture(scope="function")
    def payload(self):
        return {
            "key": "my_email_config",
            "name": "mailgun new name",
            "service_type": "mailgun",
            "details": {"domain": "my.mailgun.domain"},
        }

    def test_patch_email_config_not_authenticated(self, api_client, payload, url):
        """Port of TestPatchEmailConfig.test_patch_email_config_not_authenticated."""
        response = api_client.patch(url, headers={}, json=payload)
        assert 401 == response.status_code

    def test_patch_email_config_incorrect_scope(self, api_client, payload, url, generate_auth_header):
        """Port of TestPatchEmailConfig.test_patch_email_config_incorrect_scope."""
        auth_header = generate_auth_header([EMAIL_READ])
        response = api_client.patch(url, headers=auth_header, json=payload)
        assert 403 == response.status_code

    def test_patch_email_config_with_key_not_found(self, api_client, payload, email_config, generate_auth_header):
        """Port of TestPatchEmailConfig.test_patch_email_config_with_key_not_found."""
        url = (V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key="nonexistent_key")
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])

        # The body's key (my_email_config) differs from the path's: the missing config is 404 all
        # the same, before the body is judged (contract section 5).
        response = api_client.patch(url, headers=auth_header, json=payload)
        assert response.status_code == 404
        assert response.json() == {"detail": "No email config found with key nonexistent_key"}

    def test_patch_email_config_with_key(self, api_client, payload, url, generate_auth_header):
        """Port of TestPatchEmailConfig.test_patch_email_config_with_key."""
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])

        response = api_client.patch(url, headers=auth_header, json=payload)
        assert 200 == response.status_code

        # CONTRACT (section 5): the answer also carries "secrets_set" (the fixture set a key, and a
        # PATCH keeps it). PATCH merges `details` into the stored ones where fidesops replaced
        # them; with this payload (the fixture's api_version and is_eu_domain) both give this body.
        expected_response = {
            "key": "my_email_config",
            "name": "mailgun new name",
            "service_type": "mailgun",
            "details": {"api_version": "v3", "domain": "my.mailgun.domain", "is_eu_domain": False},
            "secrets_set": True,
        }
        assert expected_response == response.json()
        stored = api_client.get(url, headers=generate_auth_header([EMAIL_READ]))
        assert stored.json() == expected_response


class TestPutEmailConfigSecretsMailgun:
    @pytest.fixture(scope="function")
    def url(self, email_config) -> str:
        return (V1_URL_PREFIX + EMAIL_SECRETS).format(config_key=email_config["key"])

    @pytest.fixture(scope="function")
    def payload(self):
        return {"mailgun_api_key": "1345234524"}

    def test_put_config_secrets_unauthenticated(self, api_client, payload, url):
        """Port of TestPutEmailConfigSecretsMailgun.test_put_config_secrets_unauthenticated."""
        response = api_client.put(url, headers={}, json=payload)
        assert 401 == response.status_code

    def test_put_config_secrets_wrong_scope(self, api_client, payload, url, generate_auth_header):
        """Port of TestPutEmailConfigSecretsMailgun.test_put_config_secrets_wrong_scope."""
        auth_header = generate_auth_header([EMAIL_READ])
        response = api_client.put(url, headers=auth_header, json=payload)
        assert 403 == response.status_code

    def test_put_config_secret_invalid_config(self, api_client, payload, generate_auth_header):
        """Port of TestPutEmailConfigSecretsMailgun.test_put_config_secret_invalid_config."""
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        url = (V1_URL_PREFIX + EMAIL_SECRETS).format(config_key="invalid_key")
        response = api_client.put(url, headers=auth_header, json=payload)
        assert 404 == response.status_code

    def test_update_with_invalid_secrets_key(self, api_client, generate_auth_header, url):
        """Port of TestPutEmailConfigSecretsMailgun.test_update_with_invalid_secrets_key."""
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.put(url, headers=auth_header, json={"bad_key": "12345"})

        # CONTRACT (sections 4 and 5): unknown or missing secret fields are a 422 in the one
        # validation shape, not fidesops' 400 with a list of strings
        # ["field required ('mailgun_api_key',)", "extra fields not permitted ('bad_key',)"];
        # the words and the order are fidesops'.
        assert response.status_code == 422
        assert [(p["loc"], p["msg"]) for p in response.json()["detail"]] == [
            (["body", "mailgun_api_key"], "field required"),
            (["body", "bad_key"], "extra fields not permitted"),
        ]

    def test_put_config_secrets(self, api_client, payload, url, generate_auth_header, mailgun):
        """Port of TestPutEmailConfigSecretsMailgun.test_put_config_secrets."""
        auth_header = generate_auth_header([EMAIL_CREATE_OR_UPDATE])
        response = api_client.put(url, headers=auth_header, json=payload)
        assert 200 == response.status_code

        assert response.json() == {
            "msg": "Secrets updated for EmailConfig with key: my_email_config.",
            "test_status": None,
            "failure_reason": None,
        }
        # fidesops read the stored secret from its database. fidesmail never shows a secret, so
        # the stored key is checked where it is used: Mailgun is called with it.
        mailgun.domains["some.domain"] = payload["mailgun_api_key"]
        tested = api_client.post(url.replace("/secret", "/test"), headers=generate_auth_header(["email:send"]),
                                 json={"to": "test@email.com"})
        assert tested.json() == {"test_status": "succeeded", "failure_reason": None}
        [seen] = mailgun.requests
        assert basic_auth(seen) == ("api", "1345234524")
        shown = api_client.get(url.replace("/secret", ""), headers=generate_auth_header([EMAIL_READ]))
        assert shown.json()["secrets_set"] is True and "1345234524" not in shown.text


class TestGetEmailConfigs:
    @pytest.fixture(scope="function")
    def url(self) -> str:
        return V1_URL_PREFIX + EMAIL_CONFIG

    def test_get_configs_not_authenticated(self, api_client, url) -> None:
        """Port of TestGetEmailConfigs.test_get_configs_not_authenticated."""
        response = api_client.get(url)
        assert 401 == response.status_code

    def test_get_configs_wrong_scope(self, api_client, url, generate_auth_header) -> None:
        """Port of TestGetEmailConfigs.test_get_configs_wrong_scope."""
        auth_header = generate_auth_header([EMAIL_DELETE])
        response = api_client.get(url, headers=auth_header)
        assert 403 == response.status_code

    def test_get_configs(self, api_client, url, generate_auth_header, email_config):
        """Port of TestGetEmailConfigs.test_get_configs."""
        auth_header = generate_auth_header([EMAIL_READ])
        response = api_client.get(url, headers=auth_header)
        assert 200 == response.status_code

        # CONTRACT (section 5): items also carry "secrets_set".
        expected_response = {
            "items": [
                {
                    "key": "my_email_config",
                    "name": email_config["name"],
                    "service_type": "mailgun",
                    "details": {"api_version": "v3", "domain": "some.domain", "is_eu_domain": False},
                    "secrets_set": True,
                }
            ],
            "page": 1,
            "size": PAGE_SIZE,
            "total": 1,
        }
        assert expected_response == response.json()


class TestGetEmailConfig:
    @pytest.fixture(scope="function")
    def url(self, email_config) -> str:
        return (V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key=email_config["key"])

    def test_get_config_not_authenticated(self, url, api_client):
        """Port of TestGetEmailConfig.test_get_config_not_authenticated."""
        response = api_client.get(url)
        assert 401 == response.status_code

    def test_get_config_wrong_scope(self, url, api_client, generate_auth_header):
        """Port of TestGetEmailConfig.test_get_config_wrong_scope."""
        auth_header = generate_auth_header([EMAIL_DELETE])
        response = api_client.get(url, headers=auth_header)
        assert 403 == response.status_code

    def test_get_config_invalid(self, api_client, generate_auth_header, email_config):
        """Port of TestGetEmailConfig.test_get_config_invalid."""
        auth_header = generate_auth_header([EMAIL_READ])
        response = api_client.get((V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key="invalid"), headers=auth_header)
        assert 404 == response.status_code

    def test_get_config(self, url, api_client, generate_auth_header, email_config):
        """Port of TestGetEmailConfig.test_get_config."""
        auth_header = generate_auth_header([EMAIL_READ])
        response = api_client.get(url, headers=auth_header)
        assert response.status_code == 200

        # CONTRACT (section 5): the answer also carries "secrets_set".
        assert response.json() == {
            "key": "my_email_config",
            "name": email_config["name"],
            "service_type": "mailgun",
            "details": {"api_version": "v3", "domain": "some.domain", "is_eu_domain": False},
            "secrets_set": True,
        }


class TestDeleteConfig:
    @pytest.fixture(scope="function")
    def url(self, email_config) -> str:
        return (V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key=email_config["key"])

    def test_delete_config_not_authenticated(self, url, api_client):
        """Port of TestDeleteConfig.test_delete_config_not_authenticated."""
        response = api_client.delete(url)
        assert 401 == response.status_code

    def test_delete_config_wrong_scope(self, url, api_client, generate_auth_header):
        """Port of TestDeleteConfig.test_delete_config_wrong_scope."""
        auth_header = generate_auth_header([EMAIL_READ])
        response = api_client.delete(url, headers=auth_header)
        assert 403 == response.status_code

    def test_delete_config_invalid(self, api_client, generate_auth_header):
        """Port of TestDeleteConfig.test_delete_config_invalid."""
        auth_header = generate_auth_header([EMAIL_DELETE])
        response = api_client.delete((V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key="invalid"),
                                     headers=auth_header)
        assert 404 == response.status_code

    def test_delete_config(self, url, api_client, generate_auth_header, fidesmail):
        """Port of TestDeleteConfig.test_delete_config."""
        # fidesops created this second config in its database directly, past its one-config rule;
        # with several configs allowed (contract section 5) the API creates it.
        created = api_client.post(V1_URL_PREFIX + EMAIL_CONFIG,
                                  headers=generate_auth_header([EMAIL_CREATE_OR_UPDATE]),
                                  json={"key": "my_different_email_config", "name": "mailgun",
                                        "service_type": "mailgun", "details": {"domain": "my.mailgun.domain"}})
        assert created.status_code == 200
        url = (V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key="my_different_email_config")
        auth_header = generate_auth_header([EMAIL_DELETE])
        response = api_client.delete(url, headers=auth_header)
        assert response.status_code == 204

        # fidesops looked the row up in its database; here the config is gone from the API and its
        # file from the config tree, and the other config is untouched.
        assert api_client.get(url, headers=generate_auth_header([EMAIL_READ])).status_code == 404
        assert not (fidesmail.config_dir / "email" / "my_different_email_config.yaml").exists()
        listed = api_client.get(V1_URL_PREFIX + EMAIL_CONFIG, headers=generate_auth_header([EMAIL_READ])).json()
        assert [item["key"] for item in listed["items"]] == ["my_email_config"]
