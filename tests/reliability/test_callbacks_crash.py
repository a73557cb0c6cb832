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


def callbacks_left(database_url: str) -> int:
    engine = create_engine(engine_url(database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM callbacks")).scalar()
    finally:
        engine.dispose()


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
                deadline = time.monotonic() + 60
                while callbacks_left(database_url) and time.monotonic() < deadline:
                    time.sleep(0.2)
                left = callbacks_left(database_url)
            finally:
                assert server.stop() == 0
        finally:
            receiver.kill()
    rows = records(database_url)["rows"]
    by_message: dict[str, list[str]] = defaultdict(list)
    for one in receiver.received():
        by_message[one["message_id"]].append(one["status"])
    problems, duplicates = [], 0
    for message_id in acked:
        seen = by_message.get(message_id, [])
        final = rows[message_id].status
        if final in RANK and final not in ("queued", "sending") and final not in seen:
            problems.append(f"{message_id}: {final}, but its callback never arrived ({seen})")
        for earlier, later in zip(seen, seen[1:], strict=False):
            if RANK[later] < RANK[earlier]:
                problems.append(f"{message_id}: {later} posted after {earlier} ({seen})")
        duplicates += len(seen) - len(set(seen))
    assert left == 0 and problems == [], (left, problems[:20])
    statuses = Counter(status for seen in by_message.values() for status in set(seen))
    report("16 callbacks under kill -9", sigkills=cycles, receiver_kills=receiver_kills,
           acknowledged_202=len(acked), callbacks_received=sum(len(s) for s in by_message.values()),
           delivered_twice=duplicates, lost=0, out_of_order=0, **{f"status_{k}": v for k, v in statuses.items()},
           seconds=round(time.monotonic() - started, 1), seed=seed)
