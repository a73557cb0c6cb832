"""Sending: each fides action type, its params, its reference and its key reach fidesmail; refusals are fides'."""

from __future__ import annotations

import logging
import sys

import pytest
import requests
from fides_adapter_fixtures import (  # noqa: F401
    adapter_env,
    fides,
    fidesmail,
    mailgun,
    recorder,
    send_token,
    stub_dir,
)
from fides_adapter_support import free_port, sent_to

SUBJECT = "subject@example.com"
SERVICE = "fides.api.service.messaging.message_dispatch_service"


def _schemas(fides):
    return fides("fides.api.schemas.messaging.messaging")


# action type: (fides' params from its schema module, the body_params fidesmail must get, text the email shows)
CASES = {
    "subject_identity_verification": (
        lambda m: m.SubjectIdentityVerificationBodyParams(verification_code="908172",
                                                          verification_code_ttl_seconds=600),
        {"verification_code": "908172", "verification_code_ttl_seconds": 600}, "908172"),
    "consent_request": (
        lambda m: m.SubjectIdentityVerificationBodyParams(verification_code="554433",
                                                          verification_code_ttl_seconds=300),
        {"verification_code": "554433", "verification_code_ttl_seconds": 300}, "554433"),
    "privacy_request_receipt": (
        lambda m: m.RequestReceiptBodyParams(request_types=["erasure", "access"]),
        {"request_types": ["access", "erasure"]}, "erasure"),
    "privacy_request_complete_access": (
        lambda m: m.AccessRequestCompleteBodyParams(download_links=["https://downloads.example.com/pkg/1"],
                                                    subject_request_download_time_in_days=30.0),
        {"download_links": ["https://downloads.example.com/pkg/1"], "subject_request_download_time_in_days": 30},
        "will expire in 30 days"),
    "privacy_request_complete_deletion": (lambda m: None, {}, None),
    "privacy_request_complete_consent": (lambda m: None, {}, None),
    "privacy_request_review_approve": (lambda m: None, {}, None),
    "privacy_request_review_deny": (
        lambda m: m.RequestReviewDenyBodyParams(rejection_reason="We could not match your account."),
        {"rejection_reason": "We could not match your account."}, "We could not match your account."),
    "test_message": (lambda m: None, {}, None),
    "message_erasure_fulfillment": (
        lambda m: m.ErasureRequestBodyParams(controller="Example Inc.", third_party_vendor_name="Acme CRM",
                                             identities=["a@example.com", "b@example.com"]),
        {"controller": "Example Inc.", "third_party_vendor_name": "Acme CRM",
         "identities": ["a@example.com", "b@example.com"]}, "Acme CRM"),
    "consent_request_email_fulfillment": (
        lambda m: m.ConsentEmailFulfillmentBodyParams(
            controller="Example Inc.", third_party_vendor_name="Acme Ads", required_identities=["email"],
            requested_changes=[m.ConsentPreferencesByUser(
                identities={"email": "a@example.com"}, consent_preferences=[],
                privacy_preferences=[{"preference": "opt_out", "privacy_notice_history": {"name": "Advertising"}}])]),
        {"controller": "Example Inc.", "third_party_vendor_name": "Acme Ads", "required_identities": ["email"],
         "requested_changes": [{"identities": {"email": "a@example.com"}, "consent_preferences": [],
                                "privacy_preferences": [{"preference": "opt_out",
                                                         "privacy_notice_history": {"name": "Advertising"}}]}]},
        "Acme Ads"),
    "privacy_request_error_notification": (
        lambda m: m.ErrorNotificationBodyParams(unsent_errors=3), {"unsent_errors": 3}, "3"),
    "user_invite": (
        lambda m: m.UserInviteBodyParams(username="ana", invite_code="inv-123"),
        {"username": "ana", "invite_code": "inv-123", "admin_ui_url": "https://admin.example.com"}, "inv-123"),
    "external_user_welcome": (
        lambda m: m.ExternalUserWelcomeBodyParams(username="vendor1", first_name="Ana", last_name=None,
                                                  privacy_center_url="https://privacy.example.com",
                                                  access_token="tok-1", org_name="Example Inc."),
        {"username": "vendor1", "first_name": "Ana", "last_name": None,
         "privacy_center_url": "https://privacy.example.com", "access_token": "tok-1", "org_name": "Example Inc."},
        "Example Inc."),
    "manual_task_digest": (
        lambda m: m.ManualTaskDigestBodyParams(vendor_contact_name="Bo", organization_name="Example Inc.",
                                               portal_url="https://privacy.example.com/tasks", imminent_task_count=1,
                                               upcoming_task_count=2, total_task_count=3, company_logo_url=None),
        {"vendor_contact_name": "Bo", "organization_name": "Example Inc.",
         "portal_url": "https://privacy.example.com/tasks", "imminent_task_count": 1, "upcoming_task_count": 2,
         "total_task_count": 3, "company_logo_url": None}, "Example Inc."),
}


