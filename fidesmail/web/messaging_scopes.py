"""Which of fides' scopes each endpoint of fides' messaging API needs, as in fides 2.78.2.

From the `Security(verify_oauth_client, scopes=[...])` of each route of
src/fides/api/api/v1/endpoints/messaging_endpoints.py. A view under /api/v1/messaging takes its
scope from here (`require("PUT", "/templates")`), so the table is the one place that says it and a
test holds every /messaging route to it. fidesmail's own `email:*` scopes do not open these
endpoints, nor fides' scopes fidesmail's.
"""

from __future__ import annotations

from fidesmail.web import auth

PREFIX = "/api/v1/messaging"

# (method, path under PREFIX, in Flask's <variable> syntax) -> the scope fides requires.
ENDPOINT_SCOPES: dict[tuple[str, str], str] = {
    ("POST", "/config"): auth.MESSAGING_CREATE_OR_UPDATE,
    ("GET", "/config"): auth.MESSAGING_READ,
    ("GET", "/config/<config_key>"): auth.MESSAGING_READ,
    ("PATCH", "/config/<config_key>"): auth.MESSAGING_CREATE_OR_UPDATE,
    ("DELETE", "/config/<config_key>"): auth.MESSAGING_DELETE,
    ("PUT", "/config/<config_key>/secret"): auth.MESSAGING_CREATE_OR_UPDATE,
    ("PUT", "/default"): auth.MESSAGING_CREATE_OR_UPDATE,
    ("GET", "/default/active"): auth.MESSAGING_READ,
    ("GET", "/default/<service_type>"): auth.MESSAGING_READ,
    ("PUT", "/default/<service_type>/secret"): auth.MESSAGING_CREATE_OR_UPDATE,
    ("POST", "/test/<service_type>"): auth.MESSAGING_CREATE_OR_UPDATE,
    ("GET", "/templates"): auth.MESSAGING_TEMPLATE_UPDATE,
    ("PUT", "/templates"): auth.MESSAGING_TEMPLATE_UPDATE,
    ("GET", "/templates/default/<template_type>"): auth.MESSAGING_TEMPLATE_UPDATE,
    ("GET", "/templates/<template_id>"): auth.MESSAGING_TEMPLATE_UPDATE,
    ("DELETE", "/templates/<template_id>"): auth.MESSAGING_TEMPLATE_UPDATE,
}

# Those that change the config tree: 403 as well while it is managed in git (FIDESMAIL_READ_ONLY=true).
WRITES_CONFIG = frozenset(endpoint for endpoint in ENDPOINT_SCOPES if endpoint[0] in ("POST", "PUT", "PATCH", "DELETE")
                          and endpoint != ("POST", "/test/<service_type>"))


def require(method: str, path: str):
    """auth.require with the scope fides gives `method` `path` (KeyError for an endpoint fides does not have)."""
    endpoint = (method, path)
    return auth.require(ENDPOINT_SCOPES[endpoint], writes_config=endpoint in WRITES_CONFIG)
