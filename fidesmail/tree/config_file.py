"""One config file (email/<key>.yaml): parsed as plain YAML, validated, and its problems told with line and hint.

A problem points at the line of the value it is about, and helps where it can: a field that is not one
names the field probably meant; YAML 1.1's surprises (`no` read as false, `010` as 8) say what the
value became and how to write it as text.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import yaml
from marshmallow import ValidationError

from fidesmail.core import yamlio
from fidesmail.core.problems import Problem
from fidesmail.core.validation import flatten_messages
from fidesmail.providers import catalog
from fidesmail.tree.documents import ConfigSchema, validate_config

# The names a misspelt field may have meant: a config's own, and any provider's `details`.
_FIELDS_AT = {(): tuple(ConfigSchema().fields),
              ("details",): tuple(dict.fromkeys(name for service_type in catalog.SERVICE_TYPES
                                                for name in catalog.details_schema(service_type).fields))}
_TYPE_ERRORS = ("Not a valid", "Invalid input type", "Field may not be null")
_YAML_TYPES = {"tag:yaml.org,2002:bool": "a boolean", "tag:yaml.org,2002:int": "a number",
               "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:null": "null (no value)",
               "tag:yaml.org,2002:timestamp": "a date"}


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """What one config file gave: its canonical document, or the problems that kept it out."""

    document: dict | None
    problems: tuple[Problem, ...] = ()
    fallback_line: int = 1  # where its `fallback:` is, for a problem the whole tree shows (a cycle)


def parse_config_file(data: bytes, relpath: str, expected_key: str) -> ConfigFile:
    """Parse and validate one config file; problems carry the line they point at and a hint where one helps."""
    try:
        document, line_of, node_at = yamlio.load_with_nodes(data)
    except yamlio.YAMLProblem as exc:
        return ConfigFile(None, (Problem(relpath, exc.line, exc.message),))
    if not isinstance(document, dict):
        return ConfigFile(None, (Problem(relpath, 1, "a config file must be a YAML mapping"),))
    document = dict(document)
    document.setdefault("key", expected_key)
    try:
        valid = validate_config(document)
    except ValidationError as exc:
        return ConfigFile(None, tuple(
            Problem(relpath, line_of(loc), f"{'.'.join(map(str, loc)) or 'file'}: {msg}{_hint(loc, msg, node_at)}")
            for loc, msg in flatten_messages(exc.messages)
        ))
    if valid["key"] != expected_key:
        return ConfigFile(None, (Problem(
            relpath, line_of(["key"]),
            f"key: {valid['key']!r} differs from the file name (expected {expected_key!r})",
        ),))
    return ConfigFile(valid, fallback_line=line_of(["fallback"]))


def _hint(loc: tuple, msg: str, node_at) -> str:
    """What would help a person fix this: YAML's type surprises, or the field they probably meant."""
    if loc and msg in ("Unknown field.", "extra fields not permitted"):
        candidates = _FIELDS_AT.get(tuple(loc[:-1]), ())
        close = difflib.get_close_matches(str(loc[-1]), candidates, n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else ""
    if not msg.startswith(_TYPE_ERRORS):
        return ""
    node = node_at(loc)
    # A plain (unquoted) scalar: style None from PyYAML's own parser, "" from libyaml's.
    if isinstance(node, yaml.ScalarNode) and not node.style and node.tag in _YAML_TYPES:
        kind = _YAML_TYPES[node.tag]
        if kind in ("a boolean", "a number"):  # say what it became: `010` is 8, `no` is false
            value = yaml.constructor.SafeConstructor().construct_object(node)
            kind = f"the boolean {str(value).lower()}" if kind == "a boolean" else f"the number {value}"
        return f" (YAML reads the unquoted {node.value} as {kind}; write \"{node.value}\" in quotes for the text)"
    return ""
