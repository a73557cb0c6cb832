"""Amazon SES (`aws_ses`, contract section 13) through the API and boto3, against moto's server (tests/standins/ses.py).

What reaches SES (v2 SendEmail, its tags), its config and secrets by fides' names, the three ways to
credentials (the sealed keys, boto3's own chain, an assumed role through STS) and how botocore's errors
are read. The promises every provider keeps are in test_provider_guarantees.py.
"""

from __future__ import annotations

import pytest
import requests
import yaml

from fidesmail.core.email import Message
from fidesmail.providers.base import Email
from fidesmail.providers.ses.clients import SesClients
from fidesmail.providers.ses.provider import SesProvider
from fidesmail.web import auth
from tests.provider_cases import SES, URL, configure, send_headers, ses_keys
from tests.standins.ses import SesStandin
from tests.support import bearer

SEND = "/api/v1/email/send"
TO = "subject@example.com"
VERIFY = {"action_type": "subject_identity_verification", "to": TO,
          "body_params": {"verification_code": "135790", "verification_code_ttl_seconds": 600}}
MESSAGE = Message(subject="Your code", html="<p>135790</p>", text="135790", tag="subject_identity_verification")


@pytest.fixture(scope="module")
def standin():
    with SesStandin(verified=["privacy@example.com", "verified.example"]) as ses:
        yield ses


@pytest.fixture
def ses(standin, monkeypatch):
    standin.reset()
    standin.up()
    standin.fault_all_requests = False
    # boto3's chain must find nothing of this machine's: no ~/.aws, no instance metadata.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return standin


@pytest.fixture
def make_client(make_app, ses):
    def make(secrets=None, **details):
        client = make_app(SES_ENDPOINT_URL=ses.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=1,
                          MAILGUN_BACKOFF=0.01).test_client()
        configure(client, SES, ses, secrets=secrets, **details)
        return client
    return make


def send(client, **headers):
    return client.post(SEND, json=VERIFY, headers=send_headers(**headers))


def sealed_fields(tree) -> list[str]:
    return sorted(yaml.safe_load((tree / "secrets.sealed.yaml").read_text())["secrets"]["my_provider"])


def test_the_request_is_ses_v2_send_email_with_the_records_id_as_a_tag():
    provider = SesProvider(SesClients())
    keys = {"auth_method": "secret_keys", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s3cr3t"}
    request = provider.request({"aws_region": "eu-west-1", "email_from": "Privacy Team <privacy@example.com>"}, keys,
                               Email("Subject@Example.com", MESSAGE, "msg_01TEST"))
    assert request.region == "eu-west-1"
    assert request.params == {
        "FromEmailAddress": "Privacy Team <privacy@example.com>",
        "Destination": {"ToAddresses": ["Subject@Example.com"]},
        "Content": {"Simple": {"Subject": {"Data": "Your code", "Charset": "UTF-8"},
                               "Body": {"Text": {"Data": "135790", "Charset": "UTF-8"},
                                        "Html": {"Data": "<p>135790</p>", "Charset": "UTF-8"}}}},
        "EmailTags": [{"Name": "fidesmail-message-id", "Value": "msg_01TEST"},
                      {"Name": "fidesmail-action-type", "Value": "subject_identity_verification"}]}
    assert "s3cr3t" not in repr(request) and "AKIDEXAMPLE" not in repr(request) and "Subject@" not in repr(request)
    by_domain = provider.request({"aws_region": "eu-west-1", "domain": "mail.example.com"}, keys,
                                 Email("a@example.com", MESSAGE, "msg_01TEST"))
    assert by_domain.params["FromEmailAddress"] == "noreply@mail.example.com"
    accented = provider.request({"aws_region": "eu-west-1", "email_from": "Équipe Vie Privée <privacy@example.com>"},
                                keys, Email("a@example.com", MESSAGE, "msg_01TEST"))
    assert accented.params["FromEmailAddress"].startswith("=?utf-8?")  # SES asks for RFC 2047 outside ASCII


def test_a_send_reaches_ses_with_its_tags_and_answers_its_message_id(make_client, ses):
    client = make_client()
    answer = send(client)
    assert answer.status_code == 200, answer.json
    [accepted] = ses.accepted
    assert (answer.json["id"], answer.json["provider"]) == (accepted.provider_id, "aws_ses")
    assert accepted.extra["version"] == 2 and accepted.extra["tags"] == {
        "fidesmail-message-id": answer.json["message_id"], "fidesmail-action-type": "subject_identity_verification"}
    assert accepted.provider_id in [sent["id"] for sent in ses.moto_sent_messages()]  # moto itself sent it


def test_a_domain_alone_sends_from_noreply_at_it(make_client, ses):
    client = make_client()
    assert client.patch(f"{URL}/my_provider", json={"details": {"email_from": None, "domain": "verified.example"}},
                        headers=bearer()).status_code == 200
    assert send(client).status_code == 200
    assert ses.accepted[0].sender == "noreply@verified.example"


def test_details_take_fides_names_and_need_a_sender(make_client, ses):
    client = make_client()
    fides_body = {"name": "AWS SES", "service_type": "aws_ses",  # fides' own test payload, unchanged
                  "details": {"email_from": "test@test.com", "domain": "example.com", "aws_region": "us-east-1"}}
    assert client.post(URL, json=fides_body, headers=bearer()).status_code == 200
    neither = client.post(URL, json={"name": "Neither", "service_type": "aws_ses",
                                     "details": {"aws_region": "us-east-1"}}, headers=bearer())
    assert neither.status_code == 422
    assert neither.json["detail"] == [{"loc": ["body", "details"], "type": "value_error",
                                       "msg": "Either 'email_from' or 'domain' must be provided."}]
    region = client.post(URL, json={"name": "No region", "service_type": "aws_ses",
                                    "details": {"aws_region": "Virginia", "domain": "example.com"}}, headers=bearer())
    assert region.status_code == 422 and region.json["detail"][0]["loc"] == ["body", "details", "aws_region"]


def test_secrets_take_fides_names_and_rules(make_client, ses, tree):
    client = make_client()
    url = f"{URL}/my_provider/secret"
    cases = [({"aws_access_key_id": "a"}, [["body", "auth_method"]]),
             ({"auth_method": "secret_keys"}, [["body"]]),
             ({"auth_method": "nope"}, [["body", "auth_method"]]),
             ({"auth_method": "automatic", "mailgun_api_key": "k"}, [["body", "mailgun_api_key"]]),
             ({"auth_method": "automatic", "aws_assume_role_arn": "my-role"}, [["body", "aws_assume_role_arn"]])]
    for body, locs in cases:
        answer = client.put(url, json=body, headers=bearer())
        assert answer.status_code == 422 and [p["loc"] for p in answer.json["detail"]] == locs, (body, answer.json)
    keys_needed = client.put(url, json={"auth_method": "secret_keys"}, headers=bearer()).json["detail"][0]["msg"]
    assert keys_needed == ("An Access Key ID and a Secret Access Key must be provided if using the `secret_keys` "
                           "Authentication Method")
    assert sealed_fields(tree) == ["auth_method", "aws_access_key_id", "aws_secret_access_key"]
    # automatic replaces the sending fields: no old keys are left behind.
    assert client.put(url, json={"auth_method": "automatic"}, headers=bearer()).status_code == 200
    assert sealed_fields(tree) == ["auth_method"]
    assert client.get(f"{URL}/my_provider", headers=bearer()).json["secrets_set"] is True
    assert ses.secret_access_key not in (tree / "secrets.sealed.yaml").read_text()


def test_automatic_uses_boto3s_own_credential_chain(make_client, ses, monkeypatch):
    client = make_client(secrets={"auth_method": "automatic"})
    none_found = send(client)
    assert none_found.status_code == 502 and "no usable AWS credentials" in none_found.json["detail"]
    assert ses.attempts == 0  # SES was never asked
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ses.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ses.secret_access_key)
    assert send(client).status_code == 200  # found in the environment now (nothing cached while none was found)


