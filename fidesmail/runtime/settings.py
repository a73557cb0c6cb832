"""Every setting the service reads, from the environment, each with its default and its check (contract section 2).

This module is the only reader of the environment: a value that cannot be used is a SettingsError
naming the variable, which `python app.py` prints as one line before exiting 1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fidesmail.core import database_urls

# Amazon SNS's own certificate and subscription hosts (contract section 15).
SNS_CERT_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A variable that cannot be used; the message names it and says what is wrong."""


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _number(cast, minimum, maximum=None):
    def parse(name: str, raw: str):
        try:
            value = cast(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} must be {'a whole number' if cast is int else 'a number'}, not {raw!r}") \
                from None
        if value != value or value < minimum or (maximum is not None and value > maximum):  # NaN too
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise SettingsError(f"{name} must be {bounds}, not {raw!r}")
        return value

    return parse


def _url(name: str, raw: str) -> str | None:
    value = raw.strip().rstrip("/")
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must be a URL such as https://api.example.com (with http:// or https://), "
                            f"not {raw!r}")
    return value


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _pattern(name: str, raw: str) -> re.Pattern:
    """A regular expression (matched at the start of a URL: re.match)."""
    try:
        return re.compile(raw.strip())
    except re.error as exc:
        raise SettingsError(f"{name} is not a regular expression ({exc}): {raw!r}") from None
def _choice(*options: str, fold=str.lower):
    """One of `options` (compared after `fold`), returned in its canonical spelling."""

    def parse(name: str, raw: str) -> str:
        value = fold(raw.strip())
        if value not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, not {raw!r}")
        return value

    return parse


