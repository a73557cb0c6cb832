"""The config tree on disk: hand edits served within 2 s, bad files reported, last good state kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from fidesmail.sealing import keys
from fidesmail.tree.loader import load_tree
from tests.support import CONFIG, ROOT, SECRET, eventually, write_config

URL = "/api/v1/email/config"




def test_added_edited_and_removed_files_are_served_within_two_seconds(client, headers, tree):
    write_config(tree, "hand")
    assert eventually(lambda: client.get(f"{URL}/hand", headers=headers).status_code == 200)
    write_config(tree, "hand", details={"domain": "mg.other.org"})
    assert eventually(lambda: client.get(f"{URL}/hand", headers=headers).json["details"]["domain"] == "mg.other.org")
    (tree / "email" / "hand.yaml").unlink()
    assert eventually(lambda: client.get(f"{URL}/hand", headers=headers).status_code == 404)


def test_configmap_style_symlink_swap_of_the_folder(make_app, tmp_path, headers):
    # Kubernetes mounts a ConfigMap as ..data -> ..<timestamp>/, swapped by one rename.
    tree = tmp_path / "mounted"
    first, second = tree / "..2026_11_25_a", tree / "..2026_11_25_b"
    for folder, domain in ((first, "mg.first.com"), (second, "mg.second.com")):
        (folder / "email").mkdir(parents=True)
        write_config(folder, "cm", details={"domain": domain})
    (tree / "..data").symlink_to(first.name)
    (tree / "email").symlink_to("..data/email")
    client = make_app(CONFIG_DIR=tree).test_client()
    assert client.get(f"{URL}/cm", headers=headers).json["details"]["domain"] == "mg.first.com"
    (tree / "..data_tmp").symlink_to(second.name)
    os.replace(tree / "..data_tmp", tree / "..data")
    assert eventually(lambda: client.get(f"{URL}/cm", headers=headers).json["details"]["domain"] == "mg.second.com")


BAD_FILES = {
    "empty": (b"", 1, "empty"),
    "garbage": (bytes(range(256)) * 4, 1, "not a text file"),
    "latin1": ("name: caf\xe9\n".encode("latin-1"), 1, "UTF-8"),
    "duplicate": (b"key: dup\nname: A\nname: B\nservice_type: mailgun\ndetails:\n  domain: mg.example.com\n",
                  3, "duplicate key"),
    "mismatch": (b"key: other\nname: M\nservice_type: mailgun\ndetails:\n  domain: mg.example.com\n",
                 1, "differs from the file name"),
    "yaml11": (b"key: yaml11\nname: Y\nservice_type: mailgun\ndetails:\n  domain: no\n", 5, "details.domain"),
    "python": (b"key: python\nname: P\nservice_type: mailgun\ndetails: !!python/object:os.system {}\n",
               4, "not allowed"),
    "unclosed": (b"key: unclosed\nname: [U\n", 3, ""),
    "list": (b"- a\n- b\n", 1, "mapping"),
    "unknown": (b"key: unknown\nname: U\nservice_type: mailgun\ncolour: red\ndetails:\n  domain: mg.example.com\n",
                4, "colour: Unknown field"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_reported_with_its_line_and_others_keep_working(make_app, tree, headers, case):
    data, line, words = BAD_FILES[case]
    write_config(tree, "good")
    (tree / "email" / f"{case}.yaml").write_bytes(data)
    client = make_app().test_client()
    assert client.get(f"{URL}/good", headers=headers).status_code == 200
    assert client.get(URL, headers=headers).json["total"] == 1
    health = client.get("/health", headers=headers).json
    assert health["status"] == "healthy" and health["last_reload"]["ok"] is False
    [problem] = health["last_reload"]["problems"]
    assert problem["path"] == f"email/{case}.yaml"
    assert problem["line"] == line
    assert words in problem["message"]


def test_a_broken_edit_keeps_the_last_good_version(client, headers, tree, caplog):
    write_config(tree, "live")
    assert eventually(lambda: client.get(f"{URL}/live", headers=headers).status_code == 200)
    (tree / "email" / "live.yaml").write_text("key: live\nname: [oops\n")
    assert eventually(lambda: not client.get("/health").json["last_reload"]["ok"])
    response = client.get(f"{URL}/live", headers=headers)
    assert response.status_code == 200 and response.json["name"] == "Config live"
    assert "email/live.yaml" in caplog.text
    write_config(tree, "live", name="Fixed")
    assert eventually(lambda: client.get(f"{URL}/live", headers=headers).json["name"] == "Fixed")
    assert client.get("/health").json["last_reload"]["ok"] is True


def test_two_files_with_one_name_serve_the_first(make_app, tree, headers):
    write_config(tree, "a", name="Same")
    write_config(tree, "b", name="Same")
    client = make_app().test_client()
    assert [c["key"] for c in client.get(URL, headers=headers).json["items"]] == ["a"]
    assert "already used" in client.get("/health", headers=headers).json["last_reload"]["problems"][0]["message"]


def test_written_files_read_back_identically(client, headers, tree):
    body = {**CONFIG, "name": "Ünïcode: 'quotes' & #hash", "details": {
        "domain": "mg.example.com", "is_eu_domain": True, "api_version": "v3",
        "sender": "Privacy Team <privacy@mg.example.com>"}}
    answer = client.post(URL, json=body, headers=headers).json
    on_disk = yaml.safe_load((tree / "email" / "my_mailgun.yaml").read_text(encoding="utf-8"))
    assert on_disk == {k: v for k, v in answer.items() if k != "secrets_set"} == body
    assert [p.name for p in (tree / "email").iterdir()] == ["my_mailgun.yaml"]  # no temp file left


def test_check_reports_every_bad_file_with_path_and_line(tree, runner):
    write_config(tree, "good")
    for case, (data, _, _) in BAD_FILES.items():
        (tree / "email" / f"{case}.yaml").write_bytes(data)
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line]
    assert len(lines) == len(BAD_FILES)
    for case, (_, line, _) in BAD_FILES.items():
        assert any(out.endswith(f"email/{case}.yaml:{line}: " + out.split(": ", 1)[1]) for out in lines
                   if f"/{case}.yaml:" in out), case


@pytest.mark.slow  # `flask check` as a process
def test_check_as_a_ci_step_in_a_config_repository(tmp_path):
    """`flask check` run from the fidesmail checkout against another repository's tree."""
    repo = tmp_path / "config-repo"
    (repo / "email").mkdir(parents=True)
    write_config(repo, "ok")
    (repo / "seal.pub").write_bytes(keys.dump_public_key(keys.generate_keypair().public_key))  # a tree has one
    env = {**os.environ, "FIDESMAIL_CONFIG_DIR": str(repo), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "inst"),
           "FIDESMAIL_SECRET_KEY": SECRET}
    flask = [sys.executable, "-m", "flask", "check"]
    good = subprocess.run(flask, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert good.stdout == ""
    (repo / "email" / "bad.yaml").write_text("key: bad\nname: B\nservice_type: mailgun\ndetails:\n  domain: no\n")
    bad = subprocess.run(flask, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stdout.strip() == (f"{repo}/email/bad.yaml:5: details.domain: Not a valid string. (YAML reads the "
                                  'unquoted no as the boolean false; write "no" in quotes for the text)')


def test_check_takes_the_servers_loader(tree, tmp_path):
    """`flask check` and the server agree: what check accepts, the store serves."""
    write_config(tree, "one")
    write_config(tree, "two", details={"domain": "mg.example.com", "sender": "Team <t@mg.example.com>"})
    snapshot = load_tree(tree)
    assert snapshot.keys == ("one", "two") and snapshot.ok


def test_check_renders_template_overrides(tree, runner):
    (tree / "templates").mkdir()
    (tree / "templates" / "test_message.txt").write_text("fine\n")
    (tree / "templates" / "privacy_request_review_deny.html").write_text("ok\n{{ ''.__class__.__mro__ }}\n")
    (tree / "templates" / "welcome.html").write_text("hi")
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert any("templates/privacy_request_review_deny.html:2: " in line and "unsafe" in line for line in lines)
    assert any("templates/welcome.html:1: not a template name" in line for line in lines)
