"""HTTP blueprints; each module holds one concern."""

from __future__ import annotations

import functools
import json
import re

from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser, abort, is_json_request

from fidesmail.core.exceptions import NotFound
from fidesmail.web import context


class _JSONBodyParser(FlaskParser):
    """A body that is not declared as JSON is a 422, as in fidesops (FastAPI)."""

    def load_json(self, req, schema):
        if req.get_data(cache=True) and not is_json_request(req):
            abort(422, detail=[{"loc": ["body"], "msg": "Expected a JSON body (Content-Type: application/json).",
                                "type": "content_type"}])
        return super().load_json(req, schema)

    def _raw_load_json(self, req):
        """JSON that Python can decode but the service cannot hold is malformed too (400, not a 500):
        nesting deeper than the interpreter's recursion limit, numbers too long to convert, and strings
        with a lone surrogate ("\\ud800"), which no UTF-8 file, log line or Mailgun form field can carry."""
        try:
            data = super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "<body>", 0) from None
        except json.JSONDecodeError:
            raise
        except ValueError:  # a number of more than 4,300 digits: Python refuses to convert it
            raise json.JSONDecodeError("a number too long to convert", "<body>", 0) from None
        if _ESCAPED_SURROGATE.search(req.get_data(cache=True)) and not _all_unicode(data):
            raise json.JSONDecodeError("a string is not Unicode text (lone surrogate)", "<body>", 0)
        return data


_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _all_unicode(data) -> bool:
    """False when any string (key or value) in decoded JSON holds a lone surrogate."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _document_only(decorate):
    """flask-smorest's decorator for its documentation, without the call layer it wraps around the view."""

    def decorator(func):
        func._apidoc = decorate(func)._apidoc
        return func

    return decorator


class Blueprint(_Blueprint):
    """flask-smorest's Blueprint with the contract's body rules, and no call layers where none is needed."""

    ARGUMENTS_PARSER = _JSONBodyParser()

    def alt_response(self, *args, **kwargs):
        """Document another answer; no wrapper (flask-smorest's only calls through, checking for a coroutine
        each time): these answers come from raised exceptions, turned into JSON by errors.py."""
        return _document_only(super().alt_response(*args, **kwargs))

    def documented_response(self, *args, **kwargs):
        """`response()` for a view that returns a ready Response itself: documentation only."""
        return _document_only(super().response(*args, **kwargs))


def config_must_exist(view):
    """Decorate a {key} view: 404 for a config that does not exist, before its body is parsed or judged
    (contract section 5). Goes between auth.require (401/403 come first) and blp.arguments."""

    @functools.wraps(view)  # keeps flask-smorest's _apidoc
    def checked(*args, key, **kwargs):
        if key not in context.current().store.snapshot().configs:
            raise NotFound(f"No email config found with key {key}")
        return view(*args, key=key, **kwargs)

    return checked
