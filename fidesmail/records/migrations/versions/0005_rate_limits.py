"""Rate limits: one shared limiter row per config (its next free slot), for every worker and replica.

Revision ID: 0005_rate_limits
Revises: 0004_providers
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_rate_limits"
down_revision = "0004_providers"  # chained after issue 21's and issue 23's at the merges
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
