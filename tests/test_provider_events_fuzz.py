"""Whatever is posted to a provider's webhook URL, the answer is a 200, 401 or 422 and never a 500 (contract
sections 4 and 15): bodies and signature headers drawn at random, for SendGrid, Mandrill and SNS."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.provider_cases import MANDRILL, SENDGRID, SES, URL
from tests.standins import sendgrid_events
from tests.support import bearer

HEADERS = {
    "twilio_email": (sendgrid_events.SIGNATURE_HEADER, sendgrid_events.TIMESTAMP_HEADER),
    "mailchimp_transactional": ("X-Mandrill-Signature",),
    "aws_ses": (),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from fidesmail import create_app
    from fidesmail.runtime import startup
    from tests.support import SECRET

    base = tmp_path_factory.mktemp("fuzz")
    (base / "config" / "email").mkdir(parents=True)
    app = create_app({"CONFIG_DIR": base / "config", "INSTANCE_DIR": base / "instance", "SECRET_KEYS": [SECRET],
                      "SEAL_KEY_FILE": base / "instance" / "seal.key", "WATCH_INTERVAL": 0,
                      "SNS_CERT_URL_PATTERN": r"^http://127\.0\.0\.1:9/"})  # nothing listens there
    app.config["TESTING"] = True
    startup.prepare(app)
    client = app.test_client()
    for case, secrets in ((SENDGRID, {"twilio_api_key": "SG.x" * 8,
                                      "twilio_email_webhook_public_key": sendgrid_events.EventSigner().public_key}),
                          (MANDRILL, {"mailchimp_transactional_api_key": "md-" + "x" * 20,
                                      "mailchimp_transactional_webhook_key": "whk-" + "y" * 20}),
                          (SES, {"auth_method": "automatic"})):
        assert client.post(URL, json=case.config(case.service_type), headers=bearer()).status_code == 200
        assert client.put(f"{URL}/{case.service_type}/secret", json=secrets, headers=bearer()).status_code == 200
    return client


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(service_type=st.sampled_from(sorted(HEADERS)), body=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.dictionaries(st.sampled_from(["Type", "MessageId", "TopicArn", "Message", "Signature", "SignatureVersion",
                                     "SigningCertURL", "SubscribeURL", "Timestamp", "Token"]),
                    st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.integers(), max_size=2)))
    .map(lambda d: json.dumps(d).encode())),
    values=st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80), min_size=2,
                    max_size=2))
@example(service_type="aws_ses", body=b'{"Type": ["Notification"]}', values=["", ""])  # once a TypeError (500)
def test_no_input_gives_a_500(client, service_type, body, values):
    headers = dict(zip(HEADERS[service_type], values, strict=False))
    answer = client.post(f"/api/v1/email/webhooks/{service_type}/{service_type}", data=body, headers=headers)
    assert answer.status_code in (200, 400, 401, 422), (answer.status_code, answer.get_data(as_text=True)[:300])
