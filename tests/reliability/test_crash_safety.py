"""Part 1, crash safety: `python app.py` under a steady stream of config and secret writes, SIGKILLed
(the whole process group) at random moments. After each kill: every file parses, the tree passes the
server's own loader, no temp or lock file blocks the next write, and every acknowledged write is on disk.
"""

from __future__ import annotations

import random
import threading
import time

import requests
import yaml

from fidesmail.core import fsutil
from fidesmail.sealing import envelope as envelopes
from fidesmail.sealing import vault
from fidesmail.sealing.vault import Vault
from fidesmail.tree.loader import load_tree
from tests.support import CONFIG, SECRET, Server, bearer, parse_sealed

from .support import report, scaled

URL = "/api/v1/email/config"
WRITERS = 3
KEYS_PER_WRITER = 2


class Model:
    """What each key should look like on disk: (document or None, secret or None)."""

    def __init__(self, keys):
        self.acked = {key: (None, None) for key in keys}
        self.pending = {}  # key -> the state of a write sent but not acknowledged


def _doc(key, name, domain):
    return {"key": key, "name": name, "service_type": "mailgun",
            "details": {"domain": domain, "is_eu_domain": False, "api_version": "v3"}}


def _writer(url, keys, model, rng, counts, seq):
    """One thread, owning `keys`: create, patch, seal and delete them until the server dies."""
    session = requests.Session()
    headers = bearer()
    while True:
        key = rng.choice(keys)
        document, secret = model.acked[key]
        n = next(seq)
        if document is None:
            op, target = "create", (_doc(key, f"{key} #{n}", CONFIG["details"]["domain"]), None)
        else:
            op = rng.choices(["patch", "secret", "delete"], [5, 4, 1])[0]
            if op == "patch":
                target = ({**document, "details": {**document["details"], "domain": f"mg{n}.example.com"}}, secret)
            elif op == "secret":
                target = (document, f"key-{n}-{rng.getrandbits(64):016x}")
            else:
                target = (None, None)
        model.pending[key] = target
        try:
            if op == "create":
                answer = session.post(url + URL, json=target[0], headers=headers, timeout=10)
            elif op == "patch":
                answer = session.patch(f"{url}{URL}/{key}", json={"details": target[0]["details"]},
                                       headers=headers, timeout=10)
            elif op == "secret":
                answer = session.put(f"{url}{URL}/{key}/secret", json={"mailgun_api_key": target[1]},
                                     headers=headers, timeout=10)
            else:
                answer = session.delete(f"{url}{URL}/{key}", headers=headers, timeout=10)
        except requests.RequestException:
            return  # killed: this write is in flight, its outcome unknown
        if answer.status_code not in (200, 204):
            counts["unexpected"].append(f"{op} {key}: {answer.status_code} {answer.text[:200]}")
            return
        model.acked[key] = target
        del model.pending[key]
        counts["acked"] += 1


def _on_disk(tree, keys, keyring):
    """Each key's (document, secret) as the files say; also checks that every file parses."""
    secrets_file, problems = parse_sealed(sealed_bytes(tree))
    assert problems == [], problems
    yaml.safe_load(sealed_bytes(tree))
    state = {}
    for key in keys:
        path = tree / "email" / f"{key}.yaml"
        document = yaml.safe_load(path.read_bytes()) if path.exists() else None
        envelope = secrets_file.get(key, "mailgun_api_key")
        secret = envelopes.open_sealed(keyring, key, "mailgun_api_key", envelope) if envelope else None
        state[key] = (document, secret)
    for path in (tree / "email").glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_bytes()), dict), path
    return state


def sealed_bytes(tree):
    path = tree / "secrets.sealed.yaml"
    return path.read_bytes() if path.exists() else b""


def _temp_files(tree):
    return [p for folder in (tree, tree / "email") for p in folder.iterdir()
            if p.name.startswith(".") and p.name.endswith(fsutil.TEMP_SUFFIX)]


