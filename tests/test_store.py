"""The store: the one writer of the tree, and every process of a service on one view of it."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from fidesmail.core.exceptions import Unavailable
from fidesmail.tree.store import Store
from tests.support import CONFIG


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    path.mkdir()
    return path


def doc(key: str, name: str | None = None) -> dict:
    return {**CONFIG, "key": key, "name": name or f"Config {key}"}


def hand_edit(tree, key: str, name: str) -> None:
    (tree / "email" / f"{key}.yaml").write_text(yaml.safe_dump(doc(key, name)))


def test_a_write_is_served_by_the_writer_at_once_and_read_back_under_the_lock(tree, instance):
    store = Store(tree, instance)
    _, written = store.write(lambda snapshot: store.save_config(doc("one")))
    assert written.keys == ("one",) and store.snapshot() is written
    assert yaml.safe_load((tree / "email" / "one.yaml").read_text()) == doc("one")


def test_a_write_through_one_process_is_served_by_another_on_its_next_request(tree, instance):
    first, second = Store(tree, instance), Store(tree, instance)  # two workers of one service
    assert second.snapshot().keys == ()
    first.write(lambda snapshot: first.save_config(doc("one")))
    assert second.snapshot().keys == ("one",)  # no watcher involved: the change counter says so


def test_a_hand_edit_seen_by_one_process_is_then_seen_by_every_other(tree, instance):
    """Monotonic reads: once one worker answers with a change, no worker answers without it."""
    first, second = Store(tree, instance), Store(tree, instance)
    hand_edit(tree, "live", "Before")
    assert first.snapshot().configs["live"].name == second.snapshot().configs["live"].name == "Before"
    for number in range(20):
        hand_edit(tree, "live", f"Edit {number}")
        assert first.reload().configs["live"].name == f"Edit {number}"  # the watcher's look
        assert second.snapshot().configs["live"].name == f"Edit {number}"  # the very next request elsewhere


def test_an_unchanged_tree_gives_back_the_same_snapshot(tree, instance):
    store = Store(tree, instance)
    hand_edit(tree, "one", "One")
    served = store.snapshot()
    assert store.reload() is served and store.snapshot() is served
    (tree / "email" / "one.yaml").touch()  # touched, not changed
    assert store.reload() is served


def test_threads_writing_and_reloading_together_do_not_deadlock(tree, instance):
    """Regression: write() took the file lock then the scan lock, reload() the other way round; two
    threads of one worker waited on each other for ever (the load test stalled at 15 operations)."""
    store = Store(tree, instance)
    errors = []

    def writer(number):
        try:
            for round_ in range(30):
                store.write(lambda snapshot, r=round_: store.save_config(doc(f"w{number}", f"W{number} {r}")))
        except Exception as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    def reloader():
        for round_ in range(100):
            hand_edit(tree, "hand", f"Hand {round_}")
            store.reload()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)] + [threading.Thread(target=reloader)]
    for thread in threads:
        thread.daemon = True  # a deadlocked one must not keep the test run alive
        thread.start()
    deadline = time.monotonic() + 30
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert errors == []
    assert store.snapshot().configs["w2"].name == "W2 29"


def test_without_a_usable_lock_a_process_keeps_its_own_view(tree, tmp_path):
    """A read-only instance dir (no lock file can be made): reads still work, writes say why not."""
    missing = tmp_path / "not-there" / "instance"
    store = Store(tree, missing)
    hand_edit(tree, "one", "One")
    assert store.snapshot().keys == ("one",)
    with pytest.raises(Unavailable, match="could not be written"):
        store.write(lambda snapshot: store.save_config(doc("two")))
    assert not (tree / "email" / "two.yaml").exists()


def test_a_refused_write_changes_nothing_and_says_why(tree, instance):
    store = Store(tree, instance)
    store.write(lambda snapshot: store.save_config(doc("one")))

    def broken(snapshot):
        raise Unavailable("refused on purpose")

    with pytest.raises(Unavailable, match="on purpose"):
        store.write(broken)
    assert store.snapshot().keys == ("one",)


def test_a_worker_reads_the_last_good_state_only_when_a_file_fails(tree, instance, monkeypatch):
    """Issue 29: parsing last-good.json builds every document again in each worker that catches up (private
    memory, ~25 MB at 10,000 configs). A clean tree does not need it; a broken file still gets its last good
    version from it, also in a worker that never served that version."""
    from fidesmail.tree import lastgood

    parses = []
    real_parse = lastgood.SharedLastGood._parse
    monkeypatch.setattr(lastgood.SharedLastGood, "_parse", lambda self: parses.append(1) or real_parse(self))
    watcher = Store(tree, instance)
    hand_edit(tree, "kept", "Kept")
    hand_edit(tree, "other", "Other")
    assert watcher.reload().keys == ("kept", "other")
    hand_edit(tree, "other", "Other edited")
    assert watcher.reload().configs["other"].name == "Other edited"
    assert Store(tree, instance).snapshot().configs["other"].name == "Other edited"  # a worker catching up
    assert parses == []
    (tree / "email" / "kept.yaml").write_text("name: [unclosed\n")
    newcomer = Store(tree, instance)  # started after the break: only last-good.json knows "Kept"
    assert newcomer.snapshot().configs["kept"].name == "Kept"
    assert parses and any(p.path == "email/kept.yaml" for p in newcomer.snapshot().problems)


def test_a_last_good_state_written_by_an_older_version_still_keeps_a_broken_file_serving(tree, instance):
    """last-good.json format 1 (bare documents, before issue 29 wrote the served bodies) is still read."""
    import json

    hand_edit(tree, "kept", "Kept")
    (instance / "last-good.json").write_text(json.dumps({
        "format": 1, "configs": {"email/kept.yaml": doc("kept", "Kept by the older version")}, "sealed": {}}))
    (tree / "email" / "kept.yaml").write_text("name: [unclosed\n")
    served = Store(tree, instance).snapshot().configs["kept"]
    assert served.name == "Kept by the older version" and "secrets_set" not in served.document
