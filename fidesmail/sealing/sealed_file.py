"""`secrets.sealed.yaml`: config keys and field names in the clear, each value its own envelope.

    version: 1
    secrets:
      my_mailgun:
        mailgun_api_key: fm1:...

A diff shows which config got which secret, never a value. Parsing checks structure only (no
decryption): every good entry is kept, every bad one is a Problem naming its line, so one broken
entry affects only its own config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fidesmail.core import yamlio
from fidesmail.core.config_keys import KEY_PATTERN
from fidesmail.core.problems import Problem
from fidesmail.sealing import envelope

FILE_NAME = "secrets.sealed.yaml"
FILE_VERSION = 1
SUPPORTED_VERSIONS = (FILE_VERSION,)
_HEADER = (
    b"# fidesmail sealed secrets: safe to commit; only the service's private key opens a value.\n"
    b"# Add or replace one with: flask secrets seal CONFIG_KEY FIELD < value\n"
)


def _freeze(entries: Mapping[str, Mapping[str, str]]) -> Mapping[str, Mapping[str, str]]:
    """Read-only copies, sorted, without configs that have no field."""
    return MappingProxyType(
        {key: MappingProxyType(dict(sorted(fields.items()))) for key, fields in sorted(entries.items()) if fields}
    )


@dataclass(frozen=True)
class SealedFile:
    """The parsed `secrets.sealed.yaml`: config key -> field -> envelope (immutable)."""

    entries: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    version: int = FILE_VERSION
    # Where each value was in the file, for problems; not part of the value.
    lines: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", _freeze(self.entries))
        object.__setattr__(self, "lines", MappingProxyType(dict(self.lines)))

    def fields_of(self, config_key: str) -> frozenset[str]:
        """The secret fields set for a config."""
        return frozenset(self.entries.get(config_key, ()))

    def get(self, config_key: str, field: str) -> str | None:
        """The envelope of one field, or None."""
        return self.entries.get(config_key, {}).get(field)

    def with_value(self, config_key: str, field: str, sealed_value: str) -> SealedFile:
        """A copy with one envelope set."""
        entries = {key: dict(fields) for key, fields in self.entries.items()}
        entries.setdefault(config_key, {})[field] = sealed_value
        lines = {place: line for place, line in self.lines.items() if place != (config_key, field)}
        return SealedFile(entries, self.version, lines)

    def without_value(self, config_key: str, field: str) -> SealedFile:
        """A copy without one field of a config."""
        entries = {key: {name: value for name, value in fields.items() if (key, name) != (config_key, field)}
                   for key, fields in self.entries.items()}
        lines = {place: line for place, line in self.lines.items() if place != (config_key, field)}
        return SealedFile(entries, self.version, lines)

    def without_config(self, config_key: str) -> SealedFile:
        """A copy without any secret of one config."""
        entries = {key: fields for key, fields in self.entries.items() if key != config_key}
        lines = {place: line for place, line in self.lines.items() if place[0] != config_key}
        return SealedFile(entries, self.version, lines)

    def places(self) -> Iterable[tuple[str, str, str]]:
        """Every (config key, field, envelope), sorted."""
        for config_key, fields in self.entries.items():
            for name, sealed_value in fields.items():
                yield config_key, name, sealed_value

    def line_of(self, config_key: str) -> int:
        """The first line of a config's entries (1 when unknown)."""
        return min((self.lines.get((config_key, f), 1) for f in self.fields_of(config_key)), default=1)


EMPTY = SealedFile()


@dataclass(frozen=True)
class Parsed:
    """What a sealed file gave: its good part, its problems, and which places were refused."""

    sealed: SealedFile | None  # None: the file as a whole is unusable (keep the last good one)
    problems: tuple[Problem, ...] = ()
    refused: frozenset[tuple[str, str | None]] = frozenset()  # (config key, field or None for all fields)


def _is_blank(data: bytes) -> bool:
    """True for a file of nothing but blank and comment lines."""
    return all(not line.strip() or line.lstrip().startswith(b"#") for line in data.splitlines())


