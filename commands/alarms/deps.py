"""What the alarm message's Acknowledge button uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from approvals.flow import Members
from commands.alarms.service import AlarmService
from core.config import Config


class Acknowledger(Protocol):
    """Acknowledges a PagerDuty incident (integrations.pagerduty.PagerDuty does)."""

    async def acknowledge(self, incident_id: str) -> None: ...


@dataclass(frozen=True)
class AlarmsDeps:
    config: Config  # [pagerduty] responders
    members: Members  # who is in a responders' group
    pagerduty: Acknowledger
    alarms: AlarmService  # shows the acknowledgement on the alarm's message
