"""docs/deploy/kubernetes.yaml: valid against the Kubernetes API's own schemas (kubernetes-validate, from PyPI:
the OpenAPI schemas of each Kubernetes release, shipped in the package), and wired the way the README says:
git-sync as an init container and a sidecar, the tree at the config repository's root (where the README's CI
example checks it), probes on /readyz and /livez, keys from a Secret mounted 0440 for the service's group."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from fidesmail.sealing import keys
from tests.support import CONFIG, ROOT

MANIFEST = ROOT / "docs" / "deploy" / "kubernetes.yaml"
README = (ROOT / "README.md").read_text()
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def pod_spec() -> dict:
    [deployment] = [d for d in documents() if d["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]


def container(spec: dict, name: str, *, init: bool = False) -> dict:
    return next(c for c in spec["initContainers" if init else "containers"] if c["name"] == name)


def flag(args: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")), None)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifest_is_valid_kubernetes(version):
    for document in documents():
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_catches_a_mistake():
    """The check above can fail: an unknown field (strict) and a wrong type are refused."""
    spec_of = lambda d: d["spec"]["template"]["spec"]  # noqa: E731
    for mistake in (lambda d: container(spec_of(d), "fidesmail").update(volumeMount=[]),
                    lambda d: spec_of(d)["securityContext"].update(fsGroup="10001")):
        [document] = [d for d in documents() if d["kind"] == "Deployment"]
        mistake(document)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(document, KUBERNETES_VERSIONS[-1], strict=True)


def test_git_sync_checks_out_before_fidesmail_starts_and_keeps_syncing():
    spec = pod_spec()
    first, sidecar = container(spec, "git-sync-init", init=True), container(spec, "git-sync")
    assert "--one-time" in first["args"] and "--one-time" not in sidecar["args"]
    for name in ("repo", "root", "link"):
        assert flag(first["args"], name) == flag(sidecar["args"], name), name
    assert flag(sidecar["args"], "period")
    fidesmail = container(spec, "fidesmail")
    env = {e["name"]: e.get("value") for e in fidesmail["env"]}
    [config_mount] = [m for m in fidesmail["volumeMounts"] if m["name"] == "config"]
    [git_mount] = [m for m in first["volumeMounts"] if m["name"] == "config"]
    assert config_mount["readOnly"] is True
    # The tree fidesmail reads is git-sync's link itself: the root of the config repository.
    link = (Path(flag(first["args"], "root")) / flag(first["args"], "link")).relative_to(git_mount["mountPath"])
    assert Path(env["FIDESMAIL_CONFIG_DIR"]) == Path(config_mount["mountPath"]) / link


def test_probes_use_readyz_and_livez():
    fidesmail = container(pod_spec(), "fidesmail")
    assert "/readyz" in " ".join(fidesmail["readinessProbe"]["exec"]["command"])
    assert "/livez" in " ".join(fidesmail["livenessProbe"]["exec"]["command"])


def test_keys_come_from_a_secret_mounted_for_the_services_group():
    spec = pod_spec()
    fidesmail = container(spec, "fidesmail")
    [keys_volume] = [v for v in spec["volumes"] if v["name"] == "keys"]
    assert keys_volume["secret"]["defaultMode"] == 0o440 and spec["securityContext"]["fsGroup"] == 10001
    [mount] = [m for m in fidesmail["volumeMounts"] if m["name"] == "keys"]
    env = {e["name"]: e.get("value") for e in fidesmail["env"]}
    assert "FIDESMAIL_SECRET_KEY" not in env  # from its file, not an environment variable
    for variable, key in (("FIDESMAIL_SEAL_KEY_FILE", "seal.key"), ("FIDESMAIL_SECRET_KEY_FILE", "secret-key")):
        assert env[variable] == f"{mount['mountPath']}/{key}"
        assert re.search(rf"--from-(file|literal)={re.escape(key)}=", MANIFEST.read_text()), key


@pytest.mark.slow
def test_the_readme_ci_check_runs_on_the_config_repository_root(tmp_path):
    """The README's GitOps workflow checks the repository root, which is the tree the manifest serves: its `run`
    steps, run as written in a workspace holding the config repository and a checkout of fidesmail."""
    section = README.split("## GitOps: configs by pull request", 1)[1].split("\n## ", 1)[0]
    workflow = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    steps = [step["run"] for step in workflow["jobs"]["check"]["steps"] if "run" in step]
    assert any("FIDESMAIL_CONFIG_DIR=$GITHUB_WORKSPACE" in step for step in steps)
    workspace = tmp_path / "workspace"  # actions/checkout: the config repository at the root...
    (workspace / "email").mkdir(parents=True)
    (workspace / "email" / "my_mailgun.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    (workspace / "seal.pub").write_bytes(keys.dump_public_key(keys.generate_keypair().public_key))
    (workspace / "fidesmail").symlink_to(ROOT)  # ...and fidesmail in ./fidesmail (path: fidesmail)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIDESMAIL_", "FLASK_"))}
    env.update(GITHUB_WORKSPACE=str(workspace), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    for step in steps:
        if step.startswith("pip install"):
            continue  # this test run has the requirements already (and no network for a new venv)
        result = subprocess.run(["bash", "-e", "-c", step], cwd=workspace, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, f"{step}\n{result.stdout}{result.stderr}"
        assert "1 config(s), no problems" in result.stderr
    # Pointed at the wrong folder (fidesmail's own empty config/), the same step fails.
    wrong = [s.replace("$GITHUB_WORKSPACE", "config") for s in steps if "flask check" in s]
    result = subprocess.run(["bash", "-e", "-c", wrong[0]], cwd=workspace, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, shlex.quote(wrong[0])
