"""Acknowledge on an alarm's PagerDuty incident is for on-call responders only (issue 11, 7b):
`[pagerduty] responders`, by default every production approver; user groups are expanded as
for approvals. Anyone else is told who may, and PagerDuty is not touched."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from sandbox.slack_emulator_models import EmuMessage
from sandbox.world import EXAMPLE_CONFIG, SANDBOX_PD_WEBHOOK_SECRET, SandboxWorld, buttons_of
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
PD_MAPPING = 'services = { PABC123 = "C0ONCALL" }'


async def alarm_with_incident(world: SandboxWorld) -> tuple[EmuMessage, str]:
    """The alarm fires, CloudWatch's PagerDuty integration opens its incident, the v3 webhook
    links them: the alarm's message offers Acknowledge. Returns that message and the incident."""
    assert (await deliver(world, notification(world, ALARM, "ALARM", T0))).status == 200
    await world.settle_alarms()
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
    status = await world.pagerduty.send_webhook(
        world.bot_url + "/webhooks/pagerduty",
        "incident.triggered",
        incident.id,
        SANDBOX_PD_WEBHOOK_SECRET,
    )
    assert status < 300
    await world.settle_alarms()
    root = top_level(world, "C0DEPLOYS")[0].snapshot()
    assert "Acknowledge" in [b.label for b in buttons_of(root.blocks or [])]
    return root, incident.id


async def press_acknowledge(world: SandboxWorld, root: EmuMessage, user: str) -> str:
    button = next(b for b in buttons_of(root.blocks or []) if b.label == "Acknowledge")
    await world.click(root, button, user=user)
    await world.settle()
    await world.settle_alarms()
    return world.slack.ephemerals(world.user_id(user))[-1].text


def incident_writes(world: SandboxWorld, incident: str) -> list[str]:
    """Every request that could change the incident in PagerDuty (REST or Events API)."""
    return [
        f"{c.method} {c.path}"
        for c in world.pagerduty.calls
        if (c.method != "GET" and c.path.startswith(f"/incidents/{incident}"))
        or (c.path == "/v2/enqueue" and '"acknowledge"' in str(c.body))
    ]


def shown(world: SandboxWorld, root: EmuMessage) -> str:
    return text_of(next(m for m in world.slack.messages("C0DEPLOYS") if m.ts == root.ts))


async def test_only_production_approvers_acknowledge_by_default(redis_url: str) -> None:
    async with alarm_world(redis_url, FAST) as world:
        root, incident = await alarm_with_incident(world)

        told = await press_acknowledge(world, root, "dave")  # in the channel, not on call
        assert told == (
            f"Only on-call responders can acknowledge {ALARM}'s PagerDuty incident: "
            "<@U0BOB>, <@U0CAROL>, <!subteam^S0SRE>. Nothing was changed in PagerDuty."
        )
        assert world.pagerduty.incidents[incident].status == "triggered"
        assert incident_writes(world, incident) == []
        assert "PagerDuty: triggered" in shown(world, root)

        told = await press_acknowledge(world, root, "carol")  # a production approver
        assert told == f"Acknowledged {ALARM} in PagerDuty."
        assert world.pagerduty.incidents[incident].status == "acknowledged"
        assert incident_writes(world, incident) == [f"PUT /incidents/{incident}"]
        assert "PagerDuty: acknowledged by <@U0CAROL>" in shown(world, root)


async def test_configured_responders_replace_the_default_and_groups_expand(
    redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "dhanam.toml"
    text = EXAMPLE_CONFIG.read_text()
    assert PD_MAPPING in text
    config.write_text(text.replace(PD_MAPPING, PD_MAPPING + '\nresponders = ["U0DAVE", "S0SRE"]'))
    async with alarm_world(redis_url, FAST, config_path=config) as world:
        root, incident = await alarm_with_incident(world)

        told = await press_acknowledge(world, root, "alice")  # neither listed nor in S0SRE
        assert "<@U0DAVE>, <!subteam^S0SRE>" in told
        assert "Nothing was changed in PagerDuty." in told
        assert incident_writes(world, incident) == []
        assert world.pagerduty.incidents[incident].status == "triggered"

        told = await press_acknowledge(world, root, "bob")  # a member of S0SRE (bob, carol)
        assert told == f"Acknowledged {ALARM} in PagerDuty."
        assert world.pagerduty.incidents[incident].status == "acknowledged"
        assert "PagerDuty: acknowledged by <@U0BOB>" in shown(world, root)
