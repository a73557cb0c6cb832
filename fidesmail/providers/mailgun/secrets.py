"""A Mailgun config's sealed secrets (contract sections 5 and 10): its API key and its webhook signing key."""

from __future__ import annotations

from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY, SecretsSchema, secret

API_KEY = "mailgun_api_key"
WEBHOOK_SIGNING_KEY = "mailgun_webhook_signing_key"  # verifies Mailgun's webhooks (contract section 10)


class MailgunSecretsSchema(SecretsSchema):
    """The secrets of a Mailgun config (write-only); fields left out keep their stored values."""

    mailgun_api_key = secret("The Mailgun API key (sending). Required unless mailgun_webhook_signing_key is "
                             "given alone.", required_unless=(WEBHOOK_SIGNING_KEY, CALLBACK_SIGNING_KEY))
    mailgun_webhook_signing_key = secret("Mailgun's HTTP webhook signing key: verifies delivery events "
                                         "(POST /email/webhooks/mailgun/{key}).")
