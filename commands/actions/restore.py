"""`db restore ENV --to TIME|latest`: RDS point-in-time restore of the environment's
`db_instance` into a new instance. Critical: at least two approvers (PRODUCT.md §2).

The current database is never touched; pointing the services at the restored one is a separate
step. The new instance is named `<db_instance>-restore-<yyyymmddhhmm>` (UTC) after the restore
time — for `latest`, after the minute the restore was asked for (`requested_at`, stamped when
the request is made), so the name, like the plan's fingerprint, does not move while
LatestRestorableTime advances during the approval.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Literal

import structlog
from pydantic import Field

from approvals.models import Action, Change, Plan, Result
from commands.actions.base import environment_config
from commands.actions.runtime import ActionRuntime
from core.config import Config
from core.errors import ChatOpsError
from integrations.aws.rds import DbInstance, RdsGateway

log = structlog.get_logger(__name__)

_ID_LIMIT = 63  # RDS DB instance identifiers: at most 63 characters
_SUFFIX = "-restore-"


def when(moment: datetime) -> str:
    """`2026-11-26 09:30 UTC` (seconds shown only when there are any)."""
    moment = moment.astimezone(UTC)
    pattern = (
        "%Y-%m-%d %H:%M:%S UTC" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M UTC"
    )
    return moment.strftime(pattern)


def restore_identifier(db_instance: str, moment: datetime) -> str:
    """`<db_instance>-restore-<yyyymmddhhmm>`, the source name shortened if it would not fit."""
    stamp = moment.astimezone(UTC).strftime("%Y%m%d%H%M")
    room = _ID_LIMIT - len(_SUFFIX) - len(stamp)
    return f"{db_instance[:room].rstrip('-')}{_SUFFIX}{stamp}"


class DbRestoreAction(Action):
    """Restore ENV's database to TIME (or the latest restorable time) into a new instance."""

    kind: ClassVar[str] = "db_restore"
    critical: ClassVar[bool] = True

    to: datetime | Literal["latest"]
    requested_at: datetime | None = None  # names the instance of a `latest` restore
    requested_by: str | None = None
    approved_by: list[str] = Field(default_factory=list)

    @property
    def lock_scope(self) -> str:
        return f"db:{self.env}"

    def title(self) -> str:
        target = "the latest restorable time" if self.to == "latest" else when(self.to)
        return f"Restore the {self.env} database to {target}"

    def db_instance(self, config: Config) -> str:
        """The environment's `db_instance`; refuses when there is none."""
        env = environment_config(config.environments, self.env)
        if not env.db_instance:
            raise ChatOpsError(
                f"{self.env} has no db_instance configured — nothing to restore "
                f"(set environments.{self.env}.db_instance)"
            )
        return env.db_instance

    async def plan(self, runtime: ActionRuntime) -> Plan:
        env = environment_config(runtime.config.environments, self.env)
        name = self.db_instance(runtime.config)
        rds = RdsGateway(runtime.aws.clients)
        source = await rds.describe_db_instance(env.region, name)
        earliest, latest = source.earliest_restorable, source.latest_restorable
        if earliest is None or latest is None:
            raise ChatOpsError(
                f"{name} has no point-in-time recovery window (backup retention "
                f"{source.backup_retention_days} days, status {source.status}) — nothing to "
                "restore from"
            )
        window = f"{when(earliest)} to {when(latest)}"
        if self.to == "latest":
            moment = latest
            naming = (self.requested_at or runtime.clock.now()).astimezone(UTC)
            point = f"latest restorable time (now {when(latest)})"
        else:
            moment = naming = self.to.astimezone(UTC)
            if not earliest <= moment <= latest:
                raise ChatOpsError(
                    f"{when(moment)} is outside the restorable window of {name}: "
                    f"{window} (backups kept {source.backup_retention_days} days)"
                )
            point = when(moment)
        target = restore_identifier(name, naming)
        existing = await rds.find_db_instance(env.region, target)
        if existing is not None:
            raise ChatOpsError(
                f"{target} already exists (status {existing.status}) — restore to another "
                "minute, or delete it first"
            )
        return Plan.build(
            f"Restore database {name} ({self.env}) to "
            + ("the latest restorable time" if self.to == "latest" else when(moment)),
            inputs={
                "db_instance": name,
                "restore_time": "latest" if self.to == "latest" else moment.isoformat(),
                "target": target,
                "instance_class": source.instance_class,
                "multi_az": source.multi_az,
            },
            changes=_changes(source, target, point),
            facts=[
                f"{name}: {source.engine} {source.instance_class}, {source.status}",
                f"restorable window: {window}",
            ],
            warnings=[
                f"The current database {name} is left untouched; the cut-over is a separate step."
            ],
        )

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        env = environment_config(runtime.config.environments, self.env)
        rds = RdsGateway(runtime.aws.clients)
        name = str(plan.inputs["db_instance"])
        target = str(plan.inputs["target"])
        raw_time = str(plan.inputs["restore_time"])
        restore_time = None if raw_time == "latest" else datetime.fromisoformat(raw_time)
        source = await rds.describe_db_instance(env.region, name)
        tags = {"dhanam:restored-from": name, "dhanam:restore-point": raw_time}
        if self.request_id:
            tags["dhanam:request-id"] = self.request_id
        created = await rds.restore_to_point_in_time(env.region, source, target, restore_time, tags)
        log.info("db_restore.started", source=name, target=target, restore_time=raw_time)
        return Result(
            ok=True,
            summary=f"restoring into {created.identifier} (status {created.status or 'unknown'})",
            details={
                "region": env.region,
                "db_instance": name,
                "target": created.identifier,
                "restore_time": raw_time,
                "status": created.status,
            },
        )


def _changes(source: DbInstance, target: str, point: str) -> list[Change]:
    changes = [
        Change(label="new instance", before="—", after=target),
        Change(label="restore point", before="—", after=point),
        Change(
            label="instance class",
            before=source.instance_class,
            after=f"{source.instance_class} (copied)",
        ),
        Change(
            label="multi-AZ",
            before="yes" if source.multi_az else "no",
            after=("yes" if source.multi_az else "no") + " (copied)",
        ),
    ]
    if source.subnet_group:
        changes.append(
            Change(
                label="subnet group",
                before=source.subnet_group,
                after=f"{source.subnet_group} (copied)",
            )
        )
    return changes
