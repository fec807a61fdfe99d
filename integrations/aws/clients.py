"""boto3 clients: one per (service, region), created once, sharing one retry configuration.

Credentials come from boto3's default chain. The endpoint (moto in tests and the sandbox) is
passed in from the settings (`AWS_ENDPOINT_URL`), never read from the environment here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_rds import RDSClient

# Standard mode: retries throttles and transient errors with jittered exponential backoff.
# A throttle that outlives the five attempts surfaces as an AwsError (see errors.py).
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
)


class AwsClients:
    """Cache of boto3 clients. Thread-safe: clients are created under a lock and are themselves
    safe to share between the worker threads that `asyncio.to_thread` uses."""

    def __init__(self, endpoint_url: str | None, default_region: str | None) -> None:
        self.endpoint_url = endpoint_url or None
        self.default_region = default_region
        # A session of our own: boto3's default session is not safe to create clients from
        # concurrently.
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    @overload
    def client(self, name: Literal["ecs"], region: str | None = None) -> ECSClient: ...
    @overload
    def client(self, name: Literal["ecr"], region: str | None = None) -> ECRClient: ...
    @overload
    def client(
        self, name: Literal["cloudwatch"], region: str | None = None
    ) -> CloudWatchClient: ...
    @overload
    def client(
        self, name: Literal["application-autoscaling"], region: str | None = None
    ) -> ApplicationAutoScalingClient: ...
    @overload
    def client(self, name: Literal["rds"], region: str | None = None) -> RDSClient: ...
    @overload
    def client(self, name: str, region: str | None = None) -> Any: ...

    def client(self, name: str, region: str | None = None) -> Any:
        """The client of `name` in `region` (else the default region), created on first use."""
        key = (name, region or self.default_region)
        found = self._clients.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._session.client(
                    name,  # type: ignore[call-overload]
                    region_name=key[1],
                    endpoint_url=self.endpoint_url,
                    config=BOTO_CONFIG,
                )
                self._clients[key] = found
            return found
