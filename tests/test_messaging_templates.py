"""fides' messaging templates in fidesmail: files of the config tree, written by the API or a pull request, and
what a send then says (contract sections 7 and 16). fides' own tests of the endpoints are in tests/compat/fides."""

from __future__ import annotations

import os

import pytest
import yaml

from fidesmail.web import auth, messaging_scopes
from tests.support import bearer, eventually

TEMPLATES = "/api/v1/messaging/templates"
PREVIEW = "/api/v1/email/preview"
FIDES = bearer(auth.MESSAGING_TEMPLATE_UPDATE)
DENY = {"action_type": "privacy_request_review_deny", "body_params": {"rejection_reason": "<b>no</b> & no"}}


def put(client, template_type, subject, body, headers=FIDES):
    return client.put(TEMPLATES, json=[{"type": template_type, "content": {"subject": subject, "body": body}}],
                      headers=headers)


def preview(client, request=DENY, **changes):
    answer = client.post(PREVIEW, json={**request, **changes}, headers=bearer(auth.READ))
    assert answer.status_code == 200, answer.json
    return answer.json


def template_file(tree, template_type="privacy_request_review_deny"):
    return tree / "templates" / "messaging" / f"{template_type}.yaml"


def reload_problems(client) -> list[dict]:
    return client.post("/api/v1/reload", headers=bearer()).json["last_reload"]["problems"]


def test_a_template_set_through_the_api_is_a_reviewable_file_that_sends_use(client, tree):
    assert put(client, "privacy_request_review_deny", "About __DENIAL_REASON__", "Sorry.\n\nReason: __DENIAL_REASON__"
               ).status_code == 200
    text = template_file(tree).read_text()
    assert text.startswith("# fides messaging template for privacy_request_review_deny")
    assert "# Placeholders: __DENIAL_REASON__." in text
    assert yaml.safe_load(text) == {"type": "privacy_request_review_deny", "is_enabled": True, "content": {
        "subject": "About __DENIAL_REASON__", "body": "Sorry.\n\nReason: __DENIAL_REASON__"}}
    assert "body: |-\n    Sorry.\n\n    Reason: __DENIAL_REASON__\n" in text  # one line of the file per line

    email = preview(client)
    assert email["subject"] == "About <b>no</b> & no"
    assert email["text"] == "Sorry.\n\nReason: <b>no</b> & no"
    # The placeholders' values and the template's own text are escaped into the built-in layout.
    assert "<p>Sorry.</p>\n<p>Reason: &lt;b&gt;no&lt;/b&gt; &amp; no</p>" in email["html"]
    assert "<title>About &lt;b&gt;no&lt;/b&gt; &amp; no</title>" in email["html"]


def test_placeholders_are_text_never_template_code(client):
    """fides removed Jinja from its templates after a template injection: nothing in one is evaluated."""
    put(client, "privacy_request_review_deny", "{{ 7 * 7 }} __DENIAL_REASON__",
        "{% for x in range(3) %}x{% endfor %} {{ ''.__class__ }} __UNKNOWN__ __DENIAL_REASON__")
    email = preview(client, body_params={"rejection_reason": "__DENIAL_REASON__ {{ 6 * 7 }}"})
    assert email["subject"] == "{{ 7 * 7 }} __DENIAL_REASON__ {{ 6 * 7 }}"  # a value is not looked at again
    assert email["text"].startswith("{% for x in range(3) %}x{% endfor %} {{ ''.__class__ }} __UNKNOWN__ ")


def test_a_callers_overrides_win_over_the_template_part_by_part(client):
    put(client, "privacy_request_review_deny", "Template subject", "Template body __DENIAL_REASON__")
    assert preview(client, subject_override="Caller's subject")["text"] == "Template body <b>no</b> & no"
    email = preview(client, body_override="Caller's <body>")
    assert email["subject"] == "Template subject" and email["text"] == "Caller's <body>"
    assert "<p>Caller&#39;s &lt;body&gt;</p>" in email["html"]


