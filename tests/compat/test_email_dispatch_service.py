"""fidesops 1.8.2's tests/ops/service/email/email_dispatch_service_test.py, replayed over HTTP.

fidesops called `dispatch_email(db, action_type, to_email, email_body_params)` in-process and mocked
the Mailgun post; here each call is the equivalent `POST /api/v1/email/send` (contract section 6),
and the test Mailgun shows what Mailgun would have received. fidesops' `EmailDispatchException`
text is the answer's `detail`. Where the contract differs on purpose, a comment headed CONTRACT says so.
"""

from __future__ import annotations

from .conftest import (
    EMAIL_CONFIG,
    EMAIL_CREATE_OR_UPDATE,
    EMAIL_READ,
    EMAIL_SEND,
    EMAIL_SEND_SCOPE,
    FIXTURE_KEY,
    V1_URL_PREFIX,
    basic_auth,
)

VERIFICATION = {"action_type": "subject_identity_verification", "to": "test@email.com",
                "body_params": {"verification_code": "2348", "verification_code_ttl_seconds": 600}}


def dispatch_email(api_client, generate_auth_header, body=VERIFICATION):
    """fidesops' dispatch_email(...) as a send; fidesops picked its only config, so no config_key."""
    return api_client.post(V1_URL_PREFIX + EMAIL_SEND, headers=generate_auth_header([EMAIL_SEND_SCOPE]), json=body)


def test_email_dispatch_mailgun_success(api_client, generate_auth_header, email_config, mailgun, mailgun_eu):
    """Port of test_email_dispatch_mailgun_success."""
    response = dispatch_email(api_client, generate_auth_header)
    assert response.status_code == 200

    # fidesops asserted the call to its (mocked) dispatcher; here, the post Mailgun received.
    [seen] = mailgun.requests
    assert mailgun_eu.requests == []  # is_eu_domain is false: https://api.mailgun.net
    assert seen.path == "/v3/some.domain/messages"
    assert basic_auth(seen) == ("api", FIXTURE_KEY)
    assert seen.field("to") == "test@email.com"
    assert seen.field("subject") == "Your one-time code"
    assert response.json()["id"] == seen.message_id
    # CONTRACT (section 6): From is `mailgun@{domain}` (fidesops sent "<mailgun@some.domain>", the
    # same address), the message has a text part and an o:tag beside the HTML, and the HTML is
    # fidesmail's own template, so the code and the TTL in minutes are asserted, not fidesops' bytes.
    assert seen.field("from") == "mailgun@some.domain"
    assert "2348" in seen.field("html") and "10 minutes" in seen.field("html")
    assert "2348" in seen.field("text")
    assert seen.field("o:tag") == "subject_identity_verification"


def test_email_dispatch_mailgun_config_not_found(api_client, generate_auth_header, mailgun, mailgun_eu):
    """Port of test_email_dispatch_mailgun_config_not_found."""
    response = dispatch_email(api_client, generate_auth_header)

    # fidesops raised EmailDispatchException("No email config found."); over HTTP a missing config
    # is a 404 (contract section 6), with fidesops' words.
    assert response.status_code == 404
    assert response.json() == {"detail": "No email config found."}
    assert mailgun.attempts == 0 and mailgun_eu.attempts == 0


def test_email_dispatch_mailgun_config_no_secrets(api_client, generate_auth_header, mailgun, mailgun_eu):
    """Port of test_email_dispatch_mailgun_config_no_secrets."""
    created = api_client.post(V1_URL_PREFIX + EMAIL_CONFIG, headers=generate_auth_header([EMAIL_CREATE_OR_UPDATE]),
                              json={"name": "mailgun config", "key": "my_email_config", "service_type": "mailgun",
                                    "details": {"domain": "some.domain"}})
    assert created.status_code == 200

    response = dispatch_email(api_client, generate_auth_header)
    assert response.status_code == 409  # contract section 6
    assert response.json() == {"detail": "Email secrets not found for config with key: my_email_config"}
    assert mailgun.attempts == 0 and mailgun_eu.attempts == 0


def test_email_dispatch_mailgun_failed_email(api_client, generate_auth_header, email_config, mailgun, mailgun_eu):
    """Port of test_email_dispatch_mailgun_failed_email."""
    rejected = "Rejected: IP <id-address> can’t be used to send the message"
    mailgun.fail_next(403, message=rejected)

    response = dispatch_email(api_client, generate_auth_header)

    # CONTRACT (section 6): Mailgun's refusal is a 502 with its status and message in `detail`,
    # where fidesops raised "Email failed to send due to: Email failed to send with status code 403".
    assert response.status_code == 502
    assert response.json()["detail"] == f"Mailgun answered 403: {rejected}"  # and the record's message_id
    # fidesops' mock matched only https://api.mailgun.net/v3/some.domain/messages; a 403 is not retried.
    [seen] = mailgun.requests
    assert seen.path == "/v3/some.domain/messages" and seen.status == 403
    assert mailgun_eu.requests == []


def test_fidesops_email_parse_object(api_client, generate_auth_header):
    """Port of test_fidesops_email_parse_object."""
    # fidesops parsed FidesopsEmail objects in-process; fidesmail's equivalent of "this action type
    # takes these body_params" is a preview, which validates and renders without sending.
    checkpoint = {
        "step": "erasure",
        "collection": "email_dataset:test_collection",  # CollectionAddress's own string form
        "action_needed": [{"locators": {"email": "test@example.com"}, "get": None,
                           "update": {"phone": "null_rewrite"}}],
    }
    preview = V1_URL_PREFIX + "/email/preview"
    headers = generate_auth_header([EMAIL_READ])

    erasure = api_client.post(preview, headers=headers,
                              json={"action_type": "email_erasure_fulfillment", "body_params": [checkpoint]})
    assert erasure.status_code == 200, erasure.text
    assert "test_collection" in erasure.json()["text"] and "phone" in erasure.json()["text"]

    verification = api_client.post(preview, headers=headers, json={
        "action_type": "subject_identity_verification",
        "body_params": {"verification_code": "123456", "verification_code_ttl_seconds": 1000}})
    assert verification.status_code == 200, verification.text
    assert "123456" in verification.json()["text"]
