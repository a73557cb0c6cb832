"""Bearer tokens: itsdangerous-signed scopes with an expiry, and a decorator per scope."""

from __future__ import annotations

import copy
import functools
import logging
import secrets
import time
from pathlib import Path

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer

from fidesmail.core import fsutil
from fidesmail.core.exceptions import Forbidden, NotAuthorized, Unauthenticated

log = logging.getLogger("fidesmail.auth")

READ = "email:read"
CREATE_OR_UPDATE = "email:create_or_update"
DELETE = "email:delete"
SEND = "email:send"
METRICS = "metrics:read"  # /metrics alone, for Prometheus
# fides' own scopes (src/fides/common/api/scope_registry.py at 2.78.2), for /api/v1/messaging (messaging_scopes.py).
MESSAGING_READ = "messaging:read"
MESSAGING_CREATE_OR_UPDATE = "messaging:create_or_update"
MESSAGING_DELETE = "messaging:delete"
MESSAGING_TEMPLATE_UPDATE = "messaging-template:update"
FIDES_SCOPES = (MESSAGING_READ, MESSAGING_CREATE_OR_UPDATE, MESSAGING_DELETE, MESSAGING_TEMPLATE_UPDATE)
SCOPES = (READ, CREATE_OR_UPDATE, DELETE, SEND, METRICS, *FIDES_SCOPES)
DEFAULT_TTL = 24 * 3600
_SALT = "fidesmail.api-token"
_KEY_FILE = "secret_key"


_NOT_OURS = ("the token is not signed by any of this service's signing keys (minted with another "
             "FIDESMAIL_SECRET_KEY, or by `flask token create` in another folder, whose instance dir has its own key?)")


class TokenError(ValueError):
    """A token that cannot be trusted (the reason is logged, never answered, never with the token)."""


def key_file(instance_dir: Path) -> Path:
    """Where the generated signing key lives when FIDESMAIL_SECRET_KEY is not set."""
    return Path(instance_dir) / _KEY_FILE


def ensure_key_file(instance_dir: Path) -> bool:
    """Create the signing key file unless it exists (at start, and by `flask token create`); True when created."""
    path = key_file(instance_dir)
    created = fsutil.create_file(path, secrets.token_urlsafe(48).encode(), 0o600)
    if created:
        log.warning("FIDESMAIL_SECRET_KEY is not set: generated a token-signing key into %s "
                    "(mode 0600); tokens minted with `flask token create` use it", path)
    return created


def signing_keys(config) -> list[str]:
    """The signing keys, newest first: FIDESMAIL_SECRET_KEY, else the instance dir's file (never created here)."""
    if config["SECRET_KEYS"]:
        return config["SECRET_KEYS"]
    try:
        return [_key_from_file(str(key_file(config["INSTANCE_DIR"])))]
    except (OSError, UnicodeDecodeError, ValueError):
        return []  # not there (yet): looked for again next time, since failures are not cached


@functools.lru_cache(maxsize=8)
def _key_from_file(path: str) -> str:
    with open(path, encoding="ascii") as fh:
        key = fh.read().strip()
    if not key:
        raise ValueError("empty signing key file")
    fsutil.warn_if_exposed(Path(path), "token-signing key file", log)  # once per process: the key is cached
    return key


@functools.lru_cache(maxsize=8)
def _serializer(secret_keys: tuple[str, ...]) -> URLSafeSerializer:
    # itsdangerous signs with the last key of the list and verifies with all of them.
    return URLSafeSerializer(list(reversed(secret_keys)), salt=_SALT)


def create_token(secret_keys: list[str], scopes, ttl: int = DEFAULT_TTL) -> str:
    """Mint a token for `scopes` that expires `ttl` seconds from now."""
    if not secret_keys:
        raise TokenError("no signing key")
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise TokenError(f"unknown scopes: {', '.join(sorted(unknown))}" if unknown else "no scope given")
    if ttl <= 0:
        raise TokenError("ttl must be positive")
    return _serializer(tuple(secret_keys)).dumps({"scopes": sorted(set(scopes)), "exp": int(time.time()) + ttl})


