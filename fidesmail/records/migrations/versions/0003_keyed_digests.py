"""Keyed digests: the content and request digests become HMACs under the content key; webhook tokens taken.

Revision ID: 0003_keyed_digests
Revises: 0002_outbox

What happens to the rows written before this revision (issue 21): their `content_digest` was a plain
SHA-256 of the email and their `request_fingerprint` a plain SHA-256 of the request body, address and
one-time code inside, so anyone with the database and the public templates could recover a code or
confirm an address. A plain hash cannot be turned into a keyed one without the text it was made of,
which no record holds, so both columns are dropped with their values:

- an old record keeps everything else, and answers `"content_digest": null`; its content can no
  longer be proven (`POST .../content` answers 409 for it);
- an old Idempotency-Key is still found (its column, a SHA-256 of the caller's key, is kept: a retry
  across the upgrade must never send twice), but its request can no longer be compared, so a request
  with it answers 422, as a key used with another body would, and sends nothing;
- new records get `content_hmac`, `request_hmac` and an HMAC of their Idempotency-Key.

The columns are replaced, not reused, so a replica still running the code before this revision fails
to write (503, nothing sent) instead of writing a plain hash again. Deleted values may remain in the
database files' free pages until SQLite's or PostgreSQL's VACUUM (FULL) rewrites them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_keyed_digests"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("content_hmac", sa.LargeBinary(32)))
        batch.add_column(sa.Column("content_mismatches", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("request_hmac", sa.LargeBinary(32)))
        batch.drop_column("content_digest")
        batch.drop_column("request_fingerprint")
    op.create_table(
        "webhook_tokens",
        sa.Column("provider", sa.String(32), primary_key=True),
        sa.Column("token", sa.String(256), primary_key=True),
        sa.Column("taken_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_webhook_tokens_taken", "webhook_tokens", ["taken_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_tokens_taken", table_name="webhook_tokens")
    op.drop_table("webhook_tokens")
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("content_digest", sa.LargeBinary(32)))
        batch.add_column(sa.Column("request_fingerprint", sa.LargeBinary(32)))
        batch.drop_column("request_hmac")
        batch.drop_column("content_mismatches")
        batch.drop_column("content_hmac")
