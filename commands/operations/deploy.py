"""`deploy SERVICE ENV TAG`: a new task-definition revision with one image changed, then
`update-service` to it.

The image is pinned by digest (`repo@sha256:…`, one of the two forms ECS documents for a
container image; `repo:tag@digest` is not documented) whenever the repository is in ECR, so a
tag moved after approval cannot change what runs. The tag stays visible as the task
definition's `image-tag` tag (the convention the Dhanam world already uses) and in the history.

Idempotent per request: the revision carries the tag `dhanam:request=<request id>`, and an
execution first looks for a revision of the family with that tag (among its 10 newest ACTIVE
ones) and reuses it; update-service is skipped when the service already runs the target. A
request executed again (a replay after a Redis failover) therefore registers nothing twice and
moves the service once.

Long: one Action: its plan, its replay check and its execution read the same task-definition,
container and tag helpers, and the digest pinning and idempotency above span all three.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import structlog

from approvals.models import Change, Plan, Result
from commands.operations import release_step
from commands.operations.base import (
    REQUEST_TAG_KEY,
    ServiceAction,
    circuit_breaker,
    container_images,
    environment_config,
    service_config,
)
from commands.operations.runtime import ActionRuntime
from core.errors import ChatOpsError
from core.text import plural, words
from integrations.aws.errors import AwsError
from integrations.aws.gateway import AwsGateway
from integrations.aws.images import parse_image, short_digest
from integrations.aws.models import AlarmState, ResolvedImage, ServiceState

log = structlog.get_logger(__name__)

IMAGE_TAG_KEY = "image-tag"


def _revision_label(task_definition: dict[str, Any]) -> str:
    return f"{task_definition.get('family')}:{task_definition.get('revision')}"


def _tag_value(tags: list[dict[str, str]], key: str) -> str | None:
    return next((t.get("value") for t in tags if t.get("key") == key), None)


def _with_tag(tags: list[dict[str, str]], key: str, value: str | None) -> list[dict[str, str]]:
    """`tags` with `key` set to `value` (None: `key` removed)."""
    kept = [dict(t) for t in tags if t.get("key") != key]
    return kept if value is None else [*kept, {"key": key, "value": value}]


def _container(task_definition: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = task_definition.get("containerDefinitions", [])
    found = next((c for c in containers if c.get("name") == name), None)
    if found is None:
        present = ", ".join(str(c.get("name")) for c in containers) or "none"
        raise ChatOpsError(
            f'task definition {_revision_label(task_definition)} has no container "{name}" '
            f"— it has: {present}. Fix `container` in the service's config."
        )
    return found


def _alarm_facts(watched: list[str], alarms: list[AlarmState]) -> list[str]:
    if not watched:
        return ["no alarms configured for this service"]
    if not alarms:
        return [f"no alarms in ALARM ({len(watched)} watched)"]
    facts = []
    for alarm in alarms:
        since = f" since {alarm.updated:%Y-%m-%d %H:%M %Z}".rstrip() if alarm.updated else ""
        facts.append(f"alarm {alarm.name} is in ALARM{since}: {alarm.reason}")
    return facts


def _breaker_fact(state: ServiceState) -> str:
    if not state.circuit_breaker_enabled:
        return "circuit breaker off: a failing rollout will not stop by itself"
    rollback = ", rolls back on failure" if state.circuit_breaker_rollback else ""
    return f"circuit breaker on{rollback}"


class DeployAction(ServiceAction):
    """Deploy TAG of SERVICE's image to ENV (docs/commands.md).

    Fingerprint: the running task definition's ARN (`task_definition`) and the images of all
    its containers (`images`), the container that changes (`container`), the target image pinned
    by its ECR digest (`image`: a tag moved to another image changes it), and the service's
    circuit breaker (`circuit_breaker`: enable/rollback). Not the task count: autoscaling moves
    it by itself and a deploy neither reads nor sets it (the card still shows it).
    """

    kind: ClassVar[str] = "deploy"
    followed: ClassVar[bool] = True  # its rollout is followed in the card's thread

    tag: str

    def title(self) -> str:
        return f"Deploy {self.service} to {self.env}: {self.tag}"

    async def plan(self, runtime: ActionRuntime) -> Plan:
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        aws = runtime.aws
        state = await aws.describe_service(env.region, env.cluster, svc.ecs_service)
        current, alarms = await asyncio.gather(
            aws.describe_task_definition(env.region, state.task_definition_arn),
            aws.alarms_in_alarm(env.region, svc.alarms),
        )
        image = str(_container(current, svc.container).get("image", ""))
        ref = parse_image(image)
        current_tag = ref.tag or _tag_value(current.get("tags", []), IMAGE_TAG_KEY)
        target, current_digest = await asyncio.gather(
            aws.resolve_image(env.region, image, self.tag),
            self._current_digest(aws, env.region, image, current_tag),
        )
        step_inputs: dict[str, Any] = {}
        step_changes: list[Change] = []
        step_facts: list[str] = []
        if svc.before_deploy is not None:
            raw = await runtime.tasks.describe_service_raw(env.region, env.cluster, svc.ecs_service)
            step_inputs, step_changes, step_facts = release_step.plan_parts(svc, raw, current)
        changes = [
            Change(
                label="task definition",
                before=_revision_label(current),
                after=f"new revision of {current.get('family')}",
            ),
            Change(label="image tag", before=current_tag or "unknown", after=self.tag),
            Change(
                label="digest",
                before=short_digest(current_digest) if current_digest else "unknown",
                after=short_digest(target.digest) if target.digest else "— (pinned by tag)",
            ),
            Change(
                label="desired count",
                before=str(state.desired),
                after=f"{state.desired} (unchanged)",
            ),
            *step_changes,
        ]
        return Plan.build(
            f"Deploy {self.service} to {self.env}: {current_tag or 'unknown'} → {self.tag}",
            inputs={
                "task_definition": current["taskDefinitionArn"],
                "images": container_images(current),
                "container": svc.container,
                "image": target.image_pinned,
                "circuit_breaker": circuit_breaker(state),
                **step_inputs,
            },
            changes=changes,
            facts=[*step_facts, *_alarm_facts(svc.alarms, alarms), _breaker_fact(state)],
            warnings=self._warnings(state, current_tag, current_digest, target),
        )

    async def _current_digest(
        self, aws: AwsGateway, region: str, image: str, current_tag: str | None
    ) -> str | None:
        """The running image's digest: from the reference when pinned, else what ECR says the
        running tag points at now (display only; not an input of the plan)."""
        ref = parse_image(image)
        if ref.digest:
            return ref.digest
        if not current_tag:
            return None
        try:
            return (await aws.resolve_image(region, image, current_tag)).digest
        except AwsError:
            return None

    def _warnings(
        self,
        state: ServiceState,
        current_tag: str | None,
        current_digest: str | None,
        target: ResolvedImage,
    ) -> list[str]:
        warnings = []
        if current_tag == self.tag:
            warnings.append(f"{self.tag} is already running (redeploys the same image)")
        elif target.digest and target.digest == current_digest:
            warnings.append(
                f"{self.tag} is the same image as the running {current_tag} "
                f"({short_digest(target.digest)})"
            )
        if target.digest is None:
            warnings.append(
                f"{target.repository_uri} is not in ECR: the image is pinned by tag only, "
                "so what runs is whatever the tag points at when tasks start"
            )
        if state.rolling_out:
            primary = state.primary
            rollout = primary.rollout_state if primary else "unknown"
            warnings.append(
                f"a rollout is still in progress ({plural(len(state.deployments), 'deployment')}, "
                f"primary {words(rollout).lower()}): this deploy replaces it"
            )
        return warnings

    async def applied(self, approved: Plan, runtime: ActionRuntime) -> bool:
        """The service already runs the revision this very request registered (it carries
        `dhanam:request=<this id>`): a replay after update-service; nothing left to change."""
        if self.request_id is None:
            return False
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        state = await runtime.aws.describe_service(env.region, env.cluster, svc.ecs_service)
        running = await runtime.aws.describe_task_definition(env.region, state.task_definition_arn)
        if _tag_value(running.get("tags", []), REQUEST_TAG_KEY) != self.request_id:
            return False
        image = _container(running, str(approved.inputs.get("container", svc.container)))
        return image.get("image") == approved.inputs.get("image")

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        """Make the change `plan` describes. The engine re-planned just before calling this, so
        `plan.inputs` are current; nothing is re-checked here but whether an earlier attempt of
        this request already made (part of) the change."""
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        aws = runtime.aws
        previous_arn = str(plan.inputs["task_definition"])
        image = str(plan.inputs["image"])
        container = str(plan.inputs["container"])
        source = await aws.describe_task_definition(env.region, previous_arn)
        previous_image = str(_container(source, container).get("image", ""))
        new_arn = await self._revision_of_this_request(aws, env.region, source, container, image)
        reused = new_arn is not None
        if new_arn is None:
            tags = _with_tag(source.get("tags", []), IMAGE_TAG_KEY, self.tag)
            tags = _with_tag(tags, REQUEST_TAG_KEY, self.request_id)
            new_arn = await aws.register_task_definition_like(
                env.region, source, tags, container, image
            )
            log.info("deploy.registered", task_definition=new_arn, image=image)
        state = await aws.describe_service(env.region, env.cluster, svc.ecs_service)
        updated = state.task_definition_arn != new_arn
        if updated and reused:
            # An earlier attempt of this request registered the revision; whether it also sent
            # update-service (and ECS rolled it back, e.g. its circuit breaker) cannot be told.
            # At most once: never send it a second time.
            raise ChatOpsError(
                f"An earlier attempt of this request registered {new_arn.rpartition('/')[2]}, "
                f"but {svc.ecs_service} runs {state.task_definition_arn.rpartition('/')[2]}: "
                "the update may never have been sent, or ECS rolled it back. It is not sent "
                "again; check status and ask again if the deploy is still wanted."
            )
        step = ""
        if updated and "before_deploy" in plan.inputs:
            spec = release_step.spec_of(
                plan.inputs,
                region=env.region,
                cluster=env.cluster,
                container=container,
                arn=new_arn,
            )
            step = await release_step.run_before_deploy(
                runtime, spec, request_id=self.request_id, service=self.service, env=self.env
            )
        if updated:
            await aws.update_service(env.region, env.cluster, svc.ecs_service, new_arn)
            log.info("deploy.updated", service=svc.ecs_service, task_definition=new_arn)
        else:
            log.info("deploy.already_updated", service=svc.ecs_service, task_definition=new_arn)
        digest = parse_image(image).digest
        details: dict[str, Any] = {
            "task_definition_arn": new_arn,
            "previous_task_definition_arn": previous_arn,
            "image": image,
            "tag": self.tag,
            "digest": digest,
            "region": env.region,
            "cluster": env.cluster,
            "ecs_service": svc.ecs_service,
            "reused_revision": reused,
            "service_updated": updated,
        }
        if step:
            details["before_deploy"] = step
        await self.record_move(
            runtime,
            kind="deploy",
            previous=(previous_arn, previous_image),
            new=(new_arn, image),
            tag=self.tag,
            details=details,
        )
        revision = new_arn.rpartition("/")[2]
        pinned = f", {short_digest(digest)}" if digest else ""
        if not updated:
            summary = (
                f"{svc.ecs_service} already on {revision} ({self.tag}{pinned}) — nothing to change"
            )
        elif reused:
            summary = (
                f"{svc.ecs_service} now on {revision} ({self.tag}{pinned}; revision registered "
                "by an earlier attempt of this request)"
            )
        else:
            summary = f"{svc.ecs_service} now on {revision} ({self.tag}{pinned})"
        if step:
            summary += f", after {step}"
        return Result(ok=True, summary=summary, details=details)

    async def _revision_of_this_request(
        self, aws: AwsGateway, region: str, source: dict[str, Any], container: str, image: str
    ) -> str | None:
        """The ARN of the revision an earlier attempt of this request registered (tagged
        `dhanam:request=<request id>`, running `image` in `container`), else None."""
        if self.request_id is None:
            return None
        found = await aws.find_tagged_revision(
            region, str(source.get("family")), REQUEST_TAG_KEY, self.request_id
        )
        if found is None:
            return None
        if container_images(found).get(container) != image:
            log.warning(
                "deploy.tagged_revision_differs",
                task_definition=found.get("taskDefinitionArn"),
                image=image,
            )
            return None
        return str(found["taskDefinitionArn"])
