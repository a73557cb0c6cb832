"""fides 2.78.2's tests/ops/api/v1/endpoints/test_messaging_endpoints.py, replayed over HTTP: the secrets part
(TestPutMessagingConfigSecretsMailgun, ...TwilioEmail, ...MailchimpTransactional, ...TwilioSms, ...AWSSES).

One test per original test, with its name. fides' test reads `messaging_config.secrets` from its database;
here the sealed file of the tree is opened with the service's key (`opened_secrets`). Where fidesmail
differs on purpose, the test asserts what fidesmail does and says why in a comment headed DIFFERENCE.
"""

from __future__ import annotations

import pytest

from .conftest import (
    MESSAGING_CONFIG,
    MESSAGING_CREATE_OR_UPDATE,
    MESSAGING_READ,
    MESSAGING_SECRETS,
    V1_URL_PREFIX,
    opened_secrets,
)

SMS_OUT = [{"type": "enum", "loc": ["body", "service_type"],
            "msg": "Input should be 'mailgun', 'twilio_email', 'mailchimp_transactional' or 'aws_ses'"}]


def secrets_url(key: str) -> str:
    return (V1_URL_PREFIX + MESSAGING_SECRETS).format(config_key=key)


def updated(key: str) -> dict:
    return {"msg": f"Secrets updated for MessagingConfig with key: {key}.", "test_status": None,
            "failure_reason": None}


class TestPutMessagingConfigSecretsMailgun:
    @pytest.fixture
    def url(self, messaging_config) -> str:
        return secrets_url(messaging_config["key"])

    @pytest.fixture
    def payload(self):
        return {"mailgun_api_key": "1345234524"}

    def test_put_config_secrets_unauthenticated(self, api_client, payload, url):
        """Port of TestPutMessagingConfigSecretsMailgun.test_put_config_secrets_unauthenticated."""
        assert 401 == api_client.put(url, headers={}, json=payload).status_code

    def test_put_config_secrets_wrong_scope(self, api_client, payload, url, generate_auth_header):
        """Port of TestPutMessagingConfigSecretsMailgun.test_put_config_secrets_wrong_scope."""
        assert 403 == api_client.put(url, headers=generate_auth_header([MESSAGING_READ]), json=payload).status_code

    def test_put_config_secret_invalid_config(self, api_client, payload, generate_auth_header):
        """Port of TestPutMessagingConfigSecretsMailgun.test_put_config_secret_invalid_config."""
        response = api_client.put(secrets_url("invalid_key"), json=payload,
                                  headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]))
        assert 404 == response.status_code
        assert response.json() == {"detail": "No messaging configuration with key invalid_key."}  # fides' words

    def test_update_with_invalid_secrets_key(self, api_client, generate_auth_header, url, fidesmail):
        """Port of TestPutMessagingConfigSecretsMailgun.test_update_with_invalid_secrets_key."""
        response = api_client.put(url, headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]),
                                  json={"bad_key": "12345"})
        assert response.status_code == 422
        assert response.json()["detail"] == [
            {"type": "missing", "loc": ["mailgun_api_key"], "msg": "Field required"},
            {"type": "extra_forbidden", "loc": ["bad_key"], "msg": "Extra inputs are not permitted"},
        ]
        assert opened_secrets(fidesmail, "my_mailgun_messaging_config") == {"mailgun_api_key": "12984r70298r"}

    def test_put_config_secrets(self, api_client, payload, url, generate_auth_header, messaging_config, fidesmail):
        """Port of TestPutMessagingConfigSecretsMailgun.test_put_config_secrets."""
        response = api_client.put(url, headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]), json=payload)
        assert 200 == response.status_code
        assert response.json() == updated("my_mailgun_messaging_config")
        assert opened_secrets(fidesmail, messaging_config["key"])["mailgun_api_key"] == "1345234524"
        assert "1345234524" not in response.text


class TestPutMessagingConfigSecretTwilioEmail:
    def test_put_config_secrets(self, api_client, generate_auth_header, messaging_config_twilio_email, fidesmail):
        """Port of TestPutMessagingConfigSecretTwilioEmail.test_put_config_secrets."""
        response = api_client.put(secrets_url(messaging_config_twilio_email["key"]),
                                  headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]),
                                  json={"twilio_api_key": "23p48btcpy14b"})
        assert 200 == response.status_code
        assert response.json() == updated("my_twilio_email_config")
        assert opened_secrets(fidesmail, "my_twilio_email_config")["twilio_api_key"] == "23p48btcpy14b"


class TestPutMessagingConfigSecretMailchimpTransactional:
    def test_put_config_secrets(self, api_client, generate_auth_header, messaging_config_mailchimp_transactional,
                                fidesmail):
        """Port of TestPutMessagingConfigSecretMailchimpTransactional.test_put_config_secrets."""
        key = messaging_config_mailchimp_transactional["key"]
        response = api_client.put(secrets_url(key), headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]),
                                  json={"mailchimp_transactional_api_key": "123456789"})
        assert 200 == response.status_code
        assert response.json() == updated(key)
        assert opened_secrets(fidesmail, key)["mailchimp_transactional_api_key"] == "123456789"