def _database_url(name: str, raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    scheme = value.split(":", 1)[0].lower()
    if "://" not in value or not (scheme.startswith("sqlite") or scheme.startswith("postgres")):
        raise SettingsError(f"{name} must be a sqlite:/// or postgresql:// URL, not {database_urls.shown(value)!r}")
    try:
        make_url(value)
    except (ArgumentError, ValueError):  # e.g. a port that is not a number; the URL itself is never repeated
        raise SettingsError(f"{name} cannot be read as a database URL ({database_urls.shown(value)}: check its "
                            "port, and percent-encode special characters in the password)") from None
    return value


def parse_as(key: str, raw: str, name: str):
    """One setting's value given under another name (a command-line flag), checked as the setting is."""
    setting = next(s for s in SETTINGS if s.key == key)
    return setting.parse(name, raw)


@dataclass(frozen=True)
class Setting:
    """One variable: its name, what it means, its default (the text parsed when it is unset) and how it is read."""

    env: str
    key: str
    help: str
    default: str
    parse: Callable[[str, str], object]
    shown: str | None = None  # the default as --help describes it, when not the text itself
    documented: bool = True
    secret: bool = False  # also read from the file named by `<env>_FILE` (Docker and Kubernetes secrets)


SETTINGS = (
    Setting("FIDESMAIL_CONFIG_DIR", "CONFIG_DIR", "the config tree (YAML configs, sealed secrets, public key, "
            "templates)", "config", _text, "./config"),
    Setting("FIDESMAIL_INSTANCE_DIR", "INSTANCE_DIR", "private key material, locks, the default database", "instance",
            _text, "./instance"),
    Setting("FIDESMAIL_SECRET_KEY", "SECRET_KEYS", "token-signing key(s), comma-separated, newest first",
            "", _text, "generated into the instance dir", secret=True),
    Setting("FIDESMAIL_SEAL_KEY_FILE", "SEAL_KEY_FILE", "the private sealing keyring", "", _text,
            "<instance dir>/seal.key"),
    Setting("FIDESMAIL_MAILGUN_BASE_URL", "MAILGUN_BASE_URL", "replaces https://api.mailgun.net", "", _url, "unset"),
    Setting("FIDESMAIL_MAILGUN_EU_BASE_URL", "MAILGUN_EU_BASE_URL", "replaces https://api.eu.mailgun.net", "", _url,
            "unset"),
    Setting("FIDESMAIL_MAILGUN_TIMEOUT", "MAILGUN_TIMEOUT", "seconds to wait for a provider's answer to one request "
            "(every provider)", "10", _number(float, 0.001, 300)),
    Setting("FIDESMAIL_MAILGUN_RETRIES", "MAILGUN_RETRIES", "further tries after a 429, 420, throttling, 5xx or a "
            "failed connection (every provider)", "3", _number(int, 0, 20)),
    Setting("FIDESMAIL_SENDGRID_BASE_URL", "SENDGRID_BASE_URL", "replaces https://api.sendgrid.com", "", _url,
            "unset"),
    Setting("FIDESMAIL_MANDRILL_BASE_URL", "MANDRILL_BASE_URL", "replaces https://mandrillapp.com/api/1.0", "", _url,
            "unset"),
    Setting("FIDESMAIL_SES_ENDPOINT_URL", "SES_ENDPOINT_URL", "replaces AWS's regional SES endpoint", "", _url,
            "unset"),
    Setting("FIDESMAIL_SNS_CERT_URL_PATTERN", "SNS_CERT_URL_PATTERN", "regular expression a SigningCertURL or "
            "SubscribeURL must match before it is fetched", SNS_CERT_URL_PATTERN, _pattern),
    Setting("FIDESMAIL_PUBLIC_URL", "PUBLIC_URL", "the service's URL as providers and callers see it (webhook "
            "signatures that cover the URL)", "", _url, "the request's own URL"),
    Setting("FIDESMAIL_READ_ONLY", "READ_ONLY", "true: the config tree is managed in git; write endpoints answer 403",
            "false", _flag),
    Setting("FIDESMAIL_HOST", "HOST", "listen address", "127.0.0.1", _text),
    Setting("FIDESMAIL_PORT", "PORT", "listen port", "8080", _number(int, 0, 65535)),
    Setting("FIDESMAIL_DATABASE_URL", "DATABASE_URL", "message records, idempotency keys, the outbox",
            "", _database_url, "SQLite in the instance dir", secret=True),
    Setting("FIDESMAIL_RECORD_RETENTION_DAYS", "RECORD_RETENTION_DAYS", "how long message records are kept (CCPA "
            "asks 24 months)", "730", _number(int, 1)),
    Setting("FIDESMAIL_VERIFICATION_LIMIT", "VERIFICATION_LIMIT", "identity-verification emails per address per "
            "rolling hour; one more is 429 (0: no limit)", "5", _number(int, 0, 1_000_000)),
    Setting("FIDESMAIL_DELIVERY_DEADLINE", "DELIVERY_DEADLINE", "seconds a queued message is retried before it is "
            "failed", "86400", _number(float, 1)),
    Setting("FIDESMAIL_LOG_LEVEL", "LOG_LEVEL", "the least severe log lines written (INFO: one line per request)",
            "INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", fold=str.upper)),
    Setting("FIDESMAIL_LOG_FORMAT", "LOG_FORMAT", "json (one JSON object per line) or text", "json",
            _choice("json", "text")),
    Setting("WEB_CONCURRENCY", "WORKERS", "gunicorn worker processes", "2", _number(int, 1, 64)),
    Setting("FIDESMAIL_THREADS", "THREADS", "threads per worker", "4", _number(int, 1, 256)),
    # For tests and unusual file systems; not in the contract.
    Setting("FIDESMAIL_WATCH_INTERVAL", "WATCH_INTERVAL", "seconds between looks at the config tree where inotify "
            "cannot be used or says nothing (network file systems); 0: no watching", "1", _number(float, 0),
            documented=False),
    Setting("FIDESMAIL_READINESS_INTERVAL", "READINESS_INTERVAL", "seconds between checks of the database, the "
            "sealing keys and the config tree (/readyz, /health)", "5", _number(float, 0.01, 300), documented=False),
    Setting("FIDESMAIL_MAILGUN_BACKOFF", "MAILGUN_BACKOFF", "first retry delay (seconds) after a 5xx", "0.5",
            _number(float, 0), documented=False),
    # The outbox (contract section 11): its schedule scaled down for tests, its posts in flight per worker.
    Setting("FIDESMAIL_OUTBOX_BACKOFF", "OUTBOX_BACKOFF", "first background retry delay (seconds) after a 5xx or a "
            "failed connection", "30", _number(float, 0), documented=False),
    Setting("FIDESMAIL_OUTBOX_MAX_BACKOFF", "OUTBOX_MAX_BACKOFF", "the longest background retry delay (seconds)",
            "3600", _number(float, 0), documented=False),
    Setting("FIDESMAIL_OUTBOX_POLL", "OUTBOX_POLL", "seconds between looks at the outbox for messages queued "
            "elsewhere and retries come due", "0.5", _number(float, 0.01, 60), documented=False),
    Setting("FIDESMAIL_OUTBOX_CONCURRENCY", "OUTBOX_CONCURRENCY", "background posts to Mailgun in flight per worker",
            "4", _number(int, 1, 64), documented=False),
)


