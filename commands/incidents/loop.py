"""The incidents' background loop: PagerDuty retries and update reminders, on one replica at
a time (the Redis lease `incidents:loop`; another replica takes over when it lapses)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import structlog

from approvals.store import ApprovalStore
from commands.incidents.service import IncidentService
from core.errors import StoreUnavailableError
from core.loops import run_every, run_iteration

log = structlog.get_logger(__name__)

LEASE_NAME = "incidents:loop"
LOOP_NAME = "incidents.loop"


class IncidentLoop:
    def __init__(self, service: IncidentService, leases: ApprovalStore) -> None:
        self._service = service
        self._leases = leases
        self._token = secrets.token_hex(8)

    async def _holding(self) -> bool:
        ttl = self._service.timings.lease
        if await self._leases.renew(LEASE_NAME, self._token, ttl):
            return True
        return await self._leases.acquire(LEASE_NAME, self._token, ttl)

    async def once(self) -> None:
        """One tick: PagerDuty retries, then reminders, each its own step, so a Slack or
        PagerDuty failure in one (an archived channel, a deleted message, a 429 or a 500)
        never skips the other; the next tick tries again."""
        if not await self._holding():
            return
        now = self._service.clock.now()
        await run_iteration(
            "incidents.pagerduty_retries", lambda: self._service.retry_pagerduty(now)
        )
        await run_iteration("incidents.reminders", lambda: self._service.remind(now))

    async def run(self, stop: asyncio.Event) -> None:
        interval = self._service.timings.tick.total_seconds()
        try:
            once = lambda: self.once()  # noqa: E731, PLW0108 - late-bound, patchable
            await run_every(LOOP_NAME, interval, once, stop)
        finally:
            with contextlib.suppress(StoreUnavailableError):
                await self._leases.release(LEASE_NAME, self._token)
