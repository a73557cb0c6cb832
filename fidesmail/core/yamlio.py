"""Safe YAML in and out: plain data only (no anchors, aliases or tags), duplicate keys refused, lines kept.

Loading costs time and memory bounded by the size of the document: aliases (the "billion laughs"
of a few hundred bytes) and explicit tags are refused while composing, before anything is built,
and nesting is capped so neither the composer nor the constructor recurses without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

try:  # libyaml's event parser when present: the same events, several times faster
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser as _ParserBase
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, _ParserBase):
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _ParserBase.__init__(self)

_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MAX_DEPTH = 64  # configs nest 2 levels, the sealed file 3; far below Python's recursion limit

Locator = Callable[[Sequence[Any]], int]
EMPTY = "file is empty"  # the problem of a document with nothing but comments


class YAMLProblem(ValueError):
    """A document that is not YAML we accept; `line` is 1-based."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.message = message
        self.line = line


def _line(mark) -> int:
    return mark.line + 1 if mark is not None else 1


class _PlainDataLoader(_Parser, Composer, SafeConstructor, Resolver):
    """safe_load semantics over plain data only: no anchor, alias or explicit tag; no repeated key."""

    def __init__(self, text: str):
        _Parser.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise YAMLProblem(f"alias *{event.anchor} is not allowed (write the value out; aliases can make a "
                              "small file cost without bound)", _line(event.start_mark))
        if event.anchor is not None:
            raise YAMLProblem(f"anchor &{event.anchor} is not allowed (only plain YAML data)", _line(event.start_mark))
        tag = getattr(event, "tag", None)  # None unless the document wrote one (`!!str`, `!x`, `!`)
        if tag is not None:
            raise YAMLProblem(f"tag {tag} is not allowed (only plain YAML data)", _line(event.start_mark))
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YAMLProblem(f"nested more than {MAX_DEPTH} levels deep", _line(event.start_mark))
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1

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
    node = _compose(data)
    return node[0], node[1]


def load_with_nodes(data: bytes) -> tuple[Any, Locator, Callable[[Sequence[Any]], yaml.Node | None]]:
    """`load`, plus a function from a key path to the node there (to explain what YAML made of a value)."""
    document, locate, root = _compose(data, with_root=True)
    return document, locate, lambda path: _node_at(root, path)


def _compose(data: bytes, with_root: bool = False):
    if b"\x00" in data:
        raise YAMLProblem("not a text file (contains NUL bytes)", data[: data.index(b"\x00")].count(b"\n") + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLProblem("not UTF-8 text", data[: exc.start].count(b"\n") + 1) from None
    loader = _PlainDataLoader(text)
    try:
        node = Composer.get_single_node(loader)
        if node is None:
            raise YAMLProblem(EMPTY, 1)
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YAMLProblem(_describe(exc), _line(mark)) from None
    except yaml.YAMLError as exc:
        raise YAMLProblem(f"not valid YAML: {exc}", 1) from None
    finally:
        loader.dispose()
    index: dict = {}  # id(mapping node) -> its keys, built on first use (see _line_of)
    locate = lambda path: _line_of(node, path, index)  # noqa: E731
    return (document, locate, node) if with_root else (document, locate)


class _Dumper(_BaseDumper):
    """Text of several lines as a literal block (`|`), one line of the file per line of the text."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # The emitter falls back to a quoted style where a block cannot hold the text exactly (trailing spaces, CR).
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_text)


def dump(document: Any) -> bytes:
    """Serialise for a file people read in diffs: block style, keys in the given order."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
        allow_unicode=True, width=1000,
    ).encode("utf-8")


def _describe(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "not valid YAML"
    return problem if exc.context is None else f"{exc.context}: {problem}"


def _children(node: yaml.Node, index: dict | None) -> dict:
    keys = index.get(id(node)) if index is not None else None
    if keys is None:
        keys = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                keys.setdefault(key_node.value, (key_node, value_node))
        if index is not None:
            index[id(node)] = keys
    return keys


def _line_of(node: yaml.Node, path: Sequence[Any], index: dict | None = None) -> int:
    """The line of the deepest node on `path` that exists (1-based).

    `index` keeps each mapping's keys once looked up, so locating every entry of a big mapping (the
    sealed file of 10,000 configs) is linear, not quadratic.
    """
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = _children(node, index).get(str(part))
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


def _node_at(node: yaml.Node, path: Sequence[Any]) -> yaml.Node | None:
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = _children(node, None).get(str(part))
            if found is None:
                return None
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node
