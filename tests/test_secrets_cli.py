"""`flask secrets seal|rotate` and `flask check` on sealed values: tampering, rotation, round trips."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys

import pytest
import requests
import yaml

from fidesmail.sealing import envelope as envelopes
from fidesmail.sealing import keys
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, ROOT, SECRET, bearer, parse_sealed

FIELD = "mailgun_api_key"
URL = "/api/v1/email/config"


def flask(tmp_path, tree, *args, stdin="", keyring=None):
    """Run `flask ...` from the repository root as a user would."""
    env = {
        **os.environ,
        "FIDESMAIL_CONFIG_DIR": str(tree),
        "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
        "FIDESMAIL_SECRET_KEY": SECRET,
    }
    if keyring is not None:
        env["FIDESMAIL_SEAL_KEY_FILE"] = str(keyring)
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_config(tree, key):
    (tree / "email" / f"{key}.yaml").write_text(yaml.safe_dump({**CONFIG, "key": key, "name": key}))


def sealed_doc(tree):
    return yaml.safe_load((tree / "secrets.sealed.yaml").read_text())


def write_doc(tree, document):
    (tree / "secrets.sealed.yaml").write_text(yaml.safe_dump(document))


@pytest.fixture
def sealed_tree(app, runner, tree):
    """Two configs, each with a sealed key, sealed through the CLI."""
    for key in ("alpha", "beta"):
        add_config(tree, key)
        result = runner.invoke(args=["secrets", "seal", key, FIELD], input=f"key-{key}-value\n")
        assert result.exit_code == 0, result.output
    return tree


def test_seal_reads_stdin_and_the_check_opens_it(sealed_tree, runner):
    document = sealed_doc(sealed_tree)
    assert set(document["secrets"]) == {"alpha", "beta"}
    assert "key-alpha-value" not in (sealed_tree / "secrets.sealed.yaml").read_text()
    result = runner.invoke(args=["check"])
    assert result.exit_code == 0, result.output


def test_a_contributor_with_only_seal_pub_seals_and_the_server_opens(tmp_path, tree, server):
    """Seal in a checkout without the private key; the service holding it opens the value and sends with it."""
    fake = MailgunFake(domains={"mg.example.com": "key-from-a-pull-request"}).start()
    service = server(FIDESMAIL_MAILGUN_BASE_URL=fake.base_url)  # first start: makes the key pair and seal.pub
    contributor = tmp_path / "contributor"
    contributor.mkdir()
    add_config(tree, "gitops")
    result = flask(
        contributor,
        tree,
        "secrets",
        "seal",
        "gitops",
        FIELD,
        stdin="key-from-a-pull-request\n",
        keyring=contributor / "no-such-key",
    )
    assert result.returncode == 0, result.stderr
    assert not (contributor / "no-such-key").exists()  # sealing needs no private key
    requests.post(service.url + "/api/v1/reload", headers=bearer())
    answer = requests.get(f"{service.url}{URL}/gitops", headers=bearer()).json()
    assert answer["secrets_set"] is True
    assert flask(tmp_path, tree, "check").returncode == 0  # the service's key opens it
    sent = requests.post(service.url + "/api/v1/email/send", headers=bearer(), timeout=10, json={
        "config_key": "gitops", "action_type": "test_message", "to": "ops@example.com"})
    fake.close()
    assert sent.status_code == 200, sent.text  # the fake accepts only the sealed key for this domain
    assert fake.sent[0].auth_user == "api"
    assert "key-from-a-pull-request" not in service.log()


def _tamper(document, how, other_pair):
    values = document["secrets"]
    original = values["alpha"][FIELD]
    if how == "one character changed":
        i = len(original) - 5
        values["alpha"][FIELD] = original[:i] + ("A" if original[i] != "A" else "B") + original[i + 1 :]
    elif how == "truncated":
        values["alpha"][FIELD] = original[:-10]
    elif how == "pasted from another config":
        values["alpha"][FIELD] = values["beta"][FIELD]
    elif how == "sealed for another key pair":
        values["alpha"][FIELD] = envelopes.seal(other_pair.public_key, "alpha", FIELD, "key-alpha-value")
    return document


@pytest.mark.parametrize(
    "how", ["one character changed", "truncated", "pasted from another config", "sealed for another key pair"]
)
def test_tampered_values_are_refused_naming_config_and_field(sealed_tree, runner, how):
    write_doc(sealed_tree, _tamper(sealed_doc(sealed_tree), how, keys.generate_keypair()))
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line]
    assert len(lines) == 1, lines  # beta is untouched
    assert "secrets.sealed.yaml:" in lines[0] and "alpha/mailgun_api_key" in lines[0]
    assert "key-alpha-value" not in result.output


@pytest.mark.parametrize(
    "content,words",
    [
        (b"\x00\x01garbage", "not a text file"),
        (b"version: 99\nsecrets: {}\n", "version"),
        (b"- just\n- a list\n", "mapping"),
    ],
)
def test_garbage_or_unknown_version_is_reported(app, runner, tree, content, words):
    add_config(tree, "alpha")
    (tree / "secrets.sealed.yaml").write_bytes(content)
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    assert words in result.stdout
    client = app.test_client()
    client.post("/api/v1/reload", headers=bearer())
    assert client.get(f"{URL}/alpha", headers=bearer()).status_code == 200  # only secrets are affected


def test_a_secret_left_behind_by_a_rename_is_reported(sealed_tree, runner):
    os.rename(sealed_tree / "email" / "alpha.yaml", sealed_tree / "email" / "alpha2.yaml")
    (sealed_tree / "email" / "alpha2.yaml").write_text(yaml.safe_dump({**CONFIG, "key": "alpha2", "name": "a2"}))
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    assert "alpha: secrets for a config that does not exist" in result.stdout


def test_rotation_over_three_generations(sealed_tree, runner, app, tmp_path):
    keyring_path = app.config["SEAL_KEY_FILE"]
    first_pub = keys.load_public_key(sealed_tree / "seal.pub")
    generations = [keys.load_keyring(keyring_path)[0].key_id]
    for _ in range(3):
        result = runner.invoke(args=["secrets", "rotate"])
        assert result.exit_code == 0, result.output
        keyring = keys.load_keyring(keyring_path)
        generations.insert(0, keyring[0].key_id)
        assert [k.key_id for k in keyring] == generations  # old keys kept, newest first
        assert keys.key_id_of(keys.load_public_key(sealed_tree / "seal.pub")) == keyring[0].key_id
        assert runner.invoke(args=["check"]).exit_code == 0
    assert len(set(generations)) == 4
    secrets_file, _ = parse_sealed((sealed_tree / "secrets.sealed.yaml").read_bytes())
    assert {envelopes.key_id(e) for _, _, e in secrets_file.places()} == {generations[0]}
    # A value sealed with the first seal.pub (say, a pull request opened long ago) still opens...
    late = envelopes.seal(first_pub, "alpha", FIELD, "late-value")
    assert envelopes.open_sealed(keys.load_keyring(keyring_path), "alpha", FIELD, late) == "late-value"
    # ...until the old keys are dropped.
    result = runner.invoke(args=["secrets", "rotate", "--drop-old"])
    assert result.exit_code == 0, result.output
    assert len(keys.load_keyring(keyring_path)) == 1
    assert runner.invoke(args=["check"]).exit_code == 0
    with pytest.raises(envelopes.SealError, match="another key pair"):
        envelopes.open_sealed(keys.load_keyring(keyring_path), "alpha", FIELD, late)
    assert stat.S_IMODE(os.stat(keyring_path).st_mode) == 0o600


@pytest.mark.slow  # `flask secrets rotate` as a process
def test_rotate_without_the_private_key_changes_nothing(sealed_tree, tmp_path):
    before = (sealed_tree / "secrets.sealed.yaml").read_bytes()
    result = flask(tmp_path, sealed_tree, "secrets", "rotate", keyring=tmp_path / "missing.key")
    assert result.returncode == 1
    assert "missing.key" in result.stderr and "Traceback" not in result.stderr
    assert (sealed_tree / "secrets.sealed.yaml").read_bytes() == before


def test_missing_private_key_still_serves_configs(make_app, sealed_tree, tmp_path, runner, caplog):
    moved = tmp_path / "instance" / "seal.key"
    os.rename(moved, tmp_path / "elsewhere.key")
    client = make_app().test_client()
    assert not moved.exists()  # a committed seal.pub without its key: nothing new is generated
    assert str(moved) in caplog.text
    assert client.get(f"{URL}/alpha", headers=bearer()).json["secrets_set"] is True


def test_loose_key_file_permissions_warn(sealed_tree, app, runner, caplog):
    os.chmod(app.config["SEAL_KEY_FILE"], 0o644)
    result = runner.invoke(args=["check"])
    assert result.exit_code == 0
    assert any(r.levelname == "WARNING" and str(app.config["SEAL_KEY_FILE"]) in r.getMessage() for r in caplog.records)


def test_canary_key_never_leaks(tmp_path, tree, server, capfd):
    """Plant a random key, drive every endpoint and command, grep every output and file."""
    canary = "key-" + secrets.token_hex(20)
    service = server()
    auth = bearer()
    outputs = []
    base = service.url + URL
    calls = [
        ("post", base, {"json": CONFIG}),
        ("put", f"{base}/my_mailgun/secret", {"json": {"mailgun_api_key": canary}}),
        ("post", f"{base}/my_mailgun/secret", {"json": {"mailgun_api_key": canary}}),
        ("put", f"{base}/my_mailgun/secret", {"json": {"mailgun_api_key": canary, "extra": canary}}),
        ("put", f"{base}/my_mailgun/secret", {"json": {"mailgun_api_key": canary + "\n"}}),
        ("put", f"{base}/nope/secret", {"json": {"mailgun_api_key": canary}}),
        ("get", base, {}),
        ("get", f"{base}/my_mailgun", {}),
        ("patch", f"{base}/my_mailgun", {"json": {"name": "Renamed"}}),
        ("get", service.url + "/health", {}),
        ("get", service.url + "/openapi.json", {}),
        ("post", service.url + "/api/v1/reload", {}),
    ]
    for method, url, kwargs in calls:
        response = requests.request(method, url, headers=auth, timeout=10, **kwargs)
        outputs.append(response.text + str(response.headers))
    for args in (["check"], ["secrets", "rotate"], ["check"]):
        result = flask(tmp_path, tree, *args)
        outputs += [result.stdout, result.stderr]
    result = flask(tmp_path, tree, "secrets", "seal", "my_mailgun", FIELD, stdin=canary)
    outputs += [result.stdout, result.stderr]
    service.stop()
    outputs.append(service.log())
    outputs.append(capfd.readouterr().out)
    for text in outputs:
        assert canary not in text
    files = [p for p in tree.rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "instance").rglob("*") if p.is_file() and p.name != "seal.key"]
    files += list(tmp_path.glob("*.log"))
    assert files
    for path in files:
        assert canary.encode() not in path.read_bytes(), path
