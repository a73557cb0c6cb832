"""Email rendering: params validation, built-in templates, escaping, overrides and their sandbox."""

from __future__ import annotations

import os

import pytest
from markupsafe import escape
from marshmallow import ValidationError

from fidesmail.content import rendering
from fidesmail.content.body_params import (
    ACTION_TYPES,
    BODY_PARAMS_SCHEMAS,
    SAMPLE_PARAMS,
    UnknownActionType,
    load_body_params,
)
from fidesmail.content.rendering import TemplateRenderError
from fidesmail.tree.loader import load_tree


def render(action_type, params, tree=None):
    """What a send does: validate the params, then render with the tree's usable overrides (if a tree is given)."""
    overrides = load_tree(tree).overrides if tree is not None else rendering.NO_OVERRIDES
    return rendering.render(action_type, load_body_params(action_type, params), overrides)


def problems_of(tree) -> list:
    """The tree's problems, as `flask check` and /health report them."""
    return list(load_tree(tree).problems)


@pytest.fixture
def templates(tmp_path):
    """The template overrides folder of a config tree at tmp_path."""
    folder = tmp_path / "templates"
    folder.mkdir()
    return folder

EXPECTED = {
    "subject_identity_verification": ("Your one-time code", "Your one-time code is 123456. It expires in 10 minutes."),
    "consent_request": ("Your one-time code", "Your one-time code is 123456. It expires in 10 minutes."),
    "privacy_request_receipt": ("Your request has been received", "- access\n- erasure"),
    "privacy_request_complete_access": ("Your data is ready to be downloaded", "https://example.com/download/1"),
    "privacy_request_complete_deletion": ("Your data has been deleted", "your data has been deleted"),
    "privacy_request_review_approve": ("Your request has been approved", "has been approved"),
    "privacy_request_review_deny": ("Your request has been denied", "Reason: We could not verify your identity."),
    "email_erasure_fulfillment": ("Data erasure request", "crm: customers"),
    "test_message": ("fidesmail test message", "test message from fidesmail"),
    # fides' own action types: fides' words (src/fides/api/email_templates/templates, _build_email)
    "privacy_request_complete_consent": ("Your consent preferences have been saved",
                                         "Your consent request has been completed"),
    "message_erasure_fulfillment": ("Notification of user erasure requests from Example Inc.",
                                    "Acme CRM has been identified as a third-party processor to Example Inc."),
    "consent_request_email_fulfillment": ("Notification of users' consent preference changes",
                                          "Preferences: Marketing: Opt-out, Advertising: Opt-out"),
    "privacy_request_error_notification": ("Privacy Request Error Alert", "(2 new errors)"),
    "user_invite": ("Welcome to Fides", "https://admin.example.com/login?invite_code=inv-123&username=ana"),
    "external_user_welcome": ("Welcome to our Privacy Center", "Hello Ana Lee,"),
    "manual_task_digest": ("Weekly DSR Summary from Example Inc.",
                           "You have 3 requests coming due, including 1 within the next 7 days"),
}


def test_every_action_type_has_a_schema_sample_and_expectation():
    assert set(ACTION_TYPES) == set(BODY_PARAMS_SCHEMAS) == set(SAMPLE_PARAMS) == set(EXPECTED)


@pytest.mark.parametrize("action_type", ACTION_TYPES)
def test_each_action_type_renders_subject_html_and_text(action_type):
    message = render(action_type, SAMPLE_PARAMS[action_type])
    subject, fragment = EXPECTED[action_type]
    assert message.subject == subject
    assert message.tag == action_type
    assert fragment in message.text
    assert message.html.startswith("<!DOCTYPE html>")
    assert f"<title>{escape(subject)}</title>" in message.html
    assert "<" not in message.text


@pytest.mark.parametrize(
    ("seconds", "shown"), [(600, "10 minutes"), (155, "2 minutes"), (33, "0 minutes"), (60, "1 minute.")]
)
def test_code_ttl_is_shown_in_whole_minutes_rounded_down(seconds, shown):
    message = render(
        "subject_identity_verification", {"verification_code": "0042", "verification_code_ttl_seconds": seconds}
    )
    assert f"Your one-time code is 0042. It expires in {shown}" in message.text
    assert f"<strong>0042</strong>. It expires in {shown}" in message.html


