"""One Mailgun messages call as plain data: URL, auth and form fields, built from a config and a message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from fidesmail.core.addresses import parse_address
from fidesmail.core.email import Message
from fidesmail.providers import scrub

US_BASE_URL = "https://api.mailgun.net"
EU_BASE_URL = "https://api.eu.mailgun.net"
MESSAGE_ID_VARIABLE = "v:fidesmail-message-id"


@dataclass(frozen=True, repr=False)
class MailgunRequest:
    """One Mailgun API call as plain data; its repr never shows the key."""

    method: str
    url: str
    auth: tuple[str, str]
    data: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        names = [name for name, _ in self.data]
        auth = f"({self.auth[0]!r}, '***')"
        return f"MailgunRequest(method={self.method!r}, url={self.url!r}, auth={auth}, fields={names!r})"

    __str__ = __repr__

    @property
    def host(self) -> str:
        """host:port of the URL, for messages."""
        return scrub.host_of(self.url)


def base_url_for(details: Mapping, base_url: str | None = None, eu_base_url: str | None = None) -> str:
    """Where a config's domain lives: the US or the EU region (each replaceable by a setting)."""
    return (eu_base_url or EU_BASE_URL) if details.get("is_eu_domain") else (base_url or US_BASE_URL)


def build_request(
    details: Mapping,
    api_key: str,
    message: Message,
    to: str,
    *,
    base_url: str | None = None,
    eu_base_url: str | None = None,
    test_mode: bool = False,
    message_id: str | None = None,
) -> MailgunRequest:
    """The POST /{api_version}/{domain}/messages call for one message to one address."""
    domain = details["domain"]
    version = details.get("api_version") or "v3"
    for name, value in (("domain", domain), ("api_version", version)):
        if not isinstance(value, str) or not value or "/" in value:
            raise ValueError(f"{name} must be a non-empty name without '/'")
    if not api_key:
        raise ValueError("a Mailgun API key is required")
    base = base_url_for(details, base_url, eu_base_url)
    url = f"{base.rstrip('/')}/{quote(version, safe='')}/{quote(domain, safe='')}/messages"
    sender = details.get("sender")
    data = [
        ("from", parse_address(sender, allow_display_name=True) if sender else f"mailgun@{domain}"),
        ("to", parse_address(to)),
        ("subject", message.subject),
        ("html", message.html),
        ("text", message.text),
        ("o:tag", message.tag),
    ]
    if message_id is not None:
        data.append((MESSAGE_ID_VARIABLE, message_id))
    if test_mode:
        data.append(("o:testmode", "yes"))
    return MailgunRequest("POST", url, ("api", api_key), tuple(data))
