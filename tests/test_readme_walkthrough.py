"""The README's "Five minutes with curl" runs as written, in a fresh copy of the repository.

Only the ports are changed (8080, 9999 and 9997 may be taken on this machine); every command is
the README's. The Dockerfile's header and the README show the same `docker run`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, free_port

pytestmark = pytest.mark.slow  # the README's commands, as a shell runs them

README = (ROOT / "README.md").read_text()


def walkthrough() -> str:
    section = README.split("## Five minutes with curl", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def fresh_copy(dest: Path) -> Path:
    """The repository as a newcomer clones it: the code, an empty config tree, no instance dir."""
    skip = shutil.ignore_patterns(".git", "instance", "config", "__pycache__", "*.egg-info", "build", ".*cache",
                                  "bench", "docs", "integrations", ".venv", "venv")  # a clone has no venv
    shutil.copytree(ROOT, dest, ignore=skip)
    (dest / "config" / "email").mkdir(parents=True)
    return dest


def run_script(script: str, repo: Path, port: int) -> tuple[str, str]:
    """Run a README script with bash -e in `repo` as a newcomer's shell would; its stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIDESMAIL_", "FLASK_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # python, flask
    env["FIDESMAIL_PORT"] = str(port)  # the one setting the port needs; the README names it for this case
    proc = subprocess.Popen(["bash", "-e", "-c", script + "\nwait\n"], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the walkthrough did not finish:\n{stdout}\n{stderr}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, f"{stdout}\n{stderr}"
    return stdout, stderr


def test_the_walkthrough_runs_verbatim(tmp_path):
    script = walkthrough()
    assert "kill %1 %2 %3" in script  # it says how to stop what it started
    port, mailgun_port, sendgrid_port = free_port(), free_port(), free_port()
    script = (script.replace("localhost:8080", f"localhost:{port}").replace("9999", str(mailgun_port))
              .replace("9997", str(sendgrid_port)))
    repo = fresh_copy(tmp_path / "fidesmail")
    stdout, stderr = run_script(script, repo, port)
    assert '{"key":"my_mailgun","name":"My Mailgun"' in stdout  # 1. the config
    assert '{"test_status":"succeeded","failure_reason":null}' in stdout  # 3. the test message
    assert '"message":"Queued. Thank you.","config_key":"my_mailgun","message_id":"msg_' in stdout  # 4. the code
    assert '"masked":"s***@example.com"' in stdout and '"status":"accepted"' in stdout  # 5. its record
    assert "123456" not in stdout.split('"items"', 1)[1]  # the record holds no code
    # 6. the second provider: SendGrid's stand-in took it, and the answer names the provider
    assert '"config_key":"my_sendgrid","message_id":"msg_' in stdout and '"provider":"twilio_email"' in stdout
    assert "Traceback" not in stderr
    assert "fidesmail: cannot start" not in stderr
    sealed = (repo / "config" / "secrets.sealed.yaml").read_text()
    assert "my_mailgun" in sealed and "key-123" not in sealed  # 2. sealed, never in the clear
    assert "my_sendgrid" in sealed and "SG.test-key" not in sealed
    assert (repo / "config" / "seal.pub").exists() and (repo / "instance" / "seal.key").exists()


def test_the_dockerfile_header_and_the_readme_run_the_same_container():
    header = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("# Run:"))
    command = header.removeprefix("# Run:").strip()
    assert command in README
    assert "-v fidesmail-instance:/app/instance" in command and '-v "$PWD/config:/app/config"' in command


def test_the_delivery_events_walkthrough_runs_verbatim(tmp_path):
    """README "Delivery events": a message goes from accepted to delivered with nothing but fidesmail and the fake."""
    section = README.split("## Delivery events (webhooks)", 1)[1].split("\n## ", 1)[0]
    script = section.split("**With the test Mailgun**", 1)[1]
    script = re.search(r"```sh\n(.*?)```", script, re.S).group(1)
    port, mailgun_port = free_port(), free_port()
    script = (script.replace("localhost:8080", f"localhost:{port}").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
              .replace("9999", str(mailgun_port)))
    repo = fresh_copy(tmp_path / "fidesmail")
    stdout, stderr = run_script(script, repo, port)
    assert '"status":"delivered"' in stdout and '"events":[{"event":"delivered"' in stdout
    assert "delivered: created: " in stdout and "1 of 1 stored event(s) of all messages verified" in stderr
    assert "Traceback" not in stderr and "whsec-456" not in stdout + stderr


