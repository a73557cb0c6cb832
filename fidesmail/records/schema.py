"""The tables (SQLAlchemy Core). Times are integer milliseconds since the epoch (UTC): compact and exact."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

# One row per message fidesmail was asked to send. No address, no body: see privacy.py.
messages = Table(
    "messages",
    metadata,
    Column("id", String(32), primary_key=True),  # msg_ + a ULID: sorts by creation time
    Column("config_key", String(100), nullable=False),
    Column("action_type", String(64), nullable=False),
    Column("reference", String(200)),
    Column("to_masked", String(80), nullable=False),
    Column("to_digest", LargeBinary(32), nullable=False),  # HMAC-SHA256 of the normalised address
    Column("status", String(16), nullable=False),
    Column("failure_reason", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("mailgun_id", String(255)),  # no longer written: old rows' ids moved to provider_message_id (0004)
    # HMAC-SHA256 over subject, html and text as sent, under the content key (privacy.py); NULL for records
    # written before 0003_keyed_digests, whose plain SHA-256 was removed.
    Column("content_hmac", LargeBinary(32)),
    # POST .../content answers that did not match: a few, then no more (no oracle for guessing a code).
    Column("content_mismatches", Integer, nullable=False, default=0),
    Column("attempts", Text, nullable=False, default="[]"),  # JSON list of {at, outcome, http_status, detail}
    Column("test_mode", Integer, nullable=False, default=0),
    Column("resend_of", String(32)),
    # The Idempotency-Key ledger lives in the records: the key's HMAC (keys may carry anything), the
    # request's HMAC (its fingerprint), both under the content key, and the answer to replay once Mailgun
    # may have seen the message. A record written before 0003_keyed_digests keeps its key's plain SHA-256
    # and no request HMAC: its key is still found, and never sends again (messages.py).
    Column("idempotency_key", LargeBinary(32), unique=True),
    Column("request_hmac", LargeBinary(32)),
    Column("answer", Text),  # JSON {"status": int, "body": {...}}
    # While a worker sends it: until when it may still be working on it (after that: unknown).
    Column("lease_until", BigInteger),
    Column("provider", String(32)),  # the service type that took it (or was last tried)
    Column("provider_message_id", String(255)),  # its id there: what its delivery events are matched by
    Column("sent_via", String(100)),  # the config whose provider took it (config_key itself until failover)
    # 1: its config named a callback when it was created; a trigger (0008_callbacks) then enqueues a row in
    # `callbacks` in the transaction of each status change to accepted, delivered, failed, unknown, cancelled.
    Column("callback", Integer, nullable=False, default=0, server_default="0"),
)

Index("ix_messages_created", messages.c.created_at, messages.c.id)
Index("ix_messages_reference", messages.c.reference, messages.c.created_at)
Index("ix_messages_to_digest", messages.c.to_digest, messages.c.created_at)
Index("ix_messages_status", messages.c.status, messages.c.created_at)
Index("ix_messages_config", messages.c.config_key, messages.c.created_at)
Index("ix_messages_provider_message_id", messages.c.provider_message_id)

# Facts about this database that every replica must agree on (e.g. which records key writes digests).
meta = Table(
    "fidesmail_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# What the providers reported about a message through their signed webhooks (contract sections 10 and 15),
# each with what re-verifies it later: Mailgun's signature triple verbatim in the row (it holds no address);
# the other providers' signature and signed bytes in `webhook_posts` (the signed bytes hold the recipient, so
# they are encrypted). No address in this table: the recipient in the provider's event is not kept.
delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # arrival order, for ties in `occurred_at`
    Column("message_id", String(32), nullable=False),
    Column("config_key", String(100), nullable=False),  # whose key verified it (flask messages verify)
    Column("provider", String(32), nullable=False),  # the service type whose webhook reported it
    # The provider's id of the event, taken once: Mailgun's token, SendGrid's sg_event_id, Mandrill's _id with
    # its ts and event, SNS's MessageId.
    Column("event_key", String(256), nullable=False),
    Column("event", String(64), nullable=False),  # the provider's name: delivered, bounce, hard_bounce, Delivery...
    Column("severity", String(32)),
    Column("reason", Text),
    Column("occurred_at", BigInteger, nullable=False),  # the provider's timestamp of the event (ms)
    Column("received_at", BigInteger, nullable=False),
    # Mailgun's signature block exactly as it came (Mailgun's events only).
    Column("mailgun_timestamp", String(32)),
    Column("mailgun_token", String(256)),
    Column("mailgun_signature", String(128)),
    Column("post_id", Integer),  # the webhook post that carried it (the other providers' events)
    UniqueConstraint("provider", "event_key", name="uq_delivery_events_provider_event"),
)

Index("ix_delivery_events_message", delivery_events.c.message_id, delivery_events.c.occurred_at)

# Every webhook token whose signature verified, taken once, whatever its event says or matches (contract
# section 10): a provider signs the token, not the event, so a verified token re-posted with another event
# must change nothing. Kept a day (a signature is fresh for 5 minutes either way), then removed.
webhook_tokens = Table(
    "webhook_tokens",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("token", String(256), primary_key=True),
    Column("taken_at", BigInteger, nullable=False),
)

Index("ix_webhook_tokens_taken", webhook_tokens.c.taken_at)

# A verified webhook post of SendGrid, Mandrill or SNS (contract section 15): what its provider signed, kept so
# that anyone holding the provider's key can check it again (flask messages verify). `signature`: the
# signature and what goes with it, as JSON (shown in the records: no address); `signed`: the signed bytes
# (the raw body; with Mandrill's the URL), AES-256-GCM under a key derived from the records key, because
# they name the recipient (records/webhook_posts.py).
webhook_posts = Table(
    "webhook_posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("config_key", String(100), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("signature", Text, nullable=False),
    Column("signed", LargeBinary, nullable=False),
)

# Callbacks waiting to be POSTed (contract section 15): the outbox's rows for a message's status changes,
# inserted by the trigger of 0008_callbacks, posted in `id` order per message (outbox/callbacks.py), deleted
# once the receiver answered 2xx (or the delivery deadline passed). What the callback says is copied here
# as the change made it, so a later change cannot alter an earlier callback.
callbacks = Table(
    "callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(32), nullable=False),
    Column("config_key", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reference", String(200)),
    Column("provider", String(32)),
    Column("failure_reason", Text),
    Column("at", BigInteger, nullable=False),  # when the status changed (ms)
    Column("created_at", BigInteger, nullable=False),  # the delivery deadline counts from here
    Column("due_at", BigInteger),  # when it may be posted next; NULL while a worker holds it
    Column("lease_until", BigInteger),  # while held: until when (then it is due again: at least once)
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", Text),
)

Index("ix_callbacks_due", callbacks.c.due_at, callbacks.c.id)
Index("ix_callbacks_message", callbacks.c.message_id, callbacks.c.id)

# The outbox (contract section 11): what a message accepted with `Prefer: respond-async` needs to be
# posted later, while it is queued or being posted, and nothing longer. The record above holds the
# status; this row holds the schedule and the payload (recipient and rendered message, AES-GCM
# encrypted, see outbox/payload.py). Deleted in the transaction that moves the message out of the queue.
outbox = Table(
    "outbox",
    metadata,
    Column("message_id", String(32), primary_key=True),
    Column("config_key", String(100), nullable=False),
    Column("created_at", BigInteger, nullable=False),  # the record's: order and deadline
    # When it may be posted next; NULL while a worker holds it (status `sending`); PARKED behind its
    # config's gate (records/outbox.py).
    Column("due_at", BigInteger),
    Column("attempts", Integer, nullable=False, default=0),  # posts to Mailgun so far
    Column("last_error", Text),  # why the last try did not go out (for "gave up after ...")
    Column("payload", LargeBinary, nullable=False),
)

Index("ix_outbox_due", outbox.c.due_at, outbox.c.message_id)
Index("ix_outbox_created", outbox.c.created_at, outbox.c.message_id)
Index("ix_outbox_config", outbox.c.config_key, outbox.c.created_at, outbox.c.message_id)
Index("ix_outbox_config_due", outbox.c.config_key, outbox.c.due_at)  # a config's unparked rows, cheaply

# A config whose posts Mailgun refuses: failures in a row are counted; at the threshold (or at once on
# a 429/420 or a key that cannot be opened) the gate closes and its queue waits, in order, behind one
# message tried again at `closed_until`. No row: all is well.
outbox_gates = Table(
    "outbox_gates",
    metadata,
    Column("config_key", String(100), primary_key=True),
    Column("closed_until", BigInteger, nullable=False),  # 0 while only counting; else when to try again
    Column("failures", Integer, nullable=False),  # in a row: the threshold and the exponent of the backoff
    Column("reason", Text, nullable=False),
)

# A config's rate_limit (contract section 17): one row per config that has sent with one, the shared
# limiter of every worker and replica. `next_at` is the earliest moment (microseconds since the epoch)
# the config's provider may be sent the next message; taking a slot moves it on by 1/rate s (records/pacing.py).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("config_key", String(100), primary_key=True),
    Column("next_at", BigInteger, nullable=False),
)

# The last test of each config through fides' POST /api/v1/messaging/test/{service_type} (contract section
# 16): its time and outcome, what fides answers as `last_test_timestamp` and `last_test_succeeded`.
config_tests = Table(
    "config_tests",
    metadata,
    Column("config_key", String(100), primary_key=True),
    Column("tested_at", BigInteger, nullable=False),
    Column("succeeded", Integer, nullable=False),  # 1 or 0
)
