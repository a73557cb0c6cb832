"""What SES requests and SES errors look like on the wire, for the SES stand-in's proxy.

SES v2 (`sesv2`) is AWS rest-json: `SendEmail` is `POST /v2/email/outbound-emails` with a JSON body
(`FromEmailAddress`, `Destination`, `Content.Simple`, `EmailTags`), its errors a status, an
`x-amzn-ErrorType` header and `{"message": ...}`. SES v1 (`ses`) and STS are AWS query: a form body
with `Action=SendEmail` (`Source`, `Destination.ToAddresses.member.N`, `Message.Subject.Data`,
`Message.Body.Text.Data`, `Message.Body.Html.Data`, `Tags.member.N.Name/Value`), errors as XML
`<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
Only the standard library is used.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

V2_SEND_PATH = "/v2/email/outbound-emails"
SEND_ACTIONS = ("SendEmail", "SendRawEmail")


@dataclass(frozen=True)
class SendCall:
    """A SendEmail request, parsed: one per request (recipients listed)."""

    version: int  # 1 or 2
    source: str
    to: tuple[str, ...]
    subject: str
    html: str | None
    text: str | None
    tags: dict[str, str] = field(default_factory=dict)
    configuration_set: str | None = None


def is_v2(path: str) -> bool:
    return path.startswith("/v2/")


def parse_send(method: str, path: str, body: bytes) -> SendCall | None:
    """The SendEmail call this request makes (SES v1 or v2), or None when it is another call."""
    if method != "POST":
        return None
    if path == V2_SEND_PATH:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return None
        simple = (data.get("Content") or {}).get("Simple") or {}
        body_parts = simple.get("Body") or {}
        to = tuple((data.get("Destination") or {}).get("ToAddresses", ()))
        return SendCall(2, data.get("FromEmailAddress", ""), to,
                        (simple.get("Subject") or {}).get("Data", ""), (body_parts.get("Html") or {}).get("Data"),
                        (body_parts.get("Text") or {}).get("Data"),
                        {tag.get("Name"): tag.get("Value") for tag in data.get("EmailTags") or ()},
                        data.get("ConfigurationSetName"))
    if is_v2(path):
        return None
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if form.get("Action") not in SEND_ACTIONS:
        return None
    to = tuple(value for name, value in sorted(form.items(), key=lambda kv: _member_index(kv[0]))
               if name.startswith("Destination.ToAddresses.member.") or name.startswith("Destinations.member."))
    tags = {form[name]: form.get(name[:-len("Name")] + "Value", "")
            for name in form if re.fullmatch(r"Tags\.member\.\d+\.Name", name)}
    return SendCall(1, form.get("Source", ""), to, form.get("Message.Subject.Data", ""),
                    form.get("Message.Body.Html.Data"), form.get("Message.Body.Text.Data"), tags,
                    form.get("ConfigurationSetName"))


def is_send(method: str, path: str, body: bytes) -> bool:
    if is_v2(path):
        return method == "POST" and path == V2_SEND_PATH
    return method == "POST" and dict(parse_qsl(body.decode("utf-8", "replace"))).get("Action") in SEND_ACTIONS


def message_id_of(version: int, answer: bytes) -> str | None:
    """The MessageId in a successful SendEmail answer."""
    if version == 2:
        try:
            return json.loads(answer).get("MessageId")
        except ValueError:
            return None
    match = re.search(rb"<MessageId>([^<]+)</MessageId>", answer)
    return match.group(1).decode() if match else None


def error_answer(path: str, status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes, str]:
    """(status, headers, body, content type) of an AWS error, in the protocol of the call at `path`."""
    request_id = str(uuid.uuid4())
    if is_v2(path):
        headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id}
        return status, headers, json.dumps({"message": message}).encode(), "application/json"
    kind = "Receiver" if status >= 500 else "Sender"
    body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return status, {"x-amzn-RequestId": request_id}, body.encode(), "text/xml"


def xml_error_as_json(status: int, body: bytes) -> tuple[int, dict[str, str], bytes, str]:
    """An AWS query-style XML error, as the rest-json error AWS gives SES v2 calls."""
    code = re.search(rb"<Code>([^<]*)</Code>", body)
    message = re.search(rb"<Message>([^<]*)</Message>", body)
    return error_answer(V2_SEND_PATH, status, code.group(1).decode() if code else "UnknownError",
                        message.group(1).decode() if message else "")


def throttle_answer(path: str) -> tuple[int, dict[str, str], bytes, str]:
    """SES's rate-limit refusal: v2 429 TooManyRequestsException, v1 (and STS) 400 Throttling."""
    if is_v2(path):
        return error_answer(path, 429, "TooManyRequestsException", "Too Many Requests")
    return error_answer(path, 400, "Throttling", "Maximum sending rate exceeded.")


def status_code_name(status: int) -> str:
    return {500: "InternalFailure", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
            429: "TooManyRequestsException", 400: "BadRequestException", 403: "AccessDeniedException"}.get(
        status, "InternalFailure" if status >= 500 else "BadRequestException")


def _member_index(name: str) -> int:
    match = re.search(r"\.(\d+)$", name)
    return int(match.group(1)) if match else 0
