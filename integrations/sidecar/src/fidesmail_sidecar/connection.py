"""An adapter's fidesmail: its client once the settings can be used (or why they cannot), and one send.

A send carries the privacy request a caller holds as `reference` and an Idempotency-Key that a Celery
task keeps when it runs again (context.py), so the host's own retries send each message once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any, Mapping

from . import context, settings
from .client import Client, SendFailed


class Connection:
    """`configure()` reads the FIDESMAIL_* settings; `client` is None (and `not_ready_reason()` says why) until
    they can be used. `adapter` names the logger, `key_prefix` starts each Idempotency-Key;
    `ca_from_environment` as in settings.load."""

    def __init__(self, adapter: str, key_prefix: str, *, ca_from_environment: bool = False):
        self.adapter = adapter
        self.log = logging.getLogger(adapter)
        self.key_prefix = key_prefix  # the Idempotency-Key's start: which adapter sent it
        self.ca_from_environment = ca_from_environment
        self.client: Client | None = None
        self.settings_error: str | None = None

    def configure(self, environ: Mapping[str, str] | None = None) -> str | None:
        """(Re)read the settings; the reason they cannot be used, or None when sending is possible."""
        try:
            loaded = settings.load(ca_from_environment=self.ca_from_environment) if environ is None else \
                settings.load(environ, ca_from_environment=self.ca_from_environment)
        except settings.SettingsError as exc:
            self.client, self.settings_error = None, str(exc)
        else:
            self.client, self.settings_error = Client(loaded, self.adapter), None
        return self.settings_error

    def ready(self) -> bool:
        """Whether messages can be sent (the settings are usable)."""
        return self.client is not None

    def not_ready_reason(self) -> str:
        """Why messages cannot be sent, for the host's dispatch exception."""
        return f"fidesmail is not configured: {self.settings_error}"

    def target(self) -> str | None:
        """fidesmail's URL, when configured."""
        return self.client.settings.url if self.client is not None else None

    def send(self, action: str, to_email: str, body_params: Any, extra: dict | None = None, caller=None) -> dict:
        """Send one message (fidesmail's action type `action`) through fidesmail: its answer, or SendFailed.
        `caller`: the frame to look for the privacy request from (the host's caller of its dispatch function)."""
        client = self.client
        if client is None:
            raise SendFailed(self.not_ready_reason())
        payload = {"action_type": action, "to": to_email, "body_params": body_params, **(extra or {})}
        if client.settings.config_key:
            payload["config_key"] = client.settings.config_key
        task_id, header_reference = context.current_task()
        reference = context.reference_on_stack(caller) or header_reference
        if reference:
            payload["reference"] = reference
        try:
            answer = client.send(payload, self.idempotency_key(payload, task_id))
        except SendFailed as exc:
            self.log.error("Email %s not sent through fidesmail: %s", action, exc)
            raise
        self.log.info("Email %s sent through fidesmail (message %s, reference %s)", action, answer["message_id"],
                      reference)
        return answer

    def idempotency_key(self, payload: dict, task_id: str | None) -> str:
        """One key per message: a Celery task that runs again (autoretry, redelivery) keeps its id, so its
        messages keep their keys and fidesmail sends each once. Outside a task (a call the client waits
        for) nothing runs the call again, so each call is its own message."""
        scope = f"celery-task:{task_id}" if task_id else f"call:{uuid.uuid4()}"
        canonical = json.dumps({"scope": scope, "email": payload}, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        return self.key_prefix + hashlib.sha256(canonical.encode()).hexdigest()
