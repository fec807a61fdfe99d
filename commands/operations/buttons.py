"""Approve / Deny / Cancel buttons: ack, call the flow, tell a refused clicker why."""

from __future__ import annotations

import json
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from approvals.flow import Click
from commands.deps import DEPS_KEY, Deps
from commands.ids import ActionId, AlarmActionId
from core.errors import ChatOpsError

log = structlog.get_logger(__name__)


async def on_click(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: dict[str, Any],
) -> None:
    await ack()
    deps: Deps = context[DEPS_KEY]
    user = str(body.get("user", {}).get("id", ""))
    request_id = str(action.get("value", ""))
    flow = deps.flow
    handlers = {
        ActionId.APPROVE: flow.approve,
        ActionId.DENY: flow.deny,
        ActionId.CANCEL: flow.cancel,
    }
    handler = handlers[ActionId(action["action_id"])]
    async with deps.inflight.track():
        try:
            click: Click = await handler(request_id, user)
        except ChatOpsError as exc:
            await respond(response_type="ephemeral", replace_original=False, text=exc.user_message)
            return
    log.info(
        "approval.click", action=action["action_id"], request_id=request_id, status=click.status
    )
    if click.refusal is not None:
        await respond(response_type="ephemeral", replace_original=False, text=click.refusal.text)


def _unknown_target(deps: Deps, service: object, env: object) -> str | None:
    if service not in deps.config.services:
        what = f'service "{service}"'
    elif env not in deps.config.environments:
        what = f'environment "{env}"'
    else:
        return None
    return f"This button names {what}, which is no longer configured — nothing was changed."


async def on_rollback(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: dict[str, Any],
) -> None:
    """Roll back button under an alarm that fired after a deploy: opens a rollback request
    (through the same two-person flow) to the revision that ran before."""
    await ack()
    deps: Deps = context[DEPS_KEY]
    user = str(body.get("user", {}).get("id", ""))
    channel = str(body.get("channel", {}).get("id", ""))
    async with deps.inflight.track():
        try:
            target = json.loads(str(action.get("value", "")))
            revision = int(str(target["to"]).rsplit(":", 1)[1])
            fields = {
                "service": str(target["service"]),
                "env": str(target["env"]),
                "to_revision": revision,
                "reason": f"{target.get('alarm', 'an alarm')} fired after the deploy",
            }
        except (ValueError, KeyError, IndexError, TypeError):
            await respond(
                response_type="ephemeral", replace_original=False, text="This button is broken."
            )
            return
        # The environment is the one on the button (the alarm's own, or the deploy's): never
        # re-guessed here. One no longer configured refuses rather than falling back.
        unknown = _unknown_target(deps, fields["service"], fields["env"])
        if unknown:
            await respond(response_type="ephemeral", replace_original=False, text=unknown)
            return
        try:
            action_cls = deps.flow.registry.kind("rollback")
            submitted = await deps.flow.submit(action_cls.model_validate(fields), user, channel)
        except ChatOpsError as exc:
            await respond(response_type="ephemeral", replace_original=False, text=exc.user_message)
            return
    request = submitted.request
    await respond(
        response_type="ephemeral",
        replace_original=False,
        text=f"Rollback requested: {request.plan.summary}. The card is in <#{request.channel}>.",
    )


def register(app: AsyncApp) -> None:
    for action_id in ActionId:
        app.action(action_id.value)(on_click)
    app.action(AlarmActionId.ROLLBACK.value)(on_rollback)
