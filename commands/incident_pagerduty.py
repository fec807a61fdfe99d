"""PagerDuty into Slack (v3 webhooks) and deploys into PagerDuty (change events).

A webhook about an incident linked to a bot incident (its incident_key is our incident id, or
its PagerDuty id is one we stored) updates that incident's card and timeline. Any other
PagerDuty incident gets one message in the channel mapped from `[pagerduty].services`, else
`oncall_channel`, edited as it changes; notes go in its thread. Each delivery is processed
once (event id, SET NX), even when PagerDuty retries it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import ClientError
from slack_sdk.errors import SlackApiError

from approvals.models import ApprovalRequest, Result
from commands import incident_render as render
from commands.incident_models import Incident, PdState
from commands.incident_pager import slack_link
from commands.incident_service import IncidentService
from core.text import inert
from integrations.pagerduty import Link, PagerDutyError
from integrations.pagerduty_webhooks import PdEvent

log = structlog.get_logger(__name__)

_STATES = {
    "incident.triggered": PdState.TRIGGERED,
    "incident.acknowledged": PdState.ACKNOWLEDGED,
    "incident.unacknowledged": PdState.TRIGGERED,
    "incident.resolved": PdState.RESOLVED,
    "incident.reopened": PdState.TRIGGERED,
}


# Slack refusals no retry fixes: the update is logged and dropped.
_SLACK_PERMANENT = frozenset(
    {
        "is_archived",
        "channel_not_found",
        "not_in_channel",
        "message_not_found",
        "cant_update_message",
        "invalid_blocks",
        "msg_too_long",
        "no_text",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "restricted_action",
    }
)
_GONE_MESSAGE = frozenset({"message_not_found", "cant_update_message"})
_SLACK_TRANSIENT = (SlackApiError, ClientError, TimeoutError, ConnectionError)
# Seconds before each background retry of a Slack update that failed.
RETRY_DELAYS = (1.0, 4.0, 15.0)


def _slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "") if exc.response is not None else ""
    return ""


def _permanent(exc: BaseException) -> bool:
    return _slack_error(exc) in _SLACK_PERMANENT


def _describe(exc: BaseException) -> str:
    return _slack_error(exc) or type(exc).__name__


class PagerDutySync:
    def __init__(self, service: IncidentService) -> None:
        self._service = service
        self._store = service.store
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS
        self._tasks: set[asyncio.Task[None]] = set()
        # Called for PagerDuty incidents that are not the bot's (e.g. an alarm's own).
        self.on_standalone: list[Callable[[PdEvent], Awaitable[None]]] = []

    # -- webhooks -------------------------------------------------------------------------
    async def handle(self, event: PdEvent) -> str:
        """``ignored`` (not about an incident), ``duplicate`` or ``processed``.

        Two phases. Recording (the delivery claimed, the incident's state and timeline saved)
        must succeed or the delivery is forgotten and the error raised: the webhook answers
        503 and PagerDuty's retry does it again. Publishing to Slack comes after: once the
        event is recorded a Slack failure does not fail the delivery (a redelivery would be a
        duplicate and do nothing); it is retried in the background, a few times."""
        if not event.is_incident:
            return "ignored"
        if event.id and not await self._store.first_delivery(event.id):
            log.info("pagerduty.webhook_duplicate", event_id=event.id)
            return "duplicate"
        try:
            incident = await self._linked(event)
            if incident is not None:
                await self._record(incident, event)
            if event.id:
                await self._store.delivered(event.id)
        except BaseException:
            if event.id:
                await self._store.forget_delivery(event.id)
            raise
        if incident is not None:
            linked = incident

            async def publish() -> None:
                await self._publish(linked, event)

        else:

            async def publish() -> None:
                await self._standalone(event)
                for hook in self.on_standalone:
                    await hook(event)

        try:
            await publish()
        except Exception as exc:  # noqa: BLE001 - recorded already: Slack is retried, not PD
            if not self._retry_later(event, publish, exc):
                log.warning(
                    "pagerduty.slack_update_dropped", event_id=event.id, error=_describe(exc)
                )
        log.info("pagerduty.webhook", event_type=event.event_type, incident=event.incident_id)
        return "processed"

    def _retry_later(
        self, event: PdEvent, publish: Callable[[], Awaitable[None]], exc: Exception
    ) -> bool:
        """Start a background retry of ``publish``; False when no retry can fix ``exc``."""
        if _permanent(exc):
            return False
        log.warning("pagerduty.slack_update_deferred", event_id=event.id, error=_describe(exc))
        task = asyncio.create_task(self._retry(event, publish), name=f"pd-slack-{event.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _retry(self, event: PdEvent, publish: Callable[[], Awaitable[None]]) -> None:
        for attempt, delay in enumerate(self.retry_delays, start=1):
            await asyncio.sleep(delay)
            try:
                await publish()
            except Exception as exc:
                log.warning(
                    "pagerduty.slack_retry_failed",
                    event_id=event.id,
                    attempt=attempt,
                    error=_describe(exc),
                    exc_info=not isinstance(exc, _SLACK_TRANSIENT),
                )
                if _permanent(exc):
                    return
            else:
                log.info("pagerduty.slack_retry_succeeded", event_id=event.id, attempt=attempt)
                return
        log.error("pagerduty.slack_update_abandoned", event_id=event.id)

    async def stop(self, grace: float = 1.0) -> None:
        """Shutdown: give the background Slack retries ``grace`` seconds, then cancel them."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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
        await self._store.add_timeline(incident.id, self._service.clock.now(), "", text)

    async def _publish(self, incident: Incident, event: PdEvent) -> None:
        """Slack: the note in the incident channel, the card re-rendered."""
        if event.event_type == "incident.annotated":
            await self._service.slack.say(incident.channel, render.pd_note_text(event))
        await self._service.refresh(incident.id)

    async def _standalone(self, event: PdEvent) -> None:
        slack = self._service.slack
        existing = await self._store.pd_message(event.incident_id)
        if event.event_type == "incident.annotated":
            if existing is None:
                channel = self._service.config.slack.oncall_channel
                ts = await slack.say(channel, render.pd_only_text(event))
                await self._store.set_pd_message(event.incident_id, channel, ts)
                existing = (channel, ts)
            await slack.say(existing[0], render.pd_note_text(event), thread_ts=existing[1])
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
        """A deploy or rollback succeeded: tell PagerDuty (a change event) and refresh the
        cards of open incidents, which list the deploys made while they run."""
        if request.kind not in ("deploy", "rollback"):
            return
        pagerduty = self._service.pager.pagerduty
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
