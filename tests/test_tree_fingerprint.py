"""The watcher passes over an unchanged tree without a reload, and never over a changed one."""

from __future__ import annotations

import os
import time

import pytest

from fidesmail.tree import fingerprint
from fidesmail.tree.store import Store
from fidesmail.tree.sync import folders_to_watch
from tests.support import write_config

SETTLE = 0.15  # longer than the racy window as these tests shorten it


@pytest.fixture(autouse=True)
def short_racy_window(monkeypatch):
    monkeypatch.setattr(fingerprint, "RACY_NS", 100_000_000)


def test_the_digest_changes_with_any_name_or_stat_and_refuses_racy_entries(tmp_path):
    email = tmp_path / "email"
    email.mkdir()
    (email / "a.yaml").write_text("one\n")
    folders = folders_to_watch(tmp_path, ("email",))
    assert fingerprint.of(folders) is None  # just written: its stat cannot prove it unchanged yet
    time.sleep(SETTLE)
    first = fingerprint.of(folders)
    assert first is not None and fingerprint.of(folders) == first

    os.utime(email / "a.yaml", ns=(1, 1))  # the same size and name, other times
    time.sleep(SETTLE)
    touched = fingerprint.of(folders)
    assert touched not in (None, first)

    os.rename(email / "a.yaml", email / "b.yaml")
    time.sleep(SETTLE)
    assert fingerprint.of(folders) not in (None, first, touched)


def test_a_symlink_swap_changes_the_digest(tmp_path):
    for revision in ("rev-1", "rev-2"):
        (tmp_path / revision / "email").mkdir(parents=True)
        (tmp_path / revision / "email" / "a.yaml").write_text("same\n")
    (tmp_path / "current").symlink_to("rev-1")
    time.sleep(SETTLE)
    before = fingerprint.of(folders_to_watch(tmp_path / "current", ("email",)))
    os.replace(tmp_path / "current", tmp_path / "old")
    (tmp_path / "current").symlink_to("rev-2")
    time.sleep(SETTLE)
    assert fingerprint.of(folders_to_watch(tmp_path / "current", ("email",))) not in (None, before)


def test_the_watchers_look_reloads_only_when_the_tree_changed(tmp_path):
    config_dir, instance_dir = tmp_path / "config", tmp_path / "instance"
    (config_dir / "email").mkdir(parents=True)
    write_config(config_dir, "first")
    time.sleep(SETTLE)
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
