"""A resumed execution (its earlier attempt's replica stopped answering) never says "Nothing
was changed": the attempt before it may have changed things."""

from __future__ import annotations

from typing import Any

from approvals.execution import Execution
from core.errors import ChatOpsError
from tests.unit.test_policy_and_card import request as make_request


def execution(**extra: object) -> Execution:
    return Execution(flow=Any, request=make_request(**extra), token="t")  # type: ignore[arg-type]


def test_a_refused_resumed_request_promises_nothing() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    fresh = execution()
    fresh.refuse("plan_unchanged", "the plan changed")
    assert fresh.outcome(None)[1].endswith("Nothing was changed.")
    resumed = execution(resumed_at=datetime(2026, 12, 5, 23, 0, tzinfo=UTC))
    resumed.refuse("plan_unchanged", "the plan changed")
    ok, text = resumed.outcome(None)
    assert not ok
    assert "Nothing was changed" not in text
    assert text.startswith("Not resumed — the plan changed.")
    assert "may have made changes" in text
    failed = resumed._failed("AWS refused X. Nothing was changed.", ChatOpsError("x"))
    assert "Nothing was changed" not in failed
