"""The DR region's readiness, read from AWS: `DrReader.readiness()` (the models and verdicts are
in integrations/aws/dr_models.py).

Every source is read at once, each under the same budget (`[status] source_timeout_seconds`),
so one slow or refusing source costs its own line and never the reply: the DR database
(DescribeDBInstances, or DescribeDBInstanceAutomatedBackups), the replica's lag (CloudWatch
GetMetricData, `ReplicaLag`), each service in the DR cluster and in production (DescribeServices,
DescribeTaskDefinition), and the failover record (ListResourceRecordSets). Every call goes
through `call_aws`; "not found" is a value (a missing replica, service or record), any other
failure is the source's error.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog

from core.clock import Clock
from core.config import Config, DrConfig
from core.errors import StoreUnavailableError
from core.sources import Reading, within
from integrations.aws.clients import AwsClients
from integrations.aws.dr_models import (
    DrDatabase,
    DrReadiness,
    DrRecord,
    DrService,
    Image,
    ServiceSide,
    rpo,
)
from integrations.aws.errors import AwsError, call_aws
from integrations.aws.gateway import AwsGateway
from integrations.aws.images import parse_image
from integrations.aws.metrics import CloudWatchReader, MetricQuery
from integrations.aws.models import ServiceState, short
from integrations.dr_snapshot import ProductionSnapshots, production_service

log = structlog.get_logger(__name__)

PRODUCTION_SHARE = 0.6  # of a DR service line's budget, for reading production's side
T = TypeVar("T")

PRODUCTION = "production"
LAG_WINDOW = timedelta(minutes=15)  # the newest ReplicaLag datapoint within this
LAG_PERIOD = 60
RDS_NAMESPACE = "AWS/RDS"
IMAGE_TAG_KEY = "image-tag"  # the tag deploys set on a revision (commands/operations/deploy.py)
_DB_NOT_FOUND = "DBInstanceNotFound"
_SERVICE_NOT_FOUND = ("ServiceNotFoundException", "ClusterNotFoundException")
_RECORDS_READ = "20"  # record sets of one name (weighted/failover sets share it)


async def bounded(name: str, budget: float, work: Callable[[], Awaitable[T]]) -> Reading[T]:
    """Run `work` for at most `budget` seconds; any failure becomes the reading's error."""
    return await within(name, budget, work, event="dr.source_unavailable")


def production_env(config: Config) -> str:
    """The environment DR mirrors: the one named "production", else the first configured."""
    if PRODUCTION in config.environments:
        return PRODUCTION
    return next(iter(config.environments))


