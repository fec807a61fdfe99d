"""The sev1 checklist's sources in the sandbox, and a way to break each one (`:break WHAT`).

- CloudFront's 5xxErrorRate for the distribution serving app.dhanam.io (sandbox/dr_world.py):
  moto holds no metrics of its own, so `seed_outage` puts 0.2 % a minute from 15 minutes ago to
  three hours ahead (a console session stays "fresh");
- AWS Health: moto has none (it answers HTTP 500); `HealthStandIn` answers DescribeEvents on
  the bots' own boto3 clients, in this process, with the open issues it holds or an error code.
  The sandbox starts as an account without a Business support plan
  (SubscriptionRequiredException: the step says "not available");
- DNS: sandbox/dns_server.py.

`break_source` breaks one: dns (api.dhanam.io answers NXDOMAIN), cloudfront (5xx at 42 %), rds
(the production instance stopped), ecs (api running 0 of its desired tasks), logs (40 ERROR lines
in api's log group), health (an open ECS issue in us-east-1), dr (the DR replica gone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import boto3

from core.config import Config
from sandbox.aws_world import (
    _IN_PROCESS,
    DB_INSTANCE,
    SANDBOX_AWS_ACCESS_KEY_ID,
    SANDBOX_AWS_SECRET_ACCESS_KEY,
)
from sandbox.dns_server import DnsStandIn
from sandbox.dr_world import break_dr

Source = Literal["dns", "cloudfront", "rds", "ecs", "logs", "health", "dr"]
SOURCES: tuple[str, ...] = get_args(Source)
REGION = "us-east-1"
ALIAS = "app.dhanam.io"
_CREDENTIALS = {
    "aws_access_key_id": SANDBOX_AWS_ACCESS_KEY_ID,
    "aws_secret_access_key": SANDBOX_AWS_SECRET_ACCESS_KEY,
}


def _client(service: str, endpoint_url: str, region: str = REGION) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_url, region_name=region, **_CREDENTIALS
    )


def distribution_id(endpoint_url: str) -> str | None:
    """The distribution with app.dhanam.io among its aliases, if seeded."""
    listed = _client("cloudfront", endpoint_url).list_distributions().get("DistributionList", {})
    for item in listed.get("Items") or []:
        if ALIAS in ((item.get("Aliases") or {}).get("Items") or []):
            return str(item["Id"])
    return None


def put_error_rate(
    endpoint_url: str, distribution: str, percent: float, *, back: int = 15, ahead: int = 180
) -> None:
    """5xxErrorRate = `percent`, one point a minute from `back` minutes ago to `ahead` on."""
    cloudwatch = _client("cloudwatch", endpoint_url)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    dims = [
        {"Name": "DistributionId", "Value": distribution},
        {"Name": "Region", "Value": "Global"},
    ]
    points = [
        {
            "MetricName": "5xxErrorRate",
            "Dimensions": dims,
            "Timestamp": now + timedelta(minutes=m),
            "Value": percent,
            "Unit": "Percent",
        }
        for m in range(-back, ahead + 1)
    ]
    for start in range(0, len(points), 500):
        cloudwatch.put_metric_data(
            Namespace="AWS/CloudFront", MetricData=points[start : start + 500]
        )


def seed_outage(endpoint_url: str) -> str | None:
    """CloudFront's 5xx rate, healthy (0.2 %); returns the distribution's id."""
    found = distribution_id(endpoint_url)
    if found is not None:
        put_error_rate(endpoint_url, found, 0.2)
    return found


_HEALTH_HOOK = "sandbox-aws-health"


class _Http:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


@dataclass
class HealthStandIn:
    """AWS Health's DescribeEvents, answered on a boto3 client of this process."""

    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # an AWS error code to answer with instead
    delay: float = 0.0  # seconds each answer takes (a slow source)

    def install(self, client: Any) -> None:
        # On "before-call" itself, after any hook registered earlier (the tests' recording of
        # the IAM actions called), rather than on the more specific event that would run first.
        client.meta.events.register("before-call", self._answer, unique_id=_HEALTH_HOOK)

    def uninstall(self, client: Any) -> None:
        """The client asks the endpoint again (moto: HTTP 500, no Health API)."""
        client.meta.events.unregister("before-call", unique_id=_HEALTH_HOOK)

    def open_issue(self, service: str = "ECS", region: str = REGION) -> None:
        self.events.append(
            {
                "arn": f"arn:aws:health:{region}::event/{service}/sandbox-{len(self.events)}",
                "service": service,
                "eventTypeCode": f"AWS_{service}_OPERATIONAL_ISSUE",
                "eventTypeCategory": "issue",
                "region": region,
                "startTime": datetime.now(UTC) - timedelta(minutes=12),
                "statusCode": "open",
            }
        )

    def _answer(self, model: Any, **_kwargs: Any) -> tuple[_Http, dict[str, Any]] | None:
        if model.name != "DescribeEvents":
            return None
        if self.delay:
            time.sleep(self.delay)  # in the AWS call's worker thread, as a slow answer would be
        if self.error is not None:
            body = {"Error": {"Code": self.error, "Message": f"sandbox: {self.error}"}}
            return _Http(400), {**body, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return _Http(200), {
            "events": list(self.events),
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }


def _stop_api_tasks(endpoint_url: str) -> None:
    """api in production runs 0 of its desired tasks (moto's backend, in this process)."""
    if endpoint_url not in _IN_PROCESS:
        raise RuntimeError(f"{endpoint_url} is not a moto server of this process")
    from moto.backends import get_backend  # noqa: PLC0415 - moto internals, only here

    account = _client("sts", endpoint_url).get_caller_identity()["Account"]
    service = get_backend("ecs")[account][REGION].services["dhanam-production:dhanam-api"]
    service.running_count = 0


def _error_lines(endpoint_url: str, count: int = 40) -> None:
    logs = _client("logs", endpoint_url)
    group, stream = "/ecs/dhanam-api", "ecs/api/sandbox-broken"
    existing = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)
    if not existing.get("logStreams"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": now - (count - i) * 1000, "message": "ERROR prisma: connection refused"}
            for i in range(count)
        ],
    )


