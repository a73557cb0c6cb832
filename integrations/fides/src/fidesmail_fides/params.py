"""fides' messaging action types and body params (pydantic v2 models) as fidesmail's JSON send body.

fides' MessagingActionType values are fidesmail's action types, name for name (fides' whole set;
the fidesops ones among them are the same words). For the action types fidesops had, body_params
carry fidesmail's field names for them (what fidesmail/body_params.py validates); for fides' own
ones, what fides gives, as plain JSON.
"""

from __future__ import annotations

import enum
from typing import Any, Callable

from fidesmail_sidecar.params import field_of, plain_json

VERIFICATION = ("subject_identity_verification", "consent_request")
RECEIPT = "privacy_request_receipt"
COMPLETE_ACCESS = "privacy_request_complete_access"
REVIEW_DENY = "privacy_request_review_deny"
NO_PARAMS = ("privacy_request_complete_deletion", "privacy_request_complete_consent",
             "privacy_request_review_approve", "test_message")
USER_INVITE = "user_invite"
# fides' own action types whose params are passed as fides gives them.
AS_GIVEN = ("message_erasure_fulfillment", "consent_request_email_fulfillment", "privacy_request_error_notification",
            USER_INVITE, "external_user_welcome", "manual_task_digest")
ACTION_TYPES = (*VERIFICATION, RECEIPT, COMPLETE_ACCESS, REVIEW_DENY, *NO_PARAMS, *AS_GIVEN)


def body_params(action_type: str, params: Any) -> dict[str, Any]:
    """The body_params fidesmail takes for this action type, from fides' params object."""
    build = _BUILDERS.get(action_type)
    if build is not None:
        return build(params)
    if params is None:  # an action type without params, or one this adapter does not know
        return {}
    as_json = to_json(params)
    return as_json if isinstance(as_json, dict) else {"value": as_json}


def _verification(params: Any) -> dict[str, Any]:
    return {"verification_code": to_json(field_of(params, "verification_code")),
            "verification_code_ttl_seconds": to_json(field_of(params, "verification_code_ttl_seconds"))}


def _receipt(params: Any) -> dict[str, Any]:
    # fides builds the list from a set: sorted, so a retry of the same message has the same body.
    return {"request_types": sorted(to_json(field_of(params, "request_types", [])) or [])}


def _complete_access(params: Any) -> dict[str, Any]:
    built = {"download_links": to_json(field_of(params, "download_links", []))}
    days = field_of(params, "subject_request_download_time_in_days")
    if isinstance(days, (int, float)) and not isinstance(days, bool):
        # fides computes it as its links' lifetime / 86400 (30.0) into an int field: whole days.
        built["subject_request_download_time_in_days"] = int(days)
    return built


def _review_deny(params: Any) -> dict[str, Any]:
    return {"rejection_reason": to_json(field_of(params, "rejection_reason"))}


_BUILDERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    **{name: _verification for name in VERIFICATION},
    RECEIPT: _receipt,
    COMPLETE_ACCESS: _complete_access,
    REVIEW_DENY: _review_deny,
    **{name: (lambda params: {}) for name in NO_PARAMS},
}


def to_json(value: Any) -> Any:
    """Plain JSON values from fides' objects: pydantic v2 models, enums, dates, sets."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value  # fides' "days" is 30.0: keep it 30
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return to_json(dump(mode="json"))
    return plain_json(value, to_json)
