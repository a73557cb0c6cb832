"""SES events through Amazon SNS (contract section 15), through HTTP, after real sends through fidesmail.

The message goes out through the SES stand-in (moto behind a proxy, tests/standins/ses.py); its events
come back as SNS messages signed as SNS signs them (versions 1 and 2), with the certificate served on
127.0.0.1 by tests/standins/sns.py. FIDESMAIL_SNS_CERT_URL_PATTERN is set to the stand-in's address, so
the pattern alone decides what fidesmail fetches: a message or a SubscribeURL elsewhere is refused and
nothing is fetched.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.provider_cases import SES, configure, send_headers
from tests.standins.server import Standin
from tests.standins.ses import SesStandin
from tests.standins.sns import TOPIC_ARN, SnsSigner, ses_event
from tests.support import record
from tests.test_provider_events import alter_stored_signatures, counted, verify

SEND = "/api/v1/email/send"
TO = "Subject.Person@Example.com"
VERIFY = {"config_key": "my_provider", "action_type": "subject_identity_verification", "to": TO,
          "body_params": {"verification_code": "135790", "verification_code_ttl_seconds": 600}}
HOOK = "/api/v1/email/webhooks/aws_ses/my_provider"


@pytest.fixture(scope="module")
def standin():
    with SesStandin(verified=["privacy@example.com"]) as ses:
        yield ses


@pytest.fixture
def ses(standin, monkeypatch):
    standin.reset()
    standin.up()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return standin


@pytest.fixture
def sns():
    with SnsSigner() as signer:
        yield signer


@pytest.fixture
def make_client(make_app, ses, sns, database_url):
    def make(**details):
        client = make_app(SES_ENDPOINT_URL=ses.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0,
                          DATABASE_URL=database_url, SNS_CERT_URL_PATTERN="^" + re.escape(sns.base_url) + "/"
                          ).test_client()
        configure(client, SES, ses, **details)
        return client
    return make


@pytest.fixture
def client(make_client):
    return make_client()


def send(client):
    answer = client.post(SEND, json=VERIFY, headers=send_headers())
    assert answer.status_code == 200, answer.json
    return answer.json


def event_for(kind, sent, tagged=True, **more):
    tags = {"fidesmail-message-id": [sent["message_id"]]} if tagged else {}
    return ses_event(kind, message_id=sent["id"], recipient=TO.lower(), tags=tags, **more)


def post(client, message):
    return client.post(HOOK, data=json.dumps(message), content_type="text/plain; charset=UTF-8")


@pytest.mark.slow
def test_ses_events_through_sns_deliver_and_fail_messages_with_ses_reason(client, sns):
    delivered, bounced = send(client), send(client)
    assert delivered["provider"] == "aws_ses"
    for message in (sns.notification(event_for("Send", delivered), version=1),
                    sns.notification(event_for("Delivery", delivered), version=2),
                    sns.notification(event_for("Bounce", bounced, diagnostic="smtp; 550 5.1.1 user unknown"))):
        answer = post(client, message)
        assert answer.status_code == 200 and answer.json["outcome"] == "verified", answer.json
    got = record(client, delivered["message_id"])
    assert got["status"] == "delivered"
    assert [(e["event"], e["provider"]) for e in got["events"]] == [("Send", "aws_ses"), ("Delivery", "aws_ses")]
    assert got["events"][1]["signature"]["signature_version"] == "2"
    assert got["events"][1]["signature"]["topic_arn"] == TOPIC_ARN
    assert TO.lower() not in json.dumps(got)
    failed = record(client, bounced["message_id"])
    assert failed["status"] == "failed" and failed["failure_reason"] == "smtp; 550 5.1.1 user unknown"
    assert sns.cert_fetches == 1  # the certificate is kept once fetched


@pytest.mark.slow
def test_a_transient_bounce_is_kept_and_a_later_delivery_is_not_undone(client, sns):
    sent = send(client)
    post(client, sns.notification(event_for("Bounce", sent, bounce_type="Transient")))
    assert record(client, sent["message_id"])["status"] == "accepted"
    post(client, sns.notification(event_for("Delivery", sent)))
    post(client, sns.notification(event_for("Send", sent)))  # late: never backwards
    got = record(client, sent["message_id"])
    assert got["status"] == "delivered"
    assert [(e["event"], e["severity"]) for e in got["events"]][0] == ("Bounce", "temporary")


def test_events_are_matched_by_ses_message_id_without_the_tag(client, sns):
    sent = send(client)
    notice = sns.notification(event_for("Delivery", sent, tagged=False, style="notification"))
    assert post(client, notice).json["outcome"] == "verified"
    assert record(client, sent["message_id"])["status"] == "delivered"


@pytest.mark.parametrize("damage", ["altered", "no signature", "unknown version"])
def test_a_message_without_sns_signature_is_401_and_records_nothing(client, sns, damage):
    sent = send(client)
    message = sns.notification(event_for("Delivery", sent))
    if damage == "altered":
        message["Message"] = message["Message"].replace("Delivery", "Bounce")
    elif damage == "no signature":
        del message["Signature"]
    else:
        message["SignatureVersion"] = "3"
    answer = post(client, message)
    assert answer.status_code == 401 and "signature" in answer.json["detail"]
    assert record(client, sent["message_id"])["events"] == []


def test_a_certificate_url_outside_the_pattern_is_refused_and_not_fetched(client, sns):
    sent = send(client)
    elsewhere = SnsSigner()
    with elsewhere:  # a validly signed message whose certificate is served from another address
        answer = post(client, elsewhere.notification(event_for("Delivery", sent)))
        assert elsewhere.cert_fetches == 0
    assert answer.status_code == 401 and "FIDESMAIL_SNS_CERT_URL_PATTERN" in answer.json["detail"]
    assert record(client, sent["message_id"])["events"] == []
    assert counted(client, "other", "untrusted_url", "aws_ses") == 1


def test_the_same_message_twice_is_recorded_once_and_unknown_messages_are_counted(client, sns):
    sent = send(client)
    message = sns.notification(event_for("Delivery", sent))
    first, again = post(client, message), post(client, message)
    assert (first.json["outcome"], again.status_code, again.json["outcome"]) == ("verified", 200, "replay")
    assert len(record(client, sent["message_id"])["events"]) == 1
    stranger = sns.notification(ses_event("Delivery", message_id="0100-not-ours", recipient="x@example.com"))
    answer = post(client, stranger)
    assert answer.status_code == 200 and answer.json["outcome"] == "unknown_message"
    assert counted(client, "Delivery", "unknown_message", "aws_ses") == 1


def test_a_subscription_is_confirmed_under_the_same_rule(client, sns):
    answer = post(client, sns.subscription_confirmation(version=2))
    assert answer.status_code == 200 and answer.json["outcome"] == "subscribed"
    assert sns.wait_for_subscribe(1)[0]["path"] == "/confirm"
    outside = sns.subscription_confirmation(subscribe_url="http://127.0.0.2:9/confirm?Token=x")
    refused = post(client, outside)
    assert refused.status_code == 401 and "SubscribeURL" in refused.json["detail"]
    assert len(sns.subscribe_fetches) == 1  # nothing fetched for it


def test_a_config_naming_its_topic_refuses_other_topics(make_client, sns):
    client = make_client(sns_topic_arn=TOPIC_ARN)
    sent = send(client)
    other = sns.notification(event_for("Delivery", sent), topic_arn=TOPIC_ARN.replace("fidesmail", "someone"))
    answer = post(client, other)
    assert answer.status_code == 401 and "topic" in answer.json["detail"]
    assert record(client, sent["message_id"])["events"] == []
    assert post(client, sns.notification(event_for("Delivery", sent))).json["outcome"] == "verified"


def test_a_signed_notification_that_is_no_ses_event_is_ignored(client, sns):
    answer = post(client, sns.notification("Successfully validated SNS topic for Amazon SES event publishing."))
    assert answer.status_code == 200 and answer.json["outcome"] == "ignored"
    assert post(client, sns.notification({"eventType": ["not", "a", "name"]})).status_code == 422


def test_flask_messages_verify_rechecks_sns_signatures_with_the_certificate(client, sns):
    sent = send(client)
    post(client, sns.notification(event_for("Delivery", sent), version=2))
    result = verify(client)
    assert result.exit_code == 0 and "1 of 1" in result.output, result.output
    alter_stored_signatures(client, signature_version="1")  # not how SNS signed it: no longer verifies
    result = verify(client, sent["message_id"])
    assert result.exit_code == 1 and "signature" in result.output and TO.lower() not in result.output


class CertificateHost(Standin):
    """Serves what a SigningCertURL inside the pattern may answer: a redirect elsewhere, or too much."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    def handle(self, request):
        if request.path == "/redirect.pem":
            request.answer(302, None, headers={"Location": self.target})
        else:
            request.answer(200, b"-----BEGIN CERTIFICATE-----\n" + b"A" * 100_000, content_type="text/plain")


@pytest.mark.parametrize("path", ["/redirect.pem", "/huge.pem"])
@pytest.mark.slow
def test_a_certificate_is_fetched_without_redirects_and_bounded_in_size(make_app, ses, sns, database_url, path):
    client = make_app(SES_ENDPOINT_URL=ses.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0, DATABASE_URL=database_url,
                      SNS_CERT_URL_PATTERN=r"^http://127\.0\.0\.1:\d+/").test_client()
    configure(client, SES, ses)
    sent = send(client)
    with CertificateHost(sns.cert_url) as host:
        message = sns.notification(event_for("Delivery", sent))
        message["SigningCertURL"] = host.base_url + path  # not signed by SNS: the pattern is what guards it
        answer = post(client, message)
        assert host.attempts == 1
    assert answer.status_code == 401 and "certificate" in answer.json["detail"]
    assert sns.cert_fetches == 0  # the redirect was not followed
    assert record(client, sent["message_id"])["events"] == []
