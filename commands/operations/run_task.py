"""`run SERVICE ENV TASK`: one of the service's named one-off tasks (`[services.X.tasks.NAME]`,
never free text) as an ECS task with the service's current task definition and placement.

Approved like a deploy (or on the requester's word when the task says `approvals = 0`), one
task at a time per service and environment: its own execution lock (`task:SERVICE:ENV`), and
execution refuses while another one-off task the bot started for the service is still running.
RunTask carries `startedBy = dhanam:<request id>`: a replayed execution finds that task instead
of starting a second one. The Action only starts the task; the rollout follower then follows it
to STOPPED in the card's thread (commands/operations/task_follow.py) and puts the exit code on
the card.
"""

from __future__ import annotations

from typing import Any, ClassVar

from approvals.models import Change, Plan, Result
from commands.operations.base import ServiceAction, environment_config, service_config
from commands.operations.runtime import ActionRuntime
from commands.operations.tasks import (
    STARTED_BY_PREFIX,
    TaskSpec,
    start_once,
    started_by,
    take_slot,
    task_spec,
)
from core.config import Config, TaskConfig
from core.errors import ChatOpsError
from core.text import NOTHING_CHANGED
from integrations.aws.ecs_tasks import Placement
from integrations.aws.images import parse_image, short_digest
from integrations.aws.models import short


def _task_config(config: Config, service: str, name: str) -> TaskConfig:
    svc = service_config(config.services, service)
    found = svc.tasks.get(name)
    if found is None:
        known = ", ".join(sorted(svc.tasks)) or "none"
        raise ChatOpsError(f'unknown task of {service} "{name}" — known: {known}')
    return found


