"""Following a deploy's rollout in the card's thread, against moto in server mode.

moto never moves a rollout on by itself: these tests drive it through moto's in-process backend
(`sandbox.aws_world.complete_rollouts`) or through the real ECS API (another update-service),
never through a double of describe_services.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from approvals.rollout import Phase, RolloutSettings
from bot.app import DEPS, LOOPS
from bot.wiring import Overrides
from core.errors import ChatOpsError
from sandbox.aws_world import DhanamWorld, complete_rollouts
from sandbox.world import SandboxWorld, buttons_of
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox


def card_of(world: SandboxWorld) -> Any:
    cards = [m for m in world.slack.messages("C0DEPLOYS") if not m.is_reply and m.blocks]
    return cards[-1].snapshot()


async def deploy_and_approve(world: SandboxWorld, replica: int = 0) -> Any:
    await world.slash("deploy api production v1.3.0", user="alice", replica=replica)
    await world.settle()
    card = card_of(world)
    approve = next(b for b in buttons_of(card.blocks) if b.label == "Approve")
    await world.click(card, approve, user="bob", replica=replica)
    await world.settle()
    return card


def progress_messages(world: SandboxWorld, card: Any) -> list[Any]:
    return [m for m in world.slack.thread("C0DEPLOYS", card.ts) if "Rollout of" in m.text]


async def wait_for(predicate: Any, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def card_text(world: SandboxWorld, card: Any) -> str:
    current = next(m for m in world.slack.messages("C0DEPLOYS") if m.ts == card.ts)
    return str(current.blocks)


async def test_progress_is_one_edited_message_and_the_card_gets_the_outcome(
    aws_bot: SandboxWorld, aws_world: DhanamWorld
) -> None:
    card = await deploy_and_approve(aws_bot)
    await wait_for(lambda: len(progress_messages(aws_bot, card)) == 1)
    await asyncio.sleep(0.5)  # several polls: still one message, edited
    progress = progress_messages(aws_bot, card)
    assert len(progress) == 1
    assert progress[0].edited >= 1
    assert "Rollout of dhanam-api:4" in progress[0].text
    await asyncio.to_thread(
        complete_rollouts,
        aws_world.endpoint_url,
        aws_world.region,
        "dhanam-production",
        "dhanam-api",
    )
    await wait_for(lambda: "Rollout:* completed" in card_text(aws_bot, card))
    assert "2/2 tasks on dhanam-api:4" in card_text(aws_bot, card)
    assert "completed" in progress_messages(aws_bot, card)[0].text
    assert len(progress_messages(aws_bot, card)) == 1


async def test_superseded_rollout_is_reported_failed(
    aws_bot: SandboxWorld, aws_world: DhanamWorld
) -> None:
    card = await deploy_and_approve(aws_bot)
    await wait_for(lambda: len(progress_messages(aws_bot, card)) == 1)
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=aws_world.endpoint_url)
    # The circuit breaker (or someone else) puts the service back on revision 3.
    await asyncio.to_thread(
        ecs.update_service,
        cluster="dhanam-production",
        service="dhanam-api",
        taskDefinition=aws_world.task_definition_arns[("dhanam-api", 3)],
    )
    await wait_for(lambda: "Rollout:* failed" in card_text(aws_bot, card))
    assert "now runs dhanam-api:3" in card_text(aws_bot, card)


async def test_rollout_that_never_completes_times_out(
    redis_url: str, aws_world: DhanamWorld
) -> None:
    settings = RolloutSettings(
        poll=timedelta(seconds=0.1), timeout=timedelta(seconds=0.5), bake=timedelta(0)
    )
    async with aws_sandbox(
        redis_url, aws_world, Overrides(sweeper=False, rollouts=settings)
    ) as world:
        card = await deploy_and_approve(world)
        await wait_for(lambda: "Rollout:* timed out" in card_text(world, card))


@pytest.mark.parametrize("error", [ChatOpsError("AccessDenied: ecs:DescribeServices"), KeyError])
async def test_a_rollout_whose_state_cannot_be_read_still_times_out(
    redis_url: str, aws_world: DhanamWorld, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """ECS refuses every describe after the deploy (a revoked permission, the service deleted,
    a bug reading its answer): the follow still ends at its timeout, with the reason, on the
    card — never polling forever."""
    settings = RolloutSettings(
        poll=timedelta(seconds=0.1), timeout=timedelta(seconds=0.5), bake=timedelta(0)
    )
    async with aws_sandbox(
        redis_url, aws_world, Overrides(sweeper=False, rollouts=settings)
    ) as world:
        follower = world.app[DEPS].follower

        async def refused(job: Any) -> Any:
            raise error

        monkeypatch.setattr(follower._source, "snapshot", refused)
        card = await deploy_and_approve(world)
        await wait_for(lambda: "Rollout:* timed out" in card_text(world, card))
        assert "could not be read" in card_text(world, card)
        await wait_for(lambda: not follower._tasks)


@pytest.fixture
async def two_replicas(redis_url: str, aws_world: DhanamWorld) -> AsyncIterator[SandboxWorld]:
    overrides = Overrides(sweeper=True, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides, replicas=2) as world:
        yield world


async def test_another_replica_takes_over_when_the_follower_dies(
    two_replicas: SandboxWorld, aws_world: DhanamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await check_takeover(two_replicas, aws_world, monkeypatch)


async def check_takeover(
    world: SandboxWorld, aws_world: DhanamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica 0 follows a rollout and dies; replica 1 finishes the same report."""
    card = await deploy_and_approve(world, replica=0)
    first = world.apps[0][DEPS].follower
    second = world.apps[1][DEPS].follower
    await wait_for(lambda: len(progress_messages(world, card)) == 1)
    request_id = next(iter(first._tasks))
    assert request_id not in second._tasks

    # Replica 0 dies: its follower stops and, being dead, releases nothing.
    async def dead(*_args: object) -> bool:
        return False

    monkeypatch.setattr(world.apps[0][DEPS].store, "release", dead)

    # Nor does a dead replica take anything over: without this its own takeover loop races
    # replica 1's for the expired lease, and which one ticks first is down to timing.
    async def takes_nothing() -> list[str]:
        return []

    monkeypatch.setattr(first, "takeover_once", takes_nothing)
    first._tasks[request_id].cancel()
    await asyncio.sleep(0)
    assert await world.apps[1][DEPS].store.holder(f"rollout:{request_id}") is not None

    # Within the lease (2 s) replica 1 picks it up and finishes the same report.
    await wait_for(lambda: request_id in second._tasks, limit=8)
    await asyncio.to_thread(
        complete_rollouts,
        aws_world.endpoint_url,
        aws_world.region,
        "dhanam-production",
        "dhanam-api",
    )
    await wait_for(lambda: "Rollout:* completed" in card_text(world, card))
    assert len(progress_messages(world, card)) == 1  # the same message, edited by both


