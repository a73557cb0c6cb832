"""Run by fidesmail_fides.pth at interpreter start, only when FIDESMAIL_URL or FIDESMAIL_TOKEN is set."""

from __future__ import annotations


def _autoload() -> None:
    import logging

    try:
        from . import install

        install()
    except Exception:  # never stop fides (or pip, or anything else in this environment) from starting
        logging.getLogger("fidesmail_fides").exception("fidesmail_fides could not install its hook")


_autoload()
