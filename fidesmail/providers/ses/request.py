"""One SES v2 SendEmail call as plain data: where (region, endpoint), as whom (the credentials) and what.

What reaches SES (contract section 13): SendEmail with the From address (details.email_from, else
noreply@{domain}; a display name outside ASCII encoded as RFC 2047 asks), one recipient, the subject, html
and text, and the tags `fidesmail-message-id` = the record's id (SES puts it in every event it publishes)
and `fidesmail-action-type`. SES v2 rather than v1: JSON instead of XML, tags on the call, and a throttled
call is a 429 (v1 answers 400 Throttling).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formataddr

from fidesmail.core.addresses import parse_address
from fidesmail.providers.base import Email, MissingSecret
from fidesmail.providers.fields import split_sender
from fidesmail.providers.ses import secrets as fields

MESSAGE_ID_TAG, ACTION_TYPE_TAG = "fidesmail-message-id", "fidesmail-action-type"


@dataclass(frozen=True, repr=False)
class Auth:
    """How boto3 gets credentials for one config: its own chain, or the sealed keys; then maybe a role."""

    method: str
    access_key_id: str | None = None
    secret_access_key: str | None = None
    role_arn: str | None = None

    def __repr__(self) -> str:
        return f"Auth(method={self.method!r}, access_key_id='***', role_arn={self.role_arn!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be shown."""
        return tuple(value for value in (self.access_key_id, self.secret_access_key) if value)


@dataclass(frozen=True, repr=False)
class SesRequest:
    """One SendEmail call; its repr shows neither the keys nor the message (the recipient is in it)."""

    region: str
    auth: Auth
    params: Mapping  # sesv2 send_email's keyword arguments

    def __repr__(self) -> str:
        return f"SesRequest(region={self.region!r}, auth={self.auth!r}, params=<SendEmail>)"

    __str__ = __repr__


def auth_of(secrets: Mapping[str, str]) -> Auth:
    """The credentials the sealed secrets name; MissingSecret when `secret_keys` comes without both keys."""
    method = secrets[fields.AUTH_METHOD]
    if method not in (fields.AUTOMATIC, fields.SECRET_KEYS):
        raise ValueError(f"auth_method must be automatic or secret_keys, not {method!r}")
    if method == fields.AUTOMATIC:
        return Auth(method, role_arn=secrets.get(fields.ROLE_ARN))
    if not (secrets.get(fields.ACCESS_KEY_ID) and secrets.get(fields.SECRET_ACCESS_KEY)):
        raise MissingSecret("auth_method secret_keys needs aws_access_key_id and aws_secret_access_key")
    return Auth(method, secrets[fields.ACCESS_KEY_ID], secrets[fields.SECRET_ACCESS_KEY], secrets.get(fields.ROLE_ARN))


def from_address(details: Mapping) -> str:
    """details.email_from, else noreply@{domain}; a display name outside ASCII as an RFC 2047 encoded word (SES)."""
    if details.get("email_from"):
        name, address = split_sender(details["email_from"])
        return formataddr((name, address), charset="utf-8") if name else address
    return f"noreply@{details['domain']}"


def build_request(details: Mapping, secrets: Mapping[str, str], email: Email) -> SesRequest:
    """The SendEmail call for `email` (SES sends test messages as any other)."""
    message = email.message
    params = {
        "FromEmailAddress": from_address(details),
        "Destination": {"ToAddresses": [parse_address(email.to)]},
        "Content": {"Simple": {"Subject": _utf8(message.subject),
                               "Body": {"Text": _utf8(message.text), "Html": _utf8(message.html)}}},
        "EmailTags": [{"Name": MESSAGE_ID_TAG, "Value": email.message_id},
                      {"Name": ACTION_TYPE_TAG, "Value": message.tag}],
    }
    return SesRequest(details["aws_region"], auth_of(secrets), params)


def _utf8(text: str) -> dict:
    return {"Data": text, "Charset": "UTF-8"}
