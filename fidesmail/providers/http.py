"""The HTTP providers' one pooled session, and what a connection that failed means for the message.

Every provider that speaks HTTP through `requests` posts through one `Transport` per process: a pooled
session (reset in a forked worker), urllib3's own retries off (fidesmail's rules decide), no redirects
(a redirect would turn a POST into a GET, or carry the key to another host), and the proxy and CA
settings read once per origin rather than on every call. A failure of the connection is classified here
once for all of them: never connected (may be tried again, elsewhere too), or the request may have gone
out (Unknown: never posted again on its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError, ReadTimeoutError

from fidesmail.core import forks
from fidesmail.core.outcomes import Outcome, Retry, Unknown
from fidesmail.providers import scrub


@dataclass(frozen=True, repr=False)
class JsonRequest:
    """One JSON POST to a provider's API as plain data; its repr shows neither the key nor the body (the
    recipient is in it)."""

    url: str
    api_key: str
    body: bytes

    @property
    def host(self) -> str:
        """host:port of the URL, for messages."""
        return scrub.host_of(self.url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, api_key='***', body=<{len(self.body)} bytes>)"

    __str__ = __repr__


class Transport:
    """One pooled `requests` session for every HTTP provider of this process."""

    def __init__(self, timeout: float = 10, *, session: requests.Session | None = None, pool_size: int = 32):
        self.timeout = timeout
        self._pool_size = pool_size
        self._own_session = session is None
        self.session = session if session is not None else self._new_session()
        self._environment: dict[str, dict] = {}
        forks.reset_in_children(self)

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # max_retries=0: urllib3 must not retry on its own; the caller applies the contract's policy.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def after_fork(self) -> None:
        """A forked worker must not share its parent's pooled connections."""
        if self._own_session:
            self.session = self._new_session()
            self._environment = {}

    def environment_settings(self, url: str) -> dict:
        """HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE... as requests would apply them to `url`.

        requests reads them from the environment on every call (~80 us a send); they are read once
        per origin instead, then handed in explicitly."""
        if not self._own_session:
            return {}
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        settings = self._environment.get(key)
        if settings is None:
            settings = requests.Session().merge_environment_settings(url, {}, None, None, None)
            self._environment[key] = settings
            self.session.trust_env = False  # the settings are passed in explicitly from now on
        return settings

    def post(self, label: str, method: str, url: str, **request) -> requests.Response | Outcome:
        """One request, never retried, never redirected: the response, or what a failed connection means."""
        try:
            return self.session.request(method, url, timeout=self.timeout, allow_redirects=False,
                                        **request, **self.environment_settings(url))
        except requests.RequestException as exc:
            return failed_connection(exc, label, scrub.host_of(url), self.timeout)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()


def never_connected(exc: BaseException) -> bool:
    """True when the request cannot have reached the provider: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    return any(isinstance(cause, (NewConnectionError, NameResolutionError, ConnectTimeoutError,
                                  ConnectionRefusedError)) for cause in scrub.causes(exc)) \
        or isinstance(exc, requests.exceptions.SSLError)  # the TLS handshake comes before the request


def failed_connection(exc: requests.RequestException, label: str, host: str, timeout: float) -> Outcome:
    """A connection that failed: Retry when it never carried the request, Unknown when it may have."""
    if never_connected(exc):
        return Retry(scrub.unreachable_reason(exc, host), None)
    if isinstance(exc, requests.ReadTimeout) or any(isinstance(c, ReadTimeoutError) for c in scrub.causes(exc)):
        return Unknown(f"{label} ({host}) did not answer within {timeout:g} s; the message may still be sent, "
                       "so it was not sent again")
    if isinstance(exc, (ChunkedEncodingError, ContentDecodingError)):
        return Unknown(f"{label} ({host}) broke off its answer; the message may still be sent, so it was not "
                       "sent again")
    return Unknown(f"the connection to {host} was closed or reset after the request was sent, before {label} "
                   "answered; the message may still be sent, so it was not sent again")
