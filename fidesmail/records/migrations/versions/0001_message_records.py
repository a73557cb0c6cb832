"""Message records, with the Idempotency-Key ledger in them.

Revision ID: 0001_message_records
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_message_records"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("config_key", sa.String(100), nullable=False),
        sa.Column("action_type", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(200)),
        sa.Column("to_masked", sa.String(80), nullable=False),
        sa.Column("to_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.Text()),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("mailgun_id", sa.String(255)),
        sa.Column("content_digest", sa.LargeBinary(32)),
        sa.Column("attempts", sa.Text(), nullable=False),
        sa.Column("test_mode", sa.Integer(), nullable=False),
        sa.Column("resend_of", sa.String(32)),
        sa.Column("idempotency_key", sa.LargeBinary(32), unique=True),
        sa.Column("request_fingerprint", sa.LargeBinary(32)),
        sa.Column("answer", sa.Text()),
        sa.Column("lease_until", sa.BigInteger()),
    )
    op.create_index("ix_messages_created", "messages", ["created_at", "id"])
    op.create_index("ix_messages_reference", "messages", ["reference", "created_at"])
    op.create_index("ix_messages_to_digest", "messages", ["to_digest", "created_at"])
    op.create_index("ix_messages_status", "messages", ["status", "created_at"])
    op.create_index("ix_messages_config", "messages", ["config_key", "created_at"])
    op.create_index("ix_messages_mailgun_id", "messages", ["mailgun_id"])
    op.create_table(
        "fidesmail_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fidesmail_meta")
    op.drop_table("messages")