def parse(data: bytes, path_label: str = FILE_NAME) -> Parsed:
    """Check the structure (no decryption); keep every good entry, list a Problem per bad one."""
    if _is_blank(data):
        return Parsed(EMPTY)  # an empty file means no secrets yet
    try:
        doc, locate = yamlio.load(data)
    except yamlio.YAMLProblem as exc:
        return Parsed(None, (Problem(path_label, exc.line, exc.message),))
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        problems.append(Problem(path_label, locate(path), message))

    sealed, refused = _parse_document(doc, locate, problem)
    return Parsed(sealed, tuple(sorted(problems)), frozenset(refused))


def _parse_document(doc: Any, locate, problem) -> tuple[SealedFile | None, set]:
    """The good part of a loaded document; `problem(path, message)` hears about the rest."""
    if not isinstance(doc, dict):
        problem((), "must be a mapping with `version` and `secrets`")
        return None, set()
    for key in doc:
        if key not in ("version", "secrets"):
            problem((key,), f"unknown key {str(key)[:100]!r} (expected `version` and `secrets`)")
    if "version" not in doc:
        problem((), f"`version` is missing (expected version: {FILE_VERSION})")
        return None, set()
    version = doc["version"]
    if type(version) is not int or version not in SUPPORTED_VERSIONS:  # `type`: YAML's true is not 1
        problem(("version",), f"unsupported version {repr(version)[:40]} (this fidesmail reads version {FILE_VERSION})")
        return None, set()
    section = doc.get("secrets")
    if section is None:
        return SealedFile(version=version), set()
    if not isinstance(section, dict):
        problem(("secrets",), "`secrets` must map config keys to their sealed fields")
        return None, set()
    entries, lines, refused = _parse_entries(section, locate, problem)
    return SealedFile(entries, version, lines), refused


def _parse_entries(section: dict, locate, problem) -> tuple[dict, dict, set]:
    """The good entries of the `secrets` mapping, the line of each, and the places refused."""
    entries: dict[str, dict[str, str]] = {}
    lines: dict[tuple[str, str], int] = {}
    refused: set[tuple[str, str | None]] = set()
    for config_key, fields in section.items():
        where = ("secrets", config_key)
        if not isinstance(config_key, str) or not KEY_PATTERN.fullmatch(config_key):
            problem(where, f"config key {str(config_key)[:100]!r} must match {KEY_PATTERN.pattern}")
            continue
        if not isinstance(fields, dict):
            problem(where, f"{config_key}: must map secret field names to sealed values")
            refused.add((config_key, None))
            continue
        for name, sealed_value in fields.items():
            if not isinstance(name, str) or not envelope.FIELD_PATTERN.fullmatch(name):
                problem(where + (name,), f"{config_key}/{str(name)[:100]}: not a secret field name "
                                         f"(must match {envelope.FIELD_PATTERN.pattern})")
                continue
            parsed = envelope.parse(sealed_value)
            if isinstance(parsed, str):
                problem(where + (name,), f"{config_key}/{name}: {parsed}")
                refused.add((config_key, name))
                continue
            entries.setdefault(config_key, {})[name] = sealed_value
            lines[(config_key, name)] = locate(where + (name,))
    return entries, lines, refused


def keep_last_good(parsed: Parsed, previous: SealedFile | None) -> SealedFile:
    """The file to serve: the parsed one, with the last good value kept wherever an entry was refused."""
    if parsed.sealed is None:
        return previous or EMPTY
    if not parsed.refused or previous is None:
        return parsed.sealed
    merged = parsed.sealed
    for config_key, field in sorted(parsed.refused, key=lambda place: (place[0], place[1] or "")):
        for name in ([field] if field else sorted(previous.fields_of(config_key))):
            old = previous.get(config_key, name)
            if old is not None and merged.get(config_key, name) is None:
                merged = merged.with_value(config_key, name, old)
    return merged


def dump(sealed: SealedFile) -> bytes:
    """The file's text: keys sorted, read back identically by `yaml.safe_load` and `parse`."""
    doc = {
        "version": sealed.version,
        "secrets": {key: dict(sorted(fields.items())) for key, fields in sorted(sealed.entries.items())},
    }
    return _HEADER + yamlio.dump(doc)