def test_access_email_links_every_download():
    links = ["https://example.com/a?x=1&y=2", "http://files.example.org/b"]
    message = render("privacy_request_complete_access", {"download_links": links})
    assert all(link in message.text for link in links)
    assert '<a href="https://example.com/a?x=1&amp;y=2">' in message.html
    assert "the links will expire" in message.text


def test_fidesops_receipts_without_rules_and_local_storage_links_still_render():
    """fidesops sends `request_types: []` for a policy without rules, and its local storage's "link" is words."""
    receipt = render("privacy_request_receipt", {"request_types": []})
    assert receipt.subject == "Your request has been received"
    assert receipt.text.startswith("We have received your privacy request.\n")
    words = "your local fides_uploads folder"
    access = render("privacy_request_complete_access", {"download_links": [words, "https://example.com/d"]})
    assert f"<li>{words}</li>" in access.html and '<a href="https://example.com/d">' in access.html
    assert words in access.text


def test_deny_without_a_reason_says_no_reason():
    for params in ({}, None, {"rejection_reason": None}, {"rejection_reason": ""}):
        message = render("privacy_request_review_deny", params)
        assert "Reason" not in message.text and "Reason" not in message.html


def test_erasure_email_lists_identities_collections_locators_and_fields():
    params = {
        "controller": "Acme Ltd",
        "identities": {"email": "jane@example.com", "phone_number": "+15551234567"},
        "dataset_collection_action_required": [
            {
                "step": "erasure",
                "collection": {"dataset": "shop", "collection": "customers"},
                "action_needed": [
                    {"locators": {"email": ["jane@example.com"]}, "get": None, "update": {"name": "null_rewrite"}}
                ],
            },
            {"collection": "shop:orders", "action_needed": [{"locators": {"customer_id": 7}, "update": None}]},
            {"collection": {"dataset": "shop", "collection": "reviews"}},
        ],
    }
    text = render("email_erasure_fulfillment", params).text
    assert "from Acme Ltd" in text
    assert "- email: jane@example.com\n- phone_number: +15551234567" in text
    assert "shop: customers\nLocate the records with:\n- email: jane@example.com\nErase these fields:\n- name" in text
    assert "shop: orders\nLocate the records with:\n- customer_id: 7\nNo fields need to be erased" in text
    assert "shop: reviews\nNo action is needed on this collection." in text


def test_erasure_accepts_fidesops_bare_list_of_collections():
    fidesops_body = [
        {
            "step": "erasure",
            "collection": {"dataset": "email_dataset", "collection": "test_collection"},
            "action_needed": [
                {"locators": {"email": "test@example.com"}, "get": None, "update": {"phone": "null_rewrite"}}
            ],
        }
    ]
    loaded = load_body_params("email_erasure_fulfillment", fidesops_body)
    assert loaded["identities"] == {}
    assert loaded["dataset_collection_action_required"][0]["action_needed"][0]["locators"] == {
        "email": ["test@example.com"]
    }
    assert "email_dataset: test_collection" in render("email_erasure_fulfillment", fidesops_body).text
    with pytest.raises(ValidationError) as error:
        load_body_params("email_erasure_fulfillment", [{"collection": "no-colon"}])
    assert set(error.value.messages) == {0}


def _code(code="123456", ttl=600) -> dict:
    return {"verification_code": code, "verification_code_ttl_seconds": ttl}


VERIFY, CODE, TTL = "subject_identity_verification", "verification_code", "verification_code_ttl_seconds"
ERASURE, ITEMS = "email_erasure_fulfillment", "dataset_collection_action_required"
ACCESS, LINKS = "privacy_request_complete_access", "download_links"


