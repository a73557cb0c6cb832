"""fidesops' email action types and body params (pydantic models) as fidesmail's JSON send body."""

from __future__ import annotations

import enum
from typing import Any, Callable, Mapping

from fidesmail_sidecar.params import field_of, plain_json

# fidesops' EmailActionType values are fidesmail's action types, name for name.
VERIFICATION = ("subject_identity_verification", "consent_request")
RECEIPT = "privacy_request_receipt"
COMPLETE_ACCESS = "privacy_request_complete_access"
NO_PARAMS = ("privacy_request_complete_deletion", "privacy_request_review_approve", "test_message")
REVIEW_DENY = "privacy_request_review_deny"
ERASURE_FULFILLMENT = "email_erasure_fulfillment"
ACTION_TYPES = (*VERIFICATION, RECEIPT, COMPLETE_ACCESS, *NO_PARAMS, REVIEW_DENY, ERASURE_FULFILLMENT)


def body_params(action_type: str, params: Any) -> Any:
    """The body_params fidesmail takes for this action type, from fidesops' params object."""
    build = _BUILDERS.get(action_type)
    if build is None:  # an action type this adapter does not know: let fidesmail judge it
        return to_json(params) if params is not None else {}
    return build(params)


def _verification(params: Any) -> dict[str, Any]:
    return {"verification_code": to_json(field_of(params, "verification_code")),
            "verification_code_ttl_seconds": to_json(field_of(params, "verification_code_ttl_seconds"))}


def _receipt(params: Any) -> dict[str, Any]:
    return {"request_types": to_json(field_of(params, "request_types", []))}


def _complete_access(params: Any) -> dict[str, Any]:
    return {"download_links": to_json(field_of(params, "download_links", []))}


def _review_deny(params: Any) -> dict[str, Any]:
    return {"rejection_reason": to_json(field_of(params, "rejection_reason"))}


def _erasure_fulfillment(params: Any) -> dict[str, Any]:
    # fidesops passes the bare list of CheckpointActionRequired (one per collection); fidesmail
    # takes that list too, but the named form leaves room for controller and identities.
    items = field_of(params, "dataset_collection_action_required") if isinstance(params, Mapping) else params
    return {"dataset_collection_action_required": [_checkpoint(item) for item in (items or [])]}


def _checkpoint(item: Any) -> dict[str, Any]:
    """One CheckpointActionRequired: the collection and what to do there."""
    actions = field_of(item, "action_needed")
    return {"step": to_json(field_of(item, "step", "erasure")),
            "collection": to_json(field_of(item, "collection")),
            "action_needed": None if actions is None else [
                {"locators": to_json(field_of(action, "locators")), "get": to_json(field_of(action, "get")),
                 "update": to_json(field_of(action, "update"))}
                for action in actions]}


_BUILDERS: dict[str, Callable[[Any], Any]] = {
    **{name: _verification for name in VERIFICATION},
    RECEIPT: _receipt,
    COMPLETE_ACCESS: _complete_access,
    **{name: (lambda params: {}) for name in NO_PARAMS},
    REVIEW_DENY: _review_deny,
    ERASURE_FULFILLMENT: _erasure_fulfillment,
}


def to_json(value: Any) -> Any:
    """Plain JSON values from fidesops' objects: enums, pydantic models, CollectionAddress, sets."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if _is_collection_address(value):
        return {"dataset": value.dataset, "collection": value.collection}
    if _is_pydantic_model(value):
        # .dict() turns nested models into dicts but keeps arbitrary types (CollectionAddress) as they are.
        return to_json(value.dict())
    return plain_json(value, to_json)


def _is_collection_address(value: Any) -> bool:
    return isinstance(getattr(value, "dataset", None), str) and isinstance(getattr(value, "collection", None), str)


def _is_pydantic_model(value: Any) -> bool:
    return hasattr(type(value), "__fields__") and callable(getattr(value, "dict", None))

