"""The providers beside Mailgun as the tests use them: a config and its secrets, the stand-in, the app's settings.

Each `Case` says how to start its stand-in (tests/standins) and point fidesmail at it, with what a user
would send: a config body, a secrets body, a key the stand-in refuses, a From it has not verified.
`standin_for(case)` starts one (SES' moto is slow to start and process-wide: tests keep one per module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fidesmail.web import auth
from tests.support import bearer

URL = "/api/v1/email/config"
SENDER = "Privacy Team <privacy@example.com>"
UNVERIFIED = "notices@unverified.example"
SENDGRID_KEY = "SG.fidesmail-test." + "k3Y" * 10
MANDRILL_KEY = "md-fidesmail-test-" + "9fQ" * 7


@dataclass(frozen=True)
class Case:
    """One provider as a test drives it through the API."""

    service_type: str
    label: str
    details: dict
    make_standin: Callable[[], Any]  # the stand-in, not started
    settings: Callable[[Any], dict]  # app.config that points fidesmail at the stand-in
    secrets: Callable[[Any], dict]  # a PUT /secret body the stand-in accepts
    wrong_secrets: Callable[[Any], dict]  # one whose key it refuses
    unverified: dict  # details whose From it refuses
    secret_values: Callable[[Any], tuple[str, ...]] = field(default=lambda standin: ())  # never to be shown

    def config(self, key: str = "my_provider", **details) -> dict:
        return {"key": key, "name": f"{self.label} {key}", "service_type": self.service_type,
                "details": {**self.details, **details}}

    def __str__(self) -> str:  # the test ids
        return self.service_type


def _sendgrid():
    from tests.standins.sendgrid import SendGridFake

    return SendGridFake([SENDGRID_KEY], verified_senders=["privacy@example.com"])


SENDGRID = Case(
    service_type="twilio_email", label="SendGrid", details={"twilio_email_from": SENDER},
    make_standin=_sendgrid, settings=lambda fake: {"SENDGRID_BASE_URL": fake.base_url},
    secrets=lambda fake: {"twilio_api_key": SENDGRID_KEY},
    wrong_secrets=lambda fake: {"twilio_api_key": "SG.not-the-key-" + "x" * 20},
    unverified={"twilio_email_from": UNVERIFIED}, secret_values=lambda fake: (SENDGRID_KEY,),
)



def _mandrill():
    from tests.standins.mandrill import MandrillFake

    return MandrillFake([MANDRILL_KEY], verified_domains=["example.com"])


MANDRILL = Case(
    service_type="mailchimp_transactional", label="Mailchimp Transactional", details={"email_from": SENDER},
    make_standin=_mandrill, settings=lambda fake: {"MANDRILL_BASE_URL": fake.base_url},
    secrets=lambda fake: {"mailchimp_transactional_api_key": MANDRILL_KEY},
    wrong_secrets=lambda fake: {"mailchimp_transactional_api_key": "md-not-the-key-" + "y" * 12},
    unverified={"email_from": UNVERIFIED}, secret_values=lambda fake: (MANDRILL_KEY,),
)



def _ses():
    from tests.standins.ses import SesStandin

    return SesStandin(verified=["privacy@example.com", "verified.example"])


def ses_keys(standin) -> dict:
    return {"auth_method": "secret_keys", "aws_access_key_id": standin.access_key_id,
            "aws_secret_access_key": standin.secret_access_key}


SES = Case(
    service_type="aws_ses", label="Amazon SES", details={"aws_region": "us-east-1", "email_from": SENDER},
    make_standin=_ses, settings=lambda ses: {"SES_ENDPOINT_URL": ses.base_url},
    secrets=ses_keys,
    wrong_secrets=lambda ses: {**ses_keys(ses), "aws_secret_access_key": "not-the-secret-" + "z" * 24},
    unverified={"email_from": UNVERIFIED}, secret_values=lambda ses: (ses.secret_access_key,),
)

CASES = (SENDGRID, MANDRILL, SES)


def configure(client, case: Case, standin, key: str = "my_provider", secrets: dict | None = None, **details) -> None:
    """POST the case's config and PUT its secrets (both answer 200)."""
    answer = client.post(URL, json=case.config(key, **details), headers=bearer())
    assert answer.status_code == 200, answer.json
    body = case.secrets(standin) if secrets is None else secrets
    answer = client.put(f"{URL}/{key}/secret", json=body, headers=bearer())
    assert answer.status_code == 200, answer.json


def send_headers(**more) -> dict:
    return {**bearer(auth.SEND), **more}
