"""`/dhanam incident …`, the checklist's checkboxes and the alarm's "Declare incident" button:
thin handlers over IncidentService."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from approvals.policy import mention
from commands.deps import DEPS_KEY, Deps
from commands.incidents.render import IncidentActionId
from commands.requests import (
    IncidentCommanderRequest,
    IncidentDeclareRequest,
    IncidentResolveRequest,
    IncidentStatusRequest,
    IncidentUpdateRequest,
    Severity,
)
from commands.router import CommandRouter, Invocation
from core.errors import ChatOpsError
from core.text import inert


async def declare(inv: Invocation) -> None:
    request = inv.request
    assert isinstance(request, IncidentDeclareRequest)
    incident = await inv.deps.incidents.declare(request.severity, request.title, inv.user_id)
    await inv.respond(
        response_type="ephemeral",
        text=f"Incident `{incident.id}` declared: <#{incident.channel}>. You are the commander "
        "(hand over with `incident commander @user`).",
    )


async def update(inv: Invocation) -> None:
    request = inv.request
    assert isinstance(request, IncidentUpdateRequest)
    await inv.deps.incidents.update(inv.channel_id, inv.user_id, request.text)
    await inv.respond(
        response_type="in_channel",
        text=f":loudspeaker: Update from {mention(inv.user_id)}: {inert(request.text)}",
    )


async def status(inv: Invocation) -> None:
    request = inv.request
    assert isinstance(request, IncidentStatusRequest)
    incident = await inv.deps.incidents.set_status(inv.channel_id, inv.user_id, request.state)
    if incident.open:
        await inv.respond(
            response_type="in_channel",
            text=f"Status → *{request.state.value}* ({mention(inv.user_id)})",
        )


async def commander(inv: Invocation) -> None:
    request = inv.request
    assert isinstance(request, IncidentCommanderRequest)
    await inv.deps.incidents.commander(inv.channel_id, inv.user_id, request.user_id)
    await inv.respond(
        response_type="in_channel",
        text=f":crown: {mention(request.user_id)} is now the incident commander "
        f"(handed over by {mention(inv.user_id)}).",
    )


async def resolve(inv: Invocation) -> None:
    request = inv.request
    assert isinstance(request, IncidentResolveRequest)
    incident = await inv.deps.incidents.resolve(inv.channel_id, inv.user_id, request.summary)
    await inv.respond(
        response_type="ephemeral",
        text=f"Incident `{incident.id}` resolved; the timeline is posted above.",
    )


async def on_checklist(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: dict[str, Any],
) -> None:
    await ack()
    deps: Deps = context[DEPS_KEY]
    user = str(body.get("user", {}).get("id", ""))
    channel = str(body.get("channel", {}).get("id", ""))
    selected = [str(o.get("value", "")) for o in action.get("selected_options") or []]
    async with deps.inflight.track():
        try:
            await deps.incidents.tick(channel, user, selected)
        except ChatOpsError as exc:
            await respond(response_type="ephemeral", replace_original=False, text=exc.user_message)


async def on_declare_from_alarm(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: dict[str, Any],
) -> None:
    """The alarm message's "Declare incident" button: value {"title","severity","alarm"}."""
    await ack()
    deps: Deps = context[DEPS_KEY]
    user = str(body.get("user", {}).get("id", ""))
    title, severity, alarm = "", Severity.SEV2, ""
    try:
        value = json.loads(str(action.get("value", "")))
        title = str(value["title"]).strip()[:200]
        severity = Severity(str(value.get("severity") or "sev2").lower())
        alarm = str(value.get("alarm") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        title = ""
    if not title:
        await respond(
            response_type="ephemeral", replace_original=False, text="This button is broken."
        )
        return
    async with deps.inflight.track():
        try:
            incident = await deps.incidents.declare(severity, title, user, alarm=alarm)
        except ChatOpsError as exc:
            await respond(response_type="ephemeral", replace_original=False, text=exc.user_message)
            return
    await respond(
        response_type="ephemeral",
        replace_original=False,
        text=f"Incident `{incident.id}` declared from {inert(alarm or 'the alarm')}: "
        f"<#{incident.channel}>. You are the commander.",
    )


def register(router: CommandRouter) -> None:
    router.add("incident_declare", declare)
    router.add("incident_update", update)
    router.add("incident_status", status)
    router.add("incident_commander", commander)
    router.add("incident_resolve", resolve)


def register_actions(app: AsyncApp) -> None:
    app.action(IncidentActionId.CHECKLIST.value)(on_checklist)
    app.action(IncidentActionId.DECLARE_FROM_ALARM.value)(on_declare_from_alarm)
