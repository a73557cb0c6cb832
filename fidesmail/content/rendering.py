"""Action type -> email (subject, html, text): the built-in Jinja2 templates, or overrides from the tree.

Built-in templates are trusted and rendered as they are. Overrides come from the config tree (read
by its loader, never from disk here) and run in a sandbox with a time limit for the whole message
and a size limit for each part; one that fails with the sample parameters is not used at all.
A `Wording` (a caller's subject_override / body_override, or a fides messaging template already
filled in) replaces the subject, and the body: its plain text, escaped, in the built-in layout (for
the action types whose fides email has an introduction, it is that introduction).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from pathlib import Path

import jinja2
from jinja2.utils import urlize
from markupsafe import Markup

from fidesmail.content import body_params, sandbox, variables
from fidesmail.content.deadline import TimeLimitExceeded, time_limit
from fidesmail.content.messaging_templates import NO_WORDING, Wording
from fidesmail.content.sandbox import LimitedSandbox
from fidesmail.core.email import Message

PARTS = (".subject.txt", ".html", ".txt")
TEMPLATE_NAMES = {action + part: (action, part) for action in body_params.ACTION_TYPES for part in PARTS}
BUILTIN_DIR = Path(__file__).with_name("templates")
INTRO_TYPES = ("manual_task_digest", "external_user_welcome")  # a body override is their introduction
TIME_LIMIT = 1.0  # seconds for all overridden parts of one message together
OUTPUT_LIMIT = 1024 * 1024  # characters per part

_OPTIONS = {
    "autoescape": jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    # A missing variable is a template bug to report, not an empty string in someone's inbox.
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
}
_BUILTIN = jinja2.Environment(loader=jinja2.FileSystemLoader(BUILTIN_DIR), auto_reload=False, **_OPTIONS)


def _is_link_url(value) -> bool:
    """`{% if link is link_url %}`: a download link to make clickable (else it is words, shown as text)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def _paragraphs(text: str) -> Markup:
    """Plain text as HTML paragraphs: escaped, blank lines between paragraphs, line breaks kept, http(s) links
    made clickable."""
    paragraphs = [part.strip("\n") for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup(urlize(part, rel="noopener noreferrer"))  # urlize escapes
                                   .replace("\n", Markup("<br>\n")))
        for part in paragraphs)


_BUILTIN.tests["link_url"] = _is_link_url
_BUILTIN.filters["paragraphs"] = _paragraphs


class TemplateRenderError(Exception):
    """A template that does not compile, render, or stay within its limits; names the file and line."""

    timed_out = False  # True when it was stopped by its time limit

    def __init__(self, name: str, line: int | None, reason: str):
        self.name = name
        self.line = line
        self.reason = reason
        super().__init__(f"{name}:{line}: {reason}" if line else f"{name}: {reason}")


class Overrides:
    """The template overrides of one snapshot of the tree: every source, and which parts may be used."""

    def __init__(self, sources: Mapping[str, str] | None = None, usable: frozenset[str] = frozenset()):
        self.sources = dict(sources or {})
        self.usable = usable
        # Partials ("_layout.html") may come from the tree or, when not overridden, from the built-ins.
        loader = jinja2.ChoiceLoader([jinja2.DictLoader(self.sources), jinja2.FileSystemLoader(BUILTIN_DIR)])
        self._env = LimitedSandbox(loader=loader, auto_reload=False, **_OPTIONS)
        self._env.tests["link_url"] = _is_link_url

    def template(self, name: str) -> jinja2.Template:
        """The compiled override (TemplateRenderError when it does not compile)."""
        try:
            return self._env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateRenderError(_where(exc.name or name, True), exc.lineno, exc.message or "syntax error") \
                from None
        except jinja2.TemplateError as exc:
            raise TemplateRenderError(_where(name, True), None, str(exc)) from None

    def with_usable(self, usable: frozenset[str]) -> Overrides:
        """The same sources with another set of usable parts (shares nothing mutable)."""
        return Overrides(self.sources, usable)


NO_OVERRIDES = Overrides()


def _where(name: str, override: bool) -> str:
    return f"templates/{name}" if override else f"built-in {name}"


def _template_line(exc: BaseException, filename: str | None) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if filename and frame.f_code.co_filename == filename:
            line = lineno
    return line


