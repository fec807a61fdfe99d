"""The incident's Slack surfaces, as pure functions: status card, checklist, topic,
announcement, timeline summary, reminder, and the message about a PagerDuty-only incident.

Text people typed (the title, updates, the resolve summary, PagerDuty names and notes) goes
through ``inert`` wherever Slack parses mrkdwn (``core/text.py``); timeline entries are
stored already made inert by whoever writes them (``IncidentService.note``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from approvals.policy import mention
from commands.ids import IncidentBlockId
from commands.incidents.models import Incident, PdState
from commands.incidents.store import TimelineEntry
from commands.operations.card import slack_time
from commands.render import (
    HEADER_TEXT_MAX,
    MESSAGE_TEXT_MAX,
    SECTION_TEXT_MAX,
    clip,
    more,
)
from commands.requests import IncidentState, Severity
from core.text import fit, inert, inert_but_mentions, named, user_ids, words
from integrations.deploy_history import DeployRecord
from integrations.pagerduty_webhooks import PdEvent

Block = dict[str, Any]
TOPIC_MAX = 250
TIMELINE_TEXT_MAX = MESSAGE_TEXT_MAX - 1000  # room for Slack's own escaping of the text
TIMELINE_TAIL = 5  # the last entries (the resolution) are always shown


_SEV_EMOJI = {Severity.SEV1: ":red_circle:", Severity.SEV2: ":large_orange_circle:"}
_STATUS_EMOJI = {
    IncidentState.INVESTIGATING: ":mag:",
    IncidentState.IDENTIFIED: ":dart:",
    IncidentState.MONITORING: ":eyes:",
    IncidentState.RESOLVED: ":white_check_mark:",
}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_MAX)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def sev_label(incident: Incident) -> str:
    emoji = _SEV_EMOJI.get(incident.severity, ":large_yellow_circle:")
    return f"{emoji} {incident.severity.value.upper()}"


def pagerduty_line(incident: Incident) -> str:
    state = incident.pd_state
    link = f" · <{incident.pd_url}|open in PagerDuty>" if incident.pd_url else ""
    if state is PdState.OFF:
        return "not configured"
    if state is PdState.PENDING:
        tries = f" (attempt {incident.pd_attempts})" if incident.pd_attempts else ""
        why = f" — {inert(incident.pd_error)}" if incident.pd_error else ""
        return f":hourglass_flowing_sand: paging{tries}{why}; retrying in the background"
    if state is PdState.FAILED:
        error = inert(incident.pd_error or "unknown error")
        return f":x: PagerDuty failed — {error}; page the on-call by hand"
    parts = [state.value]
    if state is PdState.ACKNOWLEDGED and incident.pd_ack_by:
        parts = [f"acknowledged by {inert(incident.pd_ack_by)}"]
    if state is PdState.RESOLVED and incident.pd_resolved_by:
        parts = [f"resolved by {inert(incident.pd_resolved_by)}"]
    if incident.pd_escalated:
        parts.append(f"escalated to {inert(incident.pd_escalated)}")
    if incident.pd_priority:
        parts.append(f"priority {inert(incident.pd_priority)}")
    return ", ".join(parts) + link


def _deploy_line(record: DeployRecord) -> str:
    what = record.tag or record.new_task_definition.rsplit("/", 1)[-1]
    who = f" by {mention(record.requested_by)}" if record.requested_by else ""
    return (
        f"• {slack_time(record.at)} {record.kind} *{record.service}* {record.env} → `{what}`{who}"
    )


def card_title(incident: Incident) -> str:
    """The card's header, a plain_text object: Slack parses nothing there, so the title
    goes in as typed."""
    return f"{incident.severity.value.upper()} {incident.title} — {incident.status.value}"


def card_text(incident: Incident) -> str:
    """The card message's ``text`` (notifications): mrkdwn, so the title is made inert."""
    return f"{incident.severity.value.upper()} {inert(incident.title)} — {incident.status.value}"


def card_header(incident: Incident, names: Mapping[str, str]) -> Block:
    """The card's first block: a header (plain_text, where Slack renders no mention) with the
    names of the users the title mentions; when one's name is not known, a bold mrkdwn section
    instead, so Slack shows the mention as the name rather than a raw ``<@U…>``."""
    if all(user in names for user in user_ids(incident.title)):
        shown = clip(named(card_title(incident), names), HEADER_TEXT_MAX)
        return {"type": "header", "text": {"type": "plain_text", "text": shown}}
    head = (
        f"{incident.severity.value.upper()} {inert_but_mentions(incident.title)} — "
        f"{incident.status.value}"
    )
    return _section(f"*{head}*")


