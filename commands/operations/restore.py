"""`db restore ENV --to TIME|latest`: RDS point-in-time restore of the environment's
`db_instance` into a new instance. Critical: at least two approvers (README: "The two-person rule").

The current database is never touched; pointing the services at the restored one is a separate
step. The new instance is named `<db_instance>-restore-<yyyymmddhhmm>-<request>` (UTC): the
minute is the restore time's — for `latest`, the minute the restore was asked for
(`requested_at`, stamped when the request is made), so the name, like the plan's fingerprint,
does not move while LatestRestorableTime advances during the approval — and `<request>` is the
first 6 characters of the request id, so the name is the request's own: the plan made at submit
(the request id is set by then) names the instance the execution creates, and an execution
that finds it already there (a replay of the same request, tagged `dhanam:request=<id>`)
adopts it instead of restoring a second copy.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import structlog

from approvals.models import Action, Change, Plan, Result
from commands.operations.base import REQUEST_TAG_KEY, environment_config
from commands.operations.runtime import ActionRuntime
from commands.requests import DbRestoreRequest, Request
from core.clock import Clock
from core.config import Config
from core.errors import ChatOpsError
from integrations.aws.errors import AwsError
from integrations.aws.rds import DbInstance, RdsGateway

log = structlog.get_logger(__name__)

_ID_LIMIT = 63  # RDS DB instance identifiers: at most 63 characters
_SUFFIX = "-restore-"
_REQUEST_CHARS = 6
_ALREADY_EXISTS = "DBInstanceAlreadyExists"
_VALID_ID = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*(?<!-)$")


def when(moment: datetime) -> str:
    """`2026-11-26 09:30 UTC` (seconds shown only when there are any)."""
    moment = moment.astimezone(UTC)
    pattern = (
        "%Y-%m-%d %H:%M:%S UTC" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M UTC"
    )
    return moment.strftime(pattern)


def valid_db_identifier(identifier: str) -> bool:
    """What RDS accepts as a DB instance identifier (lower-cased, as RDS stores it): 1 to 63
    letters, digits or hyphens, starting with a letter, no two hyphens in a row, none last."""
    return len(identifier) <= _ID_LIMIT and _VALID_ID.match(identifier) is not None


def restore_identifier(db_instance: str, moment: datetime, request_id: str | None = None) -> str:
    """`<db_instance>-restore-<yyyymmddhhmm>[-<first 6 letters/digits of request_id>]`, lower
    case, the source name shortened (and stripped of a trailing hyphen) if it would not fit."""
    stamp = moment.astimezone(UTC).strftime("%Y%m%d%H%M")
    key = re.sub(r"[^a-z0-9]", "", (request_id or "").lower())[:_REQUEST_CHARS]
    suffix = f"{_SUFFIX}{stamp}" + (f"-{key}" if key else "")
    room = _ID_LIMIT - len(suffix)
    return f"{db_instance.lower()[:room].rstrip('-')}{suffix}"


class DbRestoreAction(Action):
    """Restore ENV's database to TIME (or the latest restorable time) into a new instance.

    Fingerprint: the source instance — its identifier (`db_instance`), ARN (`source_arn`) and
    DbiResourceId (`source_resource_id`: a source deleted and re-created under the same name is
    another instance) — its backup retention (`backup_retention_days`: the window's length), the
    restore point asked for (`restore_time`: the time, or "latest"), the new instance's name
    (`target`), and what is copied to it and shown on the card (`instance_class`, `multi_az`,
    `subnet_group`).

    Not the window's bounds: LatestRestorableTime advances every few minutes by itself, and the
    earliest restorable time (latest minus retention) with it, so a fingerprint of either would void
    every restore during its approval. What the restore depends on is that the time asked for
    is inside the window; that is a precondition of the plan itself, so the re-plan before
    execution refuses (with the window) a time that aged out of it meanwhile, and "latest"
    means the latest restorable time when it runs (the card says so).
    """

    kind: ClassVar[str] = "db_restore"
    critical: ClassVar[bool] = True

    to: datetime | Literal["latest"]
    requested_at: datetime | None = None  # names the instance of a `latest` restore

    @property
    def lock_scope(self) -> str:
        return f"db:{self.env}"

    @classmethod
    def from_request(cls, request: Request, config: Config, clock: Clock) -> DbRestoreAction:
        assert isinstance(request, DbRestoreRequest)
        action = cls(
            env=request.env,
            to=request.to,
            requested_at=clock.now(),
            reason=request.reason,
            break_glass=request.break_glass,
        )
        action.db_instance(config)  # refuse at once when the env has no database
        return action

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
        target = restore_identifier(name, naming, self.request_id)
        facts = [
            f"{name}: {source.engine} {source.instance_class}, {source.status}",
            f"restorable window: {window}",
        ]
        existing = await rds.find_db_instance(env.region, target)
        if existing is not None:
            if not self._made_by_this_request(existing):
                raise ChatOpsError(
                    f"{target} already exists ({_aws_status(existing.status)}) — restore to "
                    "another minute, or delete it first"
                )
            facts.append(
                f"{target} already exists ({_aws_status(existing.status)}): an earlier attempt of "
                "this request started it, so it is adopted and nothing is restored again"
            )
        return Plan.build(
            f"Restore database {name} ({self.env}) to "
            + ("the latest restorable time" if self.to == "latest" else when(moment)),
            inputs={
                "db_instance": name,
                "source_arn": source.arn,
                "source_resource_id": source.resource_id,
                "backup_retention_days": source.backup_retention_days,
                "restore_time": "latest" if self.to == "latest" else moment.isoformat(),
                "target": target,
                "instance_class": source.instance_class,
                "multi_az": source.multi_az,
                "subnet_group": source.subnet_group,
            },
            changes=_changes(source, target, point),
            facts=facts,
            warnings=[
                f"The current database {name} is left untouched; the cut-over is a separate step."
            ],
        )

    def _made_by_this_request(self, instance: DbInstance) -> bool:
        return self.request_id is not None and instance.tags.get(REQUEST_TAG_KEY) == self.request_id

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        """Start the restore, or adopt the instance an earlier attempt of this request started
        (same name, tagged with the request id): a second execution restores nothing again."""
        env = environment_config(runtime.config.environments, self.env)
        rds = RdsGateway(runtime.aws.clients)
        name = str(plan.inputs["db_instance"])
        target = str(plan.inputs["target"])
        raw_time = str(plan.inputs["restore_time"])
        restore_time = None if raw_time == "latest" else datetime.fromisoformat(raw_time)
        details: dict[str, Any] = {
            "region": env.region,
            "db_instance": name,
            "target": target,
            "restore_time": raw_time,
        }
        existing = await rds.find_db_instance(env.region, target)
        if existing is not None:
            return self._adopt(existing, details)
        source = await rds.describe_db_instance(env.region, name)
        tags = {"dhanam:restored-from": name, "dhanam:restore-point": raw_time}
        if self.request_id:
            tags[REQUEST_TAG_KEY] = self.request_id
        try:
            created = await rds.restore_to_point_in_time(
                env.region, source, target, restore_time, tags
            )
        except AwsError as exc:
            if exc.code != _ALREADY_EXISTS:
                raise
            # Started between our look and our call, by another attempt of this request?
            raced = await rds.find_db_instance(env.region, target)
            if raced is None:
                raise
            return self._adopt(raced, details)
        log.info("db_restore.started", source=name, target=target, restore_time=raw_time)
        return Result(
            ok=True,
            summary=_restore_said(created.identifier, created.status),
            details={**details, "target": created.identifier, "status": created.status},
        )

    def _adopt(self, existing: DbInstance, details: dict[str, Any]) -> Result:
        """The target exists: this request's own restore (adopted), or refuse."""
        if not self._made_by_this_request(existing):
            raise ChatOpsError(
                f"{existing.identifier} already exists ({_aws_status(existing.status)}) and was "
                "not started by this request. Nothing was changed."
            )
        log.info("db_restore.adopted", target=existing.identifier, status=existing.status)
        return Result(
            ok=True,
            summary=_adopted_said(existing.identifier, existing.status),
            details={**details, "status": existing.status, "adopted": True},
        )


def _aws_status(status: str | None) -> str:
    """The instance's RDS status as AWS last reported it, said as such."""
    return f"AWS status: {status}" if status else "AWS reported no status yet"


def _restore_said(identifier: str, status: str | None) -> str:
    """What the restore's outcome means, from the status RDS returned for the new instance:
    ``available`` is a database that can be used now; anything else (``creating``, then
    ``backing-up``…) is a restore still running."""
    if status == "available":
        return f"restored into {identifier} — AWS reports it available"
    return f"restoring into {identifier} ({_aws_status(status)}; usable once it is available)"


def _adopted_said(identifier: str, status: str | None) -> str:
    if status == "available":
        return (
            f"already restored into {identifier} by an earlier attempt of this request — AWS "
            "reports it available; nothing to change"
        )
    return (
        f"already restoring into {identifier}, started by an earlier attempt of this request "
        f"({_aws_status(status)}; usable once it is available) — nothing to change"
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
