"""Step 2 of `dr activate`, each DR service (the other steps are in dr_run.py): nothing when the
DR service already runs production's images at production's desired count; else a revision
copied from the DR service's own with production's images (one this request registered earlier
is reused), and UpdateService with the revision and count. Then DescribeServices every
`task_poll` seconds until every DR service runs its desired count (at least one task), within
the activation's one RTO: the record is never switched to services that do not run.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from commands.operations.base import REQUEST_TAG_KEY
from commands.operations.dr_board import Board, StepState
from commands.operations.dr_plan import ServiceTarget
from commands.operations.dr_run import Waiting, wait_until
from commands.operations.runtime import ActionRuntime
from core.config import DrConfig
from integrations.aws.gateway import AwsGateway
from integrations.aws.models import short
from integrations.dr_snapshot import IMAGE_TAG_KEY


async def service_step(
    runtime: ActionRuntime, dr: DrConfig, target: ServiceTarget, request_id: str | None
) -> str:
    aws = runtime.aws
    state = await aws.describe_service(dr.region, dr.cluster, target.ecs_service)
    current = await aws.describe_task_definition(dr.region, state.task_definition_arn)
    if target.runs_images(current):
        arn = state.task_definition_arn
        if state.desired == target.desired:
            return f"already on {short(arn)} at {target.desired}"
        done = f"kept {short(arn)} (production's image), desired {state.desired} → {target.desired}"
    else:
        arn = await _revision(aws, dr.region, current, target, request_id)
        done = f"{short(arn)} with production's image, desired {state.desired} → {target.desired}"
    await aws.update_service(dr.region, dr.cluster, target.ecs_service, arn, target.desired)
    return f"{done} (update-service sent)"


async def services_phase(
    runtime: ActionRuntime,
    dr: DrConfig,
    targets: list[ServiceTarget],
    board: Board,
    request_id: str | None,
) -> list[str]:
    """Step 2 on the board (its lines 1…len(targets)): each service updated, then every one
    waited for until it runs its count — a line is done only once its tasks run. The outcome's
    words, by what was observed: `api: … (update-service sent); 2/2 running`."""
    sent: dict[str, str] = {}
    for index, target in enumerate(targets, start=1):
        await board.set(index, StepState.RUNNING)
        sent[target.name] = await service_step(runtime, dr, target, request_id)
        await board.set(index, StepState.RUNNING, f"{sent[target.name]}; waiting for tasks")

    async def seen(counts: dict[str, tuple[int, int]]) -> None:
        for index, target in enumerate(targets, start=1):
            running, desired = counts[target.name]
            step = board.steps[index]
            step.state = StepState.DONE if up(running, desired) else StepState.RUNNING
            step.detail = f"{sent[target.name]}; {running}/{desired} running"
        short = [i for i, t in enumerate(targets, start=1) if not up(*counts[t.name])]
        board.at = short[0] if short else board.at

    async def waiting(_status: str) -> None:
        await board.show()

    counts = await services_running(
        runtime,
        dr,
        targets,
        limit=board.rto,
        since=board.started,
        seen=seen,
        waiting=waiting,
    )
    await board.show()
    return [
        f"{t.name}: {sent[t.name]}; {counts[t.name][0]}/{counts[t.name][1]} running"
        for t in targets
    ]


def up(running: int, desired: int) -> bool:
    """Serving as production does: every desired task running, and at least one when any."""
    return running >= desired and (desired == 0 or running >= 1)


async def services_running(
    runtime: ActionRuntime,
    dr: DrConfig,
    targets: list[ServiceTarget],
    *,
    limit: timedelta,
    since: datetime | None,
    seen: Callable[[dict[str, tuple[int, int]]], Awaitable[None]],
    waiting: Waiting,
) -> dict[str, tuple[int, int]]:
    """DescribeServices every `task_poll` seconds until each DR service runs its desired count
    (and at least one task); each look's counts, by service, go to `seen`. ChatOpsError at the
    RTO, naming the services still short: the record is not switched to services not running."""
    counts: dict[str, tuple[int, int]] = {}

    async def look() -> tuple[bool, str]:
        for target in targets:
            state = await runtime.aws.describe_service(dr.region, dr.cluster, target.ecs_service)
            counts[target.name] = (state.running, target.desired)
        await seen(counts)
        short_of = [f"{n} {r}/{d} running" for n, (r, d) in counts.items() if not up(r, d)]
        return not short_of, ", ".join(short_of) or "all running"

    await wait_until(runtime, "the DR services", limit, look, waiting, since=since)
    return counts


async def _revision(
    aws: AwsGateway,
    region: str,
    current: dict[str, Any],
    target: ServiceTarget,
    request_id: str | None,
) -> str:
    """The revision this request registered earlier (tagged with its id, with the images), else
    a new one: the DR service's revision with production's images, nothing else changed."""
    family = str(current.get("family"))
    if request_id is not None:
        found = await aws.find_tagged_revision(region, family, REQUEST_TAG_KEY, request_id)
        if found is not None and target.runs_images(found):
            return str(found["taskDefinitionArn"])
    source = copy.deepcopy(current)
    for container in source.get("containerDefinitions", []):
        image = target.images.get(str(container.get("name")))
        if image is not None:
            container["image"] = image
    tags = [
        dict(t)
        for t in current.get("tags", [])
        if t.get("key") not in (IMAGE_TAG_KEY, REQUEST_TAG_KEY)
    ]
    if target.image_tag:
        tags.append({"key": IMAGE_TAG_KEY, "value": target.image_tag})
    if request_id:
        tags.append({"key": REQUEST_TAG_KEY, "value": request_id})
    image = target.images[target.container]
    return await aws.register_task_definition_like(region, source, tags, target.container, image)


async def in_place(runtime: ActionRuntime, dr: DrConfig, targets: list[ServiceTarget]) -> bool:
    """Every DR service on production's images at production's count, its tasks running."""
    aws = runtime.aws
    for target in targets:
        now = await aws.describe_service(dr.region, dr.cluster, target.ecs_service)
        definition = await aws.describe_task_definition(dr.region, now.task_definition_arn)
        if not target.runs_images(definition) or now.desired != target.desired:
            return False
        if not up(now.running, target.desired):
            return False  # not serving yet: the execution waits for its tasks
    return True
