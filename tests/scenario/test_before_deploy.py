"""Scenario: a deploy with `before_deploy = "migrate"` — the release step runs with the NEW image
before update-service; a failing migration stops the deploy and nothing else changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from approvals.models import State
from bot.app import DEPS
from bot.wiring import Overrides
from sandbox.aws_world import DhanamWorld
from sandbox.world import SandboxWorld
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox
from tests.scenario.test_run_task import (
    MIGRATE,
    ShiftedClock,
    bot_tasks,
    button,
    card_text,
    ecs,
    newest_card,
)


@pytest.fixture
async def release_bot(redis_url: str, aws_world: DhanamWorld) -> AsyncIterator[SandboxWorld]:
    async with aws_sandbox(
        redis_url,
        aws_world,
        Overrides(sweeper=False, rollouts=FAST_ROLLOUTS),
        task_seconds=1.0,
        before_deploy={"api": "migrate"},
    ) as sandbox:
        yield sandbox


def running_revision(world: SandboxWorld) -> str:
    svc = ecs(world).describe_services(cluster="dhanam-production", services=["dhanam-api"])
    return str(svc["services"][0]["taskDefinition"]).rsplit("/", 1)[-1]


async def latest_deploy(world: SandboxWorld) -> object:
    store = world.app[DEPS].flow.store
    entries = await store.recent_audit(30)
    request_id = next(e["request_id"] for e in entries if e["kind"] == "deploy")
    return await store.get(request_id)


async def test_the_migration_runs_with_the_new_image_before_update_service(
    release_bot: SandboxWorld,
) -> None:
    await release_bot.slash("deploy api production v1.3.0", user="alice")
    await release_bot.settle()
    card = newest_card(release_bot)
    plan = card_text(release_bot, card.ts)
    assert "before update-service" in plan
    assert "migrate: pnpm db:migrate (new image; must exit 0)" in plan
    assert "release step: migrate runs `pnpm db:migrate`" in plan
    await release_bot.click(card, button(card, "Approve"), user="bob")
    await release_bot.settle()
    (task,) = bot_tasks(release_bot)
    assert task["taskDefinitionArn"].endswith("dhanam-api:4")  # the revision the deploy made
    assert task["startedBy"].endswith(":before_deploy")
    assert task["overrides"]["containerOverrides"][0]["command"] == list(MIGRATE)
    assert running_revision(release_bot) == "dhanam-api:4"
    request = await latest_deploy(release_bot)
    assert request.state is State.SUCCEEDED  # type: ignore[attr-defined]
    assert "after migrate exited 0" in request.outcome  # type: ignore[attr-defined]
    thread = release_bot.slack.thread("C0DEPLOYS", card.ts)
    step = [m for m in thread if "Release step migrate" in (m.text or "")]
    assert len(step) == 1
    assert "2 migrations applied" in step[0].text


async def test_a_failing_migration_stops_the_deploy_and_nothing_else_changes(
    release_bot: SandboxWorld,
) -> None:
    assert release_bot.tasks is not None
    release_bot.tasks.failing.add(MIGRATE)
    await release_bot.slash("deploy api production v1.3.0", user="alice")
    await release_bot.settle()
    card = newest_card(release_bot)
    await release_bot.click(card, button(card, "Approve"), user="bob")
    await release_bot.settle()
    assert running_revision(release_bot) == "dhanam-api:3"  # update-service never sent
    request = await latest_deploy(release_bot)
    assert request.state is State.FAILED  # type: ignore[attr-defined]
    outcome = request.outcome  # type: ignore[attr-defined]
    assert "migrate failed with exit code 1" in outcome
    assert "update-service was not sent" in outcome
    assert "already exists" in outcome  # the log tail
    shown = card_text(release_bot, card.ts)
    assert "exit code 1" in shown
    assert "already exists" in shown


async def test_a_run_and_a_deploys_release_step_never_migrate_at_once(
    release_bot: SandboxWorld,
) -> None:
    """`run api production migrate` is still running when a deploy's before_deploy would start
    the same migration: the task slot refuses the second one, whatever ListTasks says."""
    assert release_bot.tasks is not None
    release_bot.tasks.hanging.add(MIGRATE)
    await release_bot.slash("run api production migrate", user="alice")
    await release_bot.settle()
    run_card = newest_card(release_bot)
    await release_bot.click(run_card, button(run_card, "Approve"), user="bob")
    await release_bot.settle()
    assert len(bot_tasks(release_bot)) == 1
    await release_bot.slash("deploy api production v1.3.0", user="alice")
    await release_bot.settle()
    card = newest_card(release_bot)
    await release_bot.click(card, button(card, "Approve"), user="bob")
    await release_bot.settle()
    request = await latest_deploy(release_bot)
    assert request.state is State.FAILED  # type: ignore[attr-defined]
    assert "migrate was not started: another one-off task of api in production is running" in (
        request.outcome  # type: ignore[attr-defined]
    )
    assert len(bot_tasks(release_bot)) == 1  # one migration
    assert running_revision(release_bot) == "dhanam-api:3"


async def test_a_lock_taken_during_the_migration_does_not_keep_it_from_being_stopped(
    redis_url: str, aws_world: DhanamWorld
) -> None:
    """StopTask at the release step's timeout only makes things safer: a lock taken while the
    migration runs must not hold it back (the task would run on, unwatched)."""
    clock = ShiftedClock()
    overrides = Overrides(sweeper=False, rollouts=FAST_ROLLOUTS, clock=clock)
    async with aws_sandbox(
        redis_url, aws_world, overrides, task_seconds=1.0, before_deploy={"api": "migrate"}
    ) as bot:
        assert bot.tasks is not None
        bot.tasks.hanging.add(MIGRATE)
        await bot.slash("deploy api production v1.3.0", user="alice")
        await bot.settle()
        card = newest_card(bot)
        await bot.click(card, button(card, "Approve"), user="bob")
        await asyncio.sleep(1.0)  # the migration is running
        await bot.slash('lock api production "hold everything"', user="carol")
        clock.offset = timedelta(minutes=15, seconds=1)  # past the task's 15 min timeout
        await bot.settle(limit=20)
        request = await latest_deploy(bot)
        assert request.state is State.FAILED  # type: ignore[attr-defined]
        assert "migrate timed out" in request.outcome  # type: ignore[attr-defined]
        (task,) = bot_tasks(bot)
        assert task["desiredStatus"] == "STOPPED"
        assert task["stoppedReason"].startswith("dhanam: timed out")
        assert running_revision(bot) == "dhanam-api:3"
