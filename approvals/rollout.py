"""Following a rollout after an approved change, and watching its alarms while it bakes.

One follower per rollout at a time, across replicas: it holds the Redis lease
`rollout:<request id>` and renews it while it polls. A replica that dies stops renewing; any
other replica's takeover loop picks the job up within the lease time and carries on editing
the same progress message. Jobs live in Redis (`dhanam:rollouts` + `dhanam:{rollout:<id>}`).

Slack and AWS are behind the `RolloutSource` and `RolloutReporter` protocols.

Long: the job's model and Redis record, the lease takeover across replicas and the poll and bake
steps are one follower's life; AWS and Slack are already behind the two protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from approvals.models import utc_ms
from approvals.store import ApprovalStore
from core.clock import Clock
from core.errors import ChatOpsError, StoreUnavailableError
from core.loops import run_every
from core.redis import PREFIX, RedisClient, call
from core.text import duration

log = structlog.get_logger(__name__)

JOBS_KEY = PREFIX + "rollouts"


def job_key(request_id: str) -> str:
    return f"{PREFIX}{{rollout:{request_id}}}"


class ReportChannelGoneError(Exception):
    """The reporter cannot write to the job's channel any more (archived, deleted, removed)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class Phase(StrEnum):
    ROLLING = "rolling"
    BAKING = "baking"
    DONE = "done"


