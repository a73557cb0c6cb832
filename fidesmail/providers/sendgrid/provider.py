"""Twilio SendGrid as a provider: the Mail Send call built from a config (request.py), posted once over the
shared session, classified (attempt.py). SendGrid's own Python package would add nothing a JSON body needs."""

from __future__ import annotations

from collections.abc import Mapping

from fidesmail.core.outcomes import Outcome
from fidesmail.providers import scrub
from fidesmail.providers.base import Email, Provider
from fidesmail.providers.http import Transport
from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY
from fidesmail.providers.sendgrid import attempt
from fidesmail.providers.sendgrid.details import SendGridDetailsSchema
from fidesmail.providers.sendgrid.request import SendGridRequest, build_request
from fidesmail.providers.sendgrid.secrets import API_KEY, WEBHOOK_PUBLIC_KEY, SendGridSecretsSchema


class SendGrid(Provider):
    """SendGrid's v3 Mail Send."""

    service_type = "twilio_email"
    label = attempt.LABEL
    secret_fields = (API_KEY, WEBHOOK_PUBLIC_KEY, CALLBACK_SIGNING_KEY)
    send_fields = (API_KEY,)
    details_schema = SendGridDetailsSchema
    secrets_schema = SendGridSecretsSchema
    fides_label = "Twilio Email"
    fides_details = ("twilio_email_from",)

    def __init__(self, transport: Transport, base_url: str | None = None):
        self.transport = transport
        self.base_url = base_url

    def request(self, details: Mapping, secrets: Mapping[str, str], email: Email) -> SendGridRequest:
        return build_request(details, secrets[API_KEY], email, self.base_url)

    def post(self, request: SendGridRequest) -> Outcome:
        answer = self.transport.post(self.label, "POST", request.url, data=request.body, headers=request.headers)
        if not hasattr(answer, "status_code"):  # the connection failed: already an outcome
            return answer
        return attempt.classify(answer, scrub.forms_of(request.api_key), request.host, request.sandbox)
