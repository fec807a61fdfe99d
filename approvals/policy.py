"""The two-person rule as pure functions over config and resolved group membership."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from approvals.models import ApprovalRequest
from core.config import EnvironmentConfig
from core.text import inert, plural, words

ANYONE = "*"


@dataclass(frozen=True)
class Hold:
    """A lock on a service/environment placed with `/dhanam lock`."""

    scope: str
    reason: str
    by: str
    at: datetime


def may_request(env: EnvironmentConfig, user: str, expanded_requesters: frozenset[str]) -> bool:
    """`requesters` lists users and/or groups; `expanded_requesters` has the groups resolved."""
    return ANYONE in env.requesters or user in expanded_requesters


def required_approvals(
    env: EnvironmentConfig, *, critical: bool, break_glass: bool, waived: bool = False
) -> int:
    """Distinct approvers needed besides the requester. `waived`: the configuration lets the
    action run on the requester's word (a read-only one-off task); never for a critical one."""
    required = 0 if waived and not critical else env.approvals_required
    if critical:
        required = max(required, 2)
    if break_glass:
        required += 1
    return required


def blockers(env: EnvironmentConfig, now: datetime, hold: Hold | None) -> list[str]:
    """Why a risky action may not run now without --break-glass (freeze windows, locks)."""
    reasons = []
    window = env.active_freeze(now)
    if window is not None:
        reasons.append(f"freeze until {window.end:%Y-%m-%d %H:%M} UTC: {inert(window.reason)}")
    if hold is not None:
        reasons.append(f"locked by <@{hold.by}>: {inert(hold.reason)}")
    return reasons


def mention(principal: str) -> str:
    if principal.startswith("S"):
        return f"<!subteam^{principal}>"
    return f"<@{principal}>"


def approver_list(env: EnvironmentConfig) -> str:
    return ", ".join(mention(p) for p in env.approvers) or "nobody is configured"


@dataclass(frozen=True)
class Refusal:
    """Why a click did nothing, for the person who clicked."""

    text: str


_STATIC_REFUSALS = {
    "self": "You asked for this change, so you can't approve or deny it — the two-person rule "
    "needs someone else. You can cancel it.",
    "expired": "This request has expired. Ask again if it's still needed. Nothing was changed.",
    "missing": "This request no longer exists (requests are kept 30 days).",
    "not_ready": "This card is still being set up — try again in a moment.",
}


def refusal_for(
    status: str, request: ApprovalRequest | None, env: EnvironmentConfig | None
) -> Refusal:
    """The ephemeral reply for a refused click (the status comes from the store)."""
    if status in _STATIC_REFUSALS:
        return Refusal(_STATIC_REFUSALS[status])
    if status == "not_approver":
        who = approver_list(env) if env is not None else "the configured approvers"
        return Refusal(f"You're not an approver here. Approvers: {who}.")
    if status == "not_requester":
        owner = f"<@{request.requester}>" if request else "the requester"
        return Refusal(f"Only {owner}, who asked, can cancel this request.")
    if status == "duplicate" and request is not None:
        remaining = request.required - len(request.approvals)
        return Refusal(
            f"You already approved this; it needs {plural(remaining, 'more approval')} from "
            "someone else."
        )
    if request is not None:
        by = f" by <@{request.decided_by}>" if request.decided_by else ""
        return Refusal(f"Already decided: {words(request.state)}{by}.")
    return Refusal("This request can no longer be acted on.")
