"""boto3 clients: one per (service, region), created once, sharing one retry configuration.

Credentials come from boto3's default chain. The endpoint (moto in tests and the sandbox) is
passed in from the settings (`AWS_ENDPOINT_URL`), never read from the environment here.

The app builds the clients it needs at start-up, in a worker thread (`start`: building a client
reads botocore's service model, ~20 ms of blocking I/O and parsing each); anything else is built
on first use, under a lock. `AwsClients` also owns the thread pools the calls run in
(executors.py): `start` makes them the ones `call_aws` uses, `close` shuts them down.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from integrations.aws import executors as pools
from integrations.aws.executors import AwsExecutors

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_health import HealthClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_route53 import Route53Client

# Standard mode: retries throttles and transient errors with jittered exponential backoff.
# A throttle that outlives the five attempts surfaces as an AwsError (see errors.py).
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
)

# AWS Health is read only by the sev1 checklist, under a few seconds' limit: one retry, not
# four (a Health endpoint answering 5xx would otherwise spend the whole limit on backoff).
SERVICE_CONFIGS = {
    "health": BOTO_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 2}))
}

# What the bot calls, per region an environment lives in (built at start-up).
SERVICES = ("ecs", "ecr", "cloudwatch", "application-autoscaling", "rds", "logs")

log = structlog.get_logger(__name__)


class AwsClients:
    """Cache of boto3 clients. Thread-safe: clients are created under a lock and are themselves
    safe to share between the worker threads the calls run in."""

    def __init__(
        self,
        endpoint_url: str | None,
        default_region: str | None,
        executors: AwsExecutors | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url or None
        self.default_region = default_region
        # The pools are created here (their threads on first use) and used once `start`ed.
        self.executors = executors if executors is not None else AwsExecutors()
        # A session of our own: boto3's default session is not safe to create clients from
        # concurrently.
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    async def start(self, regions: Iterable[str | None] = ()) -> None:
        """At app start-up: route `call_aws` to this object's thread pools and build the
        clients of `SERVICES` in `regions` (and the default region) in a worker thread."""
        pools.activate(self.executors)
        wanted = sorted({r for r in [*regions, self.default_region] if r})
        await self.executors.run(lambda: self.warm(wanted), mutation=False)

    def warm(self, regions: Iterable[str | None]) -> int:
        """Build the clients of `SERVICES` in `regions` now (blocking); returns how many exist.
        A client that cannot be built is logged and left to be built (and fail) on first use."""
        for region in regions:
            for name in SERVICES:
                try:
                    self.client(name, region)
                except (BotoCoreError, ValueError) as exc:
                    log.warning("aws.client_not_built", service=name, region=region, error=str(exc))
        return len(self._clients)

    def close(self) -> None:
        """At app stop: `call_aws` no longer uses these pools, which are shut down."""
        pools.deactivate(self.executors)
        self.executors.shutdown()

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
    def client(self, name: Literal["logs"], region: str | None = None) -> CloudWatchLogsClient: ...
    @overload
    def client(self, name: Literal["route53"], region: str | None = None) -> Route53Client: ...
    @overload
    def client(
        self, name: Literal["cloudfront"], region: str | None = None
    ) -> CloudFrontClient: ...
    @overload
    def client(self, name: Literal["health"], region: str | None = None) -> HealthClient: ...
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
                    config=SERVICE_CONFIGS.get(name, BOTO_CONFIG),
                )
                self._clients[key] = found
            return found
