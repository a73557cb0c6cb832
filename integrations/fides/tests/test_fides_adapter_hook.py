"""The hook: every place fides sends email from goes through fidesmail, whatever imported dispatch_message by name."""

from __future__ import annotations

import inspect
import sys
import textwrap

import pytest
from fides_adapter_fixtures import (  # noqa: F401
    adapter_env,
    fides,
    fidesmail,
    mailgun,
    recorder,
    send_token,
    stub_dir,
)
from fides_adapter_support import ADAPTER, sent_to
from tests.adapter_sidecar import run_with_pth

SERVICE = "fides.api.service.messaging.message_dispatch_service"


def _identity(fides, **fields):
    return fides("fides.api.schemas.redis_cache").Identity(**fields)


def test_a_verification_code_goes_out_through_the_worker_with_no_messaging_config_in_fides(fides, mailgun,
                                                                                          recorder):
    messaging = fides("fides.service.messaging.messaging_service")
    request = fides("fides.api.models.privacy_request").PrivacyRequest("pri_1")
    assert fides("fides.api.models.messaging").MessagingConfig.rows == []  # fides has no messaging config at all
    celery = sys.modules["celery"]

    code = messaging.MessagingService().send_verification_code(request, _identity(fides, email="s@example.com"), None)

    [email] = sent_to(mailgun, "s@example.com")
    assert email.field("o:tag") == "subject_identity_verification"
    assert code in email.field("text") and request.code == code
    # The worker has no privacy request on its stack: the publisher put its id in the message headers.
    [(task_name, headers)] = celery.published
    assert task_name == SERVICE + ".dispatch_message_task"
    assert headers["fidesmail_reference"] == "pri_1"
    assert recorder.sent[0]["reference"] == "pri_1"
    assert recorder.requests[0]["headers"]["Idempotency-Key"].startswith("fides-")


def test_the_receipt_queued_for_the_worker_is_sent_with_its_request_id(fides, mailgun, recorder):
    messaging = fides("fides.service.messaging.messaging_service")
    request = fides("fides.api.models.privacy_request").PrivacyRequest("pri_2")
    messaging.MessagingService().send_privacy_request_receipt(_identity(fides, email="r@example.com"), request,
                                                              {"erasure", "access"})
    [email] = sent_to(mailgun, "r@example.com")
    assert email.field("o:tag") == "privacy_request_receipt"
    assert recorder.sent[0]["reference"] == "pri_2"
    assert recorder.sent[0]["body_params"] == {"request_types": ["access", "erasure"]}


@pytest.mark.parametrize("module", [
    "fides.api.service.connectors.base_erasure_email_connector",
    "fides.api.service.privacy_request.request_runner_service",
    "fides.api.api.v1.endpoints.messaging_endpoints",
])
def test_every_module_that_imported_dispatch_message_by_name_gets_the_replacement(fides, module):
    imported = fides(module)
    assert getattr(imported.dispatch_message, "__fidesmail__", False)


def test_the_email_connectors_find_an_email_service_with_none_configured_in_fides(fides):
    connector = fides("fides.api.service.connectors.base_erasure_email_connector")
    service = fides(SERVICE)
    assert connector.get_email_messaging_config_service_type is service.get_email_messaging_config_service_type
    assert service.get_email_messaging_config_service_type(db=None) == "mailgun"


def test_the_test_endpoint_sends_a_test_message_through_fidesmail(fides, mailgun):
    endpoints = fides("fides.api.api.v1.endpoints.messaging_endpoints")
    messaging = fides("fides.api.models.messaging")
    config = messaging.MessagingConfig("mailgun_config", "mailgun", {"mailgun_api_key": "unused"})
    messaging.MessagingConfig.rows[:] = [config]
    try:
        assert endpoints.send_test_message("mailgun", email="admin@example.com") == (
            200, {"details": "Test message successfully sent"})
        assert config.last_test_succeeded is True
        status, body = endpoints.send_test_message("mailgun", email="not an address")
        assert status == 400 and body["detail"].startswith(
            "There was an error sending the test message: fidesmail refused the email (422): body.to: ")
        assert config.last_test_succeeded is False
    finally:
        messaging.MessagingConfig.rows[:] = []
    [email] = sent_to(mailgun, "admin@example.com")
    assert email.field("o:tag") == "test_message"


