"""Block and action IDs: one StrEnum each, never string literals scattered in handlers.

Every `action_id` and `block_id` the bot renders or listens for is here; the values are what
Slack sends back on a click, so they never change once a message carrying them is posted.
"""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    """The approval card's buttons (commands/operations/card.py, buttons.py)."""

    APPROVE = "approval_approve"
    DENY = "approval_deny"
    CANCEL = "approval_cancel"


class AlarmActionId(StrEnum):
    """Buttons under an alarm's message (commands/alarms/render.py)."""

    # Also in a deploy's thread; handled by commands/operations/buttons.py.
    ROLLBACK = "rollback_after_alarm"
    # Handled by commands/incidents/handlers.py (opens `incident declare`, prefilled).
    DECLARE_INCIDENT = "alarm_declare_incident"
    # The alarm's PagerDuty incident; handled by commands/alarms/buttons.py.
    ACKNOWLEDGE = "alarm_acknowledge"


class IncidentActionId(StrEnum):
    """The incident channel's checklist (commands/incidents/render.py, handlers.py)."""

    CHECKLIST = "incident_checklist"
    RECHECK = "incident_checklist_recheck"  # run the checklist's checks again
    ACTIVATE_DR = "incident_activate_dr"  # the DR step's button: opens the `dr activate` request


class BlockId(StrEnum):
    APPROVAL_BUTTONS = "approval_buttons"
    APPROVAL_STATUS = "approval_status"


class IncidentBlockId(StrEnum):
    CARD_STATUS = "incident_status"
    CHECKLIST = "incident_checklist"
