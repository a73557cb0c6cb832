"""Health, liveness and readiness: counts for anyone, problem details with `email:read`; never a secret.

Every answer here reads state that the readiness loop keeps (`runtime/readiness`); none runs a check itself."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from fidesmail.core.exceptions import Unauthenticated, Unavailable
from fidesmail.records.messages import now_ms
from fidesmail.web import auth, context

blp = Blueprint("health", __name__, description="Health and reload")


class TreeProblemSchema(Schema):
    path = fields.String()
    line = fields.Integer()
    message = fields.String()


class ReloadSchema(Schema):
    at = fields.String(metadata={"description": "When the served state was loaded (UTC, ISO 8601)"})
    ok = fields.Boolean(metadata={"description": "False when a file was refused (its last good state is kept)"})
    problem_count = fields.Integer()
    problems = fields.List(fields.Nested(TreeProblemSchema),
                           metadata={"description": "Only with a token of scope email:read"})


class SealingSchema(Schema):
    ok = fields.Boolean(metadata={"description": "False when seal.pub is not the keyring's newest key, or either "
                                                 "cannot be read: nothing is sealed then"})
    problem = fields.String(metadata={"description": "Only with a token of scope email:read"})


class TreeSchema(Schema):
    ok = fields.Boolean(metadata={"description": "False when the config tree cannot be read (a mount or link gone)"})
    problem = fields.String(metadata={"description": "Only with a token of scope email:read"})


class DatabaseSchema(Schema):
    ok = fields.Boolean(metadata={"description": "False when message records cannot be kept: sends answer 503"})
    problem = fields.String(metadata={"description": "Only with a token of scope email:read; names the database, "
                                                     "never its password"})


class OutboxSchema(Schema):
    ok = fields.Boolean(metadata={"description": "False when the outbox cannot be read (the database is down)"})
    queued = fields.Integer(metadata={"description": "Messages waiting to be sent or retried (every replica)"})
    sending = fields.Integer(metadata={"description": "Messages being posted to Mailgun right now"})
    oldest_queued_seconds = fields.Float(allow_none=True, metadata={
        "description": "Age of the oldest queued message; null when none is queued"})


def outbox_body(found) -> dict:
    """The queue's depth and the age of its oldest message (counts only: never an id or an address)."""
    try:
        stats = found.queue.stats()
    except Unavailable:
        return {"ok": False}
    oldest = None if stats.oldest_queued_ms is None else round(max(0, now_ms() - stats.oldest_queued_ms) / 1000, 3)
    return {"ok": True, "queued": stats.queued, "sending": stats.sending, "oldest_queued_seconds": oldest}


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "healthy while a send can work, else degraded (see not_ready)"})
    not_ready = fields.List(fields.String(), metadata={
        "description": "The parts that cannot serve sends: database, sealing, tree (empty when healthy)"})
    configs_loaded = fields.Integer()
    read_only = fields.Boolean()
    last_reload = fields.Nested(ReloadSchema)
    sealing = fields.Nested(SealingSchema)
    database = fields.Nested(DatabaseSchema)
    tree = fields.Nested(TreeSchema)
    outbox = fields.Nested(OutboxSchema)


class LiveSchema(Schema):
    status = fields.String(metadata={"description": "alive"})


class ReadySchema(Schema):
    status = fields.String(metadata={"description": "ready"})


class NotReadySchema(Schema):
    detail = fields.String(metadata={"description": "not ready: and the parts"})
    not_ready = fields.List(fields.String(), metadata={"description": "database, sealing and/or tree"})


def _may_read() -> bool:
    """True when the request carries a valid token with email:read (details are shown then)."""
    try:
        return auth.READ in auth.scopes_of_request(optional=True)
    except Unauthenticated:
        return False


def _part(problem: str | None, details: bool) -> dict:
    body = {"ok": problem is None}
    if details and problem is not None:
        body["problem"] = problem
    return body


def health_body(found, snapshot, details: bool) -> dict:
    """What /health and /reload answer: counts, the last reload's outcome and each part's readiness; never a secret."""
    reload = {
        "at": datetime.fromtimestamp(snapshot.loaded_at, UTC).isoformat(timespec="seconds"),
        "ok": snapshot.ok,
        "problem_count": len(snapshot.problems),
    }
    if details:
        reload["problems"] = [p.as_dict() for p in snapshot.problems]
    problems = found.readiness.problems()
    not_ready = found.readiness.not_ready()
    return {"status": "degraded" if not_ready else "healthy", "not_ready": not_ready,
            "configs_loaded": len(snapshot.keys), "read_only": found.store.read_only, "last_reload": reload,
            "sealing": _part(problems["sealing"], details), "database": _part(problems["database"], details),
            "tree": _part(problems["tree"], details), "outbox": outbox_body(found)}


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Always 200 while serving: healthy, or degraded naming the parts that cannot serve sends.

        Counts and the last reload's outcome for anyone; problem details with an email:read token."""
        found = context.current()
        return health_body(found, found.store.snapshot(), _may_read())


@blp.route("/livez")
class Live(MethodView):
    @blp.response(200, LiveSchema)
    def get(self):
        """200 while the process serves (a Kubernetes liveness probe)."""
        return {"status": "alive"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, schema=NotReadySchema, description="A part cannot serve sends: database, "
                      "sealing or tree (never a path, host or password)")
    def get(self):
        """200 when a send can work, 503 naming the parts that cannot (a Kubernetes readiness probe)."""
        not_ready = context.current().readiness.not_ready()
        if not_ready:
            return jsonify({"detail": f"not ready: {', '.join(not_ready)}", "not_ready": not_ready}), 503
        return {"status": "ready"}


@blp.route("/api/v1/reload")
class Reload(MethodView):
    @auth.require(auth.CREATE_OR_UPDATE)
    @blp.response(200, HealthSchema)
    def post(self):
        """Re-read the config tree now."""
        found = context.current()
        return health_body(found, found.store.reload_everywhere(), auth.READ in auth.scopes_of_request())


@blp.route("/metrics")
class Metrics(MethodView):
    @auth.require(auth.READ, auth.METRICS)
    @blp.response(200, content_type="text/plain; version=0.0.4",
                  description="Prometheus text format, summed over every worker")
    def get(self):
        """Requests, sends, Mailgun latency, reloads and configs loaded, for Prometheus."""
        body, content_type = context.current().metrics.exposition()
        return Response(body, content_type=content_type)