def _dispatch(fides, action, params=None, to=SUBJECT, service_type="mailgun", **kwargs):
    service = fides(SERVICE)
    schemas = _schemas(fides)
    identity = fides("fides.api.schemas.redis_cache").Identity(email=to)
    service.dispatch_message(None, schemas.MessagingActionType(action), to_identity=identity,
                             service_type=service_type, message_body_params=params, **kwargs)


@pytest.mark.slow
def test_the_cases_cover_every_fides_action_type(fides):
    assert set(CASES) == {member.value for member in _schemas(fides).MessagingActionType}
    assert len(CASES) == 15  # fides 2.78.2's MessagingActionType


@pytest.mark.parametrize("action", sorted(CASES))
def test_each_fides_action_type_reaches_fidesmail_with_its_params(fides, recorder, mailgun, action):
    build, expected, shown = CASES[action]
    _dispatch(fides, action, build(_schemas(fides)))

    [sent] = recorder.sent
    assert sent == {"action_type": action, "to": SUBJECT, "body_params": expected}
    [email] = sent_to(mailgun, SUBJECT)
    assert email.field("o:tag") == action
    if shown:
        assert shown in email.field("text")


def test_fides_default_wording_sends_no_override_and_a_customised_template_is_not_lost(fides, recorder, mailgun):
    templates = fides("fides.api.models.messaging_template")
    schemas = _schemas(fides)
    deny = schemas.RequestReviewDenyBodyParams(rejection_reason="No account found")
    _dispatch(fides, "privacy_request_review_deny", deny)  # fides' default template: fidesmail's own wording
    assert "subject_override" not in recorder.sent[0] and "body_override" not in recorder.sent[0]

    templates.MessagingTemplate.stored.append(templates.MessagingTemplate("privacy_request_review_deny", {
        "subject": "About your request", "body": "We are sorry: __DENIAL_REASON__. Write to privacy@example.com."}))
    _dispatch(fides, "privacy_request_review_deny", deny)
    # Rendered by fides' own _build_email, so every __VARIABLE__ means what it means in fides.
    assert recorder.sent[1]["subject_override"] == "About your request"
    assert recorder.sent[1]["body_override"] == "We are sorry: No account found. Write to privacy@example.com."
    assert recorder.sent[1]["body_params"] == {"rejection_reason": "No account found"}
    email = sent_to(mailgun, SUBJECT)[-1]
    assert email.field("subject") == "About your request"
    assert email.field("text") == "We are sorry: No account found. Write to privacy@example.com."


def test_a_customised_digest_body_is_its_introduction(fides, recorder, mailgun):
    templates = fides("fides.api.models.messaging_template")
    templates.MessagingTemplate.stored.append(templates.MessagingTemplate("manual_task_digest", {
        "subject": "Weekly DSR Summary from __ORGANIZATION_NAME__", "body": "Hello from __ORGANIZATION_NAME__!"}))
    _dispatch(fides, "manual_task_digest", CASES["manual_task_digest"][0](_schemas(fides)))
    assert recorder.sent[0]["body_override"] == "Hello from Example Inc.!"
    assert "subject_override" not in recorder.sent[0]  # the subject is still fides' default
    text = sent_to(mailgun, SUBJECT)[-1].field("text")
    assert text.startswith("Hi Bo,\n\nHello from Example Inc.!\n") and "Tasks Due Soon" in text


def test_the_subject_a_caller_sets_travels_as_subject_override(fides, recorder, mailgun):
    connector = fides("fides.api.service.connectors.base_erasure_email_connector")
    connector.send_single_erasure_email(None, "processor@example.com", "Acme CRM", ["a@example.com"],
                                        test_mode=True)
    subject = "Test notification of user erasure requests from Example Inc."
    assert recorder.sent[0]["subject_override"] == subject
    assert sent_to(mailgun, "processor@example.com")[-1].field("subject") == subject


