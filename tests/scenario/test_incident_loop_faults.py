"""Scenario: the background loops under Slack faults — an archived channel, Slack 500s and
429s. The incident loop (PagerDuty retries and reminders) and the alarm reminders keep
ticking and reach their verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import DEPS, LOOPS
from bot.wiring import Overrides
from commands.alarms.store import AlarmSettings
from commands.incidents.pager import IncidentTimings
from core.clock import ManualClock
from core.settings import LogFormat
from sandbox.world import SandboxWorld
from tests.scenario.alarm_support import alarm_world, fire, top_level
from tests.scenario.incident_helpers import eventually, incident_channels, incident_of

FAST = IncidentTimings(
    tick=timedelta(seconds=0.1),
    retry_base=timedelta(seconds=0.3),
    retry_max=timedelta(seconds=0.5),
    lease=timedelta(seconds=2),
)
INTERVAL = 1800  # the default update reminder: 30 minutes


@pytest.fixture
async def clocked(redis_url: str) -> AsyncIterator[tuple[SandboxWorld, ManualClock]]:
    clock = ManualClock()
    sandbox = SandboxWorld(
        redis_url=redis_url,
        aws=False,
        log_format=LogFormat.JSON,
        overrides=Overrides(clock=clock, incidents=FAST),
    )
    await sandbox.start()
    try:
        yield sandbox, clock
    finally:
        await sandbox.stop()


def nudges(world: SandboxWorld, channel: str) -> int:
    return sum("no update for" in m.text for m in world.slack.messages(channel))


def refused(world: SandboxWorld, channel: str) -> int:
    return sum(
        1
        for call in world.slack.calls_to("chat.postMessage")
        if call.params.get("channel") == channel
        and call.response is not None
        and call.response.get("error") == "is_archived"
    )


async def test_reminders_survive_an_archived_incident_channel(
    clocked: tuple[SandboxWorld, ManualClock],
) -> None:
    world, clock = clocked
    await world.slash("incident declare sev2 Search degraded", user="alice")
    await world.settle()
    await world.slash("incident declare sev2 Checkout slow", user="bob")
    await world.settle()
    first, second = (c.id for c in incident_channels(world))
    world.slack.world.archive(first)

    clock.advance(INTERVAL + 10)
    await eventually(lambda: nudges(world, second) == 1)
    await eventually(lambda: refused(world, first) >= 1)  # the reminder was tried, refused
    assert nudges(world, first) == 0
    assert world.app[LOOPS].running("incidents.loop")

    # The loop keeps ticking past the refusal: the next interval nudges again, and the
    # archived incident is tried once per interval, not every tick.
    await world.settle(quiet=0.4)
    refusals = refused(world, first)
    clock.advance(INTERVAL + 10)
    await eventually(lambda: nudges(world, second) == 2)
    await world.settle(quiet=0.4)
    assert refused(world, first) == refusals + 1
    assert world.app[LOOPS].running("incidents.loop")


async def test_pagerduty_retries_reach_their_verdict_in_an_archived_channel(
    clocked: tuple[SandboxWorld, ManualClock],
) -> None:
    world, clock = clocked
    world.pagerduty.inject(500, path_prefix="/v2/enqueue", seconds=0.8)
    await world.slash("incident declare sev1 Database down", user="alice")
    await world.settle()
    [channel] = incident_channels(world)
    incident = await incident_of(world, channel.id)
    world.slack.world.archive(channel.id)
    assert world.pagerduty.incidents == {}

    # Retried in the background although every Slack write for it is now refused.
    for _ in range(40):
        clock.advance(1)
        if world.pagerduty.incidents:
            break
        await world.settle(quiet=0.2, limit=1)
    assert [i.dedup_key for i in world.pagerduty.incidents.values()] == [incident.id]
    await world.settle(quiet=0.4)
    timeline = await world.app[DEPS].incidents.store.timeline(incident.id)
    assert any("PagerDuty paged after" in e.text for e in timeline)
    assert world.app[LOOPS].running("incidents.loop")


@pytest.mark.parametrize(("status", "count"), [(500, 3), (429, 4)])
async def test_reminders_survive_slack_500s_and_rate_limits(
    clocked: tuple[SandboxWorld, ManualClock], status: int, count: int
) -> None:
    world, clock = clocked
    await world.slash("incident declare sev2 Search degraded", user="alice")
    await world.settle()
    [channel] = incident_channels(world)

    # Every attempt the client makes for the first nudge fails (its retries included).
    world.slack.inject(status, method="chat.postMessage", count=count, retry_after=0)
    clock.advance(INTERVAL + 10)
    await eventually(
        lambda: sum(c.status == status for c in world.slack.calls_to("chat.postMessage")) == count
    )
    await world.settle(quiet=0.4)
    assert nudges(world, channel.id) == 0
    assert world.app[LOOPS].running("incidents.loop")

    clock.advance(INTERVAL + 10)
    await eventually(lambda: nudges(world, channel.id) == 1)


ALARM = "dhanam-api-high-error-rate"


def still_in_alarm(world: SandboxWorld, root_ts: str) -> int:
    return sum("still in ALARM" in m.text for m in world.slack.thread("C0DEPLOYS", root_ts))


async def test_alarm_reminders_survive_slack_500s(redis_url: str) -> None:
    settings = AlarmSettings(writes_per_second=50.0, reminder=timedelta(seconds=1))
    async with alarm_world(redis_url, settings) as world:
        await fire(world, ALARM, "ALARM")
        await world.settle_alarms()
        root = top_level(world, "C0DEPLOYS")[0]
        world.slack.inject(500, method="chat.postMessage", count=6, retry_after=0)
        await eventually(
            lambda: still_in_alarm(world, root.ts) >= 2, within=20
        )  # outbox backoff after 500s: 1, 2, 4 s
        assert world.app[LOOPS].running("alarms.background")


async def test_alarm_reminders_to_an_archived_channel_are_dropped_not_retried_forever(
    redis_url: str,
) -> None:
    settings = AlarmSettings(writes_per_second=50.0, reminder=timedelta(seconds=1))
    async with alarm_world(redis_url, settings) as world:
        await fire(world, ALARM, "ALARM")
        await world.settle_alarms()
        world.slack.world.archive("C0DEPLOYS")

        # One refused write per reminder interval: each reminder is tried once and dropped,
        # and the loop goes on scheduling the next one.
        await eventually(lambda: refused(world, "C0DEPLOYS") >= 3, within=15)
        before = refused(world, "C0DEPLOYS")
        await asyncio.sleep(1.0)
        assert refused(world, "C0DEPLOYS") - before <= 2  # no retry storm
        assert world.app[LOOPS].running("alarms.background")
