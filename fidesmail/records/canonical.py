"""Canonical JSON: the one byte string a value has, so a signature over it can be checked by anyone.

The rules (docs/evidence.md gives them to third parties): UTF-8; object keys sorted by code point; no
whitespace; strings with only `"`, `\\` and the control characters U+0000 to U+001F escaped (as \\b,
\\f, \\n, \\r, \\t, else \\u00xx in lower-case hex), everything else as itself; integers in decimal;
true, false, null; no floats. That is RFC 8785 (JCS) for such values, and Python's
`json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
"""

from __future__ import annotations

import json

MAX_SAFE_INTEGER = 2**53 - 1  # beyond it, JavaScript's and JCS's numbers round


class NotCanonical(ValueError):
    """A value canonical JSON does not carry (a float, an integer past 2**53, a key that is not a string)."""


def _checked(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise NotCanonical(f"an integer past 2**53: {value}")
        return value
    if isinstance(value, float):
        raise NotCanonical(f"a float: {value!r}")
    if isinstance(value, (list, tuple)):
        return [_checked(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise NotCanonical("an object key that is not a string")
        return {key: _checked(item) for key, item in value.items()}
    raise NotCanonical(f"a {type(value).__name__}")


def dumps(value) -> bytes:
    """The canonical bytes of `value`; NotCanonical when it holds something canonical JSON does not carry."""
    return json.dumps(_checked(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def integral(value):
    """`value` with every float that is a whole number made an int and any other float made a string, so a
    record always has a canonical form (records hold no floats today; this keeps a new field from breaking it)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER else repr(value)
    if isinstance(value, list):
        return [integral(item) for item in value]
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    return value
