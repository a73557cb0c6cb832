"""fides' messaging templates as files: `templates/messaging/<action type>.yaml`, one per action type.

The body of fides' API for one template (`type`, `is_enabled`, `content: {subject, body}`) as plain YAML,
so a pull request can change a template as `PUT /api/v1/messaging/templates` does. A file is parsed
like a config (plain YAML only, problems with their line) and, like a config, rendered once with
the sample parameters before it is used. It stays apart from the Jinja overrides beside it in
`templates/`: its placeholders are text, never template code.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from fidesmail.content import body_params, messaging_templates, variables
from fidesmail.content.messaging_templates import MessagingTemplate
from fidesmail.core import yamlio
from fidesmail.core.problems import Problem
from fidesmail.core.validation import flatten_messages

FOLDER = "templates/messaging"
SUFFIX = ".yaml"
_TEXT_LIMIT = 100_000  # characters of a subject or body (the file itself is limited to 256 KiB)


def _text() -> fields.String:
    return fields.String(required=True, validate=[
        validate.Length(max=_TEXT_LIMIT),
        validate.Predicate("strip", error="Must not be blank.")])


class _ContentSchema(Schema):
    class Meta:
        unknown = RAISE

    subject = _text()
    body = _text()


class TemplateFileSchema(Schema):
    """One template file: fides' template body (`type`, `is_enabled`, `content`)."""

    class Meta:
        unknown = RAISE
        ordered = True

    type = fields.String(validate=validate.OneOf(messaging_templates.TEMPLATE_TYPES))
    is_enabled = fields.Boolean(load_default=True, metadata={"description": "false: sends use the built-in "
                                                                            "template of the type"})
    content = fields.Nested(_ContentSchema, required=True)


@dataclass(frozen=True)
class TemplateFile:
    """What one template file gave: its template, or the problems that kept it out."""

    template: MessagingTemplate | None
    problems: tuple[Problem, ...] = ()


def relpath_of(template_type: str) -> str:
    return f"{FOLDER}/{template_type}{SUFFIX}"


def parse(data: bytes, relpath: str, template_type: str) -> TemplateFile:
    """Parse and validate one template file; problems carry the line they point at."""
    try:
        document, line_of = yamlio.load(data)
    except yamlio.YAMLProblem as exc:
        return TemplateFile(None, (Problem(relpath, exc.line, exc.message),))
    if not isinstance(document, dict):
        return TemplateFile(None, (Problem(relpath, 1, "a messaging template file must be a YAML mapping"),))
    try:
        valid = TemplateFileSchema().load(document)
    except ValidationError as exc:
        return TemplateFile(None, tuple(Problem(relpath, line_of(loc), f"{'.'.join(map(str, loc)) or 'file'}: {msg}")
                                        for loc, msg in flatten_messages(exc.messages)))
    if valid.get("type", template_type) != template_type:
        return TemplateFile(None, (Problem(relpath, line_of(["type"]), f"type: {valid['type']!r} differs from the "
                                                                      f"file name (expected {template_type!r})"),))
    content = valid["content"]
    template = MessagingTemplate(template_type, content["subject"], content["body"], valid["is_enabled"])
    problem = _sample_problem(template)
    if problem is not None:
        return TemplateFile(None, (Problem(relpath, line_of(["content"]), problem),))
    return TemplateFile(template)


def _sample_problem(template: MessagingTemplate) -> str | None:
    """Why the template cannot be used with the sample parameters (it renders too much), or None."""
    sample = body_params.load_body_params(template.type, body_params.SAMPLE_PARAMS[template.type])
    values = variables.placeholders_of(template.type, sample)
    try:
        messaging_templates.substitute(template.subject, values)
        messaging_templates.substitute(template.body, values)
    except messaging_templates.TooLarge as exc:
        return f"content: {exc} with the sample parameters (not used)"
    return None


def dump(template: MessagingTemplate) -> bytes:
    """The file for a template: a comment naming its placeholders, then fides' template body."""
    names = ", ".join(variables.placeholder_names(template.type)) or "none"
    header = (f"# fides messaging template for {template.type} (GET/PUT /api/v1/messaging/templates).\n"
              f"# Placeholders: {names}. is_enabled: false sends the built-in template instead.\n")
    document = {"type": template.type, "is_enabled": template.enabled, "content": template.content}
    return header.encode() + yamlio.dump(document)
