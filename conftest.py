"""How the whole suite is run (tests/ and integrations/*/tests alike): in parallel, and what is slow.

- **In parallel**: pyproject.toml's addopts run the README's `python -m pytest` with pytest-xdist,
  one worker per core and one more (`--numprocesses=auto --dist=loadgroup`, and
  pytest_xdist_auto_num_workers below). Tests that must not share a worker's time with another heavy
  one, or that share a module- or session-scoped process, carry an `xdist_group` mark (GROUPS
  below), so each group runs on one worker, one test after another.
  `-n 0` runs everything in this process; `-p no:xdist` too (the options below keep addopts valid).
- **Temp files in memory**: tmp_path lives under /dev/shm (tmpfs) when it can, unless `--basetemp`
  says otherwise. The service fsyncs every file it writes and every SQLite commit, which on this
  disk made each test's app cost a third more; nothing here tests a power cut. The folder is removed
  after a run that passed, kept (and named in the summary) after one that did not.
- **Slow**: `python -m pytest -m "not slow"` is the edit loop's subset. Slow are the reliability
  suite, the benchmark smoke, the container, and every test that starts a process (`python app.py`,
  a `flask` command, a browser, a stand-in run on its own): those using the `server` or `launch`
  fixture are marked here, the others where they are written (`pytest.mark.slow`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Path prefix -> xdist group. "heavy": process trees under load, one at a time on one worker, while the
# other workers run the light tests; the others keep a module's or package's shared process on one worker.
GROUPS = {
    "tests/reliability/": "heavy",
    "tests/test_bench_smoke.py": "heavy",
    "tests/test_container.py": "heavy",
    "tests/test_deploy_compose.py": "heavy",  # podman-compose: the image built and a stack run
    "tests/compat/": "compat",  # one `python app.py` for the package (session fixture)
    "tests/test_packaging.py": "packaging",  # the wheel, built and installed once (module fixture)
    "tests/test_standins_ses.py": "standins-ses",  # moto's server, started once (module fixture)
    "tests/test_standins_sns.py": "standins-sns",
    "tests/test_failover_send.py": "failover-send",  # the four stand-ins, SES' moto among them (module fixture)
    "tests/test_failover_outbox.py": "failover-outbox",
    "tests/test_ses_events.py": "ses-events",  # moto's server, started once (module fixture)
    "integrations/fides/": "fides-adapter",  # the sidecar and stubs, started once (session fixtures)
    "integrations/fidesops/": "fidesops-adapter",
}

# Fixtures that start `python app.py`: a test using one is slow.
PROCESS_FIXTURES = {"server", "launch"}


def group_of(nodeid: str) -> str | None:
    """The xdist group of a test, from where it lives (GROUPS); None: a unit of work on its own."""
    return next((group for prefix, group in GROUPS.items() if nodeid.startswith(prefix)), None)


def pytest_xdist_make_scheduler(config, log):
    """loadgroup's scheduler, grouping by GROUPS from the test's id alone (in the controller).

    pytest-xdist 3.8 marks a test's group by appending `@group` to its node id in the worker, which
    pytest 9.2's structured ids no longer take (pytest-dev/pytest-xdist#1386): every mark is silently
    ignored. Reading the group off the path needs nothing from the worker; a `@group` id, where it still
    works, is honoured first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ByPath(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return group_of(nodeid) or scope if scope == nodeid else scope

    return ByPath(config, log)


def pytest_xdist_auto_num_workers(config):
    """`--numprocesses=auto`: one worker more than this process may use cores. A worker spends much of its time
    waiting for the processes and sockets its tests start (two workers kept 1.44 of 2 cores busy); a third
    fills that: the whole suite 576 -> 512-515 s on 2 cores (one run, then two)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


def pytest_addoption(parser, pluginmanager):
    """With xdist off (`-p no:xdist`), accept and ignore its two options, so pyproject's addopts still parse."""
    if not pluginmanager.has_plugin("xdist"):
        group = parser.getgroup("xdist", "pytest-xdist is off (-p no:xdist): these are ignored")
        group.addoption("--numprocesses", default=None, help="ignored: xdist is off")
        group.addoption("--dist", default="no", help="ignored: xdist is off")


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        if group := group_of(item.nodeid):
            item.add_marker(pytest.mark.xdist_group(group))  # for `-m`, and for xdist where its marks work
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


SHM = Path("/dev/shm")
_PREFIX = "fidesmail-tests-"
_BASETEMP = pytest.StashKey[Path]()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.hookimpl(tryfirst=True)  # before pytest's tmp_path factory reads --basetemp
def pytest_configure(config):
    if config.option.basetemp or hasattr(config, "workerinput") or not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        return  # given, or an xdist worker (its controller chose), or no tmpfs here
    for stale in SHM.glob(_PREFIX + "*"):  # left by a run that failed or was killed, once its process is gone
        pid = stale.name[len(_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    config.option.basetemp = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=SHM)
    config.stash[_BASETEMP] = Path(config.option.basetemp)


def pytest_sessionfinish(session, exitstatus):
    basetemp = session.config.stash.get(_BASETEMP, None)
    if basetemp is not None and exitstatus == 0:
        shutil.rmtree(basetemp, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus):
    basetemp = terminalreporter.config.stash.get(_BASETEMP, None)
    if basetemp is not None and exitstatus != 0 and basetemp.exists():
        terminalreporter.write_line(f"the tests' temp files are kept in {basetemp}")