def test_sigkill_at_random_moments_loses_no_acknowledged_write(tmp_path, tree):
    cycles = scaled(50, 300)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    instance = tmp_path / "instance"
    env = {"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(instance),
           "FIDESMAIL_SECRET_KEY": SECRET, "WEB_CONCURRENCY": "1", "FIDESMAIL_THREADS": "4"}
    keys = [f"crash_{w}_{i}" for w in range(WRITERS) for i in range(KEYS_PER_WRITER)]
    model = Model(keys)
    counts = {"acked": 0, "unexpected": []}
    seq = iter(range(1, 1 << 62))
    kills = in_flight = temps_left = temps_removed = 0
    started = time.monotonic()
    for cycle in range(cycles):
        # Every fifth cycle runs two workers: kills then also land between processes sharing the lock.
        server = Server({**env, "WEB_CONCURRENCY": "2" if cycle % 5 == 4 else "1"}, tmp_path)
        threads = []
        server.start()
        try:
            # What the kill left behind is cleaned up at start-up, under the lock.
            assert _temp_files(tree) == [], f"cycle {cycle}: temp files survived a start"
            threads = [threading.Thread(target=_writer, args=(server.url, keys[w::WRITERS], model,
                                                              random.Random(rng.random()), counts, seq))
                       for w in range(WRITERS)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.05, 0.4))
        finally:
            server.kill()  # SIGKILL to the whole process group: master and workers
        kills += 1
        for thread in threads:
            thread.join(15)
            assert not thread.is_alive(), "a writer hung after the kill"
        assert counts["unexpected"] == [], counts["unexpected"]
        left = _temp_files(tree)
        temps_left += len(left)
        temps_removed += len(left)

        keyring = Vault(instance / "seal.key").keyring()
        disk = _on_disk(tree, keys, keyring)
        for key in keys:
            allowed = [model.acked[key]] + ([model.pending[key]] if key in model.pending else [])
            if model.pending.get(key) == (None, None):
                # A delete removes the secrets, then the file: killed in between, the config stays
                # without its secret (a valid tree; the delete was not acknowledged).
                allowed.append((model.acked[key][0], None))
            assert disk[key] in allowed, (f"cycle {cycle} (seed {seed}): {key} on disk is {disk[key]}, "
                                          f"acknowledged {model.acked[key]}, in flight {model.pending.get(key)}")
        in_flight += len(model.pending)
        # The server's own loader accepts the tree as the kill left it (no orphan secrets, nothing torn).
        snapshot = load_tree(tree)
        assert snapshot.problems == (), f"cycle {cycle} (seed {seed}): {snapshot.problems}"
        assert vault.check_opens(snapshot.sealed, keyring) == []
        model.acked = disk  # whatever the kill decided is the truth from here on
        model.pending = {}

    # One last start: the first write after the last kill goes through at once.
    server = Server(env, tmp_path).start()
    try:
        answer = requests.post(server.url + URL, json=_doc("after_crashes", "after crashes", "mg.example.com"),
                               headers=bearer(), timeout=5)
        assert answer.status_code == 200, answer.text
    finally:
        assert server.stop() == 0
    assert _temp_files(tree) == []
    report("1 crash safety", cycles=cycles, sigkills=kills, writes_acknowledged=counts["acked"],
           writes_in_flight_at_kill=in_flight, temp_files_left_by_kills=temps_left,
           temp_files_removed_at_start=temps_removed, lost=0, seconds=round(time.monotonic() - started, 1),
           seed=seed)


_KILLED_MID_DELETE = r"""
import os, signal, sys
from pathlib import Path
from fidesmail.web import auth
from fidesmail import create_app
from fidesmail.core import fsutil
from fidesmail.runtime import startup

tmp = Path(sys.argv[1])
app = create_app({"CONFIG_DIR": tmp / "config", "INSTANCE_DIR": tmp / "instance", "SECRET_KEYS": ["k"],
                  "SEAL_KEY_FILE": tmp / "instance" / "seal.key", "WATCH_INTERVAL": 0})
startup.prepare(app)  # as a serving process does: keys, folders
client = app.test_client()
headers = {"Authorization": "Bearer " + auth.create_token(["k"], auth.SCOPES)}
config = {"key": "doomed", "name": "Doomed", "service_type": "mailgun", "details": {"domain": "mg.example.com"}}
assert client.post("/api/v1/email/config", json=config, headers=headers).status_code == 200
answer = client.put("/api/v1/email/config/doomed/secret", json={"mailgun_api_key": "key-1"}, headers=headers)
assert answer.status_code == 200
steps = []

def killed_at_the_second_step(real):
    def step(*args, **kwargs):
        steps.append(real.__name__)
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return step

fsutil.atomic_write = killed_at_the_second_step(fsutil.atomic_write)
fsutil.atomic_delete = killed_at_the_second_step(fsutil.atomic_delete)
client.delete("/api/v1/email/config/doomed", headers=headers)
"""


