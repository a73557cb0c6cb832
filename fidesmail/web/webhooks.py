"""POST /api/v1/email/webhooks/{service_type}/{config_key}: each provider's signed delivery events (no bearer token).

Mailgun's (contract section 10) is JSON read by its schema; SendGrid's, Mandrill's and SNS's (section 15)
are read raw, since their signatures cover the bytes exactly as sent (and SNS posts JSON as text/plain).
"""

from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from marshmallow import Schema, fields

from fidesmail.events import intake, posts
from fidesmail.providers.mailgun.webhooks import WebhookSchema
from fidesmail.providers.webhooks import Inbound
from fidesmail.web import context
from fidesmail.web.blueprint import ProviderBlueprint
from fidesmail.web.errors import ErrorSchema

blp = ProviderBlueprint("email_webhooks", __name__, url_prefix="/api/v1/email",
                        description="Delivery events from every provider")

_OUTCOMES = ["verified", "replay", "unknown_message", "ignored", "subscribed"]


class EventTakenSchema(Schema):
    """What became of one event of a post."""

    outcome = fields.String(metadata={"enum": _OUTCOMES[:3]})
    message_id = fields.String(allow_none=True)
    status = fields.String(allow_none=True, metadata={"description": "The message's status afterwards"})


class TakenSchema(EventTakenSchema):
    """What became of the post: recorded (`verified`), or a 200 that records nothing; and of each event in it."""

    outcome = fields.String(metadata={"enum": _OUTCOMES})
    events = fields.List(fields.Nested(EventTakenSchema), metadata={
        "description": "Each event of a SendGrid, Mandrill or SNS post, in order"})


def _no_bearer(how: str) -> dict:
    return {"security": [], "x-authentication": how}


def _raw_body(content_type: str, description: str) -> dict:
    return {"requestBody": {"required": True, "description": description,
                            "content": {content_type: {"schema": {"type": "string"}}}}}


def _take(service_type: str, config_key: str) -> dict:
    """Hand the request as received to the provider's intake; the answer body."""
    public_url = current_app.config.get("PUBLIC_URL")
    url = public_url + request.full_path.rstrip("?") if public_url else request.url
    inbound = Inbound(request.get_data(cache=True), request.headers, url)
    taken = posts.take_post(context.current(), service_type, config_key, inbound)
    first = taken.first
    return {"outcome": taken.outcome, "message_id": first.message_id if first else None,
            "status": first.status if first else None,
            "events": [{"outcome": one.outcome, "message_id": one.message_id, "status": one.status}
                       for one in taken.events]}


def _refusals(view):
    for status, description in ((401, "Signature missing or wrong, or a config of this provider without its key"),
                                (422, "Signed, but not the provider's events"),
                                (503, "The message database cannot be used (the provider retries)")):
        view = blp.alt_response(status, schema=ErrorSchema, description=description)(view)
    return view


@blp.route("/webhooks/mailgun/<config_key>")
class MailgunWebhook(MethodView):
    @blp.arguments(WebhookSchema())
    @blp.response(200, TakenSchema)
    @_refusals
    @blp.doc(**_no_bearer("Mailgun's signature in the body: HMAC-SHA256 over signature.timestamp + "
                          "signature.token with the config's sealed mailgun_webhook_signing_key"))
    def post(self, body, config_key):
        """Take in one Mailgun webhook: verified, kept once with its signature, the message's status moved on."""
        mailgun_body = {"signature": body.get("signature"), "event-data": body.get("event_data")}
        taken = intake.take(context.current(), config_key, mailgun_body)
        return {"outcome": taken.outcome, "message_id": taken.message_id, "status": taken.status}


@blp.route("/webhooks/twilio_email/<config_key>")
class SendGridWebhook(MethodView):
    @blp.response(200, TakenSchema)
    @_refusals
    @blp.doc(**_no_bearer("SendGrid's Signed Event Webhook: ECDSA P-256/SHA-256 (base64, header "
                          "X-Twilio-Email-Event-Webhook-Signature) over the X-Twilio-Email-Event-Webhook-Timestamp "
                          "header followed by the raw body, with the config's twilio_email_webhook_public_key"),
             **_raw_body("application/json", "SendGrid's event webhook: a JSON array of events"))
    def post(self, config_key):
        """Take in one SendGrid event webhook post: verified, each event kept once, the messages' statuses moved on."""
        return _take("twilio_email", config_key)


@blp.route("/webhooks/mailchimp_transactional/<config_key>")
class MandrillWebhook(MethodView):
    @blp.response(200, TakenSchema)
    @_refusals
    @blp.doc(**_no_bearer("X-Mandrill-Signature: base64 HMAC-SHA1, under the config's "
                          "mailchimp_transactional_webhook_key, of the webhook URL (FIDESMAIL_PUBLIC_URL + path, or "
                          "the URL as received) followed by each form key and value, sorted by key"),
             **_raw_body("application/x-www-form-urlencoded", "Form field mandrill_events: a JSON array"))
    def post(self, config_key):
        """Take in one Mandrill webhook post: verified, each event kept once, the messages' statuses moved on."""
        return _take("mailchimp_transactional", config_key)

    @blp.doc(**_no_bearer("none: Mandrill checks that the URL exists with a HEAD request when a webhook is added"))
    def head(self, config_key):
        """Mandrill's check that the webhook URL exists."""
        return Response(status=200, mimetype="application/json")


@blp.route("/webhooks/aws_ses/<config_key>")
class SesWebhook(MethodView):
    @blp.response(200, TakenSchema)
    @_refusals
    @blp.doc(**_no_bearer("Amazon SNS's signature (versions 1 and 2) with the certificate at SigningCertURL, "
                          "fetched only when it matches FIDESMAIL_SNS_CERT_URL_PATTERN; a SubscriptionConfirmation "
                          "is confirmed by fetching its SubscribeURL under the same rule"),
             **_raw_body("text/plain", "An Amazon SNS message (JSON, posted as text/plain) carrying an SES event"))
    def post(self, config_key):
        """Take in one SNS message: verified, its SES event kept once (or its subscription confirmed)."""
        return _take("aws_ses", config_key)
