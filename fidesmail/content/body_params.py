"""What each action type takes as `body_params`: one marshmallow schema per action type, and sample values.

fidesops' action types come first; fides' own (fides 2.78's MessagingActionType, with the body params
of src/fides/api/schemas/messaging/messaging.py) follow, with fides' field names.
"""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields
from marshmallow.validate import Length, Range, Regexp

ACTION_TYPES = (
    "subject_identity_verification",
    "consent_request",
    "privacy_request_receipt",
    "privacy_request_complete_access",
    "privacy_request_complete_deletion",
    "privacy_request_review_approve",
    "privacy_request_review_deny",
    "email_erasure_fulfillment",
    "test_message",
    # fides' own
    "privacy_request_complete_consent",
    "message_erasure_fulfillment",
    "consent_request_email_fulfillment",
    "privacy_request_error_notification",
    "user_invite",
    "external_user_welcome",
    "manual_task_digest",
)
_ERASURE_ITEMS = "dataset_collection_action_required"


class UnknownActionType(ValueError):
    """An action type outside ACTION_TYPES."""


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=Length(1, max_length), **kwargs)


class _Scalars(fields.Field):
    """One JSON scalar or a list of them (fidesops' locator values), loaded as a list."""

    def _deserialize(self, value, attr, data, **kwargs):
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, (str, int, float)) for v in values):
            raise ValidationError("Must be a string, a number, or a non-empty list of them.")
        return values


class _CollectionAddressSchema(_Strict):
    dataset = _text(200, required=True)
    collection = _text(200, required=True)


class _CollectionAddress(fields.Field):
    """{"dataset": ..., "collection": ...}, or fidesops' string form "dataset:collection"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            dataset, colon, collection = value.partition(":")
            if not colon:
                raise ValidationError('Must be {"dataset": ..., "collection": ...} or "dataset:collection".')
            value = {"dataset": dataset, "collection": collection}
        return _CollectionAddressSchema().load(value)


class VerificationParams(_Strict):
    verification_code = fields.String(
        required=True, validate=Regexp(r"^[0-9]{1,32}\Z", error="Must contain digits only (1 to 32 of them).")
    )
    verification_code_ttl_seconds = fields.Integer(strict=True, required=True, validate=Range(min=1))


class ReceiptParams(_Strict):
    # Empty is allowed: fidesops sends [] for a policy without rules, and its receipt must still go out.
    request_types = fields.List(_text(100), required=True, validate=Length(0, 20))


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class _DownloadLink(fields.String):
    """An http(s) URL (a link), or words without any URL scheme (shown as text), as fidesops' local storage
    sends "your local fides_uploads folder"; javascript:, data: and other schemes are refused."""

    _url = fields.Url(schemes={"http", "https"})

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if _SCHEME.match(value.strip()):
            return self._url.deserialize(value, attr, data)
        if not value.strip():
            raise ValidationError("Must not be empty.")
        return value


class AccessCompleteParams(_Strict):
    download_links = fields.List(_DownloadLink(validate=Length(max=2048)), required=True, validate=Length(1, 100))
    # fides' setting for how long its links last; shown when given.
    subject_request_download_time_in_days = fields.Integer(strict=True, load_default=None, allow_none=True,
                                                           validate=Range(0, 36500))


class ReviewDenyParams(_Strict):
    rejection_reason = fields.String(load_default=None, allow_none=True, validate=Length(max=2000))


class NoParams(_Strict):
    pass


class ManualActionSchema(_Strict):
    """fidesops' ManualAction: how to find the records, and which fields to erase (and how)."""

    locators = fields.Dict(keys=_text(200), values=_Scalars(), required=True, validate=Length(min=1))
    get = fields.List(_text(200), load_default=None, allow_none=True)
    update = fields.Dict(keys=_text(200), values=fields.String(allow_none=True), load_default=None, allow_none=True)


class CheckpointActionRequiredSchema(_Strict):
    """fidesops' CheckpointActionRequired for one collection."""

    step = _text(100, load_default="erasure")
    collection = _CollectionAddress(required=True)
    action_needed = fields.List(fields.Nested(ManualActionSchema), load_default=None, allow_none=True)


