"""Stored delivery events checked again (`flask messages verify`): each provider's signature, with its key today.

Mailgun's events keep its signature triple (contract section 10); the other providers' keep the post that
carried them (records/webhook_posts.py: the signature, and the signed bytes encrypted). Each is checked
the way its provider's webhook package checks a post as it arrives, minus the freshness of its timestamp
(a stored event is old by design): SendGrid's and Mandrill's with the config's webhook key, SNS's with
the certificate at its SigningCertURL, fetched under the same FIDESMAIL_SNS_CERT_URL_PATTERN rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fidesmail.providers.mailgun import secrets as mailgun_secrets
from fidesmail.providers.mailgun import webhooks as mailgun
from fidesmail.providers.mandrill import webhooks as mandrill
from fidesmail.providers.sendgrid import webhooks as sendgrid
from fidesmail.providers.ses import webhooks as ses
from fidesmail.records.events import MAILGUN
from fidesmail.records.webhook_posts import StoredPost
from fidesmail.sealing import envelope, keys

KEY_FIELDS = {MAILGUN: mailgun_secrets.WEBHOOK_SIGNING_KEY, sendgrid.SERVICE_TYPE: sendgrid.KEY_FIELD,
              mandrill.SERVICE_TYPE: mandrill.KEY_FIELD}
_KEYED = {sendgrid.SERVICE_TYPE: sendgrid, mandrill.SERVICE_TYPE: mandrill}


@dataclass(frozen=True)
class Checked:
    """One stored event checked again: `problem` is None when its provider's signature still verifies."""

    row: object  # the delivery_events row
    problem: str | None


class _Keys:
    """Each config's webhook key, opened once; or why it cannot be."""

    def __init__(self, snapshot, vault):
        self.snapshot = snapshot
        self.vault = vault
        self._opened: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    def of(self, config_key: str, field: str) -> tuple[str | None, str | None]:
        """(key, None), or (None, why not)."""
        if (config_key, field) not in self._opened:
            self._opened[config_key, field] = self._open(config_key, field)
        return self._opened[config_key, field]

    def _open(self, config_key: str, field: str) -> tuple[str | None, str | None]:
        try:
            key = self.vault.open(self.snapshot.sealed, config_key, field)
        except (keys.KeyringError, envelope.SealError) as exc:
            return None, f"its {field} cannot be opened: {exc}"
        if key is None:
            return None, f"config {config_key} has no {field} (any more)"
        return key, None


def recheck(services, snapshot, message_id: str | None = None) -> Iterator[Checked]:
    """Every stored event (or one message's), oldest first, with why its signature no longer verifies (if so)."""
    webhook_keys = _Keys(snapshot, services.vault)
    posts: dict[int, str | None] = {}  # a post's verdict, for each of its events
    for row in services.events.stored(message_id):
        if row.provider == MAILGUN:
            yield Checked(row, _mailgun(row, webhook_keys))
            continue
        if row.post_id not in posts:
            posts[row.post_id] = _post(services, row, webhook_keys)
        yield Checked(row, posts[row.post_id])


def _mailgun(row, webhook_keys: _Keys) -> str | None:
    key, why = webhook_keys.of(row.config_key, KEY_FIELDS[MAILGUN])
    signature = mailgun.Signature(row.mailgun_timestamp, row.mailgun_token, row.mailgun_signature)
    if key is not None and mailgun.signed_by(signature, key):
        return None
    return why or f"the signature does not match the webhook signing key of {row.config_key}"


def _post(services, row, webhook_keys: _Keys) -> str | None:
    post: StoredPost | None = services.events.post(row.post_id) if row.post_id is not None else None
    if post is None:
        return "the webhook post that carried it is not kept"
    if post.signed is None:
        return post.problem
    if row.provider == ses.SERVICE_TYPE:
        return ses.verify_stored(services.sns_certificates, post.signature, post.signed)
    module = _KEYED.get(row.provider)
    if module is None:
        return f"fidesmail cannot check {row.provider}'s signatures"
    key, why = webhook_keys.of(post.config_key, module.KEY_FIELD)
    return why or module.verify_stored(key, post.signature, post.signed)
