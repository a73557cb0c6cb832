"""Delivery events from SendGrid and Mandrill (contract section 15), through HTTP, after real sends.

Each stand-in accepts a message fidesmail sent and then posts its events, signed exactly as the provider
signs them, to fidesmail served on 127.0.0.1; where a test needs a post the stand-in would not make, it
signs one with the stand-in's own helpers (tests/standins/sendgrid_events.py, mandrill_events.py).
SES's events through SNS are in test_ses_events.py.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import select, update

from fidesmail.records.messages import now_ms
from fidesmail.records.schema import webhook_posts
from fidesmail.runtime import services
from fidesmail.web import auth
from tests.provider_cases import MANDRILL, MANDRILL_KEY, SENDGRID, SENDGRID_KEY, configure, send_headers
from tests.standins import mandrill_events, sendgrid_events
from tests.standins.mandrill import MandrillFake
from tests.standins.sendgrid import SendGridFake
from tests.support import bearer, record

SEND = "/api/v1/email/send"
TO = "Subject.Person@Example.com"
VERIFY = {"config_key": "my_provider", "action_type": "subject_identity_verification", "to": TO,
          "body_params": {"verification_code": "135790", "verification_code_ttl_seconds": 600}}
SG_HOOK = "/api/v1/email/webhooks/twilio_email/my_provider"
MD_HOOK = "/api/v1/email/webhooks/mailchimp_transactional/my_provider"


def counted(client, event_name, outcome, provider) -> float:
    text = client.get("/metrics", headers=bearer(auth.READ)).get_data(as_text=True)
    found = re.search(rf'^fidesmail_webhook_events_total{{event="{event_name}",outcome="{outcome}",'
                      rf'provider="{provider}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def send(client, to=TO):
    answer = client.post(SEND, json={**VERIFY, "to": to}, headers=send_headers())
    assert answer.status_code == 200, answer.json
    return answer.json


def events_of(client, message_id):
    return [(e["event"], e["provider"]) for e in record(client, message_id)["events"]]


# -- SendGrid ----------------------------------------------------------------------------------


@pytest.fixture
def sendgrid():
    with SendGridFake([SENDGRID_KEY], verified_senders=["privacy@example.com"]) as fake:
        fake.events.retry_delay = 0.05
        yield fake


@pytest.fixture
def sg_client(make_app, sendgrid, serve, database_url):
    """fidesmail on real HTTP, a signed event webhook at the stand-in posting to it, its public key sealed."""
    app = make_app(SENDGRID_BASE_URL=sendgrid.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0,
                   DATABASE_URL=database_url)
    client = app.test_client()
    hook = sendgrid.add_webhook(serve(app) + SG_HOOK)
    configure(client, SENDGRID, sendgrid, secrets={"twilio_api_key": SENDGRID_KEY,
                                                   "twilio_email_webhook_public_key": hook["public_key"]})
    return client


def sg_post(client, sendgrid, events, timestamp=None, signer=None, path=SG_HOOK):
    headers, body = (signer or sendgrid.signer()).signed(events, timestamp)
    return client.post(path, data=body, headers=headers)


def sg_event(name, message, **more):
    """A SendGrid event about a message fidesmail sent (its X-Message-Id and custom arg)."""
    return sendgrid_events.event_body(name, email=TO.lower(), x_message_id=message["id"],
                                      custom_args={"fidesmail_message_id": message["message_id"]}, **more)


def test_a_sendgrid_message_is_delivered_and_its_events_carry_sendgrids_signature(sg_client, sendgrid):
    sent = send(sg_client)
    assert sent["provider"] == "twilio_email"
    posts = sendgrid.wait_for_webhooks(2)
    assert [(p.events, p.status) for p in posts] == [(("processed",), 200), (("delivered",), 200)]
    got = record(sg_client, sent["message_id"])
    assert got["status"] == "delivered" and got["failure_reason"] is None
    assert [(e["event"], e["provider"]) for e in got["events"]] == [("processed", "twilio_email"),
                                                                     ("delivered", "twilio_email")]
    signature = got["events"][1]["signature"]
    assert signature == {"timestamp": posts[1].headers[sendgrid_events.TIMESTAMP_HEADER],
                         "signature": posts[1].headers[sendgrid_events.SIGNATURE_HEADER]}
    assert "mailgun" not in got["events"][0]
    assert TO.lower() not in json.dumps(got)  # the signed bytes (they name the recipient) are not shown


def test_a_bounce_fails_the_message_with_sendgrids_reason_and_a_later_delivered_does_not_undo_it(sg_client,
                                                                                                 sendgrid):
    sendgrid.script_events(TO, "bounce")
    sent = send(sg_client)
    sendgrid.wait_for_webhooks(2)
    got = record(sg_client, sent["message_id"])
    assert got["status"] == "failed"
    assert got["failure_reason"] == "550 5.1.1 The email account that you tried to reach does not exist."
    assert got["events"][-1]["severity"] == "permanent"
    answer = sg_post(sg_client, sendgrid, [sg_event("delivered", sent)])
    assert answer.status_code == 200 and answer.json["outcome"] == "verified"
    assert answer.json["events"] == [{"outcome": "verified", "message_id": sent["message_id"], "status": "failed"}]
    assert record(sg_client, sent["message_id"])["status"] == "failed"  # never backwards


def test_an_address_in_sendgrids_reason_is_masked(sg_client, sendgrid):
    sendgrid.script_events(TO, "none")
    sent = send(sg_client)
    event = sg_event("bounce", sent)
    event["reason"] = f"550 5.1.1 <{TO.lower()}>: Recipient address rejected"
    assert sg_post(sg_client, sendgrid, [event]).status_code == 200
    got = record(sg_client, sent["message_id"])
    assert got["status"] == "failed" and TO.lower() not in got["failure_reason"]
    assert "s***@example.com" in got["failure_reason"].lower()


def test_events_are_matched_by_sendgrids_message_id_when_the_custom_arg_is_missing(sg_client, sendgrid):
    sendgrid.script_events(TO, "none")
    sent = send(sg_client)
    event = sendgrid_events.event_body("delivered", email=TO.lower(), x_message_id=sent["id"])
    assert "fidesmail_message_id" not in event and event["sg_message_id"].startswith(sent["id"] + ".")
    answer = sg_post(sg_client, sendgrid, [event])
    assert answer.json["outcome"] == "verified" and record(sg_client, sent["message_id"])["status"] == "delivered"


@pytest.mark.parametrize("damage", ["no signature", "wrong key", "altered body", "bad timestamp header"])
def test_a_post_without_sendgrids_signature_is_401_and_records_nothing(sg_client, sendgrid, damage):
    sendgrid.script_events(TO, "none")
    sent = send(sg_client)
    headers, body = sendgrid.signer().signed([sg_event("delivered", sent)])
    if damage == "no signature":
        headers.pop(sendgrid_events.SIGNATURE_HEADER)
    elif damage == "wrong key":
        headers, body = sendgrid_events.EventSigner().signed([sg_event("delivered", sent)])
    elif damage == "altered body":
        body = body.replace(b'"delivered"', b'"bounce"')
    else:
        headers[sendgrid_events.TIMESTAMP_HEADER] = "soon"
    answer = sg_client.post(SG_HOOK, data=body, headers=headers)
    assert answer.status_code == 401 and "signature" in answer.json["detail"]
    got = record(sg_client, sent["message_id"])
    assert got["status"] == "accepted" and got["events"] == []


def test_a_timestamp_more_than_five_minutes_away_is_401(sg_client, sendgrid):
    sendgrid.script_events(TO, "none")
    sent = send(sg_client)
    for skew in (-301, 301):
        answer = sg_post(sg_client, sendgrid, [sg_event("delivered", sent)], timestamp=str(int(time.time()) + skew))
        assert answer.status_code == 401 and "5 minutes" in answer.json["detail"]
    assert record(sg_client, sent["message_id"])["events"] == []
    assert counted(sg_client, "other", "stale", "twilio_email") == 2


def test_a_config_without_the_public_key_refuses_sendgrids_posts(make_app, sendgrid):
    client = make_app(SENDGRID_BASE_URL=sendgrid.base_url).test_client()
    configure(client, SENDGRID, sendgrid)  # the API key only
    sendgrid.add_webhook("http://127.0.0.1:9/unused")
    answer = sg_post(client, sendgrid, [sendgrid_events.event_body("delivered", email=TO, x_message_id="x")])
    assert answer.status_code == 401 and "twilio_email_webhook_public_key" in answer.json["detail"]
    other = sg_post(client, sendgrid, [], path="/api/v1/email/webhooks/twilio_email/no_such_config")
    assert other.status_code == 401


def test_the_same_post_twice_is_recorded_once_and_unknown_messages_are_counted(sg_client, sendgrid):
    sendgrid.script_events(TO, "none")
    sent = send(sg_client)
    events = [sg_event("delivered", sent), sendgrid_events.event_body("delivered", email="x@example.com",
                                                                      x_message_id="not-ours")]
    headers, body = sendgrid.signer().signed(events)
    first = sg_client.post(SG_HOOK, data=body, headers=headers)
    again = sg_client.post(SG_HOOK, data=body, headers=headers)
    assert [e["outcome"] for e in first.json["events"]] == ["verified", "unknown_message"]
    assert again.status_code == 200 and again.json["outcome"] == "replay", (first.json, again.json)
    assert [e["outcome"] for e in again.json["events"]] == ["replay", "unknown_message"]
    assert events_of(sg_client, sent["message_id"]) == [("delivered", "twilio_email")]
    assert counted(sg_client, "delivered", "unknown_message", "twilio_email") == 2
    assert counted(sg_client, "delivered", "replay", "twilio_email") == 1


def test_a_signed_body_that_is_not_sendgrids_events_is_422(sg_client, sendgrid):
    for body in (b'{"event": "delivered"}', b"[1, 2]", b'[{"event": "delivered"}]', b"not json"):
        headers = sendgrid.signer().headers(body)
        answer = sg_client.post(SG_HOOK, data=body, headers=headers)
        assert answer.status_code == 422, body


def alter_stored_signatures(client, **changes) -> None:
    """Change what the kept posts' signatures say (as someone with the database, not the key, could)."""
    found = services.of(client.application)
    with found.database.write() as connection:
        for row in connection.execute(select(webhook_posts)).all():
            signature = {**json.loads(row.signature), **changes}
            connection.execute(update(webhook_posts).where(webhook_posts.c.id == row.id)
                               .values(signature=json.dumps(signature)))


