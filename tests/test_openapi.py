"""The OpenAPI document: committed copy up to date, and the API fuzzed against it (schemathesis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, bearer

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
KEY = "key-" + "0a1b" * 8


def test_committed_document_is_up_to_date(client, headers):
    served = client.get("/openapi.json", headers=headers)
    assert served.status_code == 200
    assert json.loads(DOCUMENT.read_text()) == served.json, (
        "docs/openapi.json is stale: run `flask openapi write --format=json docs/openapi.json`")


def test_document_is_public(client, headers):
    """Contract section 3: /openapi.json needs no token (it is in the repository anyway), like /docs."""
    public = client.get("/openapi.json")
    assert public.status_code == 200
    assert public.json == client.get("/openapi.json", headers=headers).json
    assert client.get("/openapi.json", headers={"Authorization": "Bearer not-a-token"}).status_code == 200


def test_every_operation_names_its_scope_and_errors(client, headers):
    document = client.get("/openapi.json", headers=headers).json
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            assert operation["responses"].get("default"), (method, path)
            if path.startswith("/api/v1/email/webhooks/"):
                # Contract sections 3 and 15: providers' webhooks carry their signature instead of a bearer token.
                assert operation["security"] == [] and "x-required-scope" not in operation, (method, path)
                assert "signature" in operation["x-authentication"].lower() and "401" in operation["responses"]
            elif path not in ("/health", "/livez", "/readyz", "/api/v1/email/evidence-key"):  # public (section 3)
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
                # fidesmail's own scopes open /api/v1/email; fides' scopes, fides' /api/v1/messaging.
                family = ("messaging:", "messaging-template:") if path.startswith("/api/v1/messaging/") else ("email:",)
                assert operation["x-required-scope"].startswith(family), (method, path)
                assert {"401", "403"} <= operation["responses"].keys(), (method, path)


def test_every_header_the_api_reads_is_declared(client):
    """Contract section 4: Idempotency-Key, If-Match and Prefer are declared (Swagger's "Try it out" and generated
    clients send only what the document names), and the config answers declare their ETag."""
    paths = client.get("/openapi.json").json["paths"]

    def headers_of(path, method):
        return {p["name"] for p in paths[path][method].get("parameters", []) if p["in"] == "header"}

    for path in ("/api/v1/email/send", "/api/v1/email/messages/{message_id}/resend"):
        assert {"Idempotency-Key", "Prefer"} <= headers_of(path, "post"), path
    for method in ("patch", "delete"):
        assert "If-Match" in headers_of("/api/v1/email/config/{key}", method), method
    assert "If-None-Match" in headers_of("/api/v1/email/config/{key}", "get")
    for path, method in (("/api/v1/email/config/{key}", "get"), ("/api/v1/email/config/{key}", "patch"),
                         ("/api/v1/email/config", "post")):
        assert "ETag" in paths[path][method]["responses"]["200"].get("headers", {}), (method, path)


def test_summaries_are_one_plain_line(client):
    """Swagger shows a summary as it is: no Markdown backticks, no line break (descriptions may have both)."""
    for path, operations in client.get("/openapi.json").json["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "summary" in operation:
                summary = operation["summary"]
                assert "`" not in summary and "\n" not in summary, (method, path, summary)


@pytest.fixture
def fuzz_app(make_app):
    """An app with one config whose key is set, sending to a test Mailgun."""
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        app = make_app(MAILGUN_BASE_URL=fake.base_url, MAILGUN_EU_BASE_URL=fake.base_url, MAILGUN_TIMEOUT=1.0,
                       MAILGUN_RETRIES=0)
        client = app.test_client()
        client.post("/api/v1/email/config", json=CONFIG, headers=bearer())
        client.put("/api/v1/email/config/my_mailgun/secret", json={"mailgun_api_key": KEY}, headers=bearer())
        yield app


# What "matches its document" means here. Not positive_data_acceptance: some rules (a name that
# yields no key, a name already taken) cannot be written in the schema, so valid-looking input is
# rightly refused with 409/422.
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]


@pytest.mark.slow
def test_api_matches_its_document(fuzz_app):
    """On every operation: no 5xx, and every answer (status, content type, body) is one the document describes."""
    # Driven by hand rather than schemathesis' pytest plugin, which does not run under pytest 9.
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app, headers=bearer())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(case):
            case.call_and_validate(headers=bearer(), checks=CHECKS)

        fuzz()
