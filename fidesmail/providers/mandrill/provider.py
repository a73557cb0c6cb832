"""Mailchimp Transactional (Mandrill) as a provider: the messages/send call built from a config (request.py),
posted once over the shared session, classified (attempt.py). Mailchimp's own client would add nothing a
JSON body needs (it posts the same JSON with requests, and turns every error into one exception)."""

from __future__ import annotations

from collections.abc import Mapping

from fidesmail.core.outcomes import Outcome
from fidesmail.providers import scrub
from fidesmail.providers.base import Email, Provider
from fidesmail.providers.http import Transport
from fidesmail.providers.mandrill import attempt
from fidesmail.providers.mandrill.details import MandrillDetailsSchema
from fidesmail.providers.mandrill.request import MandrillRequest, build_request
from fidesmail.providers.mandrill.secrets import API_KEY, WEBHOOK_KEY, MandrillSecretsSchema
from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY

_JSON = {"Content-Type": "application/json"}


class Mandrill(Provider):
    """Mailchimp Transactional's messages/send (API 1.0)."""

    service_type = "mailchimp_transactional"
    label = attempt.LABEL
    secret_fields = (API_KEY, WEBHOOK_KEY, CALLBACK_SIGNING_KEY)
    send_fields = (API_KEY,)
    details_schema = MandrillDetailsSchema
    secrets_schema = MandrillSecretsSchema
    fides_label = "Mailchimp Transactional"
    fides_details = ("email_from",)

    def __init__(self, transport: Transport, base_url: str | None = None):
        self.transport = transport
        self.base_url = base_url

    def request(self, details: Mapping, secrets: Mapping[str, str], email: Email) -> MandrillRequest:
        return build_request(details, secrets[API_KEY], email, self.base_url)

    def post(self, request: MandrillRequest) -> Outcome:
        answer = self.transport.post(self.label, "POST", request.url, data=request.body, headers=_JSON)
        if not hasattr(answer, "status_code"):  # the connection failed: already an outcome
            return answer
        return attempt.classify(answer, scrub.forms_of(request.api_key), request.host, request.recipient)
