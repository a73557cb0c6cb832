"""The Jinja2 sandbox for template overrides from the config tree, with their cost bounded.

Overrides are written by whoever can merge a pull request (a fides template injection,
CVE-2024-45053, came from exactly this). Jinja's ImmutableSandboxedEnvironment already keeps them
from Python's internals and from mutating data; on top of it, this one bounds what one operation
can cost, since a single C-level operation (``"x" * 10**9``, ``9 ** 9 ** 9``, ``a ~ a`` on big
strings, joining a macro's output) is not interrupted by the render's time limit (deadline.py).
Every way template code makes a new value is checked before it runs, with the size of what it
would make (`cost`: characters as text, counted through lists and dicts) at most MAX_TEXT:

- the operators `*`, `**`, `%`, `+` and `~` (`~` through the code generator: Jinja has no hook for it);
- the buffers Jinja joins for macros, `{% set %}...{% endset %}`, `{% filter %}` and blocks;
- every filter's input, and the arguments of the filters that grow text (replace, join, indent,
  format, wordwrap, urlize); `sum` adds numbers only (adding lists one by one is quadratic);
- calls: an integer argument is at most MAX_NUMBER; the str methods that grow text are estimated
  first (`translate` and `maketrans` are not available, nor `format_map`);
- what `{{ ... }}` prints (the caller also caps the whole output, rendering with `generate()`);
- all of it together: within `budget()` (one render), what these make is counted, at most MAX_MADE;
- the size of the template itself: at most MAX_NODES syntax nodes (Python compiles the generated
  code in one C call, about 0.1 s and 50 MB at that size; a 256 KiB file of `[a,a,a,...]` took 1 s and 500 MB).
`namespace` (state carried across loop iterations) and `lipsum` (seconds of CPU in one call) are
not available. Sizes are estimates (a character of text, a slot of a list), so memory is bounded by
these caps, not by an operating system limit (docs/security.md).
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_NUMBER = 100_000
MAX_NODES = 5000  # the largest built-in template has 118
MAX_TEXT = 1024 * 1024
MAX_MADE = 4 * MAX_TEXT  # characters one render may make in all (what stays alive is at most that)
_FORMAT_WIDTH = re.compile(r"\d{7,}")  # a width or precision of a million or more, in %-style or {}-style specs
_BLOCKED_STR_METHODS = {"translate", "maketrans", "format_map"}
_SCALAR_COST = 24  # what a number, None or any other object costs when printed, at most (about)


class LimitExceeded(SecurityError):
    """An expression of a template override would cost more than the sandbox allows."""


def cost(value: Any, budget: int = MAX_TEXT) -> int:
    """About how many characters `value` makes as text, counted through containers; stops once past `budget`."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, range):
            total += 2 + 8 * len(item)
        else:
            total += _SCALAR_COST
    return total


class _Made(threading.local):
    """What the render running in this thread has made so far (None outside `budget()`)."""

    total: int | None = None


_MADE = _Made()


@contextlib.contextmanager
def budget() -> Iterator[None]:
    """Count what template code makes while rendering (in this thread); LimitExceeded past MAX_MADE in all."""
    outer, _MADE.total = _MADE.total, 0
    try:
        yield
    finally:
        _MADE.total = outer


def _check_text(estimate: int, what: str, charge: bool = True) -> None:
    if estimate > MAX_TEXT:
        raise LimitExceeded(f"{what} would make text over {MAX_TEXT} characters")
    if charge and _MADE.total is not None:
        _MADE.total += estimate
        if _MADE.total > MAX_MADE:
            raise LimitExceeded(f"the template made more than {MAX_MADE} characters of text in all")


def _check_cost(values, what: str) -> None:
    total = 0
    for value in values:
        total += cost(value, MAX_TEXT - total)
        if total > MAX_TEXT:
            break
    _check_text(total, what)


def _check_numbers(args, kwargs) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise LimitExceeded(f"a number argument over {MAX_NUMBER} is not allowed in a template override")


def _check_format(spec: Any) -> None:
    if isinstance(spec, str) and _FORMAT_WIDTH.search(spec):
        raise LimitExceeded("a formatting width or precision of a million or more is not allowed")


def _check_replace(text: str, old: str, new: str) -> None:
    occurrences = (len(text) + 1) if old == "" else text.count(old)
    _check_text(len(text) + occurrences * max(0, len(new) - len(old)), "replace")


def _checked_join(separator: str, items) -> list:
    items = list(items)
    _check_text(cost(items) + len(separator) * max(0, len(items) - 1), "join")
    return items


def _lines(text: str) -> int:
    return text.count("\n") + 1


# --- filters ---------------------------------------------------------------------------------

def _filter_join(value, rest, kwargs):
    separator = rest[0] if rest else kwargs.get("d", "")
    return _checked_join(str(separator), value)


def _filter_replace(value, rest, kwargs):
    if len(rest) >= 2:
        _check_replace(str(value), str(rest[0]), str(rest[1]))


def _filter_indent(value, rest, kwargs):
    width = rest[0] if rest else kwargs.get("width", 4)
    prefix = width if isinstance(width, str) else " " * int(width)
    _check_text(len(str(value)) + _lines(str(value)) * len(prefix), "indent")


def _filter_format(value, rest, kwargs):
    _check_format(value)
    _check_cost((value, rest, kwargs), "format")


def _filter_wordwrap(value, rest, kwargs):
    text = str(value)
    width = rest[0] if rest else kwargs.get("width", 79)
    wrapstring = rest[2] if len(rest) > 2 else kwargs.get("wrapstring")
    breaks = len(text) // max(1, int(width)) + _lines(text)
    _check_text(len(text) + breaks * len(str(wrapstring or "\n")), "wordwrap")


