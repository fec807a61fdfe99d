"""Slack answers 429 (Retry-After) for 15 s and then 500 for 15 s while alarms keep arriving:
afterwards every alarm's message is there once, showing its latest state, with its thread in
order. Webhooks keep answering 200 throughout: state goes to Redis, Slack writes to the outbox."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

from tests.scenario.alarm_support import (
    FAST,
    T0,
    alarm_world,
    deliver,
    notification,
    text_of,
    top_level,
)

ALARMS = ["storm-a", "storm-b", "storm-c"]  # listed by no service: they go to C0ALERTS
OUTAGE = 15.0  # seconds of 429, then as many of 500


async def test_thirty_seconds_of_429_and_500_lose_nothing(redis_url: str) -> None:
    async with alarm_world(redis_url, FAST) as world:
        world.slack.inject(429, seconds=OUTAGE, retry_after=1)

        async def then_500() -> float:
            await asyncio.sleep(OUTAGE)
            world.slack.inject(500, seconds=OUTAGE)
            return time.monotonic() + OUTAGE  # the emulator's clock: when the 500s end

        second_half = asyncio.create_task(then_500())
        states = ["ALARM", "OK", "ALARM", "OK", "ALARM"]
        for step, state in enumerate(states):
            for name in ALARMS:
                previous = states[step - 1] if step else "OK"
                body = notification(world, name, state, T0 + timedelta(minutes=step), previous)
                reply = await deliver(world, body)
                assert reply.status == 200, reply
            await asyncio.sleep(OUTAGE * 2 / len(states))
        outage_end = await second_half
        # The alarms above took the whole outage (5 x 6 s): the 500s end now or have ended.
        # Wait for that end (not a fixed 16 s), then for every outbox drain to finish: a drain
        # keeps a refused item and retries it (backoff up to 8 s) until Slack takes it.
        await asyncio.sleep(max(0.0, outage_end - time.monotonic()) + 0.1)
        await world.settle_alarms()

        failed = [c for c in world.slack.calls if c.status in (429, 500)]
        assert {c.status for c in failed} == {429, 500}, "the outage really happened"
        roots = top_level(world, "C0ALERTS")
        for name in ALARMS:
            mine = [m for m in roots if name in text_of(m)]
            assert len(mine) == 1, f"{name}: {len(mine)} root messages"
            assert "*ALARM*" in text_of(mine[0]), text_of(mine[0])  # the latest state
            thread = world.slack.thread("C0ALERTS", mine[0].ts)[1:]
            assert [float(m.ts) for m in thread] == sorted(float(m.ts) for m in thread)
            shown = [s for m in thread for s in re.findall(r"\*(ALARM|OK)\*", text_of(m))]
            # Coalescing may skip intermediate states, never reorder them: no OK is shown
            # after the final ALARM, and the thread ends on the latest state when it says one.
            if shown:
                assert shown[-1] == "ALARM", shown
