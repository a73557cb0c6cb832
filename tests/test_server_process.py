"""`python app.py` as a real process: defaults, signals, several workers, concurrent writers."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
import requests
import yaml

from tests.support import CONFIG, ROOT, Server, bearer

pytestmark = pytest.mark.slow  # `python app.py` as a process

URL = "/api/v1/email/config"


def test_no_settings_at_all(tmp_path):
    """Only a port is set (8080 may be taken here): ./config is used (it must exist: contract section 2),
    ./instance is made."""
    (tmp_path / "config").mkdir()
    srv = Server({}, tmp_path)
    srv.env = {k: v for k, v in srv.env.items() if not k.startswith("FIDESMAIL_") or k == "FIDESMAIL_PORT"}
    srv.start()
    try:
        for name in ("secret_key", "seal.key"):
            path = tmp_path / "instance" / name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert (tmp_path / "config" / "email").is_dir()
        assert (tmp_path / "config" / "seal.pub").exists()
        assert not any("PRIVATE" in p.read_text() for p in (tmp_path / "config").rglob("*") if p.is_file())
        log = srv.log()
        assert "generated a token-signing key into" in log and "generated private sealing key" in log
        # The generated key is the one `flask token create` uses.
        token = subprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "app.py"), "token", "create",
                                "--scope", "email:read"], cwd=tmp_path, capture_output=True, text=True,
                               env={k: v for k, v in os.environ.items() if not k.startswith("FIDESMAIL_")},
                               timeout=60).stdout.strip()
        answer = requests.get(srv.url + URL, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert answer.status_code == 200
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_server_cleanly_within_ten_seconds(server, sig):
    srv = server()
    started = time.monotonic()
    assert srv.stop(sig, timeout=10) == 0
    assert time.monotonic() - started < 10
    assert "gunicorn" in srv.log().lower()  # served by gunicorn, not Flask's dev server


def test_writes_through_one_worker_are_read_through_every_worker(server):
    srv = server(WEB_CONCURRENCY="3")
    headers = bearer()
    session = requests.Session()
    for i in range(20):
        body = {**CONFIG, "key": f"k{i}", "name": f"N{i}"}
        assert session.post(srv.url + URL, json=body, headers=headers).status_code == 200
        # Fresh connections spread over the workers; each must already know the config.
        for _ in range(3):
            assert requests.get(f"{srv.url}{URL}/k{i}", headers=headers, timeout=5).status_code == 200


def test_sighup_rereads_at_once(server, tree):
    srv = server()
    (tree / "email" / "hup.yaml").write_text(yaml.safe_dump({**CONFIG, "key": "hup", "name": "Hup"}))
    os.kill(srv.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if requests.get(f"{srv.url}{URL}/hup", headers=bearer(), timeout=5).status_code == 200:
            break
        time.sleep(0.05)
    else:
        pytest.fail("SIGHUP did not bring the new file in")


def test_eight_threads_of_mixed_writes_then_a_restart(server, tree):
    """8 threads x 200 creates, PATCHes and deletes; the disk then equals the last acknowledged writes."""
    srv = server(WEB_CONCURRENCY="2")
    headers = bearer()
    # Each thread owns three keys, so "the last acknowledged write" of a key is well defined;
    # the threads still contend for the lock, the folder and the sealed file.
    keys = [f"c{t}_{i}" for t in range(8) for i in range(3)]
    acknowledged = {}  # key -> document (None: deleted)
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        session = requests.Session()
        mine = [k for k in keys if k.startswith(f"c{seed}_")]
        for _ in range(200):
            key = rng.choice(mine)
            op = rng.choice(["create", "patch", "patch", "delete"])
            try:
                if op == "create":
                    body = {**CONFIG, "key": key, "name": f"{key}-{rng.random()}"}
                    response = session.post(srv.url + URL, json=body, headers=headers, timeout=30)
                elif op == "patch":
                    body = {"details": {"domain": f"mg{rng.randrange(10**6)}.example.com"}}
                    response = session.patch(f"{srv.url}{URL}/{key}", json=body, headers=headers, timeout=30)
                else:
                    response = session.delete(f"{srv.url}{URL}/{key}", headers=headers, timeout=30)
            except requests.RequestException as exc:
                errors.append(repr(exc))
                continue
            if response.status_code not in (200, 204, 404, 409):
                errors.append(f"{op} {key}: {response.status_code} {response.text}")
                continue
            if response.status_code in (200, 204):
                acknowledged[key] = None if op == "delete" else response.json()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert srv.stop() == 0
    names = sorted(p.name for p in (tree / "email").iterdir())
    assert all(n.endswith(".yaml") and not n.startswith(".") for n in names), names  # no temp files
    srv2 = Server(srv.env, srv.cwd)
    srv2.env["FIDESMAIL_PORT"] = str(srv2.port)
    srv2.start()
    try:
        for key in keys:
            path = tree / "email" / f"{key}.yaml"
            served = requests.get(f"{srv2.url}{URL}/{key}", headers=headers, timeout=5)
            if path.exists():
                on_disk = yaml.safe_load(path.read_text())
                assert served.status_code == 200
                assert {k: v for k, v in served.json().items() if k != "secrets_set"} == on_disk
            else:
                assert served.status_code == 404
    finally:
        srv2.stop()
    assert len(acknowledged) == len(keys)
    for key, document in acknowledged.items():
        path = tree / "email" / f"{key}.yaml"
        if document is None:
            assert not path.exists(), key
        else:
            assert yaml.safe_load(path.read_text()) == {k: v for k, v in document.items() if k != "secrets_set"}
