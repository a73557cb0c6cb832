"""Delivery events from every provider (contract section 15): each names its provider and its event id.

- `delivery_events.provider` (every old row: 'mailgun') and `event_key`, the provider's id of the event
  (Mailgun's token for the old rows), unique together: the same event twice is recorded once. Mailgun's
  triple becomes optional (the other providers' events have none).
- `webhook_posts`: a verified webhook post of SendGrid, Mandrill or SNS, its signature shown and its
  signed bytes encrypted (they name the recipient); `delivery_events.post_id` points to it.

Revision ID: 0007_provider_events
Revises: 0006_config_tests
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_provider_events"
down_revision = "0006_config_tests"  # chained after issues 27's and 26's at the merges
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_posts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("config_key", sa.String(100), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("signed", sa.LargeBinary(), nullable=False),
    )
    with op.batch_alter_table("delivery_events") as batch:
        batch.add_column(sa.Column("provider", sa.String(32), nullable=False, server_default="mailgun"))
        batch.add_column(sa.Column("event_key", sa.String(256)))
        batch.add_column(sa.Column("post_id", sa.Integer()))
    op.execute("UPDATE delivery_events SET event_key = mailgun_token")
    with op.batch_alter_table("delivery_events") as batch:  # SQLite changes constraints by copying the table
        batch.alter_column("provider", server_default=None, existing_type=sa.String(32), existing_nullable=False)
        batch.alter_column("event_key", nullable=False, existing_type=sa.String(256))
        for column, kind in (("mailgun_timestamp", sa.String(32)), ("mailgun_token", sa.String(256)),
                             ("mailgun_signature", sa.String(128))):
            batch.alter_column(column, nullable=True, existing_type=kind)
        batch.drop_constraint("uq_delivery_events_mailgun_token", type_="unique")
        batch.create_unique_constraint("uq_delivery_events_provider_event", ["provider", "event_key"])


def downgrade() -> None:
    op.execute("DELETE FROM delivery_events WHERE provider <> 'mailgun'")
    with op.batch_alter_table("delivery_events") as batch:
        batch.drop_constraint("uq_delivery_events_provider_event", type_="unique")
        batch.create_unique_constraint("uq_delivery_events_mailgun_token", ["mailgun_token"])
        for column, kind in (("mailgun_timestamp", sa.String(32)), ("mailgun_token", sa.String(256)),
                             ("mailgun_signature", sa.String(128))):
            batch.alter_column(column, nullable=False, existing_type=kind)
        batch.drop_column("post_id")
        batch.drop_column("event_key")
        batch.drop_column("provider")
    op.drop_table("webhook_posts")
