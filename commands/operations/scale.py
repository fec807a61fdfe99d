"""`scale SERVICE ENV [--min N] [--max N] [--desired N]`: the service's Application Auto Scaling
bounds and/or its desired task count.

Flags not given keep their current value; the resulting min ≤ desired ≤ max must hold and no
value may exceed `[scale] max_tasks`, else nothing changes. A service without a scalable target
can only have its desired count changed.

Idempotent: execution reads the target and the service again and changes only what is not yet
at the value asked for, so a replayed execution of the same request is a no-op that says so
("already …— nothing to change").
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from pydantic import Field

from approvals.models import Change, Plan, Result
from commands.operations.base import ServiceAction, environment_config, service_config
from commands.operations.runtime import ActionRuntime
from core.errors import ChatOpsError
from integrations.aws.autoscaling import ScalableTarget, ScalingGateway
from integrations.aws.errors import AwsError

log = structlog.get_logger(__name__)


def _arrow(label: str, before: int, after: int) -> str:
    return f"{label} {before} → {after}"


class ScaleAction(ServiceAction):
    """Set SERVICE's autoscaling min/max and/or desired count in ENV (docs/commands.md).

    Fingerprint: the current values of exactly what it sets, and the values it sets. With
    --min/--max: the scalable target (`resource_id`) and its current `min` and `max` (both are
    written by RegisterScalableTarget) and the resulting `new_min`/`new_max`; with --desired:
    the current `desired` count and `new_desired`. A desired count moved by autoscaling voids
    only a request that sets the desired count; one that only sets bounds does not depend on
    it (the re-plan still refuses bounds that no longer hold the count, e.g. --min above it).
    """

    kind: ClassVar[str] = "scale"

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    desired: int | None = Field(default=None, ge=0)

    def _given(self) -> list[tuple[str, int]]:
        flags = (("--min", self.min), ("--max", self.max), ("--desired", self.desired))
        return [(flag, value) for flag, value in flags if value is not None]

    def title(self) -> str:
        wanted = ", ".join(f"{flag.removeprefix('--')} {value}" for flag, value in self._given())
        return f"Scale {self.service} in {self.env}: {wanted or 'nothing'}"

    async def plan(self, runtime: ActionRuntime) -> Plan:
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        self._within_limit(runtime.config.scale.max_tasks)
        state = await runtime.aws.describe_service(env.region, env.cluster, svc.ecs_service)
        target = await ScalingGateway(runtime.aws.clients).scalable_target(
            env.region, env.cluster, svc.ecs_service
        )
        desired = self.desired if self.desired is not None else state.desired
        facts = [f"{state.running} running, {state.pending} pending, {state.desired} desired"]
        if target is None:
            changes = self._desired_only(svc.ecs_service, state.desired)
            facts.append("no autoscaling target: the desired count is all there is")
        else:
            changes = self._bounds(target, state.desired)
        inputs = self._inputs(target, state.desired)
        if desired != state.desired:
            changes.append(
                Change(label="desired tasks", before=str(state.desired), after=str(desired))
            )
        return Plan.build(
            f"Scale {self.service} in {self.env}: "
            + ", ".join(f"{c.label.split()[0]} {c.before} → {c.after}" for c in changes),
            inputs=inputs,
            changes=changes,
            facts=facts,
        )

    def _within_limit(self, cap: int) -> None:
        if not self._given():
            raise ChatOpsError("scale: give at least one of --min, --max, --desired")
        for flag, value in self._given():
            if value > cap:
                raise ChatOpsError(
                    f"{flag} {value} is above the limit of {cap} tasks ([scale] max_tasks)"
                )

    def _inputs(self, target: ScalableTarget | None, current: int) -> dict[str, Any]:
        """The fingerprinted inputs: the current value of each thing set, and its new value."""
        inputs: dict[str, Any] = {}
        if target is not None and (self.min is not None or self.max is not None):
            inputs |= {
                "resource_id": target.resource_id,
                "min": target.min_capacity,
                "max": target.max_capacity,
                "new_min": self.min if self.min is not None else target.min_capacity,
                "new_max": self.max if self.max is not None else target.max_capacity,
            }
        if self.desired is not None:
            inputs |= {"desired": current, "new_desired": self.desired}
        return inputs

    def _desired_only(self, ecs_service: str, current: int) -> list[Change]:
        if self.min is not None or self.max is not None:
            raise ChatOpsError(
                f"{ecs_service} in {self.env} has no autoscaling target, so it has no "
                "--min or --max: only --desired can be changed"
            )
        if self.desired == current:
            raise ChatOpsError(
                f"{self.service} in {self.env} is already at desired {current} — nothing to change"
            )
        return []

    def _bounds(self, target: ScalableTarget, current: int) -> list[Change]:
        low = self.min if self.min is not None else target.min_capacity
        high = self.max if self.max is not None else target.max_capacity
        desired = self.desired if self.desired is not None else current
        self._check(low, high, desired, current, target)
        if (low, high, desired) == (target.min_capacity, target.max_capacity, current):
            raise ChatOpsError(
                f"{self.service} in {self.env} is already min {low}, max {high}, "
                f"desired {desired} — nothing to change"
            )
        return [
            Change(label=label, before=str(before), after=str(after))
            for label, before, after in (
                ("min tasks", target.min_capacity, low),
                ("max tasks", target.max_capacity, high),
            )
            if before != after
        ]

    def _check(
        self, low: int, high: int, desired: int, current_desired: int, target: ScalableTarget
    ) -> None:
        """Refuse a resulting min > max, min > desired or desired > max, naming the flags."""
        if low > high:
            if self.min is not None and self.max is not None:
                raise ChatOpsError(f"--min {low} is above --max {high}")
            if self.min is not None:
                raise ChatOpsError(
                    f"--min {low} is above the autoscaling max of {high} — raise --max too"
                )
            raise ChatOpsError(
                f"--max {high} is below the autoscaling min of {low} — lower --min too"
            )
        if desired > high:
            if self.desired is not None and self.max is not None:
                raise ChatOpsError(f"--desired {desired} is above --max {high}")
            if self.desired is not None:
                raise ChatOpsError(
                    f"--desired {desired} is above the autoscaling max of {high} — raise --max too"
                )
            raise ChatOpsError(
                f"--max {high} is below the desired count of {current_desired} "
                "— lower --desired too"
            )
        if low > desired:
            if self.desired is not None and self.min is not None:
                raise ChatOpsError(f"--desired {desired} is below --min {low}")
            if self.desired is not None:
                raise ChatOpsError(
                    f"--desired {desired} is below the autoscaling min of "
                    f"{target.min_capacity} — lower --min too"
                )
            raise ChatOpsError(
                f"--min {low} is above the desired count of {current_desired} — raise --desired too"
            )

    async def applied(self, approved: Plan, runtime: ActionRuntime) -> bool:
        """Every value the approved plan sets is already in place (a replay, or someone set
        the same values meanwhile): executing changes nothing and says "already …"."""
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        inputs = approved.inputs
        if "new_min" in inputs:
            scaling = ScalingGateway(runtime.aws.clients)
            target = await scaling.scalable_target(env.region, env.cluster, svc.ecs_service)
            if target is None or (target.min_capacity, target.max_capacity) != (
                inputs["new_min"],
                inputs["new_max"],
            ):
                return False
        if inputs.get("new_desired") is not None:
            state = await runtime.aws.describe_service(env.region, env.cluster, svc.ecs_service)
            if state.desired != inputs["new_desired"]:
                return False
        return "new_min" in inputs or inputs.get("new_desired") is not None

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        """Bounds first (so the new desired count fits them), then the desired count; each only
        when it is not already at the value asked for (read again here, so an execution of the
        same request a second time changes nothing)."""
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        scaling = ScalingGateway(runtime.aws.clients)
        inputs = plan.inputs
        done: list[str] = []
        already: list[str] = []
        resource_id = inputs.get("resource_id")
        if resource_id is not None:
            target = await scaling.scalable_target(env.region, env.cluster, svc.ecs_service)
            if target is None:
                raise ChatOpsError(
                    f"{svc.ecs_service} in {self.env} no longer has an autoscaling target. "
                    "Nothing was changed."
                )
            old = (target.min_capacity, target.max_capacity)
            new = (int(inputs["new_min"]), int(inputs["new_max"]))
            if new != old:
                await scaling.register_scalable_target(env.region, str(resource_id), *new)
                log.info("scale.target_registered", resource_id=resource_id, min=new[0], max=new[1])
                done += [
                    _arrow(label, before, after)
                    for label, before, after in zip(("min", "max"), old, new, strict=True)
                    if before != after
                ]
            else:
                already += [
                    f"{label} {value}"
                    for label, value, given in zip(
                        ("min", "max"), new, (self.min, self.max), strict=True
                    )
                    if given is not None
                ]
        if self.desired is not None:
            state = await runtime.aws.describe_service(env.region, env.cluster, svc.ecs_service)
            if state.desired == self.desired:
                already.append(f"desired {self.desired}")
            else:
                try:
                    await scaling.set_desired_count(
                        env.region, env.cluster, svc.ecs_service, self.desired
                    )
                except AwsError as exc:
                    if not done:
                        raise
                    return Result(
                        ok=False,
                        summary=(
                            f"{self.service} in {self.env}: {', '.join(done)} done, but the "
                            f"desired count was not changed — {exc.user_message}"
                        ),
                    )
                log.info("scale.desired_set", service=svc.ecs_service, desired=self.desired)
                done.append(_arrow("desired", state.desired, self.desired))
        details = {
            "region": env.region,
            "cluster": env.cluster,
            "resource_id": resource_id,
            "changed": done,
            "already": already,
        }
        if not done:
            summary = (
                f"{self.service} in {self.env}: already {', '.join(already)} — nothing to change"
            )
        elif already:
            summary = (
                f"{self.service} in {self.env}: {', '.join(done)} (already {', '.join(already)})"
            )
        else:
            summary = f"{self.service} in {self.env}: {', '.join(done)}"
        return Result(ok=True, summary=summary, details=details)
