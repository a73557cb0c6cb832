"""The tree watcher: inotify tells it of hand edits, a burst gives few reloads, it polls where inotify fails."""

from __future__ import annotations

import errno
import logging
import os

import pytest
import requests

from fidesmail.runtime import services
from fidesmail.tree import sync
from tests.support import Counter, bearer, eventually, write_config

URL = "/api/v1/email/config"




class Looks(Counter):
    """Counts the watcher's looks at the tree (each one a Store.reload)."""

    def __init__(self, watcher):
        super().__init__(watcher, "check")


def watching(app, mode="inotify"):
    """The app's watcher, once it watches in `mode`."""
    watcher = services.of(app).store.watcher
    assert eventually(lambda: watcher.mode is not None), "the watcher never started"
    assert watcher.mode == mode
    return watcher


def domain_of(client, key):
    answer = client.get(f"{URL}/{key}", headers=bearer())
    return answer.json["details"]["domain"] if answer.status_code == 200 else answer.status_code


def test_inotify_sees_a_hand_edit_a_new_file_and_a_removal(make_app, tree):
    """With polling slowed to a minute, only inotify can bring the changes in within 2 s."""
    write_config(tree, "hand")
    app = make_app(WATCH_INTERVAL=60)
    client = app.test_client()
    watching(app)
    write_config(tree, "hand", details={"domain": "mg.edited.org"})
    assert eventually(lambda: domain_of(client, "hand") == "mg.edited.org")
    write_config(tree, "added")
    assert eventually(lambda: domain_of(client, "added") == "mg.example.com")
    (tree / "email" / "hand.yaml").unlink()
    assert eventually(lambda: domain_of(client, "hand") == 404)


def test_a_template_override_is_seen(make_app, tree):
    write_config(tree, "only")
    app = make_app(WATCH_INTERVAL=60)
    client = app.test_client()
    watching(app)
    (tree / "templates").mkdir()  # a folder made after the start is watched too
    assert eventually(lambda: str(tree / "templates") in services.of(app).store.watcher._watches)
    (tree / "templates" / "test_message.subject.txt").write_text("Hello from the tree")
    preview = {"action_type": "test_message"}
    assert eventually(lambda: client.post("/api/v1/email/preview", json=preview, headers=bearer())
                      .json.get("subject") == "Hello from the tree")


def test_a_folder_removed_and_made_again_is_watched_anew(make_app, tree):
    """A checkout of a branch without email/, then back: the new folder has a new inode and a new watch."""
    import shutil

    write_config(tree, "back")
    app = make_app(WATCH_INTERVAL=60)
    client = app.test_client()
    watching(app)
    shutil.rmtree(tree / "email")  # within one burst, as a checkout does it
    (tree / "email").mkdir()
    write_config(tree, "back", details={"domain": "mg.back.org"})
    assert eventually(lambda: domain_of(client, "back") == "mg.back.org")
    write_config(tree, "back", details={"domain": "mg.again.org"})  # seen through the new folder's watch
    assert eventually(lambda: domain_of(client, "back") == "mg.again.org")


def test_configmap_data_swap_is_seen_by_inotify(make_app, tmp_path):
    """Kubernetes swaps ..data -> ..<timestamp>/ with one rename in the tree's root."""
    mounted = tmp_path / "mounted"
    first, second = mounted / "..2026_11_25_a", mounted / "..2026_11_25_b"
    for folder, domain in ((first, "mg.first.com"), (second, "mg.second.com")):
        (folder / "email").mkdir(parents=True)
        write_config(folder, "cm", details={"domain": domain})
    (mounted / "..data").symlink_to(first.name)
    (mounted / "email").symlink_to("..data/email")
    app = make_app(CONFIG_DIR=mounted, WATCH_INTERVAL=60)
    client = app.test_client()
    watcher = watching(app)
    assert str(first / "email") in watcher._watches  # the link's real target
    assert domain_of(client, "cm") == "mg.first.com"
    (mounted / "..data_tmp").symlink_to(second.name)
    os.replace(mounted / "..data_tmp", mounted / "..data")
    assert eventually(lambda: domain_of(client, "cm") == "mg.second.com")
    # The new target is watched now: an edit inside it is seen too.
    assert eventually(lambda: str(second / "email") in watcher._watches)
    write_config(second, "cm", details={"domain": "mg.third.com"})
    assert eventually(lambda: domain_of(client, "cm") == "mg.third.com")


def test_git_sync_swap_of_a_link_above_the_tree_is_seen(make_app, tmp_path):
    """docs/deploy/kubernetes.yaml: FIDESMAIL_CONFIG_DIR=/app/config/repo/config, git-sync swaps `repo`."""
    mount = tmp_path / "git"
    for rev, domain in (("rev-1", "mg.first.com"), ("rev-2", "mg.second.com")):
        (mount / rev / "config" / "email").mkdir(parents=True)
        write_config(mount / rev / "config", "gs", details={"domain": domain})
    (mount / "repo").symlink_to("rev-1")
    app = make_app(CONFIG_DIR=mount / "repo" / "config", WATCH_INTERVAL=60)
    client = app.test_client()
    watching(app)
    assert domain_of(client, "gs") == "mg.first.com"
    (mount / "repo.tmp").symlink_to("rev-2")
    os.replace(mount / "repo.tmp", mount / "repo")
    assert eventually(lambda: domain_of(client, "gs") == "mg.second.com")


