"""Scenario: the message that shows an alarm is deleted in Slack, or lives in another channel.

Nothing is lost: a deleted root, reminder thread or digest makes the alarm's next write post a
new message with its current state; an alarm whose message is in a channel the config no longer
names is queued in that channel's outbox (every Redis key of the intake declared) until it goes
quiet, and its next new message goes where the config says now.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.app import DEPS
from commands.alarms.store import FIRING_KEY, AlarmSettings, Intake, alarm_key
from integrations.slack.outbox import ItemKind, OutboxItem, PacedSlack
from tests.scenario.alarm_support import T0, alarm_world, fire, text_of, top_level

API_ALARM = "dhanam-api-high-error-rate"  # listed by the api service: C0DEPLOYS


async def test_a_deleted_root_is_posted_anew_with_the_current_state(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        await fire(world, API_ALARM, "ALARM")
        await world.settle_alarms()
        [root] = top_level(world, "C0DEPLOYS")
        world.slack.world.delete_message(root)

        await fire(world, API_ALARM, "OK", seconds=302, old="ALARM")
        await world.settle_alarms()
        [again] = [m for m in top_level(world, "C0DEPLOYS") if not m.deleted]
        assert again.ts != root.ts
        assert "fired for 5 min 2 s" in text_of(again)  # the recovery, not silence
        stored = await world.app[DEPS].redis.hgetall(alarm_key(API_ALARM))
        assert stored["root_ts"] == again.ts
        assert stored["shown_state"] == "OK"

        await fire(world, API_ALARM, "ALARM", seconds=600)  # the new root tracks it from now
        await world.settle_alarms()
        assert [m.ts for m in top_level(world, "C0DEPLOYS") if not m.deleted] == [again.ts]
        assert any(m.is_reply for m in world.slack.thread("C0DEPLOYS", again.ts))


async def test_a_reminder_whose_thread_was_deleted_posts_the_alarm_anew(redis_url: str) -> None:
    settings = AlarmSettings(writes_per_second=50.0, reminder=timedelta(seconds=1))
    async with alarm_world(redis_url, settings) as world:
        await fire(world, API_ALARM, "ALARM")
        await world.settle_alarms()
        [root] = top_level(world, "C0DEPLOYS")
        world.slack.world.delete_message(root)
        for _ in range(60):
            await asyncio.sleep(0.1)
            live = [m for m in top_level(world, "C0DEPLOYS") if not m.deleted]
            if live:
                break
        await world.settle_alarms()
        [again] = [m for m in top_level(world, "C0DEPLOYS") if not m.deleted]
        assert "ALARM" in text_of(again)
        await asyncio.sleep(1.6)
        await world.settle_alarms()
        reminders = [
            m for m in world.slack.thread("C0DEPLOYS", again.ts) if "still in ALARM" in m.text
        ]
        assert reminders  # reminders go on, in the new message's thread


async def test_a_deleted_digest_is_closed_and_its_alarms_posted_anew(redis_url: str) -> None:
    settings = AlarmSettings(writes_per_second=50.0, storm_threshold=2)
    names = [f"dhanam-storm-{i}" for i in range(4)]  # listed by no service: C0ALERTS
    async with alarm_world(redis_url, settings) as world:
        for name in names:
            await fire(world, name, "ALARM")
        await world.settle_alarms()
        digests = [m for m in top_level(world, "C0ALERTS") if "Alarm storm" in m.text]
        assert len(digests) == 1
        world.slack.world.delete_message(digests[0])

        await fire(world, names[-1], "OK", seconds=120, old="ALARM")  # its digest is edited
        await world.settle_alarms()
        deps = world.app[DEPS]
        assert await deps.alarm_store.open_digest("C0ALERTS") != digests[0].ts
        live = [m for m in top_level(world, "C0ALERTS") if not m.deleted]
        shown = "\n".join(text_of(m) for m in live)
        for name in names:
            assert name in shown  # every alarm of the deleted digest is on a message again
            record = await deps.alarm_store.get(name)
            assert record is not None
            assert record.root_ts != digests[0].ts
            assert not record.pending


async def test_a_new_message_goes_where_the_config_says_now(redis_url: str) -> None:
    """The alarm's last message is in C0ALERTS (an older config's channel); the config now
    names C0DEPLOYS. Its next firing, long after it went OK, is queued in C0ALERTS's outbox
    (where its message was) and posted as a new message in C0DEPLOYS."""
    settings = AlarmSettings(writes_per_second=50.0, new_thread_after=timedelta(seconds=60))
    async with alarm_world(redis_url, settings) as world:
        deps = world.app[DEPS]
        await fire(world, API_ALARM, "ALARM")
        await fire(world, API_ALARM, "OK", seconds=30, old="ALARM")
        await world.settle_alarms()
        [first] = top_level(world, "C0DEPLOYS")
        await deps.redis.hset(alarm_key(API_ALARM), "root_channel", "C0ALERTS")

        await fire(world, API_ALARM, "ALARM", seconds=150)
        await world.settle_alarms()
        roots = top_level(world, "C0DEPLOYS")
        assert roots[0].ts == first.ts
        assert len(roots) == 2  # a new message, in the configured channel
        assert "ALARM" in text_of(roots[1])
        assert top_level(world, "C0ALERTS") == []
        record = await deps.alarm_store.get(API_ALARM)
        assert record is not None
        assert (record.root_channel, record.root_ts) == ("C0DEPLOYS", roots[1].ts)


async def test_intake_declares_the_channel_it_queues_in(redis_url: str) -> None:
    """AlarmStore.intake in isolation: the outbox channel comes back as the one the script
    actually queued in, and the item is in that channel's list, not the configured one's."""
    async with alarm_world(redis_url) as world:
        deps = world.app[DEPS]
        await fire(world, API_ALARM, "ALARM")
        await world.settle_alarms()
        await deps.redis.hset(alarm_key(API_ALARM), "root_channel", "C0ELSEWHERE")
        deps.outbox._stopping = True  # nobody drains: look at the queues as the script left them
        reply = await fire(world, API_ALARM, "OK", seconds=30, old="ALARM")
        assert reply.status == 200
        assert [i.ref for i in await deps.outbox.pending("C0ELSEWHERE")] == [API_ALARM]
        assert await deps.outbox.pending("C0DEPLOYS") == []
        assert Intake.ELSEWHERE.value == 3


async def test_a_due_reminder_is_queued_and_rescheduled_in_one_step(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        deps = world.app[DEPS]
        await fire(world, API_ALARM, "ALARM")
        await world.settle_alarms()
        deps.outbox._stopping = True  # nobody drains: look at the queue as remind_once left it
        await deps.redis.zadd(FIRING_KEY, {API_ALARM: 0})  # due now

        assert await deps.alarms.remind_once(_lost) == []  # the lease is someone else's now
        assert await deps.outbox.pending("C0DEPLOYS") == []
        assert await deps.redis.zscore(FIRING_KEY, API_ALARM) == 0

        assert await deps.alarms.remind_once() == [API_ALARM]
        [item] = await deps.outbox.pending("C0DEPLOYS")
        assert (item.kind, item.ref) == (ItemKind.REMINDER, API_ALARM)
        next_due = await deps.redis.zscore(FIRING_KEY, API_ALARM)
        assert next_due is not None
        assert next_due > deps.alarm_store.now_ms() + 1000 * 1000  # 30 min on

        # An alarm that went OK meanwhile: the script clears its schedule, queues nothing.
        assert await deps.alarm_store.remind(
            API_ALARM,
            next_due=T0,
            channel="C0DEPLOYS",
            item=OutboxItem(ItemKind.REMINDER, API_ALARM),
            outbox=deps.outbox,
        )
        await deps.redis.hset(alarm_key(API_ALARM), "state", "OK")
        assert not await deps.alarm_store.remind(
            API_ALARM,
            next_due=T0,
            channel="C0DEPLOYS",
            item=OutboxItem(ItemKind.REMINDER, API_ALARM),
            outbox=deps.outbox,
        )
        assert await deps.redis.zscore(FIRING_KEY, API_ALARM) is None


async def _lost() -> bool:
    return False


async def test_an_old_digest_never_marks_an_alarm_that_moved_to_its_own_message(
    redis_url: str,
) -> None:
    """X was in digest D; it has its own message now. An edit of D (another member changed)
    must not render X nor mark its new state shown: that is X's own message's job."""
    settings = AlarmSettings(writes_per_second=50.0, storm_threshold=2)
    names = [f"dhanam-storm-{i}" for i in range(4)]
    async with alarm_world(redis_url, settings) as world:
        deps = world.app[DEPS]
        for name in names:
            await fire(world, name, "ALARM")
        await world.settle_alarms()
        [digest] = [m for m in top_level(world, "C0ALERTS") if "Alarm storm" in m.text]
        # Whichever alarm the digest holds (the first may have had its own message before the
        # storm began, depending on how fast the outbox wrote it).
        records = {name: await deps.alarm_store.get(name) for name in names}
        in_digest = [n for n, r in records.items() if r is not None and r.root_ts == digest.ts]
        assert in_digest
        moved = in_digest[0]
        record = records[moved]
        assert record is not None
        await deps.alarm_store.set_root(record, "C0ALERTS", "1700000999.000100", "alarm")
        deps.outbox._stopping = True  # nobody drains: run the digest edit by hand
        await fire(world, moved, "OK", seconds=60, old="ALARM")

        slack = PacedSlack(deps.outbox._client, 0.0, 0.0, _nothing)
        await deps.alarms.process("C0ALERTS", OutboxItem(ItemKind.DIGEST, digest.ts), slack)
        after = await deps.alarm_store.get(moved)
        assert after is not None
        assert after.pending  # still X's own message's to show
        edited = next(m for m in world.slack.messages("C0ALERTS") if m.ts == digest.ts)
        assert f"*{moved}* — OK" not in text_of(edited)


async def _nothing() -> None:
    return None
