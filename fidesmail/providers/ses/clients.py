"""boto3's SES v2 clients, built once per (region, credentials, endpoint) and shared by every thread.

botocore's own retries are off (`total_max_attempts` 1: fidesmail's rules decide what is posted again) and
its timeouts are FIDESMAIL_MAILGUN_TIMEOUT. `automatic` is boto3's own credential chain (environment,
shared files, the container's or the instance's role...); `secret_keys` the sealed keys; with
`aws_assume_role_arn` those are the source of an STS AssumeRole (boto3's own STS endpoint, so
AWS_ENDPOINT_URL_STS when set) whose credentials botocore refreshes before they expire. A client is
thread-safe once built; the cache is emptied in a forked worker (its connections are the parent's), and
every session shares one loader of botocore's API models (reading them costs more than the rest of a client).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import boto3
import botocore.exceptions
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, CredentialProvider, DeferredRefreshableCredentials
from cachetools import LRUCache

from fidesmail.core import forks
from fidesmail.providers.ses.request import Auth
from fidesmail.providers.ses.secrets import SECRET_KEYS

ROLE_SESSION_NAME = "fidesmail"
_MAX_CLIENTS = 64  # configs x regions x key versions; the least recently used go first


@dataclass(frozen=True)
class Client:
    """A ready client, and the credentials it signs with (resolved before a send: see SesProvider.post)."""

    sesv2: object
    session: boto3.session.Session
    assumed: DeferredRefreshableCredentials | None = None

    def credentials(self):
        """The credentials a send will be signed with (None when boto3's chain found none)."""
        return self.assumed if self.assumed is not None else self.session.get_credentials()


class _Given(CredentialProvider):
    """Hands botocore credentials made here (the assumed role's), before its own chain is asked."""

    METHOD = "fidesmail-assume-role"

    def __init__(self, credentials):
        super().__init__()
        self._credentials = credentials

    def load(self):
        return self._credentials


class _SourceOf:
    """The source credentials of an AssumeRole, resolved when STS is first asked (not when the client is built)."""

    def __init__(self, session: boto3.session.Session):
        self._session = session

    def get_frozen_credentials(self):
        found = self._session.get_credentials()
        if found is None:
            raise botocore.exceptions.NoCredentialsError()
        return found.get_frozen_credentials()


class SesClients:
    """Every SES v2 client of this process."""

    def __init__(self, timeout: float = 10, endpoint_url: str | None = None, pool_size: int = 32):
        self.endpoint_url = endpoint_url
        self.config = Config(retries={"total_max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout,
                             max_pool_connections=pool_size)
        self._reset()
        forks.reset_in_children(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._clients: LRUCache = LRUCache(_MAX_CLIENTS)
        self._loader = botocore.loaders.create_loader()

    def after_fork(self) -> None:
        """A forked worker must not share its parent's pooled connections."""
        self._reset()

    def get(self, region: str, auth: Auth) -> Client:
        """The client for a region and credentials (built the first time; nothing is asked of AWS here)."""
        key = (region, auth.method, auth.access_key_id, auth.secret_access_key, auth.role_arn)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._build(region, auth)
                if client.credentials() is not None:  # else built again next time: the chain may find some then
                    self._clients[key] = client
        return client

    def _session(self, region: str, auth: Auth | None = None, credentials=None) -> boto3.session.Session:
        core = botocore.session.get_session()
        core.register_component("data_loader", self._loader)
        if credentials is not None:
            core.get_component("credential_provider").insert_before("env", _Given(credentials))
        keys = {"aws_access_key_id": auth.access_key_id, "aws_secret_access_key": auth.secret_access_key} \
            if auth is not None and auth.method == SECRET_KEYS else {}
        return boto3.session.Session(botocore_session=core, region_name=region, **keys)

    def _build(self, region: str, auth: Auth) -> Client:
        session = self._session(region, auth)
        assumed = None
        if auth.role_arn:
            def sts(service, **keys):  # boto3's own STS endpoint (AWS_ENDPOINT_URL_STS when set), no retries
                return session.client(service, region_name=region, config=self.config, **keys)

            fetcher = AssumeRoleCredentialFetcher(sts, _SourceOf(session), auth.role_arn,
                                                  extra_args={"RoleSessionName": ROLE_SESSION_NAME})
            assumed = DeferredRefreshableCredentials(fetcher.fetch_credentials, "assume-role")
            session = self._session(region, credentials=assumed)
        sesv2 = session.client("sesv2", region_name=region, endpoint_url=self.endpoint_url, config=self.config)
        return Client(sesv2, session, assumed)
