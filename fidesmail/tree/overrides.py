"""The tree's template overrides (templates/): read through the loader's pass, checked only when one changed."""

from __future__ import annotations

import hashlib
import time

from fidesmail.content import rendering
from fidesmail.core.problems import Problem
from fidesmail.tree import files

TEMPLATES_DIR = "templates"
CHECK_ALL_LIMIT = 2 * rendering.TIME_LIMIT  # seconds for checking every override of the tree together


def _decode_template(data: bytes) -> str | Problem:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem("", data[: exc.start].count(b"\n") + 1, "not UTF-8 text")


def load(state) -> rendering.Overrides:
    """The usable overrides of the tree at `state` (the loader's pass); their problems go to `state.problems`."""
    sources: dict[str, str] = {}
    for entry in state.listing(TEMPLATES_DIR):
        name = entry.name
        relpath = f"{TEMPLATES_DIR}/{name}"
        if entry.is_dir():
            continue
        if not name.startswith("_") and name not in rendering.TEMPLATE_NAMES:
            state.problems.append(Problem(relpath, 1, "not a template name: expected <action_type>.html, .txt or "
                                                      ".subject.txt (or _name for a partial)"))
            continue
        found, text = state.read(relpath, files.TEMPLATE_LIMIT, _decode_template, entry)
        if isinstance(text, Problem):
            state.problems.append(Problem(relpath, text.line, text.message))
        elif found and text is not None:
            sources[name] = text
    digest = hashlib.blake2b(repr(sorted(sources.items())).encode(), digest_size=16).digest()
    hit, value = state.cache.get_value(TEMPLATES_DIR, digest)
    if not hit:  # validate only when a template changed: a bad one may cost up to its time limit
        value = _validate_overrides(sources)
        state.cache.put_value(TEMPLATES_DIR, digest, value)
    overrides, problems = value
    state.problems.extend(problems)
    return overrides


def _validate_overrides(sources: dict[str, str]) -> tuple[rendering.Overrides, tuple[Problem, ...]]:
    # Each override has its own time limit, and checking them all has one too: every worker checks a
    # changed set once, in whichever request first sees the change, and 27 slow overrides must not
    # hold that request for 27 s. Past it, the rest are not checked, hence not used.
    candidates = rendering.Overrides(sources)
    usable, problems = set(), []
    deadline = time.monotonic() + CHECK_ALL_LIMIT
    not_checked = (f"not checked: checking the overrides took more than {CHECK_ALL_LIMIT:g} s together (fix the "
                   "slow ones; not used, the built-in template is)")
    for name in sorted(sources):
        if name.startswith("_"):
            continue  # partials are checked where they are used
        remaining = deadline - time.monotonic()
        error = rendering.check_override(candidates, name, remaining) if remaining > 0 else None
        if remaining > 0 and error is None:
            usable.add(name)
        elif remaining <= 0 or (error.timed_out and remaining < rendering.TIME_LIMIT):
            problems.append(Problem(f"{TEMPLATES_DIR}/{name}", 1, not_checked))
        else:
            where = error.name if error.name.startswith(TEMPLATES_DIR + "/") else f"{TEMPLATES_DIR}/{name}"
            problems.append(Problem(where, error.line or 1, f"{error.reason} (not used; the built-in template is)"
                                    if "not used" not in error.reason else error.reason))
    return candidates.with_usable(frozenset(usable)), tuple(problems)
