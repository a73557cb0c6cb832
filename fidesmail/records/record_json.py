"""A message record as the API answers it (contract section 9): the one shape GET, lists, cancels and bundles share."""

from __future__ import annotations

import json

from fidesmail.records.messages import iso


def as_json(row, events: list | None = None) -> dict:
    """A record as the API answers it (contract section 9)."""
    return {
        "message_id": row.id,
        "config_key": row.config_key,
        "action_type": row.action_type,
        "reference": row.reference,
        "to": {"masked": row.to_masked, "digest": "hmac-sha256:" + row.to_digest.hex()},
        "status": row.status,
        "failure_reason": row.failure_reason,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "provider": row.provider,
        "provider_message_id": row.provider_message_id,
        "sent_via": row.sent_via,
        "mailgun_id": row.provider_message_id if row.provider == "mailgun" else None,  # contract section 9
        "content_digest": "hmac-sha256:" + row.content_hmac.hex() if row.content_hmac else None,
        "test_mode": bool(row.test_mode),
        "resend_of": row.resend_of,
        "attempts": json.loads(row.attempts),
        "events": events or [],
    }
