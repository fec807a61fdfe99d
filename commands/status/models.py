"""What `/dhanam status` gathers: one Source per thing read, each with its error or value."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import structlog

from approvals.models import ApprovalRequest
from approvals.policy import Hold
from core.sources import Reading
from core.sources import within as read_within
from integrations.aws.metrics import AlarmDetail, MetricSeries
from integrations.aws.models import ServiceState
from integrations.deploy_history import DeployRecord
from integrations.dhanam_api import ApiHealth

log = structlog.get_logger(__name__)
T = TypeVar("T")


Source = Reading  # one thing read for the reply (core.sources)


async def within(name: str, budget: float, work: Callable[[], Awaitable[T]]) -> Source[T]:
    """Run `work` for at most `budget` seconds; any failure becomes the source's error."""
    return await read_within(name, budget, work, event="status.source_unavailable")


@dataclass(frozen=True)
class EcsView:
    state: ServiceState
    revision: str  # family:revision
    image_tag: str | None
    digest: str | None


@dataclass(frozen=True)
class Traffic:
    load_balancer: str | None  # None: no alarm of the service names one
    errors: MetricSeries | None  # HTTPCode_Target_5XX_Count, Sum
    latency: MetricSeries | None  # TargetResponseTime, Average (seconds)
    start: datetime
    period: int  # seconds per point
    points: int


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    env: str
    ecs_service: str
    ecs: Source[EcsView]
    alarms: Source[list[AlarmDetail]]  # the service's alarms that watch this environment
    hold: Source[Hold | None]
    api: ApiHealth | None  # None: the environment has no api_base_url
    pending: Source[list[ApprovalRequest]]
    traffic: Source[Traffic] | None = None  # detail view only
    last_deploy: Source[DeployRecord | None] | None = None  # detail view only
    ms: float = 0.0  # how long gathering took (detail view)
    # The service's alarms the config does not tie to any one environment (shown apart, never
    # counted as this environment's health).
    unscoped: list[AlarmDetail] = field(default_factory=list)
    elsewhere: int = 0  # the service's alarms that watch other environments (not shown here)


@dataclass(frozen=True)
class Overview:
    rows: list[ServiceStatus]
    at: datetime
    ms: float
