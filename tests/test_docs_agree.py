"""The documentation agrees with the code: every module it names exists (the README, docs/, the config tree's
README, and the docstrings and comments of the package: paths such as `tree/loader` or `web/send.py`, and the
package docstring's map), and the timeouts it gives a proxy outlast the worst case of a send."""

from __future__ import annotations

import ast
import re

import pytest

from fidesmail.runtime import settings
from tests.support import ROOT

PACKAGE = ROOT / "fidesmail"
DOCUMENTS = [ROOT / "README.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = sorted(PACKAGE.rglob("*.py"))
# A path in backticks: `tree/loader`, `web/send.py`, `runtime/`, `fidesmail/content/templates/`.
MODULE_PATH = re.compile(r"`((?:fidesmail/)?[a-z_]+/(?:[a-z_]+(?:/[a-z_]+)*(?:\.py)?/?)?)`")
# Paths of a config tree or an instance dir, not of the code.
NOT_CODE = ("config/", "instance/", "email/", "templates/", "application/", "bench/", "tests/", "docs/",
            "integrations/", "secrets/",
            "anymail/", "messages/", "webhooks/")  # another project's code; Mandrill's API paths


FOLDERS = [PACKAGE, *(p.parent for p in PACKAGE.rglob("__init__.py"))]
COMMANDS = {"flask", "fidesmail"}  # backticked in the map as commands, not modules


def exists(name: str) -> bool:
    """A path of the package, from its root or from one of its folders (a table row may name `mailgun/` under
    `providers/`), or of the repository."""
    name = name.rstrip("/").removeprefix("fidesmail/")
    return (ROOT / name).exists() or any((folder / name).exists() or (folder / f"{name}.py").exists()
                                         for folder in FOLDERS)


def named_paths(text: str) -> set[str]:
    return {m.group(1) for m in MODULE_PATH.finditer(text) if not m.group(1).startswith(NOT_CODE)}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documents_name_modules_that_exist(document):
    missing = sorted(name for name in named_paths(document.read_text()) if not exists(name))
    assert not missing, f"{document.relative_to(ROOT)} names modules that do not exist: {missing}"


def test_the_code_names_modules_that_exist():
    missing = sorted(f"{source.relative_to(ROOT)}: {name}" for source in SOURCES
                     for name in named_paths(source.read_text()) if not exists(name))
    assert not missing, "\n".join(missing)


def test_the_package_map_names_every_package_and_only_modules_that_exist():
    """fidesmail/__init__.py's docstring is the map: every bare name in it is a module or package of fidesmail,
    and every package of fidesmail is on it."""
    docstring = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    modules = {p.stem for p in SOURCES} | {p.name for p in PACKAGE.rglob("*") if (p / "__init__.py").exists()}
    bare = set(re.findall(r"`([a-z_]+)`", docstring)) - COMMANDS
    assert not bare - modules, f"not modules of fidesmail: {sorted(bare - modules)}"
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    shown = {name.rstrip("/").split("/")[0] for name in re.findall(r"`([a-z_]+/[a-z_/]*)`", docstring)}
    assert not packages - shown, f"packages missing from the map: {sorted(packages - shown)}"


def test_the_proxy_outwaits_the_worst_case_of_a_send():
    """A send's worst case: every try of the Mailgun timeout, plus the 30 s of waiting between tries (contract
    section 6); the README says it, and the nginx example and the fidesops adapter wait longer."""
    defaults = settings.from_environment({})
    worst = defaults["MAILGUN_TIMEOUT"] * (defaults["MAILGUN_RETRIES"] + 1) + 30
    readme = (ROOT / "README.md").read_text()
    said = re.search(r"answers within about (\d+) s at worst", readme)
    assert said and int(said.group(1)) == worst
    nginx = re.search(r"proxy_read_timeout (\d+)s;", (ROOT / "docs" / "security.md").read_text())
    assert nginx and int(nginx.group(1)) > worst
    adapter = re.search(r"the\s+adapter waits (\d+) s \(`FIDESMAIL_TIMEOUT`\)", readme)
    assert adapter and int(adapter.group(1)) > worst


@pytest.mark.parametrize("title, example", [("### With compose", "compose.yaml"),
                                            ("### With Kubernetes", "kubernetes.yaml")])
def test_the_deploy_examples_carry_the_readmes_steps(title, example):
    """Each example's header lists the README's steps word for word (the README's are the tested ones)."""
    section = (ROOT / "README.md").read_text().split(title, 1)[1].split("\n### ", 1)[0]
    steps = re.search(r"```sh\n(.*?)```", section, re.S).group(1).strip().splitlines()
    header = [line.removeprefix("#").strip() for line in (ROOT / "docs" / "deploy" / example).read_text().splitlines()
              if line.startswith("#")]
    at = header.index(steps[0].strip())
    assert header[at:at + len(steps)] == [step.strip() for step in steps]


def test_the_quick_start_installs_into_a_virtual_environment():
    """Debian's Python refuses `pip install` outside a virtual environment: the Quick start makes one first."""
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    steps = re.search(r"```sh\n(.*?)```", section, re.S).group(1).splitlines()
    venv = next(i for i, step in enumerate(steps) if "-m venv" in step and "bin/activate" in step)
    assert venv < next(i for i, step in enumerate(steps) if step.startswith("pip install -r requirements.txt"))


def test_ci_runs_the_readmes_test_command():
    """Contract section 2: `.ci/run` calls exactly the README's test command, in a fresh virtual environment."""
    section = (ROOT / "README.md").read_text().split("## Development", 1)[1].split("\n## ", 1)[0]
    steps = re.search(r"```sh\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert steps[-1] == "pip install -r requirements-dev.txt && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert steps[-1] in ci and "python3 -m venv" in "\n".join(ci)
    assert not any("shared/" in line for line in ci)  # nothing beside the clone is needed
