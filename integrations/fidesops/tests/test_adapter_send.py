"""Sending: each fidesops action type and its params reach Mailgun through fidesmail; refusals are fidesops'."""

from __future__ import annotations

import logging
import sys

import pytest
from adapter_fixtures import adapter_env, fidesmail, fidesops, mailgun, send_token, stub_dir  # noqa: F401
from adapter_support import free_port, sent_to


def _models(fidesops):
    email = fidesops("fidesops.ops.schemas.email.email")
    privacy = fidesops("fidesops.ops.models.privacy_request")
    return email, privacy


def _erasure_list(fidesops):
    _, privacy = _models(fidesops)
    address = fidesops("fidesops.ops.graph.config").CollectionAddress
    step = fidesops("fidesops.ops.models.policy").CurrentStep
    return [privacy.CheckpointActionRequired(
        step=step.erasure, collection=address("crm_dataset", "customers"),
        action_needed=[privacy.ManualAction(locators={"email": ["subject@example.com"]}, get=None,
                                            update={"phone": "null_rewrite"})])]


CASES = {
    # action type: (fidesops' params, text the email must show)
    "subject_identity_verification": (lambda e, f: e.SubjectIdentityVerificationBodyParams(
        verification_code="908172", verification_code_ttl_seconds=600), "908172"),
    "consent_request": (lambda e, f: e.SubjectIdentityVerificationBodyParams(
        verification_code="554433", verification_code_ttl_seconds=300), "554433"),
    "privacy_request_receipt": (lambda e, f: e.RequestReceiptBodyParams(request_types={"access", "erasure"}),
                                "erasure"),
    "privacy_request_complete_access": (lambda e, f: e.AccessRequestCompleteBodyParams(
        download_links=["https://downloads.example.com/pkg/1"]), "https://downloads.example.com/pkg/1"),
    "privacy_request_complete_deletion": (lambda e, f: None, None),
    "privacy_request_review_approve": (lambda e, f: None, None),
    "privacy_request_review_deny": (lambda e, f: e.RequestReviewDenyBodyParams(
        rejection_reason="We could not match your account."), "We could not match your account."),
    "email_erasure_fulfillment": (lambda e, f: _erasure_list(f), "customers"),
    "test_message": (lambda e, f: None, None),
}


@pytest.mark.parametrize("action", sorted(CASES))
@pytest.mark.slow
def test_each_action_type_reaches_mailgun_with_its_params(fidesops, mailgun, action):
    service = fidesops("fidesops.ops.service.email.email_dispatch_service")
    email, _ = _models(fidesops)
    build, shown = CASES[action]
    action_type = next((member for member in email.EmailActionType if member.value == action), action)

    service.dispatch_email(None, action_type, "subject@example.com", build(email, fidesops))

    [sent] = sent_to(mailgun, "subject@example.com")
    assert sent.field("o:tag") == action
    assert sent.field("subject")
    if shown:
        assert shown in sent.field("text")
    if action == "email_erasure_fulfillment":
        assert "crm_dataset" in sent.field("text") and "phone" in sent.field("text")


def test_fidesops_bare_erasure_list_as_plain_dicts_is_sent_too(fidesops, mailgun):
    """The Celery path hands over what pydantic's .dict() made: dicts, with the CollectionAddress kept."""
    service = fidesops("fidesops.ops.service.email.email_dispatch_service")
    as_dicts = [item.dict() for item in _erasure_list(fidesops)]

    service.dispatch_email(None, "email_erasure_fulfillment", "processor@example.com", as_dicts)

    [sent] = sent_to(mailgun, "processor@example.com")
    assert "crm_dataset" in sent.field("text")


def _dispatch_error(fidesops, to="subject@example.com", action="privacy_request_review_approve", params=None):
    service = fidesops("fidesops.ops.service.email.email_dispatch_service")
    exception = fidesops("fidesops.ops.common_exceptions").EmailDispatchException
    with pytest.raises(exception) as caught:
        service.dispatch_email(None, action, to, params)
    return str(caught.value)


def test_a_refusal_is_fidesops_own_exception_with_fidesmails_detail(fidesops, adapter_env, mailgun):
    fidesops.install({**adapter_env, "FIDESMAIL_CONFIG_KEY": "no_such_config"})
    message = _dispatch_error(fidesops)
    assert message == "fidesmail refused the email (404): No email config found with key no_such_config"
    assert mailgun.sent == []


def test_a_validation_refusal_names_each_field(fidesops, mailgun):
    message = _dispatch_error(fidesops, to="not an address")
    assert message.startswith("fidesmail refused the email (422): body.to: ")
    assert mailgun.sent == []


def test_mailgun_refusing_is_a_dispatch_exception_too(fidesops, mailgun):
    mailgun.fail_next(400, message="'to' parameter is not a valid address")
    message = _dispatch_error(fidesops)
    assert message.startswith("fidesmail refused the email (502): ")
    assert "not a valid address" in message


