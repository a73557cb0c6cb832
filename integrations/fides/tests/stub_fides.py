"""A stand-in for the few fides 2.78.2 modules the hook touches, written into a temp dir for sys.path.

Names, signatures, import style and the decisions that matter follow fides 2.78.2
(src/fides/api/service/messaging/message_dispatch_service.py and its callers): `dispatch_message`
and `get_email_messaging_config_service_type` are imported by name into the modules that send,
`dispatch_message_task` calls `dispatch_message` by its global name, MessagingService checks
`MessagingConfig.get_configuration` before it queues a verification code, templates are chosen as
fides chooses them and rendered by `_build_email` with `__VARIABLE__` placeholders. fides' own email
dispatch here raises, so a test sees at once if it still runs; its SMS dispatch records what it sent.
"""

from __future__ import annotations

from pathlib import Path

from tests.adapter_sidecar import CELERY_MODULES, write_modules

MODULES = {
    "fides/__init__.py": "",
    "fides/api/__init__.py": "",
    "fides/api/common_exceptions.py": '''
        class FidesopsException(Exception):
            def __init__(self, message, errors=[]):
                super().__init__(message)
                self.message = message
                self.errors = errors


        class MessageDispatchException(FidesopsException):
            """Custom Exception - Message Dispatch Error"""
    ''',
    # pydantic v2's BaseModel in fides; here what the adapter relies on: model_dump(mode="json").
    "fides/api/schemas/__init__.py": '''
        class BaseModel:
            fields = ()

            def __init__(self, **values):
                for name in self.fields:
                    setattr(self, name, values.get(name))

            def model_dump(self, mode="python"):
                def plain(value):
                    if isinstance(value, BaseModel):
                        return value.model_dump(mode=mode)
                    if isinstance(value, list):
                        return [plain(v) for v in value]
                    return value

                return {name: plain(getattr(self, name)) for name in self.fields}
    ''',
    "fides/api/schemas/redis_cache.py": '''
        from fides.api.schemas import BaseModel


        class Identity(BaseModel):
            fields = ("email", "phone_number")
    ''',
    "fides/api/schemas/messaging/__init__.py": "",
    "fides/api/schemas/messaging/messaging.py": '''
        from enum import Enum, StrEnum

        from fides.api.schemas import BaseModel


        class MessagingMethod(Enum):
            EMAIL = "email"
            SMS = "sms"


        EMAIL_MESSAGING_SERVICES = ("mailgun", "twilio_email", "mailchimp_transactional", "aws_ses")
        SMS_MESSAGING_SERVICES = ("twilio_text",)


        class MessagingActionType(StrEnum):
            CONSENT_REQUEST = "consent_request"
            SUBJECT_IDENTITY_VERIFICATION = "subject_identity_verification"
            CONSENT_REQUEST_EMAIL_FULFILLMENT = "consent_request_email_fulfillment"
            MESSAGE_ERASURE_REQUEST_FULFILLMENT = "message_erasure_fulfillment"
            PRIVACY_REQUEST_ERROR_NOTIFICATION = "privacy_request_error_notification"
            PRIVACY_REQUEST_RECEIPT = "privacy_request_receipt"
            PRIVACY_REQUEST_COMPLETE_ACCESS = "privacy_request_complete_access"
            PRIVACY_REQUEST_COMPLETE_DELETION = "privacy_request_complete_deletion"
            PRIVACY_REQUEST_COMPLETE_CONSENT = "privacy_request_complete_consent"
            PRIVACY_REQUEST_REVIEW_DENY = "privacy_request_review_deny"
            PRIVACY_REQUEST_REVIEW_APPROVE = "privacy_request_review_approve"
            USER_INVITE = "user_invite"
            EXTERNAL_USER_WELCOME = "external_user_welcome"
            MANUAL_TASK_DIGEST = "manual_task_digest"
            TEST_MESSAGE = "test_message"


        CONFIGURABLE_MESSAGING_ACTION_TYPES = (
            "subject_identity_verification", "privacy_request_receipt", "privacy_request_complete_access",
            "privacy_request_complete_deletion", "privacy_request_complete_consent", "privacy_request_review_deny",
            "privacy_request_review_approve", "manual_task_digest", "external_user_welcome",
        )


        class SubjectIdentityVerificationBodyParams(BaseModel):
            fields = ("verification_code", "verification_code_ttl_seconds")

            def get_verification_code_ttl_minutes(self):
                return 0 if self.verification_code_ttl_seconds < 60 else self.verification_code_ttl_seconds // 60


        class RequestReceiptBodyParams(BaseModel):
            fields = ("request_types",)


        class AccessRequestCompleteBodyParams(BaseModel):
            fields = ("download_links", "subject_request_download_time_in_days")


        class RequestReviewDenyBodyParams(BaseModel):
            fields = ("rejection_reason",)


        class ConsentPreferencesByUser(BaseModel):
            fields = ("identities", "consent_preferences", "privacy_preferences")


        class ConsentEmailFulfillmentBodyParams(BaseModel):
            fields = ("controller", "third_party_vendor_name", "required_identities", "requested_changes")


        class ErasureRequestBodyParams(BaseModel):
            fields = ("controller", "third_party_vendor_name", "identities")


        class ErrorNotificationBodyParams(BaseModel):
            fields = ("unsent_errors",)


        class UserInviteBodyParams(BaseModel):
            fields = ("username", "invite_code")


        class ExternalUserWelcomeBodyParams(BaseModel):
            fields = ("username", "first_name", "last_name", "privacy_center_url", "access_token", "org_name")


        class ManualTaskDigestBodyParams(BaseModel):
            fields = ("vendor_contact_name", "organization_name", "portal_url", "imminent_task_count",
                      "upcoming_task_count", "total_task_count", "company_logo_url")


        class EmailForActionType(BaseModel):
            fields = ("subject", "body", "template_variables")
    ''',
    "fides/config/__init__.py": "",
    "fides/config/config_proxy.py": '''
        import types

        SETTINGS = {  # what fides' config (toml, env, API) says; tests change it
            "notifications": {"notification_service_type": None, "enable_property_specific_messaging": False,
                              "send_request_receipt_notification": True},
            "execution": {"subject_identity_verification_required": True},
            "admin_ui": {"url": "https://admin.example.com"},
        }


        class ConfigProxy:
            def __init__(self, db=None):
                for section, values in SETTINGS.items():
                    setattr(self, section, types.SimpleNamespace(**values))
    ''',
    "fides/api/models/__init__.py": "",
    "fides/api/models/privacy_request.py": '''
        class PrivacyRequest:
            def __init__(self, id, property_id=None):
                self.id = id
                self.property_id = property_id
                self.code = None

            def cache_identity_verification_code(self, code):
                self.code = code


        class ConsentRequest(PrivacyRequest):
            pass
    ''',
    "fides/api/models/messaging.py": '''
        from fides.api.common_exceptions import MessageDispatchException
        from fides.api.schemas.messaging.messaging import (
            EMAIL_MESSAGING_SERVICES,
            SMS_MESSAGING_SERVICES,
            MessagingMethod,
        )


        def get_messaging_method(service_type):
            if service_type in EMAIL_MESSAGING_SERVICES:
                return MessagingMethod.EMAIL
            if service_type in SMS_MESSAGING_SERVICES:
                return MessagingMethod.SMS
            return None


        class MessagingConfig:
            rows = []  # what fides' database holds

            def __init__(self, key, service_type, secrets=None):
                self.key, self.service_type, self.secrets = key, service_type, secrets
                self.last_test_succeeded = None

            @classmethod
            def get_configuration(cls, db, service_type):
                instance = cls.get_by_type(db, service_type)
                if not instance:
                    raise MessageDispatchException(f"No messaging config found for service_type {service_type}.")
                if not instance.secrets:
                    raise MessageDispatchException(f"Messaging secrets not found for config with key: {instance.key}")
                return instance

            @classmethod
            def get_by_type(cls, db, service_type):
                return next((row for row in cls.rows if row.service_type == service_type), None)

            def update_test_status(self, test_status, db):
                self.last_test_succeeded = test_status == "succeeded"
    ''',
    "fides/api/models/messaging_template.py": '''
        DEFAULT_MESSAGING_TEMPLATES = {
            "subject_identity_verification": {"label": "Subject identity verification", "content": {
                "subject": "Your one-time code is __CODE__",
                "body": "Your privacy request verification code is __CODE__. Please return to the Privacy Center "
                        "and enter the code to continue. This code will expire in __MINUTES__ minutes."}},
            "privacy_request_receipt": {"label": "Privacy request received", "content": {
                "subject": "Your privacy request has been received",
                "body": "Your privacy request has been received. We will get back to you shortly."}},
            "privacy_request_review_deny": {"label": "Privacy request denied", "content": {
                "subject": "Your privacy request has been denied",
                "body": "Your privacy request has been denied. __DENIAL_REASON__."}},
            "manual_task_digest": {"label": "Manual task digest", "content": {
                "subject": "Weekly DSR Summary from __ORGANIZATION_NAME__",
                "body": "This is your weekly summary of open data subject requests tasks from "
                        "__ORGANIZATION_NAME__ that require your attention."}},
        }


        class MessagingTemplate:
            stored = []  # (type, content, is_enabled, property ids) rows of fides' database; tests fill it

            def __init__(self, type, content, is_enabled=False, properties=()):
                self.type, self.content, self.is_enabled, self.properties = type, content, is_enabled, properties
    ''',
    "fides/api/tasks/__init__.py": '''
        MESSAGING_QUEUE_NAME = "fidesops.messaging"


        class _CeleryApp:
            def task(self, **options):
                """Celery's @celery_app.task(base=..., bind=True, autoretry_for=...): a name and apply_async."""
                def decorate(function):
                    import celery

                    function.name = function.__module__ + "." + function.__name__
                    function.autoretry_for = options.get("autoretry_for", ())
                    function.apply_async = lambda queue=None, kwargs=None: celery.publish(function, kwargs or {})
                    return function
                return decorate


        celery_app = _CeleryApp()
    ''',
    "fides/api/service/__init__.py": "",
    "fides/api/service/messaging/__init__.py": "",
    "fides/api/service/messaging/message_dispatch_service.py": '''
        from requests.exceptions import RequestException, Timeout

        from fides.api.common_exceptions import MessageDispatchException
        from fides.api.models.messaging import EMAIL_MESSAGING_SERVICES, MessagingConfig, get_messaging_method
        from fides.api.models.messaging_template import DEFAULT_MESSAGING_TEMPLATES, MessagingTemplate
        from fides.api.schemas.messaging.messaging import (
            CONFIGURABLE_MESSAGING_ACTION_TYPES,
            EmailForActionType,
            MessagingActionType,
            MessagingMethod,
        )
        from fides.api.schemas.redis_cache import Identity
        from fides.api.tasks import celery_app
        from fides.config.config_proxy import ConfigProxy

        SMS_SENT = []  # (to, text) of every SMS fides' own Twilio dispatch sent


        @celery_app.task(bind=True, autoretry_for=(Timeout, RequestException), retry_kwargs={"max_retries": 3})
        def dispatch_message_task(message_meta, service_type, to_identity, property_id):
            dispatch_message(None, action_type=MessagingActionType(message_meta["action_type"]),
                             to_identity=Identity(**to_identity), service_type=service_type,
                             message_body_params=message_meta.get("body_params"), property_id=property_id)


        def get_property_specific_messaging_template(db, property_id, action_type):
            return next((t for t in MessagingTemplate.stored if t.type == action_type.value and t.is_enabled
                         and property_id in t.properties), None)


        def get_basic_messaging_template_by_type_or_default(db, template_type):
            stored = next((t for t in MessagingTemplate.stored if t.type == template_type), None)
            if stored is None and template_type in DEFAULT_MESSAGING_TEMPLATES:
                return MessagingTemplate(template_type, DEFAULT_MESSAGING_TEMPLATES[template_type]["content"])
            return stored


        def message_send_enabled(db, property_id, action_type, basic_email_template_enabled):
            if ConfigProxy(db).notifications.enable_property_specific_messaging:
                return get_property_specific_messaging_template(db, property_id, action_type) is not None
            return bool(basic_email_template_enabled)


        def dispatch_message(db, action_type, *, to_identity, service_type, message_body_params=None,
                             subject_override=None, property_id=None):
            """Sends a message to `to_identity` with content supplied in `message_body_params`"""
            if not to_identity:
                raise MessageDispatchException("No identity supplied.")
            if not service_type:
                raise MessageDispatchException("No notification service type configured.")
            MessagingConfig.get_configuration(db=db, service_type=service_type)
            if get_messaging_method(service_type) == MessagingMethod.SMS:
                SMS_SENT.append((to_identity.phone_number, f"{action_type.value}: {message_body_params}"))
                return
            raise AssertionError("fides' own email dispatch ran")


        def _render(template_str, variables=None):
            for key, value in (variables or {}).items():
                template_str = template_str.replace(f"__{key.upper()}__", str(value))
            return template_str


        def _build_email(config_proxy, action_type, body_params, messaging_template=None):
            content = messaging_template.content
            variables = {}
            if action_type == MessagingActionType.SUBJECT_IDENTITY_VERIFICATION:
                variables = {"code": body_params.verification_code,
                             "minutes": body_params.get_verification_code_ttl_minutes()}
            elif action_type == MessagingActionType.PRIVACY_REQUEST_RECEIPT:
                variables = {"request_types": body_params.request_types}
            elif action_type == MessagingActionType.PRIVACY_REQUEST_REVIEW_DENY:
                variables = {"denial_reason": body_params.rejection_reason}
            elif action_type == MessagingActionType.MANUAL_TASK_DIGEST:
                variables = {"organization_name": body_params.organization_name}
                variables["intro_text"] = _render(content["body"], variables)
                return EmailForActionType(subject=_render(content["subject"], variables),
                                          body="<html>" + variables["intro_text"] + "</html>",
                                          template_variables=variables)
            return EmailForActionType(subject=_render(content["subject"], variables),
                                      body=_render(content["body"], variables), template_variables=variables)


        def get_email_messaging_config_service_type(db):
            configured = ConfigProxy(db).notifications.notification_service_type
            if configured is not None and configured in EMAIL_MESSAGING_SERVICES:
                return configured
            return next((row.service_type for row in MessagingConfig.rows
                         if row.service_type in EMAIL_MESSAGING_SERVICES), None)
    ''',
    "fides/service/__init__.py": "",
    "fides/service/messaging/__init__.py": "",
    "fides/service/messaging/messaging_service.py": '''
        from fides.api.common_exceptions import MessageDispatchException
        from fides.api.models.messaging import MessagingConfig
        from fides.api.models.privacy_request import PrivacyRequest
        from fides.api.schemas.messaging.messaging import (
            MessagingActionType,
            RequestReceiptBodyParams,
            SubjectIdentityVerificationBodyParams,
        )
        from fides.api.service.messaging.message_dispatch_service import (
            dispatch_message_task,
            get_email_messaging_config_service_type,
            message_send_enabled,
        )
        from fides.api.tasks import MESSAGING_QUEUE_NAME
        from fides.config.config_proxy import ConfigProxy


        class MessagingService:
            def __init__(self, db=None):
                self.db = db
                self.config_proxy = ConfigProxy(db)

            def send_verification_code(self, request, to_identity, property_id, code="908172"):
                if message_send_enabled(self.db, request.property_id, MessagingActionType.SUBJECT_IDENTITY_VERIFICATION,
                                        self.config_proxy.execution.subject_identity_verification_required):
                    service_type = (self.config_proxy.notifications.notification_service_type
                                    or get_email_messaging_config_service_type(db=self.db))
                    if not service_type:
                        raise MessageDispatchException("No notification service type configured.")
                    if isinstance(request, PrivacyRequest):
                        MessagingConfig.get_configuration(db=self.db, service_type=service_type)
                    request.cache_identity_verification_code(code)
                    dispatch_message_task.apply_async(queue=MESSAGING_QUEUE_NAME, kwargs={
                        "message_meta": {"action_type": MessagingActionType.SUBJECT_IDENTITY_VERIFICATION,
                                         "body_params": SubjectIdentityVerificationBodyParams(
                                             verification_code=code, verification_code_ttl_seconds=600)},
                        "service_type": service_type, "to_identity": to_identity.model_dump(mode="json"),
                        "property_id": property_id})
                    return code
                return None

            def send_privacy_request_receipt(self, identity, privacy_request, request_types):
                dispatch_message_task.apply_async(queue=MESSAGING_QUEUE_NAME, kwargs={
                    "message_meta": {"action_type": MessagingActionType.PRIVACY_REQUEST_RECEIPT,
                                     "body_params": RequestReceiptBodyParams(request_types=list(request_types))},
                    "service_type": self.config_proxy.notifications.notification_service_type,
                    "to_identity": identity.model_dump(mode="json"), "property_id": privacy_request.property_id})
    ''',
    "fides/api/service/connectors/__init__.py": "",
    "fides/api/service/connectors/base_erasure_email_connector.py": '''
        from fides.api.schemas.messaging.messaging import ErasureRequestBodyParams, MessagingActionType
        from fides.api.schemas.redis_cache import Identity
        from fides.api.service.messaging.message_dispatch_service import (
            dispatch_message,
            get_email_messaging_config_service_type,
        )


        def send_single_erasure_email(db, subject_email, subject_name, batch_identities, test_mode=False):
            org_name = "Example Inc."
            dispatch_message(
                db=db,
                action_type=MessagingActionType.MESSAGE_ERASURE_REQUEST_FULFILLMENT,
                to_identity=Identity(email=subject_email),
                service_type=get_email_messaging_config_service_type(db=db),
                message_body_params=ErasureRequestBodyParams(
                    controller=org_name, third_party_vendor_name=subject_name, identities=batch_identities),
                subject_override=f"{'Test notification' if test_mode else 'Notification'} "
                f"of user erasure requests from {org_name}",
            )
    ''',
    "fides/api/service/privacy_request/__init__.py": "",
    "fides/api/service/privacy_request/request_runner_service.py": '''
        from fides.api.schemas.messaging.messaging import AccessRequestCompleteBodyParams, MessagingActionType
        from fides.api.schemas.redis_cache import Identity
        from fides.api.service.messaging.message_dispatch_service import dispatch_message
        from fides.config.config_proxy import ConfigProxy


        def initiate_privacy_request_completion_email(session, access_result_urls, identity_data, property_id,
                                                      privacy_request_id):
            dispatch_message(
                db=session,
                action_type=MessagingActionType.PRIVACY_REQUEST_COMPLETE_ACCESS,
                to_identity=Identity(email=identity_data.get("email")),
                service_type=ConfigProxy(session).notifications.notification_service_type,
                message_body_params=AccessRequestCompleteBodyParams(
                    download_links=access_result_urls, subject_request_download_time_in_days=2592000 / 86400),
                property_id=property_id,
            )
    ''',
    "fides/api/api/__init__.py": "",
    "fides/api/api/v1/__init__.py": "",
    "fides/api/api/v1/endpoints/__init__.py": "",
    "fides/api/api/v1/endpoints/messaging_endpoints.py": '''
        from fides.api.common_exceptions import MessageDispatchException
        from fides.api.models.messaging import MessagingConfig
        from fides.api.schemas.messaging.messaging import MessagingActionType
        from fides.api.schemas.redis_cache import Identity
        from fides.api.service.messaging.message_dispatch_service import dispatch_message


        def send_test_message(service_type, db=None, email=None, phone_number=None):
            """POST /messaging/test/{service_type}: (status, body) as fides answers."""
            config = MessagingConfig.get_by_type(db, service_type)
            if not config:
                return 404, {"detail": f"No messaging config found with service type: {service_type}"}
            try:
                dispatch_message(db, action_type=MessagingActionType.TEST_MESSAGE, service_type=service_type,
                                 to_identity=Identity(email=email, phone_number=phone_number))
            except MessageDispatchException as exc:
                config.update_test_status(test_status="failed", db=db)
                return 400, {"detail": f"There was an error sending the test message: {exc}"}
            config.update_test_status(test_status="succeeded", db=db)
            return 200, {"details": "Test message successfully sent"}
    ''',
    "fides/api/api/v1/endpoints/identity_verification_endpoints.py": '''
        from fides.api.models.messaging import MessagingConfig
        from fides.api.schemas import BaseModel


        class IdentityVerificationConfigResponse(BaseModel):
            fields = ("identity_verification_required", "disable_consent_identity_verification",
                      "valid_email_config_exists")


        def get_id_verification_config(db=None):
            messaging_config = MessagingConfig.rows[0] if MessagingConfig.rows else None
            return IdentityVerificationConfigResponse(
                identity_verification_required=True, disable_consent_identity_verification=False,
                valid_email_config_exists=bool(messaging_config and messaging_config.secrets),
            )
    ''',
    **CELERY_MODULES,
}


def write(directory: Path) -> Path:
    """Write the stand-in modules under `directory`; returns it (put it on sys.path)."""
    return write_modules(directory, MODULES)
