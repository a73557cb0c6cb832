"""The request headers the API reads and the ETag it answers, as OpenAPI declares them (contract section 4), so
Swagger's "Try it out" and generated clients can send them."""

from __future__ import annotations

IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]{1,255}$"},
    "description": "1 to 255 printable characters. The same key with the same body gives the same answer and "
                   "message_id and sends once (across workers, restarts and replicas); with another body it is 422.",
}

PREFER = {
    "in": "header", "name": "Prefer", "required": False, "schema": {"type": "string"},
    "description": "`respond-async`: store the message and answer 202 with its record at once; it is sent in the "
                   "background, retried through its provider's outages until FIDESMAIL_DELIVERY_DEADLINE. "
                   "`respond-async, wait=N` (N at most 30): wait up to N s, 200 as a synchronous send if it was "
                   "sent by then. Other preferences are ignored (RFC 7240).",
}

IF_MATCH = {
    "in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
    "description": "The ETag of the version this change is based on (from a GET); another version answers 412.",
}

IF_NONE_MATCH = {
    "in": "header", "name": "If-None-Match", "required": False, "schema": {"type": "string"},
    "description": "An ETag from an earlier GET: 304 without a body while the config is still that version.",
}

ETAG = {"ETag": {"description": "This version of the config; send it back in If-Match to change it safely",
                 "schema": {"type": "string"}}}


def parameters(*headers: dict) -> dict:
    """`@blp.doc(**parameters(...))`: the headers an operation reads."""
    return {"parameters": list(headers)}
