"""The Acknowledge button on an alarm whose own PagerDuty incident is open."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from commands.alarm_render import AlarmButton
from commands.deps import DEPS_KEY, Deps
from integrations.alarm_state import PagerDutyLink
from integrations.pagerduty import PagerDutyError


async def on_acknowledge(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: dict[str, Any],
) -> None:
    await ack()
    deps: Deps = context[DEPS_KEY]
    user = str(body.get("user", {}).get("id", ""))
    try:
        target = json.loads(str(action.get("value", "")))
        incident, alarm = str(target["incident"]), str(target["alarm"])
    except (ValueError, KeyError, TypeError):
        await respond(
            response_type="ephemeral", replace_original=False, text="This button is broken."
        )
        return
    async with deps.inflight.track():
        try:
            await deps.incidents.pager.pagerduty.acknowledge(incident)
        except PagerDutyError as exc:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=f"Could not acknowledge it in PagerDuty: {exc}",
            )
            return
        # Show it now; PagerDuty's own incident.acknowledged webhook confirms it later.
        link = PagerDutyLink(
            incident_id=incident,
            status="acknowledged",
            url=str(target.get("url", "")),
            by=f"<@{user}>",
        )
        await deps.alarms.link_pagerduty(f'"{alarm}"', link)
    await respond(
        response_type="ephemeral",
        replace_original=False,
        text=f"Acknowledged {alarm} in PagerDuty.",
    )


def register(app: AsyncApp) -> None:
    app.action(AlarmButton.ACKNOWLEDGE.value)(on_acknowledge)
