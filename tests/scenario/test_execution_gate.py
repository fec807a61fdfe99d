"""Scenario: what was true at request time is checked again just before AWS changes (issue 11).

Signed requests through the real app, AWS on moto, the Slack emulator: a lock taken while a
request waits stops it; a freeze that opens meanwhile stops it (break-glass passes); an
approver who left the approvers' group no longer counts; a card Slack refuses ends the request
so that "Nothing was changed" stays true; one unreadable user group blocks nobody listed by ID.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from approvals.flow import SWEEP_EVERY
from approvals.models import State
from approvals.store import request_key
from bot.wiring import Overrides
from core.clock import ManualClock
from core.errors import StoreUnavailableError
from sandbox.aws_world import DhanamWorld
from sandbox.world import EXAMPLE_CONFIG, SandboxWorld, buttons_of
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox


def ecs(world: SandboxWorld) -> Any:
    return boto3.client("ecs", region_name="us-east-1", endpoint_url=world.aws_endpoint_url)


def rds(world: SandboxWorld) -> Any:
    return boto3.client("rds", region_name="us-east-1", endpoint_url=world.aws_endpoint_url)


def task_definition(world: SandboxWorld, cluster: str, service: str) -> str:
    found = ecs(world).describe_services(cluster=cluster, services=[service])["services"][0]
    return str(found["taskDefinition"])


def revisions(world: SandboxWorld, family: str) -> list[str]:
    listed = ecs(world).list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    return sorted(str(arn) for arn in listed)


def newest_card(world: SandboxWorld, channel: str) -> Any:
    cards = [m for m in world.slack.messages(channel) if m.blocks and not m.is_reply]
    return cards[-1].snapshot()


def button(card: Any, label: str) -> Any:
    return next(b for b in buttons_of(card.blocks) if b.label == label)


async def stored(world: SandboxWorld, channel: str) -> Any:
    card = newest_card(world, channel)
    request_id = next(b.value for b in buttons_of(card.blocks) if b.label == "Approve")
    request = await world.flow().store.get(request_id)
    assert request is not None
    return request


def assert_said_once(message: Any, sentence: str) -> None:
    """Once in what Slack shows (the blocks), once in the notification text."""
    assert str(message.blocks).lower().count(sentence) == 1, message.blocks
    assert message.text.lower().count(sentence) == 1, message.text


def config_with(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    assert old in text
    path = tmp_path / "dhanam.toml"
    path.write_text(text.replace(old, new, 1))
    return path


async def test_a_lock_taken_while_the_request_waits_stops_it(aws_bot: SandboxWorld) -> None:
    """The first reproduction: deploy web production; carol locks web production; bob
    approves: nothing is registered, update-service is not called, everyone is told why."""
    before = task_definition(aws_bot, "dhanam-production", "dhanam-web")
    family_before = revisions(aws_bot, "dhanam-web")
    await aws_bot.slash("deploy web production v1.1.0", user="alice")
    await aws_bot.settle()
    card = newest_card(aws_bot, "C0OPS")
    assert "Approve" in [b.label for b in buttons_of(card.blocks)]

    locked = await aws_bot.slash('lock web production "db migration running"', user="carol")
    assert locked.status == 200
    await aws_bot.settle()

    await aws_bot.click(card, button(card, "Approve"), user="bob")
    await aws_bot.settle()

    assert task_definition(aws_bot, "dhanam-production", "dhanam-web") == before
    assert revisions(aws_bot, "dhanam-web") == family_before, "a revision was registered"
    request = await aws_bot.flow().store.get(button(card, "Approve").value)
    assert request is not None
    assert request.state is State.FAILED
    assert request.outcome is not None
    assert "Not executed" in request.outcome
    assert "db migration running" in request.outcome
    assert request.outcome.count("Nothing was changed") == 1
    shown = str(newest_card(aws_bot, "C0OPS").blocks)
    assert "db migration running" in shown
    told = aws_bot.slack.ephemerals("U0BOB")[-1].text
    assert "db migration running" in told
    assert "Nothing was changed" in told
    audit = await aws_bot.flow().store.recent_audit(5)
    blocked = [e for e in audit if e["event"] == "blocked"]
    assert blocked, audit
    assert blocked[0]["note"].startswith("no_lock_or_freeze:")


async def test_a_break_glass_request_passes_a_lock_taken_meanwhile(aws_bot: SandboxWorld) -> None:
    before = task_definition(aws_bot, "dhanam-production", "dhanam-web")
    await aws_bot.slash("deploy web production v1.1.0 --break-glass", user="alice")
    await aws_bot.settle()
    card = newest_card(aws_bot, "C0OPS")
    await aws_bot.slash('lock web production "db migration running"', user="carol")
    await aws_bot.settle()
    await aws_bot.click(card, button(card, "Approve"), user="bob")
    await aws_bot.click(card, button(card, "Approve"), user="carol")
    await aws_bot.settle()
    assert task_definition(aws_bot, "dhanam-production", "dhanam-web") != before


@pytest.fixture
async def frozen_soon(
    redis_url: str, aws_world: DhanamWorld
) -> AsyncIterator[tuple[SandboxWorld, ManualClock]]:
    """The example config freezes production from 2026-12-24T00:00Z; the clock starts a
    minute before."""
    clock = ManualClock(datetime(2026, 12, 23, 23, 59, tzinfo=UTC))
    overrides = Overrides(clock=clock, sweeper=False, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides) as sandbox:
        yield sandbox, clock


async def test_a_freeze_that_opens_while_the_request_waits_stops_it(
    frozen_soon: tuple[SandboxWorld, ManualClock],
) -> None:
    world, clock = frozen_soon
    before = task_definition(world, "dhanam-production", "dhanam-api")
    await world.slash("deploy api production v1.3.0", user="alice")
    await world.settle()
    card = newest_card(world, "C0DEPLOYS")
    clock.advance(120)  # the holiday freeze has begun
    await world.click(card, button(card, "Approve"), user="bob")
    await world.settle()
    assert task_definition(world, "dhanam-production", "dhanam-api") == before
    request = await world.flow().store.get(button(card, "Approve").value)
    assert request is not None
    assert request.state is State.FAILED
    assert "Holiday freeze" in (request.outcome or "")


async def test_an_approver_removed_from_the_group_no_longer_counts(
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> None:
    """db restore needs two approvers; bob approves as a member of S0SRE, then leaves the
    group; carol's approval completes the count but the gate counts only carol."""
    path = config_with(
        tmp_path,
        'approvers = ["U0BOB", "U0CAROL", "S0SRE"]',
        'approvers = ["U0CAROL", "S0SRE"]',
    )
    overrides = Overrides(sweeper=False, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides, config_path=path) as world:
        instances = {
            d["DBInstanceIdentifier"] for d in rds(world).describe_db_instances()["DBInstances"]
        }
        await world.slash("db restore production --to latest", user="alice")
        await world.settle()
        card = newest_card(world, "C0OPS")
        await world.click(card, button(card, "Approve"), user="bob")
        await world.settle()
        request = await world.flow().store.get(button(card, "Approve").value)
        assert request is not None
        assert request.approvers == ["U0BOB"]
        world.slack.world.usergroups["S0SRE"] = ["U0CAROL"]  # bob leaves the on-call group
        await world.click(card, button(card, "Approve"), user="carol")
        await world.settle()
        after = {
            d["DBInstanceIdentifier"] for d in rds(world).describe_db_instances()["DBInstances"]
        }
        assert after == instances, "a restore was started"
        request = await world.flow().store.get(request.id)
        assert request is not None
        assert request.state is State.FAILED
        assert "<@U0BOB> is no longer an approver" in (request.outcome or "")
        assert "no longer an approver" in world.slack.ephemerals("U0CAROL")[-1].text


