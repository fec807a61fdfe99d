"""The sev1 checklist: people's ticks, and the bot's own checks (commands/outage).

The checks run when the config has an `[outage]` table: once the declare is answered, and on
the checklist's **Re-check** button (one run at a time per incident). Their results are kept in
Redis with the incident (checklist_store.py) and the checklist message is edited in place.

Who may tick a box — the rule:
- a person's tick or untick wins until a person changes it again: once someone has touched a
  box, the bot never ticks nor unticks it;
- the bot ticks a box nobody touched when its check passes ("checked by dhanam"), and unticks
  its own tick when a later run no longer passes;
- the DR step is never ticked by the bot: its check says whether DR is ready, the box says
  whether someone activated it;
- a click counts only for what it changed in the view the person clicked in (its block_id
  names the boxes that view showed ticked, checklist_render.shown_ticks): a tick the bot made
  after that view was drawn is not the person's untick. A person's click and the bot's tick are
  each one Redis script (checklist_store), so neither lands half-way through the other.
Every tick and untick, a person's or the bot's, and every run go on the incident's timeline.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Collection

import structlog

from commands.incidents.checklist_store import TOOK_OVER
from commands.incidents.models import BOT, CHECKLIST, CHECKLIST_LABELS, Check, Incident
from commands.incidents.service import IncidentService
from commands.outage.checks import OutageChecks
from commands.outage.engine import run_checks
from commands.outage.models import MARKS, STEPS, CheckResult, Verdict
from commands.render import clip
from core.errors import ChatOpsError

log = structlog.get_logger(__name__)

NEVER_AUTO = frozenset({"dr_region"})  # an action, not a check: ticked by people only
GRACE_SECONDS = 10.0  # a run's claim outlives its checks' limit by this (then lapses)
TIMELINE_EVIDENCE = 200


class Checklist:
    def __init__(self, incidents: IncidentService, checks: OutageChecks) -> None:
        self.incidents = incidents
        self.checks = checks
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def enabled(self) -> bool:
        return self.checks.enabled

    async def render(self, incident_id: str) -> None:
        """Edit the checklist message to what Redis holds now (one edit at a time here)."""
        store = self.incidents.store
        async with self._locks[incident_id]:
            incident = await store.get(incident_id)
            if incident is None or not incident.checklist_ts:
                return
            diagnosis = await store.checklist.diagnosis(incident_id) if self.enabled else None
            await self.incidents.slack.update_checklist(incident, diagnosis)

    # -- people -----------------------------------------------------------------------------
    async def tick(
        self,
        channel: str,
        user: str,
        selected: list[str],
        shown: Collection[str] | None = None,
    ) -> None:
        """The checkboxes as Slack sent them (every option now selected) and, when the click
        says, the boxes the person's view showed ticked (checklist_render.shown_ticks). Only
        what differs from that view is the person's: a box ticked since (by the bot, say) that
        their view did not show yet is not an untick. Each tick and untick is recorded with who
        and when, and the bot leaves those boxes alone from now on. Without `shown` the
        difference is taken from what Redis holds."""
        incidents = self.incidents
        store = incidents.store
        incident = await incidents.in_channel(channel, "checklist")
        wanted = {s for s in selected if s in CHECKLIST_LABELS}
        seen = set(incident.checks) if shown is None else set(shown) & set(CHECKLIST_LABELS)
        now = incidents.clock.now()
        for item in sorted(wanted - seen):
            changed = await store.checklist.person_tick(incident.id, item, Check(by=user, at=now))
            if changed:
                was = " (was checked by dhanam)" if changed == TOOK_OVER else ""
                await incidents.note(
                    incident,
                    user,
                    f"checklist :ballot_box_with_check: {CHECKLIST_LABELS[item]}{was}",
                )
        for item in sorted(seen - wanted):
            if await store.checklist.person_tick(incident.id, item, None):
                await incidents.note(
                    incident,
                    user,
                    f"checklist :white_large_square: {CHECKLIST_LABELS[item]} (unticked)",
                )
        await self.render(incident.id)

    # -- the checks -------------------------------------------------------------------------
    async def on_declare(self, incident: Incident) -> None:
        """Right after a sev1 is declared and answered: the first run."""
        if not (self.enabled and incident.checklist_ts):
            return
        try:
            await self.run(incident.id, by="", shown_checking=True)
        except Exception as exc:  # the declare stands; Re-check tries again
            log.warning("incident.checks_failed", incident=incident.id, exc_info=exc)

    async def recheck(self, channel: str, user: str) -> None:
        incident = await self.incidents.in_channel(channel, "checklist")
        if not self.enabled or not incident.checklist_ts:
            raise ChatOpsError(
                "this incident's checklist has no checks (the bot's config has no `[outage]` "
                "table). Nothing was run."
            )
        if not await self.run(incident.id, by=user):
            raise ChatOpsError(
                "the checks are already running; the checklist shows their results when they "
                "finish. Nothing new was started."
            )

    async def run(self, incident_id: str, *, by: str, shown_checking: bool = False) -> bool:
        """Every check at once; False when a run of this incident is already under way.
        `shown_checking`: the message already says "checking…" (posted so on declare)."""
        store = self.incidents.store.checklist
        limit = self.checks.limit
        token = await store.start(incident_id, limit + GRACE_SECONDS)
        if token is None:
            return False
        clock = self.checks.clock
        try:
            if not shown_checking:
                await self.render(incident_id)  # "checking…"
            started = time.perf_counter()
            results = await run_checks(self.checks.checks(), limit, clock)
            ms = round((time.perf_counter() - started) * 1000, 1)
            written = await store.finish(incident_id, token, results, by=by, at=clock.now(), ms=ms)
        except BaseException:
            await store.release(incident_id, token)
            raise
        if not written:  # the claim lapsed: a newer run's results (if any) stand, not these
            log.warning("incident.checks_outlived_claim", incident=incident_id, ms=ms)
            await self.render(incident_id)  # no longer "checking…" unless a newer run is
            return True
        log.info("incident.checked", incident=incident_id, ms=ms, by=by or "declare")
        await self._apply(incident_id, results, by, ms)
        await self.render(incident_id)
        return True

    async def _apply(
        self, incident_id: str, results: dict[str, CheckResult], by: str, ms: float
    ) -> None:
        """The timeline line of the run, then the bot's ticks (see the module doc)."""
        incidents = self.incidents
        store = incidents.store
        incident = await store.get(incident_id)
        if incident is None:
            return
        counts = Counter(r.verdict for r in results.values())
        tally = " · ".join(f"{MARKS[v]} {counts[v]}" for v in Verdict if counts[v])
        asked = "re-checked" if by else "checked"
        await incidents.note(incident, by, f"checklist {asked} in {ms / 1000:.1f} s: {tally}")
        if not incident.open:
            return
        # Those touched already are skipped here; one touched from now on is refused by the
        # store's scripts (bot_tick, clear_bot_check), which check the person's mark themselves.
        touched = (await store.checklist.diagnosis(incident_id)).people
        for step in STEPS:
            result = results.get(step)
            if result is None or step in NEVER_AUTO or step in touched:
                continue
            await self._auto(incident, result)

    async def _auto(self, incident: Incident, result: CheckResult) -> None:
        incidents = self.incidents
        store = incidents.store
        step, label = result.step, CHECKLIST_LABELS.get(result.step, result.step)
        evidence = clip(result.evidence, TIMELINE_EVIDENCE)
        check = incident.checks.get(step)
        if result.verdict is Verdict.PASS and check is None:
            if await store.checklist.bot_tick(
                incident.id, step, Check(by=BOT, at=result.checked_at)
            ):
                await incidents.note(
                    incident,
                    "",
                    f"checklist :ballot_box_with_check: {label} — checked by dhanam: {evidence}",
                )
        elif (
            result.verdict is not Verdict.PASS
            and check is not None
            and check.by == BOT
            and await store.checklist.clear_bot_check(incident.id, step)
        ):
            mark = MARKS[result.verdict]
            await incidents.note(
                incident,
                "",
                f"checklist :white_large_square: {label} (unticked by dhanam: {mark} {evidence})",
            )


assert tuple(key for key, _ in CHECKLIST) == STEPS, "the checklist's steps are the checks' steps"
