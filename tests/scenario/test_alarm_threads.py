"""Scenario: CloudWatch alarms signed as SNS does, POSTed to the running bot, shown in Slack."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from bot.app import DEPS
from commands.alarms.store import AlarmSettings
from commands.ids import AlarmActionId
from integrations.deploy_history import DeployHistory, DeployRecord
from sandbox.world import buttons_of
from tests.scenario.alarm_support import (
    T0,
    alarm_world,
    deliver,
    fire,
    notification,
    text_of,
    top_level,
)

API_ALARM = "dhanam-api-high-error-rate"


async def test_first_alarm_posts_one_root_then_ok_edits_it_and_replies(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        reply = await fire(world, API_ALARM, "ALARM")
        assert reply.status == 200, reply.body
        assert reply.body == {"status": "accepted", "alarm": API_ALARM}
        await world.settle_alarms()
        roots = top_level(world, "C0DEPLOYS")
        assert len(roots) == 1
        root = roots[0]
        text = text_of(root)
        assert API_ALARM in text
        assert "ALARM" in text
        assert "HTTPCode_Target_5XX_Count Sum > 5 for 2 × 5 min" in text  # noqa: RUF001
        # Slack's date token, as on every other card, with the UTC fallback.
        assert "Since:* <!date^1795687200^{time} {date_short}|10:00 UTC 26 Nov>" in text
        console = (
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
            f"#alarmsV2:alarm/{API_ALARM}"
        )
        assert console in text
        labels = [b.label for b in buttons_of(root.blocks or [])]
        assert labels == ["Declare incident"]  # no deploy lately: no Roll back
        declare = buttons_of(root.blocks or [])[0]
        assert declare.action_id == "alarm_declare_incident"
        assert json.loads(declare.value) == {
            "title": f"api: {API_ALARM} in ALARM",
            "severity": "sev2",
            "alarm": API_ALARM,
        }

        await fire(world, API_ALARM, "OK", seconds=302, old="ALARM")
        await world.settle_alarms()
        assert len(top_level(world, "C0DEPLOYS")) == 1  # never a second root
        edited = top_level(world, "C0DEPLOYS")[0]
        assert edited.edited >= 1
        assert "fired for 5 min 2 s" in text_of(edited)
        assert buttons_of(edited.blocks or []) == []
        thread = [m for m in world.slack.thread("C0DEPLOYS", root.ts) if m.is_reply]
        assert len(thread) == 1
        assert "ALARM → *OK*" in thread[0].text
        assert "fired for 5 min 2 s" in thread[0].text

        await fire(world, API_ALARM, "ALARM", seconds=600)  # flapping: same thread
        await world.settle_alarms()
        assert len(top_level(world, "C0DEPLOYS")) == 1
        assert len([m for m in world.slack.thread("C0DEPLOYS", root.ts) if m.is_reply]) == 2


async def test_an_alarm_no_service_lists_goes_to_the_alerts_channel(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        await fire(world, "dhanam-rds-cpu", "ALARM")
        await world.settle_alarms()
        assert len(top_level(world, "C0ALERTS")) == 1
        assert top_level(world, "C0DEPLOYS") == []


async def test_an_older_state_that_arrives_late_is_never_shown(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        first = notification(world, API_ALARM, "ALARM", T0)
        late = notification(world, API_ALARM, "ALARM", T0 + timedelta(seconds=200), old="OK")
        ok = notification(world, API_ALARM, "OK", T0 + timedelta(seconds=300), old="ALARM")
        await deliver(world, first)
        await deliver(world, ok)
        reply = await deliver(world, late)
        assert reply.body["status"] == "stale"
        await world.settle_alarms()
        root = top_level(world, "C0DEPLOYS")[0]
        assert "*OK*" in text_of(root)
        record = await world.app[DEPS].alarm_store.get(API_ALARM)
        assert record is not None
        assert record.shown_state == "OK"


async def test_the_same_message_id_is_processed_once(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        body = notification(world, API_ALARM, "ALARM", T0)
        replies = await asyncio.gather(*(deliver(world, body) for _ in range(5)))
        statuses = sorted(r.body["status"] for r in replies)
        assert statuses == ["accepted", "duplicate", "duplicate", "duplicate", "duplicate"]
        await world.settle_alarms()
        assert len(top_level(world, "C0DEPLOYS")) == 1
        assert world.slack.calls_to("chat.postMessage")[0].ok


async def test_two_replicas_post_one_root(redis_url: str) -> None:
    async with alarm_world(redis_url, replicas=2) as world:
        bodies = [
            notification(world, API_ALARM, "ALARM", T0),
            notification(world, API_ALARM, "OK", T0 + timedelta(seconds=60), old="ALARM"),
            notification(world, API_ALARM, "ALARM", T0 + timedelta(seconds=120)),
        ]
        await asyncio.gather(*(deliver(world, b, replica=i % 2) for i, b in enumerate(bodies)))
        await world.settle_alarms()
        roots = top_level(world, "C0DEPLOYS")
        assert len(roots) == 1
        # Concurrent deliveries race: if the OK is processed after the 10:02 ALARM it is
        # stale and dropped, and the alarm has been in ALARM since 10:00 as far as the bot saw.
        shown = text_of(roots[0])
        assert "*ALARM*" in shown
        assert "Since:* <!date^1795687320^" in shown or "Since:* <!date^1795687200^" in shown


async def test_alarm_soon_after_a_deploy_offers_roll_back(redis_url: str) -> None:
    async with alarm_world(redis_url) as world:
        deps = world.app[DEPS]
        await DeployHistory(deps.redis, deps.clock).record(
            DeployRecord(
                service="api",
                env="production",
                previous_task_definition="arn:aws:ecs:us-east-1:1:task-definition/dhanam-api:3",
                new_task_definition="arn:aws:ecs:us-east-1:1:task-definition/dhanam-api:4",
                previous_image="dhanam-api:v1.2.0",
                new_image="dhanam-api:v1.3.0",
                at=datetime.now(UTC) - timedelta(minutes=2),
            )
        )
        await fire(world, API_ALARM, "ALARM")
        await world.settle_alarms()
        root = top_level(world, "C0DEPLOYS")[0]
        buttons = buttons_of(root.blocks or [])
        assert [b.label for b in buttons] == ["Roll back api in production", "Declare incident"]
        rollback = buttons[0]
        assert rollback.action_id == AlarmActionId.ROLLBACK
        assert json.loads(rollback.value) == {
            "service": "api",
            "env": "production",
            "to": "dhanam-api:3",
            "alarm": API_ALARM,
        }


async def test_a_firing_alarm_gets_a_reminder_per_interval_in_its_thread(redis_url: str) -> None:
    settings = AlarmSettings(writes_per_second=50.0, reminder=timedelta(seconds=1))
    async with alarm_world(redis_url, settings) as world:
        await fire(world, API_ALARM, "ALARM")
        await world.settle_alarms()
        root = top_level(world, "C0DEPLOYS")[0]
        await asyncio.sleep(2.6)
        await world.settle_alarms()
        reminders = [
            m for m in world.slack.thread("C0DEPLOYS", root.ts) if "still in ALARM" in m.text
        ]
        assert 2 <= len(reminders) <= 3
        await fire(world, API_ALARM, "OK", seconds=60, old="ALARM")
        await world.settle_alarms()
        count = len(world.slack.thread("C0DEPLOYS", root.ts))
        await asyncio.sleep(1.5)
        await world.settle_alarms()
        assert len(world.slack.thread("C0DEPLOYS", root.ts)) == count  # no reminder once OK
