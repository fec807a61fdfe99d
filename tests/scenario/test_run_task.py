"""Scenario: `/dhanam run SERVICE ENV TASK` through signed requests on moto — the approval and
the gate, RunTask with the service's network configuration and the command override, the log
tail in the card's thread, the exit code on the card, failure, timeout, and replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from approvals.models import State
from bot.app import DEPS
from bot.wiring import Overrides
from core.clock import SystemClock
from sandbox.aws_world import DhanamWorld
from sandbox.ecs_tasks import SANDBOX_DB_PASSWORD
from sandbox.world import SandboxWorld, buttons_of
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox

MIGRATE = ("pnpm", "db:migrate")


@pytest.fixture
async def task_bot(redis_url: str, aws_world: DhanamWorld) -> AsyncIterator[SandboxWorld]:
    """The bot with AWS and the sandbox's task runner (a task runs 1 s)."""
    async with aws_sandbox(
        redis_url, aws_world, Overrides(sweeper=False, rollouts=FAST_ROLLOUTS), task_seconds=1.0
    ) as sandbox:
        yield sandbox


def ecs(world: SandboxWorld) -> Any:
    return boto3.client("ecs", region_name="us-east-1", endpoint_url=world.aws_endpoint_url)


def bot_tasks(world: SandboxWorld) -> list[dict[str, Any]]:
    client = ecs(world)
    arns: list[str] = []
    for status in ("RUNNING", "STOPPED"):
        arns += client.list_tasks(cluster="dhanam-production", desiredStatus=status)["taskArns"]
    if not arns:
        return []
    found = client.describe_tasks(cluster="dhanam-production", tasks=arns)["tasks"]
    return [t for t in found if str(t.get("startedBy", "")).startswith("dhanam:")]


def newest_card(world: SandboxWorld, channel: str = "C0DEPLOYS") -> Any:
    cards = [m for m in world.slack.messages(channel) if not m.is_reply and m.blocks]
    return cards[-1].snapshot()


def button(card: Any, label: str) -> Any:
    return next(b for b in buttons_of(card.blocks) if b.label == label)


async def stored(world: SandboxWorld, request_id: str) -> Any:
    return await world.app[DEPS].flow.store.get(request_id)


def card_text(world: SandboxWorld, ts: str) -> str:
    found = next(m for m in world.slack.messages("C0DEPLOYS") if m.ts == ts)
    return str(found.blocks)


async def wait_for_card(world: SandboxWorld, ts: str, needle: str, limit: float = 20.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        text = card_text(world, ts)
        if needle in text or loop.time() > deadline:
            return text
        await asyncio.sleep(0.2)


async def test_migrate_needs_approval_then_runs_with_the_service_network(
    task_bot: SandboxWorld,
) -> None:
    await task_bot.slash("run api production migrate --reason schema for v1.3", user="alice")
    await task_bot.settle()
    assert "Approval requested: Run migrate of api in production" in (
        task_bot.slack.ephemerals("U0ALICE")[-1].text
    )
    card = newest_card(task_bot)
    text = str(card.blocks)
    assert "pnpm db:migrate" in text
    assert "awsvpc subnets subnet-" in text
    assert "public IP DISABLED" in text
    assert "launch type FARGATE" in text
    assert "dhanam-api:3" in text
    assert "timeout 15 min" in text
    assert bot_tasks(task_bot) == []  # nothing runs before approval

    await task_bot.click(card, button(card, "Approve"), user="bob")
    await task_bot.settle()
    tasks = bot_tasks(task_bot)
    assert len(tasks) == 1
    task = tasks[0]
    assert task["startedBy"].startswith("dhanam:")
    assert task["overrides"]["containerOverrides"] == [{"name": "api", "command": list(MIGRATE)}]
    assert task["taskDefinitionArn"].endswith("dhanam-api:3")
    service = ecs(task_bot).describe_services(cluster="dhanam-production", services=["dhanam-api"])[
        "services"
    ][0]
    eni = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert eni["subnetId"] in service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]

    final = await wait_for_card(task_bot, card.ts, "Task succeeded")
    assert "Task succeeded" in final
    assert "exited with code 0" in final
    thread = task_bot.slack.thread("C0DEPLOYS", card.ts)
    progress = [m for m in thread if "Task migrate" in (m.text or "")]
    assert len(progress) == 1  # one message, edited in place
    assert "2 migrations applied" in progress[0].text
    assert "stopped" in progress[0].text
    # The migration printed its database password: it never reaches Slack.
    assert "[redacted]" in progress[0].text
    for call in task_bot.slack.calls:
        assert SANDBOX_DB_PASSWORD not in str(call.params)


