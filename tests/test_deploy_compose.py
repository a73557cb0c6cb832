"""The README's "Deployment: with compose", run as written from a fresh copy of the repository, with podman
(podman-compose from PyPI, `.ci/podman`'s settings) standing in for Docker: the image built, the keyring made
inside the container, the tree checked, the service up and ready, the keyring backed up, fidesops' token minted.
Only the last line (starting fidesops, whose base image comes from a registry) is left out."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fidesmail.sealing import keys
from fidesmail.web import auth
from tests.containers import PODMAN, podman, podman_ready
from tests.support import ROOT

pytestmark = [pytest.mark.container, pytest.mark.slow]  # builds the image and runs a stack

README = (ROOT / "README.md").read_text()
BUILD_ARGS = "--pull=never --format docker --network=host"


def bootstrap() -> list[str]:
    section = README.split("### With compose", 1)[1].split("\n### ", 1)[0]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1).strip().splitlines()


def podman_compose() -> str | None:
    beside = Path(sys.executable).with_name("podman-compose")
    return str(beside) if beside.is_file() else shutil.which("podman-compose")


def fresh_copy(dest: Path) -> Path:
    """What a clone of this repository holds: its tracked files and the new ones git would commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture
def compose_project(tmp_path):
    """A copy of the repository, a compose project name of its own, and everything it made removed after."""
    reason = podman_ready() or (None if podman_compose() else "podman-compose is not installed "
                                                              "(pip install -r requirements-dev.txt)")
    if reason:
        pytest.skip(reason)
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no way to tell what a clone would hold")
    project = f"fidesmail-compose-{uuid.uuid4().hex[:8]}"
    repo = fresh_copy(tmp_path / "fidesmail")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIDESMAIL_", "FLASK_"))}
    env.update(COMPOSE_PROJECT_NAME=project, PODMAN_COMPOSE=podman_compose(), PODMAN=str(PODMAN),
               PODMAN_BUILD_ARGS=BUILD_ARGS)

    def compose(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([podman_compose(), "--in-pod", "false", "--podman-path", str(PODMAN),
                               "--podman-build-args", BUILD_ARGS, *args], cwd=repo / "docs" / "deploy", env=env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    try:
        yield repo, env, compose
    finally:
        compose("down", "-v", "-t", "5")
        podman("rmi", "-f", f"localhost/{project}_fidesmail", check=False)


# `docker compose ...` as podman-compose: one container per service, no pod (as Docker's compose), podman with
# the settings that work here; building offline from the local base image.
DOCKER = """docker() {
  if [[ $1 == compose ]]; then
    shift
    "$PODMAN_COMPOSE" --in-pod false --podman-path "$PODMAN" --podman-build-args "$PODMAN_BUILD_ARGS" "$@"
  else
    "$PODMAN" "$@"
  fi
}
"""


def test_the_compose_bootstrap_runs_verbatim(compose_project):
    repo, env, compose = compose_project
    steps = bootstrap()
    assert steps[-1].strip() == "docker compose up -d"  # fidesops too: left out here
    script = DOCKER + "set -euo pipefail\n" + "\n".join(steps[:-1]) + "\n"
    run = subprocess.run(["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=1200,
                         stdin=subprocess.DEVNULL)
    logs = compose("logs", "fidesmail")
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{logs.stdout}{logs.stderr}"
    deploy = repo / "docs" / "deploy"

    # The keyring was made inside the container (uid 10001, 0600), its public half came out clean into the tree.
    backup = deploy / "fidesmail-seal.key.backup"
    assert backup.stat().st_mode & 0o777 == 0o600
    keyring = keys.load_keyring(backup)
    public_key = keys.parse_public_key((deploy / "config" / "seal.pub").read_bytes(), "seal.pub")
    assert keys.key_id_of(public_key) == keyring[0].key_id
    owner = compose("exec", "-T", "fidesmail", "stat", "-c", "%u %a", "/app/instance/seal.key")
    assert owner.stdout.split() == ["10001", "600"], owner.stdout + owner.stderr

    # Ready: the database, the sealing keys (seal.pub matches the keyring) and the read-only tree.
    probe = ("import json, urllib.request\n"
             "for path in ('/readyz', '/health'):\n"
             "    print(json.dumps(json.load(urllib.request.urlopen('http://127.0.0.1:8080' + path, timeout=4))))")
    for _ in range(60):
        answered = compose("exec", "-T", "fidesmail", "python", "-c", probe)
        if answered.returncode == 0:
            break
    assert answered.returncode == 0, answered.stdout + answered.stderr
    ready, health = (json.loads(line) for line in answered.stdout.splitlines()[-2:])
    assert ready == {"status": "ready"}
    assert health["status"] == "healthy" and health["read_only"] is True

    # fidesops.env holds an email:send token signed with the service's own key.
    [line] = (deploy / "fidesops.env").read_text().splitlines()
    name, _, token = line.partition("=")
    signing_key = compose("exec", "-T", "fidesmail", "cat", "/app/instance/secret_key").stdout.strip()
    assert name == "FIDESMAIL_TOKEN" and auth.verify_token([signing_key], token) == {auth.SEND}

    log = compose("logs", "fidesmail")
    assert "Traceback" not in log.stdout + log.stderr and "chmod 600" not in log.stdout + log.stderr

    # The volume lost (down -v), the backup restored as the README says: the same key opens again.
    compose("down", "-v", "-t", "5")
    section = " ".join(README.split("### With compose", 1)[1].split("\n### ", 1)[0].split())
    restore = re.search(r"`(docker compose run [^`]*< fidesmail-seal\.key\.backup)`", section).group(1)
    script = DOCKER + "set -euo pipefail\ncd docs/deploy\n" + restore + "\ndocker compose up -d fidesmail\n"
    run = subprocess.run(["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    for _ in range(60):
        answered = compose("exec", "-T", "fidesmail", "python", "-c", probe)
        if answered.returncode == 0:
            break
    assert answered.returncode == 0, answered.stdout + answered.stderr + compose("logs", "fidesmail").stdout
    assert json.loads(answered.stdout.splitlines()[-2]) == {"status": "ready"}  # seal.pub matches the restored key
