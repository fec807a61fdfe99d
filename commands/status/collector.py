"""`/dhanam status`: every source read at once, each inside its own budget (rendered by
commands.status.render, answered by commands.status.handler).

A source that fails or is slower than its budget becomes `Source(error=…)` and is shown as
"unavailable (reason)"; it never fails the reply nor delays it past its budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import structlog

from approvals.locks import Locks
from approvals.models import ApprovalRequest, State
from approvals.store import ApprovalStore
from commands.alarms.environment import CLUSTER_DIMENSION, environment_of
from commands.status.models import EcsView, Overview, ServiceStatus, Source, Traffic, within
from core.clock import Clock
from core.config import Config
from core.errors import ChatOpsError
from integrations.aws.gateway import AwsGateway
from integrations.aws.images import parse_image
from integrations.aws.metrics import (
    ALB_NAMESPACE,
    LOAD_BALANCER,
    AlarmDetail,
    CloudWatchReader,
    MetricQuery,
)
from integrations.deploy_history import DeployHistory
from integrations.dhanam_api import ApiHealth, check_api, new_session

if TYPE_CHECKING:
    import aiohttp

log = structlog.get_logger(__name__)
T = TypeVar("T")
LB_CACHE_TTL = timedelta(minutes=10)  # alarm definitions rarely change
TASK_DEFINITIONS_KEPT = 256  # a revision never changes: cached by ARN
IMAGE_TAG_KEY = "image-tag"  # the task definition tag deploys set (commands/operations/deploy.py)


class StatusCollector:
    def __init__(
        self,
        *,
        config: Config,
        aws: AwsGateway,
        cloudwatch: CloudWatchReader,
        history: DeployHistory,
        store: ApprovalStore,
        locks: Locks,
        clock: Clock,
        session_factory: Callable[[], aiohttp.ClientSession] = new_session,
    ) -> None:
        self.config, self.aws, self.cloudwatch = config, aws, cloudwatch
        self.history, self.store, self.locks, self.clock = history, store, locks, clock
        self.settings = config.status
        self._session_factory = session_factory
        self._task_definitions: dict[str, tuple[str, str | None, str | None]] = {}
        self._load_balancers: dict[
            tuple[str, str, tuple[str, ...]], tuple[datetime, str | None]
        ] = {}

    async def one(self, service: str, env: str) -> ServiceStatus:
        """Everything about one service in one environment."""
        started = time.perf_counter()
        async with self._session_factory() as session:
            pending = asyncio.create_task(self._pending())
            api = asyncio.create_task(self._api(session, env))
            row = await self._row(service, env, pending, api, detail=True)
        return replace(row, ms=round((time.perf_counter() - started) * 1000, 1))

    async def ecs_view(self, service: str, env: str) -> EcsView:
        """One service's ECS side alone (the sev1 checklist's ECS step); raises on failure."""
        svc, where = self.config.services[service], self.config.environments[env]
        return await self._ecs(where.region, where.cluster, svc.ecs_service)

    async def overview(self, services: list[str], envs: list[str]) -> Overview:
        """The compact view of every service in every environment: one API check per environment."""
        started = time.perf_counter()
        async with self._session_factory() as session:
            pending = asyncio.create_task(self._pending())
            apis = {env: asyncio.create_task(self._api(session, env)) for env in envs}
            rows = await asyncio.gather(
                *(self._row(s, e, pending, apis[e], detail=False) for e in envs for s in services)
            )
        ms = round((time.perf_counter() - started) * 1000, 1)
        return Overview(list(rows), self.clock.now(), ms)

    async def _row(
        self,
        service: str,
        env: str,
        pending: asyncio.Task[Source[list[ApprovalRequest]]],
        api: asyncio.Task[ApiHealth | None],
        *,
        detail: bool,
    ) -> ServiceStatus:
        svc, where = self.config.services[service], self.config.environments[env]
        budget = self.settings.source_timeout_seconds

        def start(name: str, work: Callable[[], Awaitable[T]]) -> asyncio.Task[Source[T]]:
            return asyncio.create_task(within(name, budget, work))

        alarms = start("alarms", lambda: self.cloudwatch.describe_alarms(where.region, svc.alarms))
        ecs = start("ecs", lambda: self._ecs(where.region, where.cluster, svc.ecs_service))
        hold = start("hold", lambda: self.locks.get_hold(f"{service}:{env}"))
        traffic = (
            start("traffic", lambda: self._traffic(env, where.region, svc.alarms, alarms))
            if detail
            else None
        )
        last = start("history", lambda: self.history.last(service, env)) if detail else None
        mine = await asyncio.shield(pending)
        requests = [r for r in mine.value or [] if r.service == service and r.env == env]
        own, unscoped, elsewhere = self._scoped(await alarms, env, where.region)
        return ServiceStatus(
            service=service,
            env=env,
            ecs_service=svc.ecs_service,
            ecs=await ecs,
            alarms=own,
            unscoped=unscoped,
            elsewhere=elsewhere,
            hold=await hold,
            api=await asyncio.shield(api),
            pending=Source(requests if mine.error is None else None, mine.error, mine.ms),
            traffic=await traffic if traffic is not None else None,
            last_deploy=await last if last is not None else None,
        )

    def _scoped(
        self, alarms: Source[list[AlarmDetail]], env: str, region: str
    ) -> tuple[Source[list[AlarmDetail]], list[AlarmDetail], int]:
        """The alarms that watch ``env`` (the rules of the Roll back button:
        commands/alarms/environment.py) and those the config ties to no environment; an
        alarm of another environment is that environment's, never this one's."""
        if alarms.value is None:
            return alarms, [], 0
        own: list[AlarmDetail] = []
        unscoped: list[AlarmDetail] = []
        elsewhere = 0
        for alarm in alarms.value:
            clusters = frozenset(v for k, v in alarm.dimensions if k == CLUSTER_DIMENSION)
            watched, _ = environment_of(self.config, alarm.name, clusters, region)
            if watched == env:
                own.append(alarm)
            elif watched is None:
                unscoped.append(alarm)
            else:
                elsewhere += 1
        return replace(alarms, value=own), unscoped, elsewhere

    async def _api(self, session: aiohttp.ClientSession, env: str) -> ApiHealth | None:
        base = self.config.environments[env].api_base_url
        if base is None:
            return None
        return await check_api(session, str(base), self.settings.http_timeout_seconds)

    async def _pending(self) -> Source[list[ApprovalRequest]]:
        async def read() -> list[ApprovalRequest]:
            ids = await self.store.active_ids()
            found = await asyncio.gather(*(self.store.get(i) for i in ids))
            now = self.clock.now()
            return [r for r in found if r and r.state is State.PENDING and not r.expired_at(now)]

        return await within("approvals", self.settings.source_timeout_seconds, read)

    async def _ecs(self, region: str, cluster: str, service: str) -> EcsView:
        state = await self.aws.describe_service(region, cluster, service)
        arn = state.task_definition_arn
        if arn not in self._task_definitions:
            self._task_definitions[arn] = await self._describe_image(region, arn, service)
            while len(self._task_definitions) > TASK_DEFINITIONS_KEPT:
                self._task_definitions.pop(next(iter(self._task_definitions)))
        revision, tag, digest = self._task_definitions[arn]
        return EcsView(state, revision, tag, digest)

    async def _describe_image(
        self, region: str, arn: str, service: str
    ) -> tuple[str, str | None, str | None]:
        definition = await self.aws.describe_task_definition(region, arn)
        revision = f"{definition.get('family', '?')}:{definition.get('revision', '?')}"
        wanted = next(
            (s.container for s in self.config.services.values() if s.ecs_service == service), None
        )
        containers = list(definition.get("containerDefinitions", []))
        container = next((c for c in containers if c.get("name") == wanted), None)
        container = container or (containers[0] if containers else {})
        ref = parse_image(str(container.get("image", "")))
        tags = {t.get("key"): t.get("value") for t in definition.get("tags", [])}
        tag = ref.tag or tags.get(IMAGE_TAG_KEY)
        digest = ref.digest
        if digest is None and tag:
            try:
                digest = (await self.aws.resolve_image(region, str(ref), tag)).digest
            except ChatOpsError:
                digest = None  # a tag no longer in the registry: shown without digest
        return revision, tag, digest

    async def _traffic(
        self,
        env: str,
        region: str,
        alarm_names: list[str],
        alarms: asyncio.Task[Source[list[AlarmDetail]]],
    ) -> Traffic:
        """The load balancer the environment's own alarms watch (never another
        environment's), and its 5xx count and latency."""
        key = (env, region, tuple(alarm_names))
        now = self.clock.now()
        cached = self._load_balancers.get(key)
        if cached is not None and now - cached[0] < LB_CACHE_TTL:
            load_balancer = cached[1]
        else:
            described = await asyncio.shield(alarms)
            if described.error is not None:
                raise ChatOpsError(f"no alarm definitions ({described.error})")
            own, _, _ = self._scoped(described, env, region)
            load_balancer = next(
                (lb for a in own.value or [] if (lb := a.dimension(LOAD_BALANCER))), None
            )
            self._load_balancers[key] = (now, load_balancer)
        period = self.settings.metrics_period_seconds
        points = max(1, self.settings.metrics_minutes * 60 // period)
        epoch = int(now.timestamp())
        end = datetime.fromtimestamp(epoch - epoch % period + period, tz=UTC)
        start = end - timedelta(seconds=period * points)
        if load_balancer is None:
            return Traffic(None, None, None, start, period, points)
        dims = ((LOAD_BALANCER, load_balancer),)
        queries = [
            MetricQuery("errors", ALB_NAMESPACE, "HTTPCode_Target_5XX_Count", "Sum", dims),
            MetricQuery("latency", ALB_NAMESPACE, "TargetResponseTime", "Average", dims),
        ]
        series = await self.cloudwatch.metric_series(region, queries, start, end, period)
        return Traffic(
            load_balancer, series.get("errors"), series.get("latency"), start, period, points
        )
