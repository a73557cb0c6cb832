"""What operators watch: one JSON log line per request, send outcomes, /metrics over every worker."""

from __future__ import annotations

import json
import re

import requests

from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, bearer

KEY = "key-" + "5e1f" * 8
URL = "/api/v1/email/config"


def json_lines(text):
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def metric(text, name, **labels):
    """The value of one sample in the Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_request_lines_and_send_lines_under_gunicorn(server):
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        srv = server(FIDESMAIL_MAILGUN_BASE_URL=fake.base_url, WEB_CONCURRENCY="2")
        requests.post(srv.url + URL, json=CONFIG, headers=bearer()).raise_for_status()
        requests.put(f"{srv.url}{URL}/my_mailgun/secret", json={"mailgun_api_key": KEY},
                     headers=bearer()).raise_for_status()
        answer = requests.get(srv.url + "/health", headers={"X-Request-ID": "trace-42"})
        assert answer.headers["X-Request-ID"] == "trace-42"
        generated = requests.get(srv.url + "/health", headers={"X-Request-ID": "bad id\twith tab"})
        assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
        sent = requests.post(srv.url + "/api/v1/email/send", headers=bearer(auth.SEND), json={
            "action_type": "subject_identity_verification", "to": "subject@example.com",
            "body_params": {"verification_code": "987654", "verification_code_ttl_seconds": 600}}).json()
        fake.fail_next(400, message="'to' parameter is not a valid address")
        requests.post(srv.url + "/api/v1/email/send", headers=bearer(auth.SEND),
                      json={"action_type": "test_message", "to": "other@example.com"})
        assert srv.stop() == 0
    lines = json_lines(srv.log())
    health = [entry for entry in lines if entry.get("request_id") == "trace-42" and "status" in entry]
    assert len(health) == 1
    assert {"method": "GET", "path": "/health", "status": 200}.items() <= health[0].items()
    assert health[0]["duration_ms"] >= 0 and health[0]["level"] == "INFO"
    sends = [entry for entry in lines if entry.get("action_type")]
    ok = next(e for e in sends if e["outcome"] == "sent")
    assert ok["provider_message_id"] == sent["id"] and ok["provider"] == "mailgun" and ok["config_key"] == "my_mailgun"
    assert ok["to"] == "s***@example.com" and ok["request_id"]
    refused = next(e for e in sends if e["outcome"] == "refused")
    assert refused["action_type"] == "test_message" and refused["to"] == "o***@example.com"
    log = srv.log()
    for secret in (KEY, "subject@example.com", "other@example.com", "987654"):
        assert secret not in log


def test_metrics_need_a_token_and_sum_every_worker(server):
    srv = server(WEB_CONCURRENCY="2")
    assert requests.get(srv.url + "/metrics").status_code == 401
    before = requests.get(srv.url + "/metrics", headers=bearer(auth.READ)).text
    for _ in range(30):  # fresh connections spread over both workers
        requests.get(srv.url + "/health")
    requests.get(srv.url + URL + "/nope", headers=bearer())
    text = requests.get(srv.url + "/metrics", headers=bearer(auth.READ)).text
    health = dict(name="fidesmail_requests_total", endpoint="/health", method="GET", status="200")
    assert metric(text, **health) - metric(before, **health) == 30
    assert metric(text, "fidesmail_requests_total", endpoint="/api/v1/email/config/<key>", method="GET",
                  status="404") == 1
    assert metric(text, "fidesmail_config_reloads_total") >= 1
    assert "fidesmail_configs_loaded" in text


def test_send_metrics_count_outcomes(make_app):
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        client = make_app(MAILGUN_BASE_URL=fake.base_url, MAILGUN_RETRIES=0).test_client()
        client.post(URL, json=CONFIG, headers=bearer())
        client.put(f"{URL}/my_mailgun/secret", json={"mailgun_api_key": KEY}, headers=bearer())
        body = {"action_type": "test_message", "to": "a@example.com"}
        client.post("/api/v1/email/send", json=body, headers=bearer())
        fake.fail_next(500)
        client.post("/api/v1/email/send", json=body, headers=bearer())
    text = client.get("/metrics", headers=bearer()).get_data(as_text=True)
    sends = {"name": "fidesmail_sends_total", "action_type": "test_message", "provider": "mailgun"}
    assert metric(text, **sends, outcome="sent") == 1
    assert metric(text, **sends, outcome="refused") == 1
    assert metric(text, "fidesmail_provider_latency_seconds_count", provider="mailgun") == 2
    assert metric(text, "fidesmail_configs_loaded") == 1


def test_metrics_read_reads_metrics_and_nothing_else(client):
    """Contract section 3: Prometheus gets a token that reads /metrics alone; email:read still reads it too."""
    prometheus = bearer(auth.METRICS)
    answer = client.get("/metrics", headers=prometheus)
    assert answer.status_code == 200 and "fidesmail_requests_total" in answer.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer(auth.READ)).status_code == 200
    for path in ("/api/v1/email/config", "/api/v1/email/messages"):
        assert client.get(path, headers=prometheus).status_code == 403
    assert client.post("/api/v1/email/send", json={"action_type": "test_message", "to": "a@example.com"},
                       headers=prometheus).status_code == 403
    assert client.get("/metrics", headers=bearer(auth.SEND)).status_code == 403


def test_a_request_line_is_json_whatever_the_path_holds(client):
    """The request line is written without json.dumps (runtime/logs.py): a path with quotes, backslashes,
    control and non-ASCII characters still makes one JSON line that names it exactly."""
    import io
    import logging

    from fidesmail.runtime import logs

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JSONFormatter())
    logging.getLogger().addHandler(handler)
    key = 'a"b\\c\x01é\u2028ü𝄞'
    try:
        answer = client.get(f"{URL}/{key}", headers={**bearer(), "X-Request-ID": "trace-43"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert answer.status_code == 404 and answer.headers["X-Request-ID"] == "trace-43"
    # split("\n"), not splitlines(): U+2028 is not a line break in a log stream
    lines = [json.loads(line) for line in out.getvalue().split("\n") if line]
    line = next(entry for entry in lines if entry.get("request_id") == "trace-43" and "status" in entry)
    assert line["path"] == f"{URL}/{key}" and line["status"] == 404 and line["method"] == "GET"
    assert line["msg"] == f"GET {URL}/{key} 404" and isinstance(line["duration_ms"], float)
