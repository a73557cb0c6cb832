"""The hook: every place fidesops sends from goes through fidesmail, whatever imported dispatch_email by name."""

from __future__ import annotations

import inspect
import sys
import textwrap

import pytest
from adapter_fixtures import adapter_env, fidesmail, fidesops, mailgun, send_token, stub_dir  # noqa: F401
from adapter_support import ADAPTER, sent_to
from tests.adapter_sidecar import run_with_pth


def test_a_verification_code_reaches_mailgun_through_fidesmail_with_no_email_config_in_fidesops(fidesops, mailgun):
    endpoints = fidesops("fidesops.ops.api.v1.endpoints.privacy_request_endpoints")
    models = fidesops("fidesops.ops.models.privacy_request")
    assert fidesops("fidesops.ops.models.email").EmailConfig.rows == []  # fidesops has no Mailgun config at all

    answer = endpoints.create_privacy_request(None, models.PrivacyRequest("pri_1"), "subject@example.com")

    assert answer == {"sent": True}
    [email] = sent_to(mailgun, "subject@example.com")
    assert email.field("o:tag") == "subject_identity_verification"
    assert "123456" in email.field("text")


@pytest.mark.parametrize("module, call", [
    ("fidesops.ops.service._verification",
     lambda m, to: m.send_verification_code_to_user(None, object(), to)),
    ("fidesops.ops.service.connectors.email_connector",
     lambda m, to: m.email_connector_erasure_send(None, object(), to, [])),
    ("fidesops.ops.service.privacy_request.request_runner_service",
     lambda m, to: m.initiate_privacy_request_completion_email(None, to, ["https://example.com/d/1"])),
])
def test_every_module_that_imported_dispatch_email_by_name_sends_through_fidesmail(fidesops, mailgun, module, call):
    imported = fidesops(module)
    assert getattr(imported.dispatch_email, "__fidesmail__", False)
    try:
        call(imported, "by-name@example.com")
    except Exception as exc:  # the erasure call has no collections: fidesmail refuses it, fidesops' way
        assert type(exc).__name__ == "EmailDispatchException"
        assert "dataset_collection_action_required" in str(exc)
        return
    assert len(sent_to(mailgun, "by-name@example.com")) == 1


def test_emails_queued_for_the_celery_worker_are_sent_through_fidesmail(fidesops, mailgun):
    endpoints = fidesops("fidesops.ops.api.v1.endpoints.privacy_request_endpoints")
    celery = sys.modules["celery"]
    pr = fidesops("fidesops.ops.models.privacy_request").PrivacyRequest("pri_celery")

    endpoints.verify_identification_code(pr, "worker@example.com")

    [email] = sent_to(mailgun, "worker@example.com")
    assert email.field("o:tag") == "privacy_request_receipt"
    assert "access" in email.field("text") and "erasure" in email.field("text")
    # The worker has no privacy request on its stack: the publisher put its id in the message headers.
    [(task_name, headers)] = celery.published
    assert task_name.endswith("email_dispatch_service.dispatch_email_task")
    assert headers["fidesmail_reference"] == "pri_celery"


def test_installed_after_fidesops_was_imported_it_still_replaces_every_copy(fidesops, mailgun, adapter_env):
    # fidesops imported first (as by a program that calls install() itself, late), then the install.
    __import__("fidesops.ops.service._verification")
    module = sys.modules["fidesops.ops.service._verification"]
    assert not getattr(module.dispatch_email, "__fidesmail__", False)

    fidesops.install()

    assert getattr(module.dispatch_email, "__fidesmail__", False)
    module.send_verification_code_to_user(None, object(), "late@example.com")
    assert len(sent_to(mailgun, "late@example.com")) == 1


def test_id_verification_config_says_email_can_be_sent(fidesops):
    endpoint = fidesops("fidesops.ops.api.v1.endpoints.identity_verification_endpoints")
    answer = endpoint.get_id_verification_config()
    assert answer.valid_email_config_exists is True
    assert type(answer).__name__ == "IdentityVerificationConfigResponse"  # still fidesops' response model


def test_patched_modules_keep_their_source_and_file(fidesops):
    module = fidesops("fidesops.ops.service.email.email_dispatch_service")
    assert "def dispatch_email_task" in inspect.getsource(module)
    assert module.__file__.endswith("email_dispatch_service.py")
    assert inspect.signature(module.dispatch_email).parameters.keys() == {
        "db", "action_type", "to_email", "email_body_params"}


def test_a_patch_that_fails_leaves_fidesops_importable(fidesops, stub_dir, caplog):
    path = stub_dir / "fidesops" / "ops" / "api" / "v1" / "endpoints" / "identity_verification_endpoints.py"
    path.write_text("SOMETHING_ELSE = 1\n")  # a fidesops release that renamed the response class

    module = fidesops("fidesops.ops.api.v1.endpoints.identity_verification_endpoints")

    assert module.SOMETHING_ELSE == 1
    assert "could not patch fidesops.ops.api.v1.endpoints.identity_verification_endpoints" in caplog.text


# --- the .pth file, in a fresh interpreter -------------------------------------------------

_SCRIPT = textwrap.dedent("""
    import site, sys
    site.addsitedir(sys.argv[1])  # what site does for site-packages at start: runs the .pth line
    from fidesops.ops.service._verification import send_verification_code_to_user
    try:
        send_verification_code_to_user(None, object(), "pth@example.com")
        print("sent")
    except BaseException as exc:
        print(type(exc).__name__, exc)
    print("adapter imported:", "fidesmail_fidesops" in sys.modules)
""")


def _run_with_pth(tmp_path, stub_dir, env):
    return run_with_pth(tmp_path, ADAPTER / "fidesmail_fidesops.pth", [stub_dir, ADAPTER / "src"], _SCRIPT, env)


def test_the_pth_file_hooks_a_fresh_interpreter_when_fidesmail_is_configured(tmp_path, stub_dir, adapter_env,
                                                                             mailgun):
    mailgun.reset()
    output = _run_with_pth(tmp_path, stub_dir, adapter_env)
    assert "sent" in output.splitlines(), output
    assert len(sent_to(mailgun, "pth@example.com")) == 1


def test_without_fidesmail_settings_the_pth_file_does_nothing(tmp_path, stub_dir, mailgun):
    mailgun.reset()
    output = _run_with_pth(tmp_path, stub_dir, {})
    # fidesops' own dispatch ran (and, with no email config of its own, refused), untouched:
    assert "EmailDispatchException No email config found." in output, output
    assert "adapter imported: False" in output
    assert sent_to(mailgun, "pth@example.com") == []


def test_url_without_token_fails_each_send_naming_the_missing_setting(tmp_path, stub_dir, fidesmail, mailgun):
    mailgun.reset()
    output = _run_with_pth(tmp_path, stub_dir, {"FIDESMAIL_URL": fidesmail.url})
    assert "EmailDispatchException" in output and "FIDESMAIL_TOKEN is not set" in output, output
    assert sent_to(mailgun, "pth@example.com") == []