def _render_override(overrides: Overrides, name: str, context: dict) -> str:
    """One overridden part, streamed so its size is counted as it grows."""
    template = overrides.template(name)
    chunks, size = [], 0
    try:
        with sandbox.budget():
            for chunk in template.generate(context):
                size += len(chunk)
                if size > OUTPUT_LIMIT:
                    raise TemplateRenderError(_where(name, True), None,
                                              f"renders to more than {OUTPUT_LIMIT // (1024 * 1024)} MiB")
                chunks.append(chunk)
    except (TemplateRenderError, TimeLimitExceeded):
        raise
    except Exception as exc:  # any failure of template code is reported, never leaked as a traceback
        reason = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
        raise TemplateRenderError(_where(name, True), _template_line(exc, template.filename), reason[:500]) \
            from None
    return "".join(chunks)


def _render_builtin(name: str, context: dict) -> str:
    try:
        return _BUILTIN.get_template(name).render(context)
    except Exception as exc:  # a bug of ours, but still an answer that names the file
        raise TemplateRenderError(_where(name, False), None, f"{type(exc).__name__}: {exc}") from None


def _context(action_type: str, params: dict) -> dict:
    context = variables.context_of(action_type, params)
    if action_type in INTRO_TYPES:
        context["intro_override"] = None
    return context


def _one_line(subject: str) -> str:
    """Whitespace runs (CR/LF included) become one space: a subject is one header line."""
    return " ".join(subject.split())


def _render_part(name: str, context: dict, overrides: Overrides) -> str:
    if name in overrides.usable:
        return _render_override(overrides, name, context)
    return _render_builtin(name, context)


def _render_parts(action_type: str, context: dict, overrides: Overrides, wording: Wording) -> list[str]:
    subject = _one_line(wording.subject or "")
    if not subject:  # no subject given (or one that came out blank): the template's
        subject = _one_line(_render_part(action_type + ".subject.txt", context, overrides))
        if not subject:
            raise TemplateRenderError(_where(action_type + ".subject.txt", action_type + ".subject.txt"
                                             in overrides.usable), None, "the subject is empty")
    context["subject"] = subject
    body = wording.body if wording.body and wording.body.strip() else None
    if body is not None and action_type in INTRO_TYPES:
        context["intro_override"] = body
        body = None
    if body is not None:
        context["body_override"] = body
        return [subject, _render_builtin("_wording.html", context), _render_builtin("_wording.txt", context)]
    return [subject, *(_render_part(action_type + part, context, overrides) for part in PARTS[1:])]


def render(action_type: str, params: dict, overrides: Overrides = NO_OVERRIDES,
           wording: Wording = NO_WORDING) -> Message:
    """Render the action type's email from already validated `params`, with `wording` replacing the subject
    and body where it says something; TemplateRenderError on failure."""
    context = _context(action_type, params)
    uses_overrides = any(action_type + part in overrides.usable for part in PARTS)
    try:
        if uses_overrides:
            with time_limit(TIME_LIMIT):
                subject, html, text = _render_parts(action_type, context, overrides, wording)
        else:
            subject, html, text = _render_parts(action_type, context, overrides, wording)
    except TimeLimitExceeded:
        raise TemplateRenderError(f"templates/{action_type}.*", None,
                                  f"took more than {TIME_LIMIT:g} s to render (stopped)") from None
    return Message(subject=subject, html=html, text=text, tag=action_type)


def check_override(overrides: Overrides, name: str, seconds: float = TIME_LIMIT) -> TemplateRenderError | None:
    """Why the override `name` may not be used (rendered with the sample parameters within `seconds`), or None."""
    action_type, part = TEMPLATE_NAMES[name]
    params = body_params.load_body_params(action_type, body_params.SAMPLE_PARAMS[action_type])
    context = _context(action_type, params)
    if part != ".subject.txt":  # the html and text parts may show the subject
        context["subject"] = _one_line(_render_builtin(action_type + ".subject.txt", dict(context)))
    try:
        with time_limit(min(seconds, TIME_LIMIT)):
            output = _render_override(overrides, name, context)
    except TimeLimitExceeded:
        error = TemplateRenderError(_where(name, True), None,
                                    f"took more than {min(seconds, TIME_LIMIT):.2g} s to render with the sample "
                                    "parameters (not used; the built-in template is)")
        error.timed_out = True
        return error
    except TemplateRenderError as exc:
        return exc
    if name.endswith(".subject.txt") and not output.split():
        return TemplateRenderError(_where(name, True), None, "the subject is empty")
    return None