class DrReader:
    def __init__(
        self,
        *,
        config: Config,
        clients: AwsClients,
        aws: AwsGateway,
        cloudwatch: CloudWatchReader,
        clock: Clock,
        snapshots: ProductionSnapshots | None = None,
    ) -> None:
        self.config, self.clients, self.aws = config, clients, aws
        self.cloudwatch, self.clock = cloudwatch, clock
        self.snapshots = snapshots  # production's services, kept when read (dr activate)
        self.budget = config.status.source_timeout_seconds

    async def readiness(self, dr: DrConfig) -> DrReadiness:
        """Every source at once; returns when the slowest has answered or run out of budget."""
        started = time.perf_counter()

        def start(name: str, work: Callable[[], Awaitable[T]]) -> asyncio.Task[Reading[T]]:
            return asyncio.create_task(bounded(name, self.budget, work))

        database = start("database", lambda: self.database(dr))
        lag = start("lag", lambda: self.replica_lag(dr)) if dr.db_instance else None
        services = {
            name: start(f"service {name}", functools.partial(self.service, dr, name))
            for name in self.config.service_names
        }
        record = start("record", lambda: self.record(dr)) if dr.record_name else None
        db_reading = await database
        lag_reading = await lag if lag is not None else None
        service_readings = {name: await task for name, task in services.items()}
        record_reading = await record if record is not None else None
        now = self.clock.now()
        return DrReadiness(
            region=dr.region,
            cluster=dr.cluster,
            checked_at=now,
            ms=round((time.perf_counter() - started) * 1000, 1),
            database=db_reading,
            lag=lag_reading,
            services=service_readings,
            record=record_reading,
            rpo=rpo(db_reading, lag_reading, now, dr.rpo_seconds),
            rto=timedelta(seconds=dr.rto_seconds),
        )

    # -- the database --------------------------------------------------------------------------
    async def database(self, dr: DrConfig) -> DrDatabase:
        rds = self.clients.client("rds", dr.region)
        if dr.db_instance is not None:
            try:
                response = await call_aws(
                    "DescribeDBInstances",
                    rds.describe_db_instances,
                    DBInstanceIdentifier=dr.db_instance,
                )
            except AwsError as exc:
                if exc.code != _DB_NOT_FOUND:
                    raise
                return DrDatabase("replica", dr.db_instance, None, None, None, found=False)
            found = response.get("DBInstances", [])
            if not found:
                return DrDatabase("replica", dr.db_instance, None, None, None, found=False)
            raw: Mapping[str, Any] = found[0]
            source = raw.get("ReadReplicaSourceDBInstanceIdentifier")
            return DrDatabase(
                "replica",
                dr.db_instance,
                str(raw.get("DBInstanceStatus") or "") or None,
                str(source) if source else None,
                None,
                replication_problem=_replication_problem(raw),
            )
        arn = str(dr.automated_backup_arn)
        listed = await call_aws(
            "DescribeDBInstanceAutomatedBackups",
            rds.describe_db_instance_automated_backups,
            DBInstanceAutomatedBackupsArn=arn,
        )
        backups = listed.get("DBInstanceAutomatedBackups", [])
        if not backups:
            return DrDatabase("backups", arn, None, None, None, found=False)
        latest = max(
            (
                b["RestoreWindow"]["LatestTime"]
                for b in backups
                if isinstance(b.get("RestoreWindow", {}).get("LatestTime"), datetime)
            ),
            default=None,
        )
        return DrDatabase(
            "backups",
            arn,
            str(backups[0].get("Status") or "") or None,
            str(backups[0].get("DBInstanceArn") or "") or None,
            latest.astimezone(UTC) if latest is not None else None,
        )

    async def replica_lag(self, dr: DrConfig) -> float | None:
        """The newest `ReplicaLag` (seconds) of the DR replica; None when CloudWatch has no
        datapoint in the last 15 minutes (never read as 0)."""
        end = self.clock.now()
        query = MetricQuery(
            "lag",
            RDS_NAMESPACE,
            "ReplicaLag",
            "Maximum",
            (("DBInstanceIdentifier", str(dr.db_instance)),),
        )
        series = await self.cloudwatch.metric_series(
            dr.region, [query], end - LAG_WINDOW, end, LAG_PERIOD
        )
        found = series.get("lag")
        return found.values[-1] if found is not None and found.values else None

    # -- the services --------------------------------------------------------------------------
    async def service(self, dr: DrConfig, name: str) -> DrService:
        """The DR service next to what production runs now (read at the same time)."""
        svc = self.config.services[name]
        # Production's side gets part of the budget: when the primary hangs (an outage) its
        # line says so, and the DR side, read in the same budget, is still shown.
        production = asyncio.create_task(
            bounded(
                f"production {name}", self.budget * PRODUCTION_SHARE, lambda: self._production(name)
            )
        )
        try:
            side = await self._side(dr.region, dr.cluster, svc.ecs_service, svc.container)
        except AwsError as exc:
            if exc.code not in _SERVICE_NOT_FOUND:
                production.cancel()
                raise
            side = None
        return DrService(name, svc.ecs_service, side, await production)

    async def _production(self, name: str) -> ServiceSide:
        """Production's side of `name`, kept as the snapshot `dr activate` plans from when the
        primary cannot be read (integrations/dr_snapshot.py)."""
        svc = self.config.services[name]
        env = production_env(self.config)
        prod = self.config.environments[env]
        state = await self.aws.describe_service(prod.region, prod.cluster, svc.ecs_service)
        definition = await self.aws.describe_task_definition(prod.region, state.task_definition_arn)
        if self.snapshots is not None:
            read = production_service(definition, state.desired, svc.container, self.clock.now())
            try:
                await self.snapshots.save(env, name, read)
            except StoreUnavailableError as exc:
                log.warning("dr.snapshot_not_kept", service=name, error=exc.detail)
        return self._side_of(state, definition, svc.container)

    async def _side(self, region: str, cluster: str, service: str, container: str) -> ServiceSide:
        state = await self.aws.describe_service(region, cluster, service)
        definition = await self.aws.describe_task_definition(region, state.task_definition_arn)
        return self._side_of(state, definition, container)

    @staticmethod
    def _side_of(state: ServiceState, definition: Mapping[str, Any], container: str) -> ServiceSide:
        containers = list(definition.get("containerDefinitions", []))
        chosen = next((c for c in containers if c.get("name") == container), None)
        chosen = chosen or (containers[0] if containers else None)
        image: Image | None = None
        if chosen is not None and chosen.get("image"):
            ref = parse_image(str(chosen["image"]))
            tags = {t.get("key"): t.get("value") for t in definition.get("tags", [])}
            tag = ref.tag or tags.get(IMAGE_TAG_KEY)
            image = Image(ref, str(tag) if tag else None)
        revision = definition.get("revision")
        task_definition = (
            f"{definition.get('family')}:{revision}"
            if revision is not None
            else short(state.task_definition_arn)
        )
        return ServiceSide(state.desired, state.running, task_definition, image)

    # -- the failover record -------------------------------------------------------------------
    async def record(self, dr: DrConfig) -> DrRecord:
        zone_id, name = str(dr.route53_zone_id), str(dr.record_name)
        route53 = self.clients.client("route53")
        response = await call_aws(
            "ListResourceRecordSets",
            route53.list_resource_record_sets,
            HostedZoneId=zone_id,
            StartRecordName=name,
            MaxItems=_RECORDS_READ,
        )
        wanted = name.rstrip(".").lower()
        sets = [
            s
            for s in response.get("ResourceRecordSets", [])
            if s["Name"].rstrip(".").lower() == wanted and s["Type"] not in ("NS", "SOA")
        ]
        values: list[str] = []
        for record in sets:
            values += [r["Value"] for r in record.get("ResourceRecords", [])]
            alias = record.get("AliasTarget")
            if alias:
                values.append(alias["DNSName"])
        kind = sets[0]["Type"] if sets else None
        return DrRecord(name, zone_id, str(dr.target), tuple(values), kind)


def _replication_problem(instance: Mapping[str, Any]) -> str | None:
    """What RDS says is wrong with a replica's replication (StatusInfos, type "read
    replication", Normal false): its status and message; None when all is normal."""
    for info in instance.get("StatusInfos") or []:
        if str(info.get("StatusType", "")).lower() != "read replication":
            continue
        if info.get("Normal", True):
            return None
        message = str(info.get("Message") or "").strip()
        status = str(info.get("Status") or "not normal")
        return f"{status}: {message[:200]}" if message else status
    return None
