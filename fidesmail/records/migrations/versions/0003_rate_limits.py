"""Rate limits: one shared limiter row per config (its next free slot), for every worker and replica.

Revision ID: 0003_rate_limits
Revises: 0002_outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_rate_limits"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("config_key", sa.String(100), primary_key=True),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
