"""Each step of `dr activate`, idempotent: it looks at AWS first and does only what is not done,
so a replay (or a re-run after a crash) resumes at the step that was not finished.

1. the database — a replica not yet promoted gets PromoteReadReplica, then the tag
   `dhanam:promoted-by=<request id>` (how a promotion is told on moto, which keeps the replica's
   source; AWS drops it); with replicated backups, RestoreDBInstanceToPointInTime into the
   instance `<source>-dr-restore` unless it exists. Then DescribeDBInstances every `task_poll`
   seconds until the database is available;
2. each service — nothing when the DR service already runs production's images at production's
   desired count; else a revision copied from the DR service's own with production's images (one
   this request registered earlier is reused), and UpdateService with the revision and count;
   then DescribeServices every `task_poll` seconds until every DR service runs its desired count
   (at least one task): the record is never switched to services that do not run;
3. the record — nothing when it already points at the DR target; else one UPSERT, then GetChange
   until INSYNC.

Every wait ends at the RTO counted from the start of the activation (one budget, not one each).

A step that fails raises `StepFailedError` (a ChatOpsError carrying the AWS operation and whether
AWS answered, as the engine's outcome text reads them): nothing after it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from commands.operations.base import REQUEST_TAG_KEY
from commands.operations.dr_plan import RESTORED_FROM_TAG
from commands.operations.dr_record import simple_record
from commands.operations.runtime import ActionRuntime
from core.config import DrConfig
from core.errors import ChatOpsError
from core.text import duration
from integrations.aws.dr_actions import INSYNC, PROMOTED_TAG, DrActions
from integrations.aws.errors import AwsError

Waiting = Callable[[str], Awaitable[None]]
_PROMOTING = "InvalidDBInstanceState"  # PromoteReadReplica on a replica being promoted already
_EXISTS = "DBInstanceAlreadyExists"


class StepFailedError(ChatOpsError):
    """A step failed; ``operation`` and ``answered`` are the AWS error's, when there was one."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.operation: str | None = getattr(cause, "operation", None)
        self.answered: bool = bool(getattr(cause, "answered", False))


async def wait_until(
    runtime: ActionRuntime,
    what: str,
    limit: timedelta,
    look: Callable[[], Awaitable[tuple[bool, str]]],
    waiting: Waiting,
    *,
    since: datetime | None = None,
) -> str:
    """Look every `task_poll` seconds until ready; the last status. ChatOpsError once `limit`
    has passed since `since` — the start of the activation, so every wait shares one RTO —
    (default: since this wait began)."""
    started = since or runtime.clock.now()
    while True:
        ready, status = await look()
        if ready:
            return status
        waited = runtime.clock.now() - started
        if waited >= limit:
            counted = ", counted from the start of the activation" if since else ""
            raise ChatOpsError(
                f"{what} is still {status} after {duration(waited)} (the wait ends at the "
                f"{duration(limit)} RTO{counted})"
            )
        await waiting(f"{status}, waited {duration(waited)}")
        await asyncio.sleep(runtime.task_poll)


# -- 1. the database ---------------------------------------------------------------------------
async def database_step(
    runtime: ActionRuntime,
    actions: DrActions,
    dr: DrConfig,
    inputs: dict[str, Any],
    *,
    request_id: str | None,
    waiting: Waiting,
    since: datetime | None = None,
) -> str:
    limit = timedelta(seconds=dr.rto_seconds)
    if inputs["kind"] == "replica":
        name = str(inputs["identifier"])
        state = await actions.database(dr.region, name)
        if state is None:
            raise ChatOpsError(f"{name} is no longer in {dr.region}")
        already = state.promoted
        if not already:
            await waiting(await _promote(actions, dr.region, name, request_id))
    else:
        name = str(inputs["target"])
        already = await actions.database(dr.region, name) is not None
        if not already:
            tags = {REQUEST_TAG_KEY: request_id or "", RESTORED_FROM_TAG: str(inputs["arn"])}
            try:
                await actions.restore_from_backup(dr.region, str(inputs["arn"]), name, tags)
            except AwsError as exc:
                if exc.code != _EXISTS:
                    raise
            await waiting(f"restoring into {name}")

    async def look() -> tuple[bool, str]:
        now = await actions.database(dr.region, name)
        if now is None:
            return False, "not listed yet"
        if inputs["kind"] == "replica" and now.available and not now.promoted:
            # refused while busy (modifying, backing-up…): sent again now that it is available
            return False, await _promote(actions, dr.region, name, request_id)
        return now.available and now.promoted, now.status or "no status"

    await wait_until(runtime, name, limit, look, waiting, since=since)
    if inputs["kind"] == "replica":
        return f"{'already ' if already else ''}promoted, available"
    return f"{'already ' if already else ''}restored, available"


async def _promote(actions: DrActions, region: str, name: str, request_id: str | None) -> str:
    """PromoteReadReplica, then the tag; what happened, as the thread shows it. Refused with
    InvalidDBInstanceState: under way when the replica has no source any more (an earlier
    attempt's promotion), else busy — the caller sends it again once the replica is available.
    Refused while available, or refused otherwise: the step fails."""
    try:
        promoted = await actions.promote(region, name)
    except AwsError as exc:
        if exc.code != _PROMOTING:
            raise
        now = await actions.database(region, name)
        if now is None:
            raise
        if now.source is None:
            return f"promotion under way ({now.status})"
        if now.available:
            raise  # refused while nothing is in the way: waiting would not change it
        return (
            f"PromoteReadReplica refused ({exc.code}: {exc.message}); the replica is "
            f"{now.status}, sent again once it is available"
        )
    if promoted.arn:
        await actions.tag(region, promoted.arn, {PROMOTED_TAG: request_id or "dhanam"})
    return "PromoteReadReplica sent"


# -- 3. the record -----------------------------------------------------------------------------
async def record_step(
    runtime: ActionRuntime,
    actions: DrActions,
    inputs: dict[str, Any],
    *,
    request_id: str | None,
    limit: timedelta,
    waiting: Waiting,
    since: datetime | None = None,
) -> str:
    zone, name, target = str(inputs["zone_id"]), str(inputs["name"]), str(inputs["target"])
    record = simple_record(await actions.record_sets(zone, name), name)
    if record is not None and record.points_at(target):
        return "already pointing there"
    change = await actions.upsert_cname(
        zone, name, target, int(inputs["ttl"]), f"dhanam dr activate (request {request_id})"
    )
    await waiting(f"UPSERT sent (change {change})")

    async def look() -> tuple[bool, str]:
        status = await actions.change_status(change)
        return status == INSYNC, status

    await wait_until(runtime, f"change {change}", limit, look, waiting, since=since)
    return f"UPSERT done, change {change} INSYNC"
