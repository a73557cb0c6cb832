"""What of a database URL a message may show: scheme, host, port and database name, never a secret.

A URL can hold a password in its userinfo (`postgresql://u:pw@host/db`) and, in libpq's query-string
forms, in any parameter (`?password=`, `?sslpassword=`, `postgresql:///db?host=h&password=pw`). So
nothing of the userinfo or the query string is ever shown, and a driver's own words about a
connection have every such value replaced before they are shown (contract section 12).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

# Query parameters that name where and how to connect, never a secret: their values may stay in a
# driver's words (a host name in "connection refused" is what an operator needs to read).
_PLAIN_PARAMETERS = frozenset({"host", "hostaddr", "port", "dbname", "user", "sslmode", "connect_timeout",
                               "target_session_attrs", "application_name", "gssencmode", "channel_binding"})


def shown(url: str) -> str:
    """The URL as a message may show it: `scheme://host:port/database`, nothing else."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "(a database URL that cannot be read)"
    if not parts.scheme or "://" not in url:
        return "(not a URL)"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    host = parts.hostname or query.get("host") or ""
    if host.startswith("/"):
        host = quote(host, safe="")  # a socket folder, as libpq writes it in a URL
    elif ":" in host:
        host = f"[{host}]"  # an IPv6 address
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or query.get("port") or ""
    path = parts.path
    if not path.strip("/") and query.get("dbname"):
        path = "/" + query["dbname"]
    return f"{parts.scheme}://{host}{':' if port else ''}{port}{path}"


def secrets_of(url: str) -> tuple[str, ...]:
    """Every value of the URL that may be a secret (its password, any query value but the plain ones), in
    the forms a driver may repeat it: as written and percent-decoded; longest first."""
    try:
        parts = urlsplit(url.strip())
        password = parts.password
    except ValueError:
        return ()
    values = [password] if password else []
    if not parts.scheme.startswith("sqlite"):  # SQLite's parameters (mode=ro) are options, not credentials
        values += [value for name, value in parse_qsl(parts.query, keep_blank_values=True)
                   if value and name.lower() not in _PLAIN_PARAMETERS]
    forms = {form for value in values for form in (value, quote(value, safe=""), quote_plus(value)) if form}
    return tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every one of `secrets` replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