def test_a_disabled_template_and_no_template_send_the_built_in_one(client, tree):
    built_in = preview(client)
    assert built_in["subject"] == "Your request has been denied"
    put(client, "privacy_request_review_deny", "Changed", "Changed body")
    assert preview(client)["subject"] == "Changed"

    # A reviewer turns it off in git; the API's next PUT of other wording keeps it off.
    template_file(tree).write_text(template_file(tree).read_text().replace("is_enabled: true", "is_enabled: false"))
    assert reload_problems(client) == []
    assert preview(client) == built_in
    put(client, "privacy_request_review_deny", "Changed again", "Changed body")
    assert "is_enabled: false" in template_file(tree).read_text()
    assert client.get(TEMPLATES + "/privacy_request_review_deny", headers=FIDES).json["is_enabled"] is False
    assert preview(client) == built_in


def test_fides_default_wording_is_no_file_and_an_unchanged_put_writes_nothing(client, tree):
    """fides' admin UI saves every template at once: only the ones that say something new become files."""
    everything = client.get(TEMPLATES, headers=FIDES).json
    assert client.put(TEMPLATES, json=everything, headers=FIDES).status_code == 200
    assert not (tree / "templates").exists()

    put(client, "privacy_request_review_deny", "Changed", "Changed body")
    before = os.stat(template_file(tree))
    everything = client.get(TEMPLATES, headers=FIDES).json
    assert client.put(TEMPLATES, json=everything, headers=FIDES).json["failed"] == []
    assert os.stat(template_file(tree)).st_ino == before.st_ino  # not rewritten
    assert sorted(p.name for p in template_file(tree).parent.iterdir()) == ["privacy_request_review_deny.yaml"]


@pytest.mark.parametrize("action_type, params, org, shown", [
    ("manual_task_digest", {"vendor_contact_name": "Bo", "organization_name": "Acme", "portal_url":
                            "https://privacy.example.com/t", "imminent_task_count": 1, "upcoming_task_count": 0,
                            "total_task_count": 1}, "__ORGANIZATION_NAME__", "Hi Bo,"),
    ("external_user_welcome", {"username": "v1", "first_name": "Ana", "privacy_center_url": "https://p.example.com",
                               "access_token": "t/1", "org_name": "Acme"}, "__ORG_NAME__", "Hello Ana,"),
])
def test_for_the_digest_and_the_welcome_the_body_is_the_introduction(client, action_type, params, org, shown):
    put(client, action_type, f"From {org}", f"Intro for {org} __PORTAL_LINK__")
    email = preview(client, {"action_type": action_type, "body_params": params})
    assert email["subject"] == "From Acme"
    assert shown in email["text"] and "Intro for Acme" in email["text"]  # the greeting and the rest stay
    assert "Privacy Team" in email["text"]
    if action_type == "external_user_welcome":  # the access token is quoted into fides' portal link
        assert "Intro for Acme https://p.example.com?access_token=t%2F1" in email["text"]
        assert 'href="https://p.example.com?access_token=t%2F1"' in email["html"]


def test_a_template_that_would_render_too_much_refuses_the_send_naming_its_file(client, tree):
    put(client, "privacy_request_complete_access", "Your data", "__DOWNLOAD_LINK__" * 5000)
    link = "https://example.com/" + "d" * 2000
    answer = client.post(PREVIEW, json={"action_type": "privacy_request_complete_access",
                                        "body_params": {"download_links": [link]}}, headers=bearer())
    assert answer.status_code == 503
    assert answer.json["detail"] == ("The email template failed: templates/messaging/privacy_request_complete_access"
                                     ".yaml: renders to more than 1 MiB with this message's parameters")


def test_read_only_mode_refuses_template_writes_and_writes_nothing(make_app, tree):
    client = make_app(READ_ONLY=True).test_client()
    assert put(client, "privacy_request_review_deny", "s", "b").status_code == 403
    assert client.delete(TEMPLATES + "/privacy_request_review_deny", headers=FIDES).status_code == 403
    assert client.get(TEMPLATES, headers=FIDES).status_code == 200
    assert not (tree / "templates").exists()


