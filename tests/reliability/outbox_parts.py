"""What the outbox's reliability parts share: a tree with sealed keys on disk, clients queueing sends, the records."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from fidesmail.core import yamlio
from fidesmail.records.database import engine_url
from fidesmail.sealing import envelope, keys, sealed_file
from fidesmail.web import auth
from tests.support import SECRET, bearer

SEND = "/api/v1/email/send"
ASYNC = {"Prefer": "respond-async"}
BODY = {"action_type": "privacy_request_receipt", "body_params": {"request_types": ["access"]}}


def prepare(tree: Path, instances: list[Path], configs: dict[str, tuple[str, str]], more: dict | None = None,
            more_secrets: dict | None = None) -> None:
    """Configs {key: (domain, mailgun key)} with sealed keys in `tree`; the same keyring, records key and content
    key in every instance dir (what replicas of one database share). `more`: top-level fields every config
    gets (e.g. a callback); `more_secrets`: {field: value} sealed for every config beside its API key."""
    prepare_documents(tree, instances, {
        key: ({"key": key, "name": key, "service_type": "mailgun",
               "details": {"domain": domain, "is_eu_domain": False, "api_version": "v3"}, **(more or {})},
              {"mailgun_api_key": api_key, **(more_secrets or {})})
        for key, (domain, api_key) in configs.items()})


def prepare_documents(tree: Path, instances: list[Path], configs: dict[str, tuple[dict, dict]]) -> None:
    """Configs {key: (document, secrets)} of any provider, their secrets sealed in `tree`, as `prepare`."""
    pair = keys.generate_keypair()
    shared = {"records.key": secrets.token_hex(32).encode(), "content.key": secrets.token_hex(32).encode()}
    for instance in instances:
        instance.mkdir(mode=0o700, parents=True, exist_ok=True)
        (instance / "seal.key").write_bytes(keys.dump_keyring([pair]))
        for name, key in shared.items():
            (instance / name).write_bytes(key)
        for name in ("seal.key", *shared):
            (instance / name).chmod(0o600)
    (tree / "seal.pub").write_bytes(keys.dump_public_key(pair.public_key))
    entries = {}
    for key, (document, values) in configs.items():
        (tree / "email" / f"{key}.yaml").write_bytes(yamlio.dump(document))
        entries[key] = {field: envelope.seal(pair.public_key, key, field, value) for field, value in values.items()}
    (tree / "secrets.sealed.yaml").write_bytes(sealed_file.dump(sealed_file.SealedFile(entries)))


def crash_env(tree: Path, instance: Path, mailgun_url: str) -> dict:
    """`python app.py` as the kill -9 parts run it: two workers, short timeouts and backoffs."""
    return {"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(instance),
            "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_MAILGUN_BASE_URL": mailgun_url,
            "WEB_CONCURRENCY": "2", "FIDESMAIL_THREADS": "4", "FIDESMAIL_MAILGUN_TIMEOUT": "1",
            "FIDESMAIL_OUTBOX_BACKOFF": "0.05", "FIDESMAIL_OUTBOX_MAX_BACKOFF": "0.3", "FIDESMAIL_OUTBOX_POLL": "0.2"}


class Queuers:
    """Client threads queueing sends (Prefer: respond-async) to whichever servers are up, keeping every 202."""

    def __init__(self, urls, clients: int = 8, configs=("outbox",), limit: int | None = None):
        self.urls = urls  # a callable: the servers' base URLs right now
        self.configs = configs
        self.limit = limit
        self.acked: dict[str, str] = {}  # message_id -> config_key, in the order the 202s came
        self.statuses: Counter = Counter()
        self.failed_requests = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._count = 0
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)]

    def start(self) -> Queuers:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float = 30) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _next(self) -> int | None:
        with self._lock:
            if self.limit is not None and self._count >= self.limit:
                return None
            self._count += 1
            return self._count

    def _run(self, client: int) -> None:
        session = requests.Session()
        headers = {**bearer(auth.SEND), **ASYNC}
        while not self.stop.is_set():
            urls = self.urls()
            if not urls:
                time.sleep(0.05)
                continue
            number = self._next()
            if number is None:
                return
            config = self.configs[number % len(self.configs)]
            body = {**BODY, "config_key": config, "to": f"r{number}@example.com", "reference": f"q-{number}"}
            try:
                answer = session.post(urls[number % len(urls)] + SEND, json=body, headers=headers, timeout=10)
            except requests.RequestException:  # killed under it: not acknowledged, whatever became of it
                with self._lock:
                    self.failed_requests += 1
                    if self.limit is not None:  # it does not count towards the limit
                        self._count -= 1
                session = requests.Session()
                time.sleep(0.05)
                continue
            with self._lock:
                self.statuses[answer.status_code] += 1
                if answer.status_code == 202:
                    self.acked[answer.json()["message_id"]] = config
                elif self.limit is not None:
                    self._count -= 1


def queue_under_kills(env: dict, cwd: Path, cycles: int, rng, configs=("outbox",)) -> tuple[dict[str, str], int]:
    """`cycles` times: start `python app.py`, let 8 clients queue for 0.3 to 1.5 s, SIGKILL its whole process group.
    Every acknowledged message (id -> config) and how many requests a kill cut."""
    from tests.support import Server

    acked: dict[str, str] = {}
    cut = 0
    for _ in range(cycles):
        server = Server(env, cwd).start()
        queuers = Queuers(lambda url=server.url: [url], configs=configs).start()
        time.sleep(rng.uniform(0.3, 1.5))
        server.kill()  # SIGKILL to the whole process group: master and workers
        queuers.stop.set()
        queuers.join()
        acked.update(queuers.acked)
        cut += queuers.failed_requests
    return acked, cut


def records(database_url: str) -> dict:
    """Every message record: id -> row (status, failure_reason, config_key, created_at, mailgun_id, attempts,
    sent_via, provider)."""
    engine = create_engine(engine_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, status, failure_reason, config_key, created_at, mailgun_id, "
                                           "attempts, sent_via, provider FROM messages")).all()
            left = connection.execute(text("SELECT count(*) FROM outbox")).scalar()
    finally:
        engine.dispose()
    return {"rows": {row.id: row for row in rows}, "outbox_rows": left}


def drained(url: str, timeout: float) -> dict:
    """/health's outbox once nothing is queued or being sent (or as it is at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        outbox = requests.get(url + "/health", timeout=10).json()["outbox"]
        if (outbox.get("ok") and outbox["queued"] == 0 and outbox["sending"] == 0) or time.monotonic() > deadline:
            return outbox
        time.sleep(0.2)