async def test_alarm_during_bake_offers_a_rollback(
    aws_bot: SandboxWorld, aws_world: DhanamWorld
) -> None:
    card = await deploy_and_approve(aws_bot)
    await asyncio.to_thread(
        complete_rollouts,
        aws_world.endpoint_url,
        aws_world.region,
        "dhanam-production",
        "dhanam-api",
    )
    await wait_for(lambda: "Rollout:* completed" in card_text(aws_bot, card))
    cloudwatch = boto3.client(
        "cloudwatch", region_name="us-east-1", endpoint_url=aws_world.endpoint_url
    )
    await asyncio.to_thread(
        cloudwatch.set_alarm_state,
        AlarmName="dhanam-api-high-error-rate",
        StateValue="ALARM",
        StateReason="5XX above 5",
    )

    def alarm_message() -> Any:
        for message in aws_bot.slack.thread("C0DEPLOYS", card.ts):
            if "went to ALARM" in message.text:
                return message
        return None

    await wait_for(lambda: alarm_message() is not None)
    message = alarm_message()
    buttons = buttons_of(message.blocks)
    assert [b.label for b in buttons] == ["Roll back api in production"]
    assert '"to": "dhanam-api:3"' in buttons[0].value
    await asyncio.sleep(0.5)
    assert (
        sum(1 for m in aws_bot.slack.thread("C0DEPLOYS", card.ts) if "went to ALARM" in m.text) == 1
    )


async def test_a_deleted_progress_message_is_posted_anew_and_the_card_gets_the_outcome(
    aws_bot: SandboxWorld, aws_world: DhanamWorld
) -> None:
    """Someone deletes the thread's progress message mid-rollout: Slack answers
    message_not_found to the next edit; the follower posts a new one, keeps editing it, and
    the card still gets the outcome (it used to die and be restarted every poll)."""
    card = await deploy_and_approve(aws_bot)
    await wait_for(lambda: len(progress_messages(aws_bot, card)) == 1)
    first = progress_messages(aws_bot, card)[0]
    original = aws_bot.slack.world.find_message("C0DEPLOYS", first.ts)
    assert original is not None
    aws_bot.slack.world.delete_message(original)
    await wait_for(lambda: len(progress_messages(aws_bot, card)) == 1)
    again = progress_messages(aws_bot, card)[0]
    assert again.ts != first.ts
    await asyncio.to_thread(
        complete_rollouts,
        aws_world.endpoint_url,
        aws_world.region,
        "dhanam-production",
        "dhanam-api",
    )
    await wait_for(lambda: "Rollout:* completed" in card_text(aws_bot, card))
    assert "completed" in progress_messages(aws_bot, card)[0].text
    assert len(progress_messages(aws_bot, card)) == 1


def writes_to(world: SandboxWorld, channel: str) -> int:
    return sum(
        1
        for method in ("chat.update", "chat.postMessage")
        for call in world.slack.calls_to(method)
        if call.params.get("channel") == channel
    )


async def test_an_archived_channel_ends_the_follow_and_takeover_leaves_it_ended(
    redis_url: str, aws_world: DhanamWorld
) -> None:
    """The deploy channel is archived mid-rollout: the follower's next edit is refused
    (is_archived), the follow ends, and over several polls and takeover ticks no write to the
    channel is tried again: the takeover loop does not restart it."""
    overrides = Overrides(sweeper=True, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides) as world:
        card = await deploy_and_approve(world)
        follower = world.app[DEPS].follower
        await wait_for(lambda: len(progress_messages(world, card)) == 1)
        request_id = next(iter(follower._tasks))
        world.slack.world.archive("C0DEPLOYS")

        def refused() -> int:
            return sum(
                1
                for call in world.slack.calls_to("chat.update")
                if call.response is not None and call.response.get("error") == "is_archived"
            )

        await wait_for(lambda: refused() >= 1)
        await wait_for(lambda: request_id not in follower._tasks)
        assert request_id not in await follower.active()
        after_end = writes_to(world, "C0DEPLOYS")
        # Several polls (0.2 s) and takeover ticks (1 s) later: nothing more was tried.
        await asyncio.sleep(2.5)
        assert writes_to(world, "C0DEPLOYS") == after_end
        assert request_id not in follower._tasks
        assert world.app[LOOPS].running("rollout.takeover")
        job = await follower.load(request_id)
        assert job is not None
        assert job.phase is Phase.DONE
