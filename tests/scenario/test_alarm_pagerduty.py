"""An alarm whose own PagerDuty incident is open: the PagerDuty webhook links the two, the
alarm's message offers Acknowledge, and the click acknowledges it through the REST API."""

from __future__ import annotations

import aiohttp

from sandbox.world import SANDBOX_PD_WEBHOOK_SECRET, buttons_of
from tests.scenario.alarm_support import (
    FAST,
    T0,
    alarm_world,
    deliver,
    notification,
    text_of,
    top_level,
)

ALARM = "dhanam-api-high-error-rate"


async def test_acknowledge_an_alarms_pagerduty_incident_from_its_message(redis_url: str) -> None:
    async with alarm_world(redis_url, FAST) as world:
        assert (await deliver(world, notification(world, ALARM, "ALARM", T0))).status == 200
        await world.settle_alarms()
        root = top_level(world, "C0DEPLOYS")[0]
        assert "Acknowledge" not in [b.label for b in buttons_of(root.blocks or [])]

        # CloudWatch's own PagerDuty integration opens an incident for the alarm…
        title = f'ALARM: "{ALARM}" in US East (N. Virginia)'
        event = {
            "routing_key": "c" * 32,
            "event_action": "trigger",
            "payload": {"summary": title, "source": "cloudwatch", "severity": "error"},
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(world.pagerduty.url + "/v2/enqueue", json=event) as resp,
        ):
            assert resp.status == 202
        incident = next(i for i in world.pagerduty.incidents.values() if i.title == title)
        # …and PagerDuty tells the bot (v3 webhook, signed).
        status = await world.pagerduty.send_webhook(
            world.bot_url + "/webhooks/pagerduty",
            "incident.triggered",
            incident.id,
            SANDBOX_PD_WEBHOOK_SECRET,
        )
        assert status < 300
        await world.settle_alarms()
        root = next(m for m in world.slack.messages("C0DEPLOYS") if m.ts == root.ts).snapshot()
        assert "PagerDuty: triggered" in text_of(root)
        acknowledge = next(b for b in buttons_of(root.blocks or []) if b.label == "Acknowledge")

        await world.click(root, acknowledge, user="bob")
        await world.settle()
        await world.settle_alarms()
        assert world.pagerduty.incidents[incident.id].status == "acknowledged"
        assert "Acknowledged dhanam-api-high-error-rate" in world.slack.ephemerals("U0BOB")[-1].text
        root = next(m for m in world.slack.messages("C0DEPLOYS") if m.ts == root.ts)
        assert "PagerDuty: acknowledged by <@U0BOB>" in text_of(root)
        assert "Acknowledge" not in [b.label for b in buttons_of(root.blocks or [])]


async def test_a_pagerduty_incident_that_names_no_known_alarm_links_nothing(redis_url: str) -> None:
    async with alarm_world(redis_url, FAST) as world:
        event = {
            "routing_key": "c" * 32,
            "event_action": "trigger",
            "payload": {"summary": "Disk full on bastion", "source": "x", "severity": "error"},
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(world.pagerduty.url + "/v2/enqueue", json=event) as resp,
        ):
            assert resp.status == 202
        incident = next(iter(world.pagerduty.incidents.values()))
        status = await world.pagerduty.send_webhook(
            world.bot_url + "/webhooks/pagerduty",
            "incident.triggered",
            incident.id,
            SANDBOX_PD_WEBHOOK_SECRET,
        )
        assert status < 300
        await world.settle_alarms()
        assert top_level(world, "C0DEPLOYS") == []
