"""podman as the container tests use it: `.ci/podman` (the repository's own set-up, prepared by
`.ci/container-setup`), whether it can run here, and an image of this checkout built with it."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from tests.support import ROOT

PODMAN = ROOT / ".ci" / "podman"
BASE_IMAGE = "docker.io/library/python:3.11-slim"


def podman(*args: str, timeout: float = 60, check: bool = True, cwd=None) -> subprocess.CompletedProcess:
    """`podman ARGS` with the settings that work here; a failure fails the test with podman's words."""
    result = subprocess.run(["bash", str(PODMAN), *args], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, cwd=cwd)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def podman_ready() -> str | None:
    """Why the container tests cannot run here, or None when they can."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman/runc not installed (run .ci/container-setup)"
    try:
        if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
            return f"base image {BASE_IMAGE} missing (run .ci/container-setup)"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman does not work here: {exc}"
    return None


def build_image(name: str, context=ROOT) -> str:
    """Build the Dockerfile of `context` under a fresh tag (layers cached across builds); the tag."""
    tag = f"localhost/{name}:{uuid.uuid4().hex[:12]}"
    podman("build", "--pull=never", "--format", "docker", "--network=host", "-t", tag, str(context), timeout=900)
    return tag
