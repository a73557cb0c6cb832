"""Run by fidesmail_fidesops.pth at interpreter start, only when FIDESMAIL_URL or FIDESMAIL_TOKEN is set."""

from __future__ import annotations


def _autoload() -> None:
    import logging

    try:
        from . import install

        install()
    except Exception:  # never stop fidesops (or pip, or anything else in this environment) from starting
        logging.getLogger("fidesmail_fidesops").exception("fidesmail_fidesops could not install its hook")


_autoload()
