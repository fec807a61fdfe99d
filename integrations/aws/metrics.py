"""CloudWatch reads for `/dhanam status`: alarm definitions with their state, and metric series.

Both run off the event loop through `call_aws`; every failure is an `AwsError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import call_aws

_ALARM_BATCH = 100
ALB_NAMESPACE = "AWS/ApplicationELB"
LOAD_BALANCER = "LoadBalancer"


@dataclass(frozen=True)
class AlarmDetail:
    """A metric or composite alarm: its state and, for a metric alarm, what it watches."""

    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str
    updated: datetime | None
    namespace: str | None
    metric: str | None
    dimensions: tuple[tuple[str, str], ...]

    def dimension(self, name: str) -> str | None:
        return next((value for key, value in self.dimensions if key == name), None)


@dataclass(frozen=True)
class MetricQuery:
    id: str  # [a-z][a-zA-Z0-9_]*, unique in one request
    namespace: str
    metric: str
    stat: str  # Sum | Average | Maximum | p99 …
    dimensions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MetricSeries:
    id: str
    values: tuple[float, ...]  # oldest first
    timestamps: tuple[datetime, ...]

    @property
    def minimum(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def maximum(self) -> float | None:
        return max(self.values) if self.values else None


def _alarm(raw: Mapping[str, Any]) -> AlarmDetail:
    dimensions = tuple(
        (str(d.get("Name", "")), str(d.get("Value", ""))) for d in raw.get("Dimensions") or []
    )
    return AlarmDetail(
        name=str(raw["AlarmName"]),
        state=str(raw.get("StateValue", "")),
        reason=str(raw.get("StateReason", "")),
        updated=raw.get("StateUpdatedTimestamp"),
        namespace=raw.get("Namespace"),
        metric=raw.get("MetricName"),
        dimensions=dimensions,
    )


class CloudWatchReader:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def describe_alarms(self, region: str, names: list[str]) -> list[AlarmDetail]:
        """Those of `names` that exist, in any state, in the order given."""
        if not names:
            return []
        cloudwatch = self.clients.client("cloudwatch", region)

        def collect() -> list[AlarmDetail]:
            found: list[AlarmDetail] = []
            paginator = cloudwatch.get_paginator("describe_alarms")
            for start in range(0, len(names), _ALARM_BATCH):
                pages = paginator.paginate(
                    AlarmNames=names[start : start + _ALARM_BATCH],
                    AlarmTypes=["MetricAlarm", "CompositeAlarm"],
                )
                for page in pages:
                    raw = [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]
                    found.extend(_alarm(alarm) for alarm in raw)
            return found

        alarms = {a.name: a for a in await call_aws("DescribeAlarms", collect)}
        return [alarms[n] for n in dict.fromkeys(names) if n in alarms]

    async def metric_series(
        self,
        region: str,
        queries: list[MetricQuery],
        start: datetime,
        end: datetime,
        period: int,
    ) -> dict[str, MetricSeries]:
        """GetMetricData for `queries` over [start, end), one point per `period` seconds."""
        if not queries:
            return {}
        cloudwatch = self.clients.client("cloudwatch", region)
        request: list[Any] = [
            {
                "Id": q.id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": q.namespace,
                        "MetricName": q.metric,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions],
                    },
                    "Period": period,
                    "Stat": q.stat,
                },
                "ReturnData": True,
            }
            for q in queries
        ]

        def collect() -> dict[str, list[tuple[datetime, float]]]:
            points: dict[str, list[tuple[datetime, float]]] = {q.id: [] for q in queries}
            pages = cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=request,
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    pairs = zip(
                        result.get("Timestamps", []), result.get("Values", []), strict=False
                    )
                    points.setdefault(result["Id"], []).extend(
                        (at, float(value)) for at, value in pairs
                    )
            return points

        collected = await call_aws("GetMetricData", collect)
        series: dict[str, MetricSeries] = {}
        for query_id, pairs in collected.items():
            pairs.sort(key=lambda pair: pair[0])
            series[query_id] = MetricSeries(
                id=query_id,
                values=tuple(value for _, value in pairs),
                timestamps=tuple(at for at, _ in pairs),
            )
        return series
