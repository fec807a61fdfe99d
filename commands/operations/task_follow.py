"""Following a one-off task (`run`) to the end with the rollout follower: its lease, takeover by
another replica and card annotation are the follower's; this module is the task's source
(DescribeTasks, the log from the last token, StopTask at the timeout) and its progress text.

A job is a task job when its subject says `kind = task`. One progress message in the card's
thread is edited in place: the task's status, how long it has run, and the last lines of its
log. When the task stops the verdict (exit code, stoppedReason, duration, and on failure the
log tail) goes on the card. A task still running at its timeout is stopped (StopTask) and
reported as timed out once ECS says it stopped; the follower's own limit (timeout + grace) ends
the follow even if it never does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from approvals.models import ApprovalRequest, Result
from approvals.rollout import RolloutJob, RolloutSource, Snapshot
from commands.operations.tasks import (
    TAIL_LINES,
    TIMEOUT_REASON,
    Leases,
    TaskWatch,
    slot_name,
    verdict,
)
from core.errors import ChatOpsError, StoreUnavailableError
from core.masking import code_block
from core.text import duration
from integrations.aws.ecs_tasks import EcsTasks

log = structlog.get_logger(__name__)

TASK_KIND = "task"
STOP_GRACE = timedelta(minutes=2)  # after StopTask, how long the follower waits for STOPPED
LOG_SETTLE = 1.0  # seconds: once a task stopped, its last lines may reach CloudWatch late
_MARKS = {
    "PROVISIONING": ":hourglass_flowing_sand:",
    "PENDING": ":hourglass_flowing_sand:",
    "ACTIVATING": ":hourglass_flowing_sand:",
    "RUNNING": ":arrows_counterclockwise:",
}


def is_task_job(job: RolloutJob) -> bool:
    return job.subject.get("kind") == TASK_KIND


def task_job(request: ApprovalRequest, result: Result, *, now: datetime) -> RolloutJob | None:
    """The job that follows a started task, from the run's Result (None without a card)."""
    details = result.details
    if not details.get("task_arn") or not request.channel or not request.ts:
        return None
    subject = {
        "kind": TASK_KIND,
        "service": request.service or "",
        "env": request.env,
        "task": str(details.get("task", "")),
        "command": str(details.get("command", "")),
        "region": str(details["region"]),
        "cluster": str(details["cluster"]),
        "container": str(details["container"]),
        "task_arn": str(details["task_arn"]),
        "timeout": str(int(details.get("timeout_seconds") or 900)),
        "log_group": str(details.get("log_group") or ""),
        "log_region": str(details.get("log_region") or ""),
        "log_prefix": str(details.get("log_prefix") or ""),
        "slot_token": str(details.get("slot_token") or ""),
    }
    timeout = int(subject["timeout"]) + STOP_GRACE.total_seconds()
    return RolloutJob(
        request_id=request.id,
        subject=subject,
        label=subject["task"],
        channel=request.channel,
        card_ts=request.ts,
        started=now,
        timeout_seconds=timeout,
    )