async def test_a_read_only_task_runs_at_once(task_bot: SandboxWorld) -> None:
    await task_bot.slash("run api production migrate-status", user="alice")
    await task_bot.settle()
    told = task_bot.slack.ephemerals("U0ALICE")[-1].text
    assert "running now — the task needs no approval" in told
    tasks = bot_tasks(task_bot)
    assert [t["overrides"]["containerOverrides"][0]["command"] for t in tasks] == [
        ["pnpm", "db:status"]
    ]


async def test_a_failing_migration_fails_with_its_exit_code_and_log(
    task_bot: SandboxWorld,
) -> None:
    assert task_bot.tasks is not None
    task_bot.tasks.failing.add(MIGRATE)
    await task_bot.slash("run api production migrate", user="alice")
    await task_bot.settle()
    card = newest_card(task_bot)
    await task_bot.click(card, button(card, "Approve"), user="bob")
    final = await wait_for_card(task_bot, card.ts, "Task failed")
    assert "Task failed" in final
    assert "exit code 1" in final
    assert "already exists" in final  # the log tail is on the card
    # The audit says how it ended, not only that the task was started.
    entries = await task_bot.app[DEPS].flow.store.recent_audit(10)
    followed = [e for e in entries if e["event"] == "followed"]
    assert len(followed) == 1
    assert followed[0]["note"].startswith("failed — migrate ended with exit code 1")


class ShiftedClock(SystemClock):
    """The system's time plus an offset the test moves forward."""

    offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset


async def test_a_task_past_its_timeout_is_stopped_and_reported(
    redis_url: str, aws_world: DhanamWorld
) -> None:
    clock = ShiftedClock()
    overrides = Overrides(sweeper=False, rollouts=FAST_ROLLOUTS, clock=clock)
    async with aws_sandbox(redis_url, aws_world, overrides, task_seconds=1.0) as task_bot:
        assert task_bot.tasks is not None
        task_bot.tasks.hanging.add(MIGRATE)
        await task_bot.slash("run api production migrate", user="alice")
        await task_bot.settle()
        card = newest_card(task_bot)
        await task_bot.click(card, button(card, "Approve"), user="bob")
        await task_bot.settle()
        assert "Running…" in card_text(task_bot, card.ts)
        clock.offset = timedelta(minutes=15, seconds=1)  # the task's timeout is 15 min
        await _timed_out(task_bot, card.ts)


async def _timed_out(task_bot: SandboxWorld, ts: str) -> None:
    final = await wait_for_card(task_bot, ts, "Task timed out", limit=30)
    assert "Task timed out" in final
    assert "stopped by dhanam" in final
    assert "exit code 137" in final
    (task,) = bot_tasks(task_bot)
    assert task["lastStatus"] == "STOPPED"
    assert "timed out" in task["stoppedReason"]


async def test_a_replayed_execution_starts_no_second_task(task_bot: SandboxWorld) -> None:
    await task_bot.slash("run api production migrate", user="alice")
    await task_bot.settle()
    card = newest_card(task_bot)
    await task_bot.click(card, button(card, "Approve"), user="bob")
    await task_bot.settle()
    assert len(bot_tasks(task_bot)) == 1
    flow = task_bot.app[DEPS].flow
    entries = await flow.store.recent_audit(20)
    request_id = next(e["request_id"] for e in entries if e["kind"] == "run")
    request = await flow.store.get(request_id)
    assert request is not None
    assert request.state is State.SUCCEEDED
    # What a replay of the execution does (a Redis failover put the request back): the task
    # is already there, so the request counts as applied and execute finds it.
    action = flow.registry.load(request).for_execution(request)
    assert await action.applied(request.plan, flow.runtime)
    result = await action.execute(request.plan, flow.runtime)
    assert result.details["reused_task"] is True
    assert "started by an earlier attempt of this request" in result.summary
    assert len(bot_tasks(task_bot)) == 1
