"""Incidents as one feature: `/dhanam incident …`, the checklist and Declare buttons, and the
background loop (PagerDuty retries, update reminders)."""

from __future__ import annotations

from approvals.store import ApprovalStore
from commands.feature import Feature
from commands.incidents import handlers
from commands.incidents.deps import IncidentsDeps
from commands.incidents.loop import IncidentLoop


def incidents_feature(deps: IncidentsDeps, *, leases: ApprovalStore) -> Feature[IncidentsDeps]:
    return Feature(
        name="incidents",
        deps=deps,
        commands=[handlers.register],
        buttons=[handlers.buttons],
        jobs={"incidents.loop": IncidentLoop(deps.incidents, leases).run},
    )
