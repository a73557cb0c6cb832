"""Liveness and the config tree's state, without auth and without secrets."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from .. import auth
from . import current_store

blp = Blueprint("health", __name__, description="Health and reload")


class TreeProblemSchema(Schema):
    path = fields.String()
    line = fields.Integer()
    message = fields.String()


class ReloadSchema(Schema):
    at = fields.String(metadata={"description": "When the served state was loaded (UTC, ISO 8601)"})
    ok = fields.Boolean(metadata={"description": "False when a file was refused (its last good state is kept)"})
    problems = fields.List(fields.Nested(TreeProblemSchema))


class HealthSchema(Schema):
    status = fields.String()
    configs_loaded = fields.Integer()
    read_only = fields.Boolean()
    last_reload = fields.Nested(ReloadSchema)


def health_body(store, snapshot) -> dict:
    """What /health and /reload answer: counts and the last reload's outcome, never a secret."""
    return {
        "status": "healthy",
        "configs_loaded": len(snapshot.keys),
        "read_only": store.read_only,
        "last_reload": {
            "at": datetime.fromtimestamp(snapshot.loaded_at, UTC).isoformat(timespec="seconds"),
            "ok": snapshot.ok,
            "problems": [p.as_dict() for p in snapshot.problems],
        },
    }


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Always 200 while serving: the number of configs loaded and the last reload's outcome."""
        store = current_store()
        return health_body(store, store.snapshot())


@blp.route("/api/v1/reload")
class Reload(MethodView):
    @auth.require(auth.CREATE_OR_UPDATE)
    @blp.response(200, HealthSchema)
    def post(self):
        """Re-read the config tree now."""
        store = current_store()
        return health_body(store, store.reload_everywhere())


@blp.route("/metrics")
class Metrics(MethodView):
    @auth.require(auth.READ)
    @blp.response(200, content_type="text/plain; version=0.0.4",
                  description="Prometheus text format, summed over every worker")
    def get(self):
        """Requests, sends, Mailgun latency, reloads and configs loaded, for Prometheus."""
        body, content_type = current_app.extensions["fidesmail.metrics"].exposition()
        return Response(body, content_type=content_type)
