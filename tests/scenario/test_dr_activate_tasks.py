"""Scenario: `dr activate` switches the record only once the DR services run their tasks — it
waits for them (DescribeServices) within the one RTO, and stops before the record when they do
not come up; "done" is what was observed (`2/2 running`), and `applied` checks running too. A
freeze that begins mid-run does not stop it half-done (judged at the gate only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from commands.operations.dr_activate import DrActivateAction
from core.clock import ManualClock
from core.errors import ChatOpsError
from core.guard import guarded
from sandbox.dr_world import DR_CLUSTER, DR_REGION, DR_TARGET, PRIMARY_TARGET
from sandbox.world import SandboxWorld
from tests.scenario.test_dr_activate import (
    approve,
    ask,
    card_now,
    newest_card,
    record_values,
    service,
)


class Jumping(ManualClock):
    """Every look at the time is 20 minutes later: an RTO passes in a few polls."""

    def now(self) -> datetime:
        self.advance(20 * 60)
        return super().now()


@contextmanager
def no_tasks_start(world: SandboxWorld, ecs_service: str) -> Iterator[None]:
    """The DR cluster's DescribeServices shows ``ecs_service`` with no running task (an image
    that cannot be pulled, a crashing container)."""
    made = world.flow().runtime.aws.clients.client("ecs", DR_REGION)
    event = "after-call.ecs.DescribeServices"

    def starved(parsed: dict[str, Any], **_kwargs: Any) -> None:
        for svc in parsed.get("services", []):
            if svc.get("serviceName") == ecs_service:
                svc["runningCount"] = 0

    made.meta.events.register(event, starved)
    try:
        yield
    finally:
        made.meta.events.unregister(event, starved)


async def test_the_record_is_not_switched_to_services_that_do_not_run(
    aws_bot: SandboxWorld,
) -> None:
    runtime = replace(
        aws_bot.flow().runtime, clock=Jumping(datetime(2026, 12, 5, tzinfo=UTC)), task_poll=0
    )
    action = DrActivateAction(env="production", region=DR_REGION, request_id="tasks00001")
    plan = await action.plan(runtime)
    sent: list[str] = []

    async def checkpoint(operation: str) -> None:
        sent.append(operation)

    with no_tasks_start(aws_bot, "dhanam-web"), guarded(checkpoint):
        with pytest.raises(ChatOpsError) as stopped:
            await action.execute(plan, runtime)
    said = stopped.value.user_message
    assert "DR activation stopped at step 2. web in dhanam-dr → v1.2.0 at 2 tasks" in said
    assert "the DR services is still web 0/2 running after " in said
    assert "counted from the start of the activation" in said
    assert "Steps done: 1. promote dhanam-production-dr; 2. api in dhanam-dr" in said
    assert f"Not run: 3. api.dhanam.io → {DR_TARGET}" in said
    assert "ChangeResourceRecordSets" not in sent  # DNS never flipped
    assert record_values(aws_bot) == [PRIMARY_TARGET]

    sent.clear()
    with guarded(checkpoint):
        result = await action.execute(plan, runtime)  # the tasks run now: resumes
    assert result.ok
    assert "web: already on dhanam-web:1 at 2; 2/2 running" in result.summary
    assert sent == ["ChangeResourceRecordSets"]
    assert record_values(aws_bot) == [DR_TARGET]
    assert await action.applied(plan, runtime)
    with no_tasks_start(aws_bot, "dhanam-api"):
        assert not await action.applied(plan, runtime)  # desired 2, none running: not done


async def test_a_freeze_that_begins_mid_run_does_not_stop_it_half_done(
    aws_bot: SandboxWorld,
) -> None:
    """Production's freeze begins while the services are being updated: the gate judged locks
    and freezes; the execution's checkpoint does not stop the activation between two changes."""
    await ask(aws_bot, "dr activate --reason us-east-1 down")
    card = newest_card(aws_bot)
    await approve(aws_bot, card, "bob")
    flow = aws_bot.flow()
    before = flow.config
    production = before.environments["production"]
    now = datetime.now(UTC)
    window = production.freeze[0].model_copy(
        update={"start": now - timedelta(minutes=1), "end": now + timedelta(days=1)}
    )
    frozen = before.model_copy(
        update={
            "environments": {
                **before.environments,
                "production": production.model_copy(update={"freeze": [window]}),
            }
        }
    )
    made = flow.runtime.aws.clients.client("ecs", DR_REGION)
    event = "before-call.ecs.UpdateService"

    def freeze_begins(**_kwargs: Any) -> None:
        flow.config = frozen  # after the first UpdateService passed its checkpoint

    made.meta.events.register(event, freeze_begins)
    try:
        await approve(aws_bot, card, "carol")
    finally:
        made.meta.events.unregister(event, freeze_begins)
        flow.config = before
    final = card_now(aws_bot, card)
    assert "DR active in us-west-2 after " in final, final
    assert service(aws_bot, DR_CLUSTER, "dhanam-web")["desiredCount"] == 2
    assert record_values(aws_bot) == [DR_TARGET]
