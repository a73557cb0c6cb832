"""The SES stand-in (moto's server behind the fault proxy), proven with boto3 itself, botocore's retries off:
sends accepted and readable back with their tags, SigV4 and verified senders enforced, STS AssumeRole, and each
injected fault reaching boto3 as the matching botocore error."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from tests.standins.ses import SesStandin
from tests.support import ROOT

SENDER = "Privacy Team <privacy@example.com>"
NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=5, connect_timeout=2)


@pytest.fixture(scope="module")
def standin():
    with SesStandin(verified=["privacy@example.com", "verified.example"]) as ses:
        yield ses


@pytest.fixture
def ses(standin):
    standin.reset()
    standin.up()
    standin.fault_all_requests = False
    return standin


def client(ses, service="sesv2", **keys):
    """boto3 as the brief has it: endpoint_url, region_name, botocore retries off."""
    keys = keys or {"aws_access_key_id": ses.access_key_id, "aws_secret_access_key": ses.secret_access_key}
    return boto3.client(service, endpoint_url=ses.base_url, region_name=ses.region, config=NO_RETRIES, **keys)


def send_v2(sesv2, sender=SENDER, to="subject@example.com", fidesmail_id="msg_1"):
    return sesv2.send_email(FromEmailAddress=sender, Destination={"ToAddresses": [to]},
                            Content={"Simple": {"Subject": {"Data": "Your code"},
                                                "Body": {"Text": {"Data": "Code: 123"},
                                                         "Html": {"Data": "<p>Code: 123</p>"}}}},
                            EmailTags=[{"Name": "fidesmail-message-id", "Value": fidesmail_id}])


def error_of(raised: pytest.ExceptionInfo) -> tuple[str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_v2_send_is_accepted_and_readable_back_with_its_tags(ses):
    message_id = send_v2(client(ses))["MessageId"]
    (accepted,) = ses.wait_for_accepted(1)
    assert (accepted.provider_id, accepted.recipient, accepted.sender, accepted.subject) == (
        message_id, "subject@example.com", SENDER, "Your code")
    assert (accepted.text, accepted.html) == ("Code: 123", "<p>Code: 123</p>")
    assert accepted.fidesmail_message_id == "msg_1" and accepted.extra["tags"] == {"fidesmail-message-id": "msg_1"}
    assert message_id in [sent["id"] for sent in ses.moto_sent_messages()]  # moto itself sent it
    assert ses.attempts == 1


def test_a_v1_send_with_tags_too(ses):
    answer = client(ses, "ses").send_email(
        Source="notices@verified.example", Destination={"ToAddresses": ["subject@example.com"]},
        Message={"Subject": {"Data": "Receipt"}, "Body": {"Text": {"Data": "Done"}}},
        Tags=[{"Name": "fidesmail-message-id", "Value": "msg_v1"}])
    (accepted,) = ses.wait_for_accepted(1)
    assert (accepted.provider_id, accepted.fidesmail_message_id, accepted.extra["version"]) == (
        answer["MessageId"], "msg_v1", 1)
    assert (accepted.text, accepted.html) == ("Done", None)


def test_a_wrong_secret_or_an_unknown_key_is_refused_as_aws_refuses_it(ses):
    with pytest.raises(ClientError) as refused:
        send_v2(client(ses, aws_access_key_id=ses.access_key_id, aws_secret_access_key="not-the-secret"))
    assert error_of(refused) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as refused:
        client(ses, "ses", aws_access_key_id=ses.access_key_id, aws_secret_access_key="nope").send_email(
            Source="privacy@example.com", Destination={"ToAddresses": ["a@example.com"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}})
    assert error_of(refused) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as refused:
        send_v2(client(ses, aws_access_key_id="AKIAUNKNOWNUNKNOWN00", aws_secret_access_key="x"))
    assert error_of(refused) == ("InvalidClientTokenId", 403)
    assert ses.accepted == []


def test_an_unverified_sender_is_message_rejected(ses):
    with pytest.raises(ClientError) as refused:
        send_v2(client(ses), sender="someone@unverified.example")
    assert error_of(refused) == ("MessageRejected", 400)
    assert "not verified" in refused.value.response["Error"]["Message"]
    ses.verify("someone@unverified.example")
    assert send_v2(client(ses), sender="someone@unverified.example")["MessageId"]


def test_sts_assume_role_gives_keys_ses_accepts(ses):
    sts = client(ses, "sts")
    credentials = sts.assume_role(RoleArn=ses.role_arn, RoleSessionName="fidesmail")["Credentials"]
    assumed = client(ses, aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials[
        "SecretAccessKey"], aws_session_token=credentials["SessionToken"])
    send_v2(assumed, fidesmail_id="msg_role")
    assert [m.fidesmail_message_id for m in ses.wait_for_accepted(1)] == ["msg_role"]
    with pytest.raises(ClientError) as refused:  # a role the user may not assume
        sts.assume_role(RoleArn=ses.unassumable_role_arn, RoleSessionName="intruder")
    assert error_of(refused) == ("AccessDenied", 403)


def test_throttling_reaches_boto3_in_each_protocol(ses):
    ses.throttle_next(times=2)
    with pytest.raises(ClientError) as refused:
        send_v2(client(ses))
    assert error_of(refused) == ("TooManyRequestsException", 429)
    with pytest.raises(ClientError) as refused:
        client(ses, "ses").send_email(Source="privacy@example.com", Destination={"ToAddresses": ["a@example.com"]},
                                      Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}})
    assert error_of(refused) == ("Throttling", 400)
    assert ses.accepted == [] and ses.attempts == 2
    assert send_v2(client(ses))["MessageId"]


@pytest.mark.parametrize(("status", "code"), [(500, "InternalFailure"), (503, "ServiceUnavailable")])
def test_server_errors_reach_boto3_as_5xx(ses, status, code):
    ses.fail_next(status)
    with pytest.raises(ClientError) as refused:
        send_v2(client(ses))
    assert error_of(refused) == (code, status)
    assert ses.accepted == []


def test_dropped_connections_slow_answers_and_refused_connections(ses):
    ses.close_next()
    with pytest.raises(ConnectionClosedError):
        send_v2(client(ses))
    ses.reset_next()
    with pytest.raises(ConnectionClosedError):
        send_v2(client(ses))
    ses.slow_next(2)
    with pytest.raises(ReadTimeoutError):
        boto3.client("sesv2", endpoint_url=ses.base_url, region_name=ses.region,
                     aws_access_key_id=ses.access_key_id, aws_secret_access_key=ses.secret_access_key,
                     config=Config(retries={"total_max_attempts": 1}, read_timeout=0.3)).send_email(
            FromEmailAddress=SENDER, Destination={"ToAddresses": ["a@example.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}})
    ses.down(refuse=True)
    with pytest.raises(EndpointConnectionError):
        send_v2(client(ses))
    ses.up()
    assert send_v2(client(ses))["MessageId"]
    assert ses.attempts == 4 and len(ses.accepted) == 1  # the refused one never arrived


def test_an_outage_by_hand_and_faults_only_on_sends_unless_asked(ses):
    assert requests.post(ses.base_url + "/fake/down", timeout=5).json()["down"] is True
    with pytest.raises(ClientError) as refused:
        send_v2(client(ses))
    assert error_of(refused) == ("ServiceUnavailable", 503)
    assert client(ses, "sts").get_caller_identity()["Account"] == "123456789012"  # STS is not down
    requests.post(ses.base_url + "/fake/up", timeout=5)
    ses.fault_all_requests = True
    ses.throttle_next()
    with pytest.raises(ClientError) as refused:
        client(ses, "sts").get_caller_identity()
    assert error_of(refused) == ("Throttling", 400)


@pytest.mark.slow  # moto's server as a process
def test_runs_standalone_with_the_given_key_and_stops_on_sigterm():
    command = [sys.executable, "-m", "tests.standins.ses", "--port", "0", "--verify", "privacy@example.com",
               "--key", "AKIASTANDALONE000000:standalone-secret"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            banner = process.stdout.readline()
            base_url = banner.split()[3]
            sesv2 = boto3.client("sesv2", endpoint_url=base_url, region_name="us-east-1", config=NO_RETRIES,
                                 aws_access_key_id="AKIASTANDALONE000000", aws_secret_access_key="standalone-secret")
            assert send_v2(sesv2)["MessageId"]
            assert requests.get(base_url + "/fake/stats", timeout=5).json()["accepted"] == 1
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
