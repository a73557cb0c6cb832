"""What the failover tests share: one config per provider, each on its stand-in, linked by `fallback` as a test asks.

`Stand` is one config as a user sets it up (its body, its secrets) with the stand-in behind it, and what a
test reads back: the From of each message the stand-in took for a record, and how many requests reached
it. `standins()` starts all four (SES' moto is slow to start: tests keep them per module).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.provider_cases import MANDRILL, MANDRILL_KEY, SENDGRID, SENDGRID_KEY, SES, ses_keys
from tests.support import bearer

URL = "/api/v1/email/config"
SEND = "/api/v1/email/send"
MG_DOMAIN, MG_KEY = "mg.example.com", "key-" + "fa11" * 8
PAIRS = [("mg", "ses"), ("sg", "md"), ("md", "mg"), ("ses", "sg")]  # (primary, fallback): each stand-in a primary once
VERIFY = {"action_type": "subject_identity_verification", "to": "subject@example.com",
          "body_params": {"verification_code": "482915", "verification_code_ttl_seconds": 600}}


@dataclass
class Stand:
    """One config and the stand-in behind it."""

    key: str
    service_type: str
    config: dict
    secrets: dict
    standin: object
    sender: str  # the From it sends with

    def taken(self, message_id: str) -> list[str]:
        """The From of every message the stand-in accepted carrying this record's id."""
        if isinstance(self.standin, MailgunFake):
            return [r.field("from") for r in self.standin.sent if r.field("v:fidesmail-message-id") == message_id]
        return [a.sender for a in self.standin.accepted if a.fidesmail_message_id == message_id]

    @property
    def reached(self) -> int:
        """Requests that reached the stand-in (faulted ones too) since its last reset."""
        return self.standin.attempts

    def reset(self) -> None:
        self.standin.reset()
        self.standin.up()


@contextlib.contextmanager
def standins():
    """The four stand-ins, started: key -> Stand (mg: Mailgun, sg: SendGrid, md: Mandrill, ses: Amazon SES)."""
    with MailgunFake(domains={MG_DOMAIN: MG_KEY}) as mg, SENDGRID.make_standin() as sg, \
            MANDRILL.make_standin() as md, SES.make_standin() as ses:
        yield {stand.key: stand for stand in (
            Stand("mg", "mailgun", {"key": "mg", "name": "Via Mailgun", "service_type": "mailgun", "details": {
                "domain": MG_DOMAIN, "sender": "Via Mailgun <privacy@mg.example.com>"}},
                  {"mailgun_api_key": MG_KEY}, mg, "Via Mailgun <privacy@mg.example.com>"),
            Stand("sg", "twilio_email", SENDGRID.config("sg", twilio_email_from="Via SendGrid <privacy@example.com>"),
                  {"twilio_api_key": SENDGRID_KEY}, sg, "Via SendGrid <privacy@example.com>"),
            Stand("md", "mailchimp_transactional",
                  MANDRILL.config("md", email_from="Via Mandrill <privacy@example.com>"),
                  {"mailchimp_transactional_api_key": MANDRILL_KEY}, md, "Via Mandrill <privacy@example.com>"),
            Stand("ses", "aws_ses", SES.config("ses", email_from="Via SES <privacy@example.com>"), ses_keys(ses), ses,
                  "Via SES <privacy@example.com>"),
        )}


def settings_for(stands: dict, **more) -> dict:
    """app.config pointing fidesmail at the stand-ins, with short timeouts, retries and outbox waits."""
    return {"MAILGUN_BASE_URL": stands["mg"].standin.base_url, "SENDGRID_BASE_URL": stands["sg"].standin.base_url,
            "MANDRILL_BASE_URL": stands["md"].standin.base_url, "SES_ENDPOINT_URL": stands["ses"].standin.base_url,
            "MAILGUN_TIMEOUT": 1.0, "MAILGUN_RETRIES": 2, "MAILGUN_BACKOFF": 0.01, "OUTBOX_BACKOFF": 0.05,
            "OUTBOX_MAX_BACKOFF": 0.2, "OUTBOX_POLL": 0.05,
            "VERIFICATION_LIMIT": 0, **more}  # many codes to one address here: the limit is tests/test_limits_*


def configure(client, stands: dict, *, without_secrets: tuple[str, ...] = ()) -> None:
    """POST every config and PUT its secrets (but for `without_secrets`)."""
    for stand in stands.values():
        answer = client.post(URL, json=stand.config, headers=bearer())
        assert answer.status_code == 200, answer.json
        if stand.key not in without_secrets:
            answer = client.put(f"{URL}/{stand.key}/secret", json=stand.secrets, headers=bearer())
            assert answer.status_code == 200, answer.json


def link(client, *keys: str) -> None:
    """Chain the configs in order: keys[0] falls back to keys[1], that one to keys[2], ..."""
    for key, fallback in reversed(list(zip(keys, keys[1:], strict=False))):
        answer = client.patch(f"{URL}/{key}", json={"fallback": fallback}, headers=bearer())
        assert answer.status_code == 200, answer.json


def failovers(client) -> dict[tuple[str, str], float]:
    """fidesmail_failovers_total by (from_provider, to_provider), from /metrics."""
    text = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
    pattern = re.compile(r'^fidesmail_failovers_total\{from_provider="([^"]+)",to_provider="([^"]+)"\} (\S+)$', re.M)
    return {(a, b): float(n) for a, b, n in pattern.findall(text)}