class ErasureFulfillmentParams(_Strict):
    """Erasure instructions to a data processor (fidesops sent the bare list of collections)."""

    controller = _text(200, load_default=None, allow_none=True)
    third_party_vendor_name = _text(200, load_default=None, allow_none=True)
    identities = fields.Dict(keys=_text(100), values=_text(500), load_default=dict)
    dataset_collection_action_required = fields.List(
        fields.Nested(CheckpointActionRequiredSchema), required=True, validate=Length(1, 500)
    )


def _link(**kwargs) -> fields.Url:
    """An http(s) URL the email links to (fides' deployments may run on localhost, without a TLD)."""
    return fields.Url(schemes={"http", "https"}, require_tld=False, validate=Length(max=2048), **kwargs)


def _count() -> fields.Integer:
    return fields.Integer(strict=True, required=True, validate=Range(0, 10**9))


class _Lenient(Schema):
    """fides' nested models as fides dumps them: the fields an email shows are checked, the rest ignored."""

    class Meta:
        unknown = EXCLUDE


class MessageErasureParams(_Strict):
    """fides' ErasureRequestBodyParams: the users a processor is asked to erase."""

    controller = _text(200, required=True)
    third_party_vendor_name = _text(200, required=True)
    identities = fields.List(_text(500), required=True, validate=Length(max=10_000))


class _ConsentOption(_Lenient):
    data_use = _text(500, required=True)
    opt_in = fields.Boolean(required=True)


class _NoticeHistory(_Lenient):
    name = _text(500, required=True)


class _PrivacyPreference(_Lenient):
    preference = _text(100, required=True)
    privacy_notice_history = fields.Nested(_NoticeHistory, required=True)