def test_no_address_is_refused_before_anything_is_sent(fidesops, mailgun):
    assert _dispatch_error(fidesops, to=None) == "No email supplied."
    assert mailgun.attempts == 0


def test_a_token_without_the_send_scope_is_refused(fidesops, adapter_env, mailgun):
    from tests.support import token_for

    fidesops.install({**adapter_env, "FIDESMAIL_TOKEN": token_for("email:read")})
    assert _dispatch_error(fidesops) == "fidesmail refused the email (403): Not Authorized for this action"
    assert mailgun.sent == []


def test_the_sidecar_down_is_a_dispatch_exception_that_shows_neither_token_nor_url(fidesops, adapter_env, caplog):
    down = f"http://127.0.0.1:{free_port()}"
    fidesops.install({**adapter_env, "FIDESMAIL_URL": down})
    with caplog.at_level(logging.INFO, logger="fidesmail_fidesops"):
        message = _dispatch_error(fidesops)
    assert message == "fidesmail cannot be reached (tried 2 times)"
    assert down in caplog.text  # the operator's log says where it looked
    assert adapter_env["FIDESMAIL_TOKEN"] not in caplog.text + message


def test_a_celery_task_delivered_twice_sends_its_email_once(fidesops, mailgun):
    service = fidesops("fidesops.ops.service.email.email_dispatch_service")
    celery = sys.modules["celery"]
    email, _ = _models(fidesops)
    kwargs = {"email_meta": {"action_type": email.EmailActionType.PRIVACY_REQUEST_REVIEW_APPROVE,
                             "body_params": None}, "to_email": "twice@example.com"}

    celery.publish(service.dispatch_email_task, kwargs, task_id="task-123", runs=2)

    assert len(sent_to(mailgun, "twice@example.com")) == 1


def test_two_calls_outside_a_task_are_two_emails(fidesops, mailgun):
    service = fidesops("fidesops.ops.service.email.email_dispatch_service")
    for _ in range(2):
        service.dispatch_email(None, "test_message", "two@example.com", None)
    assert len(sent_to(mailgun, "two@example.com")) == 2


def test_the_privacy_request_id_is_the_reference_and_sending_survives_a_fidesmail_without_it(fidesops, mailgun,
                                                                                            caplog):
    runner = fidesops("fidesops.ops.service.privacy_request.request_runner_service")
    with caplog.at_level(logging.INFO, logger="fidesmail_fidesops"):
        runner.run_privacy_request("pri_42", "ref@example.com", ["https://example.com/d"])
        runner.run_privacy_request("pri_43", "ref@example.com", ["https://example.com/d"])

    assert len(sent_to(mailgun, "ref@example.com")) == 2
    assert "reference pri_42" in caplog.text and "reference pri_43" in caplog.text
    # This fidesmail predates message records and refuses `reference`: asked once, then left out.
    assert caplog.text.count("does not accept `reference`") <= 1


@pytest.mark.parametrize("env, named", [
    ({"FIDESMAIL_URL": "fidesmail:8080"}, "FIDESMAIL_URL must be an http:// or https:// URL"),
    ({"FIDESMAIL_TOKEN": "t"}, "FIDESMAIL_URL is not set"),
    ({"FIDESMAIL_URL": "http://x", "FIDESMAIL_TOKEN": "t", "FIDESMAIL_TIMEOUT": "soon"},
     "FIDESMAIL_TIMEOUT must be a number"),
])
def test_unusable_settings_fail_each_send_naming_the_setting(fidesops, mailgun, env, named):
    fidesops.install(env)
    verification = fidesops("fidesops.ops.service._verification")
    exception = fidesops("fidesops.ops.common_exceptions").EmailDispatchException
    with pytest.raises(exception, match=named):
        verification.send_verification_code_to_user(None, object(), "subject@example.com")
    endpoint = fidesops("fidesops.ops.api.v1.endpoints.identity_verification_endpoints")
    assert endpoint.get_id_verification_config().valid_email_config_exists is False
    assert mailgun.sent == []


def test_the_sixth_verification_code_to_one_address_in_an_hour_is_refused(fidesops, mailgun):
    """The adapter's sends count towards FIDESMAIL_VERIFICATION_LIMIT (5) like any other (contract section 17)."""
    service = fidesops("fidesops.ops.service.email.email_dispatch_service")
    email, _ = _models(fidesops)
    action = next(member for member in email.EmailActionType if member.value == "subject_identity_verification")
    params = email.SubjectIdentityVerificationBodyParams(verification_code="112233", verification_code_ttl_seconds=600)
    for _ in range(5):
        service.dispatch_email(None, action, "bombed.fidesops@example.com", params)
    message = _dispatch_error(fidesops, to="bombed.fidesops@example.com", action=action, params=params)
    assert message.startswith("fidesmail refused the email (429): Too many identity-verification emails")
    assert len(sent_to(mailgun, "bombed.fidesops@example.com")) == 5
