"""One request to a URL fidesmail does not control: no redirects, bounded in time and in size.

An SNS certificate or SubscribeURL (providers/ses/sns.py) and a caller's callback receiver (outbox/)
are fetched or posted on behalf of someone else's URL, sometimes on the request path: a slow or
enormous answer must not hold a worker, and a redirect must not carry the request somewhere the rule
that allowed the URL never looked at. requests' timeouts bound each socket operation; the deadline
here bounds the whole answer: it is read with urllib3's read1 (at most one read of the socket per call,
each bounded by the timeout), so a server that drips one byte a second is cut off too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3

from fidesmail.providers import scrub


class BoundedError(Exception):
    """The request did not come back as a whole answer in time and size; the message names the host, not the URL."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most max_bytes


def request(session: requests.Session, method: str, url: str, *, timeout: float, max_bytes: int,
            data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Answer:
    """Send one request and read at most `max_bytes` of its answer within `timeout` seconds in all."""
    host = scrub.host_of(url)
    deadline = time.monotonic() + timeout
    try:
        response = session.request(method, url, data=data, headers=dict(headers or {}), timeout=timeout,
                                   allow_redirects=False, stream=True)
    except requests.Timeout:
        raise BoundedError(f"{host} did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise BoundedError(scrub.unreachable_reason(exc, host)) from None
    except ValueError:  # e.g. an URL requests cannot use
        raise BoundedError(f"cannot send a request to {host}") from None
    body = bytearray()
    try:
        with response:
            while chunk := response.raw.read1(8192, decode_content=True):
                body += chunk
                if len(body) > max_bytes:
                    raise BoundedError(f"{host} answered with more than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise BoundedError(f"{host} did not finish its answer within {timeout:g} s")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        raise BoundedError(f"{host} broke off its answer, or took longer than {timeout:g} s") from None
    return Answer(response.status_code, bytes(body))
