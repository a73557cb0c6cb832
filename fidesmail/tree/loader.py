"""The config tree -> a Snapshot and its problems: the one place untrusted files become served state.

`load_tree` is mostly pure: it reads the tree through `files` (regular files inside the tree,
within their size limits), parses YAML with `yamlio` (plain data only), validates every config with
the API's own schema, and merges the result with the previous snapshot so that a bad edit never
takes a good config out of service: per config, per sealed entry, and for names that collide.
`flask check` calls it with no previous snapshot; the store calls it with the one it serves.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from fidesmail.content import messaging_templates
from fidesmail.core.config_keys import KEY_PATTERN
from fidesmail.core.problems import Problem
from fidesmail.providers import catalog
from fidesmail.sealing import keys, sealed_file
from fidesmail.tree import fallbacks, files, messaging_defaults, messaging_files, overrides
from fidesmail.tree.config_file import ConfigFile, parse_config_file
from fidesmail.tree.lastgood import LastGood
from fidesmail.tree.snapshot import ConfigEntry, Snapshot, make_entry
from fidesmail.tree.statcache import StatCache

EMAIL_DIR = "email"
TEMPLATES_DIR = overrides.TEMPLATES_DIR
PUBLIC_KEY_FILE = "seal.pub"
SEALED_FILE = sealed_file.FILE_NAME
CONFIG_SUFFIX = ".yaml"
_NOTES = "<problems>"  # cache entry: the problems of the last load that no file's cached value holds


@dataclass
class _Pass:
    """The state of one load: the tree's real root, the cache, and whether anything changed."""

    root: str
    cache: StatCache
    changed: bool = False
    seen: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)

    def read(self, relpath: str, limit: int, parse, entry: os.DirEntry | None = None):
        """`parse(bytes)` of the file at `relpath`, from the cache while the file is unchanged.

        Returns (found, value); found is False when the file is absent. A refused file is a problem."""
        path = os.path.join(self.root, relpath)
        try:
            located = files.locate(self.root, path, limit, entry)
        except files.Refused as exc:
            if not os.path.lexists(path):
                return False, None
            self.problems.append(Problem(relpath, 1, str(exc)))  # checked again each time, never cached
            return True, None
        self.seen.add(relpath)
        hit, value = self.cache.get(relpath, located)
        if hit:
            return True, value
        self.changed = True
        try:
            data = files.read(located)
        except files.Refused as exc:
            self.problems.append(Problem(relpath, 1, str(exc)))
            return True, None
        value = parse(data)
        self.cache.put(relpath, located, data, value)
        return True, value

    def listing(self, relpath: str) -> list[os.DirEntry]:
        """The entries of a folder of the tree (sorted by name, hidden ones left out)."""
        try:
            entries = files.list_dir(self.root, os.path.join(self.root, relpath))
        except files.Refused as exc:
            self.problems.append(Problem(relpath, 1, str(exc)))
            return []
        return sorted((e for e in entries or () if not e.name.startswith(".")), key=lambda e: e.name)


# --- config files --------------------------------------------------------------------------


def _config_files(state: _Pass) -> dict[str, ConfigFile]:
    """relative path -> what the file gave, for every .yaml file in email/."""
    results: dict[str, ConfigFile] = {}
    for entry in state.listing(EMAIL_DIR):
        name = entry.name
        relpath = f"{EMAIL_DIR}/{name}"
        if not name.endswith(CONFIG_SUFFIX):
            if name.endswith(".yml"):
                state.problems.append(Problem(relpath, 1, "ignored: config files must end in .yaml"))
            continue
        key = name[: -len(CONFIG_SUFFIX)]
        if not KEY_PATTERN.fullmatch(key):
            state.problems.append(Problem(relpath, 1, "the file name is not a valid config key"))
            results[relpath] = ConfigFile(None)
            continue
        found, result = state.read(relpath, files.CONFIG_LIMIT,
                                   lambda data, relpath=relpath, key=key: parse_config_file(data, relpath, key), entry)
        if found:
            results[relpath] = result if result is not None else ConfigFile(None)
    return results


def _needs_last_good(results: dict[str, ConfigFile]) -> bool:
    """Whether the last good versions can change what is served: a file that failed, or a name two files claim."""
    names = [result.document["name"] for result in results.values() if result.document is not None]
    return len(names) != len(results) or len(set(names)) != len(names)


