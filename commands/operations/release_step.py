"""A deploy's release step: `[services.X] before_deploy = "migrate"` runs that named task with the
NEW image (the revision the deploy just registered) before update-service, and the deploy goes
on only when it exits 0.

The task runs inside the deploy's execution (its claim kept alive by the heartbeat), watched
every `task_poll` seconds with one progress message in the card's thread. A non-zero exit, a
task ECS cannot start, or the timeout (StopTask, then reported) stops the deploy with the exit
code and the log's last lines; update-service is never sent. RunTask carries
`startedBy = dhanam:<request>:before_deploy`, so a replayed execution finds the task again
instead of migrating twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import structlog

from approvals.execution import without_promise
from approvals.models import Change
from commands.operations.runtime import ActionRuntime
from commands.operations.task_follow import LOG_SETTLE, STOP_GRACE
from commands.operations.tasks import (
    STARTED_BY_PREFIX,
    TAIL_LINES,
    TIMEOUT_REASON,
    TaskSpec,
    TaskWatch,
    exit_text,
    slot_name,
    start_once,
    started_by,
    take_slot,
    task_logs,
)
from core.config import ServiceConfig
from core.errors import ChatOpsError, StoreUnavailableError
from core.masking import code_block
from core.text import duration, inert
from integrations.aws.ecs_tasks import Placement, TaskState, placement_of
from integrations.aws.models import short

log = structlog.get_logger(__name__)

STEP = "before_deploy"


def plan_parts(
    svc: ServiceConfig, service: dict[str, Any], current: dict[str, Any]
) -> tuple[dict[str, Any], list[Change], list[str]]:
    """What the deploy's plan gains for its release step: inputs, a change line and facts (empty
    when the service has none). The task runs in the new revision, so the image is the deploy's
    target; the placement is the service's now."""
    if svc.before_deploy is None:
        return {}, [], []
    task = svc.tasks[svc.before_deploy]
    placement = placement_of(service)
    logs = task_logs(current, svc.container)
    inputs = {
        "before_deploy": {
            "task": svc.before_deploy,
            "command": list(task.command),
            "timeout_seconds": task.timeout_seconds,
            "launch_type": placement.launch_type,
            "capacity_provider_strategy": placement.capacity_provider_strategy,
            "platform_version": placement.platform_version,
            "network": placement.network,
            "logs": list(logs) if logs else None,
        }
    }
    change = Change(
        label="before update-service",
        before="—",
        after=f"{svc.before_deploy}: {' '.join(task.command)} (new image; must exit 0)",
    )
    facts = [
        f"release step: {svc.before_deploy} runs `{' '.join(task.command)}` in container "
        f"{svc.container} of the new revision first; a non-zero exit or its timeout "
        f"({duration(task.timeout_seconds)}) stops the deploy before update-service",
        *placement.describe(),
    ]
    return inputs, [change], facts


def spec_of(
    inputs: dict[str, Any], *, region: str, cluster: str, container: str, arn: str
) -> TaskSpec:
    step = inputs["before_deploy"]
    logs = step.get("logs")
    return TaskSpec(
        name=str(step["task"]),
        region=region,
        cluster=cluster,
        task_definition=arn,
        container=container,
        command=[str(c) for c in step["command"]],
        placement=Placement(
            launch_type=step.get("launch_type"),
            capacity_provider_strategy=list(step.get("capacity_provider_strategy") or []),
            platform_version=step.get("platform_version"),
            network=dict(step.get("network") or {}),
        ),
        timeout_seconds=int(step["timeout_seconds"]),
        logs=(str(logs[0]), str(logs[1]), str(logs[2])) if logs else None,
    )


