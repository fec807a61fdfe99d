"""Operations as one feature: the risky commands and lock/unlock/approvals/audit, the card's
buttons, the approval sweeper and the rollout takeover, and what stops at shutdown (executions
drain first, then the rollout followers)."""

from __future__ import annotations

from approvals.flow import ApprovalFlow
from approvals.rollout import RolloutFollower
from commands.feature import Feature
from commands.operations import buttons, risky, state
from commands.operations.deps import OperationsDeps


def operations_feature(
    deps: OperationsDeps, *, flow: ApprovalFlow, follower: RolloutFollower
) -> Feature[OperationsDeps]:
    return Feature(
        name="operations",
        deps=deps,
        commands=[risky.register, state.register],
        buttons=[buttons.buttons],
        jobs={"approvals.sweeper": flow.run_sweeper, "rollout.takeover": follower.run_takeover},
        stops=[follower.stop, flow.drain],
    )
