"""A stored approval request reads back as it was written: every field of the model is either
in its Redis hash or written there by a Lua transition — a new field that is neither (as
`followed` once was) fails here, not silently on every card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from approvals.models import Approval, ApprovalRequest, Change, Plan, State
from approvals.store import from_hash, to_hash

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
# Written by the Lua transitions (approvals/lua.py), not by to_hash.
BY_THE_SCRIPTS = {
    "rollout": "rollout",
    "approved_at": "approved_ms",
    "checked_at": "checked_ms",
    "resumed_at": "resumed_ms",  # the sweeper's SWEEP script, handing a resumable request over
}
# Model field -> hash key, where they differ.
RENAMED = {"created_at": "created_ms", "expires_at": "expires_ms"}


def _everything_set() -> ApprovalRequest:
    return ApprovalRequest(
        id="abc123",
        kind="deploy",
        action={"env": "production", "service": "api", "tag": "v1.3.0"},
        plan=Plan(
            summary="Deploy api to production: v1.2.0 → v1.3.0",
            changes=[Change(label="image", before="v1.2.0", after="v1.3.0")],
            fingerprint="f" * 64,
        ),
        requester="U0ALICE",
        reason="fix login",
        env="production",
        service="api",
        channel="C0DEPLOYS",
        ts="1700000000.000100",
        origin_channel="C0OPS",
        approvals=[Approval(user="U0BOB", at=NOW)],
        required=2,
        state=State.EXECUTING,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
        break_glass=True,
        version=7,
        decided_by="U0BOB",
        outcome="dhanam-api now on dhanam-api:4",
        warnings=["1 alarm in ALARM"],
        followed=True,
    )


def test_every_field_is_stored_or_written_by_a_script() -> None:
    stored = to_hash(_everything_set())
    for name in ApprovalRequest.model_fields:
        key = RENAMED.get(name, name)
        assert key in stored or name in BY_THE_SCRIPTS, f"{name} is never stored"


def test_a_request_reads_back_as_it_was_written() -> None:
    original = _everything_set()
    fields = to_hash(original)
    fields.update({"rollout": "completed in 1 min — 2/2 tasks", "approved_ms": "1796486400000"})
    back = from_hash(fields)
    expected = original.model_copy(
        update={
            "rollout": "completed in 1 min — 2/2 tasks",
            "approved_at": datetime(2026, 12, 5, 16, 0, tzinfo=UTC),
        }
    )
    assert back == expected
    assert back.followed is True
