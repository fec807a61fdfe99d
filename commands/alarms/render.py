"""Block Kit for CloudWatch alarms: the root message, thread replies, digests, reminders. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from commands.alarms.store import PagerDutyLink
from commands.ids import AlarmActionId
from commands.operations.card import slack_time
from commands.render import (
    BUTTON_TEXT_MAX,
    MESSAGE_MAX_BLOCKS,
    SECTION_TEXT_MAX,
    clip,
    more,
    pack_lines,
)
from core.text import duration, fit
from integrations.cloudwatch_alarms import AlarmNotification, AlarmState

DIGEST_LINES_PER_BLOCK = 10  # and at most SECTION_TEXT_MAX characters: long names, long URLs
DIGEST_MAX_BLOCKS = MESSAGE_MAX_BLOCKS - 2  # the storm line, the sections, "…and N more"
TITLE_MAX = 150
NOTICE_SUBJECT_MAX = 150
NOTICE_BODY_MAX = 1500

_MARKS = {
    AlarmState.ALARM: ":red_circle:",
    AlarmState.OK: ":large_green_circle:",
    AlarmState.INSUFFICIENT_DATA: ":white_circle:",
}


@dataclass(frozen=True)
class RollbackOffer:
    """A deploy of the alarm's service, in the environment the alarm watches
    (commands.alarms.environment), finished within the bake window: offer to undo it."""

    service: str
    env: str
    to: str  # family:revision that ran before the deploy
    deployed_at: datetime


@dataclass(frozen=True)
class AlarmView:
    alarm: AlarmNotification
    service: str | None = None
    fired_at: datetime | None = None  # when the current (or last) ALARM began
    rollback: RollbackOffer | None = None
    pagerduty: PagerDutyLink | None = None
    unseen_fire: bool = False  # ALARM → OK, the bot never saw it fire: shown as recovered

    @property
    def state(self) -> AlarmState:
        return self.alarm.new_state

    @property
    def fired_for(self) -> timedelta | None:
        if self.fired_at is None or self.state is AlarmState.ALARM:
            return None
        return max(self.alarm.changed_at - self.fired_at, timedelta(0))


def _when(moment: datetime) -> str:
    """As every other card writes a time: Slack's date token, in each reader's timezone, with
    the UTC fallback (commands.operations.card.slack_time)."""
    return slack_time(moment)


def state_word(state: AlarmState) -> str:
    return state.value.replace("_", " ")


def headline(view: AlarmView) -> str:
    alarm = view.alarm
    line = f"{_MARKS[view.state]} *{state_word(view.state)}* · *{alarm.name}*"
    if view.service:
        line += f" · {view.service}"
    if view.unseen_fire:
        line += " · recovered"
    return line


def rollback_button(service: str, env: str, to: str, alarm: str) -> dict[str, Any]:
    """Roll back SERVICE in ENV to revision `to` (family:revision): under an alarm's message and
    in a deploy's thread (commands.operations.rollout). The listener (operations/buttons.py)
    opens a rollback request for exactly the service and environment in the value."""
    value = json.dumps({"service": service, "env": env, "to": to, "alarm": alarm})
    return {
        "type": "button",
        "action_id": AlarmActionId.ROLLBACK,
        "text": {
            "type": "plain_text",
            "text": clip(f"Roll back {service} in {env}", BUTTON_TEXT_MAX),
        },
        "style": "danger",
        "value": value,
    }


def declare_button(view: AlarmView) -> dict[str, Any]:
    subject = view.service or view.alarm.name
    title = f"{subject}: {view.alarm.name} in ALARM"[:TITLE_MAX]
    value = json.dumps({"title": title, "severity": "sev2", "alarm": view.alarm.name})
    return {
        "type": "button",
        "action_id": AlarmActionId.DECLARE_INCIDENT,
        "text": {"type": "plain_text", "text": "Declare incident"},
        "value": value,
    }


def root_message(view: AlarmView) -> tuple[str, list[dict[str, Any]]]:
    """The one message that tracks an alarm: edited on every transition."""
    alarm = view.alarm
    lines = [headline(view)]
    if alarm.description:
        lines.append(alarm.description)
    lines.append(f"*Condition:* {alarm.condition}")
    if view.state is AlarmState.ALARM:
        since = view.fired_at or alarm.changed_at
        lines.append(f"*Since:* {_when(since)}")
    elif view.fired_for is not None:
        lines.append(
            f"*{state_word(view.state)} since:* {_when(alarm.changed_at)} · "
            f"fired for {duration(view.fired_for)}"
        )
    elif view.unseen_fire:
        lines.append(
            f"*Recovered:* ALARM → OK at {_when(alarm.changed_at)} "
            "(the bot did not see it fire; it may have been down)"
        )
    else:
        lines.append(f"*{state_word(view.state)} since:* {_when(alarm.changed_at)}")
    if alarm.reason:
        lines.append(f"> {alarm.reason[:1500]}")
    body = clip("\n".join(lines), SECTION_TEXT_MAX)  # name, description, reason: all long
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]
    context = [alarm.region_name or alarm.region or "region unknown"]
    if alarm.console_url:
        context.append(f"<{alarm.console_url}|Open in CloudWatch>")
    if view.pagerduty is not None:
        link = view.pagerduty
        status = link.status + (f" by {link.by}" if link.by and link.status != "triggered" else "")
        context.append(f"<{link.url}|PagerDuty: {status}>" if link.url else f"PagerDuty: {status}")
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
    )
    if view.state is AlarmState.ALARM:
        offer = view.rollback
        buttons = [rollback_button(offer.service, offer.env, offer.to, alarm.name)] if offer else []
        buttons.append(declare_button(view))
        if view.pagerduty is not None and view.pagerduty.status == "triggered":
            buttons.append(
                {
                    "type": "button",
                    "action_id": AlarmActionId.ACKNOWLEDGE,
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "value": json.dumps(
                        {
                            "incident": view.pagerduty.incident_id,
                            "alarm": alarm.name,
                            "url": view.pagerduty.url,
                        }
                    ),
                }
            )
        blocks.append({"type": "actions", "elements": buttons})
    text = f"{'Recovered' if view.unseen_fire else state_word(view.state)}: {alarm.name}"
    return text, blocks


def transition_text(view: AlarmView, shown: AlarmState | None) -> str:
    """The thread reply for a transition since what the root showed."""
    before = f"{state_word(shown)} → " if shown and shown is not view.state else ""
    text = (
        f"{_MARKS[view.state]} {before}*{state_word(view.state)}* at {_when(view.alarm.changed_at)}"
    )
    if view.fired_for is not None:
        text += f" — fired for {duration(view.fired_for)}"
    if view.alarm.reason:
        text += f"\n> {view.alarm.reason[:1500]}"
    if view.rollback and view.state is AlarmState.ALARM:
        text += f"\nA deploy of {view.rollback.service} to {view.rollback.env} finished lately."
    return text


def reminder_text(name: str, fired_for: timedelta) -> str:
    return f":alarm_clock: *{name}* is still in ALARM — firing for {duration(fired_for)}."


def digest_line(view: AlarmView) -> str:
    alarm = view.alarm
    line = f"{_MARKS[view.state]} *{alarm.name}* — {state_word(view.state)}"
    if view.state is AlarmState.ALARM:
        line += f" since {(view.fired_at or alarm.changed_at):%H:%M:%S}"
    elif view.fired_for is not None:
        line += f" (fired for {duration(view.fired_for)})"
    elif view.unseen_fire:
        line += " (recovered)"
    if view.service:
        line += f" · {view.service}"
    if alarm.console_url:
        line += f" · <{alarm.console_url}|console>"
    return line


def digest_message(views: list[AlarmView]) -> tuple[str, list[dict[str, Any]]]:
    """Many alarms changing at once in one channel: one message, edited as they change."""
    firing = sum(1 for v in views if v.state is AlarmState.ALARM)
    header = (
        f":rotating_light: *Alarm storm* — {len(views)} alarms changed together; "
        f"{firing} in ALARM now. This message is kept up to date."
    )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": header}}]
    sections, hidden = pack_lines(
        [digest_line(v) for v in views],
        max_chunks=DIGEST_MAX_BLOCKS,
        max_lines=DIGEST_LINES_PER_BLOCK,
    )
    for section in sections:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
    if hidden > 0:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more(hidden)}]})
    text = f"Alarm storm: {len(views)} alarms, {firing} in ALARM"
    return text, blocks


def notice_message(subject: str, body: str) -> tuple[str, list[dict[str, Any]]]:
    """A verified SNS notification that is not a CloudWatch alarm: its subject and the start of
    its body, as inert text (whatever was published cannot mention, link or format)."""
    title = fit(":incoming_envelope: *SNS notification* · ", subject or "(no subject)", 300)
    raw = body.strip().replace("```", "'''")  # cannot close the code block early
    shown = fit("", raw, NOTICE_BODY_MAX + 10) if raw else "(empty message)"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"```{shown}```"}},
    ]
    text = fit("SNS notification: ", subject or body or "(no subject)", 200)
    return text, blocks
