"""What changes in fides once fidesmail sends its email, one function per fides module."""

from __future__ import annotations

import functools
import logging
from types import ModuleType

from fidesmail_sidecar import patching

from . import dispatch

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
    patching.replace(module, "dispatch_message", original, replacement)
    _patch_email_service_type(module)
    patching.connect_reference_header(getattr(module, "dispatch_message_task", None))
    if dispatch.ready():
        log.info("fides email is sent through fidesmail at %s", dispatch.target())
    else:
        log.warning("fides email cannot be sent: %s", dispatch.not_ready_reason())


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
    patching.replace(module, "get_email_messaging_config_service_type", original,
                     get_email_messaging_config_service_type)


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


PATCHES = {
    SERVICE: patch_dispatch_service,
    "fides.api.models.messaging": patch_messaging_model,
    # GET /id-verification/config: valid_email_config_exists is whether fidesmail can be used.
    "fides.api.api.v1.endpoints.identity_verification_endpoints": patching.id_verification_endpoint(dispatch.ready),
}