class TaskSource:
    """The RolloutSource of task jobs. Watches live in memory, per request: a replica taking a
    follow over starts a new watch (the log from the stream's newest lines onward)."""

    def __init__(self, tasks: EcsTasks, leases: Leases | None = None) -> None:
        self._tasks = tasks
        self._leases = leases
        self._watches: dict[str, TaskWatch] = {}

    def watch(self, job: RolloutJob) -> TaskWatch:
        found = self._watches.get(job.request_id)
        if found is None:
            s = job.subject
            logs = (s["log_group"], s["log_region"], s["log_prefix"]) if s["log_group"] else None
            found = TaskWatch(
                tasks=self._tasks,
                region=s["region"],
                cluster=s["cluster"],
                arn=s["task_arn"],
                container=s["container"],
                logs=logs,
            )
            self._watches[job.request_id] = found
        return found

    async def snapshot(self, job: RolloutJob, now: datetime) -> Snapshot:
        watch = self.watch(job)
        elapsed = now - job.started
        limit = timedelta(seconds=int(job.subject["timeout"]))
        try:
            state = await watch.poll()
        except ChatOpsError as exc:
            if elapsed < limit:
                raise  # looked at again at the next poll
            return await self._unreadable(job, watch, elapsed, exc.user_message)
        if not state.done and elapsed >= limit:
            await watch.stop(f"{TIMEOUT_REASON} after {duration(limit)}")
            log.warning("task.timeout_stopped", request_id=job.request_id, task=watch.task_id)
        if state.done:
            await asyncio.sleep(LOG_SETTLE)
            await watch.read_log()  # the lines written just before it stopped
        lines = watch.last_lines()
        if not state.done:
            return Snapshot(
                state="IN_PROGRESS",
                running=1 if state.last_status == "RUNNING" else 0,
                desired=1,
                pending=0 if state.last_status == "RUNNING" else 1,
                failed=0,
                events=lines,
                current=state.last_status,
                reason=watch.log_error,
            )
        self._watches.pop(job.request_id, None)
        await self._release(job)
        timed_out = watch.stop_sent
        ok = state.exit_code == 0 and not timed_out
        outcome = verdict(
            job.subject["task"],
            state,
            elapsed,
            timed_out=timed_out,
            lines=[] if ok else lines[-TAIL_LINES:],
        )
        return Snapshot(
            state="COMPLETED" if ok else "FAILED",
            running=0,
            desired=1,
            pending=0,
            failed=0 if ok else 1,
            reason=state.stopped_reason,
            events=lines,
            current="STOPPED",
            verdict=outcome,
        )

    async def _unreadable(
        self, job: RolloutJob, watch: TaskWatch, elapsed: timedelta, error: str
    ) -> Snapshot:
        """Past its timeout and its state cannot be read: stop it (stopping is always safe) and
        end the follow saying so — never "succeeded", never "timed out" as if it were known."""
        stopped = "StopTask was sent"
        try:
            await watch.stop(f"{TIMEOUT_REASON} after {duration(elapsed)} (state unreadable)")
        except ChatOpsError as exc:
            stopped = f"StopTask failed too ({exc.user_message[:120]})"
        self._watches.pop(job.request_id, None)
        await self._release(job)
        text = (
            f"not followed to the end — task {watch.task_id}'s state could not be read after "
            f"{duration(elapsed)} ({error[:200]}); {stopped}. Check the task in ECS."
        )
        return Snapshot(state="FAILED", running=0, desired=1, pending=0, failed=1, verdict=text)

    async def _release(self, job: RolloutJob) -> None:
        token = job.subject.get("slot_token")
        if self._leases is None or not token:
            return
        try:
            await self._leases.release(slot_name(job.subject["service"], job.subject["env"]), token)
        except StoreUnavailableError:
            log.warning("task.slot_not_released", request_id=job.request_id)  # it expires

    def forget(self, request_id: str) -> None:
        self._watches.pop(request_id, None)


class FollowedSource:
    """Rollouts from ECS services, tasks from TaskSource: the follower's one source."""

    def __init__(
        self, rollouts: RolloutSource, tasks: TaskSource, now: Callable[[], datetime]
    ) -> None:
        self._rollouts = rollouts
        self._tasks = tasks
        self._now = now

    async def snapshot(self, job: RolloutJob) -> Snapshot:
        if is_task_job(job):
            return await self._tasks.snapshot(job, self._now())
        return await self._rollouts.snapshot(job)

    async def firing_alarms(self, job: RolloutJob) -> list[str]:
        if is_task_job(job):
            return []
        return await self._rollouts.firing_alarms(job)


def task_progress_text(job: RolloutJob, snapshot: Snapshot, elapsed: timedelta) -> str:
    """The one progress message of a task: status and time, then the log's last lines."""
    s = job.subject
    task_id = s["task_arn"].rsplit("/", 1)[-1]
    if snapshot.verdict is not None:
        mark = ":white_check_mark:" if snapshot.state == "COMPLETED" else ":x:"
        head = f"{mark} Task {job.label} (`{s['command']}`) stopped · {duration(elapsed)}"
    else:
        status = snapshot.current.lower() or "starting"
        mark = _MARKS.get(snapshot.current, ":arrows_counterclockwise:")
        head = (
            f"{mark} Task {job.label} (`{s['command']}`) {status} · {duration(elapsed)} · "
            f"task {task_id}"
        )
    lines = snapshot.events[-TAIL_LINES:]
    if not s.get("log_group"):
        body = "_no log: the container has no awslogs driver_"
    elif snapshot.reason and snapshot.verdict is None:
        body = f"_log not readable: {snapshot.reason}_"
    elif not lines:
        body = "_no log lines yet_"
    else:
        body = code_block(lines)
    return f"{head}\n{body}"
