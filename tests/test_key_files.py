"""The service's key files, as its log tells an operator about them (issue 21, finding 8; contract section 7):
a `seal.pub` replaced while serving is named in the log, once per change (not per request); every key file of
the instance dir that group or others can read gets the warning `seal.key` gets."""

# Fixtures of another test module are imported and then used by name (pytest finds them so): not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import requests

from fidesmail.sealing import keys
from fidesmail.web import auth
from tests.support import CONFIG, bearer, eventually, token_for
from tests.test_untrusted_tree import FIELD, KEY, URL, fake, launch, write  # noqa: F401

REPLACED = "seal.pub was replaced while serving"


def test_a_seal_pub_replaced_while_serving_is_named_in_the_log_once(launch, tree, tmp_path):
    srv = launch(WEB_CONCURRENCY="2")
    service_key_id = keys.load_keyring(tmp_path / "instance" / "seal.key")[0].key_id
    assert requests.post(srv.url + URL, json=CONFIG, headers=bearer(), timeout=10).status_code == 200
    original = (tree / "seal.pub").read_bytes()
    attacker = keys.generate_keypair()
    write(tree / "seal.pub", keys.dump_public_key(attacker.public_key))
    # The watcher sees it; then every request a worker answers (and this one is retried on both) refuses to seal.
    assert eventually(lambda: requests.get(srv.url + "/health", timeout=10).json()["sealing"]["ok"] is False, 5)
    for _ in range(10):
        answer = requests.put(f"{srv.url}{URL}/my_mailgun/secret", json={FIELD: KEY}, headers=bearer(), timeout=10)
        assert answer.status_code == 503
    assert eventually(lambda: REPLACED in srv.log(), 5)
    lines = [line for line in srv.log().splitlines() if REPLACED in line]
    assert all(attacker.key_id in line and service_key_id in line for line in lines)
    assert 1 <= len(lines) <= 2  # once per worker that served after the change, whatever the number of requests
    write(tree / "seal.pub", original)
    assert eventually(lambda: requests.get(srv.url + "/health", timeout=10).json()["sealing"]["ok"] is True, 5)
    for _ in range(4):
        requests.get(srv.url + URL, headers=bearer(), timeout=10)
    assert eventually(lambda: f"it now holds key {service_key_id}" in srv.log(), 5)
    srv.stop()
    assert len([line for line in srv.log().splitlines() if REPLACED in line]) <= 4  # two changes, two workers


def test_every_key_file_readable_by_others_gets_a_warning(launch, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    signing_key = "a-signing-key-in-the-instance-dir"
    files = {"records.key": "ab" * 32, "content.key": "cd" * 32, "secret_key": signing_key}
    for name, content in files.items():
        (instance / name).write_text(content)
        (instance / name).chmod(0o640)
    srv = launch(signing_key=None)  # the signing key from instance/secret_key
    token = token_for(auth.READ, keys=(signing_key,))
    assert requests.get(srv.url + URL, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    srv.stop()
    for name in files:
        assert f"{instance / name} can be read by group or others (mode 0640); run: chmod 600" in srv.log(), name
