"""Callbacks (contract section 15): every status change of a message whose config names a callback, enqueued
by the database itself in the transaction that makes the change.

- `messages.callback`: 1 when the message's config named a callback as it was created.
- `callbacks`: the outbox's rows for callbacks: one per status change, posted in `id` order per message,
  claimed with a lease and tried again with the outbox's backoff (outbox/callbacks.py).
- A trigger on `messages` (AFTER INSERT, AFTER UPDATE OF status) inserts the row whenever such a message
  reaches accepted, delivered, failed, unknown or cancelled: every place that moves a status (a send's
  answer, the outbox's settling and sweeping, a provider's webhook, a cancel) enqueues its callback in
  its own transaction, and none can forget to.

A later migration that rebuilds `messages` on SQLite (batch_alter_table copies the table) drops these
triggers with it: such a migration must create them again (tests/test_callbacks.py fails otherwise).

Revision ID: 0008_callbacks
Revises: 0007_provider_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_callbacks"
down_revision = "0007_provider_events"
branch_labels = None
depends_on = None

_STATUSES = "('accepted', 'delivered', 'failed', 'unknown', 'cancelled')"
_COLUMNS = "message_id, config_key, status, reference, provider, failure_reason, at, created_at, due_at, attempts"
_VALUES = ("NEW.id, NEW.config_key, NEW.status, NEW.reference, NEW.provider, NEW.failure_reason, NEW.updated_at, "
           "NEW.updated_at, NEW.updated_at, 0")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("callback", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("config_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(200)),
        sa.Column("provider", sa.String(32)),
        sa.Column("failure_reason", sa.Text()),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.BigInteger()),
        sa.Column("lease_until", sa.BigInteger()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text()),
    )
    op.create_index("ix_callbacks_due", "callbacks", ["due_at", "id"])
    op.create_index("ix_callbacks_message", "callbacks", ["message_id", "id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"""CREATE TRIGGER trg_messages_callback_insert AFTER INSERT ON messages FOR EACH ROW
            WHEN NEW.callback = 1 AND NEW.status IN {_STATUSES}
            BEGIN INSERT INTO callbacks ({_COLUMNS}) VALUES ({_VALUES}); END""")
        op.execute(f"""CREATE TRIGGER trg_messages_callback_update AFTER UPDATE OF status ON messages FOR EACH ROW
            WHEN NEW.callback = 1 AND NEW.status <> OLD.status AND NEW.status IN {_STATUSES}
            BEGIN INSERT INTO callbacks ({_COLUMNS}) VALUES ({_VALUES}); END""")
    else:
        op.execute(f"""CREATE FUNCTION fidesmail_enqueue_callback() RETURNS trigger AS $$
            BEGIN
                IF NEW.callback = 1 AND NEW.status IN {_STATUSES}
                        AND (TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status) THEN
                    INSERT INTO callbacks ({_COLUMNS}) VALUES ({_VALUES});
                END IF;
                RETURN NULL;
            END $$ LANGUAGE plpgsql""")
        op.execute("""CREATE TRIGGER trg_messages_callback AFTER INSERT OR UPDATE OF status ON messages
            FOR EACH ROW EXECUTE FUNCTION fidesmail_enqueue_callback()""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS trg_messages_callback_insert")
        op.execute("DROP TRIGGER IF EXISTS trg_messages_callback_update")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_messages_callback ON messages")
        op.execute("DROP FUNCTION IF EXISTS fidesmail_enqueue_callback()")
    op.drop_table("callbacks")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("callback")
