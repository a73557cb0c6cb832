"""One JSON error shape for every failure: {"detail": ...} (contract section 4), from one set of handlers.

Views and the code below them raise; this module alone knows which HTTP status each kind of
failure is, so an answer is the same wherever the failure happened.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, jsonify
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, InternalServerError

from fidesmail.core import exceptions
from fidesmail.providers.mailgun import failures
from fidesmail.tree.documents import flatten_messages

log = logging.getLogger("fidesmail.web.errors")

# webargs' names for where a value came from -> the contract's names.
_LOCATIONS = {"json": "body", "form": "body", "query": "query", "querystring": "query",
              "view_args": "path", "path": "path", "headers": "header"}

# marshmallow's default messages -> a stable machine-readable type.
_TYPES = {
    "Missing data for required field.": "missing",
    "Unknown field.": "extra_forbidden",
    "Field may not be null.": "none_forbidden",
    "Not a valid string.": "string_type",
    "Not a valid boolean.": "bool_type",
    "Not a valid integer.": "int_type",
    "Not a valid number.": "number_type",
    "Not a valid list.": "list_type",
    "Not a valid mapping type.": "dict_type",
    "Invalid input type.": "dict_type",
    "Not a valid URL.": "url",
}

# The most specific class first: MailgunTimeout before MailgunError.
_STATUSES = (
    (exceptions.Unauthenticated, 401),
    (exceptions.NotVerified, 401),  # no WWW-Authenticate: a bearer token would not help
    (exceptions.NotAuthorized, 403),
    (exceptions.Forbidden, 403),
    (exceptions.NotFound, 404),
    (exceptions.Conflict, 409),
    (exceptions.PreconditionFailed, 412),
    (exceptions.Invalid, 422),
    (exceptions.TooManyRequests, 429),
    (exceptions.Unavailable, 503),
    (failures.MailgunTimeout, 504),
    (failures.MailgunError, 502),
)


# Where fidesops answered a validation error, its clients read pydantic v1's words: marshmallow's
# are put in those words in every answer (contract section 4); `type` stays the one named above.
_FIDESOPS_WORDS = {
    "Missing data for required field.": "field required",
    "Unknown field.": "extra fields not permitted",
}
_ONE_OF = re.compile(r"Must be one of: (.+)\.", re.DOTALL)  # marshmallow's OneOf, and ServiceType's


def fidesops_words(msg: str) -> str:
    """A marshmallow message as pydantic v1 (fidesops) said it; other messages unchanged."""
    if msg in _FIDESOPS_WORDS:
        return _FIDESOPS_WORDS[msg]
    one_of = _ONE_OF.fullmatch(msg)
    if one_of:
        permitted = ", ".join(repr(choice) for choice in one_of.group(1).split(", "))
        return f"value is not a valid enumeration member; permitted: {permitted}"
    return msg


class ProblemSchema(Schema):
    """One validation problem."""

    loc = fields.List(fields.Raw(), metadata={"description": "Where: 'body', 'query', 'path' or 'header', then "
                                                              "the field path"})
    msg = fields.String()
    type = fields.String()


class ErrorSchema(Schema):
    """Every error answer: `detail` is a sentence, or for 422 a list of problems."""

    detail = fields.Raw(required=True, metadata={
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}}]})


def validation_detail(messages, location: str = "body") -> list[dict]:
    """Marshmallow/webargs messages as the contract's list of {loc, msg, type}."""
    problems = []
    for loc, msg in flatten_messages(messages):
        if loc and loc[0] in _LOCATIONS and location == "auto":
            where, loc = _LOCATIONS[loc[0]], loc[1:]
        else:
            where = location
        problems.append({"loc": [where, *loc], "msg": fidesops_words(msg), "type": _error_type(msg)})
    return problems


def _error_type(msg: str) -> str:
    if msg in _TYPES:
        return _TYPES[msg]
    if msg.startswith("Must be one of"):
        return "enum"
    if msg.startswith(("Shorter than", "Longer than", "Length must")):
        return "length"
    if msg.startswith(("Must be greater", "Must be less", "Must be at")):
        return "range"
    return "value_error"


def status_of(error: Exception) -> int:
    """The HTTP status the contract gives this failure."""
    return next(status for kind, status in _STATUSES if isinstance(error, kind))


def detail_of(error: Exception):
    """What the answer's `detail` says of this failure."""
    return error.detail if isinstance(error, exceptions.FidesmailError) else str(error)


def error_response(status: int, detail, headers=None, **more):
    """The contract's error answer (`more`: fields beside `detail`, such as a send's message_id)."""
    response = jsonify(detail=detail, **{name: value for name, value in more.items() if value is not None})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def handle_known(error: Exception):
    """A failure of the service's own kinds (refusals, Mailgun's answers) as its contract answer."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, exceptions.Unauthenticated) else None
    return error_response(status_of(error), detail_of(error), headers)


def handle_http_exception(error: HTTPException):
    """Every HTTPException, including flask-smorest's validation aborts, as {"detail": ...}."""
    data = getattr(error, "data", None) or {}
    headers = data.get("headers") or {}
    if "detail" in data:
        return error_response(error.code, data["detail"], headers)
    messages = data.get("messages")
    if error.code == 422 and messages:
        return error_response(422, validation_detail(messages, "auto"), headers)
    if error.code == 400 and messages:
        return error_response(400, "Malformed JSON body: the request body could not be parsed as JSON.")
    if isinstance(error, InternalServerError):
        return handle_unexpected(error.original_exception or error)
    if error.code == 413:
        return error_response(413, "Request body too large: the limit is 1 MiB.")
    if error.code == 405:
        headers = dict(error.get_headers())
        headers.pop("Content-Type", None)
        return error_response(405, "Method Not Allowed", {"Allow": headers.get("Allow", "")})
    return error_response(error.code or 500, error.name)


def handle_unexpected(error: BaseException):
    """A bug: log it for the operator, answer without a trace."""
    log.error("unhandled error while serving a request: %s", type(error).__name__, exc_info=error)
    return error_response(500, "Internal Server Error")


def register(app: Flask) -> None:
    """Route every error of `app` to the JSON shape."""
    app.register_error_handler(exceptions.FidesmailError, handle_known)
    app.register_error_handler(failures.MailgunError, handle_known)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
