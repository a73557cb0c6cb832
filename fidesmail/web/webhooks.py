"""POST /api/v1/email/webhooks/mailgun/{config_key}: Mailgun's signed delivery events (no bearer token)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from fidesmail.events import intake
from fidesmail.providers.mailgun.webhooks import WebhookSchema
from fidesmail.web import context
from fidesmail.web.blueprint import ProviderBlueprint
from fidesmail.web.errors import ErrorSchema

blp = ProviderBlueprint("email_webhooks", __name__, url_prefix="/api/v1/email", description="Mailgun delivery events")


class TakenSchema(Schema):
    """What became of the event: recorded (`verified`), or a 200 that records nothing."""

    outcome = fields.String(metadata={"enum": ["verified", "replay", "unknown_message"]})
    message_id = fields.String(allow_none=True)
    status = fields.String(allow_none=True, metadata={"description": "The message's status afterwards"})


_NO_BEARER = {
    "security": [],
    "x-authentication": "Mailgun's signature in the body: HMAC-SHA256 over signature.timestamp + "
                        "signature.token with the config's sealed mailgun_webhook_signing_key",
}


@blp.route("/webhooks/mailgun/<config_key>")
class MailgunWebhook(MethodView):
    @blp.arguments(WebhookSchema())
    @blp.response(200, TakenSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="Signature missing or wrong, a timestamp more than "
                                                            "5 minutes away, or a config without a signing key")
    @blp.alt_response(422, schema=ErrorSchema, description="Signed, but event-data is not a Mailgun event")
    @blp.alt_response(503, schema=ErrorSchema, description="The message database cannot be used (Mailgun retries)")
    @blp.doc(**_NO_BEARER)
    def post(self, body, config_key):
        """Take in one Mailgun webhook: verified, kept once with its signature, the message's status moved on."""
        mailgun_body = {"signature": body.get("signature"), "event-data": body.get("event_data")}
        taken = intake.take(context.current(), config_key, mailgun_body)
        return {"outcome": taken.outcome, "message_id": taken.message_id, "status": taken.status}
