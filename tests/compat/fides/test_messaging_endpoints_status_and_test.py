"""fides 2.78.2's tests/ops/api/v1/endpoints/test_messaging_endpoints.py, replayed over HTTP: TestGetMessagingStatus
and TestTestMessage, the two parts whose endpoints the contract leaves out (section 16).

One test per original test, with its name. DIFFERENCE (all of TestGetMessagingStatus): `GET
/messaging/default/status` is out; its path reads as `GET /messaging/default/{service_type}` with the type
`status`, so it is refused as fides refuses any unknown type (422, fides' words): no answer that could be
mistaken for fides' status. DIFFERENCE (all of TestTestMessage): fides' tests post to the deprecated `POST
/messaging/config/test`, which is out; each is replayed on `POST /messaging/test/{service_type}`, the
endpoint that replaces it, and the test Mailgun shows what was sent (fides mocks `dispatch_message`).
"""

from __future__ import annotations

import pytest

from .conftest import (
    MESSAGING_CREATE_OR_UPDATE,
    MESSAGING_DELETE,
    MESSAGING_READ,
    MESSAGING_TEST,
    V1_URL_PREFIX,
    set_defaults_file,
)

STATUS_REFUSED = {"detail": [{"type": "enum", "loc": ["path", "service_type"],
                              "msg": "Input should be 'mailgun', 'twilio_email', 'mailchimp_transactional' or "
                                     "'aws_ses'"}]}


