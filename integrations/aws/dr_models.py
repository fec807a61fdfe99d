"""The DR region's readiness (`/dhanam dr status`, and later the sev1 checklist and `dr
activate`): what was read, each source with its value or its error, and the verdicts drawn from
it — pure values, read by integrations/aws/dr.py.

A verdict is a `Mark`: OK, BAD, or UNKNOWN when nothing could be read to decide (a source that
failed, a metric with no datapoints). UNKNOWN is never shown as OK, and a missing lag is never
read as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, TypeVar

from core.sources import Reading
from integrations.aws.images import ImageRef

T = TypeVar("T")

AVAILABLE = "available"


class Mark(StrEnum):
    OK = "ok"
    BAD = "bad"
    UNKNOWN = "unknown"


def worst(marks: list[Mark]) -> Mark:
    """BAD if any is BAD, else UNKNOWN if any is UNKNOWN, else OK (OK for no marks)."""
    if Mark.BAD in marks:
        return Mark.BAD
    return Mark.UNKNOWN if Mark.UNKNOWN in marks else Mark.OK


@dataclass(frozen=True)
class DrDatabase:
    """The DR database: a cross-region read replica (`db_instance`) or the replicated automated
    backups (`automated_backup_arn`)."""

    kind: Literal["replica", "backups"]
    name: str  # the instance identifier, or the backups' ARN
    status: str | None  # DBInstanceStatus, or the backups' Status
    source: str | None  # ReadReplicaSourceDBInstanceIdentifier (an ARN when cross-region)
    latest_restorable: datetime | None  # backups: RestoreWindow.LatestTime
    found: bool = True  # False: no such instance, or AWS listed no backups for the ARN
    # The replica's StatusInfos "read replication" entry when it is not normal: "error",
    # "stopped", "terminated" (with RDS's message); None when normal or not reported.
    replication_problem: str | None = None

    @property
    def replicating(self) -> bool:
        return self.kind == "backups" or self.source is not None


@dataclass(frozen=True)
class Image:
    """The image a task definition runs: its reference, and the tag the bot's deploys record
    on the task definition (`image-tag`) when the reference is pinned by digest only."""

    ref: ImageRef
    tag: str | None

    def __str__(self) -> str:
        text = self.ref.repository_uri.rsplit("/", 1)[-1]
        if self.tag:
            text += f":{self.tag}"
        if self.ref.digest:
            text += f"@{self.ref.digest.removeprefix('sha256:')[:12]}"
        return text


def same_image(a: Image, b: Image) -> bool:
    """The same repository and, when both are pinned, the same digest; otherwise the same tag."""
    if a.ref.repository_uri != b.ref.repository_uri:
        return False
    if a.ref.digest and b.ref.digest:
        return a.ref.digest == b.ref.digest
    return a.tag is not None and a.tag == b.tag


@dataclass(frozen=True)
class ServiceSide:
    """One ECS service in one cluster: counts, and the image its task definition runs."""

    desired: int
    running: int
    task_definition: str  # family:revision
    image: Image | None  # None: the task definition names no container image


@dataclass(frozen=True)
class DrService:
    service: str  # the config's name (api)
    ecs_service: str
    dr: ServiceSide | None  # None: no such service in the DR cluster
    production: Reading[ServiceSide]  # what production runs now, for comparison

    @property
    def missing(self) -> bool:
        return self.dr is None

    @property
    def image_matches(self) -> bool | None:
        """None when either image is unknown."""
        prod = self.production.value
        if self.dr is None or self.dr.image is None or prod is None or prod.image is None:
            return None
        return same_image(self.dr.image, prod.image)


@dataclass(frozen=True)
class DrRecord:
    name: str  # as configured
    zone_id: str
    target: str  # what it points to after a failover
    values: tuple[str, ...]  # where it points now (record values, alias DNS names)
    type: str | None  # CNAME, A…; None when the record is not there

    @property
    def found(self) -> bool:
        return self.type is not None

    @property
    def points_at_dr(self) -> bool:
        """Every record set of the name points at the target (with failover or weighted sets,
        one of them pointing there is not a failover)."""
        return bool(self.values) and all(_host(v) == _host(self.target) for v in self.values)


def _host(name: str) -> str:
    return name.strip().rstrip(".").lower()


@dataclass(frozen=True)
class Rpo:
    """The current recovery point against the target: how much data a failover now would lose."""

    mark: Mark
    behind: timedelta | None  # None: unknown
    target: timedelta
    why: str  # one line: what it was judged from


def rpo(
    database: Reading[DrDatabase],
    lag: Reading[float | None] | None,
    now: datetime,
    target_seconds: int,
) -> Rpo:
    """The replica's lag (CloudWatch ReplicaLag), or `now - newest restorable time` of the
    replicated backups; BAD over `target_seconds`, UNKNOWN when it cannot be told."""
    target = timedelta(seconds=target_seconds)
    db = database.value
    if db is None:
        return Rpo(Mark.UNKNOWN, None, target, f"database unreadable ({database.error})")
    if not db.found:
        missing = "no replicated backups found" if db.kind == "backups" else "replica not found"
        return Rpo(Mark.BAD, None, target, missing)
    if db.kind == "backups":
        if db.latest_restorable is None:
            return Rpo(Mark.UNKNOWN, None, target, "the backups name no restorable time")
        return _judged(max(now - db.latest_restorable, timedelta(0)), target, "restorable time")
    if db.source is None or db.replication_problem is not None:
        why = "not replicating (no source instance)"
        if db.replication_problem is not None:
            why = f"replication {db.replication_problem}"
        return Rpo(Mark.BAD, None, target, why)
    return _from_lag(lag, target)


def _from_lag(lag: Reading[float | None] | None, target: timedelta) -> Rpo:
    if lag is None or lag.error is not None:
        reason = lag.error if lag is not None else "not read"
        return Rpo(Mark.UNKNOWN, None, target, f"lag unknown ({reason})")
    if lag.value is None:
        return Rpo(Mark.UNKNOWN, None, target, "lag unknown (no ReplicaLag datapoints)")
    if lag.value < 0:
        # RDS reports -1 when replication is not active (MySQL/MariaDB): exactly what a dead
        # source region looks like. Never "0 s behind".
        return Rpo(Mark.BAD, None, target, "replication not active (ReplicaLag -1)")
    return _judged(timedelta(seconds=lag.value), target, "replica lag")


def _judged(behind: timedelta, target: timedelta, why: str) -> Rpo:
    return Rpo(Mark.OK if behind <= target else Mark.BAD, behind, target, why)


def database_mark(database: Reading[DrDatabase]) -> Mark:
    db = database.value
    if db is None:
        return Mark.UNKNOWN
    if not db.found or not db.replicating or db.replication_problem is not None:
        return Mark.BAD
    if db.kind == "replica" and db.status != AVAILABLE:
        return Mark.BAD
    return Mark.OK


def service_mark(reading: Reading[DrService]) -> Mark:
    """OK when the DR service is there and would run production's image (its counts at 0 are
    expected: activation scales it); BAD when missing or on another image."""
    service = reading.value
    if service is None:
        return Mark.UNKNOWN
    if service.missing:
        return Mark.BAD
    matches = service.image_matches
    if matches is None:
        return Mark.UNKNOWN
    return Mark.OK if matches else Mark.BAD


def record_mark(reading: Reading[DrRecord]) -> Mark:
    """OK when the record exists (pointing at the primary is the normal state before a
    failover); BAD when it is not there."""
    record = reading.value
    if record is None:
        return Mark.UNKNOWN
    return Mark.OK if record.found else Mark.BAD


@dataclass(frozen=True)
class DrReadiness:
    region: str
    cluster: str
    checked_at: datetime
    ms: float
    database: Reading[DrDatabase]
    lag: Reading[float | None] | None  # replica only
    services: Mapping[str, Reading[DrService]]  # by the config's service name
    record: Reading[DrRecord] | None  # None: no failover record configured
    rpo: Rpo
    rto: timedelta

    @property
    def facts(self) -> list[tuple[str, Mark]]:
        """Each fact's mark, by name: the database, "RPO", each service, "failover record"."""
        db = self.database.value
        kind = (
            "database"
            if db is None
            else "replicated backups"
            if db.kind == "backups"
            else "replica"
        )
        facts = [(kind, database_mark(self.database)), ("RPO", self.rpo.mark)]
        facts += [(name, service_mark(s)) for name, s in self.services.items()]
        if self.record is not None:
            facts.append(("failover record", record_mark(self.record)))
        return facts

    @property
    def mark(self) -> Mark:
        """The verdict: the worst fact."""
        return worst([mark for _, mark in self.facts])

    @property
    def problems(self) -> list[tuple[str, Mark]]:
        """The facts that are not OK (BAD or UNKNOWN), in order."""
        return [(name, mark) for name, mark in self.facts if mark is not Mark.OK]
