"""Mailgun as a provider: the messages POST built from a config (request.py), posted once, classified (attempt.py)."""

from __future__ import annotations

from collections.abc import Mapping

from fidesmail.core.outcomes import Outcome
from fidesmail.providers import scrub
from fidesmail.providers.base import Email, Provider
from fidesmail.providers.http import Transport
from fidesmail.providers.mailgun import attempt
from fidesmail.providers.mailgun.details import MailgunDetailsSchema
from fidesmail.providers.mailgun.request import MailgunRequest, build_request
from fidesmail.providers.mailgun.secrets import API_KEY, WEBHOOK_SIGNING_KEY, MailgunSecretsSchema
from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY


class Mailgun(Provider):
    """Mailgun's messages API (v3), in the US or the EU region."""

    service_type = "mailgun"
    label = "Mailgun"
    secret_fields = (API_KEY, WEBHOOK_SIGNING_KEY, CALLBACK_SIGNING_KEY)
    send_fields = (API_KEY,)
    details_schema = MailgunDetailsSchema
    secrets_schema = MailgunSecretsSchema
    fides_label = "Mailgun"
    fides_details = ("is_eu_domain", "api_version", "domain")

    def __init__(self, transport: Transport, base_url: str | None = None, eu_base_url: str | None = None):
        self.transport = transport
        self.base_url, self.eu_base_url = base_url, eu_base_url

    def request(self, details: Mapping, secrets: Mapping[str, str], email: Email) -> MailgunRequest:
        return build_request(details, secrets[API_KEY], email.message, email.to, base_url=self.base_url,
                             eu_base_url=self.eu_base_url, test_mode=email.test_mode, message_id=email.message_id)

    def post(self, request: MailgunRequest) -> Outcome:
        host = scrub.host_of(request.url)
        answer = self.transport.post(self.label, request.method, request.url, data=request.data, auth=request.auth)
        if not hasattr(answer, "status_code"):  # the connection failed: already an outcome
            return answer
        return attempt.classify(answer, scrub.secret_forms(request.auth), host)
