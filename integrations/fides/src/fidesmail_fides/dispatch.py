"""The replacement for fides' dispatch_message: the same signature; email through fidesmail, SMS as before."""

from __future__ import annotations

import functools
import logging
import sys
from types import ModuleType
from typing import Any, Callable

from fidesmail_sidecar.client import SendFailed, Unavailable
from fidesmail_sidecar.connection import Connection
from fidesmail_sidecar.params import action_type_name

from . import overrides, params

log = logging.getLogger("fidesmail_fides")

_connection = Connection("fidesmail_fides", "fides-")
configure = _connection.configure
ready = _connection.ready
target = _connection.target


def not_ready_reason() -> str:
    """Why messages cannot be sent, for fides' MessageDispatchException."""
    return _connection.not_ready_reason()


def dispatch_exception(message: str, retryable: bool = False) -> Exception:
    """fides' own MessageDispatchException, so its callers handle a refusal exactly as a provider's.

    `retryable`: fidesmail could not be reached or did not answer. The exception is then also a
    requests.RequestException, which fides' dispatch_message_task retries (autoretry_for, up to 3
    times with backoff): the task keeps its id, so the retry carries the same Idempotency-Key."""
    from fides.api.common_exceptions import MessageDispatchException

    return (_unavailable_type(MessageDispatchException) if retryable else MessageDispatchException)(message)


@functools.cache
def _unavailable_type(base: type) -> type:
    import requests

    return type("FidesmailUnavailable", (base, requests.ConnectionError), {"__module__": __name__})


def make_dispatch_message(original: Callable, service: ModuleType) -> Callable:
    """A function with fides' dispatch_message signature: email through fidesmail, SMS to `original`."""

    @functools.wraps(original)
    def dispatch_message(db: Any, action_type: Any, *, to_identity: Any, service_type: str | None,
                         message_body_params: Any = None, subject_override: str | None = None,
                         property_id: str | None = None) -> None:
        if service_type and service.get_messaging_method(service_type) == service.MessagingMethod.SMS:
            return original(db, action_type, to_identity=to_identity, service_type=service_type,
                            message_body_params=message_body_params, subject_override=subject_override,
                            property_id=property_id)
        if not to_identity:
            log.error("Message failed to send. No identity supplied.")
            raise dispatch_exception("No identity supplied.")
        if _connection.client is None:
            log.error("Message not sent: %s", _connection.settings_error)
            raise dispatch_exception(not_ready_reason())
        send_it, template = overrides.template_for(service, db, action_type, property_id)
        if not send_it:
            log.warning("Skipping sending property-specific email as no enabled template was found for "
                        "action type: %s", action_type_name(action_type))
            return None
        to_email = (getattr(to_identity, "email", None) or "").strip()
        if not to_email:
            log.error("Message failed to send. No email identity supplied.")
            raise dispatch_exception("No email identity supplied.")
        extra = overrides.overrides(service, db, action_type, message_body_params, template, subject_override)
        body_params = params.body_params(action_type_name(action_type), message_body_params)
        if action_type_name(action_type) == params.USER_INVITE:
            # fides builds the invite link from its admin UI's URL, which is fides' setting, not a param.
            body_params["admin_ui_url"] = service.ConfigProxy(db).admin_ui.url
        send(action_type, to_email, body_params, extra, caller=sys._getframe(1))
        return None

    dispatch_message.__fidesmail__ = True
    return dispatch_message


def send(action_type: Any, to_email: str, body_params: dict, extra: dict | None = None, caller=None) -> dict:
    """Send one fides email through fidesmail; fides' MessageDispatchException when it is not sent."""
    if _connection.client is None:
        raise dispatch_exception(not_ready_reason())
    try:
        return _connection.send(action_type_name(action_type), to_email, body_params, extra, caller=caller)
    except SendFailed as exc:
        raise dispatch_exception(str(exc), retryable=isinstance(exc, Unavailable)) from None
