"""What `/dhanam incident …`, the checklist and the alarm's "Declare incident" button use."""

from __future__ import annotations

from dataclasses import dataclass

from commands.incidents.service import IncidentService


@dataclass(frozen=True)
class IncidentsDeps:
    incidents: IncidentService
