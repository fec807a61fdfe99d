"""The execution gate: what `submit` checked and the click relied on, checked again immediately
before the first AWS mutation of any risky action.

Each rule is one pure function over a `GateContext` gathered by the flow at that moment; it
returns None when it holds, or the reason (for the card, the audit and the person who clicked)
when it does not. The flow runs `RULES` in order and stops at the first that fails, so the next
risky command gets every rule without writing any of them.

| rule                     | holds when                                                         |
|--------------------------|--------------------------------------------------------------------|
| claim_held               | the request is executing under this executor's claim token (a Lua  |
|                          | compare that also extends the lease: never after an in-doubt mark) |
| not_expired              | it became approved before it expired, and runs within a short grace|
| no_lock_or_freeze        | no `/dhanam lock` and no freeze window now, unless break-glass     |
| approvers_still_eligible | enough of the counted approvers are approvers now (current config  |
|                          | and group membership), never the requester                         |
| plan_unchanged           | the plan made now has the approved plan's fingerprint              |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from approvals.models import ApprovalRequest, Plan, State
from approvals.policy import Hold, blockers, mention, required_approvals
from core.config import EnvironmentConfig

# How long after it became approved a request may still start when that was just before its
# expiry: enough for the sweeper to pick up an orphan (30 s) with room to spare.
EXECUTE_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class GateContext:
    """The facts at the moment of the check."""

    request: ApprovalRequest  # as the claim check just read it from the store
    claim_held: bool  # the Lua compare of the claim token answered "extended"
    now: datetime
    env: EnvironmentConfig | None  # the environment in the current config (None: removed)
    hold: Hold | None  # the `/dhanam lock` on the action's scope, now
    approvers_now: frozenset[str]  # the environment's approvers expanded now (groups fresh)
    critical: bool
    approved_plan: Plan
    current_plan: Plan
    unreadable_groups: dict[str, str] = field(default_factory=dict)  # group -> Slack's reason
    # The environment's requesters expanded now; None: anyone may request ("*").
    requesters_now: frozenset[str] | None = None
    # The configuration lets it run on the requester's word (a read-only one-off task): no
    # approvals needed, no lock or freeze holds it.
    waived: bool = False
    # Its locks and freezes were judged when it first started and are judged at the gate only
    # (a resumed activation: a freeze that began meanwhile must not stop it half-done).
    holds_judged: bool = False


Rule = Callable[[GateContext], str | None]


def claim_held(ctx: GateContext) -> str | None:
    if ctx.claim_held and ctx.request.state is State.EXECUTING:
        return None
    state = ctx.request.state.value.replace("_", " ")
    return f"the bot no longer holds this request's claim (it is {state})"


def not_expired(ctx: GateContext) -> str | None:
    request = ctx.request
    if request.resumed_at is not None:
        return None  # it started in time; a replica resuming it is not a new start
    approved = request.approved_at or max(
        (a.at for a in request.approvals), default=request.created_at
    )
    if approved > request.expires_at:
        return f"it was approved after it expired at {request.expires_at:%H:%M:%S} UTC"
    deadline = max(request.expires_at, approved + EXECUTE_GRACE)
    if ctx.now > deadline:
        return f"it expired at {request.expires_at:%H:%M:%S} UTC before it could start"
    return None


def no_lock_or_freeze(ctx: GateContext) -> str | None:
    if ctx.env is None or ctx.request.break_glass or ctx.waived or ctx.holds_judged:
        return None
    blocked = blockers(ctx.env, ctx.now, ctx.hold)
    if not blocked:
        return None
    return "; ".join(blocked) + " (a break-glass request would pass)"


def requester_still_permitted(ctx: GateContext) -> str | None:
    """Who asked may still ask in this environment (a requester removed from `requesters`, or
    from its group, since asking does not keep the request)."""
    request = ctx.request
    if ctx.env is None:
        return f"{request.env} is no longer in the configuration"
    if ctx.requesters_now is None or request.requester in ctx.requesters_now:
        return None
    return (
        f"<@{request.requester}> is not among {request.env}'s requesters now (removed, or "
        "their group could not be read)"
    )


def approvers_still_eligible(ctx: GateContext) -> str | None:
    request = ctx.request
    if ctx.env is None:
        return f"{request.env} is no longer in the configuration"
    needed = max(
        request.required,
        required_approvals(
            ctx.env, critical=ctx.critical, break_glass=request.break_glass, waived=ctx.waived
        ),
    )
    if needed == 0:
        return None
    counted = [
        a.user
        for a in request.approvals
        if a.user in ctx.approvers_now and a.user != request.requester
    ]
    if len(set(counted)) >= needed:
        return None
    gone = [a.user for a in request.approvals if a.user not in counted]
    who = ", ".join(mention(u) for u in gone)
    if gone and ctx.unreadable_groups:
        groups = ", ".join(
            f"{mention(g)} ({reason})" for g, reason in sorted(ctx.unreadable_groups.items())
        )
        why = (
            f"{who} could not be confirmed as {'an approver' if len(gone) == 1 else 'approvers'}"
            f" in {request.env}: Slack did not list the members of {groups}; "
        )
    else:
        verb = "is" if len(gone) == 1 else "are"
        why = f"{who} {verb} no longer {'an approver' if len(gone) == 1 else 'approvers'} in "
        why += f"{request.env}; "
    return (why if gone else "") + (
        f"it needs {needed} approval{'s' if needed != 1 else ''} from current approvers "
        f"and has {len(set(counted))}"
    )


def plan_unchanged(ctx: GateContext) -> str | None:
    if ctx.current_plan.fingerprint == ctx.approved_plan.fingerprint:
        return None
    changed = "; ".join(ctx.current_plan.drift_from(ctx.approved_plan)) or "its inputs"
    return f"the plan changed since it was approved ({changed}); ask again to approve the new plan"


RULES: tuple[tuple[str, Rule], ...] = (
    ("claim_held", claim_held),
    ("not_expired", not_expired),
    ("no_lock_or_freeze", no_lock_or_freeze),
    ("requester_still_permitted", requester_still_permitted),
    ("approvers_still_eligible", approvers_still_eligible),
    ("plan_unchanged", plan_unchanged),
)


@dataclass(frozen=True)
class GateRefusal:
    rule: str
    reason: str


def check(ctx: GateContext) -> GateRefusal | None:
    """The first rule that does not hold, or None when the action may run."""
    for name, rule in RULES:
        reason = rule(ctx)
        if reason is not None:
            return GateRefusal(name, reason)
    return None