class _Scalar(fields.Field):
    """One JSON scalar (an identity's value), or null."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ValidationError("Must be a string, a number, a boolean or null.")
        if isinstance(value, str) and len(value) > 500:
            raise ValidationError("Longer than maximum length 500.")
        return value


class _ConsentChanges(_Lenient):
    """fides' ConsentPreferencesByUser: one user's identities and preferences."""

    identities = fields.Dict(keys=_text(100), values=_Scalar(allow_none=True), required=True)
    consent_preferences = fields.List(fields.Nested(_ConsentOption), load_default=list)
    privacy_preferences = fields.List(fields.Nested(_PrivacyPreference), load_default=list)


class ConsentFulfillmentParams(_Strict):
    """fides' ConsentEmailFulfillmentBodyParams: users' consent changes a processor is asked to honour."""

    controller = _text(200, required=True)
    third_party_vendor_name = _text(200, required=True)
    required_identities = fields.List(_text(100), required=True, validate=Length(max=50))
    requested_changes = fields.List(fields.Nested(_ConsentChanges), required=True, validate=Length(max=10_000))


class ErrorNotificationParams(_Strict):
    unsent_errors = _count()


class UserInviteParams(_Strict):
    username = _text(200, required=True)
    invite_code = _text(500, required=True)
    # fides' admin_ui.url setting, which its invite link starts with (the fides adapter adds it).
    admin_ui_url = _link(load_default=None, allow_none=True)


class ExternalUserWelcomeParams(_Strict):
    username = _text(200, required=True)
    first_name = _text(200, load_default=None, allow_none=True)
    last_name = _text(200, load_default=None, allow_none=True)
    privacy_center_url = _link(required=True)
    access_token = _text(4096, required=True)
    org_name = _text(200, required=True)


class ManualTaskDigestParams(_Strict):
    vendor_contact_name = _text(200, required=True)
    organization_name = _text(200, required=True)
    portal_url = _link(required=True)
    imminent_task_count = _count()
    upcoming_task_count = _count()
    total_task_count = _count()
    company_logo_url = _link(load_default=None, allow_none=True)


BODY_PARAMS_SCHEMAS: dict[str, Schema] = {
    "subject_identity_verification": VerificationParams(),
    # fidesops sent consent requests the same one-time-code email.
    "consent_request": VerificationParams(),
    "privacy_request_receipt": ReceiptParams(),
    "privacy_request_complete_access": AccessCompleteParams(),
    "privacy_request_complete_deletion": NoParams(),
    "privacy_request_review_approve": NoParams(),
    "privacy_request_review_deny": ReviewDenyParams(),
    "email_erasure_fulfillment": ErasureFulfillmentParams(),
    "test_message": NoParams(),
    "privacy_request_complete_consent": NoParams(),
    "message_erasure_fulfillment": MessageErasureParams(),
    "consent_request_email_fulfillment": ConsentFulfillmentParams(),
    "privacy_request_error_notification": ErrorNotificationParams(),
    "user_invite": UserInviteParams(),
    "external_user_welcome": ExternalUserWelcomeParams(),
    "manual_task_digest": ManualTaskDigestParams(),
}

SAMPLE_PARAMS: dict[str, dict] = {
    "subject_identity_verification": {"verification_code": "123456", "verification_code_ttl_seconds": 600},
    "consent_request": {"verification_code": "123456", "verification_code_ttl_seconds": 600},
    "privacy_request_receipt": {"request_types": ["access", "erasure"]},
    "privacy_request_complete_access": {"download_links": ["https://example.com/download/1"],
                                        "subject_request_download_time_in_days": 5},
    "privacy_request_complete_deletion": {},
    "privacy_request_review_approve": {},
    "privacy_request_review_deny": {"rejection_reason": "We could not verify your identity."},
    "email_erasure_fulfillment": {
        "controller": "Example Inc.",
        "identities": {"email": "subject@example.com"},
        _ERASURE_ITEMS: [
            {
                "collection": {"dataset": "crm", "collection": "customers"},
                "action_needed": [{"locators": {"email": ["subject@example.com"]}, "update": {"name": None}}],
            }
        ],
    },
    "test_message": {},
    "privacy_request_complete_consent": {},
    "message_erasure_fulfillment": {"controller": "Example Inc.", "third_party_vendor_name": "Acme CRM",
                                    "identities": ["subject@example.com"]},
    "consent_request_email_fulfillment": {
        "controller": "Example Inc.", "third_party_vendor_name": "Acme Ads", "required_identities": ["email"],
        "requested_changes": [{"identities": {"email": "subject@example.com"},
                               "consent_preferences": [{"data_use": "Marketing", "opt_in": False}],
                               "privacy_preferences": [{"preference": "opt_out",
                                                        "privacy_notice_history": {"name": "Advertising"}}]}],
    },
    "privacy_request_error_notification": {"unsent_errors": 2},
    "user_invite": {"username": "ana", "invite_code": "inv-123", "admin_ui_url": "https://admin.example.com"},
    "external_user_welcome": {"username": "vendor1", "first_name": "Ana", "last_name": "Lee",
                              "privacy_center_url": "https://privacy.example.com", "access_token": "tok-123",
                              "org_name": "Example Inc."},
    "manual_task_digest": {"vendor_contact_name": "Bo", "organization_name": "Example Inc.",
                           "portal_url": "https://privacy.example.com/tasks", "imminent_task_count": 1,
                           "upcoming_task_count": 2, "total_task_count": 3, "company_logo_url": None},
}


def load_body_params(action_type: str, raw) -> dict:
    """Validate body_params for an action type; ValidationError messages are keyed by field."""
    schema = BODY_PARAMS_SCHEMAS.get(action_type)
    if schema is None:
        raise UnknownActionType(f"unknown action type {action_type!r}")
    if action_type == "email_erasure_fulfillment" and isinstance(raw, list):
        # fidesops posted the list of CheckpointActionRequired itself as body_params.
        try:
            return schema.load({_ERASURE_ITEMS: raw})
        except ValidationError as exc:
            raise ValidationError(exc.messages[_ERASURE_ITEMS]) from None
    return schema.load({} if raw is None else raw)
