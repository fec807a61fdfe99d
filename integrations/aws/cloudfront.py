"""CloudFront, read-only: a distribution's state (GetDistribution), finding one by an alias
(ListDistributions), and its 5xx error rate (CloudWatch, us-east-1, Region=Global)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError, call_aws
from integrations.aws.metrics import CloudWatchReader, MetricQuery, MetricSeries

METRICS_REGION = "us-east-1"  # CloudFront publishes its metrics there only
NAMESPACE = "AWS/CloudFront"
_NOT_FOUND = "NoSuchDistribution"


@dataclass(frozen=True)
class Distribution:
    id: str
    domain: str  # d111111abcdef8.cloudfront.net
    status: str  # Deployed | InProgress
    enabled: bool
    aliases: tuple[str, ...]


def _distribution(raw: dict[str, Any], config: dict[str, Any]) -> Distribution:
    aliases = (config.get("Aliases") or {}).get("Items") or []
    return Distribution(
        id=str(raw.get("Id", "")),
        domain=str(raw.get("DomainName", "")),
        status=str(raw.get("Status", "")),
        enabled=bool(config.get("Enabled", False)),
        aliases=tuple(str(a) for a in aliases),
    )


class CloudFrontReader:
    def __init__(self, clients: AwsClients, cloudwatch: CloudWatchReader) -> None:
        self.clients = clients
        self.cloudwatch = cloudwatch

    async def get(self, distribution_id: str) -> Distribution | None:
        """The distribution, or None when there is none of that id."""
        cloudfront = self.clients.client("cloudfront", METRICS_REGION)
        try:
            response = await call_aws(
                "GetDistribution", cloudfront.get_distribution, Id=distribution_id
            )
        except AwsError as exc:
            if exc.code == _NOT_FOUND:
                return None
            raise
        raw = response.get("Distribution") or {}
        return _distribution(dict(raw), dict(raw.get("DistributionConfig") or {}))

    async def with_alias(self, hostnames: list[str]) -> Distribution | None:
        """The first distribution one of `hostnames` is an alias of."""
        cloudfront = self.clients.client("cloudfront", METRICS_REGION)
        wanted = {h.lower() for h in hostnames}

        def collect() -> dict[str, Any] | None:
            for page in cloudfront.get_paginator("list_distributions").paginate():
                for item in (page.get("DistributionList") or {}).get("Items") or []:
                    aliases = (item.get("Aliases") or {}).get("Items") or []
                    if wanted & {str(a).lower() for a in aliases}:
                        return dict(item)
            return None

        found = await call_aws("ListDistributions", collect)
        return _distribution(found, found) if found is not None else None

    async def error_rate(
        self, distribution_id: str, start: datetime, end: datetime, period: int
    ) -> MetricSeries | None:
        """5xxErrorRate (percent, Average per period) over [start, end); None: no datapoints."""
        dims = (("DistributionId", distribution_id), ("Region", "Global"))
        query = MetricQuery("rate5xx", NAMESPACE, "5xxErrorRate", "Average", dims)
        series = await self.cloudwatch.metric_series(METRICS_REGION, [query], start, end, period)
        found = series.get("rate5xx")
        return found if found is not None and found.values else None
