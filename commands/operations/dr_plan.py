"""What `dr activate` reads before it changes anything: the DR database, each configured service in
the DR cluster next to production's, and the failover record — as plan parts (the inputs the
fingerprint covers, the before → after lines of the card, facts) and as the "already done?"
answers a replay resumes from.

The inputs are what the steps depend on and nothing the steps themselves move: the database's
identity (identifier, ARN, DbiResourceId — or the replicated backups' ARN and the new instance's
name), production's images per container and desired count per service (read now or, when the
primary cannot be read, from the bot's last read: dr_production.py), the record's zone, name,
type, TTL and the DR target, and whether the replica is usable (its status when it is not: one
gone to `error` after the approval is refused at the gate). Not the replica's lag (a fact on the
card, dr_rpo.py), the DR services' revisions and counts, or where the record points now: those
are what activation changes, so a replay of a half-done activation plans the same fingerprint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from approvals.models import Change
from commands.operations import dr_production
from commands.operations.base import container_images
from commands.operations.restore import when
from commands.operations.runtime import ActionRuntime
from core.config import DrConfig, ServiceConfig
from core.errors import ChatOpsError
from integrations.aws.dr_actions import DrActions, DrDatabaseState
from integrations.aws.errors import AwsError
from integrations.aws.gateway import AwsGateway
from integrations.aws.images import parse_image
from integrations.aws.models import short
from integrations.dr_snapshot import (
    IMAGE_TAG_KEY,
    ProductionService,
)

log = structlog.get_logger(__name__)

_ID_LIMIT = 63
_SERVICE_NOT_FOUND = ("ServiceNotFoundException", "ClusterNotFoundException")


RESTORED_FROM_TAG = "dhanam:restored-from"  # the backups' ARN, on the instance restored from them
# States an instance restored earlier cannot be adopted in (RDS DBInstanceStatus).
_UNUSABLE = frozenset(
    {
        "failed",
        "restore-error",
        "incompatible-restore",
        "incompatible-parameters",
        "incompatible-network",
        "incompatible-option-group",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "insufficient-capacity",
        "storage-full",
        "deleting",
        "stopping",
        "stopped",
    }
)


# Replica states a promotion can start from or is passing through (RDS DBInstanceStatus).
_USABLE = frozenset(
    {
        "available",
        "backing-up",
        "modifying",
        "rebooting",
        "maintenance",
        "upgrading",
        "renaming",
        "storage-optimization",
        "configuring-enhanced-monitoring",
        "configuring-log-exports",
        "configuring-iam-database-auth",
        "resetting-master-credentials",
    }
)


def restore_target(source: str) -> str:
    """`<source>-dr-restore`: one name per DR configuration, so every request (a second
    `dr activate` after one that stopped) finds and adopts the instance an earlier one began."""
    suffix = "-dr-restore"
    return f"{source.lower()[: _ID_LIMIT - len(suffix)].rstrip('-')}{suffix}"


# -- the database ------------------------------------------------------------------------------
async def database_part(
    actions: DrActions, dr: DrConfig
) -> tuple[dict[str, Any], Change, list[str]]:
    if dr.db_instance is not None:
        state = await actions.database(dr.region, dr.db_instance)
        if state is None:
            raise ChatOpsError(
                f"there is no DB instance {dr.db_instance} in {dr.region} to promote — restore "
                "the database from a backup first (or set [dr] automated_backup_arn)"
            )
        inputs = {
            "kind": "replica",
            "identifier": state.identifier,
            "arn": state.arn,
            "resource_id": state.resource_id,
            # "usable" while it can be promoted or is being promoted (so a replay plans the
            # same), else its status: a replica gone to error after approval fails the gate
            "state": "usable" if state.promoted or state.status in _USABLE else state.status,
        }
        return inputs, _replica_change(state), []
    arn = str(dr.automated_backup_arn)
    backup = await actions.newest_backup(dr.region, arn)
    if backup is None:
        raise ChatOpsError(f"AWS lists no replicated automated backups for {arn} in {dr.region}")
    target = restore_target(backup.source or "dhanam")
    existing = await actions.database(dr.region, target)
    facts = []
    if existing is not None:
        if existing.tags.get(RESTORED_FROM_TAG) != arn:
            raise ChatOpsError(
                f"{target} already exists in {dr.region} and was not restored by dr activate from "
                f"{arn} (no tag {RESTORED_FROM_TAG} with it): rename or delete it first"
            )
        if existing.status in _UNUSABLE:
            raise ChatOpsError(
                f"{target}, restored from these backups by an earlier activation, is "
                f"{existing.status}: delete it (or repair it) before activating DR again"
            )
        facts.append(
            f"{target} already exists ({existing.status}): an earlier activation restored it "
            "from these backups; it is adopted, not restored again"
        )
    newest = when(backup.latest) if backup.latest else "unknown"
    change = Change(
        label="1. database",
        before=f"replicated backups of {backup.source}, newest restorable {newest}",
        after=f"restored into {target} at the latest restorable time, once available",
    )
    inputs = {"kind": "backups", "arn": arn, "source": backup.source, "target": target}
    return inputs, change, facts


def _replica_change(state: DrDatabaseState) -> Change:
    if state.promoted:
        after = "already promoted" + ("" if state.available else ", waits until available")
        return Change(
            label="1. database",
            before=f"{state.identifier}: standalone, {state.status}",
            after=after,
        )
    source = short_db(state.source or "")
    return Change(
        label="1. database",
        before=f"{state.identifier}: read replica of {source}, {state.status}",
        after="promoted to a standalone database (PromoteReadReplica), once available",
    )


def short_db(arn: str) -> str:
    """`arn:aws:rds:us-east-1:…:db:dhanam-production` -> `dhanam-production (us-east-1)`."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn":
        return f"{parts[6]} ({parts[3]})"
    return arn


