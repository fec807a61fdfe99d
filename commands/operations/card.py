"""The approval card: a pure function of the request (and the time, for the expiry line)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from approvals.models import ApprovalRequest, State
from approvals.policy import mention
from commands.ids import ActionId, BlockId
from commands.render import (
    CONFIRM_TEXT_MAX,
    FIELD_TEXT_MAX,
    HEADER_TEXT_MAX,
    SECTION_TEXT_MAX,
    clip,
)
from core.text import inert

Block = dict[str, Any]

_STATE_LINES = {
    State.APPROVED: ":white_check_mark: Approved — starting…",
    State.EXECUTING: ":gear: Executing…",
    State.SUCCEEDED: ":white_check_mark: Done",
    State.FAILED: ":x: Failed",
    State.DENIED: ":no_entry: Denied",
    State.CANCELLED: ":heavy_multiplication_x: Cancelled",
    State.EXPIRED: ":hourglass: Expired — nothing was changed",
    State.IN_DOUBT: ":grey_question: Outcome unknown — check status",
}


def slack_time(moment: datetime) -> str:
    """A time Slack shows in each reader's own timezone, with a UTC fallback."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{time}} {{date_short}}|{moment:%H:%M} UTC {moment:%d %b}>"


def card_text(request: ApprovalRequest) -> str:
    """The notification text (shown where blocks are not)."""
    return f"{request.plan.summary} — {request.state.value.replace('_', ' ')}"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_MAX)}}


def _field(text: str) -> Block:
    return {"type": "mrkdwn", "text": clip(text, FIELD_TEXT_MAX)}


def _where_waived(request: ApprovalRequest) -> str:
    """Why no approval is needed: the environment's rule, or (a one-off task, `run`) the
    task's own `approvals = 0`, which may hold in an environment that needs approval."""
    return "for this task" if request.kind == "run" else f"in {request.env}"


def _approvals_line(request: ApprovalRequest) -> str:
    if request.required == 0:
        return f"not needed {_where_waived(request)} (audited)"
    names = ", ".join(mention(a.user) for a in request.approvals) or "none yet"
    return f"{len(request.approvals)} of {request.required} — {names}"


def _more(count: int) -> str:
    return f"{count} more approval" if count == 1 else f"{count} more approvals"


# The verdict the rollout follower writes starts with what happened (approvals/rollout.py).
_ROLLOUT_MARKS = (
    ("completed", ":white_check_mark: Rolled out"),
    ("failed", ":x: Rollout failed"),
    ("timed out", ":stopwatch: Rollout timed out"),
)


# A one-off task's verdict (commands/operations/tasks.py `verdict`).
_TASK_MARKS = (
    ("succeeded", ":white_check_mark: Task succeeded"),
    ("failed", ":x: Task failed"),
    ("timed out", ":stopwatch: Task timed out"),
)


def _followed(request: ApprovalRequest) -> str:
    """A change whose rollout (or one-off task) is followed: its state is the rollout's or the
    task's, not that of the call that started it."""
    task = request.kind == "run"
    if request.rollout is None:
        running = (
            ":arrows_counterclockwise: Running…"
            if task
            else (":arrows_counterclockwise: Rolling out…")
        )
        return f"{running}\n{request.outcome or ''}".rstrip()
    marks = _TASK_MARKS if task else _ROLLOUT_MARKS
    unknown = "Task" if task else "Rollout"
    mark = next(
        (m for prefix, m in marks if request.rollout.startswith(prefix)),
        f":grey_question: {unknown} not followed to the end",
    )
    label = "*Task:*" if task else "*Rollout:*"
    return f"{mark}\n{request.outcome or ''}".rstrip() + f"\n{label} {request.rollout}"