def _serve_configs(results: dict[str, ConfigFile], previous: Snapshot | None, sealed,
                   last_good: Callable[[], LastGood | None]) -> tuple[dict, list]:
    """The configs to serve: every valid file, else its last good version; a name belongs to who served it."""
    # Only a failed file or a contested name needs the service's last good state: reading it builds
    # every document again (private memory in each worker), and the previous snapshot's documents,
    # compared one by one, would touch (and so copy) the pages a worker shares with the master.
    served = {}
    if _needs_last_good(results):
        shared = last_good()
        if shared is not None:
            served = dict(shared.configs)
        elif previous is not None:
            served = {entry.path: dict(entry.document) for entry in previous.configs.values()}
    stable, changed = [], []
    for relpath, result in sorted(results.items()):
        last = served.get(relpath)
        if result.document is None or result.document == last:
            if last is not None:
                stable.append((relpath, last, None))
        else:
            changed.append((relpath, result.document, last))
    changed.sort(key=lambda item: (item[2] is None, item[0]))  # an edited serving config before a newcomer
    configs: dict[str, ConfigEntry] = {}
    owners: dict[str, str] = {}  # name -> key
    problems: list[Problem] = []
    for relpath, document, fallback in stable + changed:  # what was serving keeps its name
        for candidate in (document, fallback):
            if candidate is None:
                continue
            owner = owners.get(candidate["name"])
            if owner is None:
                owners[candidate["name"]] = candidate["key"]
                configs[candidate["key"]] = _entry(candidate, relpath, sealed, previous)
                break
            if candidate is document:
                problems.append(Problem(relpath, 1, f"name: {candidate['name']!r} is already used by config "
                                                    f"{owner!r} (this file is not served)"))
    return configs, problems


def _entry(document: dict, relpath: str, sealed, previous: Snapshot | None) -> ConfigEntry:
    secret_fields = _shared(sealed.fields_of(document["key"]))
    cached = previous.configs.get(document["key"]) if previous else None
    if cached is not None and (cached.source is document or cached.document == document) \
            and cached.secret_fields == secret_fields and cached.path == relpath:
        return cached
    return make_entry(document, relpath, secret_fields)


@functools.lru_cache(maxsize=64)  # bounded: the field names come from an untrusted file
def _shared(fields: frozenset) -> frozenset:
    """One object for each set of secret fields (a handful of sets, 10,000 configs)."""
    return fields


# --- sealed secrets and seal.pub -------------------------------------------------------------


def _sealed(state: _Pass, previous: Snapshot | None,
            shared: Callable[[], LastGood | None]) -> tuple[sealed_file.SealedFile, Problem | None]:
    """The secrets to serve, and the first problem of the file (None when it parsed cleanly)."""
    problems_before = len(state.problems)
    found, parsed = state.read(SEALED_FILE, files.SEALED_LIMIT, sealed_file.parse)
    if not found:
        return sealed_file.EMPTY, None
    if parsed is not None and parsed.sealed is not None and not parsed.refused:  # no last good value needed
        state.problems.extend(parsed.problems)
        return parsed.sealed, (parsed.problems[0] if parsed.problems else None)
    service = shared()
    last_good = service.sealed if service is not None else (previous.sealed if previous else None)
    if parsed is None:  # refused (too large, not a regular file): keep what was serving
        return last_good or sealed_file.EMPTY, state.problems[problems_before]
    state.problems.extend(parsed.problems)
    if parsed.sealed is None and last_good is not None and last_good.entries:
        state.problems.append(Problem(SEALED_FILE, 1, "the file cannot be used; the last good secrets keep serving"))
    return sealed_file.keep_last_good(parsed, last_good), (parsed.problems[0] if parsed.problems else None)


@dataclass(frozen=True)
class _PublicKey:
    key: object | None
    key_id: str | None
    problem: str | None = None


def _parse_public_key(data: bytes) -> _PublicKey:
    try:
        key = keys.parse_public_key(data, PUBLIC_KEY_FILE)
    except keys.KeyringError as exc:
        return _PublicKey(None, None, str(exc))
    return _PublicKey(key, keys.key_id_of(key))


def _public_key(state: _Pass) -> _PublicKey:
    found, parsed = state.read(PUBLIC_KEY_FILE, files.PUBLIC_KEY_LIMIT, _parse_public_key)
    if not found or parsed is None:
        return _PublicKey(None, None)
    if parsed.problem:
        state.problems.append(Problem(PUBLIC_KEY_FILE, 1, parsed.problem))
    return parsed


def _foreign_fields(configs: dict[str, ConfigEntry], sealed) -> list[Problem]:
    """A sealed field that the config's provider does not take (another provider's, a typo): a problem."""
    problems = []
    for key, entry in configs.items():
        kind = catalog.KINDS[entry.document["service_type"]]
        for name in sorted(entry.secret_fields - set(kind.secret_fields)):
            problems.append(Problem(SEALED_FILE, sealed.lines.get((key, name), 1),
                                    f"{key}/{name}: not a secret field of {kind.service_type} configs (known: "
                                    f"{', '.join(kind.secret_fields)}); remove it"))
    return problems


# --- fides' messaging templates ----------------------------------------------------------------


def _last_good_templates(previous: Snapshot | None, last_good: Callable[[], LastGood | None]) -> dict:
    """relative path -> the last good messaging template: the service's, else this process's."""
    shared = last_good()
    if shared is not None:
        return dict(shared.messaging_templates)
    return {messaging_files.relpath_of(t.type): t for t in previous.messaging_templates.values()} if previous else {}


