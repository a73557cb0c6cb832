"""What an email's templates can say: an action type's validated params, the values derived from them, and
fides' `__VARIABLE__` placeholders.

The Jinja templates (built-in or from the tree) see the params and the derived values as variables;
fides' messaging templates see the placeholders fides gives each action type (`_build_email`,
src/fides/api/service/messaging/message_dispatch_service.py at 2.78.2), as plain text.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode


def _minutes(params: dict) -> int:
    return params["verification_code_ttl_seconds"] // 60


def _display_name(params: dict) -> str:
    """fides' greeting name: first and last name, the first name, else the username."""
    if params.get("first_name"):
        return " ".join(part for part in (params["first_name"], params.get("last_name")) if part)
    return params["username"]


def _portal_link(params: dict) -> str:
    """fides' link to its privacy center, the access token in the query (quoted: a token is not text to trust)."""
    url = params["privacy_center_url"]
    return f"{url}{'&' if '?' in url else '?'}access_token={quote(params['access_token'], safe='')}"


def _invite_link(params: dict) -> str | None:
    """fides' invite link: its admin UI's login page with the invite code and username (quoted)."""
    if not params.get("admin_ui_url"):
        return None
    query = urlencode({"invite_code": params["invite_code"], "username": params["username"]})
    return f"{params['admin_ui_url'].rstrip('/')}/login?{query}"


def _opt(chosen: bool) -> str:
    return "Opt-in" if chosen else "Opt-out"


def _consent_rows(params: dict) -> list[dict]:
    """One row per user of fides' consent email: the required identities' values, then the preferences."""
    rows = []
    for change in params["requested_changes"]:
        preferences = [f"{option['data_use']}: {_opt(option['opt_in'])}" for option in change["consent_preferences"]]
        preferences += [f"{p['privacy_notice_history']['name']}: {_opt(p['preference'] == 'opt_in')}"
                        for p in change["privacy_preferences"]]
        identities = [_as_text(change["identities"].get(kind)) for kind in params["required_identities"]]
        rows.append({"identities": identities, "preferences": ", ".join(preferences)})
    return rows


_DERIVED = {
    "external_user_welcome": {"display_name": _display_name, "portal_link": _portal_link},
    "user_invite": {"invite_link": _invite_link},
    "consent_request_email_fulfillment": {"consent_rows": _consent_rows},
}


def context_of(action_type: str, params: dict) -> dict:
    """The variables of the action type's Jinja templates: its params and what is derived from them."""
    context = dict(params, action_type=action_type)
    if "verification_code_ttl_seconds" in params:
        context["verification_code_ttl_minutes"] = _minutes(params)
    for name, derive in _DERIVED.get(action_type, {}).items():
        context[name] = derive(params)
    return context


# fides' placeholders per action type: name -> how its value comes from the params.
_PLACEHOLDERS = {
    "subject_identity_verification": {"code": lambda p: p["verification_code"], "minutes": _minutes},
    "privacy_request_receipt": {"request_types": lambda p: p["request_types"]},
    "privacy_request_complete_access": {"download_link": lambda p: p["download_links"][0],
                                        "days": lambda p: p.get("subject_request_download_time_in_days")},
    "privacy_request_review_deny": {"denial_reason": lambda p: p.get("rejection_reason")},
    "manual_task_digest": {name: (lambda p, name=name: p.get(name)) for name in (
        "vendor_contact_name", "organization_name", "portal_url", "imminent_task_count", "upcoming_task_count",
        "total_task_count", "company_logo_url")},
    "external_user_welcome": {
        "username": lambda p: p["username"], "display_name": _display_name, "first_name": lambda p: p.get("first_name"),
        "last_name": lambda p: p.get("last_name"), "org_name": lambda p: p["org_name"], "portal_link": _portal_link,
        "privacy_center_url": lambda p: p["privacy_center_url"], "access_token": lambda p: p["access_token"]},
}


def placeholder_names(action_type: str) -> tuple[str, ...]:
    """The placeholders an action type's messaging template may use, as written: `__CODE__`, ..."""
    return tuple(f"__{name.upper()}__" for name in _PLACEHOLDERS.get(action_type, {}))


def _as_text(value) -> str:
    if value is None:
        return ""  # fides wrote "None"; an absent value is shown as nothing
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(item) for item in value)
    return str(value)


def placeholders_of(action_type: str, params: dict) -> dict[str, str]:
    """`__NAME__` -> its text for one message of the action type (validated params)."""
    return {f"__{name.upper()}__": _as_text(value(params))
            for name, value in _PLACEHOLDERS.get(action_type, {}).items()}