def verify(client, *args):
    return client.application.test_cli_runner().invoke(args=["messages", "verify", *args])


def test_flask_messages_verify_rechecks_sendgrids_signatures(sg_client, sendgrid):
    sent = send(sg_client)
    sendgrid.wait_for_webhooks(2)
    result = verify(sg_client)
    assert result.exit_code == 0 and "2 of 2 stored event(s)" in result.output, result.output
    # A moment SendGrid did not sign (now - 1 could be its own second on a slow run, and still verify).
    alter_stored_signatures(sg_client, timestamp="1000000000")
    result = verify(sg_client, sent["message_id"])
    assert result.exit_code == 1 and "twilio_email_webhook_public_key" in result.output
    assert f"{sent['message_id']}: delivered at " in result.output and TO.lower() not in result.output


# -- Mandrill ----------------------------------------------------------------------------------


@pytest.fixture
def mandrill():
    with MandrillFake([MANDRILL_KEY], verified_domains=["example.com"]) as fake:
        fake.events.retry_delay = 0.05
        yield fake


def md_app(make_app, mandrill, database_url, **settings):
    return make_app(MANDRILL_BASE_URL=mandrill.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0,
                    DATABASE_URL=database_url, **settings)


@pytest.fixture
def md_client(make_app, mandrill, serve, database_url):
    """fidesmail on real HTTP, a webhook at the stand-in posting to it, its key sealed."""
    app = md_app(make_app, mandrill, database_url)
    client = app.test_client()
    hook = mandrill.add_webhook(serve(app) + MD_HOOK)
    configure(client, MANDRILL, mandrill, secrets={"mailchimp_transactional_api_key": MANDRILL_KEY,
                                                   "mailchimp_transactional_webhook_key": hook["auth_key"]})
    client.hook = hook
    return client


