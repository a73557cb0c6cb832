"""Part 7, the outbox under kill -9: `python app.py` (two workers) SIGKILLed, the whole process group, at
random moments while 8 clients queue messages (Prefer: respond-async) and the test Mailgun answers 30% 503.
After the last restart every acknowledged (202) message reached Mailgun exactly once, or is `unknown`
because its worker was killed while posting it; none is lost, none posted twice.
"""

from __future__ import annotations

import random
import time

from fidesmail.records.messages import _STOPPED
from tests.mailgun_fake import MailgunFake
from tests.support import Server

from .outbox_parts import crash_env, drained, judge, prepare, queue_under_kills, records
from .support import report, scaled

DOMAIN, KEY = "mg.example.com", "key-" + "7e57" * 8


def test_kill_9_at_random_moments_loses_no_acknowledged_message(tmp_path, tree):
    cycles = scaled(6, 40)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    instance = tmp_path / "instance"
    prepare(tree, [instance], {"outbox": (DOMAIN, KEY)})
    started = time.monotonic()
    with MailgunFake(domains={DOMAIN: KEY}) as fake:
        fake.random_faults(p_5xx=0.3, p_429=0, p_slow=0, p_close=0, seed=seed)
        env = crash_env(tree, instance, fake.base_url)
        acked, failed_requests = queue_under_kills(env, tmp_path, cycles, rng)
        server = Server(env, tmp_path).start()
        try:
            left = drained(server.url, timeout=60)
        finally:
            assert server.stop() == 0
        posts, accepted_posts = fake.posts_by_message(), fake.posts_by_message(accepted_only=True)
    found = records(f"sqlite:///{instance / 'fidesmail.db'}")
    verdict = judge(acked, found, accepted_posts, _STOPPED)
    assert left["queued"] == left["sending"] == 0 and found["outbox_rows"] == 0, left
    assert verdict["problems"] == [], verdict["problems"][:20]
    figures = verdict["figures"]
    report("7 outbox under kill -9", sigkills=cycles, acknowledged_202=len(acked),
           requests_cut_by_a_kill=failed_requests, accepted_once=figures.get("accepted", 0),
           unknown_killed_while_posting=figures.get("unknown_killed_while_posting", 0),
           of_which_reached_mailgun=figures.get("of_which_reached_mailgun", 0),
           mailgun_posts=sum(posts.values()), refused_503=sum(posts.values()) - sum(accepted_posts.values()),
           posted_twice=figures["posted_twice"], lost=figures["lost"],
           seconds=round(time.monotonic() - started, 1), seed=seed)