async def run_before_deploy(
    runtime: ActionRuntime, spec: TaskSpec, *, request_id: str | None, service: str, env: str
) -> str:
    """Run the release step to its end; the line for the deploy's summary. ChatOpsError (with
    the exit code and log tail) when it did not exit 0: the deploy must stop."""
    tag = started_by(request_id, STEP)
    family = short(spec.task_definition).rsplit(":", 1)[0]
    found = await runtime.tasks.find_started_by(spec.region, spec.cluster, tag, spec.container)
    if found is None:
        if runtime.leases is not None:
            try:
                await take_slot(runtime.leases, service, env, tag, spec.timeout_seconds)
            except ChatOpsError as exc:
                raise ChatOpsError(
                    f"{spec.name} was not started: {without_promise(exc.user_message)}. The "
                    "deploy stopped before update-service."
                ) from exc
        others = await runtime.tasks.running_started_by_prefix(
            spec.region, spec.cluster, family, STARTED_BY_PREFIX, spec.container
        )
        if others:
            busy = ", ".join(f"task {t.id}" for t in others)
            raise ChatOpsError(
                f"{spec.name} was not started: another one-off task of {service} is still "
                f"running ({busy}). The deploy stopped before update-service."
            )
    arn, _ = await start_once(runtime.tasks, spec, tag)
    watch = TaskWatch(
        tasks=runtime.tasks,
        region=spec.region,
        cluster=spec.cluster,
        arn=arn,
        container=spec.container,
        logs=spec.logs,
    )
    state, elapsed = await _watch(runtime, spec, watch, request_id)
    if runtime.leases is not None:  # stopped: the slot is free again (else it expires)
        with contextlib.suppress(StoreUnavailableError):
            await runtime.leases.release(slot_name(service, env), tag)
    took = duration(elapsed)
    if state.exit_code == 0 and not watch.stop_sent:
        return f"{spec.name} exited 0 after {took} (task {watch.task_id})"
    tail = code_block(watch.last_lines(TAIL_LINES))
    why = f": {inert(state.stopped_reason)}" if state.stopped_reason else ""
    if watch.stop_sent:
        head = f"{spec.name} timed out after {took} and was stopped ({exit_text(state)})"
    else:
        head = f"{spec.name} failed with {exit_text(state)} after {took}{why}"
    raise ChatOpsError(
        f"{head}, so update-service was not sent: the service still runs its current revision "
        f"(the new one, {short(spec.task_definition)}, was registered for the step and is not "
        f"in use).\n{tail}".rstrip()
    )


async def _watch(
    runtime: ActionRuntime, spec: TaskSpec, watch: TaskWatch, request_id: str | None
) -> tuple[TaskState, timedelta]:
    started = runtime.clock.now()
    limit = timedelta(seconds=spec.timeout_seconds)
    ts: str | None = None
    while True:
        elapsed = runtime.clock.now() - started
        try:
            state = await watch.poll()
        except ChatOpsError as exc:
            # AWS refusing or unreachable for a moment: look again, up to the timeout; then
            # stop the task (stopping is always safe) and end the deploy saying why.
            if elapsed < limit:
                log.warning("release_step.poll_failed", task=watch.task_id, error=exc.user_message)
                await asyncio.sleep(runtime.task_poll)
                continue
            with contextlib.suppress(ChatOpsError):
                await watch.stop(f"{TIMEOUT_REASON} after {duration(limit)} (state unreadable)")
            raise ChatOpsError(
                f"{spec.name}'s state could not be read for {duration(limit)} "
                f"({exc.user_message[:200]}); StopTask was sent to task {watch.task_id}. The "
                "deploy stopped before update-service; check the task."
            ) from exc
        if not state.done and elapsed >= limit:
            await watch.stop(f"{TIMEOUT_REASON} after {duration(limit)} ({spec.name})")
        if not state.done and elapsed >= limit + STOP_GRACE:
            raise ChatOpsError(
                f"{spec.name} timed out after {duration(limit)}; StopTask was sent but ECS "
                f"still shows task {watch.task_id} as {state.last_status.lower()}. The deploy "
                "stopped before update-service; check the task."
            )
        ts = await _progress(runtime, request_id, spec, watch, state=state, elapsed=elapsed, ts=ts)
        if state.done:
            await asyncio.sleep(min(LOG_SETTLE, runtime.task_poll))
            await watch.read_log()  # the lines written just before it stopped
            ts = await _progress(
                runtime, request_id, spec, watch, state=state, elapsed=elapsed, ts=ts
            )
            return state, elapsed
        await asyncio.sleep(runtime.task_poll)


async def _progress(
    runtime: ActionRuntime,
    request_id: str | None,
    spec: TaskSpec,
    watch: TaskWatch,
    *,
    state: TaskState,
    elapsed: timedelta,
    ts: str | None,
) -> str | None:
    if runtime.progress is None or request_id is None:
        return ts
    if state.done:
        ok = state.exit_code == 0 and not watch.stop_sent
        mark = ":white_check_mark:" if ok else ":x:"
        status = f"stopped, {exit_text(state)}"
    else:
        mark = ":arrows_counterclockwise:"
        status = state.last_status.lower()
    head = (
        f"{mark} Release step {spec.name} (`{' '.join(spec.command)}`, new image) {status} · "
        f"{duration(elapsed)} · task {watch.task_id}"
    )
    lines = watch.last_lines(TAIL_LINES)
    body = code_block(lines) if lines else "_no log lines yet_"
    written = await runtime.progress(request_id, f"{head}\n{body}", ts)
    return written or ts