def md_event(name, message, **more):
    return mandrill_events.event_body(name, message_id=message["id"], email=TO.lower(),
                                      metadata={"fidesmail_message_id": message["message_id"]}, **more)


def md_post(client, events, url=None, key=None, path=MD_HOOK):
    """Post events signed for `url` (the registered webhook's URL unless given) to the URL Mandrill posts to."""
    headers, body = mandrill_events.signed_post(key or client.hook["auth_key"], url or client.hook["url"], events)
    return client.post(path, data=body, headers=headers, base_url=client.hook["url"].removesuffix(MD_HOOK))


def test_a_mandrill_message_is_delivered_and_a_hard_bounce_fails_another(md_client, mandrill):
    mandrill.script_events("gone@example.com", "hard_bounce")
    delivered, bounced = send(md_client), send(md_client, to="gone@example.com")
    assert [p.status for p in mandrill.wait_for_webhooks(2)] == [200, 200]
    got = record(md_client, delivered["message_id"])
    assert got["status"] == "delivered" and events_of(md_client, delivered["message_id"]) == [
        ("send", "mailchimp_transactional")]
    assert got["events"][0]["signature"]["url"] == md_client.hook["url"]
    failed = record(md_client, bounced["message_id"])
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "smtp;550 5.1.1 The email account that you tried to reach does not exist."


