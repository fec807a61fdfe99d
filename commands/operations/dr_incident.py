"""DR activation's outcome on the open incidents (`ActionRuntime.announce`): each open incident
gets it as its last update (the card's "Last update" line and the timeline, as `incident update`
writes them, by the bot) and as a message in its channel, with how long ago the incident began —
the time an RTO is really measured from."""

from __future__ import annotations

import structlog

from commands.incidents.service import IncidentService
from core.text import duration

log = structlog.get_logger(__name__)


class IncidentAnnouncer:
    def __init__(self, incidents: IncidentService) -> None:
        self._incidents = incidents

    async def __call__(self, text: str) -> None:
        incidents = self._incidents
        try:
            ids = await incidents.store.active_ids()
        except Exception as exc:  # noqa: BLE001 - an outcome is never failed for an incident
            log.warning("dr_activate.incidents_unread", error=f"{type(exc).__name__}: {exc}")
            return
        for incident_id in ids:
            try:
                incident = await incidents.store.get(incident_id)
                if incident is None or not incident.open:
                    continue
                began = duration(incidents.clock.now() - incident.started_at)
                line = f"{text.rstrip(' .')} (this incident began {began} ago)"
                await incidents.update(incident.channel, "", line)
                await incidents.slack.say(incident.channel, line)
            except Exception as exc:  # noqa: BLE001 - the next incident is still told
                log.warning(
                    "dr_activate.incident_not_told",
                    incident=incident_id,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
