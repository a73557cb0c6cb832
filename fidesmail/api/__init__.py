"""HTTP blueprints; each module holds one concern."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser, abort, is_json_request

from ..store import Store


class _JSONBodyParser(FlaskParser):
    """A body that is not declared as JSON is a 422, as in fidesops (FastAPI)."""

    def load_json(self, req, schema):
        if req.get_data(cache=True) and not is_json_request(req):
            abort(422, detail=[{"loc": ["body"], "msg": "Expected a JSON body (Content-Type: application/json).",
                                "type": "content_type"}])
        return super().load_json(req, schema)


class Blueprint(_Blueprint):
    """flask-smorest's Blueprint with the contract's body rules."""

    ARGUMENTS_PARSER = _JSONBodyParser()


def current_store() -> Store:
    """The store of the running app."""
    return current_app.extensions["fidesmail.store"]
