"""A NUL character in any input is a 4xx, on SQLite and on PostgreSQL alike (issue 21, finding 7; contract
section 4): 422 for a body field, a form field or a query parameter, 404 for a path; never a 503 naming the
database (PostgreSQL refuses a NUL in text outright). A provider's webhook body is the one exception: its
intake keeps an event's text printable (tests/test_webhooks.py), so a genuine event is never refused."""

# Fixtures of another test module are imported and then used by name (pytest finds them so): not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from fidesmail.web import auth
from tests.support import CONFIG, bearer
from tests.test_records import MESSAGES, SEND, VERIFY, client, make_sender, us  # noqa: F401

NUL = "\x00"


def refused(answer, status: int, loc: list | None = None) -> None:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert "database" not in answer.get_data(as_text=True)
    if loc is not None:
        assert [problem["loc"] for problem in answer.json["detail"]] == [loc]
        assert answer.json["detail"][0]["msg"] == "NUL characters are not allowed."


@pytest.mark.parametrize("body, loc", [
    ({**VERIFY, "reference": f"pri{NUL}123"}, ["body", "reference"]),
    ({**VERIFY, "config_key": f"my_mailgun{NUL}"}, ["body", "config_key"]),
    ({**VERIFY, "body_params": {**VERIFY["body_params"], f"x{NUL}": 1}}, ["body", "body_params"]),
    ({**VERIFY, "to": f"s{NUL}@example.com"}, ["body", "to"]),
])
@pytest.mark.slow
def test_a_nul_in_a_send_body_is_422_naming_the_field(client, us, body, loc):
    refused(client.post(SEND, json=body, headers=bearer(auth.SEND)), 422, loc)
    refused(client.post(SEND, json=body, headers={**bearer(auth.SEND), "Prefer": "respond-async"}), 422, loc)
    assert us.requests == []


@pytest.mark.parametrize("name", ["reference", "config_key", "status", "action_type", "to", "since"])
@pytest.mark.slow
def test_a_nul_in_a_list_filter_is_422_naming_the_parameter(client, name):
    answer = client.get(MESSAGES, query_string={name: f"pri{NUL}1"}, headers=bearer(auth.READ))
    refused(answer, 422, ["query", name])


@pytest.mark.parametrize("method, path", [
    ("get", f"{MESSAGES}/msg_{NUL}x"),
    ("delete", f"{MESSAGES}/msg_{NUL}x"),
    ("post", f"{MESSAGES}/msg_{NUL}x/resend"),
    ("post", f"{MESSAGES}/msg_{NUL}x/content"),
    ("get", f"/api/v1/email/config/my{NUL}mailgun"),
    ("post", f"/api/v1/email/webhooks/mailgun/my{NUL}mailgun"),
])
@pytest.mark.slow
def test_a_nul_in_a_path_is_404(client, method, path):
    encoded = path.replace(NUL, "%00")
    refused(getattr(client, method)(encoded, json={}, headers=bearer()), 404)


def test_a_nul_anywhere_else_is_422_too(client):
    refused(client.post("/api/v1/email/config", json={**CONFIG, "key": "other", "name": f"x{NUL}"}, headers=bearer()),
            422, ["body", "name"])
    refused(client.put("/api/v1/email/config/my_mailgun/secret", json={"mailgun_api_key": f"key{NUL}"},
                       headers=bearer()), 422, ["body", "mailgun_api_key"])
    assert client.get(MESSAGES, headers=bearer(auth.READ)).json["total"] == 0  # nothing was recorded
