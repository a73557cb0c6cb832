"""fides' messaging templates API (fides 2.78.2's paths, bodies, statuses and words), over the config tree.

A template set here is the file `templates/messaging/<type>.yaml` (tree/messaging_files.py), which a
pull request can change too; its id is its type. What fides answers differently because of that:
a template that says fides' default wording is no file (the built-in template says it already), and
deleting one is allowed (the type goes back to its built-in template; fides refuses to delete the only
template of a type, and in fidesmail the built-in one always stays).
"""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from marshmallow import Schema, fields
from webargs import core as webargs_core

from fidesmail.content import body_params, messaging_templates, variables
from fidesmail.content.messaging_templates import DEFAULTS, TEMPLATE_TYPES, MessagingTemplate
from fidesmail.core.exceptions import Invalid, NotFound, NotSupported
from fidesmail.core.validation import fides_problem, one_of_words
from fidesmail.tree import messaging_files
from fidesmail.web import context
from fidesmail.web.blueprint import Blueprint
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.messaging_scopes import PREFIX, require

blp = Blueprint("messaging_templates", __name__, url_prefix=PREFIX, description="fides' messaging templates")
_UNEXPECTED = "Unexpected error updating template."  # fides' words for an item it could not store
_TEXT_LIMIT = 100_000


class TemplateContentSchema(Schema):
    subject = fields.String(metadata={"description": "With __VARIABLE__ placeholders; empty: fides' default"})
    body = fields.String(metadata={"description": "Plain text with __VARIABLE__ placeholders; empty: fides' "
                                                  "default"})


class TemplateRequestSchema(Schema):
    type = fields.String(required=True, metadata={"description": "One of " + ", ".join(TEMPLATE_TYPES)})
    content = fields.Nested(TemplateContentSchema, required=True)


class TemplateSchema(TemplateRequestSchema):
    label = fields.String()


class FailedSchema(Schema):
    message = fields.String()
    data = fields.Dict()


class BulkAnswerSchema(Schema):
    succeeded = fields.List(fields.Nested(TemplateSchema))
    failed = fields.List(fields.Nested(FailedSchema))


class DefaultTemplateSchema(Schema):
    type = fields.String()
    is_enabled = fields.Boolean()
    content = fields.Nested(TemplateContentSchema)


class TemplateDetailSchema(Schema):
    id = fields.String(metadata={"description": "The template's type: its file is templates/messaging/<id>.yaml"})
    type = fields.String()
    is_enabled = fields.Boolean(metadata={"description": "false: sends use the built-in template of the type"})
    properties = fields.List(fields.Dict(), metadata={"description": "Always empty (fides' properties are a "
                                                                    "fides Plus feature)"})
    content = fields.Nested(TemplateContentSchema)


def _listed(template_type: str, content: dict) -> dict:
    return {"type": template_type, "content": content, "label": DEFAULTS[template_type][0]}


def _request_items() -> list[dict]:
    """PUT's body: a list of {"type": str, "content": {...}}; 422 in fides' words otherwise."""
    body = Blueprint.ARGUMENTS_PARSER.load_json(request, None)
    if body is webargs_core.missing:
        raise Invalid([fides_problem(["body"], "Missing data for required field.")])
    if not isinstance(body, list):
        raise Invalid([fides_problem(["body"], "Not a valid list.")])
    problems = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            problems.append({"type": "model_type", "loc": ["body", index], "msg": "Input should be a valid "
                             "dictionary or instance of BasicMessagingTemplateRequest"})
            continue
        for name, kind, message in (("type", str, "Not a valid string."), ("content", dict, "Invalid input type.")):
            if name not in item:
                problems.append(fides_problem(["body", index, name], "Missing data for required field."))
            elif not isinstance(item[name], kind):
                problems.append(fides_problem(["body", index, name], message))
    if problems:
        raise Invalid(problems)
    return [{"type": item["type"], "content": item["content"]} for item in body]


class _Refused(ValueError):
    """An item of a PUT that is not stored; its message is what the answer's `failed` says."""


