"""Scenario: alarm storms — pacing per channel, coalescing, digests, 429s from Slack."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from commands.alarms.store import AlarmSettings
from tests.scenario.alarm_support import T0, alarm_world, deliver, notification, text_of, top_level

API_ALARM = "dhanam-api-high-error-rate"
PACED = AlarmSettings(writes_per_second=1.0)


async def test_flapping_collapses_to_the_latest_state_at_one_write_per_second(
    redis_url: str,
) -> None:
    async with alarm_world(redis_url, PACED) as world:
        await deliver(world, notification(world, API_ALARM, "ALARM", T0))
        await world.settle_alarms()
        states = ["OK", "ALARM"] * 5 + ["OK"]  # 11 transitions in a burst
        for i, state in enumerate(states, start=1):
            old = "ALARM" if state == "OK" else "OK"
            body = notification(world, API_ALARM, state, T0 + timedelta(seconds=60 * i), old)
            await deliver(world, body)
        await world.settle_alarms()
        assert world.slack.max_writes_in_window("C0DEPLOYS", 1.0) == 1
        roots = top_level(world, "C0DEPLOYS")
        assert len(roots) == 1
        assert "*OK*" in text_of(roots[0])
        replies = [m for m in world.slack.thread("C0DEPLOYS", roots[0].ts) if m.is_reply]
        assert 1 <= len(replies) <= 3  # coalesced: not one per transition
        assert "OK" in replies[-1].text


async def test_many_alarms_at_once_become_one_digest_edited_as_they_change(
    redis_url: str,
) -> None:
    settings = AlarmSettings(writes_per_second=1.0, storm_threshold=5)
    async with alarm_world(redis_url, settings) as world:
        names = [f"dhanam-storm-{i:02d}" for i in range(12)]
        bodies = [notification(world, n, "ALARM", T0) for n in names]
        await asyncio.gather(*(deliver(world, b) for b in bodies))
        # Half of them recover; the deliveries arrive in random order, older ones late.
        later = [
            notification(world, n, "OK", T0 + timedelta(seconds=120), "ALARM") for n in names[:6]
        ]
        random.Random(7).shuffle(later)
        await asyncio.gather(*(deliver(world, b) for b in later))
        await world.settle_alarms()
        roots = top_level(world, "C0ALERTS")
        assert len(roots) <= 3, [r.text for r in roots]
        digest = next(r for r in roots if "Alarm storm" in r.text)
        shown = text_of(digest)
        for name in names[:6]:
            assert f"*{name}* — OK" in shown or name in "".join(text_of(r) for r in roots)
        for name in names[6:]:
            assert f"*{name}* — ALARM" in shown or name in "".join(text_of(r) for r in roots)
        assert world.slack.max_writes_in_window("C0ALERTS", 1.0) == 1


async def test_slack_429s_are_honoured_and_nothing_is_lost(redis_url: str) -> None:
    async with alarm_world(redis_url, PACED) as world:
        world.slack.inject(429, method="chat.postMessage", count=2, retry_after=1)
        await deliver(world, notification(world, API_ALARM, "ALARM", T0))
        await world.settle_alarms()
        assert len(top_level(world, "C0DEPLOYS")) == 1
        world.slack.inject(429, method="chat.update", count=5, retry_after=1)  # past the SDK's 3
        ok = notification(world, API_ALARM, "OK", T0 + timedelta(seconds=90), "ALARM")
        await deliver(world, ok)
        await world.settle_alarms()
        roots = top_level(world, "C0DEPLOYS")
        assert len(roots) == 1
        assert "*OK*" in text_of(roots[0])
        assert "fired for 1 min 30 s" in text_of(roots[0])
        limited = [c for c in world.slack.calls if c.status == 429]
        assert len(limited) == 7
        assert world.slack.max_writes_in_window("C0DEPLOYS", 1.0) == 1
