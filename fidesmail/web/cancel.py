"""The outbox's own endpoint: DELETE a queued message (contract section 11); queueing is `Prefer` on /send."""

from __future__ import annotations

from flask.views import MethodView

from fidesmail.core.exceptions import NotFound
from fidesmail.records import record_json
from fidesmail.web import auth, context
from fidesmail.web.blueprint import Blueprint
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.messages import RecordSchema

blp = Blueprint("email_outbox", __name__, url_prefix="/api/v1/email", description="The outbox: sending later")


@blp.route("/messages/<message_id>")
class QueuedMessage(MethodView):
    @auth.require(auth.SEND)
    @blp.response(200, RecordSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such message")
    @blp.alt_response(409, schema=ErrorSchema, description="Not queued (being sent, sent, failed, cancelled...)")
    @blp.alt_response(503, schema=ErrorSchema, description="The message database cannot be used")
    def delete(self, message_id):
        """Cancel a queued message: it is never sent, its stored payload is deleted; the record stays."""
        if len(message_id) > 32:
            raise NotFound(f"No message found with id {message_id}")
        return record_json.as_json(context.current().queue.cancel(message_id))