def card_blocks(
    incident: Incident,
    deploys: list[DeployRecord],
    now: datetime,
    names: Mapping[str, str] | None = None,
    slash: str = "/dhanam",
) -> list[Block]:
    status = f"{_STATUS_EMOJI[incident.status]} {incident.status.value}"
    if not incident.open:
        status += f" after {incident.duration(now)}"
    last = "none yet"
    if incident.last_update:
        by = f" — {mention(incident.last_update_by)}" if incident.last_update_by else ""
        last = f"{inert(incident.last_update)}{by}, {slack_time(incident.last_update_at)}"
    blocks: list[Block] = [
        card_header(incident, names or {}),
        {
            "type": "section",
            "block_id": IncidentBlockId.CARD_STATUS,
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{sev_label(incident)}"},
                {"type": "mrkdwn", "text": f"*Status*\n{status}"},
                {"type": "mrkdwn", "text": f"*Commander*\n{mention(incident.commander)}"},
                {"type": "mrkdwn", "text": f"*Started*\n{slack_time(incident.started_at)}"},
            ],
        },
        _section(f"*PagerDuty:* {pagerduty_line(incident)}"),
        _section(f"*Last update:* {last}"),
    ]
    if deploys:
        lines = "\n".join(_deploy_line(d) for d in deploys[:10])
        blocks.append(_section(f"*Deploys and rollbacks since it started*\n{lines}"))
    else:
        blocks.append(_section("*Deploys and rollbacks since it started:* none"))
    if not incident.open:
        summary = inert(incident.summary) if incident.summary else "no summary given"
        blocks.append(_section(f":white_check_mark: *Resolved* — {summary}"))
    origin = f" · declared from alarm `{inert(incident.alarm)}`" if incident.alarm else ""
    blocks.append(
        _context(
            f"Incident `{incident.id}` · declared by {mention(incident.declared_by)}{origin} · "
            f"`{slash} incident update|status|commander|resolve` in this channel"
        )
    )
    return blocks


def topic(incident: Incident, names: Mapping[str, str] | None = None) -> str:
    """The channel topic. Slack documents conversations.setTopic as "does not support formatting
    or linkification": a ``<@U…>`` there is shown as the raw token, so the commander is written
    by name (``names``, from users.info), else ``@`` and their user id. Topics are stored in the
    same escaped form as messages (one set in the client comes back with ``&lt;``), so the title
    is made inert as in mrkdwn: at worst a client shows ``&lt;`` literally, never a ping or a
    link. Cut to Slack's 250 characters on the raw title, never inside an entity. Users the title
    mentions are written ``@name`` where ``names`` knows them."""
    known = names or {}
    commander = known.get(incident.commander) or incident.commander
    commander = commander if commander.startswith("@") else f"@{commander}"
    prefix = (
        f"{incident.severity.value.upper()} · {incident.status.value} · IC {inert(commander)} · "
    )
    return fit(prefix, named(incident.title, known), TOPIC_MAX)


def announcement(incident: Incident, now: datetime) -> str:
    title = f"*{inert(incident.title)}*"
    if incident.open:
        return (
            f":rotating_light: {sev_label(incident)} {title} declared by "
            f"{mention(incident.declared_by)} — join <#{incident.channel}> · "
            f"commander {mention(incident.commander)}"
        )
    # One status emoji: the check mark says resolved; the severity is named, not coloured.
    return (
        f":white_check_mark: {incident.severity.value.upper()} {title} resolved after "
        f"{incident.duration(now)} — "
        f"<#{incident.channel}> · {inert(incident.summary or 'no summary given')}"
    )


def timeline_summary(incident: Incident, entries: list[TimelineEntry], now: datetime) -> str:
    """The whole timeline as one message's text, under Slack's 40,000 characters: whole
    entries from the start, "…and N more entries", then always the last few (how it ended).
    Each entry is cut to a line of at most SECTION_TEXT_MAX characters."""
    head = (
        f"*Timeline of {incident.id}* — {inert(incident.title)} "
        f"({incident.severity.value.upper()}, {incident.duration(now)})"
    )
    lines = [clip(_timeline_line(entry), SECTION_TEXT_MAX) for entry in entries]
    head = clip(head, SECTION_TEXT_MAX)
    if len(head) + sum(len(line) + 1 for line in lines) <= TIMELINE_TEXT_MAX:
        return "\n".join([head, *lines])
    tail = lines[-TIMELINE_TAIL:]
    budget = TIMELINE_TEXT_MAX - len(head) - sum(len(line) + 1 for line in tail) - 40
    shown: list[str] = []
    for line in lines[: len(lines) - len(tail)]:
        if budget - (len(line) + 1) < 0:
            break
        shown.append(line)
        budget -= len(line) + 1
    hidden = len(lines) - len(tail) - len(shown)
    return "\n".join([head, *shown, more(hidden, "more entries"), *tail])


def _timeline_line(entry: TimelineEntry) -> str:
    who = f"{mention(entry.by)}: " if entry.by else ""
    return f"• {slack_time(entry.at)} {who}{entry.text}"


def nudge(incident: Incident, quiet_minutes: int, slash: str = "/dhanam") -> str:
    return (
        f":alarm_clock: {mention(incident.commander)} no update for {quiet_minutes} min on this "
        f"{incident.severity.value.upper()} — post one with `{slash} incident update TEXT` "
        "(stakeholders are watching the card)."
    )


def pd_only_text(event: PdEvent) -> str:
    """The message about a PagerDuty incident not tied to a bot incident."""
    number = f"#{event.number} " if event.number else ""
    label = inert(f"{number}{event.title or event.incident_id}")
    link = f"<{event.html_url}|{label}>" if event.html_url else label
    state = inert(words(event.status) if event.status else event.verb)
    by = (
        f" by {inert(event.agent)}"
        if event.agent and event.event_type != "incident.triggered"
        else ""
    )
    parts = [f":pager: PagerDuty {link} — *{state}*{by}"]
    details = [d for d in (event.service_name, event.urgency and f"{event.urgency} urgency") if d]
    if event.assignees:
        details.append("assigned to " + ", ".join(event.assignees))
    if event.priority:
        details.append(f"priority {event.priority}")
    if details:
        parts.append(inert(" · ".join(details)))
    return "\n".join(parts)


def pd_note_text(event: PdEvent) -> str:
    by = event.agent or "someone"
    return inert(f":memo: Note from {by} in PagerDuty: {event.note}")