async def test_an_unreadable_group_blocks_nobody_listed_by_id(
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> None:
    path = config_with(
        tmp_path,
        'approvers = ["U0BOB", "U0CAROL", "S0SRE"]',
        'approvers = ["S0GONE", "U0BOB", "U0CAROL"]',
    )
    overrides = Overrides(sweeper=False, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides, config_path=path) as world:
        before = task_definition(world, "dhanam-production", "dhanam-api")
        await world.slash("deploy api production v1.3.0", user="alice")
        await world.settle()
        card = newest_card(world, "C0DEPLOYS")
        await world.click(card, button(card, "Approve"), user="dave")
        await world.settle()
        assert "not an approver" in world.slack.ephemerals("U0DAVE")[-1].text
        await world.click(card, button(card, "Approve"), user="bob")
        await world.settle()
        assert task_definition(world, "dhanam-production", "dhanam-api") != before


async def test_staging_card_refused_by_slack_runs_nothing(
    redis_url: str, aws_world: DhanamWorld
) -> None:
    """The third reproduction: staging needs no approval; chat.postMessage answers
    channel_not_found. The reply says why, once "Nothing was changed", and nothing changes
    through three sweeper intervals."""
    overrides = Overrides(sweeper=True, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides) as world:
        before = task_definition(world, "dhanam-staging", "dhanam-web")
        family_before = revisions(world, "dhanam-web")
        reply = await world.slash("deploy web staging v1.1.0", user="alice", channel="C0GONE")
        assert reply.status == 200
        await world.settle()
        told = world.slack.ephemerals("U0ALICE")[-1]
        assert "channel_not_found" in told.text
        assert_said_once(told, "nothing was changed")
        await asyncio.sleep(SWEEP_EVERY * 3 + 0.5)
        await world.settle()
        assert task_definition(world, "dhanam-staging", "dhanam-web") == before
        assert revisions(world, "dhanam-web") == family_before
        audit = await world.flow().store.recent_audit(10)
        cancelled = [e for e in audit if e["event"] == "cancelled"]
        assert cancelled, audit
        request = await world.flow().store.get(cancelled[0]["request_id"])
        assert request is not None
        assert request.state is State.CANCELLED
        assert "channel_not_found" in (request.outcome or "")


async def test_card_not_recorded_closes_the_card_and_runs_nothing(
    redis_url: str, aws_world: DhanamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card is posted, then recording it fails (Redis went away for that moment): the
    card loses its buttons, the reply says nothing was changed, and nothing runs later."""
    overrides = Overrides(sweeper=True, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides) as world:
        store = world.flow().store

        async def refuse(*_args: object) -> object:
            raise StoreUnavailableError("ConnectionError: injected")

        monkeypatch.setattr(store, "set_card", refuse)
        before = task_definition(world, "dhanam-staging", "dhanam-web")
        await world.slash("deploy web staging v1.1.0", user="alice")
        await world.settle()
        told = world.slack.ephemerals("U0ALICE")[-1]
        assert_said_once(told, "nothing was changed")
        card = newest_card(world, "C0OPS")
        assert buttons_of(card.blocks) == [], "the card still has buttons"
        await asyncio.sleep(SWEEP_EVERY * 3 + 0.5)
        await world.settle()
        assert task_definition(world, "dhanam-staging", "dhanam-web") == before


async def lose_the_claim(world: SandboxWorld, request_id: str) -> None:
    """What a Redis failover with an unreplicated write leaves: the request back at approved,
    its claim and outcome gone, while AWS kept the change."""
    redis = world.flow().store._redis  # the test plays the failover
    await redis.hset(request_key(request_id), mapping={"state": "approved", "outcome": ""})
    await redis.hdel(request_key(request_id), "lease_token", "lease_until")


@pytest.mark.parametrize(
    ("command", "family", "said"),
    [
        ("deploy web production v1.1.0", "dhanam-web", "already on dhanam-web:4"),
        ("rollback web production", "dhanam-web", "already"),
        ("scale web production --max 7", "dhanam-web", "already max 7"),
    ],
)
async def test_a_replay_after_a_lost_claim_changes_nothing_and_says_so(
    aws_bot: SandboxWorld, command: str, family: str, said: str
) -> None:
    await aws_bot.slash(command, user="alice")
    await aws_bot.settle()
    card = newest_card(aws_bot, "C0OPS")
    await aws_bot.click(card, button(card, "Approve"), user="bob")
    await aws_bot.settle()
    request_id = button(card, "Approve").value
    first = await aws_bot.flow().store.get(request_id)
    assert first is not None
    assert first.state is State.SUCCEEDED, first.outcome
    running = task_definition(aws_bot, "dhanam-production", "dhanam-web")
    family_after = revisions(aws_bot, family)

    await lose_the_claim(aws_bot, request_id)
    await aws_bot.flow().execute(request_id)
    await aws_bot.flow().drain()
    replayed = await aws_bot.flow().store.get(request_id)
    assert replayed is not None
    assert replayed.state is State.SUCCEEDED, replayed.outcome
    assert said in (replayed.outcome or "")
    assert "nothing was changed" not in (replayed.outcome or "").lower()
    assert task_definition(aws_bot, "dhanam-production", "dhanam-web") == running
    assert revisions(aws_bot, family) == family_after


@pytest.fixture
async def manual_bot(
    redis_url: str, aws_world: DhanamWorld
) -> AsyncIterator[tuple[SandboxWorld, ManualClock]]:
    clock = ManualClock()
    overrides = Overrides(clock=clock, sweeper=False, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(redis_url, aws_world, overrides) as sandbox:
        yield sandbox, clock


async def test_marked_in_doubt_mid_deploy_the_service_is_never_updated(
    manual_bot: tuple[SandboxWorld, ManualClock],
) -> None:
    """In doubt means never: the deploy's replica stalls inside RegisterTaskDefinition past
    its lease, the sweeper marks the request in doubt; when the call returns, the checkpoint
    before UpdateService finds the claim gone and the service is not touched."""
    world, clock = manual_bot
    before = task_definition(world, "dhanam-production", "dhanam-api")
    ecs_client = world.flow().runtime.aws.clients.client("ecs", "us-east-1")
    entered, release = threading.Event(), threading.Event()

    def stall(**_: Any) -> None:
        entered.set()
        release.wait(20)

    ecs_client.meta.events.register(
        "before-call.ecs.RegisterTaskDefinition", stall, unique_id="stall"
    )
    try:
        await world.slash("deploy api production v1.3.0", user="alice")
        await world.settle()
        card = newest_card(world, "C0DEPLOYS")
        request_id = button(card, "Approve").value
        await world.click(card, button(card, "Approve"), user="bob")
        assert await asyncio.to_thread(entered.wait, 20)
        clock.advance(31)  # the lease lapses while the call hangs
        await world.flow().sweep_once()
        stored = await world.flow().store.get(request_id)
        assert stored is not None
        assert stored.state is State.IN_DOUBT
        release.set()
        await world.flow().drain()
        await world.settle()
    finally:
        release.set()
        ecs_client.meta.events.unregister(
            "before-call.ecs.RegisterTaskDefinition", unique_id="stall"
        )
    assert task_definition(world, "dhanam-production", "dhanam-api") == before
    stored = await world.flow().store.get(request_id)
    assert stored is not None
    assert stored.state is State.IN_DOUBT
    late = await world.flow().store._redis.hget(request_key(request_id), "late_outcome")
    assert late is not None
    assert "Stopped before UpdateService" in late
    shown = str(newest_card(world, "C0DEPLOYS").blocks)
    assert "nothing was changed" not in shown.lower()
