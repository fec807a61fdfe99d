"""What `/dhanam incident …`, the checklist (its boxes, Re-check and Activate DR) and the
alarm's "Declare incident" button use."""

from __future__ import annotations

from dataclasses import dataclass

from commands.incidents.checklist import Checklist
from commands.incidents.service import IncidentService
from commands.router import CommandDispatch


@dataclass(frozen=True)
class IncidentsDeps:
    incidents: IncidentService
    checklist: Checklist
    commands: CommandDispatch  # Activate DR runs `dr activate` through the router
