"""A verified Mailgun signature is spent once (issue 21, finding 2; contract section 10).

Mailgun signs the timestamp and the token, not the event. Before issue 21 a token was kept only when its
event matched a record, so the signature of an event for a message fidesmail never sent could be posted
again, within its 5 minutes, around any `event-data`: the attack of the issue, tried here on both backends.
"""

# Fixtures of another test module are imported and then used by name (pytest finds them so): not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from fidesmail.web import auth
from tests.support import bearer, eventually
from tests.test_webhooks import (  # noqa: F401
    HOOK,
    VERIFY,
    app,
    client,
    counted,
    event,
    fake,
    post,
    record,
    send,
    signature,
    stored_rows,
)


@pytest.fixture
def captured(client):
    """A signature Mailgun really made, for an event of a message fidesmail never sent (another application's
    on the same domain): answered 200, recorded nothing. What an attacker on the webhook list holds."""
    sig = signature()
    answer = post(client, event("delivered", "msg_OTHERAPPLICATION0000000000"), sig=sig)
    assert answer.status_code == 200 and answer.json["outcome"] == "unknown_message"
    return sig


def test_a_verified_signature_reposted_around_another_event_changes_nothing(client, fake, captured,
                                                                             database_url):
    sent = send(client)
    assert sent.status_code == 200
    fake.down()  # Mailgun refuses: the 202-acknowledged message waits in the outbox, never sent
    queued = send(client, **{"Prefer": "respond-async"})
    assert queued.status_code == 202 and queued.json["status"] == "queued"
    assert eventually(lambda: record(client, queued.json["message_id"])["attempts"], timeout=10)  # tried, waits
    forged = [event("accepted", queued.json["message_id"]),
              event("failed", sent.json["message_id"], severity="permanent", reason="forged bounce")]
    for event_data in forged:
        answer = post(client, event_data, sig=captured)
        assert answer.status_code == 200 and answer.json["outcome"] == "replay", answer.json
    assert record(client, queued.json["message_id"])["status"] == "queued"
    got = record(client, sent.json["message_id"])
    assert got["status"] == "accepted" and got["failure_reason"] is None and got["events"] == []
    assert stored_rows(database_url) == []
    assert counted(client, "accepted", "replay") == 1 and counted(client, "failed", "replay") == 1


def test_a_verified_signature_around_no_event_at_all_is_spent_too(client):
    sent = send(client).json
    sig = signature()
    assert client.post(HOOK, json={"signature": sig, "event-data": {"event": 7}}).status_code == 422
    again = post(client, event("failed", sent["message_id"], severity="permanent", reason="forged"), sig=sig)
    assert again.status_code == 200 and again.json["outcome"] == "replay"
    assert record(client, sent["message_id"])["status"] == "accepted"


def test_a_token_taken_for_a_record_is_a_replay_with_any_other_event(client):
    sent = send(client).json
    sig = signature()
    assert post(client, event("delivered", sent["message_id"]), sig=sig).json["outcome"] == "verified"
    other = send(client).json
    replay = post(client, event("failed", other["message_id"], severity="permanent"), sig=sig)
    assert replay.status_code == 200 and replay.json["outcome"] == "replay"
    assert record(client, other["message_id"])["status"] == "accepted"


def test_tokens_are_forgotten_after_a_day_when_their_signatures_are_long_stale(client, captured):
    from fidesmail.records.maintenance import DAY_MS
    from fidesmail.records.schema import webhook_tokens
    from fidesmail.runtime import services

    found = services.of(client.application)
    with found.database.write() as connection:
        connection.execute(webhook_tokens.update().values(taken_at=webhook_tokens.c.taken_at - DAY_MS - 1))
    found.maintenance.prepare()  # what every process does at start and every minute
    with found.database.read() as connection:
        assert connection.execute(webhook_tokens.select()).all() == []
    assert client.get("/health", headers=bearer(auth.READ)).json["database"]["ok"] is True
