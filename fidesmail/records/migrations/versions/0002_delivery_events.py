"""Delivery events: what Mailgun's signed webhooks reported, with the signature triple verbatim.

Revision ID: 0002_delivery_events
Revises: 0001_message_records
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_delivery_events"
down_revision = "0001_message_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("config_key", sa.String(100), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(32)),
        sa.Column("reason", sa.Text()),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("mailgun_timestamp", sa.String(32), nullable=False),
        sa.Column("mailgun_token", sa.String(256), nullable=False),
        sa.Column("mailgun_signature", sa.String(128), nullable=False),
        sa.UniqueConstraint("mailgun_token", name="uq_delivery_events_mailgun_token"),
    )
    op.create_index("ix_delivery_events_message", "delivery_events", ["message_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("delivery_events")