def test_a_post_without_mandrills_signature_is_401_and_records_nothing(md_client, mandrill):
    mandrill.script_events(TO, "none")
    sent = send(md_client)
    wrong = md_post(md_client, [md_event("send", sent)], key="not-the-key")
    other_url = md_post(md_client, [md_event("send", sent)], url="http://elsewhere.example/hook")
    headers, body = mandrill_events.signed_post(md_client.hook["auth_key"], md_client.hook["url"],
                                                [md_event("send", sent)])
    missing = md_client.post(MD_HOOK, data=body, headers={"Content-Type": headers["Content-Type"]})
    assert [a.status_code for a in (wrong, other_url, missing)] == [401, 401, 401]
    assert record(md_client, sent["message_id"])["events"] == []


def test_mandrills_events_are_kept_once_and_sync_events_are_ignored(md_client, mandrill):
    mandrill.script_events(TO, "none")
    sent = send(md_client)
    sync = {"type": "blacklist", "action": "add", "reject": {"email": "x@example.com", "reason": "hard-bounce"}}
    events = [md_event("soft_bounce", sent), sync, md_event("send", sent)]
    first, again = md_post(md_client, events), md_post(md_client, events)
    assert first.status_code == 200 and [e["outcome"] for e in first.json["events"]] == ["verified", "verified"]
    assert again.json["outcome"] == "replay"
    assert events_of(md_client, sent["message_id"]) == [("soft_bounce", "mailchimp_transactional"),
                                                        ("send", "mailchimp_transactional")]
    assert record(md_client, sent["message_id"])["status"] == "delivered"
    assert counted(md_client, "other", "ignored", "mailchimp_transactional") == 2


def test_behind_a_proxy_the_signature_covers_fidesmail_public_url(make_app, mandrill, database_url):
    app = md_app(make_app, mandrill, database_url, PUBLIC_URL="https://mail.example.org/fidesmail")
    client = app.test_client()
    public = "https://mail.example.org/fidesmail" + MD_HOOK
    hook = mandrill.add_webhook(public)
    configure(client, MANDRILL, mandrill, secrets={"mailchimp_transactional_api_key": MANDRILL_KEY,
                                                   "mailchimp_transactional_webhook_key": hook["auth_key"]})
    client.hook = hook
    mandrill.script_events(TO, "none")
    sent = send(client)
    assert md_post(client, [md_event("send", sent)], url="http://localhost" + MD_HOOK).status_code == 401
    assert md_post(client, [md_event("send", sent)]).json["outcome"] == "verified"
    assert record(client, sent["message_id"])["status"] == "delivered"


def test_flask_messages_verify_rechecks_mandrills_signatures(md_client, mandrill):
    sent = send(md_client)
    mandrill.wait_for_webhooks(1)
    assert verify(md_client).exit_code == 0
    alter_stored_signatures(md_client, url="https://elsewhere.example/hook")
    result = verify(md_client)
    assert result.exit_code == 1 and "mailchimp_transactional_webhook_key" in result.output
    assert sent["message_id"] in result.output and md_client.hook["auth_key"] not in result.output


def test_mandrills_url_check_is_answered(md_client):
    assert md_client.head(MD_HOOK).status_code == 200


def test_retention_removes_the_kept_posts_with_their_records(sg_client, sendgrid):
    sent = send(sg_client)
    sendgrid.wait_for_webhooks(2)
    found = services.of(sg_client.application)
    with found.database.read() as connection:
        assert connection.execute(select(webhook_posts)).all() != []
    assert found.records.purge(now_ms() + 1) >= 1  # every record is past this retention
    with found.database.read() as connection:
        assert connection.execute(select(webhook_posts)).all() == []  # the signed bytes named the recipient
    assert sg_client.get(f"/api/v1/email/messages/{sent['message_id']}", headers=bearer(auth.READ)).status_code == 404
