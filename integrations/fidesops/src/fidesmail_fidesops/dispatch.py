"""The replacement for fidesops' dispatch_email: the same signature, sent through fidesmail."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

from fidesmail_sidecar.client import SendFailed
from fidesmail_sidecar.connection import Connection
from fidesmail_sidecar.params import action_type_name

from . import params

log = logging.getLogger("fidesmail_fidesops")

# fidesops' adapter has always let the environment's REQUESTS_CA_BUNDLE name fidesmail's CA.
_connection = Connection("fidesmail_fidesops", "fidesops-", ca_from_environment=True)
configure = _connection.configure
ready = _connection.ready
target = _connection.target


def not_ready_reason() -> str:
    """Why emails cannot be sent, for fidesops' EmailDispatchException."""
    return _connection.not_ready_reason()


def _dispatch_exception(message: str) -> Exception:
    # fidesops' own exception type, so its callers handle a refusal exactly as a Mailgun one.
    from fidesops.ops.common_exceptions import EmailDispatchException

    return EmailDispatchException(message)


def make_dispatch_email(original: Callable) -> Callable:
    """A function with fidesops' dispatch_email signature that sends through fidesmail."""

    @functools.wraps(original)
    def dispatch_email(db: Any, action_type: Any, to_email: str | None,
                       email_body_params: Any = None) -> None:
        if not to_email:
            log.error("Email failed to send. No email supplied.")
            raise _dispatch_exception("No email supplied.")
        if _connection.client is None:
            log.error("Email not sent: %s", _connection.settings_error)
            raise _dispatch_exception(not_ready_reason())
        send(action_type, to_email, email_body_params, caller=sys._getframe(1))

    dispatch_email.__fidesmail__ = True
    return dispatch_email


def send(action_type: Any, to_email: str, email_body_params: Any, caller=None) -> dict:
    """Send one fidesops email through fidesmail; fidesops' EmailDispatchException when it is not sent."""
    if _connection.client is None:
        raise _dispatch_exception(not_ready_reason())
    action = action_type_name(action_type)
    try:
        return _connection.send(action, to_email, params.body_params(action, email_body_params), caller=caller)
    except SendFailed as exc:
        raise _dispatch_exception(str(exc)) from None
