"""FIDESMAIL_* environment variables -> app.config, each with its default (contract section 2)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A FIDESMAIL_* variable that cannot be used."""


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _number(name: str, raw: str, cast, minimum):
    try:
        value = cast(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


def from_environment(environ: Mapping[str, str] | None = None) -> dict:
    """Read the FIDESMAIL_* variables into app.config keys."""
    env = os.environ if environ is None else environ
    get = lambda name, default=None: env.get(f"FIDESMAIL_{name}", default)  # noqa: E731

    config_dir = Path(get("CONFIG_DIR") or "config")
    instance_dir = Path(get("INSTANCE_DIR") or "instance")
    secret_keys = [k.strip() for k in (get("SECRET_KEY") or "").split(",") if k.strip()]
    return {
        "CONFIG_DIR": config_dir.absolute(),
        "INSTANCE_DIR": instance_dir.absolute(),
        "SECRET_KEYS": secret_keys,  # empty: generated into the instance dir
        "SEAL_KEY_FILE": Path(get("SEAL_KEY_FILE") or instance_dir / "seal.key").absolute(),
        "MAILGUN_BASE_URL": (get("MAILGUN_BASE_URL") or "").rstrip("/") or None,
        "MAILGUN_EU_BASE_URL": (get("MAILGUN_EU_BASE_URL") or "").rstrip("/") or None,
        "MAILGUN_TIMEOUT": _number("FIDESMAIL_MAILGUN_TIMEOUT", get("MAILGUN_TIMEOUT", "10"), float, 0.001),
        "MAILGUN_RETRIES": _number("FIDESMAIL_MAILGUN_RETRIES", get("MAILGUN_RETRIES", "3"), int, 0),
        "READ_ONLY": _flag("FIDESMAIL_READ_ONLY", get("READ_ONLY", "false")),
        "HOST": get("HOST") or "127.0.0.1",
        "PORT": _number("FIDESMAIL_PORT", get("PORT", "8080"), int, 0),
        # Polling interval of the config-tree watcher; changes must show within 2 s.
        "WATCH_INTERVAL": 1.0,
    }
