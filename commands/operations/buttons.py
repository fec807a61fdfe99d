"""Approve / Deny / Cancel on the approval card, and Roll back under an alarm or a deploy:
call the flow, tell a refused clicker why. The preamble is commands/buttons.py's."""

from __future__ import annotations

from typing import Any

import structlog

from commands.buttons import Buttons, Click, json_object, text
from commands.ids import ActionId, AlarmActionId
from commands.operations.deps import OperationsDeps
from commands.operations.rollback import RollbackAction

log = structlog.get_logger(__name__)

buttons: Buttons[OperationsDeps] = Buttons()


@buttons.button(ActionId.APPROVE, ActionId.DENY, ActionId.CANCEL, read=text)
async def on_click(click: Click[OperationsDeps, str]) -> None:
    """The value is the request's id."""
    request_id, flow = click.value, click.deps.flow
    decide = {
        ActionId.APPROVE: flow.approve,
        ActionId.DENY: flow.deny,
        ActionId.CANCEL: flow.cancel,
    }
    outcome = await decide[ActionId(click.action_id)](request_id, click.user)
    log.info("approval.click", action=click.action_id, request_id=request_id, status=outcome.status)
    if outcome.refusal is not None:
        await click.reply(outcome.refusal.text)


def _rollback_fields(raw: str) -> dict[str, Any]:
    """The button's {"service","env","to":"family:revision","alarm"} as rollback fields."""
    target = json_object(raw)
    return {
        "service": str(target["service"]),
        "env": str(target["env"]),
        "to_revision": int(str(target["to"]).rsplit(":", 1)[1]),
        "reason": f"{target.get('alarm', 'an alarm')} fired after the deploy",
    }


def _unknown_target(deps: OperationsDeps, service: object, env: object) -> str | None:
    if service not in deps.config.services:
        what = f'service "{service}"'
    elif env not in deps.config.environments:
        what = f'environment "{env}"'
    else:
        return None
    return f"This button names {what}, which is no longer configured. Nothing was changed."


@buttons.button(AlarmActionId.ROLLBACK, read=_rollback_fields)
async def on_rollback(click: Click[OperationsDeps, dict[str, Any]]) -> None:
    """Roll back button under an alarm that fired after a deploy: opens a rollback request
    (through the same two-person flow) to the revision that ran before."""
    deps, fields = click.deps, click.value
    # The environment is the one on the button (the alarm's own, or the deploy's): never
    # re-guessed here. One no longer configured refuses rather than falling back.
    unknown = _unknown_target(deps, fields["service"], fields["env"])
    if unknown:
        await click.reply(unknown)
        return
    action = RollbackAction.model_validate(fields)
    submitted = await deps.flow.submit(action, click.user, click.channel)
    request = submitted.request
    await click.reply(
        f"Rollback requested: {request.plan.summary}. The card is in <#{request.channel}>."
    )