def _status(request: ApprovalRequest, approvers: list[str], now: datetime) -> str:
    if request.state is State.PENDING:
        remaining = request.required - len(request.approvals)
        # Only those who can still approve: not who already did, never the requester.
        done = {a.user for a in request.approvals} | {request.requester}
        who = ", ".join(mention(p) for p in approvers if p not in done) or "an approver"
        # Rounded up, as the requester's reply counts it: 14 min 55 s left is "in 15 min".
        minutes = max(0, math.ceil((request.expires_at - now).total_seconds() / 60))
        return (
            f":hourglass_flowing_sand: Waiting for {_more(remaining)} from {who} · "
            f"expires {slack_time(request.expires_at)} (in {minutes} min)"
        )
    if request.state is State.APPROVED and request.required == 0:
        return (
            f":arrow_forward: Runs without approval {_where_waived(request)} — started by "
            f"{mention(request.requester)}"
        )
    if request.state is State.SUCCEEDED and request.followed:
        return _followed(request)
    line = _STATE_LINES[request.state]
    if request.state in (State.DENIED, State.CANCELLED) and request.decided_by:
        line += f" by {mention(request.decided_by)}"
    if request.outcome and request.state not in (State.EXPIRED, State.CANCELLED, State.DENIED):
        line += f"\n{request.outcome}"
    if request.rollout:
        line += f"\n*Rollout:* {request.rollout}"
    return line


def card_blocks(request: ApprovalRequest, approvers: list[str], now: datetime) -> list[Block]:
    plan = request.plan
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": clip(plan.summary or request.kind, HEADER_TEXT_MAX),
            },
        },
    ]
    asked = f"*Requested by* {mention(request.requester)}"
    if request.reason:
        asked += f" — “{inert(request.reason)}”"  # typed by the requester: shown, never parsed
    blocks.append(_section(asked))
    blocks.append(
        {
            "type": "section",
            "fields": [
                _field(f"*Environment*\n{request.env}"),
                _field(f"*Service*\n{request.service or '—'}"),
                _field(f"*Approvals*\n{_approvals_line(request)}"),
                _field(f"*Requested*\n{slack_time(request.created_at)}"),
            ],
        }
    )
    if plan.changes:
        diff = "\n".join(f"• *{c.label}*: `{c.before}` → `{c.after}`" for c in plan.changes)
        blocks.append(_section(f"*Plan*\n{diff}"))
    notes = [*(f":rotating_light: {w}" for w in request.warnings)]
    if request.break_glass:
        notes.insert(
            0,
            ":rotating_light: *BREAK-GLASS* — overrides a freeze or lock; one extra "
            "approver required",
        )
    notes += [f"• {fact}" for fact in plan.facts]
    if notes:
        blocks.append(_section("\n".join(notes)))
    blocks.append({"type": "divider"})
    blocks.append(
        {**_section(_status(request, approvers, now)), "block_id": BlockId.APPROVAL_STATUS}
    )
    if request.state is State.PENDING:
        blocks.append(_buttons(request))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Request `{request.id}` · plan `{plan.short_fingerprint}` · "
                    "approve what you see: the bot re-plans before executing and stops if "
                    "anything changed",
                }
            ],
        }
    )
    return blocks


def _buttons(request: ApprovalRequest) -> Block:
    return {
        "type": "actions",
        "block_id": BlockId.APPROVAL_BUTTONS,
        "elements": [
            {
                "type": "button",
                "action_id": ActionId.APPROVE,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": request.id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Approve this change?"},
                    "text": {
                        "type": "mrkdwn",
                        "text": clip(request.plan.summary or "Approve?", CONFIRM_TEXT_MAX),
                    },
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Back"},
                },
            },
            {
                "type": "button",
                "action_id": ActionId.DENY,
                "text": {"type": "plain_text", "text": "Deny"},
                "style": "danger",
                "value": request.id,
            },
            {
                "type": "button",
                "action_id": ActionId.CANCEL,
                "text": {"type": "plain_text", "text": "Cancel"},
                "value": request.id,
            },
        ],
    }
