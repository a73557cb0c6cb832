"""A time limit for untrusted work in the calling thread: `with time_limit(1.0): ...` raises TimeLimitExceeded.

Template overrides come from the config tree, which whoever can merge a pull request writes, and a
Jinja loop runs as plain Python bytecode that no timeout of gunicorn's or the OS's interrupts in a
threaded worker. One watchdog thread per process raises TimeLimitExceeded inside the thread that
overran (CPython's PyThreadState_SetAsyncExc), which the interpreter delivers between two
bytecodes; work inside one C call (a huge string operation) is not interrupted, so the sandbox also
bounds the size of such operations (see sandbox.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import os
import threading
import time
from collections.abc import Iterator

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


class TimeLimitExceeded(Exception):
    """The work took longer than its limit and was stopped."""


class _Alarm:
    __slots__ = ("deadline", "thread_id", "done", "fired")

    def __init__(self, deadline: float, thread_id: int):
        self.deadline = deadline
        self.thread_id = thread_id
        self.done = False
        self.fired = False


class _Watchdog:
    """One thread per process that fires the alarms that were not disarmed in time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._order = itertools.count()
        self._pid: int | None = None

    def arm(self, seconds: float) -> _Alarm:
        alarm = _Alarm(time.monotonic() + seconds, threading.get_ident())
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: the parent's thread is not here
                self._pid = os.getpid()
                self._heap = []
                threading.Thread(target=self._run, name="fidesmail-deadline", daemon=True).start()
            heapq.heappush(self._heap, (alarm.deadline, next(self._order), alarm))
            self._wake.notify()
        return alarm

    def disarm(self, alarm: _Alarm) -> None:
        with self._lock:
            alarm.done = True
            if alarm.fired:
                # Fired while finishing: withdraw the exception if it has not been delivered yet.
                _set_async_exc(alarm.thread_id, None)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= time.monotonic()):
                    _, _, alarm = heapq.heappop(self._heap)
                    if not alarm.done:
                        alarm.fired = True
                        _set_async_exc(alarm.thread_id, TimeLimitExceeded)
                timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                self._wake.wait(timeout)


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Run the body for at most about `seconds`; TimeLimitExceeded when it takes longer."""
    alarm = _WATCHDOG.arm(seconds)
    try:
        yield
    finally:
        _WATCHDOG.disarm(alarm)