def _messaging_templates(state: _Pass, previous: Snapshot | None, last_good: Callable[[], LastGood | None]) -> dict:
    """action type -> its template from templates/messaging/; a file gone bad keeps its last good version."""
    templates = {}
    for entry in state.listing(messaging_files.FOLDER):
        relpath = f"{messaging_files.FOLDER}/{entry.name}"
        template_type = entry.name[: -len(messaging_files.SUFFIX)]
        if entry.is_dir() or not entry.name.endswith(messaging_files.SUFFIX) \
                or template_type not in messaging_templates.TEMPLATE_TYPES:
            state.problems.append(Problem(relpath, 1, "not a messaging template: expected <type>.yaml, type one of "
                                                      + ", ".join(messaging_templates.TEMPLATE_TYPES)))
            continue
        found, result = state.read(relpath, files.TEMPLATE_LIMIT,
                                   lambda data, r=relpath, t=template_type: messaging_files.parse(data, r, t), entry)
        if result is not None:
            state.problems.extend(result.problems)
        template = result.template if result is not None else None
        if template is None and found:
            template = _last_good_templates(previous, last_good).get(relpath)
        if template is not None:
            templates[template_type] = template
    return templates


# --- fides' messaging defaults ------------------------------------------------------------------


def _messaging_defaults(state: _Pass, previous: Snapshot | None,
                        last_good: Callable[[], LastGood | None]) -> messaging_defaults.MessagingDefaults:
    """messaging.yaml's defaults; a file gone bad keeps the last good ones serving."""
    found, parsed = state.read(messaging_defaults.FILE_NAME, files.CONFIG_LIMIT, messaging_defaults.parse)
    if not found:
        return messaging_defaults.EMPTY
    defaults, problems = parsed if parsed is not None else (None, ())
    state.problems.extend(problems)
    if defaults is not None:
        return defaults
    shared = last_good()
    if shared is not None:
        return shared.messaging_defaults
    return previous.messaging_defaults if previous else messaging_defaults.EMPTY


# --- the whole tree --------------------------------------------------------------------------


def load_tree(config_dir, previous: Snapshot | None = None, cache: StatCache | None = None,
              last_good: Callable[[], LastGood | None] | None = None) -> Snapshot:
    """Read the tree at `config_dir` into a Snapshot, keeping the last good parts where files went bad.

    The last good parts are the service's (what `last_good()` returns, see lastgood.py; called only when a
    file failed or a name is contested) when given, else `previous`'s.
    With `cache`, files whose stat did not change are not read again, and when nothing at all changed
    `previous` itself is returned (an idle check costs one stat per file and no rebuild)."""
    state = _Pass(os.path.realpath(config_dir), cache if cache is not None else StatCache())
    last_good = functools.cache(last_good) if last_good is not None else lambda: None  # read once per load
    results = _config_files(state)
    sealed, sealed_problem = _sealed(state, previous, last_good)
    public_key = _public_key(state)
    template_overrides = overrides.load(state)
    fides_templates = _messaging_templates(state, previous, last_good)
    defaults = _messaging_defaults(state, previous, last_good)
    # Problems not kept in the cache (refused files, bad names) count as changes too.
    noted = hashlib.blake2b(repr(sorted(state.problems)).encode(), digest_size=16).digest()
    same_notes, _ = state.cache.get_value(_NOTES, noted)
    state.cache.put_value(_NOTES, noted, None)
    gone = state.cache.forget_except(state.seen | {TEMPLATES_DIR, _NOTES})
    if previous is not None and not state.changed and not gone and same_notes:
        return previous
    configs, name_problems = _serve_configs(results, previous, sealed, last_good)
    configs, link_problems = fallbacks.follow(configs, lambda e: getattr(results.get(e.path), "fallback_line", 1))
    problems = state.problems + name_problems + link_problems + [p for r in results.values() for p in r.problems]
    if sealed.entries and public_key.key_id is None and not any(p.path == PUBLIC_KEY_FILE for p in problems):
        problems.append(Problem(PUBLIC_KEY_FILE, 1, "seal.pub is missing: sealed values cannot be checked against it, "
                                                    "and nobody can seal new ones"))
    config_keys = {relpath[len(EMAIL_DIR) + 1 : -len(CONFIG_SUFFIX)] for relpath in results}
    for key in sorted(sealed.entries.keys() - config_keys):
        problems.append(Problem(SEALED_FILE, sealed.line_of(key), f"{key}: secrets for a config that does not exist "
                                                                  "(renamed or removed? move or remove them)"))
    problems += _foreign_fields(configs, sealed)
    return Snapshot(
        configs=MappingProxyType(configs),
        keys=tuple(sorted(configs)),
        sealed=sealed,
        public_key=public_key.key,
        public_key_id=public_key.key_id,
        overrides=template_overrides,
        messaging_templates=MappingProxyType(fides_templates),
        messaging_defaults=defaults,
        problems=tuple(sorted(set(problems))),
        loaded_at=time.time(),
        sealed_file_problem=sealed_problem,
    )
