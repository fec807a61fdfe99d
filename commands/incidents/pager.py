"""An incident's PagerDuty event: trigger while it is open, resolve once it is not, with the
incident id as dedup_key. A failure that may pass (5xx, 429, network) is retried in the
background with a bounded backoff; PagerDuty folds repeats of one dedup_key into one incident,
and the retry loop runs under a Redis lease on one replica, so nothing is paged twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from commands.incidents.models import PD_SEVERITY, Incident, PdState
from commands.incidents.store import IncidentStore
from core.clock import Clock
from core.text import plural
from integrations.pagerduty import Link, PagerDuty, PagerDutyError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class IncidentTimings:
    tick: timedelta = timedelta(seconds=5)  # how often the background loop looks
    retry_base: timedelta = timedelta(seconds=5)  # first PagerDuty retry; doubles each time
    retry_max: timedelta = timedelta(minutes=5)
    max_attempts: int = 10  # then the card says PagerDuty failed: page manually
    reminder: timedelta | None = None  # None: [incidents].update_reminder_seconds
    lease: timedelta = timedelta(seconds=30)


def slack_link(channel: str) -> str:
    return f"https://slack.com/app_redirect?channel={channel}"


class IncidentPager:
    def __init__(
        self,
        *,
        store: IncidentStore,
        pagerduty: PagerDuty,
        clock: Clock,
        timings: IncidentTimings,
    ) -> None:
        self._store = store
        self.pagerduty = pagerduty
        self._clock = clock
        self.timings = timings

    @property
    def enabled(self) -> bool:
        return self.pagerduty.enabled

    def _backoff(self, attempts: int) -> timedelta:
        delay: timedelta = self.timings.retry_base * (2 ** max(0, attempts - 1))
        return min(delay, self.timings.retry_max)

    async def _send(self, incident: Incident) -> None:
        if not incident.open:
            await self.pagerduty.resolve(dedup_key=incident.id)
            return
        await self.pagerduty.trigger(
            dedup_key=incident.id,
            summary=f"[{incident.severity.value.upper()}] {incident.title}",
            severity=PD_SEVERITY[incident.severity],
            links=[Link(slack_link(incident.channel), "Incident channel in Slack")],
            details={
                "incident": incident.id,
                "severity": incident.severity.value,
                "declared_by": incident.declared_by,
                "slack_channel": incident.channel,
                **({"alarm": incident.alarm} if incident.alarm else {}),
            },
            timestamp=incident.started_at,
        )

    async def attempt(self, incident: Incident) -> None:
        """One try now; on failure, schedule the next or give up. Updates the stored state."""
        attempts = incident.pd_attempts + 1
        now = self._clock.now()
        try:
            await self._send(incident)
        except PagerDutyError as exc:
            await self._failed(incident, attempts, exc, now)
            return
        await self._store.unschedule_pd(incident.id)
        current = await self._store.get(incident.id) or incident
        update: dict[str, object] = {"pd_error": "", "pd_attempts": 0}
        if not incident.open:
            update["pd_state"] = PdState.RESOLVED
        elif current.pd_state in (PdState.PENDING, PdState.FAILED, PdState.OFF):
            update["pd_state"] = PdState.TRIGGERED
        if incident.open and not current.pd_incident_id:
            found = await self.pagerduty.find_incident(incident.id)
            if found is not None and found.id:
                update.update(pd_incident_id=found.id, pd_url=found.html_url)
                await self._store.link_pd(found.id, incident.id)
        saved = current.model_copy(update=update)
        await self._store.save(saved, *update)
        if attempts > 1:
            action = "paged" if incident.open else "resolved in PagerDuty"
            await self._store.add_timeline(
                incident.id, now, "", f"PagerDuty {action} after {attempts} attempts"
            )

    async def _failed(
        self, incident: Incident, attempts: int, exc: PagerDutyError, now: datetime
    ) -> None:
        give_up = not exc.retryable or attempts >= self.timings.max_attempts
        state = PdState.FAILED if give_up else incident.pd_state
        if incident.open and not give_up:
            state = PdState.PENDING
        failed = incident.model_copy(
            update={"pd_state": state, "pd_error": str(exc)[:200], "pd_attempts": attempts}
        )
        await self._store.save(failed, "pd_state", "pd_error", "pd_attempts")
        if give_up:
            await self._store.unschedule_pd(incident.id)
            log.warning("incident.pagerduty_gave_up", incident=incident.id, error=str(exc))
            await self._store.add_timeline(
                incident.id, now, "", f"PagerDuty failed after {plural(attempts, 'attempt')}: {exc}"
            )
            return
        await self._store.schedule_pd(incident.id, now + self._backoff(attempts))
        log.warning("incident.pagerduty_retry", incident=incident.id, attempts=attempts)
        if attempts == 1:
            await self._store.add_timeline(
                incident.id, now, "", f"PagerDuty unreachable ({exc}); retrying in the background"
            )

    async def retry_due(self, now: datetime) -> list[str]:
        """Retry every incident whose next attempt is due; returns their ids (the service
        re-renders their cards: it owns them)."""
        done = []
        for incident_id in await self._store.due_pd(now):
            incident = await self._store.get(incident_id)
            if incident is None:
                await self._store.unschedule_pd(incident_id)
                continue
            await self.attempt(incident)
            done.append(incident_id)
        return done
