"""The replacement for fidesops' dispatch_email: the same signature, sent through fidesmail."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sys
import uuid
from typing import Any, Callable

from . import context, params, settings
from .client import Client, SendFailed

log = logging.getLogger("fidesmail_fidesops")

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
    """Whether emails can be sent (the settings are usable)."""
    return _client is not None


def not_ready_reason() -> str:
    """Why emails cannot be sent, for fidesops' EmailDispatchException."""
    return f"fidesmail is not configured: {_settings_error}"


def target() -> str | None:
    """fidesmail's URL, when configured."""
    return _client.settings.url if _client is not None else None


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
        if _client is None:
            log.error("Email not sent: %s", _settings_error)
            raise _dispatch_exception(not_ready_reason())
        send(action_type, to_email, email_body_params, caller=sys._getframe(1))

    dispatch_email.__fidesmail__ = True
    return dispatch_email


def send(action_type: Any, to_email: str, email_body_params: Any, caller=None) -> dict:
    """Send one fidesops email through fidesmail; fidesops' EmailDispatchException when it is not sent."""
    client = _client
    if client is None:
        raise _dispatch_exception(not_ready_reason())
    action = params.action_type_name(action_type)
    payload = {"action_type": action, "to": to_email, "body_params": params.body_params(action, email_body_params)}
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
        raise _dispatch_exception(str(exc)) from None
    log.info("Email %s sent through fidesmail (message %s, reference %s)", action,
             answer.get("message_id") or answer.get("id"), reference)
    return answer


def idempotency_key(payload: dict, task_id: str | None) -> str:
    """One key per email: a Celery task that runs again (retry, redelivery) keeps its id, so its
    emails keep their keys and fidesmail sends each once. Outside a task (the web server sends
    verification codes while the client waits) nothing runs the call again, so each call is its own."""
    scope = f"celery-task:{task_id}" if task_id else f"call:{uuid.uuid4()}"
    canonical = json.dumps({"scope": scope, "email": payload}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return "fidesops-" + hashlib.sha256(canonical.encode()).hexdigest()
