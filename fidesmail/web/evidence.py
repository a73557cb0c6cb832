"""Evidence bundles (contract section 17): every record of a reference, signed; and the key that checks them.

Registered before the message records' blueprint, so `/messages/evidence` is never taken for a message id.
"""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from fidesmail.core.exceptions import Invalid, NotFound, Unavailable, problem
from fidesmail.records import canonical, evidence, record_json
from fidesmail.records import messages as records
from fidesmail.web import auth, context
from fidesmail.web.blueprint import Blueprint
from fidesmail.web.errors import ErrorSchema

blp = Blueprint("email_evidence", __name__, url_prefix="/api/v1/email", description="Evidence bundles")

MAX_RECORDS = 1000  # one bundle; a reference is one privacy request's messages, a handful


class EvidenceArgs(Schema):
    """?reference= (others are ignored)"""

    reference = fields.String(required=True, validate=validate.Length(min=1, max=200),
                              metadata={"description": "Your id for the sends (e.g. the privacy request id)"})


class BundleSchema(Schema):
    """A signed evidence bundle (docs/evidence.md): `bundle` (the records, their digests) and its `signature`."""

    bundle = fields.Dict(metadata={"description": "format, reference, generated_at, key_id, records (as GET "
                                                  "/messages/{message_id} serves them, oldest first), record_digests"})
    signature = fields.Dict(metadata={"description": "algorithm (Ed25519), key_id, public_key (base64), value "
                                                     "(base64 signature over the canonical JSON of `bundle`)"})


class EvidenceKeySchema(Schema):
    """The public half of the evidence key."""

    algorithm = fields.String(metadata={"example": "Ed25519"})
    key_id = fields.String(metadata={"description": "First 16 hex digits of the SHA-256 of the raw public key"})
    public_key = fields.String(metadata={"description": "The 32 raw bytes of the public key, base64"})
    public_key_pem = fields.String(metadata={"description": "The same key as a PEM SubjectPublicKeyInfo"})


def _key_or_503():
    key = context.current().evidence_key
    try:
        key.private()
    except evidence.EvidenceKeyError as exc:
        raise Unavailable(f"Evidence bundles cannot be signed: {exc}") from None
    return key


@blp.route("/messages/evidence")
class Evidence(MethodView):
    @auth.require(auth.READ)
    @blp.arguments(EvidenceArgs(), location="query")
    @blp.documented_response(200, BundleSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No record carries this reference")
    @blp.alt_response(503, schema=ErrorSchema, description="The evidence key or the database cannot be used")
    def get(self, args):
        """Every record of a reference as one signed evidence bundle.

        Attempts, events (the providers' signatures) and content digests, as one canonical JSON bundle
        signed with the service's Ed25519 evidence key; check it offline with
        `flask messages verify-bundle FILE` or the verifier in docs/evidence.md."""
        found, reference = context.current(), args["reference"]
        key = _key_or_503()
        rows = found.records.of_reference(reference, MAX_RECORDS + 1)
        if not rows:
            raise NotFound(f"No message found with reference {reference}")
        if len(rows) > MAX_RECORDS:
            raise Invalid([problem(["query", "reference"], f"More than {MAX_RECORDS} records carry this "
                                                           "reference: one bundle holds at most that many.")])
        events = found.events.for_messages(row.id for row in rows)
        signed = evidence.sign(key, reference, [record_json.as_json(row, events[row.id]) for row in rows],
                               records.iso(records.now_ms()))
        return Response(canonical.dumps(signed), mimetype="application/json")


@blp.route("/evidence-key")
class EvidenceKey(MethodView):
    @blp.response(200, EvidenceKeySchema)
    @blp.alt_response(503, schema=ErrorSchema, description="The evidence key cannot be used")
    def get(self):
        """The public half of the evidence key that signs bundles (no token: publish it, pin it)."""
        return _key_or_503().published()
