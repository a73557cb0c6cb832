"""Strict parsing of email addresses and DNS names: exactly one, no tricks, normalised."""

from __future__ import annotations

import functools
import re
from email.errors import HeaderParseError
from email.headerregistry import Address, HeaderRegistry

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
# RFC 5322's dot-atom: what a local part may be without quotes. Quoted ones ("a,b"@x, "<v@evil.com>"@x)
# are valid mail syntax that many programs downstream split or display wrongly, so none is accepted.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
MAX_LOCAL_PART = 64  # RFC 5321, section 4.5.3.1.1
_HEADERS = HeaderRegistry()


class AddressError(ValueError):
    """Why a value is not exactly one acceptable address."""


def is_dns_name(value: str) -> bool:
    """True for a dotted host name such as mg.example.com (no IPs, no trailing dot)."""
    return bool(DNS_NAME.match(value)) and not value.replace(".", "").isdigit()


def parse_address(value: str, *, allow_display_name: bool = False) -> str:
    """Return the normalised form of exactly one address, or raise AddressError."""
    if not isinstance(value, str) or not value.strip():
        raise AddressError("an email address is required")
    return _parse(value, allow_display_name)


@functools.lru_cache(maxsize=4096)
def _parse(value: str, allow_display_name: bool) -> str:
    """The stdlib parse (about 45 us), cached: a send checks one address in its schema and its request."""
    if _CONTROL.search(value):
        raise AddressError("control characters (such as CR, LF or NUL) are not allowed")
    if len(value) > 320:
        raise AddressError("address is too long")
    try:
        header = _HEADERS("To", value)
        addresses = header.addresses
        defects = header.defects
    except (HeaderParseError, IndexError, ValueError, AttributeError, TypeError):
        # The stdlib's header parser fails on some malformed input with internal errors, such as
        # AttributeError for ".x:" (Python 3.11): each means "not an address", never a 500.
        raise AddressError("not a valid email address") from None
    if len(addresses) != 1 or len(header.groups) != 1 or header.groups[0].display_name is not None:
        raise AddressError("exactly one email address is allowed")
    if defects:
        raise AddressError("not a valid email address")
    address: Address = addresses[0]
    if not address.username or not is_dns_name(address.domain):
        raise AddressError("not a valid email address")
    if not DOT_ATOM.fullmatch(address.username) or '"' in address.addr_spec:
        raise AddressError("the local part (before the @) must be unquoted: letters, digits, dots and "
                           "!#$%&'*+/=?^_`{|}~- only")
    if len(address.username) > MAX_LOCAL_PART:
        raise AddressError(f"the local part (before the @) is longer than {MAX_LOCAL_PART} characters")
    if address.display_name:
        if not allow_display_name:
            raise AddressError("a bare address is required (no display name)")
        if "@" in address.display_name or "<" in address.display_name:
            raise AddressError("the display name may not contain an address")
    elif value.strip() != address.addr_spec:
        # "<a@b.c>" or comments such as "a@b.c (x)" are readings a human would not expect.
        if not allow_display_name:
            raise AddressError("a bare address is required (no display name)")
    # Whitespace runs in a display name become one space (a quoted '" a  b "' came back as 'a b' from
    # a second parse): the normalised form must parse to itself, or a config file the API wrote would
    # read back different from what it answered.
    display_name = " ".join(address.display_name.split())
    if display_name != address.display_name:
        address = Address(display_name=display_name, addr_spec=address.addr_spec)
    return str(address)


def mask(address: str) -> str:
    """s***@example.com (lower-cased, as the digest is): enough to tell recipients apart, not to mail them."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


# An address anywhere in someone else's words (a provider's error, an MTA's "550 5.1.1 <a@b.c>: no such
# user"): a local part, bare or "quoted", then an @ as written, %40-encoded (once or twice) or as an HTML
# entity, then a domain. Broader than an address on purpose: masking too much loses nothing.
_AT = r"(?:@|%(?:25)*40|&#0*64;|&#x0*40;|&commat;)"
_ADDRESS = re.compile(rf"(?P<local>\"[^\"\r\n]{{1,256}}\"|[^\s<>\"(),;:@\[\]\\]+){_AT}"
                      rf"(?P<domain>\[[^\]\s]{{1,64}}\]|[^\s<>\"'(),;:@\[\]\\&%]+)", re.IGNORECASE)


def mask_addresses(text: str) -> str:
    """`text` with every address in it masked as `mask` shows one (s***@example.com)."""
    return _ADDRESS.sub(_masked, text) if text else text


def _masked(found: re.Match) -> str:
    written = found.group("local")
    local = written.strip("\"'")
    quote = written[:len(written) - len(written.lstrip("'"))]  # 'a@b.c' in quotes keeps its opening quote
    return f"{quote}{local[:1].lower()}***@{found.group('domain').lower()}"
