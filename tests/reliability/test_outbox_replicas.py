"""Part 8, replicas: three `python app.py` on one PostgreSQL share the outbox while one of them is
SIGKILLed every few seconds and started again, through a Mailgun outage at the start. Every queued
message is posted at most once per allowed retry: 0 accepted by Mailgun twice, 0 lost, every message
`accepted` or `unknown` (its replica killed while posting it) with that reason. The test Mailgun counts
posts per `v:fidesmail-message-id`.
"""

from __future__ import annotations

import random
import threading
import time

from fidesmail.records.messages import _STOPPED
from tests.mailgun_fake import MailgunFake
from tests.support import SECRET, Server

from .outbox_parts import Queuers, drained, judge, prepare, records
from .support import report, scaled

DOMAIN, KEY = "mg.example.com", "key-" + "3e91" * 8
REPLICAS = 3


def test_three_replicas_post_each_message_once_while_one_is_killed_every_few_seconds(tmp_path, tree,
                                                                                     postgres_url):
    total = scaled(1000, 10000)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    instances = [tmp_path / f"instance-{n}" for n in range(REPLICAS)]
    prepare(tree, instances, {"outbox": (DOMAIN, KEY)})
    started = time.monotonic()
    with MailgunFake(domains={DOMAIN: KEY}) as fake:
        fake.latency = 0.1  # a Mailgun that takes its time: the queue drains while replicas die
        fake.random_faults(p_5xx=0.05, p_429=0, p_slow=0, p_close=0, seed=seed)

        def env(n):
            return {"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(instances[n]),
                    "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_MAILGUN_BASE_URL": fake.base_url,
                    "FIDESMAIL_DATABASE_URL": postgres_url, "WEB_CONCURRENCY": "1", "FIDESMAIL_THREADS": "4",
                    "FIDESMAIL_MAILGUN_TIMEOUT": "1", "FIDESMAIL_OUTBOX_BACKOFF": "0.05",
                    "FIDESMAIL_OUTBOX_MAX_BACKOFF": "0.3", "FIDESMAIL_OUTBOX_POLL": "0.2"}

        replicas = [Server(env(n), tmp_path).start() for n in range(REPLICAS)]
        up = list(replicas)
        lock = threading.Lock()

        def urls():
            with lock:
                return [r.url for r in up]

        # An outage while the queue fills: the config's gate closes, and three replicas race to probe,
        # park and reopen it (a race here once made a claimed probe due again, and its payload was lost).
        fake.refuse_for(scaled(2.0, 10.0), status=503)
        queuers = Queuers(urls, limit=total).start()
        kills, max_kills = 0, scaled(6, 60)
        try:
            while kills < max_kills:
                time.sleep(rng.uniform(1.0, 2.0))
                victim = rng.randrange(REPLICAS)
                with lock:
                    up.remove(replicas[victim])
                replicas[victim].kill()
                kills += 1
                replicas[victim] = Server(env(victim), tmp_path).start()
                with lock:
                    up.append(replicas[victim])
                if len(queuers.acked) >= total and drained(replicas[victim].url, timeout=0)["queued"] == 0:
                    break
            queuers.join(60)
            left = drained(replicas[0].url, timeout=90)
        finally:
            queuers.stop.set()
            for replica in replicas:
                replica.stop()
        posts, accepted_posts = fake.posts_by_message(), fake.posts_by_message(accepted_only=True)
    found = records(postgres_url)
    verdict = judge(queuers.acked, found, accepted_posts, _STOPPED)
    assert len(queuers.acked) == total, (len(queuers.acked), queuers.statuses)
    assert left["queued"] == left["sending"] == 0 and found["outbox_rows"] == 0, left
    assert verdict["problems"] == [], verdict["problems"][:20]
    figures = verdict["figures"]
    report("8 outbox on 3 replicas", replicas=REPLICAS, queued=total, sigkills=kills,
           requests_cut_by_a_kill=queuers.failed_requests, accepted_once=figures.get("accepted", 0),
           unknown_killed_while_posting=figures.get("unknown_killed_while_posting", 0),
           of_which_reached_mailgun=figures.get("of_which_reached_mailgun", 0), mailgun_posts=sum(posts.values()),
           refused_503=sum(posts.values()) - sum(accepted_posts.values()), posted_twice=figures["posted_twice"],
           lost=figures["lost"], seconds=round(time.monotonic() - started, 1), seed=seed)
