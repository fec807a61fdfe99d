"""Production's services as `dr activate` plans from them: read now from the primary region
under a short budget, or — when the primary cannot be read in time, the outage DR is for — as
the bot last read them (integrations/dr_snapshot.py), saying so on the card. A fresh read is kept
as the new snapshot; a service read neither way refuses the plan.

The plan's inputs are the images and counts themselves, equal whether read now or from the
snapshot, so a primary that goes away between the approval and the gate does not change the
fingerprint.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog

from commands.operations.restore import when
from commands.operations.runtime import ActionRuntime
from core.config import EnvironmentConfig, ServiceConfig
from core.errors import ChatOpsError, StoreUnavailableError
from core.text import duration
from integrations.aws.gateway import AwsGateway
from integrations.dr_snapshot import ProductionService, ProductionSnapshots, production_service

log = structlog.get_logger(__name__)


async def read_production(
    aws: AwsGateway, primary: EnvironmentConfig, svc: ServiceConfig, at: datetime
) -> ProductionService:
    """Production's service now: its revision's images and its desired count."""
    prod = await aws.describe_service(primary.region, primary.cluster, svc.ecs_service)
    definition = await aws.describe_task_definition(primary.region, prod.task_definition_arn)
    return production_service(definition, prod.desired, svc.container, at)


async def production_part(
    runtime: ActionRuntime, env: str, names: list[str]
) -> tuple[dict[str, ProductionService], list[str]]:
    """Production's services, read now under `[status] source_timeout_seconds` each, or — when
    the primary cannot be read in time (the outage DR is for) — as the bot last read them
    (integrations/dr_snapshot.py). A fresh read is kept as the new snapshot. Refuses when a
    service can be read neither way. The second value: the facts saying what came from where."""
    config, clock = runtime.config, runtime.clock
    primary = config.environments[env]
    budget = config.status.source_timeout_seconds
    snapshots = runtime.dr_snapshots

    async def fresh(name: str) -> ProductionService | str:
        try:
            return await asyncio.wait_for(
                read_production(runtime.aws, primary, config.services[name], clock.now()), budget
            )
        except TimeoutError:
            return f"no answer within {budget:g} s"
        except ChatOpsError as exc:
            return exc.user_message
        except Exception as exc:  # noqa: BLE001 - an unreadable primary is the case planned for
            return f"{type(exc).__name__}: {exc}"[:200]

    reads = await asyncio.gather(*(fresh(name) for name in names))
    found: dict[str, ProductionService] = {}
    facts: list[str] = []
    for name, read in zip(names, reads, strict=True):
        if isinstance(read, ProductionService):
            found[name] = read
            if snapshots is not None:
                await _keep(snapshots, env, name, read)
            continue
        kept = await _kept(snapshots, env, name)
        if kept is None:
            raise ChatOpsError(
                f"{env}'s {name} could not be read in {primary.region} ({read}) and the bot has "
                f"no earlier read of what it runs — DR needs {env}'s images and counts: deploy "
                "them to the DR services by hand, or retry when the primary answers"
            )
        found[name] = kept
        ago = duration(max(clock.now() - kept.at, timedelta(0)))
        facts.append(
            f"{env}'s {name} could not be read ({read}): using what it ran at "
            f"{when(kept.at)}, {ago} ago"
        )
    return found, facts


async def _keep(
    snapshots: ProductionSnapshots, env: str, name: str, read: ProductionService
) -> None:
    try:
        await snapshots.save(env, name, read)
    except StoreUnavailableError as exc:
        log.warning("dr_plan.snapshot_not_kept", service=name, error=exc.detail)


async def _kept(
    snapshots: ProductionSnapshots | None, env: str, name: str
) -> ProductionService | None:
    if snapshots is None:
        return None
    try:
        return await snapshots.get(env, name)
    except StoreUnavailableError as exc:
        log.warning("dr_plan.snapshot_unreadable", service=name, error=exc.detail)
        return None
