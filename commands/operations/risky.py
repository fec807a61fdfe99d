"""deploy / rollback / scale / db restore: turn the request into an Action and submit it."""

from __future__ import annotations

from collections.abc import Callable

from approvals.models import Action
from commands.deps import Deps
from commands.operations.deploy import DeployAction
from commands.operations.restore import DbRestoreAction
from commands.operations.rollback import RollbackAction
from commands.operations.scale import ScaleAction
from commands.requests import (
    DbRestoreRequest,
    DeployRequest,
    Request,
    RollbackRequest,
    ScaleRequest,
)
from commands.router import CommandRouter, Invocation

# A builder turns a parsed request into its Action. It may consult the config and the clock
# (never AWS: that is the Action's plan) and raise ChatOpsError to refuse before anything is
# stored or posted.
Builder = Callable[[Request, Deps], Action]


def _deploy(request: Request, _deps: Deps) -> Action:
    assert isinstance(request, DeployRequest)
    return DeployAction(
        service=request.service,
        env=request.env,
        tag=request.tag,
        reason=request.reason,
        break_glass=request.break_glass,
    )


def _rollback(request: Request, _deps: Deps) -> Action:
    assert isinstance(request, RollbackRequest)
    return RollbackAction(
        service=request.service,
        env=request.env,
        to_revision=request.to_revision,
        reason=request.reason,
        break_glass=request.break_glass,
    )


def _scale(request: Request, _deps: Deps) -> Action:
    assert isinstance(request, ScaleRequest)
    return ScaleAction(
        service=request.service,
        env=request.env,
        min=request.min,
        max=request.max,
        desired=request.desired,
        reason=request.reason,
        break_glass=request.break_glass,
    )


def _db_restore(request: Request, deps: Deps) -> Action:
    assert isinstance(request, DbRestoreRequest)
    action = DbRestoreAction(
        env=request.env,
        to=request.to,
        requested_at=deps.clock.now(),
        reason=request.reason,
        break_glass=request.break_glass,
    )
    action.db_instance(deps.config)  # refuse at once when the env has no database
    return action


BUILDERS: dict[str, Builder] = {
    "deploy": _deploy,
    "rollback": _rollback,
    "scale": _scale,
    "db_restore": _db_restore,
}
ACTIONS: list[type[Action]] = [DeployAction, RollbackAction, ScaleAction, DbRestoreAction]


async def submit(invocation: Invocation) -> None:
    action = BUILDERS[invocation.request.kind](invocation.request, invocation.deps)
    submitted = await invocation.deps.flow.submit(action, invocation.user_id, invocation.channel_id)
    request = submitted.request
    where = f"<#{request.channel}>"
    if submitted.runs_now:
        text = (
            f"{request.plan.summary}: running now — {request.env} needs no approval. "
            f"Follow it on the card in {where}."
        )
    else:
        text = (
            f"Approval requested: {request.plan.summary}. The card is in {where}; it needs "
            f"{request.required} approval(s) and expires in "
            f"{invocation.deps.config.approvals.ttl_seconds // 60} min."
        )
    await invocation.respond(response_type="ephemeral", text=text)


def register(router: CommandRouter) -> None:
    for kind in BUILDERS:
        router.add(kind, submit)
