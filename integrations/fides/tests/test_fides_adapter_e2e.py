"""Opt-in: real fides 2.78.2 from PyPI, untouched, sends its verification code and receipt through fidesmail.

    FIDESMAIL_FIDES_E2E=1 python -m pytest integrations/fides/tests/test_fides_adapter_e2e.py -s

It needs Python 3.12, PostgreSQL's binaries and redis-server (see the adapter's README). The first
run builds fides' venv in ~/.cache/fidesmail-e2e (several minutes); later runs reuse it.
"""

from __future__ import annotations

import os
import re
import time

import pytest
import requests
from fides_adapter_fixtures import fidesmail, mailgun  # noqa: F401
from fides_adapter_support import ADAPTER
from tests.adapter_sidecar import await_email

pytestmark = pytest.mark.skipif(
    os.environ.get("FIDESMAIL_FIDES_E2E") != "1",
    reason="opt-in: set FIDESMAIL_FIDES_E2E=1 to run real fides 2.78.2 (needs Python 3.12, PostgreSQL, Redis; "
           "see integrations/fides/README.md)")

SUBJECT = "data.subject@example.com"


def _await_record(fidesmail, reference: str, action_type: str, timeout: float = 15) -> dict:
    """fidesmail's record of the message, once accepted (the Mailgun fake may see the email before
    fidesmail has written Mailgun's answer): the adapter sent it with the privacy request id as reference."""
    from tests.support import bearer

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = requests.get(f"{fidesmail.url}/api/v1/email/messages", params={"reference": reference},
                             headers=bearer("email:read"), timeout=10).json()["items"]
        found = [item for item in items if item["action_type"] == action_type and item["status"] == "accepted"]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no accepted {action_type} record with reference {reference}")


def test_fides_sends_its_verification_code_and_receipt_through_fidesmail(tmp_path, fidesmail, mailgun, capsys):
    import fides_stack as stack
    from tests.adapter_stack import adapter_venv, host_running

    venv, built_in, adapter_seconds = adapter_venv(stack.fides_venv, ADAPTER)
    mailgun.reset()
    make = lambda db, redis_port, password, env: stack.Fides(venv, tmp_path / "fides", db, redis_port, password, env)
    with host_running(make, stack.postgres, fidesmail, capsys) as (fides, start_seconds):
        _exercise(fides, fidesmail, mailgun, capsys, built_in, adapter_seconds, start_seconds)


def _request_privacy(api, mailgun, address):
    """POST /privacy-request for one address; (the created request, its email, (s to email, s to answer))."""
    requested = time.monotonic()
    answer = requests.post(api + "/privacy-request", timeout=60, json=[{
        "policy_key": "default_access_policy", "identity": {"email": address}}])
    answered = time.monotonic()
    assert answer.status_code == 200, answer.text
    assert answer.json()["failed"] == [], answer.text
    [created] = answer.json()["succeeded"]
    assert created["status"] == "identity_unverified"
    email, arrived = await_email(mailgun, address, "subject_identity_verification", 60)
    return created, email, (arrived - requested, answered - requested)


