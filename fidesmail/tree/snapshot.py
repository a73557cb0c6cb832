"""An immutable, fully validated view of the config tree: what every request reads."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from fidesmail.content.messaging_templates import MessagingTemplate
from fidesmail.content.rendering import Overrides
from fidesmail.core.problems import Problem
from fidesmail.providers import catalog
from fidesmail.sealing.sealed_file import SealedFile
from fidesmail.tree.messaging_defaults import EMPTY as NO_DEFAULTS
from fidesmail.tree.messaging_defaults import MessagingDefaults


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One served config: its canonical document and its ready-made JSON answer."""

    document: Mapping
    path: str
    secret_fields: frozenset
    body: bytes
    etag: str
    # The dict behind `document`: a load handed the very same one (an unchanged file, from the stat
    # cache) reuses this entry without comparing its content, which would touch every value.
    source: dict = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return self.document["key"]

    @property
    def name(self) -> str:
        return self.document["name"]


def make_entry(document: dict, path: str, secret_fields: frozenset) -> ConfigEntry:
    """A served config with its JSON answer and ETag computed once."""
    secrets_set = catalog.secrets_set(document["service_type"], secret_fields)
    body = json.dumps({**document, "secrets_set": secrets_set}, separators=(",", ":")).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    return ConfigEntry(MappingProxyType(document), path, secret_fields, body, etag, document)


@dataclass(frozen=True)
class Snapshot:
    """The config tree as served: configs, sealed secrets, `seal.pub`'s key id, template overrides, fides'
    messaging templates and defaults, problems."""

    configs: Mapping[str, ConfigEntry]
    keys: tuple[str, ...]
    sealed: SealedFile
    public_key: object | None  # the X25519PublicKey of seal.pub, None when absent or unreadable
    public_key_id: str | None
    overrides: Overrides
    problems: tuple[Problem, ...]
    loaded_at: float
    sealed_file_problem: Problem | None = None  # the first problem parsing the sealed file, if any
    # fides' messaging templates from templates/messaging/, by action type
    messaging_templates: Mapping[str, MessagingTemplate] = field(default_factory=lambda: MappingProxyType({}))
    messaging_defaults: MessagingDefaults = NO_DEFAULTS  # fides' defaults (messaging.yaml)

    def __post_init__(self):
        # Walked here, in the process that loads (the master, before it forks the workers): a worker's first
        # walk of every entry would write their reference counts, and so copy the pages it shares with the
        # master (at 10,000 configs, ~6 MB per worker).
        self.rate_limits, self.with_fallback  # noqa: B018

    @property
    def ok(self) -> bool:
        return not self.problems

    @functools.cached_property
    def rate_limits(self) -> Mapping[str, float]:
        """The configs that set a rate_limit: messages per second by config key (computed once per snapshot)."""
        return MappingProxyType({key: entry.document["rate_limit"] for key, entry in self.configs.items()
                                 if entry.document.get("rate_limit") is not None})

    @functools.cached_property
    def with_fallback(self) -> frozenset[str]:
        """The configs that have a fallback (their queued messages never wait behind their own gate); once per
        snapshot: the outbox's sweep asks every 5 s (at 10,000 configs, a third of an idle worker's CPU)."""
        return frozenset(key for key, entry in self.configs.items() if entry.document.get("fallback"))

    def page(self, page: int, size: int) -> list[ConfigEntry]:
        start = (page - 1) * size
        return [self.configs[key] for key in self.keys[start : start + size]]
