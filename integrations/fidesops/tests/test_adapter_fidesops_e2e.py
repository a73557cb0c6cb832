"""Opt-in: real fidesops 1.8.2 from PyPI, untouched, sends its verification code through fidesmail.

    FIDESMAIL_FIDESOPS_E2E=1 python -m pytest integrations/fidesops/tests/test_adapter_fidesops_e2e.py -s

It needs Python 3.9, PostgreSQL's binaries and redis-server (see the adapter's README). The first run
builds fidesops' venv in ~/.cache/fidesmail-e2e (about a minute); later runs reuse it.
"""

from __future__ import annotations

import datetime
import os
import re
import time

import pytest
import requests
from adapter_fixtures import fidesmail, mailgun  # noqa: F401
from adapter_support import ADAPTER
from tests.adapter_sidecar import await_email

pytestmark = pytest.mark.skipif(
    os.environ.get("FIDESMAIL_FIDESOPS_E2E") != "1",
    reason="opt-in: set FIDESMAIL_FIDESOPS_E2E=1 to run real fidesops 1.8.2 (needs Python 3.9, PostgreSQL, "
           "Redis; see integrations/fidesops/README.md)")

SUBJECT = "data.subject@example.com"


def _await_log(path, *parts: str, timeout: float = 15) -> None:
    """The adapter logs a send after Mailgun's answer reached it: wait for the line, not the email."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text(errors="replace").splitlines()
        if any(all(part in line for part in parts) for line in lines):
            return
        time.sleep(0.05)
    raise AssertionError(f"no line with {parts} in {path.name}")


def test_fidesops_sends_its_verification_code_and_receipt_through_fidesmail(tmp_path, fidesmail, mailgun, capsys):
    import fidesops_stack as stack
    from tests.adapter_stack import adapter_venv, host_running

    venv, built_in, adapter_seconds = adapter_venv(stack.fidesops_venv, ADAPTER)
    mailgun.reset()
    make = lambda db, redis_port, password, env: stack.Fidesops(venv, tmp_path / "fidesops", db, redis_port, password,
                                                                env)
    with host_running(make, stack.postgres, fidesmail, capsys) as (fidesops, _):
        _exercise(fidesops, mailgun, capsys, built_in, adapter_seconds)


def _request_privacy(api, mailgun, address):
    """POST /privacy-request for one address; (the created request, its email, (s to email, s to answer))."""
    requested = time.monotonic()
    answer = requests.post(api + "/privacy-request", timeout=60, json=[{
        "requested_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "policy_key": "e2e_access", "identity": {"email": address}}])
    answered = time.monotonic()
    assert answer.status_code == 200, answer.text
    assert answer.json()["failed"] == [], answer.text
    [created] = answer.json()["succeeded"]
    assert created["status"] == "identity_unverified"
    email, arrived = await_email(mailgun, address, "subject_identity_verification", 30)
    return created, email, (arrived - requested, answered - requested)


def _exercise(fidesops, mailgun, capsys, built_in, adapter_seconds):
    api = fidesops.url
    root = {"Authorization": f"Bearer {fidesops.token()}"}
    # fidesops itself has no email config and no Mailgun key:
    assert requests.get(api + "/email/config", headers=root, timeout=30).json()["items"] == []
    admin = {"Authorization": "Bearer " + fidesops.token(
        ["storage:create_or_update", "policy:create_or_update", "rule:create_or_update"])}
    assert requests.get(api + "/id-verification/config", timeout=30).json() == {
        "identity_verification_required": True, "valid_email_config_exists": True}
    # A policy with one access rule (so the receipt has a request type); access rules need storage.
    for path, body in [
        ("/storage/config", [{"name": "local", "key": "local_storage", "type": "local", "format": "json",
                              "details": {"naming": "request_id"}}]),
        ("/policy", [{"name": "e2e access", "key": "e2e_access"}]),
        ("/policy/e2e_access/rule", [{"name": "access rule", "key": "access_rule", "action_type": "access",
                                      "storage_destination_key": "local_storage"}]),
    ]:
        answer = requests.patch(api + path, json=body, headers=admin, timeout=30)
        assert answer.ok and not answer.json().get("failed"), (path, answer.text)

    # The data subject's privacy request, through fidesops' public API (no token):
    created, email, timings = _request_privacy(api, mailgun, SUBJECT)
    assert email.domain == "mg.example.com"
    code = re.search(r"\b(\d{6})\b", email.field("text")).group(1)

    # The code works in fidesops, and the receipt it then queues is sent by its Celery worker.
    verified_at = time.monotonic()
    answer = requests.post(f"{api}/privacy-request/{created['id']}/verify", json={"code": code}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "pending"  # waiting for manual approval
    receipt, receipt_arrived = await_email(mailgun, SUBJECT, "privacy_request_receipt", 60)
    assert "access" in receipt.field("text")
    # The worker had no privacy request of its own: the id came in the task message's headers. The
    # message named is fidesmail's record (its Location), not Mailgun's id.
    _await_log(fidesops.worker_log, "Email privacy_request_receipt sent through fidesmail (message msg_",
               f"reference {created['id']})")
    assert len(mailgun.sent) == 2  # nothing else, and nothing twice
    # A second request: the steady state, with the web server's connection to fidesmail warm.
    _, _, again = _request_privacy(api, mailgun, "second.subject@example.com")

    with capsys.disabled():
        venv_note = f"built in {built_in:.1f} s" if built_in is not None else "reused from the cache"
        print(f"\nfidesops 1.8.2 venv: {venv_note}; adapter install {adapter_seconds:.1f} s")
        for label, (to_email, to_answer) in (("first", timings), ("second", again)):
            print(f"{label} privacy request -> verification email at the Mailgun fake: {to_email * 1000:.0f} ms "
                  f"(fidesops answered the POST after {to_answer * 1000:.0f} ms)")
        print(f"verify -> receipt (Celery worker) at the Mailgun fake: {(receipt_arrived - verified_at) * 1000:.0f} ms")
