"""Part 4, Mailgun unreachable: connection refused, a name that does not resolve, a TLS error and a
server that never answers each give the contract's answer (502, or 504 when the request went out)
within the configured timeout and retries, with a detail a person can act on, and never the key."""

from __future__ import annotations

import base64
import datetime
import logging
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import bearer, configure_mailgun, free_port

from .support import report

URL = "/api/v1/email/config"
KEY = "key-" + "d00d" * 8
TIMEOUT, RETRIES, BACKOFF = 0.5, 2, 0.05
# Every try may take the timeout, and the waits between them at most backoff * 2**(n-1) each.
BOUND = (RETRIES + 1) * TIMEOUT + sum(BACKOFF * 2**n for n in range(RETRIES)) + 1.0
FIGURES: dict[str, str] = {}
SEND = {"action_type": "test_message", "to": "subject@example.com"}


class _Listener:
    """A TCP server on 127.0.0.1 that accepts connections and then does `behaviour(conn)`."""

    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.connections = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self.behaviour, args=(conn,), daemon=True).start()

    def close(self):
        self.sock.close()
        for conn in self.connections:
            conn.close()


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.fixture
def endpoints(tmp_path):
    """Base URLs that fail in each way, by name, with the words the detail must carry."""
    fake = MailgunFake(domains={"mg.example.com": KEY}).start()  # plain HTTP: an https URL to it fails TLS
    silent = _Listener(lambda conn: None)  # accepts, reads nothing, never answers
    tls = _self_signed(tmp_path)

    def handshake(conn):
        try:
            tls.wrap_socket(conn, server_side=True).recv(1)
        except (OSError, ssl.SSLError):
            pass

    untrusted = _Listener(handshake)
    yield {
        "connection refused": (f"http://127.0.0.1:{free_port()}", 502, ["refused", "127.0.0.1"]),
        "DNS failure": ("https://api.mailgun.invalid", 502, ["resolve", "api.mailgun.invalid", "DNS"]),
        # Regression: these two said only "WRONG_VERSION_NUMBER" / "self-signed certificate".
        "TLS to a plain HTTP port": (f"https://127.0.0.1:{fake.port}", 502,
                                     ["TLS", f"127.0.0.1:{fake.port}", "does not speak TLS", "http://"]),
        "TLS certificate not trusted": (f"https://127.0.0.1:{untrusted.port}", 502,
                                        ["TLS", "not trusted", "self-signed", "REQUESTS_CA_BUNDLE"]),
        "never answers": (f"http://127.0.0.1:{silent.port}", 504, ["did not answer", f"{TIMEOUT:g} s"]),
    }
    fake.close()
    silent.close()
    untrusted.close()


CASES = ["connection refused", "DNS failure", "TLS to a plain HTTP port", "TLS certificate not trusted",
         "never answers"]


@pytest.mark.parametrize("case", CASES)
def test_unreachable_mailgun_gives_an_actionable_answer_in_time(make_app, endpoints, case, caplog):
    base_url, status, words = endpoints[case]
    app = make_app(MAILGUN_BASE_URL=base_url, MAILGUN_TIMEOUT=TIMEOUT, MAILGUN_RETRIES=RETRIES,
                   MAILGUN_BACKOFF=BACKOFF)
    client = app.test_client()
    configure_mailgun(client, KEY)
    caplog.set_level(logging.DEBUG)

    started = time.monotonic()
    answer = client.post("/api/v1/email/send", json=SEND, headers={**bearer(auth.SEND), "Idempotency-Key": case})
    took = time.monotonic() - started
    detail = answer.json["detail"]
    assert answer.status_code == status, detail
    assert took <= BOUND, f"{case}: {took:.2f} s > {BOUND:.2f} s"
    for word in words:
        assert word in detail, f"{case}: {word!r} not in {detail!r}"

    tested = client.post(f"{URL}/my_mailgun/test", json={"to": "subject@example.com"}, headers=bearer(auth.SEND))
    assert tested.status_code == 200 and tested.json["test_status"] == "failed"
    assert all(word in tested.json["failure_reason"] for word in words)

    basic = base64.b64encode(f"api:{KEY}".encode()).decode()
    for text in (answer.get_data(as_text=True), tested.get_data(as_text=True), caplog.text):
        assert KEY not in text and basic not in text
    FIGURES[case] = f"{status} in {took:.2f}s"


def test_a_send_refused_for_an_unreachable_mailgun_is_sent_once_mailgun_is_back(make_app, tmp_path):
    """The Idempotency-Key of a send that never reached Mailgun is not kept: the retry sends."""
    body, key = SEND, {"Idempotency-Key": "back-again"}
    down = make_app(MAILGUN_BASE_URL=f"http://127.0.0.1:{free_port()}", MAILGUN_RETRIES=0).test_client()
    configure_mailgun(down, KEY)
    assert down.post("/api/v1/email/send", json=body, headers={**bearer(auth.SEND), **key}).status_code == 502
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        up = make_app(MAILGUN_BASE_URL=fake.base_url).test_client()
        first = up.post("/api/v1/email/send", json=body, headers={**bearer(auth.SEND), **key})
        again = up.post("/api/v1/email/send", json=body, headers={**bearer(auth.SEND), **key})
        assert first.status_code == 200 and again.json == first.json
        assert len(fake.sent) == 1


@pytest.fixture(scope="module", autouse=True)
def _report_figures():
    """After the module's tests: its figures, in the run's summary."""
    yield
    report("4 mailgun unreachable", timeout_s=TIMEOUT, retries=RETRIES, bound_s=round(BOUND, 2),
           **{case.replace(" ", "_"): FIGURES.get(case, "not run") for case in CASES}, key_leaked=0)
