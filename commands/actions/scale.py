"""`scale SERVICE ENV [--min N] [--max N] [--desired N]`: the service's Application Auto Scaling
bounds and/or its desired task count.

Flags not given keep their current value; the resulting min ≤ desired ≤ max must hold and no
value may exceed `[scale] max_tasks`, else nothing changes. A service without a scalable target
can only have its desired count changed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from pydantic import Field

from approvals.models import Change, Plan, Result
from commands.actions.base import ServiceAction, environment_config, service_config
from commands.actions.runtime import ActionRuntime
from core.errors import ChatOpsError
from integrations.aws.autoscaling import ScalableTarget, ScalingGateway
from integrations.aws.errors import AwsError

log = structlog.get_logger(__name__)


def _arrow(label: str, before: int, after: int) -> str:
    return f"{label} {before} → {after}"


class ScaleAction(ServiceAction):
    """Set SERVICE's autoscaling min/max and/or desired count in ENV (PRODUCT.md §3)."""

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
            changes, inputs = self._desired_only(svc.ecs_service, state.desired)
            facts.append("no autoscaling target: the desired count is all there is")
        else:
            changes, inputs = self._bounds(target, state.desired)
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

    def _desired_only(self, ecs_service: str, current: int) -> tuple[list[Change], dict[str, Any]]:
        if self.min is not None or self.max is not None:
            raise ChatOpsError(
                f"{ecs_service} in {self.env} has no autoscaling target, so it has no "
                "--min or --max: only --desired can be changed"
            )
        if self.desired == current:
            raise ChatOpsError(
                f"{self.service} in {self.env} is already at desired {current} — nothing to change"
            )
        return [], {"resource_id": None, "min": None, "max": None, "desired": current}

    def _bounds(self, target: ScalableTarget, current: int) -> tuple[list[Change], dict[str, Any]]:
        low = self.min if self.min is not None else target.min_capacity
        high = self.max if self.max is not None else target.max_capacity
        desired = self.desired if self.desired is not None else current
        self._check(low, high, desired, current, target)
        if (low, high, desired) == (target.min_capacity, target.max_capacity, current):
            raise ChatOpsError(
                f"{self.service} in {self.env} is already min {low}, max {high}, "
                f"desired {desired} — nothing to change"
            )
        changes = [
            Change(label=label, before=str(before), after=str(after))
            for label, before, after in (
                ("min tasks", target.min_capacity, low),
                ("max tasks", target.max_capacity, high),
            )
            if before != after
        ]
        inputs: dict[str, Any] = {
            "resource_id": target.resource_id,
            "min": target.min_capacity,
            "max": target.max_capacity,
        }
        # Autoscaling moves the desired count by itself: it is an input (a change of it stops
        # execution) only when the plan depends on it, i.e. it is being set or a bound is
        # tightened. Widening the bounds holds whatever the count is by then.
        if self.desired is not None or low > target.min_capacity or high < target.max_capacity:
            inputs["desired"] = current
        return changes, inputs

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

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        """Bounds first (so the new desired count fits them), then the desired count. The
        engine re-planned just before this, so `plan.inputs` are the current values."""
        env = environment_config(runtime.config.environments, self.env)
        svc = service_config(runtime.config.services, self.service)
        scaling = ScalingGateway(runtime.aws.clients)
        inputs = plan.inputs
        done: list[str] = []
        resource_id = inputs.get("resource_id")
        if resource_id is not None:
            old = (int(inputs["min"]), int(inputs["max"]))
            new = (
                self.min if self.min is not None else old[0],
                self.max if self.max is not None else old[1],
            )
            if new != old:
                await scaling.register_scalable_target(env.region, str(resource_id), *new)
                log.info("scale.target_registered", resource_id=resource_id, min=new[0], max=new[1])
                done += [
                    _arrow(label, before, after)
                    for label, before, after in zip(("min", "max"), old, new, strict=True)
                    if before != after
                ]
        if self.desired is not None and self.desired != inputs.get("desired"):
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
                        f"{self.service} in {self.env}: {', '.join(done)} done, but the desired "
                        f"count was not changed — {exc.user_message}"
                    ),
                )
            log.info("scale.desired_set", service=svc.ecs_service, desired=self.desired)
            done.append(_arrow("desired", int(inputs["desired"]), self.desired))
        details = {"region": env.region, "cluster": env.cluster, "resource_id": resource_id}
        summary = f"{self.service} in {self.env}: {', '.join(done) or 'nothing changed'}"
        return Result(ok=True, summary=summary, details=details)
