"""What changes in fides once fidesmail sends its email, one function per fides module."""

from __future__ import annotations

import functools
import logging
import sys
from types import ModuleType

from . import context, dispatch

log = logging.getLogger("fidesmail_fides")

SERVICE = "fides.api.service.messaging.message_dispatch_service"


def patch_dispatch_service(module: ModuleType) -> None:
    """message_dispatch_service: dispatch_message sends email through fidesmail (dispatch_message_task
    calls it by its global name, so the worker's messages follow); task messages carry the privacy
    request id; with no email service of fides' own, fidesmail is the email service."""
    original = module.dispatch_message
    if getattr(original, "__fidesmail__", False):
        return
    replacement = dispatch.make_dispatch_message(original, module)
    _replace(module, "dispatch_message", original, replacement)
    _patch_email_service_type(module)
    _connect_reference_header(module)
    if dispatch.ready():
        log.info("fides email is sent through fidesmail at %s", dispatch.target())
    else:
        log.warning("fides email cannot be sent: %s", dispatch.not_ready_reason())


def _replace(module: ModuleType, name: str, original, replacement) -> None:
    setattr(module, name, replacement)
    # Modules that imported the name before this patch ran (only when installed late) get it too.
    for other in list(sys.modules.values()):
        if other is not module and getattr(other, name, None) is original:
            setattr(other, name, replacement)


def _patch_email_service_type(module: ModuleType) -> None:
    """get_email_messaging_config_service_type: fides' email connectors, consent requests and its
    property-specific messaging ask it which email service to use, and give up on None. With no
    email service configured in fides, fidesmail is one: the answer is fides' first email type (and
    where fidesmail's settings are unusable, the send that follows says why)."""
    original = module.get_email_messaging_config_service_type

    @functools.wraps(original)
    def get_email_messaging_config_service_type(db):
        found = original(db=db)
        if found is None:
            return module.EMAIL_MESSAGING_SERVICES[0]
        return found

    get_email_messaging_config_service_type.__fidesmail__ = True
    _replace(module, "get_email_messaging_config_service_type", original, get_email_messaging_config_service_type)


def _connect_reference_header(module: ModuleType) -> None:
    task = getattr(module, "dispatch_message_task", None)
    name = getattr(task, "name", None) if task is not None else None
    try:
        from celery.signals import before_task_publish
    except ImportError:
        return

    def add_reference(sender=None, headers=None, **kwargs):
        if name is None or sender == name:
            context.add_reference_header(headers)

    before_task_publish.connect(add_reference, weak=False)


def patch_messaging_model(module: ModuleType) -> None:
    """MessagingConfig.get_configuration: for an email service type, no config of fides' own is no
    longer an error. fides calls it before it queues a verification code, to check that messages can
    be sent at all; with fidesmail sending email, that check is fidesmail's. SMS is checked as before."""
    config = module.MessagingConfig
    original = config.__dict__["get_configuration"].__func__
    if getattr(original, "__fidesmail__", False):
        return
    from fides.api.common_exceptions import MessageDispatchException

    @functools.wraps(original)
    def get_configuration(cls, db, service_type):
        try:
            return original(cls, db, service_type)
        except MessageDispatchException:
            if module.get_messaging_method(service_type) != module.MessagingMethod.EMAIL:
                raise
            if not dispatch.ready():  # fidesmail was asked for but cannot be used: say why
                raise MessageDispatchException(dispatch.not_ready_reason()) from None
            return None

    get_configuration.__fidesmail__ = True
    config.get_configuration = classmethod(get_configuration)


def patch_id_verification_endpoint(module: ModuleType) -> None:
    """GET /id-verification/config: valid_email_config_exists is whether fidesmail can be used."""
    original = module.IdentityVerificationConfigResponse
    if getattr(original, "__fidesmail__", False):
        return

    def response(**fields):
        fields["valid_email_config_exists"] = dispatch.ready()
        return original(**fields)

    response.__fidesmail__ = True
    # The endpoint looks the name up when it runs; its response_model stays fides' own class.
    module.IdentityVerificationConfigResponse = response


PATCHES = {
    SERVICE: patch_dispatch_service,
    "fides.api.models.messaging": patch_messaging_model,
    "fides.api.api.v1.endpoints.identity_verification_endpoints": patch_id_verification_endpoint,
}
