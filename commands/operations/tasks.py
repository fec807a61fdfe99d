"""One-off ECS tasks as the operations feature runs them: what a named task will run (its spec,
shown on the card and fingerprinted), starting it once per request, and watching it to the end
with the tail of its log.

Used by `run SERVICE ENV TASK` (started by the Action, followed by the rollout follower, so a
replica that dies mid-follow is taken over) and by a deploy's `before_deploy` step (started and
watched inside the deploy's execution: the deploy goes on only after exit code 0).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from core.config import TaskConfig
from core.errors import ChatOpsError
from core.masking import LineMasker, code_block
from core.text import NOTHING_CHANGED, duration, inert
from integrations.aws.cloudwatch_logs import awslogs_of
from integrations.aws.ecs_tasks import EcsTasks, Placement, TaskState, placement_of
from integrations.aws.errors import AwsError

TAIL_LINES = 12  # the log lines shown in the thread and on a failed card…
TAIL_CHARS = 1800  # …at most this much of them (newest kept): the card's section holds 3,000
_LINE_CHARS = 300  # one log line, as shown
_LOG_PAGES = 5  # GetLogEvents pages read per poll (1,000 lines each), so a chatty task keeps up
STARTED_BY_PREFIX = "dhanam:"
TIMEOUT_REASON = "dhanam: timed out"  # how StopTask's reason starts when the bot stops a task
SLOT_MARGIN = timedelta(minutes=7)  # a task slot outlives the task's timeout by this much


class Leases(Protocol):
    """Token-owned Redis leases (approvals.store.ApprovalStore has them)."""

    async def acquire(self, name: str, token: str, ttl: timedelta) -> bool: ...

    async def holder(self, name: str) -> str | None: ...

    async def release(self, name: str, token: str) -> bool: ...


def slot_name(service: str, env: str) -> str:
    """One one-off task at a time per service and environment, whoever starts it: `run` and a
    deploy's release step take this lease before RunTask and give it back when the task has
    stopped (a replica that dies leaves it to expire: the task's timeout and a margin)."""
    return f"taskslot:{service}:{env}"


async def take_slot(
    leases: Leases, service: str, env: str, token: str, timeout_seconds: int
) -> None:
    """Take the service's task slot for `token` (kept when `token` already holds it: a replay),
    else ChatOpsError naming who holds it (nothing was started)."""
    name = slot_name(service, env)
    ttl = timedelta(seconds=timeout_seconds) + SLOT_MARGIN
    if await leases.acquire(name, token, ttl):
        return
    holder = await leases.holder(name) or ""
    if holder == token:
        return
    who = holder.removeprefix(STARTED_BY_PREFIX).split(":")
    step = " (a deploy's release step)" if len(who) > 1 else ""
    raise ChatOpsError(
        f"another one-off task of {service} in {env} is running (request {who[0]}{step}); "
        f"one at a time — ask again once it has stopped. {NOTHING_CHANGED}"
    )


def started_by(request_id: str | None, step: str | None = None) -> str:
    """ECS `startedBy` (at most 128 characters) naming the request, and the step of it."""
    value = f"{STARTED_BY_PREFIX}{request_id or 'none'}"
    return f"{value}:{step}" if step else value


def task_logs(task_definition: dict[str, Any], container: str) -> tuple[str, str, str] | None:
    """(group, region or "", stream prefix) where a task of `container` logs; None without an
    awslogs driver or a stream prefix (a task's stream cannot be named then)."""
    found = awslogs_of(task_definition, container)
    if found is None or found.stream_prefix is None:
        return None
    return found.group, found.region or "", found.stream_prefix


@dataclass(frozen=True)
class TaskSpec:
    """What one named task will run: all of it is shown on the card and is in the plan."""

    name: str
    region: str
    cluster: str
    task_definition: str  # ARN
    container: str
    command: list[str]
    placement: Placement
    timeout_seconds: int
    logs: tuple[str, str, str] | None  # awslogs (group, region, stream prefix)

    def inputs(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "task_definition": self.task_definition,
            "container": self.container,
            "command": list(self.command),
            "launch_type": self.placement.launch_type,
            "capacity_provider_strategy": self.placement.capacity_provider_strategy,
            "platform_version": self.placement.platform_version,
            "network": self.placement.network,
            "timeout_seconds": self.timeout_seconds,
            "logs": list(self.logs) if self.logs else None,
        }

    def facts(self) -> list[str]:
        where = self.placement.describe()
        logs = (
            f"log: {self.logs[0]} (stream {self.logs[2]}/{self.container}/TASK_ID)"
            if self.logs
            else "log: none (the container has no awslogs driver): no log tail"
        )
        return [
            f"command `{' '.join(self.command)}` in container {self.container}",
            *where,
            f"timeout {duration(self.timeout_seconds)} (then stopped and reported failed)",
            logs,
        ]


def task_spec(
    name: str,
    task: TaskConfig,
    *,
    region: str,
    cluster: str,
    service: dict[str, Any],
    task_definition: dict[str, Any],
    container: str,
) -> TaskSpec:
    return TaskSpec(
        name=name,
        region=region,
        cluster=cluster,
        task_definition=str(task_definition["taskDefinitionArn"]),
        container=container,
        command=list(task.command),
        placement=placement_of(service),
        timeout_seconds=task.timeout_seconds,
        logs=task_logs(task_definition, container),
    )


async def start_once(tasks: EcsTasks, spec: TaskSpec, tag: str) -> tuple[str, bool]:
    """The task of this request step: the one an earlier attempt started (found by its
    `startedBy`), else a new one. Returns (task ARN, reused)."""
    found = await tasks.find_started_by(spec.region, spec.cluster, tag, spec.container)
    if found is not None:
        return found.arn, True
    try:
        arn = await tasks.run_task(
            spec.region,
            spec.cluster,
            task_definition=spec.task_definition,
            container=spec.container,
            command=spec.command,
            started_by=tag,
            placement=spec.placement,
        )
    except AwsError as exc:
        if exc.answered:
            raise
        # No answer (a timeout, a dropped connection): it may have started. Look before
        # saying anything; never start a second one.
        found = await tasks.find_started_by(spec.region, spec.cluster, tag, spec.container)
        if found is None:
            raise
        return found.arn, False
    return arn, False


@dataclass
class TaskWatch:
    """Polls one task and reads its log onward from the last token. In memory: a replica that
    takes the watch over starts again from the stream's newest lines."""

    tasks: EcsTasks
    region: str
    cluster: str
    arn: str
    container: str
    logs: tuple[str, str, str] | None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    token: str | None = None
    stop_sent: bool = False
    log_error: str = ""
    masker: LineMasker = field(default_factory=LineMasker)  # keeps a private key open across pages

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    async def poll(self) -> TaskState:
        found = await self.tasks.describe(self.region, self.cluster, [self.arn], self.container)
        if not found:
            raise AwsError(
                operation="DescribeTasks",
                code="MISSING",
                message=f"task {self.task_id} is not known to ECS any more",
                user_message=f"ECS no longer knows task {self.task_id}",
                answered=True,
            )
        await self.read_log()
        state = found[0]
        if state.desired_status == "STOPPED" and state.stopped_reason.startswith(TIMEOUT_REASON):
            self.stop_sent = True  # stopped at its timeout, by this replica or one before it
        return state

    async def read_log(self) -> None:
        """Read the stream onward from the last token, page after page (up to _LOG_PAGES), so a
        task that logs fast is not shown further and further behind. Lines are masked (secrets)
        before anything keeps them, then cut to _LINE_CHARS."""
        if self.logs is None:
            return
        group, region, prefix = self.logs
        stream = f"{prefix}/{self.container}/{self.task_id}"
        for _ in range(_LOG_PAGES):
            try:
                page = await self.tasks.log_page(region or self.region, group, stream, self.token)
            except AwsError as exc:  # the task is what matters; the log is shown as unreadable
                self.log_error = exc.user_message
                return
            self.log_error = ""
            moved = page.next_token != self.token
            self.token = page.next_token
            self.tail.extend(line[:_LINE_CHARS] for line in self.masker.mask(page.lines))
            if not page.lines or not moved:
                return

    async def stop(self, reason: str) -> None:
        """StopTask once (not again when ECS already stops it: its desired status says so)."""
        if not self.stop_sent:
            await self.tasks.stop_task(self.region, self.cluster, self.arn, reason)
            self.stop_sent = True

    def last_lines(self, count: int = TAIL_LINES) -> list[str]:
        """The newest lines, at most `count` and TAIL_CHARS together."""
        kept: list[str] = []
        size = 0
        for line in reversed(list(self.tail)[-count:]):
            size += len(line) + 1
            if kept and size > TAIL_CHARS:
                break
            kept.append(line)
        return kept[::-1]


def exit_text(state: TaskState) -> str:
    if state.exit_code is None:
        return "no exit code"
    return f"exit code {state.exit_code}"


def verdict(
    name: str, state: TaskState, elapsed: timedelta, *, timed_out: bool, lines: list[str]
) -> str:
    """The outcome line for the card: it starts with succeeded / failed / timed out."""
    took = duration(elapsed)
    reason = f": {inert(state.stopped_reason)}" if state.stopped_reason else ""
    tail = ("\n" + code_block(lines)) if lines else ""
    if timed_out:
        return (
            f"timed out after {took} — task {state.id} was stopped by dhanam "
            f"({exit_text(state)}){tail}"
        )
    if state.exit_code == 0:
        return f"succeeded — {name} exited with code 0 after {took} (task {state.id})"
    return f"failed — {name} ended with {exit_text(state)} after {took}{reason}{tail}"
