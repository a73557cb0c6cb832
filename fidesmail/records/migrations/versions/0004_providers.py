"""Providers (contract sections 9 and 13): which provider took a message, its id there, the config it went by.

- `provider`: the service type that took the message (or was last tried); `provider_message_id`: its id
  for it (Mailgun's message id, SES' MessageId, SendGrid's X-Message-Id, Mandrill's _id), indexed: delivery
  events are matched by it; `sent_via`: the config whose provider took it (its own config until failover).
- Every old row was sent through Mailgun: `provider` 'mailgun', `provider_message_id` its `mailgun_id`,
  `sent_via` its `config_key`. The API still answers `mailgun_id` for Mailgun's messages, from
  `provider_message_id`: the old column is emptied (its index dropped) instead of keeping every Mailgun id
  twice, and stays only so that a replica still on the old code can write during a rolling upgrade.

Revision ID: 0004_providers
Revises: 0003_keyed_digests
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_providers"
down_revision = "0003_keyed_digests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("provider", sa.String(32)))
    op.add_column("messages", sa.Column("provider_message_id", sa.String(255)))
    op.add_column("messages", sa.Column("sent_via", sa.String(100)))
    op.execute("UPDATE messages SET provider = 'mailgun', provider_message_id = mailgun_id, sent_via = config_key, "
               "mailgun_id = NULL")
    op.drop_index("ix_messages_mailgun_id", table_name="messages")
    op.create_index("ix_messages_provider_message_id", "messages", ["provider_message_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_provider_message_id", table_name="messages")
    op.create_index("ix_messages_mailgun_id", "messages", ["mailgun_id"])
    op.execute("UPDATE messages SET mailgun_id = provider_message_id WHERE provider = 'mailgun'")
    with op.batch_alter_table("messages") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("sent_via")
        batch.drop_column("provider_message_id")
        batch.drop_column("provider")