def test_the_failover_walkthrough_runs_verbatim(tmp_path):
    """README "Failover": a Mailgun config falling back to SES, Mailgun down then back, with the stand-ins."""
    section = README.split("## Failover: the next provider when one is down", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    assert "kill %1 %2 %3" in script and "/fake/down" in script
    port, mailgun_port, ses_port = free_port(), free_port(), free_port()
    script = (script.replace("localhost:8080", f"localhost:{port}").replace("9999", str(mailgun_port))
              .replace("9998", str(ses_port)))
    repo = fresh_copy(tmp_path / "fidesmail")
    stdout, stderr = run_script(script, repo, port)
    assert '"fallback":"backup_ses"' in stdout  # 2. Mailgun's config, answered with its fallback
    sent = _objects(stdout, '{"id"')
    assert [(s["config_key"], s["provider"]) for s in sent] == [  # 3. SES took it; 5. replayed; 6. Mailgun again
        ("my_mailgun", "aws_ses"), ("my_mailgun", "aws_ses"), ("my_mailgun", "mailgun")]
    assert sent[0] == sent[1]  # the Idempotency-Key: the same answer, the same message
    listed = _objects(stdout, '{"items"')[0]
    assert listed["total"] == 1  # one record
    got = listed["items"][0]
    assert (got["message_id"], got["config_key"], got["sent_via"], got["provider"]) == \
        (sent[0]["message_id"], "my_mailgun", "backup_ses", "aws_ses")
    assert [(a["config_key"], a["provider"], a["outcome"]) for a in got["attempts"]] == [
        ("my_mailgun", "mailgun", "server_error"), ("backup_ses", "aws_ses", "accepted")]
    assert 'fidesmail_failovers_total{from_provider="mailgun",to_provider="aws_ses"} 1.0' in stdout
    assert "Traceback" not in stderr and "key-123" not in stdout and "123456" not in stdout.split('"items"', 1)[1]


def _objects(output: str, start: str) -> list[dict]:
    """Every JSON object in `output` that begins with `start` (curl prints answers without a newline)."""
    decoder, found, at = json.JSONDecoder(), [], output.find(start)
    while at >= 0:
        value, end = decoder.raw_decode(output, at)
        found.append(value)
        at = output.find(start, end)
    return found


def test_the_other_providers_events_walkthrough_runs_verbatim(tmp_path):
    """README "Delivery events from SendGrid, Mandrill and SES": a SendGrid event and an SNS notification, signed
    by the stand-ins' helpers and posted with curl, move real sends on; flask messages verify re-checks both."""
    section = README.split("## Delivery events from SendGrid, Mandrill and SES", 1)[1].split("\n## ", 1)[0]
    script = section.split("**With the test stand-ins' signers**", 1)[1]
    script = re.search(r"```sh\n(.*?)```", script, re.S).group(1)
    port, sendgrid_port, ses_port, sns_port = free_port(), free_port(), free_port(), free_port()
    script = (script.replace("localhost:8080", f"localhost:{port}").replace("9997", str(sendgrid_port))
              .replace("9998", str(ses_port)).replace("9995", str(sns_port))
              .replace("/tmp/fidesmail-", f"{tmp_path}/fidesmail-"))
    repo = fresh_copy(tmp_path / "fidesmail")
    stdout, stderr = run_script(script, repo, port)
    assert '"outcome":"verified"' in stdout and '"status":"delivered"' in stdout, stdout  # SendGrid's event
    assert '"status":"failed"' in stdout, stdout  # SES's Bounce, through SNS
    assert "2 of 2 stored event(s) of all messages verified" in stderr, stderr
    assert "Traceback" not in stderr and "SG.test-key" not in stdout + stderr


def test_the_limits_and_evidence_walkthrough_runs_verbatim(tmp_path):
    """README "Limits and evidence": five paced codes, the sixth refused, a bundle verified, then altered."""
    section = README.split("## Limits and evidence", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    assert "kill %1 %2" in script
    port, mailgun_port = free_port(), free_port()
    script = script.replace("localhost:8080", f"localhost:{port}").replace("9999", str(mailgun_port))
    repo = fresh_copy(tmp_path / "fidesmail")
    stdout, stderr = run_script(script, repo, port)
    assert "200 200 200 200 200" in stdout
    assert "HTTP/1.1 429" in stdout and "Retry-After: 3" in stdout and "at most 5 per hour" in stdout
    assert "pri_7.evidence.json: intact: 5 record(s) of reference pri_7" in stdout
    assert re.search(r"altered: record msg_\w+ no longer matches", stdout) and "exit 1" in stdout
    assert "Traceback" not in stderr and "123456" not in (repo / "pri_7.evidence.json").read_text()
