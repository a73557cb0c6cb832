"""The Jinja2 sandbox for template overrides from the config tree, with their cost bounded.

Overrides are written by whoever can merge a pull request (a fides template injection,
CVE-2024-45053, came from exactly this). Jinja's ImmutableSandboxedEnvironment already keeps them
from Python's internals and from mutating data; on top of it, this one bounds what one expression
can cost, since a single C-level operation (``"x" * 10**9``, ``9 ** 9 ** 9``, ``s.center(10**9)``,
``items|join(huge)``) is not interrupted by the render's time limit (deadline.py):

- `*` and `**` are checked before they run (and so are never folded at compile time either);
- an integer argument to any call or filter is at most MAX_NUMBER; string formatting widths too;
- `replace`, `join` and `indent` refuse results estimated over MAX_TEXT;
- `namespace` (state carried across loop iterations, which lets a loop double a string each turn)
  and `lipsum` (seconds of CPU in one call) are not available.
Output is capped by the caller, who renders with `generate()` and counts.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_NUMBER = 100_000
MAX_TEXT = 1024 * 1024
_FORMAT_WIDTH = re.compile(r"\d{7,}")  # a width or precision of a million or more, in %-style or {}-style specs
_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}


class LimitExceeded(SecurityError):
    """An expression of a template override would cost more than the sandbox allows."""


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else len(str(value))


def _check_numbers(args, kwargs) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise LimitExceeded(f"a number argument over {MAX_NUMBER} is not allowed in a template override")


def _check_text(estimate: int, what: str) -> None:
    if estimate > MAX_TEXT:
        raise LimitExceeded(f"{what} would make text over {MAX_TEXT} characters")


def _check_format(spec: Any) -> None:
    if isinstance(spec, str) and _FORMAT_WIDTH.search(spec):
        raise LimitExceeded("a formatting width or precision of a million or more is not allowed")


def _checked_replace(text, old, new, count=-1):
    occurrences = (len(text) + 1) if old == "" else text.count(old)
    _check_text(len(text) + occurrences * max(0, len(new) - len(old)), "replace")
    return text.replace(old, new, count)


def _checked_join(separator: str, items) -> list:
    items = list(items)
    _check_text(sum(_size(item) for item in items) + len(separator) * max(0, len(items) - 1), "join")
    return items


def _guard_filter(name: str, function: Callable) -> Callable:
    """A filter that refuses arguments the sandbox does not allow, then runs `function`."""
    # Filters marked pass_context/pass_eval_context/pass_environment get that object first.
    offset = 1 if hasattr(function, "jinja_pass_arg") else 0

    def guarded(*args, **kwargs):
        value, rest = (args[offset], args[offset + 1:]) if len(args) > offset else ("", ())
        _check_numbers(rest, kwargs)
        if name == "join":
            separator = rest[0] if rest else kwargs.get("d", "")
            args = (*args[:offset], _checked_join(str(separator), value), *rest)
        elif name == "replace" and len(rest) >= 2:
            _checked_replace(str(value), str(rest[0]), str(rest[1]), 0)
        elif name == "indent":
            width = rest[0] if rest else kwargs.get("width", 4)
            prefix = width if isinstance(width, str) else " " * int(width)
            _check_text(len(str(value)) + (str(value).count("\n") + 1) * len(prefix), "indent")
        elif name == "format":
            _check_format(value)
        return function(*args, **kwargs)

    guarded.__name__ = getattr(function, "__name__", name)
    if offset:
        guarded.jinja_pass_arg = function.jinja_pass_arg
    return guarded


def _multiply(left, right):
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
            _check_text(len(sequence) * max(0, times), "repeating")
    return operator.mul(left, right)


def _power(left, right):
    if isinstance(left, int) and isinstance(right, int) and abs(right) > 64 and abs(left) > 1:
        raise LimitExceeded("an exponent over 64 is not allowed in a template override")
    return operator.pow(left, right)


def _modulo(left, right):
    if isinstance(left, str):
        _check_format(left)
        _check_numbers(right if isinstance(right, tuple) else (right,), {})
    return operator.mod(left, right)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the cost of each expression bounded."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.globals.pop("namespace", None)
        self.globals.pop("lipsum", None)
        self.binop_table.update({"*": _multiply, "**": _power, "%": _modulo})
        self.filters = {name: _guard_filter(name, function) for name, function in self.filters.items()}

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if isinstance(obj, str) and attr == "format_map":
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        """Every call from template code: numbers bounded, and the methods that grow text checked first."""
        _check_numbers(args, kwargs)
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name == "replace" and len(args) >= 2:
                _checked_replace(owner, str(args[0]), str(args[1]), 0)  # checks only; count 0 replaces nothing
            elif name == "join" and args:
                args = (_checked_join(owner, args[0]), *args[1:])
            elif name in _WIDTH_METHODS:
                pass  # numbers already bounded
        if name == "format":  # str.format, wrapped by the sandbox: check the format string it belongs to
            _check_format(getattr(__obj, "__wrapped__", None) and getattr(__obj.__wrapped__, "__self__", None))
        return super().call(__context, __obj, *args, **kwargs)