def _filter_urlize(value, rest, kwargs):
    text = str(value)
    extra = sum(len(str(part)) for part in (*rest[2:4], kwargs.get("target") or "", kwargs.get("rel") or ""))
    _check_text(2 * len(text) + (len(text.split()) + 1) * (extra + 64), "urlize")


def _filter_sum(value, rest, kwargs):
    start = rest[1] if len(rest) > 1 else kwargs.get("start", 0)
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        raise LimitExceeded("sum adds numbers only in a template override (use join for text)")


# Checks of a filter's arguments; may return a replacement for its value (join materialises it).
_FILTER_CHECKS: dict[str, Callable] = {
    "join": _filter_join, "replace": _filter_replace, "indent": _filter_indent, "format": _filter_format,
    "wordwrap": _filter_wordwrap, "urlize": _filter_urlize, "sum": _filter_sum,
}


# Filters that return their input, a part of it, or a number: nothing new to count.
_MAKE_NOTHING = {"attr", "batch", "count", "d", "default", "dictsort", "first", "float", "groupby", "int", "items",
                 "last", "length", "list", "max", "min", "random", "reject", "rejectattr", "reverse", "round", "safe",
                 "select", "selectattr", "slice", "sort", "sum", "unique", "wordcount", "abs"}


def _guard_filter(name: str, function: Callable) -> Callable:
    """A filter that refuses what the sandbox does not allow, then runs `function`."""
    # Filters marked pass_context/pass_eval_context/pass_environment get that object first.
    offset = 1 if hasattr(function, "jinja_pass_arg") else 0
    check = _FILTER_CHECKS.get(name)
    makes_text = name not in _MAKE_NOTHING

    def guarded(*args, **kwargs):
        value, rest = (args[offset], args[offset + 1:]) if len(args) > offset else ("", ())
        _check_numbers(rest, kwargs)
        _check_text(cost(value), f"the input of filter {name}", charge=makes_text and check is None)
        if check is not None:
            replacement = check(value, rest, kwargs)
            if replacement is not None:
                args = (*args[:offset], replacement, *rest)
        return function(*args, **kwargs)

    guarded.__name__ = getattr(function, "__name__", name)
    if offset:
        guarded.jinja_pass_arg = function.jinja_pass_arg
    return guarded


# --- operators -------------------------------------------------------------------------------

def _multiply(left, right):
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
            _check_text(cost(sequence) * max(0, times), "repeating")
    return operator.mul(left, right)


def _power(left, right):
    if isinstance(left, int) and isinstance(right, int) and abs(right) > 64 and abs(left) > 1:
        raise LimitExceeded("an exponent over 64 is not allowed in a template override")
    return operator.pow(left, right)


def _modulo(left, right):
    if isinstance(left, str):
        _check_format(left)
        _check_numbers(right if isinstance(right, tuple) else (right,), {})
        _check_cost((left, right), "formatting with %")
    return operator.mod(left, right)


def _add(left, right):
    if isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
        _check_cost((left, right), "+")
    return operator.add(left, right)


def _checked_parts(parts: tuple) -> tuple:
    """The parts of a `~` expression, once what they make together is known to be within the limit."""
    _check_cost(parts, "~")
    return parts


def _checked_concat(items) -> str:
    """Jinja's join of a rendered buffer (a macro's output, a block, `{% set %}...{% endset %}`)."""
    items = list(items)
    _check_cost(items, "the output of a macro or block")
    return "".join(items)


def _checked_output(value):
    """What `{{ ... }}` prints, before it is turned into text."""
    _check_text(cost(value), "printing a value")
    return value


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with `a ~ b` going through `_checked_parts` first."""

    def visit_Concat(self, node, frame) -> None:  # noqa: N802 - Jinja's visitor name
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.checked_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the cost of each operation bounded."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CodeGenerator
    concat = staticmethod(_checked_concat)
    checked_parts = staticmethod(_checked_parts)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("finalize", _checked_output)
        super().__init__(*args, **kwargs)
        self.globals.pop("namespace", None)
        self.globals.pop("lipsum", None)
        self.binop_table.update({"*": _multiply, "**": _power, "%": _modulo, "+": _add})
        self.filters = {name: _guard_filter(name, function) for name, function in self.filters.items()}

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        if next(itertools.islice(tree.find_all(nodes.Node), MAX_NODES, None), None) is not None:
            raise TemplateSyntaxError(f"the template is too complex (more than {MAX_NODES} syntax nodes)", 1, name,
                                      filename)
        return tree

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if isinstance(obj, str) and attr in _BLOCKED_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        """Every call from template code: numbers bounded, and the methods that grow text checked first."""
        _check_numbers(args, kwargs)
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if name == "format":  # str.format is wrapped by the sandbox: find the format string it belongs to
            owner = getattr(getattr(__obj, "__wrapped__", None), "__self__", owner)
        if isinstance(owner, str):
            if name not in ("replace", "join", "expandtabs", "format"):
                _check_text(len(owner), f"str.{name}")  # about what a str method makes: a string its size
            if name == "replace" and len(args) >= 2:
                _check_replace(owner, str(args[0]), str(args[1]))
            elif name == "join" and args:
                args = (_checked_join(owner, args[0]), *args[1:])
            elif name == "expandtabs":
                size = args[0] if args else kwargs.get("tabsize", 8)
                _check_text(len(owner) + owner.count("\t") * max(0, int(size)), "expandtabs")
            elif name == "format":
                _check_format(owner)
                _check_cost((owner, args, kwargs), "format")
        return super().call(__context, __obj, *args, **kwargs)
