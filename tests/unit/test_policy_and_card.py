"""The two-person rule's pure parts: policy functions and the approval card renderer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from approvals.models import Approval, ApprovalRequest, Change, Plan, State
from approvals.policy import Hold, blockers, may_request, refusal_for, required_approvals
from commands.ids import ActionId
from commands.operations.card import card_blocks
from core.config import load_config

CONFIG = load_config(Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml")
PROD = CONFIG.environments["production"]
STAGING = CONFIG.environments["staging"]
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def request(state: State = State.PENDING, **extra: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": "abc123",
        "kind": "deploy",
        "action": {},
        "plan": Plan.build(
            "Deploy api to production: v1.2.0 → v1.3.0",
            inputs={"task_definition": "arn:3"},
            changes=[Change(label="image tag", before="v1.2.0", after="v1.3.0")],
            facts=["no alarms in ALARM"],
        ),
        "requester": "U0ALICE",
        "reason": "fix login",
        "env": "production",
        "service": "api",
        "channel": "C0DEPLOYS",
        "ts": "1.0",
        "required": 1,
        "state": state,
        "created_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
    }
    fields.update(extra)
    return ApprovalRequest.model_validate(fields)


def test_required_approvals() -> None:
    assert required_approvals(PROD, critical=False, break_glass=False) == 1
    assert required_approvals(PROD, critical=False, break_glass=True) == 2
    assert required_approvals(PROD, critical=True, break_glass=False) == 2
    assert required_approvals(PROD, critical=True, break_glass=True) == 3
    assert required_approvals(STAGING, critical=False, break_glass=False) == 0
    assert required_approvals(STAGING, critical=False, break_glass=True) == 1


def test_may_request() -> None:
    assert may_request(PROD, "U0ANYONE", frozenset())
    restricted = PROD.model_copy(update={"requesters": ["U0ALICE", "S0DEVS"]})
    assert may_request(restricted, "U0ALICE", frozenset({"U0ALICE"}))
    assert may_request(restricted, "U0ERIN", frozenset({"U0ALICE", "U0ERIN"}))
    assert not may_request(restricted, "U0DAVE", frozenset({"U0ALICE"}))


def test_blockers_name_freeze_and_lock() -> None:
    assert blockers(PROD, NOW, None) == []
    christmas = datetime(2026, 12, 25, 12, tzinfo=UTC)
    assert blockers(PROD, christmas, None) == ["freeze until 2026-12-27 00:00 UTC: Holiday freeze"]
    hold = Hold(scope="api:production", reason="db migration", by="U0CAROL", at=NOW)
    assert blockers(PROD, NOW, hold) == ["locked by <@U0CAROL>: db migration"]
    assert len(blockers(PROD, christmas, hold)) == 2


def test_refusals_say_why() -> None:
    pending = request()
    assert "two-person rule" in refusal_for("self", pending, PROD).text
    not_approver = refusal_for("not_approver", pending, PROD).text
    assert "<@U0BOB>, <@U0CAROL>, <!subteam^S0SRE>" in not_approver
    assert "Only <@U0ALICE>" in refusal_for("not_requester", pending, PROD).text
    assert "expired" in refusal_for("expired", pending, PROD).text
    denied = request(State.DENIED, decided_by="U0BOB")
    assert refusal_for("decided", denied, PROD).text == "Already decided: denied by <@U0BOB>."
    approved = request(State.APPROVED, approvals=[Approval(user="U0BOB", at=NOW)], required=2)
    assert "needs 1 more" in refusal_for("duplicate", approved, PROD).text


def test_pending_card_has_everything_an_approver_needs() -> None:
    blocks = card_blocks(request(), ["U0BOB", "S0SRE"], NOW)
    text = str(blocks)
    assert blocks[0]["text"]["text"] == "Deploy api to production: v1.2.0 → v1.3.0"
    assert "<@U0ALICE>" in text
    assert "fix login" in text
    assert "`v1.2.0` → `v1.3.0`" in text
    assert "no alarms in ALARM" in text
    assert "0 of 1" in text
    assert "Waiting for 1 more approval from <@U0BOB>, <!subteam^S0SRE>" in text
    assert "(in 15 min)" in text
    assert request().plan.short_fingerprint in text
    actions = next(b for b in blocks if b["type"] == "actions")
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == [ActionId.APPROVE, ActionId.DENY, ActionId.CANCEL]
    approve, deny, _ = actions["elements"]
    assert approve["style"] == "primary"
    assert "confirm" in approve
    assert deny["style"] == "danger"


def test_decided_cards_have_no_buttons_and_say_the_outcome() -> None:
    cases = {
        State.SUCCEEDED: "Done",
        State.FAILED: "Failed",
        State.DENIED: "Denied by <@U0BOB>",
        State.CANCELLED: "Cancelled by <@U0BOB>",
        State.EXPIRED: "Expired — nothing was changed",
        State.IN_DOUBT: "Outcome unknown — check status",
        State.EXECUTING: "Executing",
    }
    for state, words in cases.items():
        blocks = card_blocks(request(state, decided_by="U0BOB", outcome="it happened"), [], NOW)
        assert not any(b["type"] == "actions" for b in blocks), state
        assert words in str(blocks), state


def test_break_glass_is_flagged() -> None:
    blocks = card_blocks(request(break_glass=True, warnings=["Break-glass past: freeze"]), [], NOW)
    assert "BREAK-GLASS" in str(blocks)
    assert "Break-glass past: freeze" in str(blocks)


def _status_text(blocks: list[dict[str, object]]) -> str:
    status = next(b for b in blocks if b.get("block_id") == "approval_status")
    text = status["text"]
    assert isinstance(text, dict)
    return str(text["text"])


def test_waiting_lists_only_those_who_can_still_approve() -> None:
    """Bob approved a two-approver restore: the card waits for 1 more from Carol and the SRE
    group, not from Bob again, and never from the requester."""
    pending = request(approvals=[Approval(user="U0BOB", at=NOW)], required=2)
    status = _status_text(card_blocks(pending, ["U0ALICE", "U0BOB", "U0CAROL", "S0SRE"], NOW))
    assert status.startswith(
        ":hourglass_flowing_sand: Waiting for 1 more approval from <@U0CAROL>, "
        "<!subteam^S0SRE> · expires"
    )


def test_a_change_without_approval_tells_one_story() -> None:
    staging = request(State.APPROVED, env="staging", required=0)
    blocks = card_blocks(staging, [], NOW)
    assert _status_text(blocks) == (
        ":arrow_forward: Runs without approval in staging — started by <@U0ALICE>"
    )
    assert "not needed in staging (audited)" in str(blocks)
    assert "Approved — starting" not in str(blocks)


def test_a_followed_deploy_is_rolling_out_until_the_follower_decides() -> None:
    done = "dhanam-api now on dhanam-api:4 (v1.3.0)"
    rolling = request(State.SUCCEEDED, outcome=done, followed=True)
    assert _status_text(card_blocks(rolling, [], NOW)) == (
        f":arrows_counterclockwise: Rolling out…\n{done}"
    )
    for verdict, mark in (
        ("completed in 1m 12s — 2/2 tasks on dhanam-api:4", ":white_check_mark: Rolled out"),
        ("failed after 3m 01s — tasks failed to start", ":x: Rollout failed"),
        ("timed out after 10m 00s — 1/2 running; check status", ":stopwatch: Rollout timed out"),
        ("no longer followed after 40s — the channel cannot be written", ":grey_question:"),
    ):
        settled = rolling.model_copy(update={"rollout": verdict})
        status = _status_text(card_blocks(settled, [], NOW))
        assert status.startswith(mark), status
        assert status.endswith(f"*Rollout:* {verdict}")
    unfollowed = request(State.SUCCEEDED, outcome="scaled", followed=False)
    assert _status_text(card_blocks(unfollowed, [], NOW)).startswith(":white_check_mark: Done")
