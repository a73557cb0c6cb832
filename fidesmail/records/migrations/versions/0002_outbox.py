"""The outbox: queued messages' schedule and encrypted payload, and the per-config gates.

Revision ID: 0002_outbox
Revises: 0002_delivery_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_outbox"
down_revision = "0002_delivery_events"  # chained after the webhooks branch's at the merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("message_id", sa.String(32), primary_key=True),
        sa.Column("config_key", sa.String(100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.BigInteger()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_outbox_due", "outbox", ["due_at", "message_id"])
    op.create_index("ix_outbox_created", "outbox", ["created_at", "message_id"])
    op.create_index("ix_outbox_config", "outbox", ["config_key", "created_at", "message_id"])
    op.create_index("ix_outbox_config_due", "outbox", ["config_key", "due_at"])
    op.create_table(
        "outbox_gates",
        sa.Column("config_key", sa.String(100), primary_key=True),
        sa.Column("closed_until", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbox_gates")
    op.drop_table("outbox")
