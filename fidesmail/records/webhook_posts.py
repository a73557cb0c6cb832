"""A provider's verified webhook post, kept so that its events can be verified again (contract section 15).

SendGrid, Mandrill and SNS sign a whole post (SendGrid and Mandrill a batch of events), so each of its
events points to one row here: the signature and what goes with it (`signature`: shown in the records,
no address), and the signed bytes (`signed`: the raw body, which names the recipient, encrypted under a
key derived from the records key; its place is the provider and the config, so a post moved to another
config does not open). `flask messages verify` opens it and checks the provider's signature again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import insert, select

from fidesmail.records.cipher import CipherError, RecordsCipher
from fidesmail.records.privacy import RecordsKey
from fidesmail.records.schema import webhook_posts

_LABEL = b"fidesmail webhook post v1"


@dataclass(frozen=True)
class SignedPost:
    """What a provider signed: its signature (and what goes with it: a timestamp, the URL, the certificate URL)
    and the signed bytes themselves."""

    signature: Mapping[str, str]
    signed: bytes


@dataclass(frozen=True)
class StoredPost:
    """A kept post, opened: whose it is and what was signed (`signed` None when it does not open: `problem`)."""

    id: int
    provider: str
    config_key: str
    signature: Mapping[str, str]
    signed: bytes | None
    problem: str | None = None


class PostCipher:
    """Seals and opens the signed bytes of webhook posts."""

    def __init__(self, records_key: RecordsKey):
        self._cipher = RecordsCipher(records_key, _LABEL)

    @staticmethod
    def _place(provider: str, config_key: str) -> bytes:
        return f"{provider}/{config_key}".encode()

    def keep(self, connection, provider: str, config_key: str, post: SignedPost, at: int) -> int:
        """Insert the post; its id."""
        return connection.execute(insert(webhook_posts).values(
            provider=provider, config_key=config_key, received_at=at,
            signature=json.dumps(dict(post.signature), separators=(",", ":"), sort_keys=True),
            signed=self._cipher.seal(self._place(provider, config_key), post.signed))).inserted_primary_key[0]

    def load(self, connection, post_id: int) -> StoredPost | None:
        """The post, opened (None when there is no such post)."""
        row = connection.execute(select(webhook_posts).where(webhook_posts.c.id == post_id)).first()
        if row is None:
            return None
        signature = json.loads(row.signature)
        try:
            signed, problem = self._cipher.open(self._place(row.provider, row.config_key), row.signed), None
        except CipherError as exc:
            signed, problem = None, f"its signed bytes {exc}"
        return StoredPost(row.id, row.provider, row.config_key, signature, signed, problem)
