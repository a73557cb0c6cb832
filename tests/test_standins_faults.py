"""The faults and counts every stand-in shares (tests/standins/faults.py and server.py), Mailgun's included."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from tests.mailgun_fake import MailgunFake
from tests.standins.faults import Faults
from tests.standins.inbox import Inbox
from tests.standins.mandrill import MandrillFake
from tests.standins.sendgrid import SendGridFake
from tests.standins.ses import SesStandin
from tests.standins.sns import SnsSigner

SEND = {"key": "md-test-key", "message": {"from_email": "privacy@example.com", "subject": "s", "text": "t",
                                          "to": [{"email": "a@example.com"}]}}


def send(fake: MandrillFake) -> requests.Response:
    return requests.post(fake.base_url + "/messages/send", json=SEND, timeout=5)


def test_every_stand_in_has_the_shared_faults():
    for standin in (MailgunFake, SendGridFake, MandrillFake, SesStandin, SnsSigner, Inbox):
        assert issubclass(standin, Faults), standin
    with MailgunFake({"mg.example.com": "key-1"}) as mailgun:
        mailgun.fail_next(503)
        answer = requests.post(mailgun.base_url + "/v3/mg.example.com/messages", auth=("api", "key-1"),
                               data={"from": "a@mg.example.com", "to": "b@example.com", "text": "t"}, timeout=5)
        assert answer.status_code == 503 and mailgun.attempts == 1
        mailgun.throttle_next(retry_after=2)
        answer = requests.post(mailgun.base_url + "/v3/mg.example.com/messages", auth=("api", "key-1"), timeout=5)
        assert (answer.status_code, answer.headers["Retry-After"]) == (429, "2")


def test_an_outage_by_hand_and_its_end():
    with MandrillFake() as fake:
        down = requests.post(fake.root_url + "/fake/down?status=502", timeout=5).json()
        assert down["down"] is True
        assert send(fake).status_code == 502
        assert requests.post(fake.root_url + "/fake/up", timeout=5).json()["down"] is False
        assert send(fake).json()[0]["status"] == "sent"
        fake.refuse_for(0.2)
        assert send(fake).status_code == 503
        assert fake.wait_for(lambda: not fake.is_down, timeout=5)
        assert send(fake).status_code == 200
        assert requests.get(fake.root_url + "/fake/stats", timeout=5).json() == {
            "down": False, "attempts": 4, "accepted": 2}


def test_refusing_connections_until_up():
    with SendGridFake() as fake:
        assert requests.post(fake.base_url + "/fake/down?refuse=1", timeout=5).json()["down"] is True
        assert fake.wait_for(lambda: not fake.is_listening, timeout=5)
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", fake.port), timeout=2):
            pass
        fake.up()
        assert requests.get(fake.base_url + "/fake/stats", timeout=5).status_code == 200


def test_non_json_200_and_counts_under_concurrency():
    with MandrillFake() as fake:
        fake.non_json_200_next()
        answer = send(fake)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/html"
        results: list[int] = []

        def sender() -> None:
            with requests.Session() as session:
                for _ in range(5):
                    results.append(session.post(fake.base_url + "/messages/send", json=SEND, timeout=5).status_code)

        threads = [threading.Thread(target=sender) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 80
        assert fake.attempts == 81 and len(fake.wait_for_accepted(80)) == 80
        assert len({message.provider_id for message in fake.accepted}) == 80


def test_random_faults_repeat_with_a_seed():
    statuses = []
    for _ in range(2):
        with MandrillFake() as fake:
            fake.random_faults(p_5xx=0.3, p_429=0.2, p_slow=0, p_close=0, seed=7)
            statuses.append([send(fake).status_code for _ in range(20)])
    assert statuses[0] == statuses[1] and {200, 429, 503} <= set(statuses[0])


def test_a_receiver_outage_is_retried_by_the_webhook_poster():
    with SendGridFake() as fake, Inbox() as inbox:
        fake.events.retry_delay = 0.01
        fake.add_webhook(inbox.base_url, signed=False, events=["delivered"])
        inbox.fail_next(503)
        body = {"personalizations": [{"to": [{"email": "a@example.com"}]}], "subject": "s",
                "from": {"email": "privacy@example.com"}, "content": [{"type": "text/plain", "value": "t"}]}
        requests.post(fake.base_url + "/v3/mail/send", headers={"Authorization": "Bearer SG.test-key"}, json=body,
                      timeout=5)
        posts = fake.wait_for_webhooks(2)
        assert [(post.status, post.attempt) for post in posts] == [(503, 1), (200, 2)]
        assert posts[0].body == posts[1].body and len(inbox.received) == 1
