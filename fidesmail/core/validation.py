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


# --- fides' words -----------------------------------------------------------------------------
# fides 2.78 validates with pydantic v2, and its answers under /api/v1/messaging say what pydantic v2 says
# (contract section 16): marshmallow's messages -> (pydantic's type, its words).
_FIDES_WORDS = {
    "Missing data for required field.": ("missing", "Field required"),
    "Unknown field.": ("extra_forbidden", "Extra inputs are not permitted"),
    "Not a valid string.": ("string_type", "Input should be a valid string"),
    "Not a valid boolean.": ("bool_type", "Input should be a valid boolean"),
    "Not a valid integer.": ("int_type", "Input should be a valid integer"),
    "Not a valid number.": ("float_type", "Input should be a valid number"),
    "Not a valid list.": ("list_type", "Input should be a valid list"),
    "Not a valid mapping type.": ("dict_type", "Input should be a valid dictionary"),
    "Invalid input type.": ("dict_type", "Input should be a valid dictionary"),
    "Not a valid URL.": ("url_parsing", "Input should be a valid URL"),
}
_TOO_SHORT = re.compile(r"Shorter than minimum length (\d+)\.")
_TOO_LONG = re.compile(r"Longer than maximum length (\d+)\.")


def one_of_words(choices) -> str:
    """pydantic v2's words for a value outside an enum: "Input should be 'a', 'b' or 'c'"."""
    quoted = [repr(str(choice)) for choice in choices]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"Input should be {listed}"


def fides_problem(loc: list, msg: str) -> dict:
    """One problem as fides answers it: {"type", "loc", "msg"}, marshmallow's message in pydantic v2's words."""
    if msg in _FIDES_WORDS:
        kind, words = _FIDES_WORDS[msg]
    elif one_of := _ONE_OF.fullmatch(msg):
        kind, words = "enum", one_of_words(one_of.group(1).split(", "))
    elif short := _TOO_SHORT.fullmatch(msg):
        kind, words = "string_too_short", f"String should have at least {short.group(1)} character" + \
            ("" if short.group(1) == "1" else "s")
    elif long := _TOO_LONG.fullmatch(msg):
        kind, words = "string_too_long", f"String should have at most {long.group(1)} characters"
    elif msg.startswith("Value error, "):
        kind, words = "value_error", msg
    else:  # a validator's own sentence: pydantic prefixes what a ValueError says
        kind, words = "value_error", f"Value error, {msg}"
    return {"type": kind, "loc": list(loc), "msg": words}


def fides_detail(messages, location: str = "body") -> list[dict]:
    """Marshmallow/webargs messages as fides' list of problems (`location` "auto": from webargs' keys)."""
    problems = []
    for loc, msg in flatten_messages(messages):
        if loc and loc[0] in _LOCATIONS and location == "auto":
            where, loc = _LOCATIONS[loc[0]], loc[1:]
        else:
            where = "body" if location == "auto" else location
        problems.append(fides_problem([where, *loc], msg))
    return problems
