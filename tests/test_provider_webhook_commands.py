"""`flask webhooks register` for SendGrid, Mandrill and SES configs (contract section 15): the provider's API
points its webhook at fidesmail, the key it answers is sealed, and its signed events then move real sends on.
"""

from __future__ import annotations

import pytest

from tests.provider_cases import MANDRILL, MANDRILL_KEY, SENDGRID, SENDGRID_KEY, SES, URL, configure
from tests.standins.mandrill import MandrillFake
from tests.standins.sendgrid import SendGridFake
from tests.support import bearer, record
from tests.test_provider_events import TO, send


@pytest.fixture
def sendgrid():
    with SendGridFake([SENDGRID_KEY], verified_senders=["privacy@example.com"]) as fake:
        yield fake


@pytest.fixture
def mandrill():
    with MandrillFake([MANDRILL_KEY], verified_domains=["example.com"]) as fake:
        yield fake


def register(app, *args):
    return app.test_cli_runner().invoke(args=["webhooks", "register", "my_provider", *args])


def test_sendgrids_event_webhook_is_registered_signed_and_its_key_sealed(make_app, serve, sendgrid):
    app = make_app(SENDGRID_BASE_URL=sendgrid.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0)
    client, url = app.test_client(), serve(app)
    configure(client, SENDGRID, sendgrid)  # the API key only
    dry = register(app, url, "--dry-run")
    assert dry.exit_code == 0 and sendgrid.webhooks == []
    result = register(app, url)
    assert result.exit_code == 0, result.output
    hook = f"{url}/api/v1/email/webhooks/twilio_email/my_provider"
    assert f"twilio_email webhook created: {hook}" in result.output
    assert [(h["url"], h["enabled"], h["delivered"]) for h in sendgrid.webhooks] == [(hook, True, True)]
    assert sendgrid.signer().public_key not in result.output and SENDGRID_KEY not in result.output
    again = register(app, url)  # safe to run again: the same webhook, updated
    assert again.exit_code == 0 and "updated" in again.output and len(sendgrid.webhooks) == 1
    sent = send(client, to=TO)
    sendgrid.wait_for_webhooks(2)
    assert record(client, sent["message_id"])["status"] == "delivered"  # verified with the sealed key


def test_mandrills_webhook_is_registered_and_its_auth_key_sealed(make_app, serve, mandrill):
    app = make_app(MANDRILL_BASE_URL=mandrill.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0)
    client, url = app.test_client(), serve(app)
    configure(client, MANDRILL, mandrill)
    result = register(app, url)
    assert result.exit_code == 0, result.output
    assert [h["url"] for h in mandrill.webhooks] == [f"{url}/api/v1/email/webhooks/mailchimp_transactional/my_provider"]
    assert mandrill.webhooks[0]["auth_key"] not in result.output
    sent = send(client, to=TO)
    mandrill.wait_for_webhooks(1)
    assert record(client, sent["message_id"])["status"] == "delivered"


def test_a_refused_api_key_is_a_clear_error(make_app, sendgrid):
    app = make_app(SENDGRID_BASE_URL=sendgrid.base_url)
    configure(app.test_client(), SENDGRID, sendgrid, secrets={"twilio_api_key": "SG.not-the-key-" + "x" * 20})
    result = register(app, "https://fidesmail.example.org")
    assert result.exit_code == 1 and "SendGrid answered 401" in result.output and "not-the-key" not in result.output


def test_for_ses_it_says_what_to_run(make_app):
    app = make_app()
    client = app.test_client()
    assert client.post(URL, json=SES.config(), headers=bearer()).status_code == 200
    result = register(app, "https://fidesmail.example.org")
    assert result.exit_code == 0
    assert "aws sns subscribe" in result.output
    assert "https://fidesmail.example.org/api/v1/email/webhooks/aws_ses/my_provider" in result.output
