"""What the two approval state machines check alike (test_approval_state_machine.py on the
engine, test_flow_state_machine.py on the whole flow with moto)."""

from __future__ import annotations

from typing import Any

from approvals.models import TRANSITIONS, ApprovalRequest, State


def check_transitions(request: ApprovalRequest, events: list[dict[str, Any]]) -> None:
    """A request's event list is a walk of ``TRANSITIONS`` from NEW, with increasing
    versions, approvals only while pending, late outcomes only after in doubt, ending in the
    stored state."""
    assert events, "no events"
    assert events[0]["event"] == "created"
    state = State.NEW
    version = 0
    in_doubt_at = None
    for index, event in enumerate(events):
        assert event["version"] > version, f"versions not increasing: {events}"
        version = event["version"]
        if index == 0:
            continue
        name = event["event"]
        if name == "approval":
            assert state is State.PENDING, f"approval recorded in {state}: {events}"
        elif name == "late_outcome":
            assert state is State.IN_DOUBT, f"late outcome in {state}: {events}"
        else:
            new = State(name)
            assert new in TRANSITIONS.get(state, frozenset()), (
                f"{request.id}: {state} -> {new} is not a transition: {events}"
            )
            state = new
            if new is State.IN_DOUBT:
                in_doubt_at = index
    assert state is request.state, f"stored {request.state}, events end in {state}"
    if in_doubt_at is not None:
        assert all(e["event"] == "late_outcome" for e in events[in_doubt_at + 1 :])