FILE_SUFFIX = "_FILE"


def _raw_value(setting: Setting, env: Mapping[str, str]) -> str | None:
    """The setting's text: its variable, or for a secret the file `<variable>_FILE` names (less one trailing
    newline, as `echo` and editors leave it); both set is an error naming both."""
    direct = env.get(setting.env)
    named = env.get(setting.env + FILE_SUFFIX) if setting.secret else None
    if named is None:
        return direct
    file_env = setting.env + FILE_SUFFIX
    if direct is not None:
        raise SettingsError(f"{setting.env} and {file_env} are both set: set only one of them")
    try:
        with open(named, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise SettingsError(f"{file_env} names {named}, which cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{file_env} names {named}, which is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


def secret_settings() -> tuple[str, ...]:
    """The variables that hold a secret (each also read from `<variable>_FILE`)."""
    return tuple(s.env for s in SETTINGS if s.secret)


def from_environment(environ: Mapping[str, str] | None = None) -> dict:
    """Read every setting into app.config keys; SettingsError for the first one that cannot be used."""
    env = os.environ if environ is None else environ
    raw = {s.key: _raw_value(s, env) for s in SETTINGS}
    values = {s.key: s.parse(s.env, raw[s.key] if raw[s.key] is not None else s.default) for s in SETTINGS}
    config_dir = Path(values["CONFIG_DIR"]).absolute()
    instance_dir = Path(values["INSTANCE_DIR"]).absolute()
    if raw["CONFIG_DIR"] and not config_dir.is_dir():
        raise SettingsError(f"FIDESMAIL_CONFIG_DIR names {config_dir}, which is not an existing folder")
    values.update(
        CONFIG_DIR=config_dir,
        INSTANCE_DIR=instance_dir,
        SECRET_KEYS=[k.strip() for k in values["SECRET_KEYS"].split(",") if k.strip()],  # empty: the instance file
        SEAL_KEY_FILE=Path(values["SEAL_KEY_FILE"] or instance_dir / "seal.key").absolute(),
        DATABASE_URL=values["DATABASE_URL"],  # None: SQLite in the instance dir (database_url below)
    )
    return values


def require_config_dir(config) -> None:
    """Stop in the wrong folder: a config tree that is not there is never made up (an empty service with new keys)."""
    config_dir = Path(config["CONFIG_DIR"])
    if not config_dir.is_dir():
        raise SettingsError(f"FIDESMAIL_CONFIG_DIR: there is no config tree at {config_dir} (the default is ./config "
                            "of the folder it is started in): start it where config/ is, or set FIDESMAIL_CONFIG_DIR")


def describe() -> str:
    """The settings as `python app.py --help` lists them."""
    width = max(len(s.env) for s in SETTINGS if s.documented)
    lines = [f"  {s.env:<{width}}  {s.help} (default: {s.shown or s.default})" for s in SETTINGS if s.documented]
    names = ", ".join(secret_settings())
    return "\n".join(lines) + f"\n\nSecrets ({names}) may instead be read from a file: <variable>_FILE=<path>."


def database_url(config) -> str:
    """FIDESMAIL_DATABASE_URL, else SQLite in the instance dir (known only once overrides are applied)."""
    return config["DATABASE_URL"] or f"sqlite:///{Path(config['INSTANCE_DIR']) / 'fidesmail.db'}"
