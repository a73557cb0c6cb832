"""The operator's commands as a newcomer runs them: `flask check` writes nothing anywhere and says each
problem once, with a hint where YAML's types surprise; only `token create` and `secrets rotate` make
key files; `secrets seal` writes only the sealed file; `rotate --drop-old` does not rotate again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fidesmail.sealing import envelope, keys
from tests.support import CONFIG, ROOT

pytestmark = pytest.mark.slow  # each test runs a `flask` command as a process

FIELD = "mailgun_api_key"


def files_under(*folders: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and folder under `folders`: content (None for a folder) and mode, by path."""
    found = {}
    for folder in folders:
        if not folder.exists():
            continue
        for path in [folder, *folder.rglob("*")]:
            found[str(path)] = (None if path.is_dir() else path.read_bytes(), path.stat().st_mode)
    return found


def flask(tmp_path, *args, stdin="", secret_key=None, keyring=None) -> subprocess.CompletedProcess:
    """`flask ...` from the repository root, as a CI step or a contributor runs it (no signing key set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIDESMAIL_")}
    env.update(FIDESMAIL_CONFIG_DIR=str(tmp_path / "config"), FIDESMAIL_INSTANCE_DIR=str(tmp_path / "instance"))
    if secret_key:
        env["FIDESMAIL_SECRET_KEY"] = secret_key
    if keyring:
        env["FIDESMAIL_SEAL_KEY_FILE"] = str(keyring)
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def add_config(tree: Path, key: str, **changes) -> None:
    (tree / "email").mkdir(parents=True, exist_ok=True)
    body = {**CONFIG, "key": key, "name": key, **changes}
    (tree / "email" / f"{key}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))


def make_keys(tmp_path: Path) -> keys.KeyPair:
    """A keyring in the instance dir and its seal.pub in the tree, as a first start leaves them."""
    pair = keys.generate_keypair()
    (tmp_path / "instance").mkdir(mode=0o700, exist_ok=True)
    (tmp_path / "instance" / "seal.key").write_bytes(keys.dump_keyring([pair]))
    os.chmod(tmp_path / "instance" / "seal.key", 0o600)
    (tmp_path / "config" / "seal.pub").write_bytes(keys.dump_public_key(pair.public_key))
    return pair


def seal_into_tree(tmp_path: Path, pair: keys.KeyPair, config_key: str) -> None:
    value = envelope.seal(pair.public_key, config_key, FIELD, "key-123")
    (tmp_path / "config" / "secrets.sealed.yaml").write_text(
        yaml.safe_dump({"version": 1, "secrets": {config_key: {FIELD: value}}}))


def no_error_lines(stderr: str) -> None:
    """Nothing on stderr looks like a JSON log line: the commands speak in plain lines."""
    assert not [line for line in stderr.splitlines() if line.startswith("{")], stderr


# -- flask check writes nothing ------------------------------------------------------------


@pytest.mark.parametrize("state", ["no seal.pub, no instance dir", "empty instance dir", "keyring and seal.pub",
                                   "seal.pub only", "a bad file"])
def test_check_writes_nothing_anywhere(tmp_path, state):
    tree = tmp_path / "config"
    add_config(tree, "ok")
    if state == "empty instance dir":
        (tmp_path / "instance").mkdir()
    if state in ("keyring and seal.pub", "seal.pub only"):
        seal_into_tree(tmp_path, make_keys(tmp_path), "ok")
        if state == "seal.pub only":
            (tmp_path / "instance" / "seal.key").unlink()
    if state == "a bad file":
        (tree / "email" / "bad.yaml").write_text("name: [oops\n")
    before = files_under(tmp_path)
    result = flask(tmp_path, "check")
    # No seal.pub is a problem (contract section 7: a check of the wrong folder fails), and so is a bad file.
    failing = state in ("a bad file", "no seal.pub, no instance dir", "empty instance dir")
    assert result.returncode == (1 if failing else 0), result.stdout + result.stderr
    assert files_under(tmp_path) == before  # the tree and the instance dir, byte for byte, modes too
    no_error_lines(result.stderr)


@pytest.mark.parametrize("args", [["--help"], ["token", "--help"], ["secrets", "--help"], ["routes"]])
def test_other_read_only_commands_write_nothing(tmp_path, args):
    add_config(tmp_path / "config", "ok")
    before = files_under(tmp_path)
    assert flask(tmp_path, *args).returncode == 0
    assert files_under(tmp_path) == before


# -- which commands may make key files --------------------------------------------------------


def test_token_create_makes_only_the_signing_key(tmp_path):
    add_config(tmp_path / "config", "ok")
    before = files_under(tmp_path)
    result = flask(tmp_path, "token", "create", "--scope", "email:read")
    assert result.returncode == 0 and result.stdout.strip()
    made = files_under(tmp_path).keys() - before.keys()
    assert made == {str(tmp_path / "instance"), str(tmp_path / "instance" / "secret_key")}
    # With FIDESMAIL_SECRET_KEY set it needs no file at all.
    again = tmp_path / "again"
    add_config(again / "config", "ok")
    assert flask(again, "token", "create", "--scope", "email:read", secret_key="k").returncode == 0
    assert not (again / "instance").exists()


def test_seal_with_only_the_public_key_writes_only_the_sealed_file(tmp_path):
    """A contributor's checkout: seal.pub, no private key, no instance dir. No ERROR, no other file."""
    add_config(tmp_path / "config", "ok")
    make_keys(tmp_path)
    (tmp_path / "instance" / "seal.key").unlink()
    (tmp_path / "instance").rmdir()
    before = files_under(tmp_path)
    result = flask(tmp_path, "secrets", "seal", "ok", FIELD, stdin="key-123\n")
    assert result.returncode == 0, result.stderr
    after = files_under(tmp_path)
    changed = {path for path in after.keys() | before.keys() if after.get(path) != before.get(path)}
    assert changed == {str(tmp_path / "config" / "secrets.sealed.yaml")}  # not even an instance dir
    assert "ERROR" not in result.stderr and "error" not in result.stderr.lower()
    no_error_lines(result.stderr)
    assert result.stderr.strip().startswith("sealed ok/mailgun_api_key into")