@pytest.mark.parametrize(
    ("action_type", "params", "field"),
    [
        (VERIFY, _code(code="12a456"), CODE),
        (VERIFY, _code(code="\u0661\u0662\u0663"), CODE),  # Arabic-Indic digits are not digits here
        (VERIFY, _code(code="123\n"), CODE),
        (VERIFY, _code(code=123456), CODE),
        (VERIFY, _code(ttl="600"), TTL),
        (VERIFY, _code(ttl=True), TTL),
        (VERIFY, _code(ttl=0), TTL),
        (VERIFY, _code(ttl=-60), TTL),
        (VERIFY, _code(ttl=60.5), TTL),
        (VERIFY, {CODE: "123456"}, TTL),
        ("consent_request", dict(_code(), extra=1), "extra"),
        ("privacy_request_receipt", {"request_types": "access"}, "request_types"),
        ("privacy_request_receipt", {"request_types": [""]}, "request_types"),
        (ACCESS, {LINKS: ["javascript:alert(1)"]}, LINKS),
        (ACCESS, {LINKS: ["ftp://example.com/x"]}, LINKS),
        (ACCESS, {LINKS: []}, LINKS),
        (ACCESS, {}, LINKS),
        ("privacy_request_review_deny", {"rejection_reason": 5}, "rejection_reason"),
        ("privacy_request_complete_deletion", {"anything": "x"}, "anything"),
        ("test_message", {"to": "x"}, "to"),
        (ERASURE, {}, ITEMS),
        (ERASURE, {"identities": {"email": 5}, ITEMS: [{"collection": "a:b"}]}, "identities"),
        (ERASURE, {ITEMS: [{"collection": "a:b", "oops": 1}]}, ITEMS),
        (ERASURE, {ITEMS: [{"collection": "a:b", "action_needed": [{"locators": {"id": None}}]}]}, ITEMS),
    ],
)
def test_bad_params_are_validation_errors_keyed_by_field(action_type, params, field):
    with pytest.raises(ValidationError) as error:
        load_body_params(action_type, params)
    assert field in error.value.messages
    with pytest.raises(ValidationError):
        render(action_type, params)


def test_list_item_errors_are_keyed_by_index_for_loc():
    with pytest.raises(ValidationError) as error:
        load_body_params("privacy_request_complete_access", {"download_links": ["https://ok.example.com", "ftp://nope"]})
    assert error.value.messages == {"download_links": {1: ["Not a valid URL."]}}


def test_unknown_action_type_is_refused():
    with pytest.raises(UnknownActionType):
        render("password_reset", {})


def test_user_values_are_escaped_in_html_but_not_in_text():
    reason = '<script>alert("x")</script> & <b>'
    message = render("privacy_request_review_deny", {"rejection_reason": reason})
    assert "<script>" not in message.html and "<b>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;" in message.html
    assert f"Reason: {reason}" in message.text
    erasure = dict(SAMPLE_PARAMS["email_erasure_fulfillment"], controller="<img src=x onerror=alert(1)>")
    assert "<img" not in render("email_erasure_fulfillment", erasure).html


