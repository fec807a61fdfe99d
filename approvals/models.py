"""The approval engine's vocabulary: Actions, Plans, Results, requests and their states.

The engine knows only these. A risky command is one Action subclass (frozen pydantic model
with `plan()` and `execute()`); adding one touches neither the engine nor the bot.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class State(StrEnum):
    NEW = "new"  # stored, card not yet posted: nothing may approve or run it
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    IN_DOUBT = "in_doubt"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {State.SUCCEEDED, State.FAILED, State.DENIED, State.CANCELLED, State.EXPIRED, State.IN_DOUBT}
)

# The only transitions there are. The Lua scripts in store.py enforce exactly these.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.NEW: frozenset({State.PENDING, State.APPROVED, State.CANCELLED, State.EXPIRED}),
    State.PENDING: frozenset({State.APPROVED, State.DENIED, State.CANCELLED, State.EXPIRED}),
    State.APPROVED: frozenset({State.EXECUTING, State.CANCELLED}),
    # executing -> approved only for a resumable Action whose executor stopped answering: the
    # sweeper hands it to another replica, which resumes it (Action.resumable).
    State.EXECUTING: frozenset({State.SUCCEEDED, State.FAILED, State.IN_DOUBT, State.APPROVED}),
}


class Change(BaseModel):
    """One line of a plan's before -> after diff."""

    model_config = ConfigDict(frozen=True)

    label: str
    before: str
    after: str


class Plan(BaseModel):
    """What is there now, what will change, and a fingerprint of exactly the inputs it used.

    `inputs` are the facts the change depends on (current task-definition ARN, the digest a tag
    resolves to, current counts…). Re-planning just before execution and comparing fingerprints
    tells whether any of them moved since the approvers looked.
    """

    model_config = ConfigDict(frozen=True)

    summary: str
    changes: list[Change] = Field(default_factory=list)
    facts: list[str] = Field(default_factory=list)  # context worth showing, e.g. open alarms
    warnings: list[str] = Field(default_factory=list)
    inputs: dict[str, Any] = Field(default_factory=dict)
    fingerprint: str = ""

    @classmethod
    def build(
        cls,
        summary: str,
        *,
        inputs: dict[str, Any],
        changes: list[Change] | None = None,
        facts: list[str] | None = None,
        warnings: list[str] | None = None,
    ) -> Plan:
        return cls(
            summary=summary,
            changes=changes or [],
            facts=facts or [],
            warnings=warnings or [],
            inputs=inputs,
            fingerprint=fingerprint(inputs),
        )

    @property
    def short_fingerprint(self) -> str:
        return self.fingerprint[:8]

    def drift_from(self, approved: Plan) -> list[str]:
        """Human-readable differences in inputs between the approved plan and this one."""
        keys = sorted(set(approved.inputs) | set(self.inputs))
        return [
            f"{key}: {approved.inputs.get(key)!s} → {self.inputs.get(key)!s}"
            for key in keys
            if approved.inputs.get(key) != self.inputs.get(key)
        ]


def fingerprint(inputs: dict[str, Any]) -> str:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)


