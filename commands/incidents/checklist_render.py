"""The sev1 checklist message: pure functions of the incident and its diagnosis (no I/O).

Without checks (no `[outage]` table): a header and the seven checkboxes, ticked by people. With
checks: each step's mark (✓ pass, ✗ fail, ? unknown, a dash: not available), its evidence in one
line and "checked HH:MM", then the checkboxes and a **Re-check** button; the DR step carries an
**Activate DR** button. Below, who ticked what ("checked by dhanam" for the bot's own ticks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from approvals.policy import mention
from commands.ids import IncidentActionId, IncidentBlockId
from commands.incidents.checklist_store import Diagnosis
from commands.incidents.models import BOT, CHECKLIST, CHECKLIST_LABELS, Check, Incident
from commands.operations.card import slack_time
from commands.outage.models import MARKS, CheckResult
from commands.render import SECTION_TEXT_MAX, clip

Block = dict[str, Any]
DR_STEP = "dr_region"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_MAX)}}


def _button(label: str, action_id: IncidentActionId, value: str) -> Block:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }


def who(check: Check) -> str:
    return "checked by dhanam" if check.by == BOT else mention(check.by)


def done_count(incident: Incident) -> int:
    return sum(1 for key in incident.checks if key in CHECKLIST_LABELS)


def _heading(incident: Incident, diagnosis: Diagnosis | None) -> str:
    head = f"*Total System Outage checklist* — {done_count(incident)} of {len(CHECKLIST)} done"
    if diagnosis is None:
        return head
    if diagnosis.running:
        return f"{head} · :hourglass_flowing_sand: checking…"
    if diagnosis.run_at is None:
        return f"{head} · not checked yet"
    asked = f" (re-check by {mention(diagnosis.run_by)})" if diagnosis.run_by else ""
    return (
        f"{head} · checked {slack_time(diagnosis.run_at)} in {diagnosis.run_ms / 1000:.1f} s{asked}"
    )


def step_text(number: int, label: str, result: CheckResult | None, running: bool) -> str:
    if result is None:
        state = ":hourglass_flowing_sand: checking…" if running else "not checked yet"
        return f"*{number}. {label}*\n{state}"
    return (
        f"{MARKS[result.verdict]} *{number}. {label}*\n{result.evidence} · "
        f"checked {slack_time(result.checked_at)}"
    )


def checklist_block_id(ticked: Iterable[str]) -> str:
    """The checkboxes' block_id names the boxes this view shows ticked (a hex bit per step):
    a click's action carries the block_id of the view the person clicked in, so the bot knows
    what they saw (`shown_ticks`); and a new block_id on every change makes Slack clients draw
    the new ticks instead of keeping their own state for the old block."""
    ticked = set(ticked)
    bits = sum(1 << i for i, (key, _) in enumerate(CHECKLIST) if key in ticked)
    return f"{IncidentBlockId.CHECKLIST}.{bits:02x}"


def shown_ticks(action: dict[str, Any], body: dict[str, Any]) -> set[str] | None:
    """The boxes the clicked view showed ticked: from the action's block_id
    (`checklist_block_id`), else (a message posted before block_ids named them) from the
    clicked message's checkboxes' `initial_options`; None when neither says."""
    block_id = str(action.get("block_id") or "")
    prefix = f"{IncidentBlockId.CHECKLIST}."
    if block_id.startswith(prefix):
        try:
            bits = int(block_id[len(prefix) :], 16)
        except ValueError:
            bits = -1
        if bits >= 0:
            return {key for i, (key, _) in enumerate(CHECKLIST) if bits >> i & 1}
    message = body.get("message")
    if not isinstance(message, dict):
        return None
    for block in message.get("blocks") or []:
        if not isinstance(block, dict) or block.get("block_id") != block_id:
            continue
        for element in block.get("elements") or []:
            if (
                isinstance(element, dict)
                and element.get("type") == "checkboxes"
                and element.get("action_id") == action.get("action_id")
            ):
                return {
                    str(o.get("value", ""))
                    for o in element.get("initial_options") or []
                    if isinstance(o, dict)
                }
    return None


def checklist_blocks(incident: Incident, diagnosis: Diagnosis | None = None) -> list[Block]:
    """`diagnosis` None: the checklist has no checks (people tick it by hand)."""
    options = [
        {"text": {"type": "mrkdwn", "text": label}, "value": value} for value, label in CHECKLIST
    ]
    initial = [o for o in options if o["value"] in incident.checks]
    element: Block = {
        "type": "checkboxes",
        "action_id": IncidentActionId.CHECKLIST,
        "options": options,
    }
    if initial:
        element["initial_options"] = initial
    blocks: list[Block] = [_section(_heading(incident, diagnosis))]
    elements = [element]
    if diagnosis is not None:
        for number, (key, label) in enumerate(CHECKLIST, 1):
            section = _section(
                step_text(number, label, diagnosis.results.get(key), diagnosis.running)
            )
            if key == DR_STEP and incident.open:
                section["accessory"] = _button(
                    "Activate DR", IncidentActionId.ACTIVATE_DR, incident.id
                )
            blocks.append(section)
        if incident.open:
            elements.append(_button("Re-check", IncidentActionId.RECHECK, incident.id))
    block_id = checklist_block_id(str(o["value"]) for o in initial)
    blocks.append({"type": "actions", "block_id": block_id, "elements": elements})
    done = [
        f"• {CHECKLIST_LABELS[key]} — {who(check)}, {slack_time(check.at)}"
        for key, check in incident.checks.items()
        if key in CHECKLIST_LABELS
    ]
    if done:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(done)}]}
        )
    return blocks


def checklist_text(incident: Incident) -> str:
    return f"Total System Outage checklist: {done_count(incident)} of {len(CHECKLIST)} done"
