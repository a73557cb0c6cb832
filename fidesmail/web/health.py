"""Liveness and the config tree's state: counts for anyone, problem details with `email:read`; never a secret."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from fidesmail.core.exceptions import Unauthenticated, Unavailable
from fidesmail.records.messages import now_ms
from fidesmail.sealing import keys
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
    status = fields.String()
    configs_loaded = fields.Integer()
    read_only = fields.Boolean()
    last_reload = fields.Nested(ReloadSchema)
    sealing = fields.Nested(SealingSchema)
    database = fields.Nested(DatabaseSchema)
    outbox = fields.Nested(OutboxSchema)


def _may_read() -> bool:
    """True when the request carries a valid token with email:read (details are shown then)."""
    try:
        return auth.READ in auth.scopes_of_request(optional=True)
    except Unauthenticated:
        return False


def sealing_problem(snapshot, vault) -> str | None:
    """Why nothing can be sealed right now, or None."""
    if snapshot.public_key_id is None:
        return "seal.pub is missing or unreadable: nothing can be sealed"
    try:
        keyring = vault.keyring()
    except keys.KeyringError as exc:
        return str(exc)
    return keys.mismatch(snapshot.public_key_id, keyring)


def health_body(found, snapshot, details: bool) -> dict:
    """What /health and /reload answer: counts and the last reload's outcome, never a secret."""
    reload = {
        "at": datetime.fromtimestamp(snapshot.loaded_at, UTC).isoformat(timespec="seconds"),
        "ok": snapshot.ok,
        "problem_count": len(snapshot.problems),
    }
    seal_problem = sealing_problem(snapshot, found.vault)
    sealing = {"ok": seal_problem is None}
    if details:
        reload["problems"] = [p.as_dict() for p in snapshot.problems]
        if seal_problem:
            sealing["problem"] = seal_problem
    database_problem = found.maintenance.problem or found.database.check()
    database = {"ok": database_problem is None}
    if details and database_problem:
        database["problem"] = database_problem
    return {"status": "healthy", "configs_loaded": len(snapshot.keys), "read_only": found.store.read_only,
            "last_reload": reload, "sealing": sealing, "database": database, "outbox": outbox_body(found)}


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Always 200 while serving: counts and the last reload's outcome; details with an email:read token."""
        found = context.current()
        return health_body(found, found.store.snapshot(), _may_read())


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
    @auth.require(auth.READ)
    @blp.response(200, content_type="text/plain; version=0.0.4",
                  description="Prometheus text format, summed over every worker")
    def get(self):
        """Requests, sends, Mailgun latency, reloads and configs loaded, for Prometheus."""
        body, content_type = context.current().metrics.exposition()
        return Response(body, content_type=content_type)