class RunTaskAction(ServiceAction):
    """Run TASK of SERVICE in ENV (docs/commands.md).

    Fingerprint: everything the task will run with — the task definition's ARN (so its image),
    the container, the command, the service's launch type or capacity provider strategy,
    platform version and network configuration, and the timeout. A deploy meanwhile changes
    the task definition, so an approval never runs a task on an image nobody saw.
    """

    kind: ClassVar[str] = "run"
    followed: ClassVar[bool] = True  # followed to STOPPED in the card's thread

    task: str

    def title(self) -> str:
        return f"Run {self.task} of {self.service} in {self.env}"

    @property
    def lock_scope(self) -> str:
        return f"task:{self.service}:{self.env}"

    @property
    def lock_label(self) -> str:
        return f"one-off tasks of {self.service} in {self.env}"

    def approval_waived(self, config: Any) -> bool:
        svc = config.services.get(self.service) if isinstance(config, Config) else None
        task = svc.tasks.get(self.task) if svc is not None else None
        return task is not None and task.approvals == 0

    async def spec(self, runtime: ActionRuntime) -> tuple[TaskSpec, str]:
        """The task as it would run now, and its image."""
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        task = _task_config(runtime.config, self.service, self.task)
        service = await runtime.tasks.describe_service_raw(env.region, env.cluster, svc.ecs_service)
        definition = await runtime.aws.describe_task_definition(
            env.region, str(service["taskDefinition"])
        )
        containers = definition.get("containerDefinitions", [])
        found = next((c for c in containers if c.get("name") == svc.container), None)
        if found is None:
            present = ", ".join(str(c.get("name")) for c in containers) or "none"
            raise ChatOpsError(
                f"{short(str(definition['taskDefinitionArn']))} has no container "
                f'"{svc.container}" — it has: {present}. Fix `container` in the service\'s config.'
            )
        spec = task_spec(
            self.task,
            task,
            region=env.region,
            cluster=env.cluster,
            service=service,
            task_definition=definition,
            container=svc.container,
        )
        return spec, str(found.get("image", ""))

    async def plan(self, runtime: ActionRuntime) -> Plan:
        spec, image = await self.spec(runtime)
        ref = parse_image(image)
        digest = ref.digest
        if digest is None and ref.tag:
            try:
                env = environment_config(runtime.config.environments, self.env)
                digest = (await runtime.aws.resolve_image(env.region, image, ref.tag)).digest
            except ChatOpsError:
                digest = None
        revision = short(spec.task_definition)
        changes = [
            Change(
                label="one-off task",
                before="none running",
                after=f"{self.task}: {' '.join(spec.command)}",
            ),
            Change(label="task definition", before=revision, after=f"{revision} (unchanged)"),
            Change(
                label="image",
                before=ref.tag or image.rsplit("/", 1)[-1],
                after=short_digest(digest) if digest else "— (pinned by tag)",
            ),
        ]
        running = await self._running(runtime, spec)
        warnings = []
        if running:
            warnings.append(
                f"another one-off task of {self.service} is still running ({running}): if it "
                "still runs when this is approved, this one is refused, not started"
            )
        return Plan.build(
            f"Run {self.task} of {self.service} in {self.env}",
            inputs=spec.inputs(),
            changes=changes,
            facts=spec.facts(),
            warnings=warnings,
        )

    async def _running(self, runtime: ActionRuntime, spec: TaskSpec) -> str:
        family = short(spec.task_definition).rsplit(":", 1)[0]
        found = await runtime.tasks.running_started_by_prefix(
            spec.region, spec.cluster, family, STARTED_BY_PREFIX, spec.container
        )
        mine = started_by(self.request_id)
        others = [t for t in found if not t.started_by.startswith(mine)]
        return ", ".join(f"task {t.id} by request {t.started_by.split(':')[1]}" for t in others)

    async def applied(self, approved: Plan, runtime: ActionRuntime) -> bool:
        """An earlier attempt of this request already started its task."""
        del approved
        if self.request_id is None:
            return False
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        found = await runtime.tasks.find_started_by(
            env.region, env.cluster, started_by(self.request_id), svc.container
        )
        return found is not None

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        spec = self._spec_of(plan, runtime)
        tag = started_by(self.request_id)
        found = await runtime.tasks.find_started_by(spec.region, spec.cluster, tag, spec.container)
        if found is None:
            if runtime.leases is not None:
                await take_slot(runtime.leases, self.service, self.env, tag, spec.timeout_seconds)
            running = await self._running(runtime, spec)
            if running:
                raise ChatOpsError(
                    f"Another one-off task of {self.service} in {self.env} is still running "
                    f"({running}); one at a time. Ask again once it has stopped. "
                    f"{NOTHING_CHANGED}"
                )
        arn, reused = await start_once(runtime.tasks, spec, tag)
        task_id = arn.rsplit("/", 1)[-1]
        again = " (started by an earlier attempt of this request)" if reused else ""
        return Result(
            ok=True,
            summary=f"Started task {task_id}{again}: `{' '.join(spec.command)}`",
            details={
                "task_arn": arn,
                "task": self.task,
                "region": spec.region,
                "cluster": spec.cluster,
                "container": spec.container,
                "command": " ".join(spec.command),
                "timeout_seconds": spec.timeout_seconds,
                "log_group": spec.logs[0] if spec.logs else "",
                "log_region": spec.logs[1] if spec.logs else "",
                "log_prefix": spec.logs[2] if spec.logs else "",
                "reused_task": reused,
                "slot_token": tag if runtime.leases is not None else "",
            },
        )

    def _spec_of(self, plan: Plan, runtime: ActionRuntime) -> TaskSpec:
        """The approved task, exactly as the plan that was checked just before this says."""
        env = environment_config(runtime.config.environments, self.env)
        inputs = plan.inputs
        logs = inputs.get("logs")
        return TaskSpec(
            name=self.task,
            region=env.region,
            cluster=env.cluster,
            task_definition=str(inputs["task_definition"]),
            container=str(inputs["container"]),
            command=[str(c) for c in inputs["command"]],
            placement=Placement(
                launch_type=inputs.get("launch_type"),
                capacity_provider_strategy=list(inputs.get("capacity_provider_strategy") or []),
                platform_version=inputs.get("platform_version"),
                network=dict(inputs.get("network") or {}),
            ),
            timeout_seconds=int(inputs["timeout_seconds"]),
            logs=(str(logs[0]), str(logs[1]), str(logs[2])) if logs else None,
        )