def test_rotate_writes_the_keyring_the_sealed_file_and_seal_pub_only(tmp_path):
    add_config(tmp_path / "config", "ok")
    seal_into_tree(tmp_path, make_keys(tmp_path), "ok")
    before = files_under(tmp_path)
    result = flask(tmp_path, "secrets", "rotate")
    assert result.returncode == 0, result.stderr
    after = files_under(tmp_path)
    changed = {Path(path).name for path in after.keys() | before.keys()
               if after.get(path) != before.get(path) and (after.get(path) or (None,))[0] is not None}
    assert changed == {"seal.key", "seal.pub", "secrets.sealed.yaml"}
    assert after.keys() == before.keys()  # no lock file, no secret_key, nothing else


def test_drop_old_drops_unused_keys_without_rotating_again(tmp_path):
    """After a rotation, the seal.pub just committed stays valid: --drop-old changes only the keyring."""
    add_config(tmp_path / "config", "ok")
    seal_into_tree(tmp_path, make_keys(tmp_path), "ok")
    assert flask(tmp_path, "secrets", "rotate").returncode == 0
    keyring_path = tmp_path / "instance" / "seal.key"
    newest = keys.load_keyring(keyring_path)[0]
    assert len(keys.load_keyring(keyring_path)) == 2
    before = files_under(tmp_path)
    result = flask(tmp_path, "secrets", "rotate", "--drop-old")
    assert result.returncode == 0, result.stderr
    assert "dropped 1 old key(s)" in result.stderr
    [kept] = keys.load_keyring(keyring_path)
    assert kept.key_id == newest.key_id
    after = files_under(tmp_path)
    for name in ("seal.pub", "secrets.sealed.yaml"):
        path = str(tmp_path / "config" / name)
        assert after[path] == before[path], name  # not re-sealed, not a new key pair
    assert flask(tmp_path, "check").returncode == 0


# -- what flask check says --------------------------------------------------------------------

# What PyYAML (YAML 1.1) makes of each unquoted value, and what check says about `domain: <value>`.
YAML_SURPRISES = {
    "yes": "YAML reads the unquoted yes as the boolean true; write \"yes\" in quotes for the text",
    "no": "YAML reads the unquoted no as the boolean false; write \"no\" in quotes for the text",
    "on": "YAML reads the unquoted on as the boolean true; write \"on\" in quotes for the text",
    "010": "YAML reads the unquoted 010 as the number 8; write \"010\" in quotes for the text",
    "1e3": None,  # PyYAML's float needs a dot: 1e3 stays the text "1e3", so no hint, only the DNS-name rule
}


@pytest.mark.parametrize("value", sorted(YAML_SURPRISES))
def test_check_explains_what_yaml_made_of_a_value(tmp_path, value):
    assert isinstance(yaml.safe_load(f"v: {value}")["v"], str) == (YAML_SURPRISES[value] is None)
    tree = tmp_path / "config"
    (tree / "email").mkdir(parents=True)
    (tree / "email" / "k.yaml").write_text(f"name: K\nservice_type: mailgun\ndetails:\n  domain: {value}\n")
    make_keys(tmp_path)  # a tree has its seal.pub (without it, that is a problem too)
    result = flask(tmp_path, "check")
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{tree}/email/k.yaml:4: details.domain: ")
    hint = YAML_SURPRISES[value]
    if hint is None:
        assert "YAML reads" not in line and "DNS name" in line
    else:
        assert line.endswith(f"Not a valid string. ({hint})")