def _exercise(fides, fidesmail, mailgun, capsys, built_in, adapter_seconds, start_seconds):
    api = fides.url
    root = {"Authorization": f"Bearer {fides.token()}"}
    # fides itself has no messaging config and no provider key:
    assert requests.get(api + "/messaging/config", headers=root, timeout=30).json()["items"] == []
    assert requests.get(api + "/id-verification/config", timeout=30).json()["valid_email_config_exists"] is True

    # The data subject's privacy request, through fides' public API (no token): fides' web server
    # queues the code for its worker, which sends it through fidesmail.
    created, email, timings = _request_privacy(api, mailgun, SUBJECT)
    assert email.domain == "mg.example.com"
    code = re.search(r"\b(\d{6})\b", email.field("text")).group(1)
    _await_record(fidesmail, created["id"], "subject_identity_verification")

    # The code works in fides, and the receipt it then queues is sent by its worker the same way.
    verified_at = time.monotonic()
    answer = requests.post(f"{api}/privacy-request/{created['id']}/verify", json={"code": code}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "pending"  # waiting for manual approval
    receipt, receipt_arrived = await_email(mailgun, SUBJECT, "privacy_request_receipt", 60)
    assert "access" in receipt.field("text")
    _await_record(fidesmail, created["id"], "privacy_request_receipt")
    assert len(mailgun.sent) == 2  # nothing else, and nothing twice
    # A second request: the steady state, with the worker's connection to fidesmail warm.
    _, _, again = _request_privacy(api, mailgun, "second.subject@example.com")
    # fides' admin UI's messaging config calls, sent to fides and to fidesmail alike (after the sends
    # above: a second Mailgun config in fidesmail would need FIDESMAIL_CONFIG_KEY for them).
    script_ms = _messaging_config_script_alike(api, root, fidesmail)

    with capsys.disabled():
        venv_note = f"built in {built_in:.1f} s" if built_in is not None else "reused from the cache"
        print(f"\nfides 2.78.2 venv: {venv_note}; adapter install {adapter_seconds:.1f} s; "
              f"web server and worker ready in {start_seconds:.1f} s")
        for label, (to_email, to_answer) in (("first", timings), ("second", again)):
            print(f"{label} privacy request -> verification email at the Mailgun fake: {to_email * 1000:.0f} ms "
                  f"(fides answered the POST after {to_answer * 1000:.0f} ms)")
        print(f"verify -> receipt (Celery worker) at the Mailgun fake: {(receipt_arrived - verified_at) * 1000:.0f} ms")
        print(f"fides' admin UI messaging config calls ({len(MESSAGING_SCRIPT)}): fides {script_ms['fides']:.0f} ms, "
              f"fidesmail {script_ms['fidesmail']:.0f} ms; the same answers")


# fides' admin UI's calls for a Mailgun config (its form sends is_eu_domain as a string), and a bad body.
MESSAGING_SCRIPT = (
    ("POST", "/messaging/config", {"service_type": "mailgun",
                                   "details": {"is_eu_domain": "false", "domain": "mg2.example.com"}}),
    ("PUT", "/messaging/config/mailgun/secret", {"mailgun_api_key": "key-admin-ui"}),
    ("GET", "/messaging/config/mailgun", None),
    ("PATCH", "/messaging/config/mailgun", {"key": "mailgun", "name": "Mailgun", "service_type": "mailgun",
                                            "details": {"is_eu_domain": "true", "api_version": "v3",
                                                        "domain": "mg2.example.com"}}),
    ("POST", "/messaging/config", {"service_type": "mailgun", "details": {"invalid": "invalid"}}),
    ("PUT", "/messaging/config/mailgun/secret", {"bad_key": "x"}),
    ("GET", "/messaging/config/nope", None),
    ("DELETE", "/messaging/config/mailgun", None),
    ("GET", "/messaging/config/mailgun", None),
)


def _messaging_config_script_alike(api, root, fidesmail) -> dict:
    """Each call of MESSAGING_SCRIPT to real fides and to fidesmail: the same status and body from both
    (contract section 16); the milliseconds each side took for all of them."""
    from tests.support import bearer

    sides = {"fides": (api, root), "fidesmail": (fidesmail.url + "/api/v1", bearer())}
    took = dict.fromkeys(sides, 0.0)
    for method, path, body in MESSAGING_SCRIPT:
        answers = {}
        for side, (base, headers) in sides.items():
            started = time.monotonic()
            answer = requests.request(method, base + path, json=body, headers=headers, timeout=30)
            took[side] += (time.monotonic() - started) * 1000
            answers[side] = (answer.status_code, answer.json() if answer.content else None)
        assert answers["fides"] == answers["fidesmail"], (method, path, answers)
    return took
