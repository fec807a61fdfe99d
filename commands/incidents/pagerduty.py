"""PagerDuty into Slack (v3 webhooks) and deploys into PagerDuty (change events).

A webhook about an incident linked to a bot incident (its incident_key is our incident id, or
its PagerDuty id is one we stored) updates that incident's card and timeline. Any other
PagerDuty incident gets one message in the channel mapped from `[pagerduty].services`, else
`oncall_channel`, edited as it changes; notes go in its thread. Each delivery is processed
once (event id, SET NX), even when PagerDuty retries it; its Slack side is a durable outbox item
(ItemKind.PAGERDUTY) in the channel it goes to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError

from approvals.models import ApprovalRequest, Result
from commands.incidents import render
from commands.incidents.models import Incident, PdState
from commands.incidents.pager import slack_link
from commands.incidents.service import IncidentService
from core.text import inert
from integrations.pagerduty import Link, PagerDuty, PagerDutyError
from integrations.pagerduty_webhooks import PdEvent
from integrations.slack.outbox import ItemKind, Outbox, OutboxItem, PacedSlack

log = structlog.get_logger(__name__)

_STATES = {
    "incident.triggered": PdState.TRIGGERED,
    "incident.acknowledged": PdState.ACKNOWLEDGED,
    "incident.unacknowledged": PdState.TRIGGERED,
    "incident.resolved": PdState.RESOLVED,
    "incident.reopened": PdState.TRIGGERED,
}


_GONE_MESSAGE = frozenset({"message_not_found", "cant_update_message"})


def _slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "") if exc.response is not None else ""
    return ""


def event_item(event: PdEvent) -> OutboxItem:
    """The durable Slack update for one recorded webhook event (serialised here only)."""
    body = json.dumps(dataclasses.asdict(event), separators=(",", ":"), sort_keys=True)
    ref = event.id or hashlib.sha256(body.encode()).hexdigest()[:32]
    return OutboxItem(ItemKind.PAGERDUTY, ref, (("event", body),))


def item_event(item: OutboxItem) -> PdEvent:
    return PdEvent(**json.loads(item.get("event")))


class PagerDutySync:
    def __init__(
        self,
        service: IncidentService,
        outbox: Outbox,
        pagerduty: PagerDuty,
        *,
        on_standalone: Sequence[Callable[[PdEvent], Awaitable[None]]] = (),
    ) -> None:
        self._service = service
        self._store = service.store
        self._outbox = outbox
        self._pagerduty = pagerduty
        # Called (Redis only) for PagerDuty incidents that are not the bot's (an alarm's own).
        self.on_standalone = tuple(on_standalone)

    # -- webhooks -------------------------------------------------------------------------
    async def handle(self, event: PdEvent) -> str:
        """``ignored`` (not about an incident), ``duplicate`` or ``processed``.

        Recording happens in Redis before the answer: the delivery claimed, the incident's
        state and timeline saved, and its Slack update queued in the channel's outbox (a
        durable, retried write: `publish`). If any of it fails the delivery is forgotten and
        the error raised, so the webhook answers 503 and PagerDuty's retry does it again. Once
        recorded, a Slack outage cannot fail the delivery nor lose the update: the outbox
        keeps it across retries and restarts, and the event id stays processed once."""
        if not event.is_incident:
            return "ignored"
        if event.id and not await self._store.first_delivery(event.id):
            log.info("pagerduty.webhook_duplicate", event_id=event.id)
            return "duplicate"
        try:
            incident = await self._linked(event)
            if incident is not None:
                await self._record(incident, event)
                channel = incident.channel
            else:
                for hook in self.on_standalone:
                    await hook(event)
                channel = await self._standalone_channel(event)
            await self._outbox.enqueue(channel, event_item(event))
            if event.id:
                await self._store.delivered(event.id)
        except BaseException:
            if event.id:
                await self._store.forget_delivery(event.id)
            raise
        log.info("pagerduty.webhook", event_type=event.event_type, incident=event.incident_id)
        return "processed"

    async def publish(
        self,
        channel: str,  # noqa: ARG002 - the outbox's handler signature
        item: OutboxItem,
        slack: PacedSlack,  # noqa: ARG002
    ) -> None:
        """The outbox's handler for PagerDuty items: the Slack side of one recorded event.
        Slack errors propagate, so the outbox retries what a retry can fix."""
        event = item_event(item)
        incident = await self._linked(event)
        if incident is not None:
            await self._publish(incident, event)
        else:
            await self._standalone(event)

    async def _standalone_channel(self, event: PdEvent) -> str:
        existing = await self._store.pd_message(event.incident_id)
        if existing is not None:
            return existing[0]
        config = self._service.config
        if event.event_type == "incident.annotated":
            return config.slack.oncall_channel
        return config.pagerduty.services.get(event.service_id, config.slack.oncall_channel)

    async def _linked(self, event: PdEvent) -> Incident | None:
        if event.incident_key:
            incident = await self._store.get(event.incident_key)
            if incident is not None:
                if incident.pd_incident_id != event.incident_id:
                    await self._store.link_pd(event.incident_id, incident.id)
                return incident
        return await self._store.by_pd(event.incident_id)

    async def _record(self, incident: Incident, event: PdEvent) -> None:
        """The incident's PagerDuty fields and its timeline line (Redis only)."""
        update: dict[str, Any] = {"pd_incident_id": event.incident_id}
        if event.html_url:
            update["pd_url"] = event.html_url
        state = _STATES.get(event.event_type)
        if state is not None:
            update["pd_state"] = state
            update["pd_error"] = ""
        kind = event.event_type
        if kind == "incident.acknowledged":
            update["pd_ack_by"] = event.agent
        elif kind == "incident.unacknowledged":
            update["pd_ack_by"] = ""
        elif kind == "incident.resolved":
            update["pd_resolved_by"] = event.agent
        elif kind == "incident.reopened":
            update["pd_resolved_by"] = ""
        elif kind in ("incident.escalated", "incident.reassigned"):
            update["pd_escalated"] = ", ".join(event.assignees) or event.agent
        elif kind == "incident.priority_updated":
            update["pd_priority"] = event.priority
        changed = incident.model_copy(update=update)
        await self._store.save(changed, *update)
        if kind == "incident.annotated":
            text = inert(f"PagerDuty note from {event.agent or 'someone'}: {event.note}")
        else:
            by = f" by {event.agent}" if event.agent else ""
            text = f"PagerDuty: {event.verb}{by}"
            if kind in ("incident.escalated", "incident.reassigned") and event.assignees:
                text += f" → {', '.join(event.assignees)}"
            text = inert(text)  # names typed in PagerDuty; the timeline is mrkdwn
        now = self._service.clock.now()
        await self._store.add_timeline(incident.id, now, "", text, once=event.id)

    async def _say_note_once(self, event: PdEvent, channel: str, thread_ts: str = "") -> None:
        """A note is posted once per event, even when the rest of its update is retried."""
        if event.id and await self._store.note_posted(event.id):
            return
        await self._service.slack.say(
            channel, render.pd_note_text(event), thread_ts=thread_ts or None
        )
        if event.id:
            await self._store.mark_note_posted(event.id)

    async def _publish(self, incident: Incident, event: PdEvent) -> None:
        """Slack: the note in the incident channel, the card re-rendered (strictly: a failure a
        retry may fix is raised, and the outbox retries the item)."""
        if event.event_type == "incident.annotated":
            await self._say_note_once(event, incident.channel)
        await self._service.refresh(incident.id, strict=True)

    async def _standalone(self, event: PdEvent) -> None:
        slack = self._service.slack
        existing = await self._store.pd_message(event.incident_id)
        if event.event_type == "incident.annotated":
            if existing is None:
                channel = self._service.config.slack.oncall_channel
                ts = await slack.say(channel, render.pd_only_text(event))
                await self._store.set_pd_message(event.incident_id, channel, ts)
                existing = (channel, ts)
            await self._say_note_once(event, existing[0], existing[1])
            return
        text = render.pd_only_text(event)
        if existing is not None:
            try:
                await slack.client.chat_update(channel=existing[0], ts=existing[1], text=text)
            except SlackApiError as exc:
                if _slack_error(exc) not in _GONE_MESSAGE:
                    raise
                # Someone deleted the message: post it anew where it was and remember that.
                log.info("pagerduty.message_reposted", incident=event.incident_id)
                ts = await slack.say(existing[0], text)
                await self._store.set_pd_message(event.incident_id, existing[0], ts)
            return
        config = self._service.config
        channel = config.pagerduty.services.get(event.service_id, config.slack.oncall_channel)
        ts = await slack.say(channel, text)
        await self._store.set_pd_message(event.incident_id, channel, ts)

    # -- deploys as change events -----------------------------------------------------------
    async def deploy_changed(self, request: ApprovalRequest, result: Result) -> None:
        """A followed Action (a deploy or rollback: `Action.followed`) succeeded: tell PagerDuty
        (a change event) and refresh the cards of open incidents, which list the deploys made
        while they run. The flow calls it for followed Actions only."""
        pagerduty = self._pagerduty
        if pagerduty.enabled:
            details = {
                "service": request.service,
                "env": request.env,
                "kind": request.kind,
                "requested_by": request.requester,
                "approved_by": request.approvers,
                "request_id": request.id,
                "result": result.summary,
                **{
                    k: result.details[k]
                    for k in ("task_definition_arn", "image", "tag", "digest")
                    if result.details.get(k)
                },
            }
            links = [Link(slack_link(request.channel), "Approval card")] if request.channel else []
            try:
                await pagerduty.change(
                    summary=f"{request.plan.summary} (by {request.requester}, approved by "
                    f"{', '.join(request.approvers) or 'no approval needed'})",
                    timestamp=self._service.clock.now(),
                    details=details,
                    links=links,
                )
            except PagerDutyError as exc:
                log.warning("pagerduty.change_event_failed", request_id=request.id, error=str(exc))
        for incident_id in await self._store.active_ids():
            await self._service.refresh(incident_id)
