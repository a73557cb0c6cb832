"""fides' action types and what the fides adapter sends beside them, through /email/send to a real test Mailgun."""

from __future__ import annotations

import json

import pytest

from fidesmail.content import body_params, rendering
from fidesmail.content.messaging_templates import FIDES_ACTION_TYPES, Wording
from fidesmail.core.validation import fides_detail
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import ROOT, bearer, configure_mailgun

KEY = "key-" + "7f3a9c" * 5
SEND = "/api/v1/email/send"


@pytest.fixture
def mailgun():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def client(make_app, mailgun):
    client = make_app(MAILGUN_BASE_URL=mailgun.base_url, MAILGUN_RETRIES=0).test_client()
    configure_mailgun(client, KEY)
    return client


def send(client, action_type, params=None, **more):
    body = {"action_type": action_type, "to": "subject@example.com", "body_params": params, **more}
    return client.post(SEND, json=body, headers=bearer(auth.SEND))


def test_fides_whole_set_is_accepted_beside_fidesops_own():
    assert set(FIDES_ACTION_TYPES) <= set(body_params.ACTION_TYPES)
    assert set(body_params.ACTION_TYPES) - set(FIDES_ACTION_TYPES) == {"email_erasure_fulfillment"}  # fidesops'


@pytest.mark.parametrize("action_type", FIDES_ACTION_TYPES)
@pytest.mark.slow
def test_each_fides_action_type_is_sent_with_its_sample_params(client, mailgun, action_type):
    answer = send(client, action_type, body_params.SAMPLE_PARAMS[action_type])
    assert answer.status_code == 200, answer.json
    [sent] = mailgun.requests
    assert sent.field("o:tag") == action_type
    assert sent.field("subject") and sent.field("html").startswith("<!DOCTYPE html>") and sent.field("text")


@pytest.mark.parametrize("action_type, params, loc, msg", [
    ("user_invite", {"invite_code": "x"}, ["body", "body_params", "username"], "field required"),
    ("external_user_welcome", {**body_params.SAMPLE_PARAMS["external_user_welcome"],
                               "privacy_center_url": "javascript:alert(1)"},
     ["body", "body_params", "privacy_center_url"], "Not a valid URL."),
    ("manual_task_digest", {**body_params.SAMPLE_PARAMS["manual_task_digest"], "total_task_count": -1},
     ["body", "body_params", "total_task_count"], "Must be greater than or equal to 0 and less than or equal to "
                                                  "1000000000."),
    ("message_erasure_fulfillment", {"controller": "C", "third_party_vendor_name": "V", "identities": "a@b.c"},
     ["body", "body_params", "identities"], "Not a valid list."),
    ("privacy_request_complete_access", {"download_links": ["https://x.example.com"],
                                         "subject_request_download_time_in_days": "5"},
     ["body", "body_params", "subject_request_download_time_in_days"], "Not a valid integer."),
    ("privacy_request_review_deny", {}, ["body", "subject_override"], "Must not be blank."),
])
def test_bad_params_are_422_in_fidesops_words_and_nothing_is_sent(client, mailgun, action_type, params, loc, msg):
    more = {"subject_override": " \n "} if loc[-1] == "subject_override" else {}
    answer = send(client, action_type, params, **more)
    assert answer.status_code == 422
    assert {"loc": loc, "msg": msg} in [{"loc": p["loc"], "msg": p["msg"]} for p in answer.json["detail"]]
    assert mailgun.requests == []


def test_a_callers_subject_and_body_override_reach_the_provider(client, mailgun):
    answer = send(client, "privacy_request_review_deny", {"rejection_reason": "x"},
                  subject_override="About your\r\nrequest", body_override="Line <1>\nline 2\n\nSee https://e.example/a")
    assert answer.status_code == 200, answer.json
    form = dict(mailgun.requests[0].form)
    assert form["subject"] == "About your request"  # one header line
    assert form["text"] == "Line <1>\nline 2\n\nSee https://e.example/a"
    assert ('<p>Line &lt;1&gt;<br>\nline 2</p>\n<p>See <a href="https://e.example/a" rel="noopener noreferrer">'
            'https://e.example/a</a></p>') in form["html"]


def test_fides_download_time_is_shown_with_the_links(client, mailgun):
    answer = send(client, "privacy_request_complete_access", {"download_links": ["https://d.example.com/1"],
                                                              "subject_request_download_time_in_days": 7})
    assert answer.status_code == 200
    assert "will expire in 7 days" in mailgun.requests[0].field("text")


def test_a_body_override_of_the_digest_is_its_introduction_in_the_layout():
    params = body_params.load_body_params("manual_task_digest", body_params.SAMPLE_PARAMS["manual_task_digest"])
    message = rendering.render("manual_task_digest", params, wording=Wording(body="Hello <team>"))
    assert "Hi Bo,\n\nHello <team>\n\nTasks Due Soon" in message.text
    assert "<p>Hello &lt;team&gt;</p>" in message.html and "View All Tasks" in message.html
    assert message.subject == "Weekly DSR Summary from Example Inc."


