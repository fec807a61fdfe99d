"""Scenario: alarm intake through signed SNS requests — one Redis round trip per notification,
retries after a 503 posted exactly once, first-seen recoveries, plain (non-alarm) notices, and
Slack refusals that no retry fixes dropped deliberately."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

from bot.app import DEPS
from commands.alarms.store import Intake
from integrations.cloudwatch_alarms import parse_alarm
from integrations.slack.outbox import ItemKind, OutboxItem
from sandbox.redis_server import RedisServer
from sandbox.slack_emulator_models import BOT_USER_ID
from sandbox.world import SandboxWorld
from tests.scenario.alarm_support import (
    T0,
    TOPIC,
    alarm_world,
    deliver,
    fire,
    notification,
    text_of,
    top_level,
)

UNLISTED = "dhanam-batch-queue-depth"
CONNECTION_SETUP = {"HELLO", "PING", "CLIENT", "AUTH", "SELECT"}  # listed by no service: C0ALERTS


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Redis round trips (socket writes) made by the current task, by first command."""
    seen: list[str] = []
    task = asyncio.current_task()
    send = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        if asyncio.current_task() is task:  # handshakes of a new pooled connection aside
            first = command[0] if isinstance(command, list) else command
            name = bytes(first).split(b"\r\n")[2].decode().upper()
            if name not in CONNECTION_SETUP:
                seen.append(name)
        await send(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", counting)
        yield seen


async def test_an_alarm_notification_costs_one_redis_round_trip(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alarm_world(redis_url) as world:
        deps = world.apps[0][DEPS]
        kicked: list[str] = []
        monkeypatch.setattr(deps.outbox, "kick", kicked.append)
        warm = notification(world, "dhanam-warm-up", "ALARM", T0)  # loads the script once
        await deps.alarms.receive(parse_alarm(warm["Message"]), warm["MessageId"])
        for state, old, at in (("ALARM", "OK", 0), ("OK", "ALARM", 60), ("ALARM", "OK", 120)):
            body = notification(world, UNLISTED, state, T0 + timedelta(seconds=at), old)
            alarm = parse_alarm(body["Message"])
            with round_trips(monkeypatch) as trips:
                assert await deps.alarms.receive(alarm, body["MessageId"]) is Intake.QUEUED
            assert trips == ["EVALSHA"], trips
        with round_trips(monkeypatch) as trips:  # SNS delivers it again: nothing more queued
            assert await deps.alarms.receive(alarm, body["MessageId"]) is Intake.DUPLICATE
        assert trips == ["EVALSHA"]
        assert kicked == ["C0ALERTS"] * 4
        pending = [i.ref for i in await deps.outbox.pending("C0ALERTS")]
        assert pending == ["dhanam-warm-up", UNLISTED]  # queued once: coalesced


async def test_a_delivery_retried_after_a_503_is_posted_exactly_once(
    redis_url: str, redis_server: RedisServer
) -> None:
    async with alarm_world(redis_url) as world:
        body = notification(world, UNLISTED, "ALARM", T0)
        redis_server.shutdown()  # an outage: same port and data when it is back
        failed = await deliver(world, body)
        assert failed.status == 503
        redis_server.restart()
        for _ in range(50):  # the restarted server replays its AOF first
            retry = await deliver(world, body)
            if retry.status != 503:
                break
            await asyncio.sleep(0.1)
        assert retry.body == {"status": "accepted", "alarm": UNLISTED}
        assert (await deliver(world, body)).body == {"status": "duplicate"}  # and again
        await world.settle_alarms()
        roots = top_level(world, "C0ALERTS")
        assert len(roots) == 1
        assert "*ALARM*" in text_of(roots[0])


async def test_alarm_to_ok_never_seen_firing_is_recovered_once_insufficient_data_stays_quiet(
    redis_url: str,
) -> None:
    async with alarm_world(redis_url) as world:
        assert (await fire(world, UNLISTED, "OK", 300, old="ALARM")).status == 200
        assert (await fire(world, "dhanam-quiet", "OK", 300, old="INSUFFICIENT_DATA")).status == 200
        await world.settle_alarms()
        roots = top_level(world, "C0ALERTS")
        assert [r.text for r in roots] == [f"Recovered: {UNLISTED}"]
        # A later ALARM the bot does see threads under that message as usual.
        await fire(world, UNLISTED, "ALARM", 600)
        await world.settle_alarms()
        roots = top_level(world, "C0ALERTS")
        assert len(roots) == 1
        assert "*ALARM*" in text_of(roots[0])


async def test_a_non_alarm_notification_is_posted_to_alerts_as_inert_clipped_text(
    redis_url: str,
) -> None:
    async with alarm_world(redis_url) as world:
        message = "Backup finished <!channel> <https://evil.example|click> " + "x" * 5000
        body = world.sns.notification(TOPIC, message, "Nightly <!here> backup")
        reply = await deliver(world, body)
        assert reply.status == 200
        assert reply.body == {"status": "accepted", "posted_as": "notice"}
        assert (await deliver(world, body)).body == {"status": "duplicate"}
        await world.settle_alarms()
        roots = top_level(world, "C0ALERTS")
        assert len(roots) == 1
        shown = json.dumps(roots[0].blocks) + roots[0].text
        assert "Nightly &lt;!here&gt; backup" in shown
        assert "&lt;!channel&gt;" in shown
        assert "<!" not in shown
        assert "<https" not in shown
        assert len(shown) < 4000  # clipped
        assert "\\u2026" in shown  # the ellipsis (json.dumps escapes it)


def _refuse(world: SandboxWorld, channel: str, error: str, count: int) -> list[str]:
    """Answer chat.postMessage to ``channel`` with ``error`` (``count`` times, or while the bot
    is not a member for not_in_channel), as real Slack does."""
    state = world.slack.world
    original = state.handlers["chat.postMessage"]
    refused: list[str] = []

    def handler(params: dict[str, Any]) -> dict[str, Any]:
        target = state.channels.get(str(params.get("channel")))
        if target is not None and target.id == channel:
            member = BOT_USER_ID in target.members
            if (error == "not_in_channel" and not member) or (
                error != "not_in_channel" and len(refused) < count
            ):
                refused.append(error)
                return {"ok": False, "error": error}
        return original(params)

    state.handlers["chat.postMessage"] = handler
    return refused


async def test_not_in_channel_joins_the_public_channel_once_and_posts(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        channel = world.slack.world.channels["C0ALERTS"]
        channel.members = [m for m in channel.members if m != BOT_USER_ID]
        refused = _refuse(world, "C0ALERTS", "not_in_channel", 1)
        await fire(world, UNLISTED, "ALARM")
        await world.settle_alarms()
        assert refused == ["not_in_channel"]
        assert len(world.slack.calls_to("conversations.join")) == 1
        assert len(top_level(world, "C0ALERTS")) == 1


@pytest.mark.parametrize("error", ["is_archived", "channel_not_found", "invalid_blocks"])
async def test_a_refusal_no_retry_fixes_is_dropped_once_and_the_next_write_goes_out(
    redis_url: str, error: str
) -> None:
    async with alarm_world(redis_url) as world:
        refused = _refuse(world, "C0ALERTS", error, 1)
        await fire(world, UNLISTED, "ALARM")
        await world.settle_alarms()
        assert refused == [error]  # tried once, not retried forever
        assert top_level(world, "C0ALERTS") == []
        deps = world.apps[0][DEPS]
        assert await deps.outbox.pending("C0ALERTS") == []
        assert await deps.redis.llen(deps.outbox.queue_keys("C0ALERTS")[2]) == 0
        await fire(world, "dhanam-other", "ALARM")
        await world.settle_alarms()
        assert len(top_level(world, "C0ALERTS")) == 1


async def test_shutdown_leaves_the_in_flight_item_for_the_next_owner(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        deps = world.apps[0][DEPS]
        queue, _, processing = deps.outbox.queue_keys("C0ALERTS")
        # The channel's next slot is 30 s away: the item is taken, then waits for its slot.
        await deps.redis.set(queue + ":last", int((time.time() + 30) * 1000), ex=60)
        await fire(world, UNLISTED, "ALARM")
        for _ in range(100):
            if await deps.redis.llen(processing):
                break
            await asyncio.sleep(0.02)
        await deps.outbox.stop(grace=0.2)
        assert top_level(world, "C0ALERTS") == []
        held = [OutboxItem.decode(r) for r in await deps.redis.lrange(processing, 0, -1)]
        assert held == [OutboxItem(ItemKind.ALARM, UNLISTED)]  # left, not dropped


async def test_shutdown_finishes_the_write_in_flight(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        deps = world.apps[0][DEPS]
        processing = deps.outbox.queue_keys("C0ALERTS")[2]
        await fire(world, UNLISTED, "ALARM")
        for _ in range(100):  # taken (a drain that has not taken it yet leaves it queued)
            if await deps.redis.llen(processing) or top_level(world, "C0ALERTS"):
                break
            await asyncio.sleep(0.005)
        await deps.outbox.stop()
        assert len(top_level(world, "C0ALERTS")) == 1
        assert await deps.redis.llen(processing) == 0


@pytest.mark.parametrize("error", ["internal_error", "service_unavailable", "ratelimited"])
async def test_a_transient_error_answered_with_200_is_retried_not_dropped(
    redis_url: str, error: str
) -> None:
    """Slack sometimes answers HTTP 200 with ok=false for a passing fault: the write is kept
    and goes out on a later try (it used to be dropped like a permanent refusal)."""
    async with alarm_world(redis_url) as world:
        refused = _refuse(world, "C0ALERTS", error, 2)
        await fire(world, UNLISTED, "ALARM")
        for _ in range(100):
            await world.settle_alarms()
            if top_level(world, "C0ALERTS"):
                break
            await asyncio.sleep(0.1)
        assert refused == [error, error]
        assert len(top_level(world, "C0ALERTS")) == 1


async def test_an_item_that_keeps_failing_is_dropped_and_never_blocks_its_channel(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown error every time (here a bug rendering one alarm): tried a bounded number of
    times, then dropped with an error log; the channel's other writes go out."""
    monkeypatch.setattr("integrations.slack.outbox.MAX_BACKOFF_SECONDS", 0)
    async with alarm_world(redis_url) as world:
        deps = world.apps[0][DEPS]
        original = deps.outbox.handlers[ItemKind.ALARM]

        async def process(channel: str, item: OutboxItem, slack: Any) -> None:
            if item.ref == UNLISTED:
                raise KeyError("a bug rendering this alarm")
            await original(channel, item, slack)

        monkeypatch.setitem(deps.outbox.handlers, ItemKind.ALARM, process)
        await fire(world, UNLISTED, "ALARM")
        await fire(world, "dhanam-other", "ALARM")
        for _ in range(100):
            await world.settle_alarms()
            if top_level(world, "C0ALERTS"):
                break
            await asyncio.sleep(0.1)
        assert len(top_level(world, "C0ALERTS")) == 1  # the other alarm went out
        for _ in range(100):
            if not await deps.redis.llen(deps.outbox.queue_keys("C0ALERTS")[2]):
                break
            await asyncio.sleep(0.1)
        assert await deps.outbox.pending("C0ALERTS") == []
