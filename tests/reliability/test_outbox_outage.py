"""Part 9, a Mailgun outage longer than the caller's budget (scaled down: seconds instead of minutes, a
short backoff and deadline). While the test Mailgun refuses, a synchronous send gives up (502) and
queued ones (Prefer: respond-async) wait; each config's queue waits behind its oldest message, so only
a few probes reach Mailgun. Once it is back every message goes out exactly once, in order of creation
within its config. And with a delivery deadline shorter than the outage, every message still refused at
the deadline is `failed` with "gave up after N attempts over T".
"""

from __future__ import annotations

import re
import time
from collections import Counter

import requests

from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import SECRET, Server, bearer

from .outbox_parts import BODY, SEND, Queuers, drained, prepare, records
from .support import report, scaled

CONFIGS = {"outbox_a": ("mga.example.com", "key-" + "a1" * 16), "outbox_b": ("mgb.example.com", "key-" + "b2" * 16)}


def _env(tree, instance, fake, **more):
    return {"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(instance),
            "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_MAILGUN_BASE_URL": fake.base_url,
            # One poster: the order Mailgun sees is the order the outbox posts in.
            "WEB_CONCURRENCY": "1", "FIDESMAIL_OUTBOX_CONCURRENCY": "1", "FIDESMAIL_MAILGUN_TIMEOUT": "1",
            "FIDESMAIL_MAILGUN_RETRIES": "2", "FIDESMAIL_MAILGUN_BACKOFF": "0.05",
            "FIDESMAIL_OUTBOX_BACKOFF": "0.2", "FIDESMAIL_OUTBOX_MAX_BACKOFF": "1", "FIDESMAIL_OUTBOX_POLL": "0.2",
            **more}


def test_an_outage_longer_than_the_callers_budget_queues_then_sends_in_order(tmp_path, tree):
    outage, total = scaled(4.0, 60.0), scaled(60, 600)
    instance = tmp_path / "instance"
    prepare(tree, [instance], CONFIGS)
    with MailgunFake(domains=dict(CONFIGS.values())) as fake:
        server = Server(_env(tree, instance, fake), tmp_path).start()
        try:
            fake.refuse_for(outage, status=503)
            down_at = time.monotonic()
            sync = requests.post(server.url + SEND, json={**BODY, "config_key": "outbox_a", "to": "s@example.com"},
                                 headers=bearer(auth.SEND), timeout=40)
            assert sync.status_code == 502, sync.text  # the caller's budget: retried, then given up
            queuers = Queuers(lambda: [server.url], clients=4, configs=tuple(CONFIGS), limit=total).start()
            queuers.join(60)
            assert len(queuers.acked) == total, queuers.statuses
            time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
            during = fake.attempts
            back_at = time.monotonic()
            left = drained(server.url, timeout=60)
            drain_seconds = time.monotonic() - back_at
        finally:
            assert server.stop() == 0
        accepted = [r.field("v:fidesmail-message-id") for r in fake.sent]
    rows = records(f"sqlite:///{instance / 'fidesmail.db'}")["rows"]
    assert left["queued"] == left["sending"] == 0
    assert sorted(accepted) == sorted(queuers.acked) and all(rows[m].status == "accepted" for m in queuers.acked)
    out_of_order = 0
    for config in CONFIGS:
        sent = [m for m in accepted if queuers.acked[m] == config]
        created = sorted(sent, key=lambda m: (rows[m].created_at, m))
        out_of_order += sum(1 for a, b in zip(sent, created, strict=True) if a != b)
    assert out_of_order == 0
    sync_tries = 3  # the synchronous send: 1 + FIDESMAIL_MAILGUN_RETRIES
    report("9 Mailgun outage", outage_seconds=outage, configs=len(CONFIGS), queued_202=total,
           synchronous_send="502 after 3 tries", mailgun_posts_during_outage=during,
           probes_of_the_queue=during - sync_tries, drained_after_back_seconds=round(drain_seconds, 2),
           sent_once=len(accepted), out_of_order=out_of_order, posted_twice=len(accepted) - len(set(accepted)))


def test_messages_still_refused_at_the_deadline_fail_with_gave_up(tmp_path, tree):
    deadline, total = scaled(3, 20), scaled(20, 200)
    instance = tmp_path / "instance"
    prepare(tree, [instance], CONFIGS)
    with MailgunFake(domains=dict(CONFIGS.values())) as fake:
        fake.down()
        server = Server(_env(tree, instance, fake, FIDESMAIL_DELIVERY_DEADLINE=str(deadline)), tmp_path).start()
        try:
            queuers = Queuers(lambda: [server.url], clients=4, configs=tuple(CONFIGS), limit=total).start()
            queuers.join(60)
            left = drained(server.url, timeout=deadline + 30)
        finally:
            assert server.stop() == 0
        posts = fake.attempts
    rows = records(f"sqlite:///{instance / 'fidesmail.db'}")["rows"]
    assert left["queued"] == left["sending"] == 0
    reasons = [rows[m].failure_reason or "" for m in queuers.acked]
    pattern = re.compile(r"^gave up after (\d+) attempts? over ([\d.]+ (?:s|ms|min)[^:]*): .*503")
    matched = [pattern.match(reason) for reason in reasons]
    assert all(rows[m].status == "failed" for m in queuers.acked)
    assert all(matched), [r for r, m in zip(reasons, matched, strict=True) if not m][:5]
    attempts = Counter(int(m.group(1)) for m in matched)
    report("9 Mailgun outage past the deadline", deadline_seconds=deadline, queued_202=total,
           failed_gave_up=len(matched), mailgun_posts=posts,
           attempts_per_message=", ".join(f"{n}: {c}" for n, c in sorted(attempts.items())),
           example=reasons[0].split(": Mailgun")[0])