def test_values_in_fides_emails_are_escaped_and_links_quoted():
    params = body_params.load_body_params("user_invite", {"username": "a&b <x>", "invite_code": "c d",
                                                          "admin_ui_url": "https://admin.example.com/"})
    message = rendering.render("user_invite", params)
    assert 'href="https://admin.example.com/login?invite_code=c+d&amp;username=a%26b+%3Cx%3E"' in message.html
    consent = body_params.load_body_params("consent_request_email_fulfillment", {
        "controller": "<C>", "third_party_vendor_name": "V", "required_identities": ["email", "phone"],
        "requested_changes": [{"identities": {"email": "<a@b.c>"}, "consent_preferences": [],
                               "privacy_preferences": [{"preference": "opt_in", "id": "x",
                                                        "privacy_notice_history": {"name": "Ads", "id": "y"}}]}]})
    message = rendering.render("consent_request_email_fulfillment", consent)
    assert "<td style=\"padding-right: 15px;\">&lt;a@b.c&gt;</td>" in message.html
    assert "users of &lt;C&gt;" in message.html and "<C>" not in message.html
    assert "email: <a@b.c>\nphone: \nPreferences: Ads: Opt-in" in message.text


def test_fides_words_for_validation_problems():
    """What /api/v1/messaging answers, as fides (pydantic v2) words it, for the config endpoints to reuse."""
    messages = {"json": {"service_type": ["Must be one of: mailgun, twilio_email, aws_ses."],
                         "details": {"domain": ["Missing data for required field."], "x": ["Unknown field."]},
                         "name": ["Shorter than minimum length 1."], "key": ["FidesKeys must only contain ..."]},
                "view_args": {"config_key": ["Not a valid string."]}}
    assert fides_detail(messages, "auto") == [
        {"type": "enum", "loc": ["body", "service_type"], "msg": "Input should be 'mailgun', 'twilio_email' or "
                                                                 "'aws_ses'"},
        {"type": "missing", "loc": ["body", "details", "domain"], "msg": "Field required"},
        {"type": "extra_forbidden", "loc": ["body", "details", "x"], "msg": "Extra inputs are not permitted"},
        {"type": "string_too_short", "loc": ["body", "name"], "msg": "String should have at least 1 character"},
        {"type": "value_error", "loc": ["body", "key"], "msg": "Value error, FidesKeys must only contain ..."},
        {"type": "string_type", "loc": ["path", "config_key"], "msg": "Input should be a valid string"},
    ]


def _readme_sends() -> list[dict]:
    """The bodies of the README's one-curl-per-action-type lines (`S '{...}'`) in its Sending section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Sending\n", 1)[1].split("\n## ", 1)[0]
    return [json.loads(line[3:-1]) for line in section.splitlines() if line.startswith("S '{")]


def test_the_readmes_curl_line_for_each_action_type_sends(client, mailgun):
    bodies = _readme_sends()
    assert {body["action_type"] for body in bodies} == set(body_params.ACTION_TYPES)
    for body in bodies:
        answer = client.post(SEND, json=body, headers=bearer(auth.SEND))
        assert answer.status_code == 200, (body["action_type"], answer.json)
    assert len(mailgun.requests) == len(bodies)


def test_the_readmes_template_example_is_what_sends_then_say(client, tree):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n### Messaging templates\n", 1)[1].split("\n## ", 1)[0]
    curl = section.split("```sh\n", 1)[1].split("```", 1)[0]
    body = json.loads(curl.split("-d '", 1)[1].split("'\n", 1)[0])
    answer = client.put("/api/v1/messaging/templates", json=body,
                        headers=bearer(auth.MESSAGING_TEMPLATE_UPDATE))
    assert answer.status_code == 200 and answer.json["failed"] == []
    shown = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert (tree / "templates" / "messaging" / "subject_identity_verification.yaml").read_text() == shown
    email = client.post("/api/v1/email/preview", headers=bearer(), json={
        "action_type": "subject_identity_verification",
        "body_params": {"verification_code": "424242", "verification_code_ttl_seconds": 300}}).json
    assert email["subject"] == "Your code: 424242"
    assert email["text"] == "Enter 424242 on the privacy page within 5 minutes.\n\nThe privacy team"


def test_a_resend_takes_the_callers_wording_again(client, mailgun):
    mailgun.fail_next(400)
    failed = send(client, "privacy_request_review_approve", subject_override="First try")
    assert failed.status_code == 502
    again = client.post(f"/api/v1/email/messages/{failed.json['message_id']}/resend", headers=bearer(auth.SEND),
                        json={"to": "subject@example.com", "subject_override": "Second try", "body_override": "Hi"})
    assert again.status_code == 200, again.json
    assert mailgun.sent[-1].field("subject") == "Second try" and mailgun.sent[-1].field("text") == "Hi"
