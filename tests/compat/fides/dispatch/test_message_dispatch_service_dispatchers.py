"""fides 2.78.2's tests/ops/service/messaging/message_dispatch_service_test.py, over HTTP: TestTwilioEmailDispatcher
and TestTwilioSmsDispatcher's email test (test_message_dispatch_service.py has the rest and says how they are
replayed). Not ported: TestTwilioSmsDispatcher's SMS tests (twilio_text is out, contract section 16).
"""

from __future__ import annotations

from ..conftest import (
    SUBJECT_IDENTITY_VERIFICATION,
    create_config,
    dispatch_message,
    sent,
)

VERIFICATION = {"verification_code": "2348", "verification_code_ttl_seconds": 600}


class TestTwilioEmailDispatcher:
    def test_dispatch_no_secrets(self, api_client, sendgrid):
        """Port of TestTwilioEmailDispatcher.test_dispatch_no_secrets."""
        create_config(api_client, {"name": "twilio email", "key": "my_twilio_email_config",
                                   "service_type": "twilio_email",
                                   "details": {"twilio_email_from": "test@example.com"}})
        response = dispatch_message(api_client, "test_message")
        # DIFFERENCE: fidesmail's words for a config without its key (fides': "No Twilio email config details or
        # secrets"), 409 as for every provider.
        assert response.status_code == 409
        assert response.json() == {"detail": "Email secrets not found for config with key: my_twilio_email_config"}
        assert sendgrid.attempts == 0

    # DIFFERENCE (the next four): fides looks for a SendGrid dynamic template named "fides" and sends through it
    # when there is one. fidesmail renders every message itself (templates are files of the reviewed tree), so it
    # never asks SendGrid for its templates and never sends a template_id: one request, the message, whole.

    def sends_whole(self, api_client, sendgrid) -> None:
        assert dispatch_message(api_client, "privacy_request_complete_deletion").status_code == 200
        [message] = sendgrid.accepted
        assert sendgrid.attempts == 1  # no template lookup
        assert message.subject and (message.html or message.text)
        assert "template_id" not in message.extra

    def test_template_found(self, api_client, messaging_config_twilio_email, sendgrid):
        """Port of TestTwilioEmailDispatcher.test_template_found."""
        self.sends_whole(api_client, sendgrid)

    def test_no_template_found(self, api_client, messaging_config_twilio_email, sendgrid):
        """Port of TestTwilioEmailDispatcher.test_no_template_found."""
        self.sends_whole(api_client, sendgrid)

    def test_templated_mail(self, api_client, messaging_config_twilio_email, sendgrid):
        """Port of TestTwilioEmailDispatcher.test_templated_mail."""
        self.sends_whole(api_client, sendgrid)

    def test_non_templated_mail(self, api_client, messaging_config_twilio_email, sendgrid):
        """Port of TestTwilioEmailDispatcher.test_non_templated_mail."""
        self.sends_whole(api_client, sendgrid)


class TestTwilioSmsDispatcher:
    def test_subject_override_for_email(self, api_client, messaging_config, mailgun):
        """Port of TestTwilioSmsDispatcher.test_subject_override_for_email."""
        response = dispatch_message(api_client, SUBJECT_IDENTITY_VERIFICATION, body_params=VERIFICATION,
                                    subject_override="Testing subject override")
        assert response.status_code == 200
        message = sent(mailgun)
        assert message["subject"] == "Testing subject override"
        assert "2348" in message["text"] and "10 minutes" in message["text"]