class TestPutMessagingConfigSecretTwilioSms:
    """DIFFERENCE (contract section 16): SMS (twilio_text) is out. fides' fixture `messaging_config_twilio_sms`
    cannot be made: fidesmail refuses the config, so there is no config whose secrets could be put."""

    @pytest.fixture
    def messaging_config_twilio_sms(self, api_client, generate_auth_header):
        response = api_client.post(V1_URL_PREFIX + MESSAGING_CONFIG,
                                   headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]),
                                   json={"key": "my_twilio_sms_config", "name": "twilio_sms",
                                         "service_type": "twilio_text"})
        assert response.status_code == 422 and response.json()["detail"] == SMS_OUT
        return "my_twilio_sms_config"

    def put_sms_secrets(self, api_client, generate_auth_header, key, payload):
        response = api_client.put(secrets_url(key), headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]),
                                  json=payload)
        assert response.status_code == 404
        assert response.json() == {"detail": "No messaging configuration with key my_twilio_sms_config."}

    def test_put_config_secrets_with_messaging_service_sid(self, api_client, generate_auth_header,
                                                           messaging_config_twilio_sms):
        """Port of TestPutMessagingConfigSecretTwilioSms.test_put_config_secrets_with_messaging_service_sid."""
        self.put_sms_secrets(api_client, generate_auth_header, messaging_config_twilio_sms, {
            "twilio_account_sid": "234ct324", "twilio_auth_token": "3rcuinhewrf",
            "twilio_messaging_service_sid": "asdfasdf"})

    def test_put_config_secrets_with_sender_phone(self, api_client, generate_auth_header,
                                                  messaging_config_twilio_sms):
        """Port of TestPutMessagingConfigSecretTwilioSms.test_put_config_secrets_with_sender_phone."""
        self.put_sms_secrets(api_client, generate_auth_header, messaging_config_twilio_sms, {
            "twilio_account_sid": "2asdf35tv5wsdf", "twilio_auth_token": "23tc3",
            "twilio_sender_phone_number": "+12345436543"})

    def test_put_config_secrets_with_sender_phone_incorrect_format(self, api_client, generate_auth_header,
                                                                   messaging_config_twilio_sms):
        """Port of TestPutMessagingConfigSecretTwilioSms.test_put_config_secrets_with_sender_phone_incorrect_format."""
        self.put_sms_secrets(api_client, generate_auth_header, messaging_config_twilio_sms, {
            "twilio_account_sid": "2asdf35tv5wsdf", "twilio_auth_token": "23tc3",
            "twilio_sender_phone_number": "12345436543"})

    def test_put_config_secrets_with_no_sender_phone_nor_messaging_service_id(self, api_client, generate_auth_header,
                                                                            messaging_config_twilio_sms):
        """Port of TestPutMessagingConfigSecretTwilioSms
        .test_put_config_secrets_with_no_sender_phone_nor_messaging_service_id."""
        self.put_sms_secrets(api_client, generate_auth_header, messaging_config_twilio_sms, {
            "twilio_account_sid": "2asdf35tv5wsdf", "twilio_auth_token": "23tc3"})


class TestPutMessagingConfigSecretsAWSSES:
    @pytest.fixture
    def url(self, messaging_config_aws_ses) -> str:
        return secrets_url(messaging_config_aws_ses["key"])

    @pytest.fixture
    def payload(self):
        return {"auth_method": "secret_keys", "aws_access_key_id": "1234", "aws_secret_access_key": "5678"}

    def test_put_config_secrets_unauthenticated(self, api_client, payload, url):
        """Port of TestPutMessagingConfigSecretsAWSSES.test_put_config_secrets_unauthenticated."""
        assert 401 == api_client.put(url, headers={}, json=payload).status_code

    def test_put_config_secrets_wrong_scope(self, api_client, payload, url, generate_auth_header):
        """Port of TestPutMessagingConfigSecretsAWSSES.test_put_config_secrets_wrong_scope."""
        assert 403 == api_client.put(url, headers=generate_auth_header([MESSAGING_READ]), json=payload).status_code

    def test_update_with_invalid_secrets_key(self, api_client, generate_auth_header, url):
        """Port of TestPutMessagingConfigSecretsAWSSES.test_update_with_invalid_secrets_key."""
        response = api_client.put(url, headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]),
                                  json={"bad_key": "12345"})
        assert response.status_code == 422
        assert response.json()["detail"] == [{
            "loc": [], "type": "value_error",
            "msg": "Value error, MessagingServiceSecretsAWS_SES must be supplied all of: ['auth_method']."}]

    def test_update_with_missing_secret_keys(self, api_client, generate_auth_header, url):
        """Port of TestPutMessagingConfigSecretsAWSSES.test_update_with_missing_secret_keys."""
        response = api_client.put(url, headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]),
                                  json={"auth_method": "secret_keys"})
        assert response.status_code == 422
        assert response.json()["detail"] == [{
            "loc": [], "type": "value_error",
            "msg": "Value error, An Access Key ID and a Secret Access Key must be provided if using the "
                   "`secret_keys` Authentication Method"}]

    def test_put_config_secrets(self, api_client, payload, url, generate_auth_header, messaging_config_aws_ses,
                                fidesmail):
        """Port of TestPutMessagingConfigSecretsAWSSES.test_put_config_secrets."""
        response = api_client.put(url, headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]), json=payload)
        assert 200 == response.status_code
        assert response.json() == updated("my_aws_ses_config")
        opened = opened_secrets(fidesmail, "my_aws_ses_config")
        assert opened["aws_access_key_id"] == "1234"
        assert opened["aws_secret_access_key"] == "5678"
        assert opened["auth_method"] == "secret_keys"