def test_check_suggests_the_field_meant(tmp_path):
    tree = tmp_path / "config"
    (tree / "email").mkdir(parents=True)
    (tree / "email" / "k.yaml").write_text("name: K\nservice_type: mailgun\ndetials:\n  domain: mg.example.com\n")
    (tree / "email" / "j.yaml").write_text("name: J\nservice_type: mailgun\ndetails:\n  domian: mg.example.com\n")
    result = flask(tmp_path, "check")
    assert f"{tree}/email/k.yaml:3: detials: Unknown field. (did you mean 'details'?)" in result.stdout
    assert f"{tree}/email/j.yaml:4: details.domian: Unknown field. (did you mean 'domain'?)" in result.stdout


def test_check_says_each_problem_once_on_stdout(tmp_path):
    """No JSON log lines on stderr repeating them; a config that fails to load is not reported again
    through its secrets ("secrets for a config that does not exist")."""
    tree = tmp_path / "config"
    add_config(tree, "broken")
    add_config(tree, "typo")
    seal_into_tree(tmp_path, make_keys(tmp_path), "broken")
    (tree / "email" / "broken.yaml").write_text("name: [oops\n")
    (tree / "email" / "typo.yaml").write_text("name: T\nservice_type: mailgun\ndetails:\n  domain: no\n")
    result = flask(tmp_path, "check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{tree}/email/broken.yaml:") and lines[1].startswith(f"{tree}/email/typo.yaml:4:")
    assert "does not exist" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"2 problem(s) in {tree}"]


@pytest.mark.parametrize("args", [["check"], ["token", "create", "--scope", "email:read"]])
def test_a_bad_setting_stops_a_command_in_one_line(tmp_path, args):
    add_config(tmp_path / "config", "ok")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIDESMAIL_")}
    env.update(FIDESMAIL_CONFIG_DIR=str(tmp_path / "conifg"))  # a typo
    result = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"fidesmail: FIDESMAIL_CONFIG_DIR names {tmp_path / 'conifg'}, which is "
                                          "not an existing folder"]


@pytest.mark.parametrize("layout", ["no email folder", "no seal.pub", "no config"])
def test_check_of_the_wrong_folder_fails(tmp_path, layout):
    """Contract section 7: a CI check pointed at the wrong folder (or at an empty one) fails, naming what is missing."""
    tree = tmp_path / "config"
    tree.mkdir()
    if layout != "no email folder":
        (tree / "email").mkdir()
    if layout != "no seal.pub":
        make_keys(tmp_path)
    result = flask(tmp_path, "check")
    assert result.returncode == 1
    expected = {"no email folder": "there is no email/ folder", "no seal.pub": "there is no seal.pub",
                "no config": "no config in the tree"}[layout]
    assert expected in result.stdout
    allowed = flask(tmp_path, "check", "--allow-empty")
    assert allowed.returncode == (0 if layout == "no config" else 1), allowed.stdout  # email/ and seal.pub stay


def test_check_speaks_github_annotations(tmp_path):
    tree = tmp_path / "config"
    add_config(tree, "ok")
    make_keys(tmp_path)
    (tree / "email" / "bad.yaml").write_text("name: [oops\n")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "app.py"), "check", "--format",
                             "github"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith("FIDESMAIL_")})
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith("::error file=config/email/bad.yaml,line=2::"), line  # relative to the working dir


def test_secrets_init_makes_the_production_keyring_once(tmp_path):
    """Contract section 7: the first step of a deployment; never over an existing keyring or seal.pub."""
    (tmp_path / "config" / "email").mkdir(parents=True)
    keyring = tmp_path / "secrets" / "seal.key"
    made = flask(tmp_path, "secrets", "init", keyring=keyring)
    assert made.returncode == 0, made.stderr
    key_id = made.stdout.strip()
    assert os.stat(keyring).st_mode & 0o777 == 0o600
    assert keys.load_keyring(keyring)[0].key_id == key_id
    public = (tmp_path / "config" / "seal.pub").read_bytes()
    assert keys.key_id_of(keys.parse_public_key(public, "seal.pub")) == key_id
    before = files_under(tmp_path)
    again = flask(tmp_path, "secrets", "init", keyring=keyring)
    assert again.returncode == 1 and "not written over" in again.stderr
    other = flask(tmp_path, "secrets", "init", keyring=tmp_path / "other.key")  # seal.pub is there already
    assert other.returncode == 1 and "seal.pub exists" in other.stderr
    assert files_under(tmp_path) == before
    to_stdout = flask(tmp_path, "secrets", "init", "--pub", "-", keyring=tmp_path / "third" / "seal.key")
    assert to_stdout.returncode == 0 and "BEGIN PUBLIC KEY" in to_stdout.stdout
    assert "PRIVATE" not in to_stdout.stdout + to_stdout.stderr
