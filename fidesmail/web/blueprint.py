"""HTTP blueprints; each module holds one concern."""

from __future__ import annotations

import functools
import json
import re

from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.routing import UnicodeConverter

from fidesmail.core.exceptions import NotFound
from fidesmail.web import context

NUL_MESSAGE = "NUL characters are not allowed."


def nul_problems(where: str, data) -> list[dict]:
    """A problem for every string (key or value) in `data` holding a NUL character: no database, file or
    header can keep one (PostgreSQL refuses it outright), so it is refused at the edge, for every input."""
    problems, stack = [], [([where], data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                problems.append({"loc": loc, "msg": NUL_MESSAGE, "type": "value_error"})
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    problems.append({"loc": loc, "msg": NUL_MESSAGE, "type": "value_error"})
                stack.append(([*loc, key], item))
        elif isinstance(value, list):
            stack.extend(([*loc, index], item) for index, item in enumerate(value))
    return sorted(problems, key=lambda problem: [str(part) for part in problem["loc"]])


class PathSegment(UnicodeConverter):
    """A path parameter (`<message_id>`, `<key>`): any characters but `/` and NUL, so a path holding a NUL
    matches no route and is a 404 before any view or database sees it."""

    def __init__(self, url_map, minlength=1, maxlength=None, length=None):
        super().__init__(url_map, minlength, maxlength, length)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]")


def _refuse_nul(where: str, data):
    problems = nul_problems(where, data)
    if problems:
        abort(422, detail=problems)
    return data


class _JSONBodyParser(FlaskParser):
    """A body that is not declared as JSON is a 422, as in fidesops (FastAPI); a NUL character in any body
    field, query parameter or form field is a 422 (and in a path a 404: see PathSegment), whatever the
    database."""

    refuse_nul_in_body = True

    def load_json(self, req, schema):
        if req.get_data(cache=True) and not is_json_request(req):
            abort(422, detail=[{"loc": ["body"], "msg": "Expected a JSON body (Content-Type: application/json).",
                                "type": "content_type"}])
        data = super().load_json(req, schema)
        return _refuse_nul("body", data) if self.refuse_nul_in_body else data

    def load_querystring(self, req, schema):
        _refuse_nul("query", {key: "".join(req.args.getlist(key)) for key in req.args})
        return super().load_querystring(req, schema)

    def load_form(self, req, schema):
        if self.refuse_nul_in_body:
            _refuse_nul("body", {key: "".join(req.form.getlist(key)) for key in req.form})
        return super().load_form(req, schema)

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


class _ProviderBodyParser(_JSONBodyParser):
    """A provider's webhook body is its own words (an MTA's diagnostic may hold any byte): its intake reads
    only checked names and ids from it and keeps text printable, so a genuine event is never refused (and
    retried for hours, then lost) for a NUL somewhere in it. Query and path keep the edge's rule."""

    refuse_nul_in_body = False


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

    @staticmethod
    def doc(**kwargs):
        """Document an operation (parameters, summary); no wrapper (flask-smorest's only calls through, asking
        Flask each time whether the view is a coroutine)."""
        return _document_only(_Blueprint.doc(**kwargs))

    def alt_response(self, *args, **kwargs):
        """Document another answer; no wrapper (flask-smorest's only calls through, checking for a coroutine
        each time): these answers come from raised exceptions, turned into JSON by errors.py."""
        return _document_only(super().alt_response(*args, **kwargs))

    def documented_arguments(self, *args, **kwargs):
        """`arguments()` for a view that reads its body itself (to answer in another API's words): documentation
        only."""
        return _document_only(super().arguments(*args, **kwargs))

    def documented_response(self, *args, **kwargs):
        """`response()` for a view that returns a ready Response itself: documentation only."""
        return _document_only(super().response(*args, **kwargs))

    def parse_body(self, schema):
        """The JSON body loaded with `schema`, refused as `arguments()` refuses one (422 with each problem)."""
        return self.ARGUMENTS_PARSER.parse(schema, location="json")


class ProviderBlueprint(Blueprint):
    """The blueprint of the providers' webhooks (see _ProviderBodyParser)."""

    ARGUMENTS_PARSER = _ProviderBodyParser()


def config_must_exist(view):
    """Decorate a {key} view: 404 for a config that does not exist, before its body is parsed or judged
    (contract section 5). Goes between auth.require (401/403 come first) and blp.arguments."""

    @functools.wraps(view)  # keeps flask-smorest's _apidoc
    def checked(*args, key, **kwargs):
        if key not in context.current().store.snapshot().configs:
            raise NotFound(f"No email config found with key {key}")
        return view(*args, key=key, **kwargs)

    return checked
