"""`/dhanam incident …`, the checklist's checkboxes and the alarm's "Declare incident" button:
thin handlers over IncidentService."""

from __future__ import annotations

from dataclasses import dataclass

from approvals.policy import mention
from commands.buttons import Buttons, Click, json_object, text
from commands.ids import AlarmActionId, IncidentActionId
from commands.incidents.checklist_render import shown_ticks
from commands.incidents.deps import IncidentsDeps
from commands.requests import (
    DrActivateRequest,
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

buttons: Buttons[IncidentsDeps] = Buttons()


async def declare(inv: Invocation[IncidentsDeps]) -> None:
    request = inv.request
    assert isinstance(request, IncidentDeclareRequest)
    incidents = inv.deps.incidents
    incident = await incidents.declare(request.severity, request.title, inv.user_id)
    slash = incidents.config.slack.command
    await inv.respond(
        response_type="ephemeral",
        text=f"Incident `{incident.id}` declared: <#{incident.channel}>. You are the commander "
        f"(hand over with `{slash} incident commander @user`).",
    )
    await inv.deps.checklist.on_declare(incident)  # answered first: the checks come after


async def update(inv: Invocation[IncidentsDeps]) -> None:
    request = inv.request
    assert isinstance(request, IncidentUpdateRequest)
    await inv.deps.incidents.update(inv.channel_id, inv.user_id, request.text)
    await inv.respond(
        response_type="in_channel",
        text=f":loudspeaker: Update from {mention(inv.user_id)}: {inert(request.text)}",
    )


async def status(inv: Invocation[IncidentsDeps]) -> None:
    request = inv.request
    assert isinstance(request, IncidentStatusRequest)
    incident = await inv.deps.incidents.set_status(inv.channel_id, inv.user_id, request.state)
    if incident.open:
        await inv.respond(
            response_type="in_channel",
            text=f"Status → *{request.state.value}* ({mention(inv.user_id)})",
        )


async def commander(inv: Invocation[IncidentsDeps]) -> None:
    request = inv.request
    assert isinstance(request, IncidentCommanderRequest)
    await inv.deps.incidents.commander(inv.channel_id, inv.user_id, request.user_id)
    await inv.respond(
        response_type="in_channel",
        text=f":crown: {mention(request.user_id)} is now the incident commander "
        f"(handed over by {mention(inv.user_id)}).",
    )


async def resolve(inv: Invocation[IncidentsDeps]) -> None:
    request = inv.request
    assert isinstance(request, IncidentResolveRequest)
    incident = await inv.deps.incidents.resolve(inv.channel_id, inv.user_id, request.summary)
    await inv.respond(
        response_type="ephemeral",
        text=f"Incident `{incident.id}` resolved; the timeline is posted above.",
    )


@buttons.button(IncidentActionId.CHECKLIST, read=text)
async def on_checklist(click: Click[IncidentsDeps, str]) -> None:
    """A checkbox ticked or cleared: the action carries every option now selected; only what
    differs from the view the person clicked in is theirs (a stale view's missing ticks are not)."""
    selected = [str(o.get("value", "")) for o in click.action.get("selected_options") or []]
    shown = shown_ticks(click.action, click.body)
    await click.deps.checklist.tick(click.channel, click.user, selected, shown)


@buttons.button(IncidentActionId.RECHECK, read=text)
async def on_recheck(click: Click[IncidentsDeps, str]) -> None:
    """Run the checklist's checks again; the message is edited when they are done."""
    await click.deps.checklist.recheck(click.channel, click.user)


@buttons.button(IncidentActionId.ACTIVATE_DR, read=text)
async def on_activate_dr(click: Click[IncidentsDeps, str]) -> None:
    """The DR step's button: the `dr activate` request, exactly as if the clicker had typed
    `/dhanam dr activate --reason "sev1 <incident>"` in the incident channel."""
    incident = await click.deps.incidents.in_channel(click.channel, "checklist")
    if click.client is None:
        raise ChatOpsError("Slack gave this button no client; type the command instead.")
    user = click.body.get("user") or {}
    await click.deps.commands.run(
        DrActivateRequest(reason=f"sev1 {incident.id}"),
        user_id=click.user,
        user_name=str(user.get("username") or user.get("name") or ""),
        channel_id=click.channel,
        respond=click.respond,
        client=click.client,
    )


@dataclass(frozen=True)
class _Declaration:
    title: str
    severity: Severity
    alarm: str


def _declaration(raw: str) -> _Declaration:
    """The alarm message's "Declare incident" button: value {"title","severity","alarm"}."""
    value = json_object(raw)
    title = str(value["title"]).strip()[:200]
    if not title:
        raise ValueError("the button names no title")
    severity = Severity(str(value.get("severity") or "sev2").lower())
    return _Declaration(title, severity, str(value.get("alarm") or ""))


@buttons.button(AlarmActionId.DECLARE_INCIDENT, read=_declaration)
async def on_declare_from_alarm(click: Click[IncidentsDeps, _Declaration]) -> None:
    wanted = click.value
    incidents = click.deps.incidents
    incident = await incidents.declare(
        wanted.severity, wanted.title, click.user, alarm=wanted.alarm
    )
    await click.reply(
        f"Incident `{incident.id}` declared from {inert(wanted.alarm or 'the alarm')}: "
        f"<#{incident.channel}>. You are the commander."
    )
    await click.deps.checklist.on_declare(incident)


def register(router: CommandRouter, deps: IncidentsDeps) -> None:
    deps.commands.bind(router)  # the Activate DR button's way to `dr activate`
    router.add("incident_declare", declare, deps)
    router.add("incident_update", update, deps)
    router.add("incident_status", status, deps)
    router.add("incident_commander", commander, deps)
    router.add("incident_resolve", resolve, deps)
