"""Addresses in a provider's own words are masked before they are stored, answered or logged (issue 21,
finding 4; contract section 4): Mailgun quotes the recipient in some errors, plain, `<quoted>`, "quoted",
%40-encoded; its success message and its webhooks' reasons are provider text too."""

# Fixtures of another test module are imported and then used by name (pytest finds them so): not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, text

from fidesmail.records.database import engine_url
from fidesmail.web import auth
from tests.support import bearer, eventually
from tests.test_webhooks import (  # noqa: F401
    MESSAGES,
    app,
    client,
    event,
    fake,
    post,
    record,
    send,
    signature,
)

LOCAL = "subject.person"  # TO's local part: what must never be kept, shown or logged
FORMS = {
    "plain": "Subject.Person@Example.com",
    "angle": "<subject.person@example.com>",
    "quoted": '"subject.person"@example.com',
    "percent": "subject.person%40example.com",
    "percent twice": "Subject.Person%2540example.com",
}


def everything_kept(database_url) -> str:
    with create_engine(engine_url(database_url)).connect() as connection:
        rows = [row for table in ("messages", "delivery_events", "outbox")
                for row in connection.execute(text(f"SELECT * FROM {table}")).all()]
    return repr(rows).lower()


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.slow
def test_mailguns_refusal_naming_the_recipient_is_masked_everywhere(client, fake, database_url, caplog, form):
    fake.fail_next(400, message=f"'to' parameter is not a valid address: {FORMS[form]} (mailbox refused)")
    with caplog.at_level(logging.INFO):
        refused = send(client)
    assert refused.status_code == 502 and "s***@example.com" in refused.json["detail"]
    got = record(client, refused.json["message_id"])
    shown = [refused.get_data(as_text=True), got["failure_reason"], got["attempts"][0]["detail"], caplog.text]
    for words in shown:
        assert LOCAL not in words.lower(), words
    assert LOCAL not in everything_kept(database_url)


def test_mailguns_success_message_naming_the_recipient_is_masked(client, fake, database_url):
    fake.accepted_message = f"Queued for {FORMS['percent']}. Thank you."
    sent = send(client)
    assert sent.status_code == 200 and sent.json["message"] == "Queued for s***@example.com. Thank you."
    assert record(client, sent.json["message_id"])["attempts"][0]["detail"] == sent.json["message"]
    assert LOCAL not in everything_kept(database_url)


def test_a_queued_message_refused_by_mailgun_keeps_the_refusal_masked(client, fake, database_url):
    fake.fail_next(400, message=f"rejected: {FORMS['quoted']}")
    queued = send(client, **{"Prefer": "respond-async, wait=10"})
    assert queued.status_code == 202
    assert eventually(lambda: record(client, queued.json["message_id"])["status"] == "failed", timeout=10)
    assert record(client, queued.json["message_id"])["failure_reason"].endswith("rejected: s***@example.com")
    assert LOCAL not in everything_kept(database_url)


@pytest.mark.parametrize("form", ["percent", "quoted", "percent twice"])
def test_a_webhooks_reason_naming_the_recipient_is_masked(client, database_url, form):
    sent = send(client).json
    bounce = event("failed", sent["message_id"], severity="permanent",
                   **{"delivery-status": {"code": 550, "message": f"5.1.1 {FORMS[form]}: no such user"}})
    assert post(client, bounce).status_code == 200
    got = record(client, sent["message_id"])
    assert got["failure_reason"] == "550 5.1.1 s***@example.com: no such user" == got["events"][0]["reason"]
    assert LOCAL not in everything_kept(database_url)


def test_the_list_of_messages_shows_no_address_either(client, fake):
    fake.fail_next(400, message=f"bad: {FORMS['angle']}")
    send(client)
    listed = client.get(MESSAGES, headers=bearer(auth.READ)).get_data(as_text=True)
    assert LOCAL not in listed.lower() and "s***@example.com" in listed
