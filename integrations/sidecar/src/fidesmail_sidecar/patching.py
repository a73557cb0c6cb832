"""What the adapters' patches share: replacing a function in every module that copied it, the privacy request
header on the host's Celery task, and the identity verification endpoint's answer."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Callable

from . import context


def replace(module: ModuleType, name: str, original: Any, replacement: Any) -> None:
    """`module.name` becomes `replacement`, and so does every copy other modules took by name."""
    setattr(module, name, replacement)
    # Modules that imported the name before this patch ran (only when installed late) get it too.
    for other in list(sys.modules.values()):
        if other is not module and getattr(other, name, None) is original:
            setattr(other, name, replacement)


def connect_reference_header(task: Any) -> None:
    """Each message of this Celery task (any task when it has no name) carries the privacy request id its
    publisher holds (context.add_reference_header); without Celery, nothing."""
    name = getattr(task, "name", None) if task is not None else None
    try:
        from celery.signals import before_task_publish
    except ImportError:
        return

    def add_reference(sender=None, headers=None, **kwargs):
        if name is None or sender == name:
            context.add_reference_header(headers)

    before_task_publish.connect(add_reference, weak=False)


def id_verification_endpoint(ready: Callable[[], bool]) -> Callable[[ModuleType], None]:
    """The patch of the host's identity verification endpoints: GET /id-verification/config answers
    valid_email_config_exists as whether fidesmail can be used (`ready()`)."""

    def patch(module: ModuleType) -> None:
        original = module.IdentityVerificationConfigResponse
        if getattr(original, "__fidesmail__", False):
            return

        def response(**fields):
            fields["valid_email_config_exists"] = ready()
            return original(**fields)

        response.__fidesmail__ = True
        # The endpoint looks the name up when it runs; its response_model stays the host's own class.
        module.IdentityVerificationConfigResponse = response

    return patch
