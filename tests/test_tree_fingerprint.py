"""The watcher passes over an unchanged tree without a reload, and never over a changed one."""

from __future__ import annotations

import os

import pytest

from fidesmail.tree import fingerprint
from fidesmail.tree.store import Store
from fidesmail.tree.sync import folders_to_watch
from tests.support import wait_until, write_config


def settled(folders):
    """The digest once the entries are older than the racy window (None until then: a stat cannot prove them)."""
    return wait_until(lambda: fingerprint.of(folders), timeout=5, what="a digest past the racy window")


@pytest.fixture(autouse=True)
def short_racy_window(monkeypatch):
    monkeypatch.setattr(fingerprint, "RACY_NS", 100_000_000)


def test_the_digest_changes_with_any_name_or_stat_and_refuses_racy_entries(tmp_path):
    email = tmp_path / "email"
    email.mkdir()
    (email / "a.yaml").write_text("one\n")
    folders = folders_to_watch(tmp_path, ("email",))
    assert fingerprint.of(folders) is None  # just written: its stat cannot prove it unchanged yet
    first = settled(folders)
    assert fingerprint.of(folders) == first

    os.utime(email / "a.yaml", ns=(1, 1))  # the same size and name, other times
    touched = settled(folders)
    assert touched != first

    os.rename(email / "a.yaml", email / "b.yaml")
    assert settled(folders) not in (first, touched)


def test_a_symlink_swap_changes_the_digest(tmp_path):
    for revision in ("rev-1", "rev-2"):
        (tmp_path / revision / "email").mkdir(parents=True)
        (tmp_path / revision / "email" / "a.yaml").write_text("same\n")
    (tmp_path / "current").symlink_to("rev-1")
    before = settled(folders_to_watch(tmp_path / "current", ("email",)))
    os.replace(tmp_path / "current", tmp_path / "old")
    (tmp_path / "current").symlink_to("rev-2")
    assert settled(folders_to_watch(tmp_path / "current", ("email",))) != before


def test_the_watchers_look_reloads_only_when_the_tree_changed(tmp_path):
    config_dir, instance_dir = tmp_path / "config", tmp_path / "instance"
    (config_dir / "email").mkdir(parents=True)
    write_config(config_dir, "first")
    settled(folders_to_watch(config_dir, ("email",)))
    store = Store(config_dir, instance_dir)
    store.look()  # the first load, as startup.prepare makes it in the master
    reloads = []
    original = store.reload
    store.reload = lambda: reloads.append(1) or original()
    store.look()
    assert reloads == []  # unchanged: not looked at again (its shared pages stay untouched)

    write_config(config_dir, "second")
    store.look()
    assert reloads == [1] and "second" in store.snapshot().configs