def _template_of(item: dict, served: MessagingTemplate | None) -> MessagingTemplate:
    """The template an item of a PUT asks for (empty parts: fides' default); _Refused when it cannot be one."""
    template_type, content = item["type"], item["content"]
    if template_type not in TEMPLATE_TYPES:
        raise _Refused("Invalid template type.")
    if "subject" not in content or "body" not in content:
        raise _Refused(_UNEXPECTED)  # what fides answers (its KeyError)
    _, default_subject, default_body = DEFAULTS[template_type]
    parts = []
    for value, default in ((content["subject"], default_subject), (content["body"], default_body)):
        if value is not None and not isinstance(value, str):
            raise _Refused(_UNEXPECTED)  # fides stores it, then fails at every send
        if value and len(value) > _TEXT_LIMIT:
            raise _Refused(f"A subject or body may have at most {_TEXT_LIMIT} characters.")
        parts.append(value if value and value.strip() else default)
    # A template already in the tree keeps its is_enabled (a reviewer may have set it); a new one is used.
    template = MessagingTemplate(template_type, *parts, enabled=served.enabled if served else True)
    sample = body_params.load_body_params(template_type, body_params.SAMPLE_PARAMS[template_type])
    try:
        for text in parts:
            messaging_templates.substitute(text, variables.placeholders_of(template_type, sample))
    except messaging_templates.TooLarge as exc:
        raise _Refused(f"The template {exc} with the sample parameters.") from None
    return template


@blp.route("/templates")
class Templates(MethodView):
    @require("GET", "/templates")
    @blp.response(200, TemplateSchema(many=True))
    def get(self):
        """Every template fides lets its admin UI change: the tree's wording, else fides' default."""
        served = context.current().store.snapshot().messaging_templates
        return [_listed(t, (served[t] if t in served else messaging_templates.default_template(t)).content)
                for t in TEMPLATE_TYPES]

    @require("PUT", "/templates")
    @blp.documented_arguments(TemplateRequestSchema(many=True))
    @blp.response(200, BulkAnswerSchema)
    def put(self):
        """Set templates (files in templates/messaging/).

        An empty subject or body is fides' default, and a template that says fides' default wording is no file
        (the built-in template is used)."""
        items = _request_items()
        store = context.current().store
        succeeded, failed = [], []

        def write(snapshot):
            current = dict(snapshot.messaging_templates)  # as the files are now, item after item
            for item in items:
                try:
                    template = _template_of(item, current.get(item["type"]))
                except _Refused as exc:
                    failed.append({"message": str(exc), "data": item})
                    continue
                if template.is_default:
                    store.delete_messaging_template(template.type)
                    current.pop(template.type, None)
                elif template != current.get(template.type):
                    store.save_messaging_template(template)
                    current[template.type] = template
                succeeded.append(_listed(template.type, template.content))

        store.write(write)
        return {"succeeded": succeeded, "failed": failed}


@blp.route("/templates/default/<template_type>")
class DefaultTemplate(MethodView):
    @require("GET", "/templates/default/<template_type>")
    @blp.response(200, DefaultTemplateSchema)
    @blp.alt_response(400, schema=ErrorSchema, description="fides has no default template for this action type")
    def get(self, template_type):
        """fides' default wording of a template type."""
        if template_type not in messaging_templates.FIDES_ACTION_TYPES:
            raise Invalid([{"type": "enum", "loc": ["path", "template_type"],
                            "msg": one_of_words(messaging_templates.FIDES_ACTION_TYPES)}])
        if template_type not in TEMPLATE_TYPES:
            raise NotSupported(f"Messaging template type {template_type} is not supported.")
        return {"type": template_type, "is_enabled": False,
                "content": messaging_templates.default_template(template_type).content}


@blp.route("/templates/<template_id>")
class Template(MethodView):
    @require("GET", "/templates/<template_id>")
    @blp.response(200, TemplateDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No template with this id")
    def get(self, template_id):
        """One template of the tree (its id is its type)."""
        template = context.current().store.snapshot().messaging_templates.get(template_id)
        if template is None:
            raise NotFound(f"No messaging template found with id {template_id}")
        return {"id": template.type, "type": template.type, "is_enabled": template.enabled, "properties": [],
                "content": template.content}

    @require("DELETE", "/templates/<template_id>")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="No template with this id")
    def delete(self, template_id):
        """Remove a template's file: sends of its type use the built-in template again."""
        store = context.current().store

        def remove(snapshot):
            known = template_id in TEMPLATE_TYPES and (template_id in snapshot.messaging_templates or (
                store.config_dir / messaging_files.relpath_of(template_id)).exists())
            if not known or not store.delete_messaging_template(template_id):
                raise NotFound(f"No messaging template found with id {template_id}")

        store.write(remove)
        return Response(status=204)
