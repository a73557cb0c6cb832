"""A validation failure as the contract's list of problems: `{"loc", "msg", "type"}`, in fidesops' words.

Marshmallow (and webargs) describe what is wrong as nested messages; every refusal of input, whoever
finds it (a view, the tree's loader, a webhook's intake), is told in this one shape (contract section 4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# webargs' names for where a value came from -> the contract's names.
_LOCATIONS = {"json": "body", "form": "body", "query": "query", "querystring": "query",
              "view_args": "path", "path": "path", "headers": "header"}

# marshmallow's default messages -> a stable machine-readable type.
_TYPES = {
    "Missing data for required field.": "missing",
    "Unknown field.": "extra_forbidden",
    "Field may not be null.": "none_forbidden",
    "Not a valid string.": "string_type",
    "Not a valid boolean.": "bool_type",
    "Not a valid integer.": "int_type",
    "Not a valid number.": "number_type",
    "Not a valid list.": "list_type",
    "Not a valid mapping type.": "dict_type",
    "Invalid input type.": "dict_type",
    "Not a valid URL.": "url",
}

# Where fidesops answered a validation error, its clients read pydantic v1's words: marshmallow's
# are put in those words in every answer (contract section 4); `type` stays the one named above.
_FIDESOPS_WORDS = {
    "Missing data for required field.": "field required",
    "Unknown field.": "extra fields not permitted",
}
_ONE_OF = re.compile(r"Must be one of: (.+)\.", re.DOTALL)  # marshmallow's OneOf, and ServiceType's


def fidesops_words(msg: str) -> str:
    """A marshmallow message as pydantic v1 (fidesops) said it; other messages unchanged."""
    if msg in _FIDESOPS_WORDS:
        return _FIDESOPS_WORDS[msg]
    one_of = _ONE_OF.fullmatch(msg)
    if one_of:
        permitted = ", ".join(repr(choice) for choice in one_of.group(1).split(", "))
        return f"value is not a valid enumeration member; permitted: {permitted}"
    return msg


def validation_detail(messages, location: str = "body") -> list[dict]:
    """Marshmallow/webargs messages as the contract's list of {loc, msg, type}."""
    problems = []
    for loc, msg in flatten_messages(messages):
        if loc and loc[0] in _LOCATIONS and location == "auto":
            where, loc = _LOCATIONS[loc[0]], loc[1:]
        else:
            where = location
        problems.append({"loc": [where, *loc], "msg": fidesops_words(msg), "type": _error_type(msg)})
    return problems


def _error_type(msg: str) -> str:
    if msg in _TYPES:
        return _TYPES[msg]
    if msg.startswith("Must be one of"):
        return "enum"
    if msg.startswith(("Shorter than", "Longer than", "Length must")):
        return "length"
    if msg.startswith(("Must be greater", "Must be less", "Must be at")):
        return "range"
    return "value_error"


def flatten_messages(messages, prefix=()) -> list[tuple[tuple, str]]:
    """Marshmallow's nested error messages as (location, message) pairs."""
    if isinstance(messages, Mapping):
        pairs = []
        for name, inner in messages.items():
            loc = prefix if name == "_schema" else (*prefix, name)
            pairs.extend(flatten_messages(inner, loc))
        return pairs
    if isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            return [(prefix, m) for m in messages]
        pairs = []
        for item in messages:
            pairs.extend(flatten_messages(item, prefix))
        return pairs
    return [(prefix, str(messages))]
