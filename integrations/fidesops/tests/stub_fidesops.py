"""A stand-in for the few fidesops 1.8.2 modules the hook touches, written into a temp dir for sys.path.

Names, signatures and import style follow fidesops 1.8.2: `dispatch_email` is imported by name
into three modules, its Celery task calls it by its global name, `send_verification_code_to_user`
checks `EmailConfig.get_configuration` first. fidesops' own dispatch here raises, so a test sees
at once if it still runs. The Celery stand-in carries only what the adapter reads: `current_task`
and the `before_task_publish` signal, with a publish that hands the headers to a "worker" call.
"""

from __future__ import annotations

from pathlib import Path

from tests.adapter_sidecar import CELERY_MODULES, write_modules

MODULES = {
    "fidesops/__init__.py": "",
    "fidesops/ops/__init__.py": "",
    "fidesops/ops/common_exceptions.py": '''
        class FidesopsException(Exception):
            def __init__(self, message, errors=[]):
                super().__init__(message)
                self.message = message
                self.errors = errors


        class EmailDispatchException(FidesopsException):
            """Custom Exception - Email Dispatch Error"""
    ''',
    "fidesops/ops/graph/__init__.py": "",
    "fidesops/ops/graph/config.py": '''
        class CollectionAddress:
            def __init__(self, dataset, collection):
                self.dataset = dataset
                self.collection = collection
                self.value = ":".join((dataset, collection))

            def __repr__(self):
                return self.value
    ''',
    "fidesops/ops/models/__init__.py": "",
    "fidesops/ops/models/policy.py": '''
        from enum import Enum


        class CurrentStep(Enum):
            access = "access"
            erasure = "erasure"
    ''',
    # pydantic's BaseModel in fidesops; here the two things the adapter relies on: __fields__ and .dict(),
    # which turns nested models into dicts and keeps arbitrary types (CollectionAddress) as they are.
    "fidesops/ops/schemas/__init__.py": '''
        class BaseModel:
            __fields__ = {}

            def __init__(self, **values):
                for name in self.__fields__:
                    setattr(self, name, values.get(name))

            def dict(self):
                def plain(value):
                    if isinstance(value, BaseModel):
                        return value.dict()
                    if isinstance(value, list):
                        return [plain(v) for v in value]
                    return value

                return {name: plain(getattr(self, name)) for name in self.__fields__}
    ''',
    "fidesops/ops/models/privacy_request.py": '''
        from fidesops.ops.schemas import BaseModel


        class ManualAction(BaseModel):
            __fields__ = {"locators": None, "get": None, "update": None}


        class CheckpointActionRequired(BaseModel):
            __fields__ = {"step": None, "collection": None, "action_needed": None}


        class PrivacyRequest:
            def __init__(self, id):
                self.id = id


        class ConsentRequest:
            def __init__(self, id):
                self.id = id
    ''',
    "fidesops/ops/schemas/email/__init__.py": "",
    "fidesops/ops/schemas/email/email.py": '''
        from enum import Enum

        from fidesops.ops.schemas import BaseModel


        class EmailActionType(str, Enum):
            CONSENT_REQUEST = "consent_request"
            SUBJECT_IDENTITY_VERIFICATION = "subject_identity_verification"
            EMAIL_ERASURE_REQUEST_FULFILLMENT = "email_erasure_fulfillment"
            PRIVACY_REQUEST_RECEIPT = "privacy_request_receipt"
            PRIVACY_REQUEST_COMPLETE_ACCESS = "privacy_request_complete_access"
            PRIVACY_REQUEST_COMPLETE_DELETION = "privacy_request_complete_deletion"
            PRIVACY_REQUEST_REVIEW_DENY = "privacy_request_review_deny"
            PRIVACY_REQUEST_REVIEW_APPROVE = "privacy_request_review_approve"


        class SubjectIdentityVerificationBodyParams(BaseModel):
            __fields__ = {"verification_code": None, "verification_code_ttl_seconds": None}


        class RequestReceiptBodyParams(BaseModel):
            __fields__ = {"request_types": None}


        class AccessRequestCompleteBodyParams(BaseModel):
            __fields__ = {"download_links": None}


        class RequestReviewDenyBodyParams(BaseModel):
            __fields__ = {"rejection_reason": None}
    ''',
    "fidesops/ops/models/email.py": '''
        from fidesops.ops.common_exceptions import EmailDispatchException


        class EmailConfig:
            rows = []  # what fidesops' database would hold

            @classmethod
            def get_configuration(cls, db):
                if not cls.rows:
                    raise EmailDispatchException("No email config found.")
                return cls.rows[0]
    ''',
    "fidesops/ops/tasks/__init__.py": '''
        EMAIL_QUEUE_NAME = "fidesops.email"


        def task(function):
            """Celery's @celery_app.task: the function, with a name and apply_async."""
            import celery

            function.name = function.__module__ + "." + function.__name__
            function.apply_async = lambda queue=None, kwargs=None: celery.publish(function, kwargs or {})
            return function
    ''',
    "fidesops/ops/service/__init__.py": "",
    "fidesops/ops/service/email/__init__.py": "",
    "fidesops/ops/service/email/email_dispatch_service.py": '''
        from fidesops.ops.common_exceptions import EmailDispatchException
        from fidesops.ops.models.email import EmailConfig
        from fidesops.ops.tasks import task


        @task
        def dispatch_email_task(email_meta, to_email):
            dispatch_email(None, email_meta["action_type"], to_email, email_meta.get("body_params"))


        def dispatch_email(db, action_type, to_email, email_body_params=None):
            """Sends an email to `to_email` with content supplied in `email_body_params`"""
            if not to_email:
                raise EmailDispatchException("No email supplied.")
            EmailConfig.get_configuration(db=db)
            raise AssertionError("fidesops' own Mailgun dispatch ran")
    ''',
    "fidesops/ops/service/_verification.py": '''
        from fidesops.ops.models.email import EmailConfig
        from fidesops.ops.models.privacy_request import ConsentRequest
        from fidesops.ops.schemas.email.email import EmailActionType, SubjectIdentityVerificationBodyParams
        from fidesops.ops.service.email.email_dispatch_service import dispatch_email


        def send_verification_code_to_user(db, request, email, code="123456"):
            EmailConfig.get_configuration(db=db)  # Validates Fidesops is currently configured to send emails
            action_type = (EmailActionType.CONSENT_REQUEST if isinstance(request, ConsentRequest)
                           else EmailActionType.SUBJECT_IDENTITY_VERIFICATION)
            dispatch_email(db, action_type=action_type, to_email=email,
                           email_body_params=SubjectIdentityVerificationBodyParams(
                               verification_code=code, verification_code_ttl_seconds=600))
            return code
    ''',
    "fidesops/ops/service/connectors/__init__.py": "",
    "fidesops/ops/service/connectors/email_connector.py": '''
        from fidesops.ops.service.email.email_dispatch_service import dispatch_email
        from fidesops.ops.schemas.email.email import EmailActionType


        def email_connector_erasure_send(db, privacy_request, to_email, template_values):
            dispatch_email(db, action_type=EmailActionType.EMAIL_ERASURE_REQUEST_FULFILLMENT,
                           to_email=to_email, email_body_params=template_values)
    ''',
    "fidesops/ops/service/privacy_request/__init__.py": "",
    "fidesops/ops/service/privacy_request/request_runner_service.py": '''
        from fidesops.ops.schemas.email.email import AccessRequestCompleteBodyParams, EmailActionType
        from fidesops.ops.service.email.email_dispatch_service import dispatch_email


        def initiate_privacy_request_completion_email(session, to_email, access_result_urls):
            dispatch_email(db=session, action_type=EmailActionType.PRIVACY_REQUEST_COMPLETE_ACCESS,
                           to_email=to_email,
                           email_body_params=AccessRequestCompleteBodyParams(download_links=access_result_urls))


        def run_privacy_request(privacy_request_id, to_email, urls):
            """The Celery task's body: it holds the id, the email function below it does not."""
            initiate_privacy_request_completion_email(None, to_email, urls)
    ''',
    "fidesops/ops/api/__init__.py": "",
    "fidesops/ops/api/v1/__init__.py": "",
    "fidesops/ops/api/v1/endpoints/__init__.py": "",
    "fidesops/ops/api/v1/endpoints/identity_verification_endpoints.py": '''
        from fidesops.ops.models.email import EmailConfig
        from fidesops.ops.schemas import BaseModel


        class IdentityVerificationConfigResponse(BaseModel):
            __fields__ = {"identity_verification_required": None, "valid_email_config_exists": None}


        def get_id_verification_config(db=None):
            email_config = EmailConfig.rows[0] if EmailConfig.rows else None
            return IdentityVerificationConfigResponse(
                identity_verification_required=True,
                valid_email_config_exists=bool(email_config and email_config.get("secrets")),
            )
    ''',
    "fidesops/ops/api/v1/endpoints/privacy_request_endpoints.py": '''
        from fidesops.ops.common_exceptions import EmailDispatchException
        from fidesops.ops.schemas.email.email import (
            EmailActionType,
            RequestReceiptBodyParams,
            RequestReviewDenyBodyParams,
        )
        from fidesops.ops.service._verification import send_verification_code_to_user
        from fidesops.ops.service.email.email_dispatch_service import dispatch_email_task
        from fidesops.ops.tasks import EMAIL_QUEUE_NAME


        def create_privacy_request(db, privacy_request, email):
            """What fidesops answers about one request: sent, or the failure it reports."""
            try:
                send_verification_code_to_user(db, privacy_request, email)
            except EmailDispatchException as exc:
                return {"message": "Verification email could not be sent.", "error": str(exc)}
            return {"sent": True}


        def _send_privacy_request_receipt_email_to_user(email, request_types):
            dispatch_email_task.apply_async(queue=EMAIL_QUEUE_NAME, kwargs={
                "email_meta": {"action_type": EmailActionType.PRIVACY_REQUEST_RECEIPT,
                               "body_params": RequestReceiptBodyParams(request_types=request_types)},
                "to_email": email})


        def _send_privacy_request_review_email_to_user(action_type, email, rejection_reason):
            dispatch_email_task.apply_async(queue=EMAIL_QUEUE_NAME, kwargs={
                "email_meta": {"action_type": action_type,
                               "body_params": RequestReviewDenyBodyParams(rejection_reason=rejection_reason)
                               if action_type is EmailActionType.PRIVACY_REQUEST_REVIEW_DENY else None},
                "to_email": email})


        def verify_identification_code(privacy_request, email):
            _send_privacy_request_receipt_email_to_user(email, {"erasure", "access"})


        def deny_privacy_request(privacy_request, email, reason):
            _send_privacy_request_review_email_to_user(EmailActionType.PRIVACY_REQUEST_REVIEW_DENY, email, reason)
    ''',
    **CELERY_MODULES,
}


def write(directory: Path) -> Path:
    """Write the stand-in modules under `directory`; returns it (put it on sys.path)."""
    return write_modules(directory, MODULES)