def test_a_burst_of_200_writes_gives_few_looks_and_idle_gives_none(make_app, tree):
    app = make_app(WATCH_INTERVAL=60)
    client = app.test_client()
    looks = Looks(watching(app))
    before = looks.wait_until_quiet(0.3)  # the look after the start is done
    for i in range(200):  # what a git checkout does
        write_config(tree, f"burst{i:03d}")
    assert eventually(lambda: client.get(URL, headers=bearer(), query_string={"size": 100}).json["total"] == 200)
    # Then nothing changes, so looks stop: a watcher woken by its own reads would look again every
    # DEBOUNCE (0.05 s) and never be quiet this long.
    burst = looks.wait_until_quiet(0.5) - before
    assert 1 <= burst <= 10, burst


class _NoInotify(sync.Observer):
    """watchdog's observer on a host with no inotify instance left."""

    def start(self):
        raise OSError(errno.EMFILE, "inotify instance limit reached")


def test_without_inotify_it_polls(make_app, tree, monkeypatch, caplog):
    monkeypatch.setattr(sync, "Observer", _NoInotify)
    write_config(tree, "polled")
    with caplog.at_level(logging.WARNING, logger="fidesmail.store"):
        app = make_app(WATCH_INTERVAL=0.2)
        client = app.test_client()
        watching(app, mode="poll")
    assert "cannot watch the config tree with inotify (inotify instance limit reached)" in caplog.text
    write_config(tree, "polled", details={"domain": "mg.polled.org"})
    assert eventually(lambda: domain_of(client, "polled") == "mg.polled.org")
    (tree / "email" / "polled.yaml").unlink()
    assert eventually(lambda: domain_of(client, "polled") == 404)


def test_on_a_network_file_system_it_polls(make_app, tree, monkeypatch):
    """inotify does not hear of changes another NFS client makes: polling does."""
    monkeypatch.setattr(sync, "file_system_type", lambda path: "nfs4")
    app = make_app(WATCH_INTERVAL=0.2)
    client = app.test_client()
    watching(app, mode="poll")
    write_config(tree, "remote")
    assert eventually(lambda: domain_of(client, "remote") == "mg.example.com")


def test_the_real_file_system_type_is_found(tmp_path):
    assert sync.file_system_type(str(tmp_path))  # e.g. ext4, overlay, tmpfs


def test_one_watcher_per_service_and_every_worker_serves_the_edit(server, tree):
    """Two workers, one watcher (flock election); an edit on disk reaches both within 2 s."""
    write_config(tree, "shared")
    srv = server(WEB_CONCURRENCY="2", FIDESMAIL_WATCH_INTERVAL="60")
    assert eventually(lambda: "watching the config tree with inotify" in srv.log(), timeout=10)
    write_config(tree, "shared", details={"domain": "mg.everyone.org"})

    def every_worker_serves_it():
        # Fresh connections spread over the workers; all of them must answer the new version.
        answers = [requests.get(f"{srv.url}{URL}/shared", headers=bearer(), timeout=5).json() for _ in range(6)]
        return all(a["details"]["domain"] == "mg.everyone.org" for a in answers)

    assert eventually(every_worker_serves_it)
    assert srv.log().count("watching the config tree with inotify") == 1


@pytest.mark.parametrize("link", ["email", "config", "above"])
def test_folders_to_watch_follow_symlinks(tmp_path, link):
    real = tmp_path / "rev-1"
    (real / "email").mkdir(parents=True)
    (real / "sub" / "email").mkdir(parents=True)
    if link == "email":  # a ConfigMap: email -> ..data/email inside the tree
        root = tmp_path / "tree"
        root.mkdir()
        (root / "email").symlink_to(real / "email")
        assert sync.folders_to_watch(root, ["email", "templates"]) == {str(root), str(real / "email")}
    elif link == "config":  # git-sync: the tree itself is a link, swapped in its parent
        (tmp_path / "current").symlink_to(real)
        assert sync.folders_to_watch(tmp_path / "current", ["email", "templates"]) == {
            str(real), str(real / "email"), str(tmp_path)}
    else:  # the tree in a subfolder of git-sync's checkout: the swapped link is further up
        (tmp_path / "current").symlink_to(real)
        assert sync.folders_to_watch(tmp_path / "current" / "sub", ["email"]) == {
            str(real / "sub"), str(real / "sub" / "email"), str(tmp_path)}


def test_a_plain_tree_watches_only_its_own_folders(tree):
    (tree / "templates").mkdir()
    assert sync.folders_to_watch(tree, ["email", "templates"]) == {
        str(tree), str(tree / "email"), str(tree / "templates")}