class TestGetMessagingStatus:
    @pytest.fixture
    def url(self) -> str:
        return V1_URL_PREFIX + "/messaging/default/status"

    def status_is_out(self, api_client, url, generate_auth_header):
        response = api_client.get(url, headers=generate_auth_header([MESSAGING_READ]))
        assert response.status_code == 422
        assert response.json() == STATUS_REFUSED

    def test_get_messaging_status_not_authenticated(self, url, api_client):
        """Port of TestGetMessagingStatus.test_get_messaging_status_not_authenticated."""
        assert 401 == api_client.get(url).status_code

    def test_get_messaging_status_wrong_scope(self, url, api_client, generate_auth_header):
        """Port of TestGetMessagingStatus.test_get_messaging_status_wrong_scope."""
        assert 403 == api_client.get(url, headers=generate_auth_header([MESSAGING_DELETE])).status_code

    def test_get_messaging_status_none_set(self, url, api_client, generate_auth_header):
        """Port of TestGetMessagingStatus.test_get_messaging_status_none_set."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_app_setting_not_set(self, url, api_client, generate_auth_header, messaging_config,
                                                      fidesmail):
        """Port of TestGetMessagingStatus.test_get_messaging_status_app_setting_not_set."""
        set_defaults_file(api_client, fidesmail, "created:\n  mailgun: [my_mailgun_messaging_config]\n")
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_app_setting_wrong_value(self, url, api_client, generate_auth_header,
                                                          messaging_config):
        """Port of TestGetMessagingStatus.test_get_messaging_status_app_setting_wrong_value."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_app_setting_but_not_configured(self, url, api_client, generate_auth_header,
                                                                 fidesmail):
        """Port of TestGetMessagingStatus.test_get_messaging_status_app_setting_but_not_configured."""
        set_defaults_file(api_client, fidesmail, "active: mailgun\n")
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_secrets_not_present(self, url, api_client, generate_auth_header, messaging_config):
        """Port of TestGetMessagingStatus.test_get_messaging_status_secrets_not_present."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_wrong_secrets(self, url, api_client, generate_auth_header, messaging_config):
        """Port of TestGetMessagingStatus.test_get_messaging_status_wrong_secrets."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_details_not_present(self, url, api_client, generate_auth_header,
                                                      messaging_config):
        """Port of TestGetMessagingStatus.test_get_messaging_status_details_not_present."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_details_not_present_twilio_email(self, url, api_client, generate_auth_header,
                                                                   messaging_config_twilio_email):
        """Port of TestGetMessagingStatus.test_get_messaging_status_details_not_present_twilio_email."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_details_wrong_values(self, url, api_client, generate_auth_header,
                                                       messaging_config):
        """Port of TestGetMessagingStatus.test_get_messaging_status_details_wrong_values."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status(self, url, api_client, generate_auth_header, messaging_config):
        """Port of TestGetMessagingStatus.test_get_messaging_status."""
        self.status_is_out(api_client, url, generate_auth_header)

    def test_get_messaging_status_twilio_text(self, url, api_client, generate_auth_header):
        """Port of TestGetMessagingStatus.test_get_messaging_status_twilio_text."""
        self.status_is_out(api_client, url, generate_auth_header)


class TestTestMessage:
    @pytest.fixture
    def url(self):
        return (V1_URL_PREFIX + MESSAGING_TEST).format(service_type="mailgun")

    @pytest.mark.parametrize("info", [{"phone_number": "+19198675309"}, {"email": "some@email.com"}])
    def test_test_message(self, info, generate_auth_header, url, api_client, messaging_config, mailgun):
        """Port of TestTestMessage.test_test_message."""
        response = api_client.post(url, json={"to_identity": info},
                                   headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]))
        if "email" not in info:
            # DIFFERENCE: SMS is out; a phone number alone is no email identity: fides' words, nothing sent.
            assert response.status_code == 400
            assert response.json() == {"detail": "There was an error sending the test message: No email identity "
                                                 "supplied."}
            assert mailgun.requests == []
            return
        assert response.status_code == 200
        assert response.json() == {"details": "Test message successfully sent"}
        [seen] = mailgun.requests  # fides asserts its (mocked) dispatch_message was called
        assert seen.path == "/v3/some.domain/messages"
        assert seen.field("to") == "some@email.com"
        # DIFFERENCE: the test message is fidesmail's built-in one (fides' subject: "Test message from fides"),
        # the same /email/config/{key}/test sends: it names the service that sent it.
        assert seen.field("subject") == "fidesmail test message"

    def test_test_message_unauthorized(self, url, api_client, messaging_config, mailgun):
        """Port of TestTestMessage.test_test_message_unauthorized."""
        response = api_client.post(url, json={"to_identity": {"phone_number": "+19198675309"}})
        assert response.status_code == 401
        assert mailgun.requests == []

    @pytest.mark.parametrize("info", [
        {"phone_number": "+19198675309", "email": "some@email.com"},
        {"phone_number": None, "email": None},
    ])
    def test_test_message_invalid(self, info, generate_auth_header, url, api_client, messaging_config, mailgun):
        """Port of TestTestMessage.test_test_message_invalid."""
        response = api_client.post(url, json={"to_identity": info},
                                   headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]))
        if info["email"] is not None:
            # DIFFERENCE: the deprecated endpoint wanted exactly one identity; /messaging/test/{service_type}
            # sends an email test to the email and leaves the phone number to SMS (as fides 2.78.2 does).
            assert response.status_code == 200
            assert [seen.field("to") for seen in mailgun.requests] == ["some@email.com"]
            return
        assert response.status_code == 400
        assert mailgun.requests == []

    def test_test_message_dispatch_error(self, generate_auth_header, url, api_client, messaging_config, mailgun):
        """Port of TestTestMessage.test_test_message_dispatch_error."""
        # fides mocks dispatch_message to raise; here the test Mailgun refuses the message.
        mailgun.fail_next(403, message="Forbidden")
        response = api_client.post(url, json={"to_identity": {"email": "some@email.com"}},
                                   headers=generate_auth_header([MESSAGING_CREATE_OR_UPDATE]))
        assert response.status_code == 400
        assert response.json()["detail"].startswith("There was an error sending the test message: ")
        assert mailgun.attempts == 1
        config = api_client.get(V1_URL_PREFIX + "/messaging/config/my_mailgun_messaging_config",
                                headers=generate_auth_header([MESSAGING_READ])).json()
        assert config["last_test_succeeded"] is False and config["last_test_timestamp"] is not None
