"""The adapters' settings, read from the environment: where fidesmail is and the token to send with.

Both adapters read the same names, so one deployment's variables serve either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

URL = "FIDESMAIL_URL"
TOKEN = "FIDESMAIL_TOKEN"
CONFIG_KEY = "FIDESMAIL_CONFIG_KEY"
TIMEOUT = "FIDESMAIL_TIMEOUT"
RETRIES = "FIDESMAIL_RETRIES"
PROXY = "FIDESMAIL_PROXY"
CA_BUNDLE = "FIDESMAIL_CA_BUNDLE"

# fidesmail keeps a caller waiting up to 30 s of provider retry waits, plus up to 4 tries of its
# 10 s provider timeout: a shorter wait here would give up on sends that still succeed.
DEFAULT_TIMEOUT = 90.0
DEFAULT_RETRIES = 2


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it (and never shows the token)."""


@dataclass(frozen=True)
class Settings:
    """Where fidesmail answers and how to talk to it."""

    url: str
    token: str = field(repr=False)
    config_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    # The bearer token goes through a proxy only when the deployment names one here: HTTP_PROXY and
    # friends, set for the host's other traffic, are not used for fidesmail (client.py).
    proxy: str | None = field(default=None, repr=False)
    # requests' `verify`: True (certifi's CAs) or a CA file (FIDESMAIL_CA_BUNDLE, or where the adapter
    # allows it the environment's REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE).
    verify: bool | str = True

    @property
    def send_url(self) -> str:
        return self.url + "/api/v1/email/send"


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the deployment asked for fidesmail (either variable set and not empty)."""
    return bool(environ.get(URL) or environ.get(TOKEN))


def load(environ: Mapping[str, str] = os.environ, *, ca_from_environment: bool = False) -> Settings:
    """The settings, or SettingsError naming the variable that is missing or wrong. `ca_from_environment`:
    without FIDESMAIL_CA_BUNDLE, the environment's REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names the CA file."""
    url = (environ.get(URL) or "").strip()
    token = (environ.get(TOKEN) or "").strip()
    if not url:
        raise SettingsError(f"{URL} is not set (it names fidesmail, e.g. http://fidesmail:8080)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{URL} must be an http:// or https:// URL with a host, not {url!r}")
    if parts.username is not None or parts.password is not None:
        raise SettingsError(f"{URL} must not hold a user or password (the token goes in {TOKEN})")
    if not token:
        raise SettingsError(f"{TOKEN} is not set (mint one with `flask token create --scope email:send`)")
    if not token.isprintable() or any(c.isspace() for c in token):
        raise SettingsError(f"{TOKEN} contains spaces or control characters")
    return Settings(url=url.rstrip("/"), token=token, config_key=(environ.get(CONFIG_KEY) or "").strip() or None,
                    timeout=_number(environ, TIMEOUT, DEFAULT_TIMEOUT, float, minimum=0.1),
                    retries=_number(environ, RETRIES, DEFAULT_RETRIES, int, minimum=0),
                    proxy=_proxy(environ), verify=_verify(environ, ca_from_environment))


def _proxy(environ: Mapping[str, str]) -> str | None:
    proxy = (environ.get(PROXY) or "").strip() or None
    if proxy is not None:
        parts = urlsplit(proxy)
        if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
            # Not repeated: a proxy URL may carry its own credentials.
            raise SettingsError(f"{PROXY} must be an http://, https:// or socks5:// URL with a host, "
                                "e.g. http://proxy:3128")
    return proxy


def _verify(environ: Mapping[str, str], ca_from_environment: bool) -> bool | str:
    ca_bundle = (environ.get(CA_BUNDLE) or "").strip()
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise SettingsError(f"{CA_BUNDLE} names no file: {ca_bundle!r}")
    if ca_bundle:
        return ca_bundle
    if ca_from_environment:
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return True


def _number(environ: Mapping[str, str], name: str, default, kind, minimum):
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise SettingsError(f"{name} must be at least {minimum}, not {raw!r}")
    return value
