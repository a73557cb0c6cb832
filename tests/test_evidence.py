"""Signed evidence bundles (contract section 17): the bundle, the public key, `flask messages verify-bundle`,
and docs/evidence.md's 20-line verifier run against real bundles, intact, altered in one byte, and
signed by another key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fidesmail.records import canonical, evidence
from fidesmail.runtime import services
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import ROOT, bearer, configure_mailgun

KEY = "key-" + "e71de0" * 5
SIGNING_KEY = "whsec-" + "5eed" * 6
SEND = "/api/v1/email/send"
EVIDENCE = "/api/v1/email/messages/evidence"
PUBLIC_KEY = "/api/v1/email/evidence-key"
HOOK = "/api/v1/email/webhooks/mailgun/my_mailgun"
TO = "Requester@Example.com"
RECEIPT = {"action_type": "privacy_request_receipt", "to": TO, "reference": "pri_ev",
           "body_params": {"request_types": ["access", "erasure"]}}
VERIFIER = re.search(r"## A verifier in 20 lines.*?```python\n(.*?)```", (ROOT / "docs" / "evidence.md").read_text(),
                     re.S).group(1)


@pytest.fixture
def us():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def client(make_app, us, database_url):
    client = make_app(MAILGUN_BASE_URL=us.base_url, MAILGUN_TIMEOUT=1.0, MAILGUN_RETRIES=0,
                      DATABASE_URL=database_url).test_client()
    configure_mailgun(client, {"mailgun_api_key": KEY, "mailgun_webhook_signing_key": SIGNING_KEY})
    return client


def delivered(client, message_id):
    """Mailgun's signed `delivered` event for a message, posted to the webhook."""
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(SIGNING_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {"event": "delivered", "timestamp": time.time(), "id": secrets.token_hex(8),
                           "user-variables": {"fidesmail-message-id": message_id}}}
    assert client.post(HOOK, json=body).status_code == 200


@pytest.fixture
def sent(client, us):
    """Three sends of one privacy request (a failed one among them), one delivered; their message ids."""
    first = client.post(SEND, json=RECEIPT, headers=bearer(auth.SEND)).json["message_id"]
    us.fail_next(400, message="'to' parameter is not a valid address")
    failed = client.post(SEND, json=RECEIPT, headers=bearer(auth.SEND)).json["message_id"]
    third = client.post(SEND, json={**RECEIPT, "action_type": "privacy_request_complete_deletion",
                                    "body_params": {}}, headers=bearer(auth.SEND)).json["message_id"]
    client.post(SEND, json={**RECEIPT, "reference": "pri_other"}, headers=bearer(auth.SEND))
    delivered(client, first)
    return [first, failed, third]


def fetch(client, reference="pri_ev"):
    answer = client.get(EVIDENCE, query_string={"reference": reference}, headers=bearer(auth.READ))
    assert answer.status_code == 200, answer.json
    return answer.get_data()


def test_a_bundle_holds_every_record_of_the_reference_as_served_and_is_signed(client, sent):
    raw = fetch(client)
    document = json.loads(raw)
    assert raw == canonical.dumps(document)  # served canonical, byte for byte
    bundle = document["bundle"]
    assert bundle["format"] == "fidesmail-evidence/1" and bundle["reference"] == "pri_ev"
    assert [r["message_id"] for r in bundle["records"]] == sent  # oldest first, only this reference
    for record in bundle["records"]:
        served = client.get(f"/api/v1/email/messages/{record['message_id']}", headers=bearer(auth.READ)).json
        assert record == served
        assert record["content_digest"] and record["attempts"]
    first, failed, _ = bundle["records"]
    assert first["events"][0]["event"] == "delivered" and len(first["events"][0]["mailgun"]["signature"]) == 64
    assert failed["status"] == "failed" and failed["attempts"][0]["http_status"] == 400
    assert "requester" not in raw.decode().lower()  # never the address
    published = client.get(PUBLIC_KEY).json  # no token
    assert published["algorithm"] == "Ed25519" and published["key_id"] == bundle["key_id"]
    public_key = services.of(client.application).evidence_key.public()
    assert base64.b64decode(published["public_key"]) == evidence.raw(public_key)
    public_key.verify(base64.b64decode(document["signature"]["value"]), canonical.dumps(bundle))


def test_evidence_needs_a_reference_and_email_read_and_is_not_a_message_id(client, sent):
    assert client.get(EVIDENCE, query_string={"reference": "pri_ev"}).status_code == 401
    assert client.get(EVIDENCE, query_string={"reference": "pri_ev"}, headers=bearer(auth.SEND)).status_code == 403
    missing = client.get(EVIDENCE, headers=bearer(auth.READ))
    assert missing.status_code == 422 and missing.json["detail"][0]["loc"] == ["query", "reference"]
    nothing = client.get(EVIDENCE, query_string={"reference": "pri_none"}, headers=bearer(auth.READ))
    assert nothing.status_code == 404 and "pri_none" in nothing.json["detail"]


