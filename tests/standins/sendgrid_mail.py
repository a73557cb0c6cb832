"""SendGrid's v3 Mail Send body checks, with SendGrid's own error messages, fields and help links.

`mail_errors(body)` returns the list of SendGrid error objects (`{"message", "field", "help"}`) a
body earns (empty: valid), from SendGrid's published "Mail Send errors" reference (each a 400):
personalizations (at least one, each with a `to` of valid addresses, at most 1000), `from`
(`email` required and valid), `subject` (global or on every personalization), `content` (at least
one block, each a type and a non-empty value, text/plain before text/html), `custom_args` (an
object of strings, not empty), `categories` (at most 10 unique ASCII strings of at most 255
characters), `mail_settings.sandbox_mode.enable` (a boolean). Only the standard library is used.
"""

from __future__ import annotations

import re
from typing import Any

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.{}"
_EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+$")
_ADDRESS_EXAMPLE = (' e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", "name" : '
                    '"Example Recipient"}')
MESSAGES = {
    "personalizations": "The personalizations field is required and must have at least one personalization.",
    "personalizations_max": "The personalization block is limited to 1000 personalizations per API request. You "
                            "have provided {n} personalizations. Please consider splitting this into multiple "
                            "requests and resending your request.",
    "to_required": "The to parameter is required for all personalization objects.",
    "to": "The to array must at least have an 'email' parameter with a valid email address and it may also contain "
          "a 'name' parameter." + _ADDRESS_EXAMPLE,
    "from_missing": "The from object must be provided for every email send. It is an object that requires the email "
                    "parameter, but may also contain a name parameter." + _ADDRESS_EXAMPLE,
    "from_invalid": "The from email does not contain a valid address.",
    "subject": "The subject is required. You can get around this requirement if you use a template with a subject "
               "defined or if every personalization has a subject defined.",
    "subject_type": "The subject of your email must be a string at least one character in length.",
    "content": "Unless a valid template_id is provided, the content parameter is required. There must be at least "
               "one defined content block. We typically suggest both text/plain and text/html blocks are included, "
               "but only one block is required.",
    "content_type": "A content type is required, this tells email clients how to display the email.",
    "content_value": "The content value must be a string at least one character in length.",
    "content_order": "Following RFC 1341, section 7.2, if either text/html or text/plain are to be sent in your "
                     "email: text/plain needs to be first, followed by text/html, followed by any other content.",
    "custom_args": "All values of custom arguments object must be strings",
    "custom_args_empty": "custom_args can't be empty.",
    "categories": "Categories must be an array of strings.",
    "categories_max": "There is a limit of 10 categories for each email that is sent. You provided {n} categories.",
    "category_long": "Each category must not be longer than 255 characters. {c} exceeds this limit.",
    "category_unique": "The categories must be a unique list, and you have included {c} more than once.",
    "category_ascii": "Categories can not contain non-ASCII characters.",
    "sandbox": "The sandbox mode enable param should be a boolean value.",
    "body": "Bad Request",
}


def error(key: str, field: str | None, help_anchor: str | None = None, **values: Any) -> dict:
    """One SendGrid error object."""
    return {"message": MESSAGES[key].format(**values) if values else MESSAGES[key], "field": field,
            "help": HELP.format(help_anchor) if help_anchor else None}


def valid_email(value: Any) -> bool:
    return isinstance(value, str) and bool(_EMAIL.match(value))


def mail_errors(body: Any) -> list[dict]:
    """SendGrid's 400 errors for a Mail Send body, in SendGrid's order (empty when the body is valid)."""
    if not isinstance(body, dict):
        return [error("body", None)]
    errors = _personalization_errors(body.get("personalizations"))
    sender = body.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(error("from_missing", "from.email", "from"))
    elif not valid_email(sender["email"]):
        errors.append(error("from_invalid", "from.email", "from"))
    errors += _subject_errors(body)
    if not body.get("template_id"):
        errors += _content_errors(body.get("content"))
    errors += _custom_args_errors(body.get("custom_args"), "custom_args")
    errors += _category_errors(body.get("categories"))
    sandbox = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}) if isinstance(
        body.get("mail_settings"), dict) else {}
    if isinstance(sandbox, dict) and "enable" in sandbox and not isinstance(sandbox["enable"], bool):
        errors.append(error("sandbox", "mail_settings.sandbox_mode.enable", "mail_settings.sandbox_mode.enable"))
    return errors


def _personalization_errors(personalizations: Any) -> list[dict]:
    if not isinstance(personalizations, list) or not personalizations:
        return [error("personalizations", "personalizations", "personalizations")]
    if len(personalizations) > 1000:
        return [error("personalizations_max", "personalizations", "personalizations", n=len(personalizations))]
    errors = []
    for index, item in enumerate(personalizations):
        to = item.get("to") if isinstance(item, dict) else None
        if not isinstance(to, list) or not to:
            errors.append(error("to_required", f"personalizations.{index}.to", "personalizations.to"))
            continue
        for position, address in enumerate(to):
            if not isinstance(address, dict) or not valid_email(address.get("email")):
                errors.append(error("to", f"personalizations.{index}.to.{position}.email", "personalizations.to"))
        errors += _custom_args_errors(item.get("custom_args"), f"personalizations.{index}.custom_args")
    return errors


def _subject_errors(body: dict) -> list[dict]:
    subject = body.get("subject")
    if subject is not None and (not isinstance(subject, str) or not subject):
        return [error("subject_type", "subject", "subject")]
    personalizations = body.get("personalizations") if isinstance(body.get("personalizations"), list) else []
    every = personalizations and all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    if subject is None and not every and not body.get("template_id"):
        return [error("subject", "subject", "subject")]
    return []


def _content_errors(content: Any) -> list[dict]:
    if not isinstance(content, list) or not content:
        return [error("content", "content", "content")]
    errors, types = [], []
    for index, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        value = block.get("value") if isinstance(block, dict) else None
        if not isinstance(kind, str) or not kind:
            errors.append(error("content_type", f"content.{index}.type", "content.type"))
        if not isinstance(value, str) or not value:
            errors.append(error("content_value", f"content.{index}.value", "content.value"))
        types.append(kind)
    # text/plain, then text/html, then anything else.
    rank = [{"text/plain": 0, "text/html": 1}.get(kind, 2) for kind in types]
    if rank != sorted(rank):
        errors.append(error("content_order", "content", "content.value"))
    return errors


def _custom_args_errors(custom_args: Any, field: str) -> list[dict]:
    if custom_args is None:
        return []
    if not isinstance(custom_args, dict) or not custom_args:
        return [error("custom_args_empty", field, "custom_args")]
    if not all(isinstance(value, str) for value in custom_args.values()):
        return [error("custom_args", field, "custom_args")]
    return []


def _category_errors(categories: Any) -> list[dict]:
    if categories is None:
        return []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        return [error("categories", "categories", "categories")]
    if len(categories) > 10:
        return [error("categories_max", "categories", "categories", n=len(categories))]
    for category in categories:
        if len(category) > 255:
            return [error("category_long", "categories", "categories", c=category)]
        if not category.isascii():
            return [error("category_ascii", "categories", "categories")]
        if categories.count(category) > 1:
            return [error("category_unique", "categories", "categories", c=category)]
    return []
