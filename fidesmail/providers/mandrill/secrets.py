"""A Mailchimp Transactional config's sealed secrets, by fides' names: the API key, and its webhooks' key."""

from __future__ import annotations

from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY, SecretsSchema, secret

API_KEY = "mailchimp_transactional_api_key"
WEBHOOK_KEY = "mailchimp_transactional_webhook_key"  # verifies Mandrill's signed webhooks (section 15)


class MandrillSecretsSchema(SecretsSchema):
    """The secrets of a mailchimp_transactional config (write-only)."""

    mailchimp_transactional_api_key = secret("A Mailchimp Transactional API key. Required unless "
                                             "mailchimp_transactional_webhook_key is given alone.",
                                             required_unless=(WEBHOOK_KEY, CALLBACK_SIGNING_KEY))
    mailchimp_transactional_webhook_key = secret("The webhook's key (its auth_key in Mailchimp Transactional): "
                                                 "verifies delivery events.")