def test_a_delete_killed_between_its_two_files_leaves_a_tree_the_loader_accepts(tmp_path):
    """Regression: DELETE removed the YAML file before the secrets; a kill in between left secrets
    of a config that no longer exists, which `flask check` and /health then reported."""
    import subprocess
    import sys

    from tests.support import ROOT

    done = subprocess.run([sys.executable, "-c", _KILLED_MID_DELETE, str(tmp_path)], cwd=ROOT, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    snapshot = load_tree(tmp_path / "config")
    assert snapshot.problems == ()
    assert "doomed" in snapshot.keys and not snapshot.configs["doomed"].secret_fields


_KILLED_BEFORE_THE_ANSWER_WAS_KEPT = r"""
import os, signal, sys
from pathlib import Path
from fidesmail.web import auth
from fidesmail import create_app
from fidesmail.core import fsutil
from fidesmail.runtime import startup

tmp, base_url = Path(sys.argv[1]), sys.argv[2]
app = create_app({"CONFIG_DIR": tmp / "config", "INSTANCE_DIR": tmp / "instance", "SECRET_KEYS": ["k"],
                  "SEAL_KEY_FILE": tmp / "instance" / "seal.key", "WATCH_INTERVAL": 0,
                  "MAILGUN_BASE_URL": base_url})
startup.prepare(app)  # as a serving process does: keys, folders
client = app.test_client()
headers = {"Authorization": "Bearer " + auth.create_token(["k"], auth.SCOPES)}
config = {"key": "k1", "name": "K1", "service_type": "mailgun", "details": {"domain": "mg.example.com"}}
assert client.post("/api/v1/email/config", json=config, headers=headers).status_code == 200
answer = client.put("/api/v1/email/config/k1/secret", json={"mailgun_api_key": sys.argv[3]}, headers=headers)
assert answer.status_code == 200
from fidesmail.records.messages import MessageRecords

def finish(*args, **kwargs):  # the ledger keeping Mailgun's answer: die just before
    os.kill(os.getpid(), signal.SIGKILL)

MessageRecords.finish = finish
client.post("/api/v1/email/send", json={"action_type": "test_message", "to": "a@example.com"},
            headers={**headers, "Idempotency-Key": "order-7"})
"""


def test_a_send_killed_before_its_answer_was_kept_is_not_sent_again(tmp_path, make_app):
    """Regression: the ledger wrote nothing until Mailgun had answered; a worker killed in between
    left no trace, and the caller's retry with the same Idempotency-Key sent the message twice."""
    import subprocess
    import sys

    from tests.mailgun_fake import MailgunFake
    from tests.support import ROOT

    key = "key-" + "c0ffee" * 4
    with MailgunFake(domains={"mg.example.com": key}) as fake:
        done = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_THE_ANSWER_WAS_KEPT, str(tmp_path),
                               fake.base_url, key], cwd=ROOT, timeout=60, capture_output=True, text=True)
        assert done.returncode == -9, done.stderr
        assert len(fake.sent) == 1
        app = make_app(CONFIG_DIR=tmp_path / "config", SECRET_KEYS=["k"], MAILGUN_BASE_URL=fake.base_url)
        from fidesmail.runtime import services
        from fidesmail.web import auth

        # The killed worker's lease still runs; a retry waits this long for it, then answers "interrupted".
        services.of(app).records.wait_for_key = 1.0

        headers = {"Authorization": "Bearer " + auth.create_token(["k"], auth.SCOPES), "Idempotency-Key": "order-7"}
        retry = app.test_client().post("/api/v1/email/send", headers=headers,
                                       json={"action_type": "test_message", "to": "a@example.com"})
        assert retry.status_code == 504 and "may have been sent" in retry.json["detail"]
        assert len(fake.sent) == 1
