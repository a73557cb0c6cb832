"""Safe YAML in and out: duplicate keys refused, line numbers kept for error messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Locator = Callable[[Sequence[Any]], int]


class YAMLProblem(ValueError):
    """A document that is not YAML we accept; `line` is 1-based."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.message = message
        self.line = line


class _StrictLoader(_BaseLoader):
    """safe_load semantics, but a mapping may not repeat a key."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let the base constructor report it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load(data: bytes) -> tuple[Any, Locator]:
    """Parse one YAML document; return it and a function from a key path to its line."""
    if b"\x00" in data:
        raise YAMLProblem("not a text file (contains NUL bytes)", data[: data.index(b"\x00")].count(b"\n") + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLProblem("not UTF-8 text", data[: exc.start].count(b"\n") + 1) from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YAMLProblem("file is empty", 1)
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YAMLProblem(_describe(exc), line) from None
    except yaml.YAMLError as exc:
        raise YAMLProblem(f"not valid YAML: {exc}", 1) from None
    finally:
        loader.dispose()
    index: dict = {}  # id(mapping node) -> its keys, built on first use (see _line_of)
    return document, lambda path: _line_of(node, path, index)


def dump(document: Any) -> bytes:
    """Serialise for a file people read in diffs: block style, keys in the given order."""
    return yaml.dump(
        document, Dumper=_BaseDumper, sort_keys=False, default_flow_style=False,
        allow_unicode=True, width=1000,
    ).encode("utf-8")


def _describe(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "not valid YAML"
    if "could not determine a constructor" in problem:
        tag = problem.split("tag", 1)[-1].strip()
        return f"tag {tag} is not allowed (only plain YAML data)"
    return problem if exc.context is None else f"{exc.context}: {problem}"


def _line_of(node: yaml.Node, path: Sequence[Any], index: dict | None = None) -> int:
    """The line of the deepest node on `path` that exists (1-based).

    `index` keeps each mapping's keys once looked up, so locating every entry of a big mapping (the
    sealed file of 10,000 configs) is linear, not quadratic (1.5 s of a 10,000-config start).
    """
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            keys = index.get(id(node)) if index is not None else None
            if keys is None:
                keys = {}
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode):
                        keys.setdefault(key_node.value, (key_node, value_node))
                if index is not None:
                    index[id(node)] = keys
            found = keys.get(str(part))
            if found is None:
                return line
            key_node, node = found
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
