"""Fallback chains (contract section 14): where a config's messages go when its provider did not take them.

A config may name another as its `fallback`, that one its own, and so on, as long as there are configs.
A link that names no config, or that closes a cycle (a message would come back to a config that did not
take it), cannot be followed: the API refuses it (422, naming the chain), the loader and `flask check`
report it and the config serves without it. `chain_of` is the one walk of the links that sending and the
outbox follow; `dependents` says who would lose their fallback if a config went away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fidesmail.core.problems import Problem
from fidesmail.tree.snapshot import ConfigEntry, make_entry


def _next(documents: Mapping[str, Mapping], key: str) -> str | None:
    document = documents.get(key)
    return document.get("fallback") if document is not None else None


def link_problem(documents: Mapping[str, Mapping], key: str) -> str | None:
    """Why `key`'s fallback cannot be followed among `documents` (key -> config document), or None.

    The chain is named: "a -> b -> a is a cycle", "a -> nope: no email config has the key nope"."""
    chain = [key]
    at = _next(documents, key)
    while at is not None:
        if at not in documents:
            if len(chain) > 1:  # the last link is its config's own problem; this chain ends before it
                return None
            return f"{key} -> {at}: no email config has the key {at}."
        if at in chain:
            if at != key:  # a cycle further down, not through this config: theirs to report
                return None
            return f"{' -> '.join([*chain, at])} is a cycle: a message would come back to a config whose " \
                   "provider did not take it."
        chain.append(at)
        at = _next(documents, at)
    return None


def broken_links(documents: Mapping[str, Mapping]) -> dict[str, str]:
    """key -> why its fallback cannot be followed, for every config whose link names no config or is on a cycle.

    Unknown keys first: with those links dropped, every remaining cycle is reported by each config on it."""
    problems = {key: problem for key in documents
                if _next(documents, key) is not None and _next(documents, key) not in documents
                and (problem := link_problem(documents, key))}
    followable = {key: without_fallback(doc) if key in problems else doc for key, doc in documents.items()}
    problems.update((key, problem) for key in followable if (problem := link_problem(followable, key)))
    return problems


def without_fallback(document: Mapping) -> dict:
    """The document served when its fallback cannot be followed."""
    return {name: value for name, value in document.items() if name != "fallback"}


def follow(configs: dict[str, ConfigEntry], line_of: Callable[[ConfigEntry], int]) -> tuple[dict, list[Problem]]:
    """The configs to serve, each broken link dropped, and a problem for each (at its `fallback:` line)."""
    broken = broken_links({key: entry.document for key, entry in configs.items()})
    served, problems = dict(configs), []
    for key, why in sorted(broken.items()):
        entry = configs[key]
        served[key] = make_entry(without_fallback(entry.document), entry.path, entry.secret_fields)
        problems.append(Problem(entry.path, line_of(entry), f"fallback: {why} {key} serves without a fallback "
                                                            "until this is fixed"))
    return served, problems


def chain_of(configs: Mapping, key: str) -> list:
    """The config `key` and its fallbacks in order (`configs`: key -> served ConfigEntry); never a key twice."""
    chain, seen = [], set()
    at = key
    while at is not None and at not in seen and at in configs:
        entry = configs[at]
        chain.append(entry)
        seen.add(at)
        at = entry.document.get("fallback")
    return chain


def dependents(configs: Mapping, key: str) -> list[str]:
    """The configs whose fallback is `key` (sorted)."""
    return sorted(other for other, entry in configs.items() if entry.document.get("fallback") == key)
