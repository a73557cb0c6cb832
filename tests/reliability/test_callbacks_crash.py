"""Part 16, callbacks under kill -9: `python app.py` (two workers) and the caller's receiver (its own process)
SIGKILLed at random moments while 8 clients queue messages, the test Mailgun answers 20% 503 and posts signed
`accepted` and `delivered` events back. After the last restart, every status change of every acknowledged
message reached the receiver at least once (its final status included), in order per message (no status
after a later one), and the callback rows are gone.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict

import requests
from sqlalchemy import create_engine, text

from fidesmail.core.outcomes import RANK
from fidesmail.records.database import engine_url
from tests.mailgun_fake import MailgunFake
from tests.support import ROOT, Server, free_port

from .outbox_parts import Queuers, crash_env, drained, prepare, records
from .support import report, scaled

DOMAIN, KEY, SIGNING_KEY = "mg.example.com", "key-" + "7e57" * 8, "whsec-" + "5167" * 6
CALLBACK_KEY = "cb-" + "c411bac4" * 4


class Receiver:
    """The callback receiver as a process on a fixed port, appending each verified callback to a log file."""

    def __init__(self, log):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/callbacks"
        self.log = log
        self.proc = None

    def start(self) -> Receiver:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.standins.callback_receiver", "--port",
                                      str(self.port), "--key", CALLBACK_KEY, "--log", str(self.log)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(self.url, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the receiver does not listen")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def received(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.endswith("}")]


def callbacks_left(database_url: str, rows: bool = False):
    """How many callbacks wait to be delivered (or those rows, to say which)."""
    engine = create_engine(engine_url(database_url))
    try:
        with engine.connect() as connection:
            if rows:
                return [dict(row._mapping) for row in connection.execute(text("SELECT * FROM callbacks"))]
            return connection.execute(text("SELECT count(*) FROM callbacks")).scalar()
    finally:
        engine.dispose()


def judge(acked: dict, rows: dict, receiver: Receiver) -> tuple[list[str], int, Counter, int]:
    """Each acknowledged message: its final status received, no status after a later one. (problems, callbacks
    received more than once, messages per status received, callbacks received)."""
    by_message: dict[str, list[str]] = defaultdict(list)
    for one in receiver.received():
        by_message[one["message_id"]].append(one["status"])
    problems, duplicates = [], 0
    for message_id in acked:
        seen = by_message.get(message_id, [])
        final = rows[message_id].status
        if final not in ("queued", "sending") and final not in seen:
            problems.append(f"{message_id}: {final}, but its callback never arrived ({seen})")
        for earlier, later in zip(seen, seen[1:], strict=False):
            if RANK[later] < RANK[earlier]:
                problems.append(f"{message_id}: {later} posted after {earlier} ({seen})")
        duplicates += len(seen) - len(set(seen))
    statuses = Counter(status for seen in by_message.values() for status in set(seen))
    return problems, duplicates, statuses, sum(len(seen) for seen in by_message.values())


def converged(database_url: str, acked: dict, receiver: Receiver, timeout: float = 60.0):
    """Wait until no callback is left and every acknowledged message's status has reached the receiver (late
    webhooks keep moving statuses for a moment); (callbacks left, judge's verdict) as it is then."""
    deadline = time.monotonic() + timeout
    while True:
        left = callbacks_left(database_url)
        verdict = judge(acked, records(database_url)["rows"], receiver)
        if (left == 0 and not verdict[0]) or time.monotonic() > deadline:
            return left, verdict
        time.sleep(0.2)


def test_callbacks_are_delivered_in_order_through_kill_9_of_fidesmail_and_the_receiver(tmp_path, tree):
    cycles = scaled(5, 30)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    instance = tmp_path / "instance"
    receiver = Receiver(tmp_path / "received.jsonl").start()
    prepare(tree, [instance], {"outbox": (DOMAIN, KEY)}, more={"callback": {"url": receiver.url}},
            more_secrets={"mailgun_webhook_signing_key": SIGNING_KEY, "callback_signing_key": CALLBACK_KEY})
    database_url = f"sqlite:///{instance / 'fidesmail.db'}"
    started, receiver_kills = time.monotonic(), 0
    with MailgunFake(domains={DOMAIN: KEY}, signing_keys={DOMAIN: SIGNING_KEY}) as fake:
        fake.random_faults(p_5xx=0.2, p_429=0, p_slow=0, p_close=0, seed=seed)
        env = crash_env(tree, instance, fake.base_url)
        acked: dict[str, str] = {}
        try:
            for _ in range(cycles):
                server = Server(env, tmp_path).start()
                hook = f"{server.url}/api/v1/email/webhooks/mailgun/outbox"
                fake.webhooks[DOMAIN] = {"accepted": [hook], "delivered": [hook]}
                queuers = Queuers(lambda url=server.url: [url]).start()
                time.sleep(rng.uniform(0.3, 1.2))
                if rng.random() < 0.6:  # the receiver dies too, and is back a moment later
                    receiver.kill()
                    receiver_kills += 1
                    time.sleep(rng.uniform(0.1, 0.6))
                    receiver.start()
                time.sleep(rng.uniform(0.1, 0.8))
                server.kill()  # SIGKILL to the whole process group: master and workers
                queuers.stop.set()
                queuers.join()
                acked.update(queuers.acked)
            server = Server(env, tmp_path).start()
            try:
                drained(server.url, timeout=60)
                left, (problems, duplicates, statuses, received) = converged(database_url, acked, receiver)
            finally:
                assert server.stop() == 0
        finally:
            receiver.kill()
    assert left == 0 and problems == [], (left, callbacks_left(database_url, rows=True)[:5], problems[:20])
    report("16 callbacks under kill -9", sigkills=cycles, receiver_kills=receiver_kills,
           acknowledged_202=len(acked), callbacks_received=received,
           received_more_than_once=duplicates, lost=0, out_of_order=0,
           **{f"status_{k}": v for k, v in statuses.items()}, seconds=round(time.monotonic() - started, 1), seed=seed)


def test_two_replicas_on_postgresql_share_the_callbacks_while_one_is_killed(tmp_path, tree, postgres_url):
    """Part 17: two `python app.py` on one PostgreSQL (each 1 worker) post the callbacks while one of them is
    SIGKILLed every second or so and started again: each message's callbacks in order, none lost."""
    kills_wanted = scaled(5, 40)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    instances = [tmp_path / f"instance-{n}" for n in range(2)]
    receiver = Receiver(tmp_path / "received.jsonl").start()
    prepare(tree, instances, {"outbox": (DOMAIN, KEY)}, more={"callback": {"url": receiver.url}},
            more_secrets={"mailgun_webhook_signing_key": SIGNING_KEY, "callback_signing_key": CALLBACK_KEY})
    started = time.monotonic()
    with MailgunFake(domains={DOMAIN: KEY}, signing_keys={DOMAIN: SIGNING_KEY}) as fake:
        fake.random_faults(p_5xx=0.1, p_429=0, p_slow=0, p_close=0, seed=seed)

        def env(n):
            return {**crash_env(tree, instances[n], fake.base_url), "FIDESMAIL_DATABASE_URL": postgres_url,
                    "WEB_CONCURRENCY": "1"}

        def hooks():
            urls = [f"{replica.url}/api/v1/email/webhooks/mailgun/outbox" for replica in replicas]
            fake.webhooks[DOMAIN] = {"accepted": urls, "delivered": urls}

        replicas = [Server(env(n), tmp_path).start() for n in range(2)]
        hooks()
        queuers = Queuers(lambda: [replica.url for replica in replicas]).start()
        try:
            for _ in range(kills_wanted):
                time.sleep(rng.uniform(0.5, 1.5))
                victim = rng.randrange(2)
                replicas[victim].kill()
                replicas[victim] = Server(env(victim), tmp_path).start()
                hooks()
            queuers.stop.set()
            queuers.join()
            drained(replicas[0].url, timeout=60)
            left, (problems, duplicates, statuses, received) = converged(postgres_url, queuers.acked, receiver)
        finally:
            queuers.stop.set()
            for replica in replicas:
                replica.stop()
            receiver.kill()
    assert left == 0 and problems == [], (left, callbacks_left(postgres_url, rows=True)[:5], problems[:20])
    report("17 callbacks, 2 replicas on PostgreSQL, one killed again and again", sigkills=kills_wanted,
           acknowledged_202=len(queuers.acked), callbacks_received=received, received_more_than_once=duplicates, lost=0,
           out_of_order=0, **{f"status_{k}": v for k, v in statuses.items()},
           seconds=round(time.monotonic() - started, 1), seed=seed)
