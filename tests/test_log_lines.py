"""One log format: every line `python app.py` writes, gunicorn's own included, is JSON with the same fields."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.support import ROOT, SECRET, bearer, free_port, wait_until

pytestmark = pytest.mark.slow  # `python app.py` as a process


def test_every_line_from_start_to_sigterm_is_json(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIDESMAIL_")}
    env.update(FIDESMAIL_PORT=str(port), FIDESMAIL_SECRET_KEY=SECRET, WEB_CONCURRENCY="2")
    (tmp_path / "config").mkdir()  # started where config/ is (contract section 2: else it stops)
    out_path, err_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env,
                                stdout=out, stderr=err, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def messages_after(start: str) -> list[str]:
        """The log's messages after the first one that starts with `start` (lines still being written skipped)."""
        found = []
        for line in err_path.read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(line).get("msg", ""))
            except ValueError:
                continue
        for i, msg in enumerate(found):
            if msg.startswith(start):
                return found[i + 1:]
        return []

    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        requests.get(url + "/api/v1/email/config", headers=bearer(), timeout=5)  # a request line
        requests.get(url + "/api/v1/email/config", timeout=5)  # a refused one
        (tmp_path / "config" / "email" / "bad.yaml").write_text("name: [oops\n")  # a tree problem, logged
        requests.post(url + "/api/v1/reload", headers=bearer(), timeout=5)
        os.kill(proc.pid, signal.SIGHUP)  # gunicorn reloads: "Handling signal", "Booting worker", ...
        wait_until(lambda: any(m.startswith("Booting worker") for m in messages_after("Handling signal: hup")),
                   timeout=15, what="a worker booted after SIGHUP")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    assert proc.returncode == 0
    assert stdout == ""
    records = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert {"ts", "level", "logger", "msg"} <= record.keys(), line
        records.append(record)
    messages = [(r["logger"], r["msg"]) for r in records]
    for logger, start in [("gunicorn.error", "Starting gunicorn"), ("gunicorn.error", "Booting worker"),
                          ("gunicorn.error", "Handling signal: hup"), ("gunicorn.error", "Shutting down"),
                          ("fidesmail.request", "GET /api/v1/email/config 200"), ("fidesmail.store", "watching")]:
        assert any(lg == logger and msg.startswith(start) for lg, msg in messages), (logger, start)
    assert any("email/bad.yaml" in msg for _, msg in messages)
