"""Block and action IDs: one StrEnum each, never string literals scattered in handlers."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "approval_approve"
    DENY = "approval_deny"
    CANCEL = "approval_cancel"


class AlarmActionId(StrEnum):
    ROLLBACK = "rollback_after_alarm"


class BlockId(StrEnum):
    APPROVAL_BUTTONS = "approval_buttons"
    APPROVAL_STATUS = "approval_status"
