"""Action type -> email (subject, html, text): body_params schemas and Jinja2 rendering."""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.validate import Length, Range, Regexp

from fidesmail.problems import Problem

ACTION_TYPES = (
    "subject_identity_verification",
    "consent_request",
    "privacy_request_receipt",
    "privacy_request_complete_access",
    "privacy_request_complete_deletion",
    "privacy_request_review_approve",
    "privacy_request_review_deny",
    "email_erasure_fulfillment",
    "test_message",
)
PARTS = (".subject.txt", ".html", ".txt")
BUILTIN_DIR = Path(__file__).with_name("templates")
_ERASURE_ITEMS = "dataset_collection_action_required"


class UnknownActionType(ValueError):
    """An action type outside ACTION_TYPES."""


class TemplateRenderError(jinja2.TemplateError):
    """A template that does not compile or render; the message names the file and line."""

    def __init__(self, name: str, line: int | None, reason: str):
        self.name = name
        self.line = line
        self.reason = reason
        super().__init__(f"{name}:{line}: {reason}" if line else f"{name}: {reason}")


@dataclass(frozen=True)
class Message:
    """One rendered email."""

    subject: str
    html: str
    text: str
    tag: str


# --- body_params schemas -------------------------------------------------------------------


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=Length(1, max_length), **kwargs)


class _Scalars(fields.Field):
    """One JSON scalar or a list of them (fidesops' locator values), loaded as a list."""

    def _deserialize(self, value, attr, data, **kwargs):
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, (str, int, float)) for v in values):
            raise ValidationError("Must be a string, a number, or a non-empty list of them.")
        return values


class _CollectionAddressSchema(_Strict):
    dataset = _text(200, required=True)
    collection = _text(200, required=True)


class _CollectionAddress(fields.Field):
    """{"dataset": ..., "collection": ...}, or fidesops' string form "dataset:collection"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            dataset, colon, collection = value.partition(":")
            if not colon:
                raise ValidationError('Must be {"dataset": ..., "collection": ...} or "dataset:collection".')
            value = {"dataset": dataset, "collection": collection}
        return _CollectionAddressSchema().load(value)


class VerificationParams(_Strict):
    verification_code = fields.String(
        required=True, validate=Regexp(r"^[0-9]{1,32}\Z", error="Must contain digits only (1 to 32 of them).")
    )
    verification_code_ttl_seconds = fields.Integer(strict=True, required=True, validate=Range(min=1))


class ReceiptParams(_Strict):
    request_types = fields.List(_text(100), required=True, validate=Length(1, 20))


class AccessCompleteParams(_Strict):
    download_links = fields.List(
        fields.Url(schemes={"http", "https"}, validate=Length(max=2048)), required=True, validate=Length(1, 100)
    )


class ReviewDenyParams(_Strict):
    rejection_reason = fields.String(load_default=None, allow_none=True, validate=Length(max=2000))


class NoParams(_Strict):
    pass


class ManualActionSchema(_Strict):
    """fidesops' ManualAction: how to find the records, and which fields to erase (and how)."""

    locators = fields.Dict(keys=_text(200), values=_Scalars(), required=True, validate=Length(min=1))
    get = fields.List(_text(200), load_default=None, allow_none=True)
    update = fields.Dict(keys=_text(200), values=fields.String(allow_none=True), load_default=None, allow_none=True)


class CheckpointActionRequiredSchema(_Strict):
    """fidesops' CheckpointActionRequired for one collection."""

    step = _text(100, load_default="erasure")
    collection = _CollectionAddress(required=True)
    action_needed = fields.List(fields.Nested(ManualActionSchema), load_default=None, allow_none=True)


class ErasureFulfillmentParams(_Strict):
    """Erasure instructions to a data processor (fidesops sent the bare list of collections)."""

    controller = _text(200, load_default=None, allow_none=True)
    third_party_vendor_name = _text(200, load_default=None, allow_none=True)
    identities = fields.Dict(keys=_text(100), values=_text(500), load_default=dict)
    dataset_collection_action_required = fields.List(
        fields.Nested(CheckpointActionRequiredSchema), required=True, validate=Length(1, 500)
    )


BODY_PARAMS_SCHEMAS: dict[str, Schema] = {
    "subject_identity_verification": VerificationParams(),
    # fidesops sent consent requests the same one-time-code email.
    "consent_request": VerificationParams(),
    "privacy_request_receipt": ReceiptParams(),
    "privacy_request_complete_access": AccessCompleteParams(),
    "privacy_request_complete_deletion": NoParams(),
    "privacy_request_review_approve": NoParams(),
    "privacy_request_review_deny": ReviewDenyParams(),
    "email_erasure_fulfillment": ErasureFulfillmentParams(),
    "test_message": NoParams(),
}

