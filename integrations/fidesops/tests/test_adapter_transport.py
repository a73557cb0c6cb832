"""Where the adapter's request goes, and what it takes for a sent email (issue 21, finding 6).

The request carries the bearer token, the address and the one-time code: it goes to FIDESMAIL_URL only.
A redirect is not followed (requests would re-post the email wherever it points), the environment's
HTTP_PROXY is not used (only FIDESMAIL_PROXY names a proxy), and a 200 that is not fidesmail's send
answer is a failure. Real HTTP servers on 127.0.0.1 stand in for a misdirected fidesmail and a proxy.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from adapter_fixtures import adapter_env, fidesmail, fidesops, mailgun, send_token, stub_dir  # noqa: F401
from adapter_support import sent_to


class Recorder:
    """An HTTP server that records every request (method, target, headers, body) and answers as told."""

    def __init__(self, status=200, body: bytes = b"", headers=None):
        self.seen: list[dict] = []
        self.answer = (status, body, headers or {"Content-Type": "application/json"})
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                recorder.seen.append({"target": self.path, "headers": dict(self.headers),
                                      "body": self.rfile.read(length)})
                status, body, headers = recorder.answer
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorders():
    made = []

    def make(*args, **kwargs) -> Recorder:
        made.append(Recorder(*args, **kwargs))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close()


def _dispatch(fidesops, to="subject@example.com"):
    service = fidesops("fidesops.ops.service.email.email_dispatch_service")
    service.dispatch_email(None, "subject_identity_verification", to,
                           {"verification_code": "135790", "verification_code_ttl_seconds": 600})


def _refused(fidesops) -> str:
    exception = fidesops("fidesops.ops.common_exceptions").EmailDispatchException
    with pytest.raises(exception) as caught:
        _dispatch(fidesops)
    return str(caught.value)


@pytest.mark.slow
def test_a_redirect_is_not_followed_so_the_email_goes_nowhere_else(fidesops, adapter_env, recorders):
    elsewhere = recorders()
    misdirected = recorders(307, b"", {"Location": elsewhere.url + "/collect"})
    fidesops.install({**adapter_env, "FIDESMAIL_URL": misdirected.url})
    assert _refused(fidesops).startswith("fidesmail refused the email (307): fidesmail answered with a redirect, "
                                         "which is not followed")
    assert len(misdirected.seen) == 1 and elsewhere.seen == []


@pytest.mark.parametrize("body, content_type", [(b"{}", "application/json"), (b"<html>OK</html>", "text/html"),
                                                (b'{"id": "<x@mg>", "status": "accepted"}', "application/json")])
def test_a_200_that_is_not_fidesmails_send_answer_is_a_failure(fidesops, adapter_env, recorders, body, content_type):
    impostor = recorders(200, body, {"Content-Type": content_type})
    fidesops.install({**adapter_env, "FIDESMAIL_URL": impostor.url})
    assert "fidesmail's answer names no message_id" in _refused(fidesops)


def test_the_environments_proxy_never_carries_the_token(fidesops, adapter_env, recorders, mailgun, monkeypatch,
                                                        send_token):
    proxy = recorders(502, b"")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    _dispatch(fidesops, to="direct@example.com")  # straight to fidesmail, and on to Mailgun
    assert len(sent_to(mailgun, "direct@example.com")) == 1
    assert proxy.seen == []


def test_a_proxy_is_used_when_the_deployment_names_it(fidesops, adapter_env, recorders, send_token):
    answer = {"id": "<1@mg>", "message": "Queued. Thank you.", "config_key": "k", "message_id": "msg_1",
              "status": "accepted"}
    proxy = recorders(200, json.dumps(answer).encode())
    fidesops.install({**adapter_env, "FIDESMAIL_PROXY": proxy.url})
    _dispatch(fidesops)
    [seen] = proxy.seen
    assert seen["target"] == adapter_env["FIDESMAIL_URL"] + "/api/v1/email/send"  # a forward proxy's request
    assert seen["headers"]["Authorization"] == f"Bearer {send_token}"


def test_a_proxy_setting_that_cannot_be_used_fails_each_send_naming_it(fidesops, adapter_env):
    fidesops.install({**adapter_env, "FIDESMAIL_PROXY": "proxy.internal:3128"})
    message = _refused(fidesops)
    assert "FIDESMAIL_PROXY must be an http://" in message and "proxy.internal" not in message
