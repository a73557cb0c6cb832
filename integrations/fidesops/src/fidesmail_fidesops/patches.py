"""What changes in fidesops once fidesmail sends its email, one function per fidesops module."""

from __future__ import annotations

import functools
import logging
from types import ModuleType

from fidesmail_sidecar import patching

from . import dispatch

log = logging.getLogger("fidesmail_fidesops")


def patch_dispatch_service(module: ModuleType) -> None:
    """email_dispatch_service: dispatch_email sends through fidesmail (its Celery task calls it by
    its global name, so the worker's emails follow); task messages carry the privacy request id."""
    original = module.dispatch_email
    if getattr(original, "__fidesmail__", False):
        return
    replacement = dispatch.make_dispatch_email(original)
    patching.replace(module, "dispatch_email", original, replacement)
    patching.connect_reference_header(getattr(module, "dispatch_email_task", None))
    if dispatch.ready():
        log.info("fidesops email is sent through fidesmail at %s", dispatch.target())
    else:
        log.warning("fidesops email cannot be sent: %s", dispatch.not_ready_reason())


def patch_email_model(module: ModuleType) -> None:
    """EmailConfig.get_configuration: without a Mailgun config of fidesops' own, no longer an error.

    fidesops calls it before sending a verification code, to check that email can be sent at all
    ("No email config found." otherwise); with fidesmail sending, that check is fidesmail's to make.
    """
    email_config = module.EmailConfig
    original = email_config.__dict__["get_configuration"].__func__
    if getattr(original, "__fidesmail__", False):
        return
    exception_type = _email_dispatch_exception()

    @functools.wraps(original)
    def get_configuration(cls, db):
        try:
            return original(cls, db)
        except exception_type:
            if not dispatch.ready():  # fidesmail was asked for but cannot be used: say why
                raise exception_type(dispatch.not_ready_reason()) from None
            return None

    get_configuration.__fidesmail__ = True
    email_config.get_configuration = classmethod(get_configuration)


def _email_dispatch_exception() -> type:
    from fidesops.ops.common_exceptions import EmailDispatchException

    return EmailDispatchException


PATCHES = {
    "fidesops.ops.service.email.email_dispatch_service": patch_dispatch_service,
    "fidesops.ops.models.email": patch_email_model,
    # GET /id-verification/config: valid_email_config_exists is whether fidesmail can be used.
    "fidesops.ops.api.v1.endpoints.identity_verification_endpoints": patching.id_verification_endpoint(dispatch.ready),
}
