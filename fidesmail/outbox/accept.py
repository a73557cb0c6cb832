"""`Prefer: respond-async`: the message is checked as a synchronous send is, stored durably, and answered 202.

Everything that would refuse a synchronous send before it reaches Mailgun refuses this one the same
way and queues nothing (404, 409, 422, 503: a broken template or a key that does not open is known
now, not in an hour). The message is rendered now: what is queued, what its record's content
digest proves and what is posted are the same email, whatever the tree's templates do meanwhile.
"""

from __future__ import annotations

import dataclasses
import json

from fidesmail.core import outcomes
from fidesmail.core.exceptions import TooManyRequests, Unavailable
from fidesmail.outbox.payload import Payload
from fidesmail.records.messages import Answer
from fidesmail.sending import delivery


def accept(services, send: delivery.Send, idempotency: tuple[str, bytes] | None = None,
           wait: float = 0.0) -> Answer:
    """Queue one message for background delivery; 202 with its record (or 200 if sent within `wait` s).
    With an Idempotency-Key used before, that request's answer (and its message, waited for alike)."""
    if idempotency is not None:
        replay = services.records.replay_of(*idempotency)
        if replay is not None:
            return waited(services, replay, wait)
    prepared = services.sender.prepare(send)
    record = dataclasses.replace(prepared.record, status=outcomes.QUEUED, lease_ms=0)
    message = prepared.message
    payload = services.deliverer.cipher.seal(record.id, Payload(
        to=send.to, subject=message.subject, html=message.html, text=message.text, tag=message.tag,
        test_mode=send.test_mode))
    try:
        answer = services.queue.enqueue(record, payload, idempotency,
                                        parks=not prepared.entry.document.get("fallback"))
    except Unavailable as exc:  # not stored: nothing will be sent, so the caller's retry is safe
        raise Unavailable(f"Nothing was queued: {exc.detail}") from None
    except TooManyRequests as exc:  # not stored either
        services.sender.refused(exc, record.config_key, record.action_type)
        raise
    services.deliverer.wake()
    return waited(services, answer, wait)


def waited(services, answer: Answer, wait: float) -> Answer:
    """A 202 becomes the synchronous 200 when its message was sent within `wait` seconds."""
    if answer.result != outcomes.QUEUED_FOR_LATER or wait <= 0:
        return answer
    row = services.deliverer.wait_for(answer.body["message_id"], wait)
    if row is None or row.status not in (outcomes.ACCEPTED, outcomes.DELIVERED):
        return answer
    return Answer(outcomes.SENT, sent_body(row))


def sent_body(row) -> dict:
    """The answer of a synchronous send (contracts 6 and 13) for a record its provider accepted."""
    attempts = json.loads(row.attempts or "[]")
    said = next((a.get("detail") for a in reversed(attempts) if a.get("outcome") == "accepted"), None)
    return {"id": row.provider_message_id, "message": said or "", "config_key": row.config_key,
            "message_id": row.id, "status": outcomes.ACCEPTED, "provider": row.provider}
