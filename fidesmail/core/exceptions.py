"""What can go wrong, in the service's own words; errors.py maps each kind to its HTTP answer.

These carry no HTTP knowledge: the store, the sealing code and delivery raise them, views let them
pass, and one set of handlers turns them into the contract's `{"detail": ...}` answers.
"""

from __future__ import annotations


class FidesmailError(Exception):
    """A refusal with a sentence (`detail`) a caller can act on."""

    def __init__(self, detail):
        super().__init__(detail if isinstance(detail, str) else "invalid")
        self.detail = detail


class Unauthenticated(FidesmailError):
    """No token, a bad signature, a wrong key or an expired token."""


class NotVerified(FidesmailError):
    """A webhook that cannot be shown to come from its provider (its signature, its age, or no key to check it)."""


class NotAuthorized(FidesmailError):
    """A valid token without the scope the action needs."""


class NotFound(FidesmailError):
    """The thing asked for does not exist."""


class Conflict(FidesmailError):
    """The request clashes with the current state (a taken key or name, a missing secret, a status)."""


class PreconditionFailed(FidesmailError):
    """The caller's If-Match names a version that is no longer current."""


class Invalid(FidesmailError):
    """The request is well-formed but not acceptable; `detail` is the contract's list of problems."""

    def __init__(self, problems: list[dict]):
        super().__init__(problems)


class NotSupported(FidesmailError):
    """A well-formed request for something that exists in the vocabulary but not as asked (fides' 400s)."""


class Forbidden(FidesmailError):
    """Allowed by the token but not by the service's mode (read-only)."""


class TooManyRequests(FidesmailError):
    """A limit the service keeps refuses the request for now (a verification limit, a config's rate limit,
    content checks of one message).

    `limit` names which (`verification`: per address per hour; `rate_limit`: a config's messages per
    second), for the metrics; `retry_after`, when known, is the whole seconds after which it may be tried
    again (the Retry-After header)."""

    def __init__(self, detail: str, *, limit: str | None = None, retry_after: int | None = None):
        super().__init__(detail)
        self.limit = limit
        self.retry_after = None if retry_after is None else max(1, int(retry_after))


class Unavailable(FidesmailError):
    """Something the service needs cannot be used right now (the disk, a key, a template, the database)."""


def problem(loc: list, msg: str, type_: str = "value_error") -> dict:
    """One entry of an Invalid's list: where, what, and a machine-readable kind."""
    return {"loc": loc, "msg": msg, "type": type_}