class RolloutJob(BaseModel):
    """What to follow. Stored as JSON; `progress_ts` is the thread message being edited.

    `subject` is the source's own description of what rolls out (for ECS: region, cluster,
    service, the target and previous task definitions); this engine never reads it. `label`
    names the target as people read it (`dhanam-api:4`)."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    subject: dict[str, str] = Field(default_factory=dict)
    label: str
    alarms: list[str] = Field(default_factory=list)
    channel: str
    card_ts: str
    started: datetime
    phase: Phase = Phase.ROLLING
    progress_ts: str | None = None
    completed: datetime | None = None
    alarms_reported: list[str] = Field(default_factory=list)
    # Its own time limit (a one-off task's timeout and a grace to stop it), else the settings'.
    timeout_seconds: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _stored_before_subject(cls, data: Any) -> Any:
        """Jobs stored before `subject` existed (a follow in flight across an upgrade)."""
        if not isinstance(data, dict) or "subject" in data or "target" not in data:
            return data
        legacy = ("service", "env", "region", "cluster", "ecs_service", "target", "previous")
        data = dict(data)
        subject = {k: str(data.pop(k)) for k in legacy if data.get(k) is not None}
        for k in legacy:
            data.pop(k, None)
        return {**data, "subject": subject, "label": subject["target"].rsplit("/", 1)[-1]}


@dataclass(frozen=True)
class Snapshot:
    """The rollout as its source shows it now (counts are of running units: tasks)."""

    state: str  # IN_PROGRESS | COMPLETED | FAILED | SUPERSEDED | WAITING
    running: int
    desired: int
    pending: int
    failed: int
    reason: str = ""
    events: list[str] = field(default_factory=list)
    current: str = ""  # what runs now, as the source names it
    # The source's own outcome line once it is over (a task's exit code); None: the
    # follower's verdict from the state and counts.
    verdict: str | None = None


class RolloutSource(Protocol):
    async def snapshot(self, job: RolloutJob) -> Snapshot: ...

    async def firing_alarms(self, job: RolloutJob) -> list[str]: ...


class RolloutReporter(Protocol):
    async def progress(self, job: RolloutJob, snapshot: Snapshot, elapsed: timedelta) -> str:
        """Post (first time) or edit the one progress message; returns its ts."""
        ...

    async def alarm_after_deploy(self, job: RolloutJob, alarm: str, since: timedelta) -> None: ...


@dataclass(frozen=True)
class RolloutSettings:
    poll: timedelta
    timeout: timedelta
    bake: timedelta
    lease: timedelta = timedelta(seconds=30)


class RolloutFollower:
    def __init__(
        self,
        *,
        redis: RedisClient,
        store: ApprovalStore,
        source: RolloutSource,
        reporter: RolloutReporter,
        annotate: Callable[[str, str], Awaitable[None]],
        clock: Clock,
        settings: RolloutSettings,
    ) -> None:
        self._redis = redis
        self._store = store
        self._source = source
        self._reporter = reporter
        self._annotate = annotate
        self._clock = clock
        self.settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- jobs in Redis ---------------------------------------------------------------------
    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        return await call(op)  # core's one Redis error wrapper; callers annotate what they get

    async def save(self, job: RolloutJob) -> None:
        async def write() -> None:
            await self._redis.set(job_key(job.request_id), job.model_dump_json())
            if job.phase is Phase.DONE:
                await self._redis.zrem(JOBS_KEY, job.request_id)
                await self._redis.pexpire(job_key(job.request_id), 7 * 24 * 3600 * 1000)
            else:
                await self._redis.zadd(JOBS_KEY, {job.request_id: utc_ms(job.started)})

        await self._call(write)

    async def load(self, request_id: str) -> RolloutJob | None:
        raw = await self._call(lambda: self._redis.get(job_key(request_id)))
        return RolloutJob.model_validate_json(cast(str, raw)) if raw else None

    async def active(self) -> list[str]:
        ids: list[str] = await self._call(lambda: self._redis.zrange(JOBS_KEY, 0, -1))
        return ids

    # -- starting and taking over ----------------------------------------------------------
    async def start(self, job: RolloutJob) -> None:
        """Record the job, then follow it here (the replica that executed the deploy)."""
        await self.save(job)
        self._spawn(job.request_id)

    def _spawn(self, request_id: str) -> None:
        if request_id in self._tasks and not self._tasks[request_id].done():
            return
        task = asyncio.create_task(self.follow(request_id))
        self._tasks[request_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.pop(request_id, None)
            if finished.cancelled():
                return
            exc = finished.exception()  # retrieved: never "Task exception was never retrieved"
            if exc is not None:
                log.error("rollout.follow_crashed", request_id=request_id, exc_info=exc)

        task.add_done_callback(done)

    async def takeover_once(self) -> list[str]:
        """Start following every active job whose lease is free (its follower died)."""
        started = []
        for request_id in await self.active():
            if request_id in self._tasks:
                continue
            if await self._store.holder(f"rollout:{request_id}") is None:
                self._spawn(request_id)
                started.append(request_id)
        return started

    async def run_takeover(self, stop: asyncio.Event) -> None:
        interval = max(self.settings.poll.total_seconds(), 1.0)
        tick = lambda: self.takeover_once()  # noqa: E731, PLW0108 - late-bound, patchable
        await run_every("rollout.takeover", interval, tick, stop)

    async def stop(self) -> None:
        """Stop following here (shutdown): leases are released so another replica resumes."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- following -------------------------------------------------------------------------
    async def follow(self, request_id: str) -> None:
        token = secrets.token_hex(8)
        name = f"rollout:{request_id}"
        if not await self._store.acquire(name, token, self.settings.lease):
            return
        try:
            job = await self.load(request_id)
            while job is not None and job.phase is not Phase.DONE:
                job = await self._step(job)
                await self.save(job)
                if job.phase is Phase.DONE:
                    break
                await asyncio.sleep(self.settings.poll.total_seconds())
                if not await self._store.renew(name, token, self.settings.lease):
                    log.warning("rollout.lease_lost", request_id=request_id)
                    return
        except StoreUnavailableError:
            log.warning("rollout.store_unavailable", request_id=request_id)
        except Exception:
            # Unexpected: logged here (the lease is released; the takeover loop may retry).
            log.exception("rollout.follow_failed", request_id=request_id)
        finally:
            with contextlib.suppress(StoreUnavailableError):
                await self._store.release(name, token)

    async def _step(self, job: RolloutJob) -> RolloutJob:
        now = self._clock.now()
        if job.phase is Phase.BAKING:
            return await self._bake(job, now)
        elapsed = now - job.started
        timeout = self._timeout(job)
        try:
            snapshot = await self._source.snapshot(job)
        except StoreUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - AWS refusing, throttling or gone: looked at again
            error = exc.user_message if isinstance(exc, ChatOpsError) else type(exc).__name__
            log.warning("rollout.snapshot_failed", request_id=job.request_id, error=error)
            if elapsed < timeout:
                return job
            # The verdict is reached regardless: the follow never outlives its timeout.
            await self._outcome(
                job,
                f"timed out after {duration(elapsed)} — its state could not be read "
                f"({error[:200]}); check status",
            )
            return job.model_copy(update={"phase": Phase.DONE, "completed": now})
        verdict = self._verdict(job, snapshot, elapsed)
        try:
            ts = await self._reporter.progress(job, snapshot, elapsed)
            job = job.model_copy(update={"progress_ts": ts})
        except ReportChannelGoneError as exc:
            # Archived or gone: nothing more can be reported there. End the follow with the
            # verdict as it stands, on the card if the card can still be written.
            tasks = f"{snapshot.running}/{snapshot.desired}"
            outcome = verdict or (
                f"no longer followed after {duration(elapsed)} — the channel cannot be written "
                f"({exc.error}); {snapshot.state.lower()}, {tasks} running; check status"
            )
            log.warning(
                "rollout.channel_gone", request_id=job.request_id, error=exc.error, outcome=outcome
            )
            await self._outcome(job, outcome)
            return job.model_copy(update={"phase": Phase.DONE, "completed": now})
        except Exception as exc:  # noqa: BLE001 - a Slack hiccup must not end the follow
            log.warning(
                "rollout.progress_failed",
                request_id=job.request_id,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
        if verdict is None:
            return job
        await self._outcome(job, verdict)
        bake = snapshot.state == "COMPLETED" and self.settings.bake.total_seconds() > 0
        phase = Phase.BAKING if bake and job.alarms else Phase.DONE
        return job.model_copy(update={"phase": phase, "completed": now})

    async def _outcome(self, job: RolloutJob, verdict: str) -> None:
        """Write the verdict on the card; when that fails it is logged, and the follow ends."""
        try:
            await self._annotate(job.request_id, verdict)
        except StoreUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - the verdict is kept in the log instead
            log.warning(
                "rollout.outcome_not_on_card",
                request_id=job.request_id,
                outcome=verdict,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )

    def _timeout(self, job: RolloutJob) -> timedelta:
        if job.timeout_seconds is not None:
            return timedelta(seconds=job.timeout_seconds)
        return self.settings.timeout

    def _verdict(self, job: RolloutJob, snapshot: Snapshot, elapsed: timedelta) -> str | None:
        """The outcome line for the card once the rollout is over; None while it runs."""
        if snapshot.verdict is not None:
            return snapshot.verdict
        tasks = f"{snapshot.running}/{snapshot.desired}"
        if snapshot.state == "COMPLETED":
            return f"completed in {duration(elapsed)} — {tasks} tasks on {job.label}"
        if snapshot.state in ("FAILED", "SUPERSEDED"):
            return f"failed after {duration(elapsed)} — {snapshot.reason}"
        if elapsed >= self._timeout(job):
            return f"timed out after {duration(elapsed)} — {tasks} running; check status"
        return None

    async def _bake(self, job: RolloutJob, now: datetime) -> RolloutJob:
        completed = job.completed or now
        if now - completed >= self.settings.bake:
            return job.model_copy(update={"phase": Phase.DONE})
        try:
            firing = await self._source.firing_alarms(job)
        except ChatOpsError as exc:
            log.warning("rollout.alarms_failed", request_id=job.request_id, error=exc.user_message)
            return job
        fresh = [a for a in firing if a not in job.alarms_reported]
        for alarm in fresh:
            try:
                await self._reporter.alarm_after_deploy(job, alarm, now - completed)
            except ReportChannelGoneError as exc:
                log.warning("rollout.channel_gone", request_id=job.request_id, error=exc.error)
                return job.model_copy(update={"phase": Phase.DONE})
            except Exception as exc:  # noqa: BLE001 - reported again at the next poll
                log.warning(
                    "rollout.alarm_report_failed",
                    request_id=job.request_id,
                    alarm=alarm,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
                fresh = fresh[: fresh.index(alarm)]
                break
        if fresh:
            return job.model_copy(update={"alarms_reported": [*job.alarms_reported, *fresh]})
        return job