def altered_in_one_byte(raw: bytes, record: dict) -> bytes:
    """The bundle with one byte changed inside one record (its canonical bytes appear in the file verbatim)."""
    start = raw.index(canonical.dumps(record))
    at = raw.index(b'"status":"', start) + len(b'"status":"')
    return raw[:at] + bytes([raw[at] ^ 0x20]) + raw[at + 1:]  # accepted -> Accepted


def signed_by_another_key(raw: bytes) -> bytes:
    """The same bundle signed by someone else's key, which it names and carries."""
    document = json.loads(raw)
    other = Ed25519PrivateKey.generate()
    public = evidence.raw(other.public_key())
    document["signature"].update(key_id=hashlib.sha256(public).hexdigest()[:16],
                                 public_key=base64.b64encode(public).decode(),
                                 value=base64.b64encode(other.sign(canonical.dumps(document["bundle"]))).decode())
    return canonical.dumps(document)


def test_verify_bundle_passes_an_intact_bundle_and_names_the_altered_record(client, sent, runner, tmp_path):
    raw = fetch(client)
    record = json.loads(raw)["bundle"]["records"][1]
    files = {"intact": raw, "altered": altered_in_one_byte(raw, record), "foreign": signed_by_another_key(raw)}
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_bytes(data)
    intact = runner.invoke(args=["messages", "verify-bundle", str(tmp_path / "intact.json")])
    assert intact.exit_code == 0 and "intact: 3 record(s) of reference pri_ev" in intact.output
    altered = runner.invoke(args=["messages", "verify-bundle", str(tmp_path / "altered.json")])
    assert altered.exit_code == 1
    assert f"altered: record {record['message_id']}" in altered.output
    assert sent[0] not in altered.output and sent[2] not in altered.output  # only the altered one is named
    foreign = runner.invoke(args=["messages", "verify-bundle", str(tmp_path / "foreign.json")])
    assert foreign.exit_code == 1 and "not signed by this service's evidence key" in foreign.output
    (tmp_path / "junk.json").write_text("{not json")
    assert runner.invoke(args=["messages", "verify-bundle", str(tmp_path / "junk.json")]).exit_code == 1


def test_the_documented_verifier_checks_real_bundles(client, sent, tmp_path):
    assert len(VERIFIER.strip().splitlines()) <= 20
    script = tmp_path / "verify_bundle.py"
    script.write_text(VERIFIER)
    raw = fetch(client)
    public_key = client.get(PUBLIC_KEY).json["public_key"]
    record = json.loads(raw)["bundle"]["records"][0]
    cases = {"intact": raw, "altered": altered_in_one_byte(raw, record), "foreign": signed_by_another_key(raw)}
    results = {}
    for name, data in cases.items():
        (tmp_path / f"{name}.json").write_bytes(data)
        run = subprocess.run([sys.executable, str(script), str(tmp_path / f"{name}.json"), public_key],
                             capture_output=True, text=True, timeout=30)
        results[name] = (run.returncode, run.stdout)
    assert results["intact"] == (0, "intact\n")
    assert results["altered"][0] == 1 and f"altered: {record['message_id']}" in results["altered"][1]
    assert results["foreign"][0] == 1 and "does not verify" in results["foreign"][1]


def test_the_evidence_key_is_generated_into_the_instance_dir_once(client, tmp_path):
    path = tmp_path / "instance" / "evidence.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    before = client.get(PUBLIC_KEY).json
    services.of(client.application).evidence_key.ensure()  # a second start keeps it
    assert client.get(PUBLIC_KEY).json == before


@pytest.mark.slow
def test_verify_bundle_without_the_service_key_says_where_it_looked(tmp_path):
    bundle = tmp_path / "b.json"
    bundle.write_text("{}")
    env = {"PATH": "/usr/bin:/bin", "FIDESMAIL_CONFIG_DIR": str(tmp_path), "FIDESMAIL_INSTANCE_DIR":
           str(tmp_path / "nowhere")}
    run = subprocess.run([sys.executable, "-m", "flask", "messages", "verify-bundle", str(bundle)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "evidence.key" in run.stderr and "does not exist" in run.stderr
    assert not (tmp_path / "nowhere").exists()  # a command writes nothing


def test_canonical_json_refuses_what_it_cannot_carry():
    assert canonical.dumps({"b": [1, True, None], "a": "é\n\u2028\x7f"}) == \
        '{"a":"é\\n\u2028\x7f","b":[1,true,null]}'.encode()
    for value in (1.5, 2**60, {1: "a"}, b"bytes"):
        with pytest.raises(canonical.NotCanonical):
            canonical.dumps(value)
    assert canonical.integral({"a": [2.0, 0.25]}) == {"a": [2, "0.25"]}
