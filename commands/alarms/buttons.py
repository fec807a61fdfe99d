"""The Acknowledge button on an alarm whose own PagerDuty incident is open: configured responders
only (`[pagerduty] responders`, default the production approvers); anyone else is told who may."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from approvals.policy import mention
from commands.alarms.deps import AlarmsDeps
from commands.alarms.store import PagerDutyLink
from commands.buttons import Buttons, Click, json_object
from commands.ids import AlarmActionId
from integrations.pagerduty import PagerDutyError

log = structlog.get_logger(__name__)

buttons: Buttons[AlarmsDeps] = Buttons()


async def _refusal(deps: AlarmsDeps, user: str, alarm: str) -> str | None:
    """Why `user` may not acknowledge (not a configured responder), or None when they may."""
    responders = deps.config.pagerduty_responders
    if user and user in responders:  # listed by ID: no group needs reading
        return None
    members, unreadable = await deps.members.resolve(responders)
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


@dataclass(frozen=True)
class _Target:
    """The button's value: the PagerDuty incident, the alarm it is for, and its page."""

    incident: str
    alarm: str
    url: str


def _target(raw: str) -> _Target:
    target = json_object(raw)
    return _Target(str(target["incident"]), str(target["alarm"]), str(target.get("url", "")))


@buttons.button(AlarmActionId.ACKNOWLEDGE, read=_target)
async def on_acknowledge(click: Click[AlarmsDeps, _Target]) -> None:
    deps, user, target = click.deps, click.user, click.value
    incident, alarm = target.incident, target.alarm
    refusal = await _refusal(deps, user, alarm)
    if refusal is not None:
        log.info("alarm.acknowledge_refused", alarm=alarm, incident=incident, user=user)
        await click.reply(refusal)
        return
    try:
        await deps.pagerduty.acknowledge(incident)
    except PagerDutyError as exc:
        await click.reply(f"Could not acknowledge it in PagerDuty: {exc}")
        return
    # Show it now; PagerDuty's own incident.acknowledged webhook confirms it later.
    link = PagerDutyLink(
        incident_id=incident, status="acknowledged", url=target.url, by=f"<@{user}>"
    )
    await deps.alarms.link_pagerduty(f'"{alarm}"', link)
    await click.reply(f"Acknowledged {alarm} in PagerDuty.")
