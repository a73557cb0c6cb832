"""SQLite writers queue on one lock per database: another process's writer is waited for, and not forever."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading

import pytest

from fidesmail.records.database import Database, DatabaseUnavailable
from fidesmail.records.writer_lock import WriterLock, WriterLockTimeout

HOLD_THEN_RELEASE = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
open(sys.argv[1] + ".released", "w").close()  # said before letting go
fcntl.flock(fd, fcntl.LOCK_UN)
"""


def _holder(lock_path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_THEN_RELEASE, str(lock_path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_writer_in_another_process_is_waited_for_then_the_write_goes_through(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'fidesmail.db'}")
    database.upgrade()
    holder = _holder(tmp_path / "fidesmail.db.write.lock", 0.3)
    with database.write() as connection:
        # Inside the write: the other process has let go (it wrote its marker before unlocking).
        assert (tmp_path / "fidesmail.db.write.lock.released").exists()
        connection.exec_driver_sql("INSERT INTO fidesmail_meta (name, value) VALUES ('x', 'y')")
    holder.wait()
    with database.read() as connection:
        assert connection.exec_driver_sql("SELECT value FROM fidesmail_meta WHERE name = 'x'").scalar() == "y"
    assert oct((tmp_path / "fidesmail.db.write.lock").stat().st_mode & 0o777) == "0o600"


def test_a_writer_that_never_lets_go_is_a_clear_503_not_a_hang(tmp_path):
    lock = WriterLock(tmp_path / "fidesmail.db", timeout=0.3)
    holder = _holder(tmp_path / "fidesmail.db.write.lock", 5)
    try:
        with pytest.raises(WriterLockTimeout), lock.held():
            pass
    finally:
        holder.kill()
        holder.wait()
    with lock.held():  # the holder's death released it (an flock dies with its process)
        pass

    database = Database(f"sqlite:///{tmp_path / 'other.db'}")
    database._writers.timeout = 0.2
    fd = os.open(tmp_path / "other.db.write.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: excluded just as another process is
    try:
        with pytest.raises(DatabaseUnavailable, match="another writer held it"), database.write():
            pass
    finally:
        os.close(fd)


def test_threads_of_one_process_take_turns(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'fidesmail.db'}")
    database.upgrade()
    inside, overlaps = [], []

    def write(n):
        for i in range(50):
            with database.write() as connection:
                inside.append(n)
                if len(inside) > 1:
                    overlaps.append(n)
                connection.exec_driver_sql(f"INSERT INTO fidesmail_meta (name, value) VALUES ('{n}-{i}', 'v')")
                inside.remove(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    with database.read() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM fidesmail_meta WHERE value = 'v'").scalar() == 200


@pytest.mark.slow
def test_without_a_lock_file_the_writers_still_take_turns(tmp_path):
    """A folder where no lock file can be made (read-only): SQLite's own busy_timeout still orders writers."""
    (tmp_path / "not-a-folder").write_text("")
    lock = WriterLock(tmp_path / "not-a-folder" / "fidesmail.db", timeout=1)
    with lock.held():
        pass
    assert lock.path is None