def judge(acked: dict, found: dict, accepted_posts: dict, stopped_reason: str) -> dict:
    """Each acknowledged message: accepted and posted exactly once (`accepted_posts`: message -> posts its
    providers accepted, all of them summed), or unknown because its worker was killed while posting it. The
    figures, with what broke the rule (must be 0)."""
    rows = found["rows"]
    figures = Counter()
    problems = []
    for message_id in acked:
        row = rows.get(message_id)
        posts = accepted_posts.get(message_id, 0)
        if row is None:
            problems.append(f"{message_id}: acknowledged, no record")
        elif row.status == "accepted":
            figures["accepted"] += 1
            if posts != 1:
                problems.append(f"{message_id}: accepted, but the providers accepted it {posts} times")
        elif row.status == "unknown" and row.failure_reason == stopped_reason:
            figures["unknown_killed_while_posting"] += 1
            figures["of_which_reached_mailgun"] += posts
            if posts > 1:
                problems.append(f"{message_id}: unknown, but the providers accepted it {posts} times")
        else:
            problems.append(f"{message_id}: {row.status} ({row.failure_reason})")
    twice = [m for m, n in accepted_posts.items() if n > 1]
    figures["posted_twice"] = len(twice)
    figures["lost"] = len([p for p in problems if "no record" in p or ": queued" in p or ": sending" in p])
    return {"figures": dict(figures), "problems": problems + [f"{m}: accepted twice" for m in twice]}