def test_property_specific_messaging_without_an_enabled_template_sends_nothing(fides, recorder, mailgun):
    fides("fides.config.config_proxy").SETTINGS["notifications"]["enable_property_specific_messaging"] = True
    try:
        _dispatch(fides, "privacy_request_review_approve", property_id="prop_1")
    finally:
        fides("fides.config.config_proxy").SETTINGS["notifications"]["enable_property_specific_messaging"] = False
    assert recorder.sent == [] and mailgun.sent == []


def test_sms_stays_fides_own(fides, recorder):
    service = fides(SERVICE)
    messaging = fides("fides.api.models.messaging")
    messaging.MessagingConfig.rows[:] = [messaging.MessagingConfig("twilio_sms", "twilio_text", {"sid": "x"})]
    try:
        identity = fides("fides.api.schemas.redis_cache").Identity(phone_number="+15555550100")
        service.dispatch_message(None, _schemas(fides).MessagingActionType.TEST_MESSAGE, to_identity=identity,
                                 service_type="twilio_text")
    finally:
        messaging.MessagingConfig.rows[:] = []
    assert service.SMS_SENT[-1][0] == "+15555550100"
    assert recorder.requests == []


def _error(fides, **kwargs):
    exception = fides("fides.api.common_exceptions").MessageDispatchException
    with pytest.raises(exception) as caught:
        _dispatch(fides, kwargs.pop("action", "privacy_request_review_approve"), **kwargs)
    return caught.value


def test_a_refusal_is_fides_own_exception_with_fidesmails_detail(fides, adapter_env, mailgun):
    fides.install({**adapter_env, "FIDESMAIL_CONFIG_KEY": "no_such_config"})
    assert str(_error(fides)) == "fidesmail refused the email (404): No email config found with key no_such_config"
    assert mailgun.sent == []


def test_a_validation_refusal_names_each_field(fides, mailgun):
    assert str(_error(fides, to="not an address")).startswith("fidesmail refused the email (422): body.to: ")
    assert mailgun.sent == []


def test_no_address_is_refused_before_anything_is_sent(fides, recorder):
    assert str(_error(fides, to=None)) == "No email identity supplied."
    assert recorder.requests == []


def test_a_token_without_the_send_scope_is_refused(fides, adapter_env, mailgun):
    from tests.support import token_for

    fides.install({**adapter_env, "FIDESMAIL_TOKEN": token_for("email:read")})
    assert str(_error(fides)) == "fidesmail refused the email (403): Not Authorized for this action"
    assert mailgun.sent == []


def test_fidesmail_down_is_a_dispatch_exception_fides_task_retries(fides, adapter_env, caplog):
    down = f"http://127.0.0.1:{free_port()}"
    fides.install({**adapter_env, "FIDESMAIL_URL": down})
    with caplog.at_level(logging.INFO, logger="fidesmail_fides"):
        error = _error(fides)
    assert str(error) == "fidesmail cannot be reached (tried 2 times)"
    # dispatch_message_task has autoretry_for=(Timeout, RequestException): this one it retries.
    task = fides(SERVICE).dispatch_message_task
    assert isinstance(error, task.autoretry_for)
    assert down in caplog.text  # the operator's log says where it looked
    assert adapter_env["FIDESMAIL_TOKEN"] not in caplog.text + str(error)


def test_a_refusal_is_not_retried_by_fides_task(fides, adapter_env):
    fides.install({**adapter_env, "FIDESMAIL_CONFIG_KEY": "no_such_config"})
    assert not isinstance(_error(fides), fides(SERVICE).dispatch_message_task.autoretry_for)


def test_a_redirect_is_not_followed(fides, recorder, mailgun):
    recorder.answer_next(307, headers={"Location": recorder.url + "/elsewhere"})
    assert str(_error(fides)).startswith("fidesmail refused the email (307): fidesmail answered with a redirect")
    assert [r["path"] for r in recorder.requests] == ["/api/v1/email/send"]  # nothing re-sent to /elsewhere
    assert mailgun.sent == []


@pytest.mark.parametrize("body", [b"{}", b"OK", b'{"id": "<1@mg>", "status": "accepted"}'])
def test_an_answer_without_message_id_is_a_failure(fides, recorder, body):
    recorder.answer_next(200, body, {"Content-Type": "application/json"})
    assert "names no message_id" in str(_error(fides))


def test_proxy_settings_of_the_environment_are_not_used(fides, recorder, mailgun, monkeypatch):
    with RecordingProxyAsHttpProxy() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        _dispatch(fides, "test_message")
        assert proxy.requests == []  # the bearer token never went to the proxy
    assert len(sent_to(mailgun, SUBJECT)) == 1


