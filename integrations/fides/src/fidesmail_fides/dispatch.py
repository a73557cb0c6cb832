"""The replacement for fides' dispatch_message: the same signature; email through fidesmail, SMS as before."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sys
import uuid
from types import ModuleType
from typing import Any, Callable

from . import context, overrides, params, settings
from .client import Client, SendFailed, Unavailable

log = logging.getLogger("fidesmail_fides")

_client: Client | None = None
_settings_error: str | None = None


def configure(environ=None) -> str | None:
    """(Re)read the settings; the reason they cannot be used, or None when sending is possible."""
    global _client, _settings_error
    try:
        loaded = settings.load() if environ is None else settings.load(environ)
    except settings.SettingsError as exc:
        _client, _settings_error = None, str(exc)
    else:
        _client, _settings_error = Client(loaded), None
    return _settings_error


def ready() -> bool:
    """Whether messages can be sent (the settings are usable)."""
    return _client is not None


def not_ready_reason() -> str:
    """Why messages cannot be sent, for fides' MessageDispatchException."""
    return f"fidesmail is not configured: {_settings_error}"


def target() -> str | None:
    """fidesmail's URL, when configured."""
    return _client.settings.url if _client is not None else None


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
        if _client is None:
            log.error("Message not sent: %s", _settings_error)
            raise dispatch_exception(not_ready_reason())
        send_it, template = overrides.template_for(service, db, action_type, property_id)
        if not send_it:
            log.warning("Skipping sending property-specific email as no enabled template was found for "
                        "action type: %s", params.action_type_name(action_type))
            return None
        to_email = (getattr(to_identity, "email", None) or "").strip()
        if not to_email:
            log.error("Message failed to send. No email identity supplied.")
            raise dispatch_exception("No email identity supplied.")
        extra = overrides.overrides(service, db, action_type, message_body_params, template, subject_override)
        body_params = params.body_params(params.action_type_name(action_type), message_body_params)
        if params.action_type_name(action_type) == params.USER_INVITE:
            # fides builds the invite link from its admin UI's URL, which is fides' setting, not a param.
            body_params["admin_ui_url"] = service.ConfigProxy(db).admin_ui.url
        send(action_type, to_email, body_params, extra, caller=sys._getframe(1))
        return None

    dispatch_message.__fidesmail__ = True
    return dispatch_message


def send(action_type: Any, to_email: str, body_params: dict, extra: dict | None = None, caller=None) -> dict:
    """Send one fides email through fidesmail; fides' MessageDispatchException when it is not sent."""
    client = _client
    if client is None:
        raise dispatch_exception(not_ready_reason())
    action = params.action_type_name(action_type)
    payload = {"action_type": action, "to": to_email, "body_params": body_params, **(extra or {})}
    if client.settings.config_key:
        payload["config_key"] = client.settings.config_key
    task_id, header_reference = context.current_task()
    reference = context.reference_on_stack(caller) or header_reference
    if reference:
        payload["reference"] = reference
    try:
        answer = client.send(payload, idempotency_key(payload, task_id))
    except SendFailed as exc:
        log.error("Email %s not sent through fidesmail: %s", action, exc)
        raise dispatch_exception(str(exc), retryable=isinstance(exc, Unavailable)) from None
    log.info("Email %s sent through fidesmail (message %s, reference %s)", action, answer["message_id"], reference)
    return answer


def idempotency_key(payload: dict, task_id: str | None) -> str:
    """One key per message: a Celery task that runs again (autoretry, redelivery) keeps its id, so its
    messages keep their keys and fidesmail sends each once. Outside a task (the web server's test
    message, a user invite) nothing runs the call again, so each call is its own message."""
    scope = f"celery-task:{task_id}" if task_id else f"call:{uuid.uuid4()}"
    canonical = json.dumps({"scope": scope, "email": payload}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return "fides-" + hashlib.sha256(canonical.encode()).hexdigest()