def test_the_sms_check_of_fides_own_config_is_unchanged(fides):
    messaging = fides("fides.api.models.messaging")
    exception = fides("fides.api.common_exceptions").MessageDispatchException
    assert messaging.MessagingConfig.get_configuration(db=None, service_type="mailgun") is None
    with pytest.raises(exception, match="No messaging config found for service_type twilio_text."):
        messaging.MessagingConfig.get_configuration(db=None, service_type="twilio_text")


def test_installed_after_fides_was_imported_it_still_replaces_every_copy(fides, mailgun):
    __import__("fides.api.service.privacy_request.request_runner_service")
    module = sys.modules["fides.api.service.privacy_request.request_runner_service"]
    assert not getattr(module.dispatch_message, "__fidesmail__", False)

    fides.install()

    assert getattr(module.dispatch_message, "__fidesmail__", False)
    module.initiate_privacy_request_completion_email(None, ["https://example.com/d"], {"email": "late@example.com"},
                                                     None, "pri_late")
    assert len(sent_to(mailgun, "late@example.com")) == 1


def test_id_verification_config_says_email_can_be_sent(fides):
    endpoint = fides("fides.api.api.v1.endpoints.identity_verification_endpoints")
    answer = endpoint.get_id_verification_config()
    assert answer.valid_email_config_exists is True
    assert type(answer).__name__ == "IdentityVerificationConfigResponse"  # still fides' response model


def test_patched_modules_keep_their_source_and_signature(fides):
    module = fides(SERVICE)
    assert "def dispatch_message_task" in inspect.getsource(module)
    assert module.__file__.endswith("message_dispatch_service.py")
    assert list(inspect.signature(module.dispatch_message).parameters) == [
        "db", "action_type", "to_identity", "service_type", "message_body_params", "subject_override", "property_id"]


def test_a_patch_that_fails_leaves_fides_importable(fides, stub_dir, caplog):
    path = stub_dir / "fides" / "api" / "api" / "v1" / "endpoints" / "identity_verification_endpoints.py"
    path.write_text("SOMETHING_ELSE = 1\n")  # a fides release that renamed the response class

    module = fides("fides.api.api.v1.endpoints.identity_verification_endpoints")

    assert module.SOMETHING_ELSE == 1
    assert "could not patch fides.api.api.v1.endpoints.identity_verification_endpoints" in caplog.text


# --- the .pth file, in a fresh interpreter -------------------------------------------------

_SCRIPT = textwrap.dedent("""
    import site, sys
    site.addsitedir(sys.argv[1])  # what site does for site-packages at start: runs the .pth line
    from fides.api.models.privacy_request import PrivacyRequest
    from fides.api.schemas.redis_cache import Identity
    from fides.service.messaging.messaging_service import MessagingService
    try:
        MessagingService().send_verification_code(PrivacyRequest("pri_pth"), Identity(email="pth@example.com"), None)
        print("sent")
    except BaseException as exc:
        print(type(exc).__name__, exc)
    print("adapter imported:", "fidesmail_fides" in sys.modules)
""")


def _run_with_pth(tmp_path, stub_dir, env):
    return run_with_pth(tmp_path, ADAPTER / "fidesmail_fides.pth", [stub_dir, ADAPTER / "src"], _SCRIPT, env)


def test_the_pth_file_hooks_a_fresh_interpreter_when_fidesmail_is_configured(tmp_path, stub_dir, adapter_env,
                                                                             mailgun):
    mailgun.reset()
    output = _run_with_pth(tmp_path, stub_dir, adapter_env)
    assert "sent" in output.splitlines(), output
    assert len(sent_to(mailgun, "pth@example.com")) == 1


def test_without_fidesmail_settings_the_pth_file_does_nothing(tmp_path, stub_dir, mailgun):
    mailgun.reset()
    output = _run_with_pth(tmp_path, stub_dir, {})
    # fides' own check ran (and, with no messaging config of its own, refused), untouched:
    assert "MessageDispatchException No notification service type configured." in output, output
    assert "adapter imported: False" in output
    assert sent_to(mailgun, "pth@example.com") == []


def test_url_without_token_fails_each_send_naming_the_missing_setting(tmp_path, stub_dir, fidesmail, mailgun):
    mailgun.reset()
    output = _run_with_pth(tmp_path, stub_dir, {"FIDESMAIL_URL": fidesmail.url})
    assert "MessageDispatchException" in output and "FIDESMAIL_TOKEN is not set" in output, output
    assert sent_to(mailgun, "pth@example.com") == []
