"""Part 10, failover under kill -9: a Mailgun config falling back to SendGrid, `python app.py` (two workers)
SIGKILLed, the whole process group, at random moments while 8 clients queue messages (Prefer: respond-async)
and the test Mailgun goes down (503 to everything) and comes back at random. After the last restart every
acknowledged (202) message reached exactly one provider, once, and its record names that one (`sent_via`,
`provider`); or it is `unknown` because its worker was killed while posting it. None lost, none posted twice.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from fidesmail.records.messages import _STOPPED
from tests.mailgun_fake import MailgunFake
from tests.provider_cases import SENDGRID, SENDGRID_KEY
from tests.support import Server

from .outbox_parts import crash_env, drained, judge, prepare_documents, queue_under_kills, records
from .support import report, scaled

DOMAIN, KEY = "mg.example.com", "key-" + "fa11" * 8
CONFIGS = {
    "primary": ({"key": "primary", "name": "primary", "service_type": "mailgun", "fallback": "backup",
                 "details": {"domain": DOMAIN, "is_eu_domain": False, "api_version": "v3"}}, {"mailgun_api_key": KEY}),
    "backup": (SENDGRID.config("backup", twilio_email_from="Privacy <privacy@example.com>"),
               {"twilio_api_key": SENDGRID_KEY}),
}


class Flapping(threading.Thread):
    """The primary's stand-in going down and up at random until stopped (its outages counted)."""

    def __init__(self, fake, rng: random.Random):
        super().__init__(daemon=True)
        self.fake, self.rng, self.stop, self.outages = fake, rng, threading.Event(), 0

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.1, 0.8)):
            if self.fake.is_down:
                self.fake.up()
            else:
                self.fake.down()
                self.outages += 1
        self.fake.up()


def test_failover_while_the_primary_flaps_and_the_service_is_killed_loses_nothing_and_sends_once(tmp_path, tree):
    cycles = scaled(6, 40)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    instance = tmp_path / "instance"
    prepare_documents(tree, [instance], CONFIGS)
    started = time.monotonic()
    with MailgunFake(domains={DOMAIN: KEY}) as mailgun, SENDGRID.make_standin() as sendgrid:
        env = {**crash_env(tree, instance, mailgun.base_url), "FIDESMAIL_SENDGRID_BASE_URL": sendgrid.base_url}
        flapping = Flapping(mailgun, random.Random(seed + 1))
        flapping.start()
        try:
            acked, failed_requests = queue_under_kills(env, tmp_path, cycles, rng, configs=("primary",))
        finally:
            flapping.stop.set()
            flapping.join()
        server = Server(env, tmp_path).start()  # the primary is up again: what is left drains
        try:
            left = drained(server.url, timeout=60)
        finally:
            assert server.stop() == 0
        by_mailgun = Counter(mailgun.posts_by_message(accepted_only=True))
        by_sendgrid = Counter(a.fidesmail_message_id for a in sendgrid.accepted)
        mailgun_posts = sum(mailgun.posts_by_message().values())
    found = records(f"sqlite:///{instance / 'fidesmail.db'}")
    verdict = judge(acked, found, by_mailgun + by_sendgrid, _STOPPED)
    rows = found["rows"]
    wrong_name = [m for m in acked if rows.get(m) is not None and rows[m].status == "accepted"
                  and (rows[m].sent_via, rows[m].provider) != (("primary", "mailgun") if by_mailgun[m] else
                                                               ("backup", "twilio_email"))]
    assert left["queued"] == left["sending"] == 0 and found["outbox_rows"] == 0, left
    assert verdict["problems"] == [], verdict["problems"][:20]
    assert wrong_name == [], wrong_name[:20]
    figures = verdict["figures"]
    accepted = [m for m in acked if rows[m].status == "accepted"]
    report("10 failover under kill -9", sigkills=cycles, primary_outages=flapping.outages,
           acknowledged_202=len(acked), requests_cut_by_a_kill=failed_requests,
           accepted_once=figures.get("accepted", 0),
           via_primary=sum(1 for m in accepted if rows[m].sent_via == "primary"),
           via_fallback=sum(1 for m in accepted if rows[m].sent_via == "backup"),
           unknown_killed_while_posting=figures.get("unknown_killed_while_posting", 0),
           of_which_reached_a_provider=figures.get("of_which_reached_mailgun", 0),
           mailgun_posts=mailgun_posts, mailgun_refused=mailgun_posts - sum(by_mailgun.values()),
           posted_twice=figures["posted_twice"], lost=figures["lost"],
           seconds=round(time.monotonic() - started, 1), seed=seed)
