"""Amazon SES as a provider: SendEmail built from a config (request.py), sent once through boto3 (clients.py,
botocore's retries off), every outcome classified (attempt.py)."""

from __future__ import annotations

from collections.abc import Mapping

from botocore.exceptions import BotoCoreError, ClientError

from fidesmail.core.outcomes import Accepted, Outcome, Unknown
from fidesmail.providers import scrub
from fidesmail.providers.base import Email, Provider
from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY
from fidesmail.providers.ses import attempt
from fidesmail.providers.ses.clients import SesClients
from fidesmail.providers.ses.details import SesDetailsSchema
from fidesmail.providers.ses.request import SesRequest, build_request
from fidesmail.providers.ses.secrets import ACCESS_KEY_ID, AUTH_METHOD, ROLE_ARN, SECRET_ACCESS_KEY, SesSecretsSchema


class SesProvider(Provider):
    """SES v2 SendEmail, in the config's region."""

    service_type = "aws_ses"
    label = attempt.LABEL
    secret_fields = (AUTH_METHOD, ACCESS_KEY_ID, SECRET_ACCESS_KEY, ROLE_ARN, CALLBACK_SIGNING_KEY)
    send_fields = (AUTH_METHOD,)
    optional_send_fields = (ACCESS_KEY_ID, SECRET_ACCESS_KEY, ROLE_ARN)
    details_schema = SesDetailsSchema
    secrets_schema = SesSecretsSchema
    fides_label = "AWS SES"
    fides_details = ("email_from", "domain", "aws_region")

    def __init__(self, clients: SesClients, timeout: float = 10):
        self.clients = clients
        self.timeout = timeout

    def request(self, details: Mapping, secrets: Mapping[str, str], email: Email) -> SesRequest:
        return build_request(details, secrets, email)

    def post(self, request: SesRequest) -> Outcome:
        secrets = scrub.forms_of(*request.auth.secrets)
        client = self.clients.get(request.region, request.auth)
        host = scrub.host_of(client.sesv2.meta.endpoint_url)
        try:  # the credentials first (an assumed role's refresh asks STS): a failure here never reached SES
            credentials = client.credentials()
            if credentials is not None:
                credentials.get_frozen_credentials()
        except Exception as exc:  # whatever it was, SES was not asked
            return attempt.before_sending(exc, secrets, host)
        try:
            answer = client.sesv2.send_email(**request.params)
        except (ClientError, BotoCoreError) as exc:
            return attempt.classify(exc, secrets, host, self.timeout)
        status = (answer.get("ResponseMetadata") or {}).get("HTTPStatusCode", 200)
        message_id = answer.get("MessageId")
        if not isinstance(message_id, str) or not message_id:
            return Unknown(f"{self.label} ({host}) answered {status} without a MessageId", status)
        return Accepted(message_id, "", status)