# -- the services ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceTarget:
    """One DR service as the approved plan wants it: production's images and desired count."""

    name: str
    ecs_service: str
    container: str
    images: dict[str, str]  # container -> production's image, for the containers both have
    desired: int
    image_tag: str | None  # production's tag (shown, and set as the new revision's image-tag)

    def inputs(self) -> dict[str, Any]:
        return {
            "ecs_service": self.ecs_service,
            "container": self.container,
            "images": self.images,
            "desired": self.desired,
            "image_tag": self.image_tag,
        }

    @classmethod
    def of(cls, name: str, raw: dict[str, Any]) -> ServiceTarget:
        return cls(
            name=name,
            ecs_service=str(raw["ecs_service"]),
            container=str(raw["container"]),
            images={str(k): str(v) for k, v in raw["images"].items()},
            desired=int(raw["desired"]),
            image_tag=str(raw["image_tag"]) if raw.get("image_tag") else None,
        )

    def runs_images(self, task_definition: dict[str, Any]) -> bool:
        have = container_images(task_definition)
        return all(have.get(c) == image for c, image in self.images.items())

    @property
    def label(self) -> str:
        image = self.images[self.container]
        shown = self.image_tag or parse_image(image).digest or image.rsplit("/", 1)[-1]
        return f"{shown} at {self.desired} task{'s' if self.desired != 1 else ''}"


def _tag(task_definition: dict[str, Any], key: str) -> str | None:
    return next(
        (t.get("value") for t in task_definition.get("tags", []) if t.get("key") == key), None
    )


async def service_part(
    aws: AwsGateway, dr: DrConfig, name: str, svc: ServiceConfig, prod: ProductionService
) -> tuple[ServiceTarget, Change, bool]:
    """The service's target (production's images and count), its line, and whether it is
    already there."""
    try:
        state = await aws.describe_service(dr.region, dr.cluster, svc.ecs_service)
    except AwsError as exc:
        if exc.code not in _SERVICE_NOT_FOUND:
            raise
        raise ChatOpsError(
            f"{svc.ecs_service} is not a service of {dr.cluster} ({dr.region}): create it there "
            "(dr status shows what is missing) before activating DR"
        ) from exc
    td = await aws.describe_task_definition(dr.region, state.task_definition_arn)
    prod_images, dr_images = prod.images, container_images(td)
    if svc.container not in prod_images or svc.container not in dr_images:
        lacking = (
            prod.task_definition if svc.container not in prod_images else state.task_definition_arn
        )
        raise ChatOpsError(
            f'{short(lacking)} has no container "{svc.container}" — fix `container` of {name}'
        )
    target = ServiceTarget(
        name=name,
        ecs_service=svc.ecs_service,
        container=svc.container,
        images={c: i for c, i in prod_images.items() if c in dr_images},
        desired=prod.desired,
        image_tag=prod.image_tag,
    )
    now_tag = parse_image(dr_images[svc.container]).tag or _tag(td, IMAGE_TAG_KEY) or "?"
    before = (
        f"{short(state.task_definition_arn)} ({now_tag}), {state.running}/{state.desired} running"
    )
    done = target.runs_images(td) and state.desired == target.desired
    if done:
        after = f"already on production's {target.label}"
    elif target.runs_images(td):
        after = f"production's image already; scaled to {target.desired} (update-service)"
    else:
        after = f"new revision with production's {target.label} (update-service)"
    return target, Change(label=f"2. {name} in {dr.cluster}", before=before, after=after), done


async def services_part(
    runtime: ActionRuntime, dr: DrConfig, env: str
) -> tuple[list[tuple[ServiceTarget, Change, bool]], list[str]]:
    """Each service's part (production read now, or from the snapshot), and the facts."""
    config = runtime.config
    names = list(config.service_names)
    production, facts = await dr_production.production_part(runtime, env, names)
    parts = await asyncio.gather(
        *(
            service_part(runtime.aws, dr, name, config.services[name], production[name])
            for name in names
        )
    )
    return list(parts), facts
