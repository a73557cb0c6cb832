"""A SendGrid config's sealed secrets, by fides' names: the API key, and the Event Webhook's public key."""

from __future__ import annotations

from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY, SecretsSchema, secret

API_KEY = "twilio_api_key"
WEBHOOK_PUBLIC_KEY = "twilio_email_webhook_public_key"  # verifies SendGrid's signed Event Webhook (section 15)


class SendGridSecretsSchema(SecretsSchema):
    """The secrets of a twilio_email (SendGrid) config (write-only)."""

    twilio_api_key = secret("A SendGrid API key with the Mail Send permission. Required unless "
                            "twilio_email_webhook_public_key is given alone.",
                            required_unless=(WEBHOOK_PUBLIC_KEY, CALLBACK_SIGNING_KEY))
    twilio_email_webhook_public_key = secret("The Signed Event Webhook's verification key (base64, as SendGrid "
                                             "shows it): verifies delivery events.")
