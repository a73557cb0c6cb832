"""What one SES SendEmail came to, from botocore's answer or exception, in core.outcomes' words (section 13).

Before the call: credentials that cannot be had (none in boto3's chain, STS refusing the role) are the key
refused; STS throttled, failing or unreachable means SES was never asked (Retry). The call itself: a
throttling error (429 TooManyRequestsException, Throttling, LimitExceeded) is retried, at a Retry-After if
one is named; a 5xx, or a connection that was never made, is retried; the key refused (401/403,
InvalidClientTokenId, SignatureDoesNotMatch, AccessDenied...) and any other refusal (MessageRejected, an
unverified sender, a 400) fail at once; a read timeout or a connection dropped after the request went out
is Unknown: SES may have it. SES' words are kept without either key and without addresses.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from fidesmail.core.outcomes import Outcome, Refused, Retry, Unknown
from fidesmail.providers import scrub
from fidesmail.providers.retry_after import retry_after

LABEL = "Amazon SES"
THROTTLING = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException",
                        "RequestThrottled", "RequestLimitExceeded", "SlowDown"})
KEY_REFUSED = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                         "AccessDenied", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException",
                         "InvalidAccessKeyId", "MissingAuthenticationToken", "IncompleteSignature",
                         "InvalidSignatureException", "RequestExpired", "AuthFailure", "NotAuthorized"})
_NO_CREDENTIALS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)
_HINTS = {
    "MessageRejected": "verify details.email_from (or details.domain) in SES, in details.aws_region; a sandboxed "
                       "SES account sends only to verified recipients",
    "MailFromDomainNotVerifiedException": "verify the MAIL FROM domain in SES",
    "AccountSuspendedException": "the SES account is suspended from sending",
    "SendingPausedException": "sending is paused for the SES account or its configuration set",
}
_KEY_HINT = "check the config's aws_* secrets (and the IAM policy: ses:SendEmail)"


def before_sending(exc: Exception, secrets: tuple[str, ...], host: str) -> Outcome:
    """Credentials could not be had: SES was never asked (so no outcome names an HTTP status of SES')."""
    words = scrub.one_line(str(exc), secrets)
    if isinstance(exc, _NO_CREDENTIALS):
        return Refused(f"no usable AWS credentials: {words} ({_KEY_HINT})", None, key_refused=True)
    if isinstance(exc, ClientError):  # STS' answer to AssumeRole
        code, status, text, moment = _client_error(exc, secrets)
        text = f"STS AssumeRole answered {status}: {text}; nothing was sent to {host}"
        if code in THROTTLING or status == 429:
            return Retry(text, None, moment, rate_limited=True)
        if status is not None and status >= 500:
            return Retry(text, None)
        return Refused(f"{text} (check aws_assume_role_arn, and that the keys may assume it)", None,
                       key_refused=True)
    return Retry(f"no credentials yet, so nothing was sent to {host}: {words}", None)


def classify(exc: Exception, secrets: tuple[str, ...], host: str, timeout: float) -> Outcome:
    """What an exception from SendEmail means."""
    if isinstance(exc, ClientError):
        code, status, text, moment = _client_error(exc, secrets)
        if code in THROTTLING or status == 429:
            return Retry(text, status, moment, rate_limited=True)
        if status is not None and status >= 500:
            return Retry(text, status)
        if code in KEY_REFUSED or status in (401, 403):
            return Refused(f"{text} ({_KEY_HINT})", status, key_refused=True)
        return Refused(f"{text} ({_HINTS[code]})" if code in _HINTS else text, status)
    words = scrub.one_line(str(exc), secrets)
    if isinstance(exc, _NO_CREDENTIALS):
        return Refused(f"no usable AWS credentials: {words} ({_KEY_HINT})", None, key_refused=True)
    if isinstance(exc, ConnectionError):  # never connected: EndpointConnectionError, connect timeout, TLS, proxy
        return Retry(f"{scrub.unreachable_reason(exc, host)}: {words}", None)
    if isinstance(exc, ReadTimeoutError):
        return Unknown(f"{LABEL} ({host}) did not answer within {timeout:g} s; the message may still be sent, so "
                       "it was not sent again")
    # ConnectionClosedError, an answer that cannot be read, anything else: the request may have gone out.
    return Unknown(f"the connection to {host} broke after the request was sent ({words}); the message may "
                   "still be sent, so it was not sent again")


def _client_error(exc: ClientError, secrets: tuple[str, ...]) -> tuple[str, int | None, str, float | None]:
    """(code, HTTP status, AWS' words as kept, the moment named) of an AWS error answer."""
    response = exc.response or {}
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code, words = str(error.get("Code") or ""), str(error.get("Message") or "")
    status = meta.get("HTTPStatusCode")
    text = scrub.one_line(f"{code}: {words}" if words else code or str(exc), secrets)
    headers = meta.get("HTTPHeaders") or {}
    return code, status, text, retry_after(str(headers.get("retry-after", "")), words)