def break_source(  # noqa: PLR0911 - one short branch per source
    what: str, *, endpoint_url: str, dns: DnsStandIn | None, health: HealthStandIn | None
) -> str:
    """Break one source (see the module doc); what was done, in one line."""
    if what == "dns":
        if dns is None:
            raise RuntimeError("no DNS stand-in: the config has no [outage] table")
        dns.break_name("api.dhanam.io", "nxdomain")
        return "api.dhanam.io now answers NXDOMAIN"
    if what == "cloudfront":
        found = distribution_id(endpoint_url)
        if found is None:
            raise RuntimeError("no CloudFront distribution for app.dhanam.io")
        put_error_rate(endpoint_url, found, 42.0, back=2, ahead=180)
        return f"CloudFront {found} serves 42 % 5xx"
    if what == "rds":
        _client("rds", endpoint_url).stop_db_instance(DBInstanceIdentifier=DB_INSTANCE)
        return f"RDS {DB_INSTANCE} stopped"
    if what == "ecs":
        _stop_api_tasks(endpoint_url)
        return "api in production runs 0 tasks"
    if what == "logs":
        _error_lines(endpoint_url)
        return "40 ERROR lines in /ecs/dhanam-api"
    if what == "health":
        if health is None:
            raise RuntimeError("no AWS Health stand-in")
        health.open_issue("ECS")
        return "AWS Health has an open ECS issue in us-east-1"
    if what == "dr":
        break_dr(endpoint_url, "replica", _CREDENTIALS)
        return "the DR replica is gone"
    raise ValueError(f"unknown source {what!r}: one of {', '.join(SOURCES)}")


@dataclass
class OutageStandIns:
    """The DNS stand-in (when the config has `[outage]`) and the AWS Health stand-in."""

    dns: DnsStandIn | None = None
    # An account without a Business support plan, until `:break health` opens an issue.
    health: HealthStandIn = field(
        default_factory=lambda: HealthStandIn(error="SubscriptionRequiredException")
    )
    endpoint_url: str | None = None

    def install(self, apps: Iterable[Any]) -> None:
        """With `[outage]`: the bots' AWS Health clients answered by `health` (moto has none)."""
        if self.dns is not None:
            for client in bot_health_clients(apps):
                self.health.install(client)

    async def stop(self) -> None:
        if self.dns is not None:
            await self.dns.stop()

    async def break_source(self, what: str, health_clients: Iterable[Any]) -> str:
        """`:break WHAT`: break one source; AWS Health is answered on `health_clients` (the
        bot's own) from then on."""
        if what not in SOURCES:
            raise ValueError(f"unknown source {what!r}: one of {', '.join(SOURCES)}")
        if self.endpoint_url is None:
            raise RuntimeError("the sandbox runs without AWS: nothing to break")
        if what == "health":
            self.health.error = None
            for client in health_clients:
                self.health.install(client)
        endpoint = self.endpoint_url
        return await asyncio.to_thread(
            lambda: break_source(what, endpoint_url=endpoint, dns=self.dns, health=self.health)
        )


def bot_health_clients(apps: Iterable[Any]) -> list[Any]:
    """The AWS Health client of each running bot (web.Application) of this process."""
    from bot.app import DEPS  # noqa: PLC0415 - the sandbox reaches into its own bots

    return [app[DEPS].status.aws.clients.client("health", "us-east-1") for app in apps]


async def start_outage(config: Config, endpoint_url: str | None) -> tuple[Config, OutageStandIns]:
    """With `[outage]` and AWS: the DNS stand-in started and the config's resolver pointed at
    it, CloudFront's 5xx rate seeded. Without AWS the checks have nothing to read: the config
    loses its `[outage]` table (the checklist is ticked by hand)."""
    if config.outage is None:
        return config, OutageStandIns(endpoint_url=endpoint_url)
    if endpoint_url is None:
        return config.model_copy(update={"outage": None}), OutageStandIns()
    dns = DnsStandIn()
    await dns.start()
    outage = config.outage.model_copy(update={"resolver": dns.address})
    await asyncio.to_thread(seed_outage, endpoint_url)
    return config.model_copy(update={"outage": outage}), OutageStandIns(
        dns, endpoint_url=endpoint_url
    )