SAMPLE_PARAMS: dict[str, dict] = {
    "subject_identity_verification": {"verification_code": "123456", "verification_code_ttl_seconds": 600},
    "consent_request": {"verification_code": "123456", "verification_code_ttl_seconds": 600},
    "privacy_request_receipt": {"request_types": ["access", "erasure"]},
    "privacy_request_complete_access": {"download_links": ["https://example.com/download/1"]},
    "privacy_request_complete_deletion": {},
    "privacy_request_review_approve": {},
    "privacy_request_review_deny": {"rejection_reason": "We could not verify your identity."},
    "email_erasure_fulfillment": {
        "controller": "Example Inc.",
        "identities": {"email": "subject@example.com"},
        _ERASURE_ITEMS: [
            {
                "collection": {"dataset": "crm", "collection": "customers"},
                "action_needed": [{"locators": {"email": ["subject@example.com"]}, "update": {"name": None}}],
            }
        ],
    },
    "test_message": {},
}


def load_body_params(action_type: str, raw) -> dict:
    """Validate body_params for an action type; ValidationError messages are keyed by field."""
    schema = BODY_PARAMS_SCHEMAS.get(action_type)
    if schema is None:
        raise UnknownActionType(f"unknown action type {action_type!r}")
    if action_type == "email_erasure_fulfillment" and isinstance(raw, list):
        # fidesops posted the list of CheckpointActionRequired itself as body_params.
        try:
            return schema.load({_ERASURE_ITEMS: raw})
        except ValidationError as exc:
            raise ValidationError(exc.messages[_ERASURE_ITEMS]) from None
    return schema.load({} if raw is None else raw)


# --- rendering -----------------------------------------------------------------------------

_OPTIONS = {
    "autoescape": jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    # A missing variable is a template bug to report, not an empty string in someone's inbox.
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
}
_BUILTIN = jinja2.Environment(loader=jinja2.FileSystemLoader(BUILTIN_DIR), auto_reload=False, **_OPTIONS)


@lru_cache(maxsize=16)
def _override_env(directory: str) -> jinja2.Environment:
    # auto_reload makes Jinja's template cache check each file's mtime: edits show up at once.
    return ImmutableSandboxedEnvironment(loader=jinja2.FileSystemLoader(directory), auto_reload=True, **_OPTIONS)


def _where(name: str, overrides_dir: Path | None) -> str:
    return f"{overrides_dir.name}/{name}" if overrides_dir else f"built-in {name}"


def _template_line(exc: BaseException, filename: str | None) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if filename and frame.f_code.co_filename == filename:
            line = lineno
    return line


def _template(name: str, overrides_dir: Path | None) -> tuple[jinja2.Template, Path | None]:
    if overrides_dir is not None:
        try:
            return _override_env(os.fspath(overrides_dir)).get_template(name), overrides_dir
        except jinja2.TemplateNotFound:
            pass
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateRenderError(_where(name, overrides_dir), exc.lineno, exc.message or "syntax error") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateRenderError(_where(name, overrides_dir), None, f"cannot read: {exc}") from None
    return _BUILTIN.get_template(name), None


def _render_part(action_type: str, part: str, context: dict, overrides_dir: Path | None) -> str:
    name = action_type + part
    template, source_dir = _template(name, overrides_dir)
    try:
        return template.render(context)
    except Exception as exc:  # any failure of template code is reported, never leaked as a traceback
        reason = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
        raise TemplateRenderError(_where(name, source_dir), _template_line(exc, template.filename), reason) from None


def _context(action_type: str, params: dict) -> dict:
    context = dict(params, action_type=action_type)
    if "verification_code_ttl_seconds" in params:
        context["verification_code_ttl_minutes"] = params["verification_code_ttl_seconds"] // 60
    return context


def render(action_type: str, params, overrides_dir: Path | None = None) -> Message:
    """Validate params and render the action type's email, preferring files in overrides_dir.

    Raises UnknownActionType, ValidationError (bad params) or TemplateRenderError.
    """
    context = _context(action_type, load_body_params(action_type, params))
    # Whitespace runs (CR/LF included) become one space: a subject is one header line.
    subject = " ".join(_render_part(action_type, ".subject.txt", context, overrides_dir).split())
    if not subject:
        raise TemplateRenderError(_where(action_type + ".subject.txt", overrides_dir), None, "the subject is empty")
    return Message(
        subject=subject,
        html=_render_part(action_type, ".html", context, overrides_dir),
        text=_render_part(action_type, ".txt", context, overrides_dir),
        tag=action_type,
    )


def check_overrides(overrides_dir: Path) -> list[Problem]:
    """Render every override file in overrides_dir with sample params; one Problem per failure."""
    if not overrides_dir.is_dir():
        return []
    parts = {action + part: (action, part) for action in ACTION_TYPES for part in PARTS}
    problems = []
    for path in sorted(overrides_dir.iterdir()):
        where = f"{overrides_dir.name}/{path.name}"
        # Names starting with "_" are partials for {% include %} / {% extends %}.
        if path.name.startswith((".", "_")) or path.is_dir():
            continue
        if path.name not in parts:
            problems.append(Problem(where, 1, "not a template name: expected <action_type>.html, .txt or .subject.txt"))
            continue
        action_type, part = parts[path.name]
        context = _context(action_type, load_body_params(action_type, SAMPLE_PARAMS[action_type]))
        try:
            _render_part(action_type, part, context, overrides_dir)
        except TemplateRenderError as exc:
            problems.append(Problem(exc.name, exc.line or 1, exc.reason))
    return problems