def test_a_file_from_a_pull_request_is_served_checked_and_kept_when_it_goes_bad(make_app, tree, runner):
    client = make_app().test_client()
    path = template_file(tree, "privacy_request_receipt")
    path.parent.mkdir(parents=True)
    path.write_text("content:\n  subject: Got it\n  body: We have your request for __REQUEST_TYPES__.\n")
    receipt = {"action_type": "privacy_request_receipt", "body_params": {"request_types": ["access", "erasure"]}}
    assert eventually(lambda: client.get(TEMPLATES + "/privacy_request_receipt", headers=FIDES).status_code == 200)
    assert preview(client, receipt)["text"] == "We have your request for access, erasure."

    path.write_text("content:\n  subject: Got it\n  body: ''\n  extra: 1\n")
    problems = reload_problems(client)
    assert {"path": "templates/messaging/privacy_request_receipt.yaml", "line": 3,
            "message": "content.body: Must not be blank."} in problems
    assert {"path": "templates/messaging/privacy_request_receipt.yaml", "line": 4,
            "message": "content.extra: Unknown field."} in problems
    assert preview(client, receipt)["subject"] == "Got it"  # the last good version keeps serving

    (path.parent / "receipt.yaml").write_text("content: {}\n")
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    assert "templates/messaging/privacy_request_receipt.yaml:3: content.body: Must not be blank." in result.stdout
    assert "templates/messaging/receipt.yaml:1: not a messaging template: expected <type>.yaml" in result.stdout


def test_the_tree_limits_hold_for_template_files(make_app, tree, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("content:\n  subject: stolen\n  body: stolen\n")
    folder = tree / "templates" / "messaging"
    folder.mkdir(parents=True)
    (folder / "privacy_request_receipt.yaml").symlink_to(outside)
    os.mkfifo(folder / "privacy_request_review_approve.yaml")
    with open(folder / "privacy_request_review_deny.yaml", "wb") as fh:
        fh.truncate(256 * 1024 + 1)
    client = make_app().test_client()
    problems = {p["path"]: p["message"] for p in reload_problems(client)}
    assert "a symlink that leaves the config tree" in problems["templates/messaging/privacy_request_receipt.yaml"]
    assert "a FIFO" in problems["templates/messaging/privacy_request_review_approve.yaml"]
    assert "over the 256 KiB limit" in problems["templates/messaging/privacy_request_review_deny.yaml"]
    assert client.get(TEMPLATES, headers=FIDES).json[1]["content"]["subject"] == \
        "Your privacy request has been received"


def test_fides_scopes_open_the_messaging_endpoints_and_only_them(runner, client, headers):
    minted = runner.invoke(args=["token", "create", "--scope", "messaging-template:update"])
    assert minted.exit_code == 0, minted.output
    token = {"Authorization": f"Bearer {minted.stdout.strip()}"}
    assert client.get(TEMPLATES, headers=token).status_code == 200
    assert client.get("/api/v1/email/config", headers=token).status_code == 403
    assert client.get(TEMPLATES, headers=bearer(auth.READ, auth.CREATE_OR_UPDATE, auth.MESSAGING_READ)
                      ).status_code == 403


def test_every_messaging_route_takes_its_scope_from_fides_table(app, client):
    """The table (web/messaging_scopes.py) is fides' scope registry; a /messaging route must be in it."""
    document = client.get("/openapi.json").json
    routes = [(method, rule.rule[len(messaging_scopes.PREFIX):]) for rule in app.url_map.iter_rules()
              if rule.rule.startswith(messaging_scopes.PREFIX) for method in rule.methods - {"HEAD", "OPTIONS"}]
    assert routes
    for method, path in routes:
        scope = messaging_scopes.ENDPOINT_SCOPES[(method, path)]
        openapi_path = messaging_scopes.PREFIX + path.replace("<", "{").replace(">", "}")
        assert document["paths"][openapi_path][method.lower()]["x-required-scope"] == scope, (method, path)
