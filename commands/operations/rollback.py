"""`rollback SERVICE ENV [--to REVISION]`: `update-service` back to an earlier ACTIVE revision.

No revision is registered: the service goes back to the task definition that ran before
(docs/commands.md). The target, in order of preference:

1. `--to REVISION`, which must be an ACTIVE revision of the service's family other than the
   running one;
2. the deploy history: the revision the last recorded change replaced, when that change is what
   runs now (a rollback of a rollback therefore goes forward again, as in heaven);
3. the highest ACTIVE revision of the family below the running one.

Idempotent: update-service is skipped when the service already runs the target (a replayed
execution of the same request changes nothing twice), and the history records the move once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from pydantic import Field

from approvals.models import Change, Plan, Result
from commands.operations.base import (
    ServiceAction,
    circuit_breaker,
    container_images,
    environment_config,
    service_config,
)
from commands.operations.runtime import ActionRuntime
from core.errors import ChatOpsError
from integrations.aws.images import parse_image, short_digest
from integrations.aws.models import short

log = structlog.get_logger(__name__)

IMAGE_TAG_KEY = "image-tag"


def _family_revision(task_definition: str) -> tuple[str, int | None]:
    family, _, revision = short(task_definition).rpartition(":")
    return family, int(revision) if revision.isdigit() else None


def _image(task_definition: dict[str, Any], container: str) -> str:
    for definition in task_definition.get("containerDefinitions", []):
        if definition.get("name") == container:
            return str(definition.get("image", ""))
    present = ", ".join(str(c.get("name")) for c in task_definition.get("containerDefinitions", []))
    raise ChatOpsError(
        f"task definition {task_definition.get('family')}:{task_definition.get('revision')} has "
        f'no container "{container}" — it has: {present or "none"}. Fix `container` in the '
        "service's config."
    )


def _tag(task_definition: dict[str, Any], image: str) -> str | None:
    tags = task_definition.get("tags", [])
    labelled = next((t.get("value") for t in tags if t.get("key") == IMAGE_TAG_KEY), None)
    return parse_image(image).tag or labelled


def _short_image(image: str, tag: str | None) -> str:
    ref = parse_image(image)
    name = ref.repository_uri.rpartition("/")[2]
    if ref.digest:
        shown = f"{name}@{short_digest(ref.digest)}"
        return f"{shown} ({tag})" if tag else shown
    return f"{name}:{ref.tag}" if ref.tag else name


def _listed(revisions: list[int]) -> str:
    return ", ".join(str(r) for r in revisions) or "none"


@dataclass(frozen=True)
class _Target:
    task_definition: str  # ARN or family:revision
    why: str


class RollbackAction(ServiceAction):
    """Roll SERVICE in ENV back to the previous (or a given) revision (docs/commands.md).

    Fingerprint: the running task definition's ARN (`task_definition`) and its containers'
    images (`images`), the target revision's ARN (`target_task_definition`) and its containers'
    images (`target_images`), and the service's circuit breaker (`circuit_breaker`:
    enable/rollback). Not the task count: autoscaling moves it by itself and a rollback neither
    reads nor sets it (the card still shows it).
    """

    kind: ClassVar[str] = "rollback"
    followed: ClassVar[bool] = True  # its rollout is followed in the card's thread

    to_revision: int | None = Field(default=None, ge=1)

    def title(self) -> str:
        where = f"revision {self.to_revision}" if self.to_revision else "the previous revision"
        return f"Roll back {self.service} in {self.env} to {where}"

    async def plan(self, runtime: ActionRuntime) -> Plan:
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        aws = runtime.aws
        state = await aws.describe_service(env.region, env.cluster, svc.ecs_service)
        current = await aws.describe_task_definition(env.region, state.task_definition_arn)
        family, revision = str(current["family"]), int(current["revision"])
        active, alarms = await asyncio.gather(
            aws.list_task_definition_revisions(env.region, family),
            aws.alarms_in_alarm(env.region, svc.alarms),
        )
        target = await self._target(runtime, family, revision, active)
        wanted = await aws.describe_task_definition(env.region, target.task_definition)
        current_image = _image(current, svc.container)
        target_image = _image(wanted, svc.container)
        current_tag, target_tag = _tag(current, current_image), _tag(wanted, target_image)
        before, after = f"{family}:{revision}", f"{family}:{wanted['revision']}"
        changes = [
            Change(label="task definition", before=before, after=after),
            Change(
                label="image",
                before=_short_image(current_image, current_tag),
                after=_short_image(target_image, target_tag),
            ),
            Change(
                label="desired count",
                before=str(state.desired),
                after=f"{state.desired} (unchanged)",
            ),
        ]
        if current_tag or target_tag:
            changes.insert(
                1,
                Change(label="image tag", before=current_tag or "unknown", after=target_tag or "?"),
            )
        warnings = []
        if target_image == current_image:
            warnings.append(f"{after} runs the same image as {before}")
        if state.rolling_out:
            warnings.append("a rollout is still in progress: this rollback replaces it")
        facts = [target.why]
        facts += [f"alarm {a.name} is in ALARM: {a.reason}" for a in alarms]
        return Plan.build(
            f"Roll back {self.service} in {self.env}: {before} → {after}",
            inputs={
                "task_definition": current["taskDefinitionArn"],
                "images": container_images(current),
                "target_task_definition": wanted["taskDefinitionArn"],
                "target_images": container_images(wanted),
                "circuit_breaker": circuit_breaker(state),
            },
            changes=changes,
            facts=facts,
            warnings=warnings,
        )

    async def _target(
        self, runtime: ActionRuntime, family: str, revision: int, active: list[int]
    ) -> _Target:
        if self.to_revision is not None:
            if self.to_revision == revision:
                others = [r for r in active if r != revision]
                raise ChatOpsError(
                    f"{family}:{revision} is the revision running now — pick another active "
                    f"revision of {family}: {_listed(others)}"
                )
            if self.to_revision not in active:
                raise ChatOpsError(
                    f"revision {self.to_revision} is not an active revision of {family} — "
                    f"active: {_listed(active)}"
                )
            return _Target(
                f"{family}:{self.to_revision}", f"target given with --to {self.to_revision}"
            )
        from_history = await self._from_history(runtime, family, revision, active)
        if from_history is not None:
            return from_history
        below = [r for r in active if r < revision]
        if not below:
            raise ChatOpsError(
                f"nothing to roll back to: {family}:{revision} runs now and no active revision of "
                f"{family} is older (active: {_listed(active)}). Use --to REVISION."
            )
        return _Target(
            f"{family}:{below[-1]}",
            f"target: the newest active revision of {family} below the running one "
            "(no deploy history for it)",
        )

    async def _from_history(
        self, runtime: ActionRuntime, family: str, revision: int, active: list[int]
    ) -> _Target | None:
        """What the last recorded change replaced, if that change is what runs now and the
        revision it replaced is still ACTIVE."""
        last = await runtime.history.last(self.service, self.env)
        if last is None:
            return None
        new = _family_revision(last.new_task_definition)
        old_family, old_revision = _family_revision(last.previous_task_definition)
        if new != (family, revision) or old_family != family:
            return None
        if old_revision not in active or old_revision == revision:
            return None
        by = f" by <@{last.requested_by}>" if last.requested_by else ""
        return _Target(
            last.previous_task_definition,
            f"target from the deploy history: what ran before the {last.kind} to "
            f"{family}:{revision}{by} at {last.at:%Y-%m-%d %H:%M %Z}".rstrip(),
        )

    async def applied(self, approved: Plan, runtime: ActionRuntime) -> bool:
        """The service already runs the approved target (a replay after this request's
        update-service, or someone rolled back to it meanwhile): nothing left to change."""
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        state = await runtime.aws.describe_service(env.region, env.cluster, svc.ecs_service)
        return state.task_definition_arn == approved.inputs.get("target_task_definition")

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        """`update-service` to the target the (re-)plan resolved; nothing is registered."""
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        aws = runtime.aws
        previous_arn = str(plan.inputs["task_definition"])
        target_arn = str(plan.inputs["target_task_definition"])
        previous, target = await asyncio.gather(
            aws.describe_task_definition(env.region, previous_arn),
            aws.describe_task_definition(env.region, target_arn),
        )
        previous_image = _image(previous, svc.container)
        target_image = _image(target, svc.container)
        tag = _tag(target, target_image)
        state = await aws.describe_service(env.region, env.cluster, svc.ecs_service)
        updated = state.task_definition_arn != target_arn
        if updated:
            await aws.update_service(env.region, env.cluster, svc.ecs_service, target_arn)
            log.info("rollback.updated", service=svc.ecs_service, task_definition=target_arn)
        else:
            log.info(
                "rollback.already_updated", service=svc.ecs_service, task_definition=target_arn
            )
        details: dict[str, Any] = {
            "task_definition_arn": target_arn,
            "previous_task_definition_arn": previous_arn,
            "image": target_image,
            "tag": tag,
            "region": env.region,
            "cluster": env.cluster,
            "ecs_service": svc.ecs_service,
            "service_updated": updated,
        }
        await self.record_move(
            runtime,
            kind="rollback",
            previous=(previous_arn, previous_image),
            new=(target_arn, target_image),
            tag=tag,
            details=details,
        )
        shown = f"{short(target_arn)} ({_short_image(target_image, tag)})"
        summary = (
            f"{svc.ecs_service} rolled back to {shown}"
            if updated
            else f"{svc.ecs_service} already on {shown} — nothing to change"
        )
        return Result(ok=True, summary=summary, details=details)