def test_an_assumed_role_is_asked_of_sts_once_and_its_credentials_reused(make_client, ses, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", ses.base_url)  # boto3's own variable for STS' endpoint
    client = make_client(secrets={**ses_keys(ses), "aws_assume_role_arn": ses.role_arn})
    ses.fault_all_requests = True  # count STS' calls too
    assert send(client).status_code == 200 and send(client).status_code == 200
    assert ses.attempts == 3 and len(ses.accepted) == 2  # AssumeRole once, then two sends


def test_a_role_sts_refuses_is_the_key_refused_and_nothing_reaches_ses(make_client, ses, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", ses.base_url)
    client = make_client(secrets={**ses_keys(ses), "aws_assume_role_arn": ses.unassumable_role_arn})
    answer = send(client)
    assert answer.status_code == 502 and answer.json["detail"].startswith("STS AssumeRole answered 403: AccessDenied")
    assert "aws_assume_role_arn" in answer.json["detail"]
    assert ses.attempts == 0 and ses.accepted == []


def test_ses_words_keep_neither_key_nor_an_address(make_client, ses, caplog):
    client = make_client()
    ses.fail_next(400, message=f"Rejected: {ses.secret_access_key} / {ses.access_key_id} to someone@example.org")
    answer = send(client)
    assert answer.status_code == 502
    assert answer.json["detail"] == ("Amazon SES answered 400: BadRequestException: Rejected: *** / *** to "
                                     "s***@example.org")
    assert ses.secret_access_key not in caplog.text and "someone@" not in caplog.text


def test_an_unverified_sender_says_what_to_verify(make_client, ses):
    client = make_client(email_from="notices@unverified.example")
    answer = send(client)
    assert answer.status_code == 502 and "MessageRejected" in answer.json["detail"]
    assert "verify details.email_from (or details.domain) in SES" in answer.json["detail"]


def test_sending_from_a_real_server_process(server, ses, tmp_path):
    srv = server(FIDESMAIL_SES_ENDPOINT_URL=ses.base_url)
    requests.post(srv.url + URL, json=SES.config(), headers=bearer(), timeout=10).raise_for_status()
    requests.put(f"{srv.url}{URL}/my_provider/secret", json=ses_keys(ses), headers=bearer(),
                 timeout=10).raise_for_status()
    for _ in range(3):  # whichever gunicorn worker takes it, its own client (built after the fork)
        answer = requests.post(srv.url + SEND, json={**VERIFY, "config_key": "my_provider"},
                               headers=bearer(auth.SEND), timeout=30)
        assert answer.status_code == 200, answer.text
    assert len(ses.accepted) == 3
    assert ses.secret_access_key not in srv.log()


def test_a_forked_worker_builds_its_own_clients(ses):
    """gunicorn forks its workers from the master: a child must not share its parent's pooled connections."""
    import os

    from fidesmail.providers.ses.request import Auth

    clients = SesClients(endpoint_url=ses.base_url)
    auth = Auth("secret_keys", ses.access_key_id, ses.secret_access_key)
    parent = clients.get("us-east-1", auth)
    assert clients.get("us-east-1", auth) is parent  # built once, then shared
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got the parent's client, then leave at once
        try:
            os.write(write, b"shared" if clients.get("us-east-1", auth) is parent else b"own")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"own"
    os.close(read)
