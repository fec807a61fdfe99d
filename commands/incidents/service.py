"""Running an incident: declare, update, status, commander, checklist, resolve.

State lives in Redis (IncidentStore); Slack is IncidentSlack; PagerDuty events go through
IncidentPager, which retries in the background when PagerDuty is unreachable. Any replica
serves any command: the incident is found by its channel.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime

import structlog
from slack_sdk.errors import SlackApiError

from approvals.flow import Members
from approvals.policy import mention
from commands.incidents import render
from commands.incidents.channel import IncidentSlack
from commands.incidents.checklist_store import Diagnosis
from commands.incidents.models import Incident, PdState, new_incident_id
from commands.incidents.pager import IncidentPager, IncidentTimings
from commands.incidents.store import IncidentStore
from commands.requests import IncidentState, Severity
from core.clock import Clock
from core.config import Config
from core.errors import ChatOpsError
from core.text import inert, mentions_as_names
from integrations.deploy_history import DeployHistory, DeployRecord

log = structlog.get_logger(__name__)


class IncidentService:
    def __init__(
        self,
        *,
        store: IncidentStore,
        slack: IncidentSlack,
        pager: IncidentPager,
        config: Config,
        clock: Clock,
        history: DeployHistory,
        members: Members,
    ) -> None:
        self.store = store
        self.slack = slack
        self.pager = pager
        self.config = config
        self.clock = clock
        self._history = history
        self._members = members
        self._card_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def timings(self) -> IncidentTimings:
        return self.pager.timings

    async def retry_pagerduty(self, now: datetime) -> list[str]:
        """PagerDuty events that failed and are due again: retried, their cards re-rendered."""
        done = await self.pager.retry_due(now)
        for incident_id in done:
            await self.refresh(incident_id)
        return done

    # -- reading ------------------------------------------------------------------------------
    async def in_channel(self, channel: str, command: str) -> Incident:
        """The open incident of ``channel``, or a clear refusal."""
        incident = await self.store.by_channel(channel)
        if incident is None:
            raise ChatOpsError(
                f"`incident {command}` works inside an incident channel, and <#{channel}> is "
                "not one — run it in the channel `incident declare` created."
            )
        if not incident.open:
            raise ChatOpsError(
                f"incident `{incident.id}` is already resolved. Nothing was changed."
            )
        return incident

    async def deploys_during(self, incident: Incident) -> list[DeployRecord]:
        found = []
        for service in self.config.services:
            for env in self.config.environments:
                for record in await self._history.recent(service, env, 20):
                    ended = incident.resolved_at
                    if record.at >= incident.started_at and (ended is None or record.at <= ended):
                        found.append(record)
        return sorted(found, key=lambda r: r.at, reverse=True)

    async def refresh(self, incident_id: str, *, strict: bool = False) -> Incident | None:
        """Re-render the card from what Redis holds now (serialised per incident here).
        ``strict``: Slack failures a retry may fix are raised (see IncidentSlack.update_card)."""
        async with self._card_locks[incident_id]:
            incident = await self.store.get(incident_id)
            if incident is not None:
                deploys = await self.deploys_during(incident)
                await self.slack.update_card(incident, deploys, self.clock.now(), strict=strict)
            return incident

    async def note(self, incident: Incident, by: str, text: str) -> None:
        """A timeline line, stored as mrkdwn: the caller wraps what a user typed in ``inert``
        (the bot's own mentions in the same line stay live)."""
        await self.store.add_timeline(incident.id, self.clock.now(), by, text)

    # -- declare ------------------------------------------------------------------------------
    async def declare(
        self, severity: Severity, title: str, user: str, *, alarm: str = ""
    ) -> Incident:
        now = self.clock.now()
        await self.store.active_ids()  # fail closed before creating anything if Redis is down
        # A user the title mentions is kept as their name: the announcement, the channel's name,
        # the card and the timeline read "@bob", never a raw <@U0BOB|bob> nor a ping.
        title = mentions_as_names(title, await self.slack.names(title))
        channel, name = await self.slack.create_channel(title, now)
        incident = Incident(
            id=new_incident_id(now),
            severity=severity,
            title=title,
            commander=user,
            declared_by=user,
            started_at=now,
            channel=channel,
            last_update_at=now,
            alarm=alarm,
            pd_state=PdState.PENDING if self.pager.enabled else PdState.OFF,
        )
        await self.store.create(incident)
        log.info("incident.declared", incident=incident.id, severity=severity, channel=name)
        await self.note(incident, user, f"declared {severity.value.upper()}: {inert(title)}")
        invitees = [user]
        group = self.config.incidents.oncall_group
        if group:
            try:
                invitees += sorted(await self._members.expand([group]))
            except ChatOpsError as exc:
                log.warning("incident.oncall_group_failed", error=exc.user_message)
        await self.slack.invite(channel, invitees)
        await self.slack.set_topic(incident)
        card_ts = await self.slack.post_card(incident, [], now)
        incident = incident.model_copy(update={"card_ts": card_ts})
        await self.store.save(incident, "card_ts")
        if severity is Severity.SEV1 and self.config.incidents.sev1_checklist:
            # With checks ([outage]), they start once the declare is answered (checklist.py).
            checking = Diagnosis(running=True) if self.config.outage is not None else None
            incident = incident.model_copy(
                update={"checklist_ts": await self.slack.post_checklist(incident, checking)}
            )
            await self.store.save(incident, "checklist_ts")
        where = self.config.slack.incidents_channel
        incident = incident.model_copy(
            update={
                "announce_channel": where,
                "announce_ts": await self.slack.announce(incident, where, now),
            }
        )
        await self.store.save(incident, "announce_channel", "announce_ts")
        if self.pager.enabled:
            await self.pager.attempt(incident)
        return await self.refresh(incident.id) or incident

    # -- in the channel -----------------------------------------------------------------------
    async def update(self, channel: str, user: str, text: str) -> Incident:
        incident = await self.in_channel(channel, "update")
        now = self.clock.now()
        incident = incident.model_copy(
            update={"last_update": text, "last_update_at": now, "last_update_by": user}
        )
        await self.store.save(incident, "last_update", "last_update_at", "last_update_by")
        await self.note(incident, user, f"update: {inert(text)}")
        await self.refresh(incident.id)
        return incident

    async def set_status(self, channel: str, user: str, state: IncidentState) -> Incident:
        if state is IncidentState.RESOLVED:
            return await self.resolve(channel, user, None)
        incident = await self.in_channel(channel, "status")
        outcome = await self.store.set_status(incident.id, state)
        if outcome == "same":
            raise ChatOpsError(f"the incident is already {state.value}. Nothing was changed.")
        if outcome != "ok":
            raise ChatOpsError(
                f"incident `{incident.id}` is already resolved. Nothing was changed."
            )
        incident = incident.model_copy(update={"status": state})
        await self.note(incident, user, f"status → {state.value}")
        await self.slack.set_topic(incident)
        await self.refresh(incident.id)
        return incident

    async def commander(self, channel: str, user: str, new: str) -> Incident:
        incident = await self.in_channel(channel, "commander")
        if new == incident.commander:
            raise ChatOpsError(f"{mention(new)} is already the commander. Nothing was changed.")
        before = incident.commander
        incident = incident.model_copy(update={"commander": new})
        await self.store.save(incident, "commander")
        await self.note(incident, user, f"commander {mention(before)} → {mention(new)}")
        await self.slack.invite(channel, [new])
        await self.slack.set_topic(incident)
        await self.refresh(incident.id)
        return incident

    async def resolve(self, channel: str, user: str, summary: str | None) -> Incident:
        incident = await self.in_channel(channel, "resolve")
        if await self.store.set_status(incident.id, IncidentState.RESOLVED) != "ok":
            raise ChatOpsError(
                f"incident `{incident.id}` is already resolved. Nothing was changed."
            )
        now = self.clock.now()
        incident = incident.model_copy(
            update={"status": IncidentState.RESOLVED, "resolved_at": now, "summary": summary or ""}
        )
        await self.store.save(incident, "resolved_at", "summary")
        await self.note(incident, user, f"resolved: {inert(summary)}" if summary else "resolved")
        await self.store.close(incident)
        if incident.pd_state is not PdState.OFF:
            await self.pager.attempt(incident)
        final = await self.refresh(incident.id) or incident
        await self.slack.set_topic(final)
        entries = await self.store.timeline(incident.id)
        await self.slack.say(channel, render.timeline_summary(final, entries, now))
        await self.slack.edit_announcement(final, now)
        log.info("incident.resolved", incident=incident.id, duration=final.duration(now))
        return final

    # -- reminders ----------------------------------------------------------------------------
    async def remind(self, now: datetime) -> list[str]:
        """Nudge the commander of each sev1/sev2 quiet for the reminder interval; at most
        one nudge per interval. Returns the incidents nudged."""
        interval = self.timings.reminder or self.config.incidents.update_reminder
        nudged = []
        for incident_id in await self.store.active_ids():
            incident = await self.store.get(incident_id)
            if incident is None or not incident.open or incident.severity is Severity.SEV3:
                continue
            quiet = now - incident.last_update_at
            since_nudge = now - (incident.last_nudge_at or incident.last_update_at)
            if quiet < interval or since_nudge < interval:
                continue
            # Recorded before posting: a channel that refuses (archived, gone) is tried once
            # per interval, not every tick.
            incident = incident.model_copy(update={"last_nudge_at": now})
            await self.store.save(incident, "last_nudge_at")
            minutes = int(quiet.total_seconds() // 60)
            try:
                await self.slack.say(
                    incident.channel, render.nudge(incident, minutes, self.config.slack.command)
                )
            except SlackApiError as exc:
                # One incident's refusal does not cost the others their nudge this tick.
                error = exc.response.get("error") if exc.response else None
                log.warning("incident.nudge_failed", incident=incident.id, error=error)
                continue
            nudged.append(incident.id)
        return nudged
