"""Registering a config's webhooks at Mailgun (its domain webhooks API), so no one clicks through the dashboard.

`GET /v3/domains/{domain}/webhooks` says what is registered; each event type not yet pointing at the
URL is created (`POST`, fields `id` and `url`) or, when the type already has other URLs, updated with
them kept and ours added (`PUT /v3/domains/{domain}/webhooks/{id}`, `url` repeated: Mailgun replaces
the list, and allows at most 3). Mailgun's words are scrubbed of the key before they are shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import requests

from fidesmail.providers import scrub
from fidesmail.providers.mailgun.attempt import mailgun_message, with_hint

# What fidesmail keeps (section 10), in Mailgun's webhook names. `accepted` may be added with --event.
DEFAULT_EVENTS = ("delivered", "permanent_fail", "temporary_fail", "complained", "unsubscribed", "opened", "clicked")
KNOWN_EVENTS = ("accepted", *DEFAULT_EVENTS)
MAX_URLS = 3  # Mailgun's limit per webhook type
CREATE, ADD, KEEP = "create", "add", "keep"


class RegistrationError(Exception):
    """Mailgun could not be asked or refused; the message names the host and Mailgun's words, never the key."""


@dataclass(frozen=True)
class Step:
    """What to do for one webhook type: create it, add our URL to its URLs, or keep it (already there)."""

    action: str
    event: str
    urls: tuple[str, ...]  # the type's URLs afterwards


def webhooks_url(base_url: str, domain: str) -> str:
    return f"{base_url.rstrip('/')}/v3/domains/{quote(domain, safe='')}/webhooks"


def registered(answer: object) -> dict[str, tuple[str, ...]]:
    """Mailgun's GET answer as webhook type -> URLs (`{"webhooks": {type: {"urls": [...]}}}`, or the older `url`)."""
    found: dict[str, tuple[str, ...]] = {}
    hooks = answer.get("webhooks") if isinstance(answer, Mapping) else None
    for name, entry in (hooks or {}).items() if isinstance(hooks, Mapping) else ():
        if not isinstance(entry, Mapping):
            continue
        urls = entry.get("urls")
        if isinstance(urls, list):
            found[name] = tuple(url for url in urls if isinstance(url, str))
        elif isinstance(entry.get("url"), str):
            found[name] = (entry["url"],)
    return found


def plan(existing: Mapping[str, Sequence[str]], url: str, events: Sequence[str]) -> list[Step]:
    """The steps that make every type in `events` post to `url`, keeping the URLs others registered."""
    steps = []
    for event in events:
        urls = tuple(existing.get(event, ()))
        if url in urls:
            steps.append(Step(KEEP, event, urls))
        elif urls:
            if len(urls) >= MAX_URLS:
                raise RegistrationError(f"the {event} webhook already has {len(urls)} URLs, Mailgun's limit: "
                                        "remove one in Mailgun first")
            steps.append(Step(ADD, event, (*urls, url)))
        else:
            steps.append(Step(CREATE, event, (url,)))
    return steps


class Registrar:
    """One domain's webhooks at Mailgun, over HTTP Basic `api:{key}`."""

    def __init__(self, base_url: str, domain: str, api_key: str, timeout: float = 10.0,
                 session: requests.Session | None = None):
        self.url = webhooks_url(base_url, domain)
        self.host = scrub.host_of(self.url)
        self._auth = ("api", api_key)
        self._secrets = scrub.secret_forms(self._auth)
        self._timeout = timeout
        self._session = session or requests.Session()

    def existing(self) -> dict[str, tuple[str, ...]]:
        """What is registered now."""
        answer = self._call("GET", self.url)
        try:
            return registered(answer.json())
        except ValueError:
            raise RegistrationError(f"{self.host} answered {answer.status_code} without JSON") from None

    def apply(self, step: Step) -> None:
        """Carry out one step (nothing to do for KEEP)."""
        if step.action == CREATE:
            self._call("POST", self.url, [("id", step.event), *(("url", url) for url in step.urls)])
        elif step.action == ADD:
            self._call("PUT", f"{self.url}/{quote(step.event, safe='')}", [("url", url) for url in step.urls])

    def _call(self, method: str, url: str, data=None) -> requests.Response:
        try:
            response = self._session.request(method, url, data=data, auth=self._auth, timeout=self._timeout,
                                             allow_redirects=False)
        except requests.Timeout:
            raise RegistrationError(f"{self.host} did not answer within {self._timeout:g} s") from None
        except requests.RequestException as exc:
            raise RegistrationError(scrub.unreachable_reason(exc, self.host)) from None
        if response.status_code != 200:
            words = with_hint(response.status_code, mailgun_message(response, self._secrets),
                                       self.host)
            raise RegistrationError(f"Mailgun ({self.host}) answered {response.status_code} to {method}: {words}")
        return response