class RecordingProxyAsHttpProxy:
    """An HTTP proxy that records what reaches it and answers 502 (nothing should reach it)."""

    def __enter__(self):
        from recording_proxy import RecordingProxy

        self._proxy = RecordingProxy("http://127.0.0.1:9")
        self._proxy.__enter__()
        for _ in range(10):
            self._proxy.answer_next(502, b"proxy")
        self.url, self.requests = self._proxy.url, self._proxy.requests
        return self

    def __exit__(self, *exc):
        self._proxy.__exit__(*exc)


def test_a_celery_task_delivered_twice_sends_its_email_once(fides, mailgun):
    service = fides(SERVICE)
    celery = sys.modules["celery"]
    kwargs = {"message_meta": {"action_type": "privacy_request_review_approve", "body_params": None},
              "service_type": "mailgun", "to_identity": {"email": "twice@example.com"}, "property_id": None}
    celery.publish(service.dispatch_message_task, kwargs, task_id="task-123", runs=2)
    assert len(sent_to(mailgun, "twice@example.com")) == 1


def test_two_calls_outside_a_task_are_two_emails(fides, mailgun, recorder):
    for _ in range(2):
        _dispatch(fides, "test_message", to="two@example.com")
    assert len(sent_to(mailgun, "two@example.com")) == 2
    keys = [r["headers"]["Idempotency-Key"] for r in recorder.requests]
    assert len(set(keys)) == 2 and all(key.startswith("fides-") for key in keys)


def test_the_privacy_request_id_is_the_reference(fides, recorder, mailgun, fidesmail):
    runner = fides("fides.api.service.privacy_request.request_runner_service")
    runner.initiate_privacy_request_completion_email(None, ["https://example.com/d"], {"email": "ref@example.com"},
                                                     None, "pri_42")
    assert recorder.sent[0]["reference"] == "pri_42"
    from tests.support import bearer

    records = requests.get(fidesmail.url + "/api/v1/email/messages?reference=pri_42", headers=bearer(),
                           timeout=10).json()
    assert records["total"] == 1 and records["items"][0]["action_type"] == "privacy_request_complete_access"


@pytest.mark.parametrize("env, named", [
    ({"FIDESMAIL_URL": "fidesmail:8080"}, "FIDESMAIL_URL must be an http:// or https:// URL"),
    ({"FIDESMAIL_TOKEN": "t"}, "FIDESMAIL_URL is not set"),
    ({"FIDESMAIL_URL": "http://user:pw@fidesmail:8080", "FIDESMAIL_TOKEN": "t"}, "must not hold a user or password"),
    ({"FIDESMAIL_URL": "http://x", "FIDESMAIL_TOKEN": "t", "FIDESMAIL_TIMEOUT": "soon"},
     "FIDESMAIL_TIMEOUT must be a number"),
    ({"FIDESMAIL_URL": "https://x", "FIDESMAIL_TOKEN": "t", "FIDESMAIL_CA_BUNDLE": "/no/such/ca.pem"},
     "FIDESMAIL_CA_BUNDLE names no file"),
])
def test_unusable_settings_fail_each_send_naming_the_setting(fides, recorder, env, named):
    fides.install(env)
    messaging = fides("fides.service.messaging.messaging_service")
    exception = fides("fides.api.common_exceptions").MessageDispatchException
    request = fides("fides.api.models.privacy_request").PrivacyRequest("pri_1")
    identity = fides("fides.api.schemas.redis_cache").Identity(email=SUBJECT)
    with pytest.raises(exception, match=named):
        messaging.MessagingService().send_verification_code(request, identity, None)
    endpoint = fides("fides.api.api.v1.endpoints.identity_verification_endpoints")
    assert endpoint.get_id_verification_config().valid_email_config_exists is False
    assert recorder.requests == []


def test_the_sixth_verification_code_to_one_address_in_an_hour_is_refused(fides, mailgun):
    """The adapter's sends count towards FIDESMAIL_VERIFICATION_LIMIT (5) like any other (contract section 17)."""
    params = _schemas(fides).SubjectIdentityVerificationBodyParams(verification_code="112233",
                                                                   verification_code_ttl_seconds=600)
    for _ in range(5):
        _dispatch(fides, "subject_identity_verification", params, to="bombed.fides@example.com")
    error = _error(fides, action="subject_identity_verification", params=params, to="bombed.fides@example.com")
    assert str(error).startswith("fidesmail refused the email (429): Too many identity-verification emails")
    assert len(sent_to(mailgun, "bombed.fides@example.com")) == 5
