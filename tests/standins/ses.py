"""An Amazon SES (and STS) stand-in on 127.0.0.1: moto's server behind a recording, fault-injecting proxy.

    with SesStandin(verified=["privacy@example.com"]) as ses:
        client = ses.client("sesv2")  # boto3, endpoint_url=ses.base_url, the stand-in's keys, botocore retries off
        client.send_email(FromEmailAddress="privacy@example.com", Destination={"ToAddresses": ["a@example.com"]},
                          Content={"Simple": {...}}, EmailTags=[{"Name": "fidesmail-message-id", "Value": "msg_1"}])
        ses.wait_for_accepted(1)[0].fidesmail_message_id   # "msg_1"

Standalone: `python -m tests.standins.ses --port 9998 --verify privacy@example.com --key AKID:SECRET`
(prints the endpoint URL, the keys and the role ARN to assume).

moto (`moto[server]`'s ThreadedMotoServer, on its own free port) does the AWS part, as AWS does it:
- SigV4 checked on every call: at start the stand-in makes an IAM user (`access_key_id`,
  `secret_access_key`: the given ones, else made up) allowed `ses:*` and `sts:AssumeRole`, and a role
  (`role_arn`) that user may assume, allowed `ses:*` (and `unassumable_role_arn`, which it may not:
  AccessDenied); then it turns moto's IAM access control on
  (`/moto-api/reset-auth` 0, i.e. INITIAL_NO_AUTH_ACTION_COUNT = 0). A wrong secret is refused with
  403 `SignatureDoesNotMatch`, an unknown key with 403 `InvalidClientTokenId` (moto writes these in
  XML; for SES v2 the proxy turns them into the JSON error AWS gives a rest-json call).
- Verified identities (`verified`: addresses or domains; `verify(identity)` adds one): any other
  From is refused with 400 `MessageRejected` ("Email address not verified ...").
- STS AssumeRole (for `aws_assume_role_arn`) answers temporary keys that SES accepts.
moto keeps sent messages without their tags or text part, so the proxy (the URL boto3 is given,
`base_url`) records each accepted SendEmail (v2 `sesv2` or v1 `ses`) as `Accepted`: recipient, source,
subject, html, text, `fidesmail_message_id` (the `fidesmail-message-id` tag), `extra["tags"]`
(all tags), `extra["version"]`; `moto_sent_messages()` shows moto's own record.

Faults (`faults.py`) apply to SendEmail calls only (set `fault_all_requests = True` to include STS
and the rest), answered in the call's protocol: `throttle_next()` is v2 429 `TooManyRequestsException`
or v1 400 `Throttling`; `fail_next(503)` a 5xx with an AWS error code; `close_next()`/`reset_next()`
reach botocore as `ConnectionClosedError`, `slow_next(s)` as `ReadTimeoutError` (given a shorter
read_timeout), `down(refuse=True)` as `EndpointConnectionError`; `down()`/`up()` and /fake/ as elsewhere.

moto's state is process-wide: run one SesStandin at a time in a process (start resets moto; close
turns its access control off again).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import time
from collections.abc import Iterable

import requests

from .faults import Fault
from .server import Accepted, Request, Standin
from .ses_wire import (
    error_answer,
    is_send,
    is_v2,
    message_id_of,
    parse_send,
    status_code_name,
    throttle_answer,
    xml_error_as_json,
)
from .standalone import run_in_foreground

ACCOUNT_ID = "123456789012"  # moto's default account
USER, ROLE, OTHER_ROLE = "fidesmail-sender", "fidesmail-ses-sender", "someone-elses-role"
DEFAULT_KEY = ("AKIAFIDESMAILSTANDIN", "fidesmail-standin-secret-key-not-a-real-one")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date", "content-type"}


class SesStandin(Standin):
    """moto's SES/STS/IAM on 127.0.0.1 with SigV4 enforced, behind a proxy that records sends and injects faults."""

    server_name = "ses-standin"

    def __init__(self, *, verified: Iterable[str] = ("privacy@example.com",), region: str = "us-east-1",
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        from moto.server import ThreadedMotoServer  # imported here: moto is a test-only package, and slow to import

        super().__init__(host=host, port=port)
        self.region = region
        self.access_key_id = access_key_id or DEFAULT_KEY[0]
        self.secret_access_key = secret_access_key or DEFAULT_KEY[1]
        self.role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE}"
        self.unassumable_role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{OTHER_ROLE}"  # trusts another user only
        self.fault_all_requests = False
        self._verified = list(verified)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto_port = 0

    @property
    def moto_url(self) -> str:
        """moto's own URL (no faults, nothing recorded)."""
        return f"http://127.0.0.1:{self._moto_port}"

    def start(self) -> SesStandin:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
        self._moto.start()
        self._moto_port = self._moto.get_host_and_port()[1]
        requests.post(self.moto_url + "/moto-api/reset", timeout=10).raise_for_status()
        self._set_up()
        requests.post(self.moto_url + "/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        return super().start()

    def close(self) -> None:
        super().close()
        if self._moto_port:
            requests.post(self.moto_url + "/moto-api/reset-auth", data=b"inf", timeout=10)
            self._moto.stop()
            self._moto_port = 0

    # --- set-up and reading back ---

    def client(self, service: str = "sesv2", *, read_timeout: float = 10, role: bool = False, **kwargs):
        """A boto3 client for the stand-in (botocore retries off); `role=True` uses the role's assumed keys."""
        import boto3
        from botocore.config import Config

        keys = self.assume_role() if role else {"aws_access_key_id": self.access_key_id,
                                                "aws_secret_access_key": self.secret_access_key}
        config = Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=2)
        return boto3.client(service, endpoint_url=kwargs.pop("endpoint_url", self.base_url), region_name=self.region,
                            config=config, **keys, **kwargs)

    def assume_role(self) -> dict[str, str]:
        """Temporary keys of the role (STS AssumeRole through the stand-in), as boto3 client arguments."""
        sts = self.client("sts")
        answer = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="standin")["Credentials"]
        return {"aws_access_key_id": answer["AccessKeyId"], "aws_secret_access_key": answer["SecretAccessKey"],
                "aws_session_token": answer["SessionToken"]}

    def verify(self, identity: str) -> None:
        """Verify an address or a domain (what SES's console or verify_*_identity would do)."""
        self.client("ses").verify_email_identity(EmailAddress=identity) if "@" in identity else \
            self.client("ses").verify_domain_identity(Domain=identity)

    def moto_sent_messages(self) -> list[dict]:
        """What moto itself kept of each sent message: id, source, subject, body, destinations."""
        from moto.ses.models import ses_backends

        return [{"id": m.id, "source": m.source, "subject": getattr(m, "subject", None),
                 "body": getattr(m, "body", None), "destinations": getattr(m, "destinations", None)}
                for m in ses_backends[ACCOUNT_ID][self.region].sent_messages]

    def _set_up(self) -> None:
        """IAM user with the stand-in's key, a role it may assume, verified identities (before auth is on)."""
        import boto3

        kwargs = {"endpoint_url": self.moto_url, "region_name": self.region, "aws_access_key_id": "setup",
                  "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **kwargs)
        allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["ses:*", "sts:AssumeRole"],
                                                           "Resource": "*"}]}
        iam.create_user(UserName=USER)
        iam.put_user_policy(UserName=USER, PolicyName="send", PolicyDocument=json.dumps(allow))
        user_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{USER}"
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                           "Principal": {"AWS": user_arn}}]}
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=ROLE, PolicyName="send", PolicyDocument=json.dumps(allow))
        trust["Statement"][0]["Principal"]["AWS"] = f"arn:aws:iam::{ACCOUNT_ID}:user/someone-else"
        iam.create_role(RoleName=OTHER_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        self._set_key(iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"])
        ses = boto3.client("ses", **kwargs)
        for identity in self._verified:
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            else:
                ses.verify_domain_identity(Domain=identity)

    def _set_key(self, made_id: str) -> None:
        # moto makes up access keys; the stand-in's are set on moto's own record of the one it made.
        from moto.iam.models import iam_backends

        backend = iam_backends[ACCOUNT_ID]["aws"]
        key = backend.access_keys.pop(made_id)
        key.access_key_id, key.secret_access_key = self.access_key_id, self.secret_access_key
        backend.access_keys[self.access_key_id] = key

    # --- the proxy ---

    def _serve(self, request: Request) -> None:
        if not request.path.startswith("/fake/") and not self.fault_all_requests and \
                not is_send(request.method, request.path, request.body):
            self.handle(request)  # not a send: no faults, not counted
            return
        super()._serve(request)

    def handle(self, request: Request) -> None:
        status, headers, body = self._forward(request)
        call = parse_send(request.method, request.path, request.body) if status == 200 else None
        message_id = message_id_of(call.version, body) if call else None
        if call and message_id:
            for recipient in call.to:
                self._accept(Accepted(message_id, recipient, call.source, call.subject, call.html, call.text,
                                      call.tags.get("fidesmail-message-id"),
                                      {"tags": dict(call.tags), "version": call.version,
                                       "configuration_set": call.configuration_set}, time.time()))
        content_type = headers.pop("content-type", "application/json")
        if status >= 400 and is_v2(request.path) and body.lstrip().startswith(b"<"):
            # moto answers its SigV4 refusals in XML whatever the protocol; AWS answers a rest-json call in JSON.
            status, headers, body, content_type = xml_error_as_json(status, body)
        request.answer(status, body, headers, content_type=content_type)

    def fault_answer(self, request: Request, fault: Fault) -> None:
        if fault.kind == "throttle":
            status, headers, body, content_type = throttle_answer(request.path)
        else:
            status, headers, body, content_type = error_answer(
                request.path, fault.status, status_code_name(fault.status), fault.message or "Service Unavailable")
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        request.answer(status, body, headers, content_type=content_type)

    def _forward(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        """The same request to moto, Host and all (SigV4 signed it); moto's status, headers and body."""
        connection = http.client.HTTPConnection("127.0.0.1", self._moto_port, timeout=60)
        try:
            headers = {name: value for name, value in request.headers.items() if name.lower() != "connection"}
            connection.request(request.method, request.target, body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            answer_headers = {name: value for name, value in response.getheaders()
                              if name.lower() not in _HOP_BY_HOP}
            answer_headers["content-type"] = response.getheader("Content-Type", "application/json")
            return response.status, answer_headers, body
        finally:
            connection.close()


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9998)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--verify", action="append", default=[], metavar="ADDRESS|DOMAIN",
                        help="a verified identity (repeatable; default privacy@example.com)")
    parser.add_argument("--key", metavar="ACCESS_KEY_ID:SECRET",
                        help=f"the IAM user's key (default {DEFAULT_KEY[0]}:...)")
    args = parser.parse_args(argv)
    key_id, _, secret = (args.key or "").partition(":")
    if args.key and not (key_id and secret):
        parser.error("--key wants ACCESS_KEY_ID:SECRET")
    standin = SesStandin(verified=args.verify or ["privacy@example.com"], region=args.region,
                         access_key_id=key_id or None, secret_access_key=secret or None, host=args.host, port=args.port)
    run_in_foreground(standin, lambda ses: [f"SES stand-in on {ses.base_url} (region {ses.region}, "
                                            f"key {ses.access_key_id}, role {ses.role_arn})"])


if __name__ == "__main__":
    main()
