"""Each risky Action builds itself from its parsed request: every field a request carries is
one its action takes (by name or alias), so adding a request field without the action's fails
here, not on a deploy; and if it ever slips through, the person is told, nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from approvals.models import Action
from commands.operations.deploy import DeployAction
from commands.operations.dr_activate import DrActivateAction
from commands.operations.restore import DbRestoreAction
from commands.operations.risky import ACTIONS
from commands.operations.rollback import RollbackAction
from commands.operations.run_task import RunTaskAction
from commands.operations.scale import ScaleAction
from commands.requests import (
    DeployRequest,
    DrActivateRequest,
    Request,
    RollbackRequest,
    RunRequest,
    ScaleRequest,
)
from core.clock import ManualClock
from core.config import load_config
from core.errors import ChatOpsError
from examples import EXAMPLE_CONFIG

CONFIG = load_config(EXAMPLE_CONFIG)
CLOCK = ManualClock(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
BUILT_FROM_FIELDS: dict[type[Action], type[Request]] = {
    DeployAction: DeployRequest,
    RollbackAction: RollbackRequest,
    ScaleAction: ScaleRequest,
    RunTaskAction: RunRequest,
}


def _accepted(action: type[Action]) -> set[str]:
    return {f.alias or name for name, f in action.model_fields.items()} | set(action.model_fields)


def test_every_risky_action_is_listed_once() -> None:
    kinds = [a.kind for a in ACTIONS]
    assert sorted(kinds) == ["db_restore", "deploy", "dr_activate", "rollback", "run", "scale"]
    assert set(BUILT_FROM_FIELDS) | {DbRestoreAction, DrActivateAction} == set(ACTIONS)


@pytest.mark.parametrize(("action", "request_type"), BUILT_FROM_FIELDS.items())
def test_every_request_field_is_one_the_action_takes(
    action: type[Action], request_type: type[Request]
) -> None:
    fields = set(request_type.model_fields) - {"kind"}  # type: ignore[attr-defined]
    assert fields <= _accepted(action), fields - _accepted(action)


def test_the_built_actions_carry_what_was_asked() -> None:
    deploy = DeployAction.from_request(
        DeployRequest(service="api", env="production", tag="v1.3.0", reason="r", break_glass=True),
        CONFIG,
        CLOCK,
    )
    assert (deploy.service, deploy.env, deploy.tag, deploy.reason, deploy.break_glass) == (
        "api", "production", "v1.3.0", "r", True,
    )  # fmt: skip
    rollback = RollbackAction.from_request(
        RollbackRequest(service="web", env="staging", to_revision=2), CONFIG, CLOCK
    )
    assert (rollback.service, rollback.env, rollback.to_revision) == ("web", "staging", 2)
    scale = ScaleAction.from_request(
        ScaleRequest(service="api", env="production", desired=0), CONFIG, CLOCK
    )
    assert (scale.min, scale.max, scale.desired) == (None, None, 0)
    dr = DrActivateAction.from_request(
        DrActivateRequest(reason="us-east-1 down", break_glass=True), CONFIG, CLOCK
    )
    assert (dr.env, dr.region, dr.reason, dr.break_glass) == (
        "production", "us-west-2", "us-east-1 down", True,
    )  # fmt: skip
    assert (dr.lock_scope, dr.hold_scope, type(dr).critical) == (
        "dr:us-west-2",
        "env:production",
        True,
    )


def test_a_request_field_the_action_does_not_take_is_a_clear_refusal() -> None:
    class DryRunDeploy(DeployRequest):
        dry_run: bool = True

    with pytest.raises(ChatOpsError, match=r"bug in the bot\. Nothing was changed\.$") as caught:
        DeployAction.from_request(
            DryRunDeploy(service="api", env="production", tag="v1.3.0"), CONFIG, CLOCK
        )
    assert "bug" in caught.value.user_message
