"""A time limit for untrusted work in the calling thread: `with time_limit(1.0): ...` raises TimeLimitExceeded.

Template overrides come from the config tree, which whoever can merge a pull request writes, and a
Jinja loop runs as plain Python bytecode that no timeout of gunicorn's or the OS's interrupts in a
threaded worker. One watchdog thread per process raises TimeLimitExceeded inside the thread that
overran (CPython's PyThreadState_SetAsyncExc), which the interpreter delivers between two
bytecodes; work inside one C call (a huge string operation) is not interrupted, so the sandbox also
bounds the size of such operations (see sandbox.py).

TimeLimitExceeded is a BaseException, as KeyboardInterrupt is: code that catches Exception (Jinja's
`is sequence` test does, around `len()`) must not swallow it and let the loop run on. Until the
body ends it is raised again every REPEAT seconds, for code that catches even that.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import os
import sys
import threading
import time

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_NO_EXCEPTION = ctypes.py_object()  # NULL: withdraws a pending exception (None would be an error)
REPEAT = 0.1


class TimeLimitExceeded(BaseException):
    """The work took longer than its limit and was stopped."""


class _Alarm:
    __slots__ = ("deadline", "thread_id", "frame", "done", "fired")

    def __init__(self, deadline: float, thread_id: int, frame):
        self.deadline = deadline
        self.thread_id = thread_id
        self.frame = frame  # the frame running the `with` body: fired only while it is on the thread's stack
        self.done = False
        self.fired = False


def _still_inside(alarm: _Alarm) -> bool:
    """True while the alarm's thread is still running the `with` body (or its exit)."""
    frame = sys._current_frames().get(alarm.thread_id)
    while frame is not None:
        if frame is alarm.frame:
            return True
        frame = frame.f_back
    return False


class _Watchdog:
    """One thread per process that fires the alarms that were not disarmed in time."""

    def __init__(self):
        self._order = itertools.count()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """Fresh state: at import, and in a forked child, where the parent's thread is gone and its lock
        may have been held at the moment of the fork."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._running = False

    def arm(self, seconds: float, frame) -> _Alarm:
        alarm = _Alarm(time.monotonic() + seconds, threading.get_ident(), frame)
        with self._lock:
            if not self._running:  # started on first use (in each process)
                self._running = True
                threading.Thread(target=self._run, name="fidesmail-deadline", daemon=True).start()
            heapq.heappush(self._heap, (alarm.deadline, next(self._order), alarm))
            self._wake.notify()
        return alarm

    def disarm(self, alarm: _Alarm) -> None:
        with self._lock:
            alarm.done = True
            alarm.frame = None
            if alarm.fired:
                # Fired while finishing: withdraw the exception if it has not been delivered yet.
                _set_async_exc(alarm.thread_id, _NO_EXCEPTION)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= time.monotonic()):
                    _, _, alarm = heapq.heappop(self._heap)
                    if alarm.done:
                        continue
                    if not _still_inside(alarm):  # left the body without disarming (interrupted in its exit)
                        alarm.done, alarm.frame = True, None
                        continue
                    alarm.fired = True
                    _set_async_exc(alarm.thread_id, TimeLimitExceeded)
                    # Again shortly, until disarmed: in case something caught it and went on.
                    alarm.deadline = time.monotonic() + REPEAT
                    heapq.heappush(self._heap, (alarm.deadline, next(self._order), alarm))
                timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                self._wake.wait(timeout)


_WATCHDOG = _Watchdog()


class time_limit:  # noqa: N801 - used as `with time_limit(1.0):`, like a function
    """Run the body for at most about `seconds`; TimeLimitExceeded when it takes longer."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._alarm: _Alarm | None = None

    def __enter__(self) -> None:
        self._alarm = _WATCHDOG.arm(self.seconds, sys._getframe(1))

    def __exit__(self, *exc_info) -> bool:
        while True:
            try:  # the alarm may fire once more while disarming: disarm again, keep the body's outcome
                _WATCHDOG.disarm(self._alarm)
                return False
            except TimeLimitExceeded:
                continue