def test_override_files_replace_builtin_parts_and_are_reloaded_when_changed(tmp_path, templates):
    html = templates / "privacy_request_review_deny.html"
    html.write_text("<p>Sorry: {{ rejection_reason }}</p>")
    (templates / "privacy_request_review_deny.subject.txt").write_text("Update on\r\nyour request\n")
    message = render("privacy_request_review_deny", {"rejection_reason": "<i>no</i>"}, tmp_path)
    assert message.html == "<p>Sorry: &lt;i&gt;no&lt;/i&gt;</p>"  # the sandbox escapes html too
    assert message.subject == "Update on your request"
    assert message.text.startswith("Your privacy request has been denied.")  # no .txt override: built-in

    html.write_text("<p>Changed: {{ rejection_reason }}</p>")
    stat = html.stat()
    os.utime(html, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert render("privacy_request_review_deny", {"rejection_reason": "x"}, tmp_path).html == "<p>Changed: x</p>"

    html.unlink()
    assert "<!DOCTYPE html>" in render("privacy_request_review_deny", {}, tmp_path).html


def test_override_text_is_not_escaped_and_partials_can_be_included(tmp_path, templates):
    (templates / "_footer.txt").write_text("-- {{ action_type }}")
    (templates / "test_message.txt").write_text('A & B <ok>\n{% include "_footer.txt" %}')
    assert render("test_message", {}, tmp_path).text == "A & B <ok>\n-- test_message"


def test_subject_never_contains_line_breaks(tmp_path, templates):
    (templates / "privacy_request_review_deny.subject.txt").write_text("Denied: {{ rejection_reason }}")
    message = render("privacy_request_review_deny", {"rejection_reason": "no\r\nBcc: victim@example.com"}, tmp_path)
    assert "\r" not in message.subject and "\n" not in message.subject
    assert message.subject == "Denied: no Bcc: victim@example.com"


def test_empty_subject_is_an_error(tmp_path, templates):
    (templates / "test_message.subject.txt").write_text("  {{ '' }}\n")
    assert any("subject is empty" in p.message for p in problems_of(tmp_path))  # reported, and not used:
    assert render("test_message", {}, tmp_path).subject == "fidesmail test message"
    # Empty only for some values: found when sending, and nothing is sent.
    (templates / "privacy_request_review_deny.subject.txt").write_text("{{ rejection_reason or '' }}")
    with pytest.raises(TemplateRenderError, match="subject is empty"):
        render("privacy_request_review_deny", {}, tmp_path)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ request_types.__class__.__base__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ request_types.append('x') }}",
    ],
)
def test_sandbox_blocks_attribute_escapes_with_a_clear_error(tmp_path, templates, source):
    (templates / "privacy_request_receipt.html").write_text(f"<p>Hello</p>\n{source}\n")
    [problem] = problems_of(tmp_path)
    assert str(problem).startswith("templates/privacy_request_receipt.html:2: ")
    assert "unsafe" in problem.message or "undefined" in problem.message
    assert "Traceback" not in problem.message and "File " not in problem.message
    assert "not used; the built-in template is" in problem.message
    assert "<!DOCTYPE html>" in render("privacy_request_receipt", {"request_types": ["access"]}, tmp_path).html


def test_sandbox_errors_when_sending_name_file_and_line_and_send_nothing(tmp_path, templates):
    # Fine with the sample parameters, unsafe with these: refused when sending, with a clear error.
    (templates / "privacy_request_review_deny.html").write_text(
        "<p>\n{% if rejection_reason == 'x' %}{{ ''.__class__.__mro__ }}{% endif %}\n")
    assert problems_of(tmp_path) == []
    with pytest.raises(TemplateRenderError) as error:
        render("privacy_request_review_deny", {"rejection_reason": "x"}, tmp_path)
    message = str(error.value)
    assert message.startswith("templates/privacy_request_review_deny.html:2: ") and "unsafe" in message
    assert "Traceback" not in message and "File " not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_override_syntax_and_undefined_errors_name_file_and_line(tmp_path, templates):
    (templates / "test_message.html").write_text("<p>\n{% if %}\n")
    assert [str(p)[: len("templates/test_message.html:2: ")] for p in problems_of(tmp_path)] == \
        ["templates/test_message.html:2: "]
    (templates / "test_message.html").write_text("<p>\n\n{{ no_such_variable }}\n")
    assert "templates/test_message.html:3: 'no_such_variable' is undefined" in str(problems_of(tmp_path)[0])
    (templates / "test_message.html").write_text('{% include "../../etc/passwd" %}')
    assert "etc/passwd" in str(problems_of(tmp_path)[0])
    assert "<!DOCTYPE html>" in render("test_message", {}, tmp_path).html  # the built-in, every time


def test_check_overrides_reports_each_bad_file_once(tmp_path, templates):
    (templates / "test_message.html").write_text("<p>fine {{ action_type }}</p>")
    (templates / "test_message.txt").write_text("{{ ''.__class__ }}")
    (templates / "consent_request.subject.txt").write_text("{% for %}")
    (templates / "welcome.html").write_text("hi")
    (templates / "_partial.html").write_text("{{ broken")
    problems = problems_of(tmp_path)
    assert [(p.path, p.line) for p in problems] == [
        ("templates/consent_request.subject.txt", 1),
        ("templates/test_message.txt", 1),
        ("templates/welcome.html", 1),
    ]
    assert "unsafe" in problems[1].message
    templates.rename(tmp_path / "elsewhere")
    assert problems_of(tmp_path) == []
