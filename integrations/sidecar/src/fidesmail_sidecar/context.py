"""What identifies one message of the host (fidesops, fides): its privacy request (the `reference`) and its Celery
task.

The hosts' dispatch functions are not given the privacy request, but every caller that has one holds it in a
local variable (`privacy_request`; the `request` of fidesops' send_verification_code_to_user and of fides'
MessagingService.send_verification_code; `privacy_request_id` in fides' request runner), so the nearest such
frame on the call stack names it. A message the host queues for its Celery worker (receipts, review, and in
fides verification codes) leaves that stack behind, so the id travels in a header of the task message.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

HEADER = "fidesmail_reference"
MAX_LENGTH = 200  # fidesmail's limit for `reference`
_MAX_FRAMES = 64
_REQUEST_CLASSES = ("PrivacyRequest", "ConsentRequest")
_REQUEST_NAMES = ("privacy_request", "consent_request", "request")


def reference_on_stack(frame: FrameType | None) -> str | None:
    """The id of the nearest PrivacyRequest/ConsentRequest held by a caller, from `frame` outwards."""
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        found = _reference_in(frame.f_locals)
        if found:
            return found[:MAX_LENGTH]
        frame = frame.f_back
    return None


def _reference_in(local_vars: dict) -> str | None:
    for name in _REQUEST_NAMES:
        candidate = local_vars.get(name)
        if type(candidate).__name__ in _REQUEST_CLASSES:
            ident = getattr(candidate, "id", None)
            if isinstance(ident, str) and ident:
                return ident
    ident = local_vars.get("privacy_request_id")
    return ident if isinstance(ident, str) and ident else None


def current_task() -> tuple[str | None, str | None]:
    """(task id, reference header) of the Celery task running now, or (None, None) outside one."""
    celery = sys.modules.get("celery")  # the host imported it if a worker runs; never import it here
    task = getattr(celery, "current_task", None) if celery is not None else None
    try:
        request = task.request if task else None
    except Exception:  # a Proxy with no task behind it
        request = None
    if request is None:
        return None, None
    task_id = getattr(request, "id", None)
    reference = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    return (task_id if isinstance(task_id, str) else None,
            reference[:MAX_LENGTH] if isinstance(reference, str) and reference else None)


def add_reference_header(headers: Any) -> None:
    """Celery's before_task_publish: put the publisher's privacy request id into the message headers."""
    if not isinstance(headers, dict) or headers.get(HEADER):
        return
    reference = reference_on_stack(sys._getframe(1))
    if reference:
        headers[HEADER] = reference
