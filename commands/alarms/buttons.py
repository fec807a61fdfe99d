"""The Acknowledge button on an alarm whose own PagerDuty incident is open: configured responders
only (`[pagerduty] responders`, default the production approvers); anyone else is told who may."""

from __future__ import annotations

import json
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from approvals.policy import mention
from commands.alarms.render import AlarmButton
from commands.alarms.store import PagerDutyLink
from commands.deps import DEPS_KEY, Deps
from integrations.pagerduty import PagerDutyError

log = structlog.get_logger(__name__)


async def _refusal(deps: Deps, user: str, alarm: str) -> str | None:
    """Why `user` may not acknowledge (not a configured responder), or None when they may."""
    responders = deps.config.pagerduty_responders
    if user and user in responders:  # listed by ID: no group needs reading
        return None
    members, unreadable = await deps.flow.members.resolve(responders)
    if user and user in members:
        return None
    named = ", ".join(mention(p) for p in responders) or "nobody is configured"
    unread = ""
    if unreadable:  # fail closed for that group only, and say so
        groups = ", ".join(f"{mention(g)} ({why})" for g, why in sorted(unreadable.items()))
        unread = f" (Slack did not list the members of {groups})"
    return (
        f"Only on-call responders can acknowledge {alarm}'s PagerDuty incident: {named}"
        f"{unread}. Nothing was changed in PagerDuty."
    )


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
    refusal = await _refusal(deps, user, alarm)
    if refusal is not None:
        log.info("alarm.acknowledge_refused", alarm=alarm, incident=incident, user=user)
        await respond(response_type="ephemeral", replace_original=False, text=refusal)
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
