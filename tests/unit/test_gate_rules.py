"""The execution gate's rules, each on its own (approvals/gate.py): pure functions over the
facts at the moment just before the first AWS mutation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from approvals.gate import (
    EXECUTE_GRACE,
    RULES,
    GateContext,
    approvers_still_eligible,
    check,
    claim_held,
    no_lock_or_freeze,
    not_expired,
    plan_unchanged,
    requester_still_permitted,
)
from approvals.models import Approval, ApprovalRequest, Plan, State
from approvals.policy import Hold
from core.config import load_config

CONFIG = load_config(Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml")
PROD = CONFIG.environments["production"]
STAGING = CONFIG.environments["staging"]
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PLAN = Plan.build("Deploy api to production", inputs={"task_definition": "arn:3"})
APPROVERS = frozenset({"U0BOB", "U0CAROL"})


def request(**extra: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "id": "abc123",
        "kind": "deploy",
        "action": {},
        "plan": PLAN,
        "requester": "U0ALICE",
        "env": "production",
        "service": "api",
        "required": 1,
        "state": State.EXECUTING,
        "created_at": NOW - timedelta(minutes=5),
        "expires_at": NOW + timedelta(minutes=10),
        "approvals": [Approval(user="U0BOB", at=NOW - timedelta(seconds=2))],
        "approved_at": NOW - timedelta(seconds=2),
    }
    fields.update(extra)
    return ApprovalRequest.model_validate(fields)


def context(**extra: Any) -> GateContext:
    fields: dict[str, Any] = {
        "request": request(),
        "claim_held": True,
        "now": NOW,
        "env": PROD,
        "hold": None,
        "approvers_now": APPROVERS,
        "critical": False,
        "approved_plan": PLAN,
        "current_plan": PLAN,
    }
    fields.update(extra)
    return GateContext(**fields)


def test_every_rule_holds_on_the_happy_path() -> None:
    ctx = context()
    assert [name for name, rule in RULES if rule(ctx) is not None] == []
    assert check(ctx) is None


def test_claim_held_needs_the_token_and_the_executing_state() -> None:
    assert claim_held(context()) is None
    assert "no longer holds" in (claim_held(context(claim_held=False)) or "")
    in_doubt = context(request=request(state=State.IN_DOUBT), claim_held=False)
    assert "in doubt" in (claim_held(in_doubt) or "")
    # a stale read of "executing" with a lost token still fails
    assert claim_held(context(claim_held=False, request=request())) is not None


def test_not_expired_allows_a_short_grace_after_a_late_approval() -> None:
    expires = NOW - timedelta(seconds=10)
    late = request(expires_at=expires, approved_at=expires - timedelta(seconds=1))
    assert not_expired(context(request=late)) is None  # within EXECUTE_GRACE of approval
    stale = context(request=late, now=expires + EXECUTE_GRACE + timedelta(seconds=1))
    assert "expired" in (not_expired(stale) or "")
    after = request(expires_at=expires, approved_at=expires + timedelta(seconds=1))
    assert "approved after it expired" in (not_expired(context(request=after)) or "")


def test_not_expired_without_approved_at_uses_the_last_approval() -> None:
    old = request(
        approved_at=None,
        expires_at=NOW - timedelta(hours=1),
        approvals=[Approval(user="U0BOB", at=NOW - timedelta(hours=2))],
    )
    assert not_expired(context(request=old)) is not None


def test_a_lock_or_a_freeze_stops_it_unless_break_glass() -> None:
    hold = Hold(scope="api:production", reason="db migration running", by="U0CAROL", at=NOW)
    reason = no_lock_or_freeze(context(hold=hold)) or ""
    assert "locked by <@U0CAROL>: db migration running" in reason
    assert no_lock_or_freeze(context(hold=hold, request=request(break_glass=True))) is None
    frozen = datetime(2026, 12, 25, 12, 0, tzinfo=UTC)  # the example's holiday freeze
    assert "Holiday freeze" in (no_lock_or_freeze(context(now=frozen)) or "")
    assert no_lock_or_freeze(context(now=frozen, request=request(break_glass=True))) is None


def test_a_lock_reason_is_shown_inert() -> None:
    hold = Hold(scope="api:production", reason="<!channel> now", by="U0CAROL", at=NOW)
    assert "&lt;!channel&gt; now" in (no_lock_or_freeze(context(hold=hold)) or "")


def test_an_approver_who_left_no_longer_counts() -> None:
    assert approvers_still_eligible(context()) is None
    gone = approvers_still_eligible(context(approvers_now=frozenset({"U0CAROL"}))) or ""
    assert "<@U0BOB> is no longer an approver in production" in gone
    assert "needs 1 approval from current approvers and has 0" in gone


def test_the_requester_never_counts_even_if_recorded() -> None:
    sneaky = request(approvals=[Approval(user="U0ALICE", at=NOW)])
    assert approvers_still_eligible(context(request=sneaky)) is not None


def test_a_raised_requirement_applies_at_execution() -> None:
    stricter = PROD.model_copy(update={"approvals_required": 2})
    assert "needs 2 approvals" in (approvers_still_eligible(context(env=stricter)) or "")
    critical = approvers_still_eligible(context(critical=True)) or ""
    assert "needs 2 approvals" in critical


def test_an_environment_removed_from_the_config_stops_it() -> None:
    assert "no longer in the configuration" in (approvers_still_eligible(context(env=None)) or "")


def test_no_approval_needed_passes_with_no_approvers() -> None:
    auto = request(env="staging", required=0, approvals=[])
    assert approvers_still_eligible(context(request=auto, env=STAGING)) is None


def test_plan_unchanged_names_what_moved() -> None:
    moved = Plan.build("Deploy api to production", inputs={"task_definition": "arn:4"})
    reason = plan_unchanged(context(current_plan=moved)) or ""
    assert "task_definition: arn:3 → arn:4" in reason


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        ({"claim_held": False}, "claim_held"),
        ({"now": NOW + timedelta(hours=1)}, "not_expired"),
        (
            {"hold": Hold(scope="api:production", reason="x", by="U0CAROL", at=NOW)},
            "no_lock_or_freeze",
        ),
        ({"approvers_now": frozenset()}, "approvers_still_eligible"),
        (
            {"current_plan": Plan.build("x", inputs={"task_definition": "arn:9"})},
            "plan_unchanged",
        ),
    ],
)
def test_check_names_the_first_rule_that_fails(extra: dict[str, Any], rule: str) -> None:
    refusal = check(context(**extra))
    assert refusal is not None
    assert refusal.rule == rule


def test_a_requester_removed_since_asking_stops_the_request() -> None:
    """Asking does not keep the right to ask: the gate checks `requesters` again, now."""
    assert requester_still_permitted(context()) is None  # "*" (the example's production)
    still = context(requesters_now=frozenset({"U0ALICE", "U0ERIN"}))
    assert requester_still_permitted(still) is None
    removed = context(requesters_now=frozenset({"U0ERIN"}))
    refusal = requester_still_permitted(removed)
    assert refusal is not None
    assert "<@U0ALICE> is not among production's requesters now" in refusal
    assert "requester_still_permitted" in [name for name, rule in RULES if rule(removed)]
