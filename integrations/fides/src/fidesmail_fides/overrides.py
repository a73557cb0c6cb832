"""fides' own wording where an operator changed it: its messaging templates, and a subject its caller set.

fides keeps a template (subject and body with __VARIABLE__ placeholders) per configurable action
type, edited in its admin UI. Where the one fides would use differs from fides' default wording,
fides renders it with its own code (`_build_email`, so every variable means what it means in fides)
and the result travels to fidesmail as `subject_override` / `body_override`. Where it is fides'
default, nothing is sent and fidesmail's built-in template for the action type is used.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

# For these two, fides puts a customised body into its own HTML layout as the introduction; the
# rendered text is in the email's template_variables under this name.
_INTRO_VARIABLE = {"manual_task_digest": "intro_text", "external_user_welcome": "custom_intro"}


def template_for(service: ModuleType, db: Any, action_type: Any, property_id: str | None) -> tuple[bool, Any]:
    """(send?, template): fides' choice of messaging template, made as dispatch_message makes it.

    With property-specific messaging on, a configurable action type is sent only when an enabled
    template exists for the property (fides skips it otherwise, and so does the adapter)."""
    value = getattr(action_type, "value", action_type)
    if (service.ConfigProxy(db).notifications.enable_property_specific_messaging
            and value in service.CONFIGURABLE_MESSAGING_ACTION_TYPES):
        template = service.get_property_specific_messaging_template(db, property_id, action_type)
        return template is not None, template
    return True, service.get_basic_messaging_template_by_type_or_default(db=db, template_type=value)


def overrides(service: ModuleType, db: Any, action_type: Any, body_params: Any, template: Any,
              subject_override: str | None) -> dict[str, str]:
    """{"subject_override": ..., "body_override": ...}, each only where fides' wording is not its default."""
    found: dict[str, str] = {}
    value = getattr(action_type, "value", action_type)
    content = getattr(template, "content", None) or {}
    default = _default_content(value)
    changed = [part for part in ("subject", "body") if part in content and content.get(part) != default.get(part)]
    if changed:
        email = service._build_email(config_proxy=service.ConfigProxy(db), action_type=action_type,
                                     body_params=body_params, messaging_template=template)
        if "subject" in changed and email.subject:
            found["subject_override"] = str(email.subject)
        if "body" in changed:
            intro = _INTRO_VARIABLE.get(value)
            body = (email.template_variables or {}).get(intro) if intro else email.body
            if body and str(body).strip():
                found["body_override"] = str(body)
    if subject_override:  # set by fides' caller (its erasure and consent emails to processors): it wins
        found["subject_override"] = str(subject_override)
    return found


def _default_content(action_type: str) -> dict[str, Any]:
    from fides.api.models.messaging_template import DEFAULT_MESSAGING_TEMPLATES

    return dict((DEFAULT_MESSAGING_TEMPLATES.get(action_type) or {}).get("content") or {})