def verify_token(secret_keys: list[str], token: str) -> frozenset[str]:
    """The scopes of a valid, unexpired token; TokenError otherwise."""
    if not secret_keys:
        raise TokenError("no signing key (start the service, or run `flask token create`, to make one)")
    scopes, expires = _verified(tuple(secret_keys), token)
    now = time.time()
    if expires < now:
        raise TokenError(f"the token expired {int(now - expires)} s ago (mint a new one: flask token create)")
    return scopes


@functools.lru_cache(maxsize=4096)
def _verified(secret_keys: tuple[str, ...], token: str) -> tuple[frozenset[str], int]:
    """Scopes and expiry of a correctly signed token. Cached: a client sends the same token on every
    request, and the signature check is most of the cost of a small request (failures are not cached)."""
    try:
        payload = _serializer(secret_keys).loads(token)
    except BadSignature:
        raise TokenError(_NOT_OURS) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
        raise TokenError("the token's signed payload is not a fidesmail token")
    scopes = payload.get("scopes")
    if not isinstance(scopes, list):
        raise TokenError("the token's signed payload is not a fidesmail token")
    return frozenset(s for s in scopes if isinstance(s, str)), payload["exp"]


def _bearer_token() -> str | None:
    header = request.environ.get("HTTP_AUTHORIZATION", "")  # request.headers' own source, without its lookup
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _missing_token_reason() -> str:
    header = request.headers.get("Authorization")
    if header is None:
        return "no Authorization header"
    scheme = header.partition(" ")[0]
    if scheme.lower() != "bearer":
        return f"the Authorization header is not 'Bearer <token>' (its scheme: {scheme[:20]!r})"
    return "the Authorization header carries an empty bearer token"


def _documented(apidoc: dict, scopes: tuple[str, ...], writes_config: bool) -> dict:
    """The view's OpenAPI entry with the bearer scheme, its scope(s), and the 401/403 answers."""
    named = " or ".join(scopes)
    forbidden = "The token lacks the scope " + named + (" (or the service is read-only)" if writes_config else "")
    manual = copy.deepcopy(apidoc.get("manual_doc", {}))
    manual.update({
        "security": [{"bearerAuth": []}],
        "x-required-scope": named,
    })
    manual.setdefault("responses", {}).update({
        "401": {"description": "No token, a bad signature or an expired token",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "403": {"description": forbidden,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    })
    return {**copy.deepcopy(apidoc), "manual_doc": manual}


def scopes_of_request(*, optional: bool = False) -> frozenset[str]:
    """The scopes of the request's bearer token; Unauthenticated when there is none that verifies.

    `optional`: the endpoint is public (/health shows more with a token), so no token is not news."""
    token = _bearer_token()
    try:
        if token is None:
            if optional:
                return frozenset()
            raise TokenError(_missing_token_reason())
        return verify_token(signing_keys(current_app.config), token)
    except TokenError as exc:
        log.warning("401 for %s %s: %s", request.method, request.path, exc, extra={"auth_failure": str(exc)})
        raise Unauthenticated("Authentication Failure") from None


def require(scope: str, *alternatives: str, writes_config: bool = False):
    """Decorate a view: 401 without a valid token, 403 without `scope` or one of `alternatives` (or read-only)."""
    accepted = (scope, *alternatives)

    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            held = scopes_of_request()
            if held.isdisjoint(accepted):
                log.info("403 for %s %s: the token's scopes (%s) do not include %s", request.method, request.path,
                         ", ".join(sorted(held)) or "none", " or ".join(accepted))
                raise NotAuthorized("Not Authorized for this action")
            if writes_config and current_app.config["READ_ONLY"]:
                raise Forbidden("The configuration is managed in git (FIDESMAIL_READ_ONLY=true): "
                                "change the files in the config tree instead.")
            return view(*args, **kwargs)

        guarded._apidoc = _documented(getattr(view, "_apidoc", {}), accepted, writes_config)
        return guarded

    return decorate
