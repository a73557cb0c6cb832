"""What a synchronous send (no Prefer) may post again, through HTTP against the test Mailgun (contract 6).

attempt.py alone decides what may be sent again, for this path and the outbox alike: a connection
reset after the request went out may have left the message with Mailgun (not retried, 504); a 420
naming a moment beyond the 30 s a caller is kept waiting is not waited for (502 at once).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import bearer, configure_mailgun

KEY = "key-" + "5ca1ab1e" * 4
SEND = "/api/v1/email/send"
BODY = {"action_type": "privacy_request_complete_deletion", "to": "subject@example.com"}


@pytest.fixture
def us():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def client(make_app, us):
    app = make_app(MAILGUN_BASE_URL=us.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=3, MAILGUN_BACKOFF=0.01)
    client = app.test_client()
    configure_mailgun(client, KEY)
    return client


def send(client):
    return client.post(SEND, json=BODY, headers=bearer(auth.SEND))


def test_a_connection_reset_after_the_request_was_sent_is_not_retried(client, us):
    us.reset_next(times=4)
    answer = send(client)
    assert answer.status_code == 504 and "may still be sent" in answer.json["detail"]
    assert us.attempts == 1
    got = client.get(answer.headers["Location"], headers=bearer(auth.READ)).json
    assert got["status"] == "unknown" and [a["outcome"] for a in got["attempts"]] == ["unknown"]


@pytest.mark.parametrize("written", [lambda at: at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                                     lambda at: format_datetime(at, usegmt=True)], ids=["iso", "http-date"])
def test_a_420_whose_date_lies_beyond_the_budget_is_not_waited_for(client, us, written):
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    us.fail_next(420, message=f"Domain mg.example.com is not allowed to send: try again after {written(later)}")
    answer = send(client)
    assert answer.status_code == 502 and "Mailgun answered 420" in answer.json["detail"]
    assert "would pass the 30 s limit" in answer.json["detail"]  # gave up at once, without waiting
    assert us.attempts == 1


def test_the_same_420_in_the_outbox_is_tried_again_at_that_moment(client, us):
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    us.fail_next(420, message="Domain mg.example.com is not allowed to send: try again after "
                              + later.strftime("%Y-%m-%d %H:%M:%S UTC"))
    queued = client.post(SEND, json=BODY, headers={**bearer(auth.SEND), "Prefer": "respond-async"})
    assert queued.status_code == 202
    for _ in range(200):
        got = client.get(queued.headers["Location"], headers=bearer(auth.READ)).json
        if got["attempts"]:
            break
        time.sleep(0.02)
    assert got["status"] == "queued" and [a["outcome"] for a in got["attempts"]] == ["rate_limited"]
    next_try = datetime.fromisoformat(got["failure_reason"].rsplit("(next try at ", 1)[1].rstrip(")"))
    assert abs((next_try - later).total_seconds()) < 1  # the moment Mailgun named, ten minutes away
    assert us.attempts == 1
