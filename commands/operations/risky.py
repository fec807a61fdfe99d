"""deploy / rollback / scale / db restore / run / dr activate: the risky commands. Each is one
Action class that builds itself from its parsed request (`from_request`: it may consult the
config and the clock, never AWS — that is its plan — and may refuse with ChatOpsError before
anything is stored); listing it in ACTIONS is all the registration it needs (the router and the
approval engine both read this list).
"""

from __future__ import annotations

from typing import Protocol

from approvals.models import Action
from commands.operations.deploy import DeployAction
from commands.operations.deps import OperationsDeps
from commands.operations.dr_activate import DrActivateAction
from commands.operations.restore import DbRestoreAction
from commands.operations.rollback import RollbackAction
from commands.operations.run_task import RunTaskAction
from commands.operations.scale import ScaleAction
from commands.requests import Request
from commands.router import CommandRouter, Invocation
from core.clock import Clock
from core.config import Config
from core.text import duration, plural


class RiskyAction(Protocol):
    kind: str

    @classmethod
    def from_request(cls, request: Request, config: Config, clock: Clock) -> Action: ...


ACTIONS: list[type[Action]] = [
    DeployAction,
    RollbackAction,
    ScaleAction,
    DbRestoreAction,
    RunTaskAction,
    DrActivateAction,
]
_BY_KIND: dict[str, type[RiskyAction]] = {a.kind: a for a in ACTIONS}  # type: ignore[misc]


async def submit(invocation: Invocation[OperationsDeps]) -> None:
    deps = invocation.deps
    built = _BY_KIND[invocation.request.kind].from_request(
        invocation.request, deps.config, deps.clock
    )
    submitted = await deps.flow.submit(built, invocation.user_id, invocation.channel_id)
    request = submitted.request
    where = f"<#{request.channel}>"
    if submitted.runs_now:
        waived = built.approval_waived(deps.config)
        why = "the task needs no approval" if waived else f"{request.env} needs no approval"
        text = f"{request.plan.summary}: running now — {why}. Follow it on the card in {where}."
    else:
        text = (
            f"Approval requested: {request.plan.summary}. The card is in {where}; it needs "
            f"{plural(request.required, 'approval')} and expires in "
            f"{duration(deps.config.approvals.ttl_seconds)}."
        )
    await invocation.respond(response_type="ephemeral", text=text)


def register(router: CommandRouter, deps: OperationsDeps) -> None:
    for kind in _BY_KIND:
        router.add(kind, submit, deps)
