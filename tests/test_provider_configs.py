"""Configs and secrets of every provider (contract sections 7 and 13): fides' bodies, the tree, the CLI.

A fides messaging config body works unchanged; a config file written by hand for each provider serves;
each config's secrets are its provider's fields only (a field of another provider is 422 from the API, a
problem for `flask check`, refused by `flask secrets seal`); a PATCH that moves a config to another
provider drops the old provider's secrets.
"""

from __future__ import annotations

import pytest
import yaml

from tests.provider_cases import URL
from tests.support import bearer

# The bodies of fides' own tests and observed requests (ethyca-fides 2.78.2), unchanged.
FIDES_BODIES = {
    "mailgun": {"key": "my_mailgun_messaging_config", "name": "mailgun", "service_type": "MAILGUN",
                "details": {"domain": "mg.example.com", "is_eu_domain": False, "api_version": "v3"}},
    "twilio_email": {"key": "tw", "name": "TW", "service_type": "twilio_email",
                     "details": {"twilio_email_from": "a@example.com"}},
    "mailchimp_transactional": {"key": "mc", "name": "MC", "service_type": "mailchimp_transactional",
                                "details": {"email_from": "a@example.com"}},
    "aws_ses": {"key": "my_aws_ses_email_config", "name": "aws_ses_email", "service_type": "aws_ses",
                "details": {"email_from": "test@test.com", "domain": "example.com", "aws_region": "us-east-1"}},
}
SECRETS = {
    "mailgun": {"mailgun_api_key": "key-1"},
    "twilio_email": {"twilio_api_key": "SG.1"},
    "mailchimp_transactional": {"mailchimp_transactional_api_key": "md-1"},
    "aws_ses": {"auth_method": "secret_keys", "aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t"},
}


@pytest.mark.parametrize("service_type", list(FIDES_BODIES))
def test_a_fides_body_works_unchanged_and_its_secrets_set_it(client, service_type):
    body = FIDES_BODIES[service_type]
    created = client.post(URL, json=body, headers=bearer())
    assert created.status_code == 200, created.json
    assert created.json["service_type"] == service_type and created.json["secrets_set"] is False
    assert created.json["details"] == body["details"]
    sealed = client.put(f"{URL}/{body['key']}/secret", json=SECRETS[service_type], headers=bearer())
    assert sealed.json == {"msg": f"Secrets updated for EmailConfig with key: {body['key']}.", "test_status": None,
                           "failure_reason": None}
    assert client.get(f"{URL}/{body['key']}", headers=bearer()).json["secrets_set"] is True


@pytest.mark.parametrize("service_type", list(FIDES_BODIES))
def test_another_providers_secret_field_is_422_and_nothing_is_sealed(client, tree, service_type):
    body = FIDES_BODIES[service_type]
    assert client.post(URL, json=body, headers=bearer()).status_code == 200
    other = next(fields for kind, fields in SECRETS.items() if kind != service_type)
    answer = client.put(f"{URL}/{body['key']}/secret", json=other, headers=bearer())
    assert answer.status_code == 422
    assert {"loc": ["body", next(iter(other))], "msg": "extra fields not permitted",
            "type": "extra_forbidden"} in answer.json["detail"]
    assert not (tree / "secrets.sealed.yaml").exists()


@pytest.mark.parametrize("service_type", list(FIDES_BODIES))
def test_a_config_file_written_by_hand_serves(client, tree, service_type):
    body = {**FIDES_BODIES[service_type], "service_type": service_type, "key": "by_hand"}
    (tree / "email" / "by_hand.yaml").write_text(yaml.safe_dump(body))
    client.post("/api/v1/reload", headers=bearer())
    served = client.get(f"{URL}/by_hand", headers=bearer())
    assert served.status_code == 200 and served.json["service_type"] == service_type


def test_moving_a_config_to_another_provider_replaces_its_details_and_drops_its_secrets(client, runner, tree):
    body = FIDES_BODIES["mailgun"]
    assert client.post(URL, json=body, headers=bearer()).status_code == 200
    assert client.put(f"{URL}/{body['key']}/secret", json=SECRETS["mailgun"], headers=bearer()).status_code == 200
    moved = client.patch(f"{URL}/{body['key']}", json={"service_type": "twilio_email",
                                                        "details": {"twilio_email_from": "a@example.com"}},
                         headers=bearer())
    assert moved.status_code == 200, moved.json
    assert moved.json["details"] == {"twilio_email_from": "a@example.com"} and moved.json["secrets_set"] is False
    assert body["key"] not in (yaml.safe_load((tree / "secrets.sealed.yaml").read_text())["secrets"] or {})
    assert runner.invoke(args=["check"]).exit_code == 0
    # Without the new provider's details it is refused, and nothing changes.
    refused = client.patch(f"{URL}/{body['key']}", json={"service_type": "aws_ses"}, headers=bearer())
    assert refused.status_code == 422 and refused.json["detail"][0]["loc"][:2] == ["body", "details"]


def test_flask_check_names_a_sealed_field_the_configs_provider_does_not_take(client, runner, tree):
    body = FIDES_BODIES["twilio_email"]
    assert client.post(URL, json=body, headers=bearer()).status_code == 200
    assert runner.invoke(args=["secrets", "seal", "tw", "twilio_api_key"], input="SG.1\n").exit_code == 0
    # Hand-edited (or merged from another branch): the config became SES' while its SendGrid key stayed.
    (tree / "email" / "tw.yaml").write_text(yaml.safe_dump({**FIDES_BODIES["aws_ses"], "key": "tw", "name": "TW"}))
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    assert "tw/twilio_api_key: not a secret field of aws_ses configs (known: auth_method, aws_access_key_id, " \
           "aws_secret_access_key, aws_assume_role_arn, callback_signing_key)" in result.output


def test_flask_secrets_seal_takes_each_providers_fields_and_checks_them(client, runner, tree):
    for body in FIDES_BODIES.values():
        assert client.post(URL, json=body, headers=bearer()).status_code == 200
    ses = FIDES_BODIES["aws_ses"]["key"]
    for field, value in (("auth_method", "secret_keys"), ("aws_access_key_id", "AKIA1"),
                         ("aws_secret_access_key", "s3cr3t")):
        result = runner.invoke(args=["secrets", "seal", ses, field], input=value + "\n")
        assert result.exit_code == 0, result.output
    assert client.get(f"{URL}/{ses}", headers=bearer()).json["secrets_set"] is True
    wrong_kind = runner.invoke(args=["secrets", "seal", "mc", "twilio_api_key"], input="SG.1\n")
    assert wrong_kind.exit_code == 1 and "mc is a mailchimp_transactional config" in wrong_kind.output
    bad_value = runner.invoke(args=["secrets", "seal", ses, "auth_method"], input="password\n")
    assert bad_value.exit_code == 1 and "auth_method: Must be one of: automatic, secret_keys." in bad_value.output
    unknown = runner.invoke(args=["secrets", "seal", "mc", "api_key"], input="x\n")
    assert unknown.exit_code == 2  # not any provider's field: click names the choices
    assert "s3cr3t" not in (tree / "secrets.sealed.yaml").read_text()
    assert runner.invoke(args=["check"]).exit_code == 0
