"""fides' messaging templates: the subject and body of an action type, with `__VARIABLE__` placeholders.

fides 2.78 lets its admin UI change the wording of 9 action types (DEFAULT_MESSAGING_TEMPLATES,
src/fides/api/models/messaging_template.py); fidesmail keeps such a template as a file of the config
tree. Placeholders are replaced by plain text in one pass and never evaluated (fides removed Jinja from
user templates after a template injection); the text is escaped into the HTML part by rendering.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fidesmail.content import variables

# fides 2.78.2's MessagingActionType, in its order (the words of its 422s list them so).
FIDES_ACTION_TYPES = (
    "consent_request", "subject_identity_verification", "consent_request_email_fulfillment",
    "message_erasure_fulfillment", "privacy_request_error_notification", "privacy_request_receipt",
    "privacy_request_complete_access", "privacy_request_complete_deletion", "privacy_request_complete_consent",
    "privacy_request_review_deny", "privacy_request_review_approve", "user_invite", "external_user_welcome",
    "manual_task_digest", "test_message",
)

# fides' DEFAULT_MESSAGING_TEMPLATES, in its order: type -> (label, subject, body).
DEFAULTS = {
    "subject_identity_verification": (
        "Subject identity verification", "Your one-time code is __CODE__",
        "Your privacy request verification code is __CODE__. Please return to the Privacy Center and enter the "
        "code to continue. This code will expire in __MINUTES__ minutes."),
    "privacy_request_receipt": (
        "Privacy request received", "Your privacy request has been received",
        "Your privacy request has been received. We will get back to you shortly."),
    "privacy_request_review_approve": (
        "Privacy request approved", "Your privacy request has been approved",
        "Your privacy request has been approved and is currently processing."),
    "privacy_request_review_deny": (
        "Privacy request denied", "Your privacy request has been denied",
        "Your privacy request has been denied. __DENIAL_REASON__."),
    "privacy_request_complete_access": (
        "Access request completed", "Your data is ready to be downloaded",
        "Your access request has been completed and can be downloaded at __DOWNLOAD_LINK__. For security "
        "purposes, this secret link will expire in __DAYS__ days."),
    "privacy_request_complete_deletion": (
        "Erasure request completed", "Your data has been deleted", "Your erasure request has been completed."),
    "privacy_request_complete_consent": (
        "Consent request completed", "Your consent preferences have been saved",
        "Your consent request has been completed."),
    "manual_task_digest": (
        "Manual task digest", "Weekly DSR Summary from __ORGANIZATION_NAME__",
        "This is your weekly summary of open data subject requests tasks from __ORGANIZATION_NAME__ that require "
        "your attention. Please review the tasks in our Privacy Center to ensure timely completion."),
    "external_user_welcome": (
        "External user welcome", "Welcome to our Privacy Center",
        "An account has been created for you by the privacy team at __ORG_NAME__ so that you can assist them in "
        "responding to data subject requests, as required by the GDPR and many US state laws, for users that have "
        "data in your systems. A portal is available to view and take action on these requests at: "
        "__PORTAL_LINK__. Through this portal you can upload or provide user data for users who have requested a "
        "copy of their information and attest that users have been removed from your system in the case of an "
        "erasure request. The provided link is valid for 30 days and you will be asked to verify your email "
        "address each time you access the portal. If you have any questions, please reach out first to your "
        "contacts at: __ORG_NAME__"),
}
TEMPLATE_TYPES = tuple(DEFAULTS)
OUTPUT_LIMIT = 1024 * 1024  # characters of one rendered subject or body
_PLACEHOLDER = re.compile(r"__[A-Z0-9]+(?:_[A-Z0-9]+)*__")


class TooLarge(ValueError):
    """A template whose placeholders would make text over OUTPUT_LIMIT characters."""


@dataclass(frozen=True)
class MessagingTemplate:
    """One action type's wording: subject and body with placeholders; a disabled one is not used."""

    type: str
    subject: str
    body: str
    enabled: bool = True

    @property
    def content(self) -> dict:
        return {"subject": self.subject, "body": self.body}

    @property
    def is_default(self) -> bool:
        """True when it says exactly fides' default wording (which the built-in templates say already)."""
        _, subject, body = DEFAULTS[self.type]
        return (self.subject, self.body) == (subject, body)


@dataclass(frozen=True)
class Wording:
    """Text that replaces what the built-in template of an action type says: its subject, its body."""

    subject: str | None = None
    body: str | None = None


NO_WORDING = Wording()


def default_template(template_type: str) -> MessagingTemplate:
    _, subject, body = DEFAULTS[template_type]
    return MessagingTemplate(template_type, subject, body, enabled=False)


def substitute(text: str, values: dict[str, str], limit: int = OUTPUT_LIMIT) -> str:
    """`text` with each known placeholder replaced by its value, in one pass (a value is never looked at
    again); unknown placeholders stay as they are, as in fides. TooLarge past `limit` characters."""
    parts, size, last = [], 0, 0
    for match in _PLACEHOLDER.finditer(text):
        value = values.get(match.group())
        if value is None:
            continue
        parts += (text[last:match.start()], value)
        size += match.start() - last + len(value)
        last = match.end()
        if size > limit:
            raise TooLarge(f"renders to more than {limit // (1024 * 1024)} MiB")
    if size + len(text) - last > limit:
        raise TooLarge(f"renders to more than {limit // (1024 * 1024)} MiB")
    parts.append(text[last:])
    return "".join(parts)


def wording_for(template: MessagingTemplate | None, action_type: str, params: dict,
                subject_override: str | None = None, body_override: str | None = None) -> Wording:
    """What replaces the built-in wording: the caller's overrides (verbatim), else the enabled template's parts
    with the message's placeholders filled in. TooLarge when the template would render too much."""
    subject, body = subject_override, body_override
    if template is not None and template.enabled and (subject is None or body is None):
        values = variables.placeholders_of(action_type, params)
        if subject is None:
            subject = substitute(template.subject, values)
        if body is None:
            body = substitute(template.body, values)
    return Wording(subject, body) if subject is not None or body is not None else NO_WORDING
