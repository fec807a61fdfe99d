"""deploy / rollback / scale / db restore: turn the request into an Action and submit it."""

from __future__ import annotations

from collections.abc import Callable

from approvals.models import Action
from commands.actions.deploy import DeployAction
from commands.requests import DeployRequest, Request
from commands.router import CommandRouter, Invocation

Builder = Callable[[Request], Action]


def _deploy(request: Request) -> Action:
    assert isinstance(request, DeployRequest)
    return DeployAction(
        service=request.service,
        env=request.env,
        tag=request.tag,
        reason=request.reason,
        break_glass=request.break_glass,
    )


BUILDERS: dict[str, Builder] = {"deploy": _deploy}
ACTIONS: list[type[Action]] = [DeployAction]


async def submit(invocation: Invocation) -> None:
    action = BUILDERS[invocation.request.kind](invocation.request)
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
