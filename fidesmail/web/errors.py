"""One JSON error shape for every failure: {"detail": ...} (contract section 4), from one set of handlers.

Views and the code below them raise; this module alone knows which HTTP status each kind of
failure is, so an answer is the same wherever the failure happened.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, InternalServerError

from fidesmail.core import exceptions, outcomes
from fidesmail.core.validation import fides_detail, validation_detail
from fidesmail.web.messaging_scopes import PREFIX as FIDES_PREFIX

log = logging.getLogger("fidesmail.errors")

# Refusals, the most specific class first.
_STATUSES = (
    (exceptions.Unauthenticated, 401),
    (exceptions.NotVerified, 401),  # no WWW-Authenticate: a bearer token would not help
    (exceptions.NotAuthorized, 403),
    (exceptions.Forbidden, 403),
    (exceptions.NotFound, 404),
    (exceptions.Conflict, 409),
    (exceptions.PreconditionFailed, 412),
    (exceptions.Invalid, 422),
    (exceptions.NotSupported, 400),
    (exceptions.TooManyRequests, 429),
    (exceptions.Unavailable, 503),
)

# A send's result (core.outcomes) as an answer: a provider that refused, or could not be reached, is a bad
# gateway; one that may still have the message (no answer in time) is a gateway timeout.
_RESULT_STATUSES = {
    outcomes.SENT: 200,
    outcomes.QUEUED_FOR_LATER: 202,
    outcomes.REFUSED: 502,
    outcomes.UNREACHABLE: 502,
    outcomes.BAD_ANSWER: 502,
    outcomes.GAVE_UP: 502,
    outcomes.TIMEOUT: 504,
    outcomes.INTERRUPTED: 504,
}


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


def status_of(error: Exception) -> int:
    """The HTTP status the contract gives this failure."""
    return next(status for kind, status in _STATUSES if isinstance(error, kind))


def status_of_result(result: str) -> int:
    """The HTTP status the contract gives a send that came to `result`."""
    return _RESULT_STATUSES[result]


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
    headers = None
    if isinstance(error, exceptions.Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, exceptions.TooManyRequests) and error.retry_after is not None:
        headers = {"Retry-After": str(error.retry_after)}
    return error_response(status_of(error), detail_of(error), headers)


def problems_of(messages) -> list[dict]:
    """Validation messages as the request's API words them: fides' under /api/v1/messaging (its clients read
    pydantic v2's words, contract section 16), else fidesops'."""
    if request.path == FIDES_PREFIX or request.path.startswith(FIDES_PREFIX + "/"):
        return fides_detail(messages, "auto")
    return validation_detail(messages, "auto")


def handle_http_exception(error: HTTPException):
    """Every HTTPException, including flask-smorest's validation aborts, as {"detail": ...}."""
    data = getattr(error, "data", None) or {}
    headers = data.get("headers") or {}
    if "detail" in data:
        return error_response(error.code, data["detail"], headers)
    messages = data.get("messages")
    if error.code == 422 and messages:
        return error_response(422, problems_of(messages), headers)
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
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
