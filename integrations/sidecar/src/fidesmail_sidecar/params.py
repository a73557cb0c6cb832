"""Reading the host's params objects (pydantic models, dicts, plain objects) and naming its action types."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from typing import Any, Callable, Mapping


def action_type_name(action_type: Any) -> str:
    """The host's action type enum member (EmailActionType.X, MessagingActionType.X), or its plain value, as
    fidesmail's action_type: the hosts' values are fidesmail's names."""
    value = action_type.value if isinstance(action_type, enum.Enum) else action_type
    return str(value)


def field_of(params: Any, name: str, default: Any = None) -> Any:
    """One field of a params object, whether a model, a dataclass-like object or a mapping; `default` when absent."""
    if params is None:
        return default
    if isinstance(params, Mapping):
        return params.get(name, default)
    return getattr(params, name, default)


def plain_json(value: Any, to_json: Callable[[Any], Any]) -> Any:
    """Plain JSON of the values both hosts' objects hold: dataclasses, mappings, sets, lists, dates, each item
    through the adapter's `to_json` (which knows its host's models); anything else as its str()."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(to_json(key)): to_json(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        # Sorted, so that a retry of the same message has the same body (and Idempotency-Key).
        return sorted((to_json(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)
