"""fides' config tests (contract section 16): the last test of each config, its time and outcome.

Revision ID: 0006_config_tests
Revises: 0005_rate_limits
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_config_tests"
down_revision = "0005_rate_limits"  # chained after issue 27's at the merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_tests",
        sa.Column("config_key", sa.String(100), primary_key=True),
        sa.Column("tested_at", sa.BigInteger, nullable=False),
        sa.Column("succeeded", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("config_tests")
