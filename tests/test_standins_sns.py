"""The SNS signer: its messages verify with a verifier written here from AWS's documentation alone
("Verifying the signatures of Amazon SNS messages"), for signature versions 1 and 2, with the certificate
fetched from SigningCertURL; an altered message fails; SubscribeURL fetches are recorded.

No maintained PyPI package verifies SNS messages against a certificate served anywhere but amazonaws.com
(aws-sns-message-validator hard-wires SHA1 and that host; aws-sns-verifier also demands an Amazon issuer),
so the verifier below is the independent one: it shares no code with tests/standins/sns.py."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.standins.sns import TOPIC_ARN, SnsSigner, ses_event
from tests.support import ROOT

# From AWS's documentation: the fields, in this order, that make the string to sign.
NOTIFICATION_FIELDS = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
CONFIRMATION_FIELDS = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]


def aws_verify(message: dict) -> bool:
    """Verify an SNS message as AWS documents it, fetching the certificate from SigningCertURL."""
    fields = NOTIFICATION_FIELDS if message["Type"] == "Notification" else CONFIRMATION_FIELDS
    lines = []
    for name in fields:
        if name == "Subject" and name not in message:
            continue  # "If the Subject field is not present, do not include it"
        lines += [name, message[name]]
    string_to_sign = ("\n".join(lines) + "\n").encode("utf-8")
    with urllib.request.urlopen(message["SigningCertURL"], timeout=5) as answer:
        certificate = x509.load_pem_x509_certificate(answer.read())
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}[message["SignatureVersion"]]
    try:
        certificate.public_key().verify(base64.b64decode(message["Signature"]), string_to_sign,
                                        padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return False
    return True


@pytest.fixture(scope="module")
def sns():
    with SnsSigner() as signer:
        yield signer


@pytest.mark.parametrize("version", [1, 2])
def test_notifications_verify_and_altered_ones_do_not(sns, version):
    event = ses_event("Bounce", message_id="0100-abc", recipient="gone@example.com",
                      tags={"fidesmail-message-id": ["msg_1"]})
    for subject in (None, "Amazon SES Email Event Notification"):
        message = sns.notification(event, subject=subject, version=version)
        assert message["SignatureVersion"] == str(version) and message["SigningCertURL"] == sns.cert_url
        assert aws_verify(message)
        for field, value in [("Message", message["Message"].replace("Permanent", "Transient")),
                             ("TopicArn", TOPIC_ARN + "-other"), ("MessageId", "another-id"),
                             ("Subject", "changed")]:
            assert not aws_verify({**message, field: value}), field
    other_version = {**message, "SignatureVersion": "2" if version == 1 else "1"}
    assert not aws_verify(other_version)


@pytest.mark.parametrize("version", [1, 2])
def test_confirmations_verify_and_subscribe_url_fetches_are_recorded(sns, version):
    confirmation = sns.subscription_confirmation(version=version)
    assert aws_verify(confirmation)
    assert not aws_verify({**confirmation, "SubscribeURL": "http://127.0.0.1:1/elsewhere"})
    token = confirmation["Token"]
    assert not aws_verify({**confirmation, "Token": token[:-1] + ("1" if token[-1] != "1" else "2")})
    before = len(sns.subscribe_fetches)
    with urllib.request.urlopen(confirmation["SubscribeURL"], timeout=5) as answer:
        assert b"<SubscriptionArn>" in answer.read()
    fetched = sns.wait_for_subscribe(before + 1)[-1]
    assert (fetched["Token"], fetched["TopicArn"]) == (confirmation["Token"], TOPIC_ARN)
    assert aws_verify(sns.unsubscribe_confirmation(version=version))


def test_ses_events_as_ses_publishes_them():
    tags = {"fidesmail-message-id": ["msg_7"]}
    bounce = ses_event("Bounce", message_id="m1", recipient="gone@example.com", tags=tags)
    assert bounce["eventType"] == "Bounce" and bounce["mail"]["tags"]["fidesmail-message-id"] == ["msg_7"]
    assert bounce["bounce"]["bounceType"] == "Permanent"
    assert bounce["bounce"]["bouncedRecipients"][0]["diagnosticCode"].startswith("smtp; 550")
    transient = ses_event("Bounce", message_id="m1", recipient="full@example.com", bounce_type="Transient")
    assert transient["bounce"]["bounceSubType"] == "MailboxFull"
    delivery = ses_event("Delivery", message_id="m2", recipient="a@example.com", style="notification")
    assert delivery["notificationType"] == "Delivery" and "tags" not in delivery["mail"]
    assert delivery["delivery"]["recipients"] == ["a@example.com"]
    for kind, key in [("Complaint", "complaint"), ("Reject", "reject"), ("Send", "send"),
                      ("DeliveryDelay", "deliveryDelay"), ("Open", "open"), ("Click", "click")]:
        assert key in ses_event(kind, message_id="m3", recipient="a@example.com")
    with pytest.raises(ValueError):
        ses_event("Exploded", message_id="m4", recipient="a@example.com")


def test_signing_on_the_command_line_with_the_certificate_served(tmp_path):
    with SnsSigner(key_dir=tmp_path) as served:
        printed = subprocess.run([sys.executable, "-m", "tests.standins.sns", "sign", "--key-dir", str(tmp_path),
                                  "--port", str(served.port), "--event", "Bounce", "--fidesmail-message-id", "msg_8",
                                  "--signature-version", "2"], cwd=ROOT, check=True, capture_output=True,
                                 text=True).stdout
        message = json.loads(printed)
        assert message["SigningCertURL"] == served.cert_url and aws_verify(message)
        assert json.loads(message["Message"])["mail"]["tags"]["fidesmail-message-id"] == ["msg_8"]