class Action(BaseModel, ABC):
    """A risky change. `plan` is read-only; `execute` makes the change the plan describes.

    `runtime` is whatever the process wires in (AWS clients, Redis, clock); the engine passes it
    through untouched, so this package stays free of boto3 and Slack.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    critical: ClassVar[bool] = False  # critical actions need at least two approvers
    # Followed after a successful execution (a rollout the bot watches until it settles).
    followed: ClassVar[bool] = False
    # Its execute looks before each step and does only what is not done yet, so an execution
    # whose replica died is resumed by another replica (the sweeper hands it over) instead of
    # being marked in doubt. Only for Actions whose every step is idempotent this way.
    resumable: ClassVar[bool] = False
    # Locks and freezes are judged at the gate only, not again before each AWS change: an
    # action that must not stop half-done when one begins mid-run (DR activation).
    holds_checked_at_gate_only: ClassVar[bool] = False

    env: str
    reason: str | None = None
    break_glass: bool = False
    # Set by the flow before the first plan() and kept in the stored request, so plan() and
    # execute() can derive AWS-side idempotency keys from it (a tag, startedBy, a name).
    request_id: str | None = None
    # Who asked and who approved: set for execution (`for_execution`), never part of the plan
    # or its fingerprint, so they are not what is approved.
    requested_by: str | None = None
    approved_by: list[str] = Field(default_factory=list)

    def for_execution(self, request: ApprovalRequest) -> Action:
        """This action as the approved ``request`` runs it: its id, who asked, who approved."""
        return self.model_copy(
            update={
                "request_id": request.id,
                "requested_by": request.requester,
                "approved_by": list(request.approvers),
            }
        )

    @property
    def service(self) -> str | None:
        return None

    @property
    def lock_scope(self) -> str:
        """What one-at-a-time means for this action: service/env, or the env's database."""
        return f"{self.service or 'env'}:{self.env}"

    @property
    def lock_label(self) -> str:
        """The one-at-a-time scope as people read it (`api in production`)."""
        return self.lock_scope.replace(":", " in ")

    @property
    def hold_scope(self) -> str:
        """Which `/dhanam lock` holds this action: its service in its environment."""
        return f"{self.service or 'env'}:{self.env}"

    def approval_waived(self, config: Any) -> bool:
        """The configuration lets this action run on the requester's word alone (a read-only
        one-off task, `approvals = 0`): it needs no approval, and no lock or freeze holds it.
        ``config`` is the process's configuration, read when asked (never the stored one)."""
        del config
        return False

    @abstractmethod
    def title(self) -> str:
        """One line: `Deploy api to production: v1.3.0`."""

    @abstractmethod
    async def plan(self, runtime: Any) -> Plan: ...

    @abstractmethod
    async def execute(self, plan: Plan, runtime: Any) -> Result: ...

    async def applied(self, approved: Plan, runtime: Any) -> bool:
        """Read-only: is the world already where this request leads, so that executing the
        approved plan again would change nothing? True for a replay of a request whose change
        an earlier attempt made (its claim lost in a Redis failover). The engine then runs
        `execute(approved)` — idempotent, it finds everything in place — instead of refusing
        a plan that "changed" only because this very request changed it. Default: never."""
        del approved, runtime
        return False


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: str
    at: datetime


class ApprovalRequest(BaseModel):
    """One request, as stored. `version` increases with every change."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    action: dict[str, Any]
    plan: Plan
    requester: str
    reason: str | None = None
    env: str
    service: str | None = None
    channel: str | None = None
    ts: str | None = None
    origin_channel: str | None = None
    approvals: list[Approval] = Field(default_factory=list)
    required: int
    state: State
    created_at: datetime
    expires_at: datetime
    break_glass: bool = False
    version: int = 1
    decided_by: str | None = None
    outcome: str | None = None  # the result or refusal text of a final state
    warnings: list[str] = Field(default_factory=list)
    rollout: str | None = None  # what happened after execution: the rollout's progress/outcome
    # Followed after it succeeds (Action.followed): the card says "rolling out" until the
    # follower's verdict lands in `rollout`.
    followed: bool = False
    # Resumed by another replica when its executor stopped answering (Action.resumable).
    resumable: bool = False
    resumed_at: datetime | None = None  # when the sweeper last handed it over

    @property
    def approvers(self) -> list[str]:
        return [a.user for a in self.approvals]

    approved_at: datetime | None = None  # when it became approved (the last approval, or auto)
    checked_at: datetime | None = None  # Redis's time at the executor's last claim check

    def expired_at(self, now: datetime) -> bool:
        return self.state in (State.PENDING, State.NEW) and now >= self.expires_at


def utc_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def from_ms(value: int | str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
