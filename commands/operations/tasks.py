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
from typing import Any

from core.config import TaskConfig
from core.text import duration
from integrations.aws.cloudwatch_logs import awslogs_of
from integrations.aws.ecs_tasks import EcsTasks, Placement, TaskState, placement_of
from integrations.aws.errors import AwsError

TAIL_LINES = 12  # the log lines shown in the thread and on a failed card
_LINE_CHARS = 300  # one log line, as shown
STARTED_BY_PREFIX = "dhanam:"


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
    arn = await tasks.run_task(
        spec.region,
        spec.cluster,
        task_definition=spec.task_definition,
        container=spec.container,
        command=spec.command,
        started_by=tag,
        placement=spec.placement,
    )
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
        return found[0]

    async def read_log(self) -> None:
        if self.logs is None:
            return
        group, region, prefix = self.logs
        stream = f"{prefix}/{self.container}/{self.task_id}"
        try:
            page = await self.tasks.log_page(region or self.region, group, stream, self.token)
        except AwsError as exc:  # the task is what matters; the log is shown as unreadable
            self.log_error = exc.user_message
            return
        self.log_error = ""
        self.token = page.next_token
        self.tail.extend(line[:_LINE_CHARS] for line in page.lines)

    async def stop(self, reason: str) -> None:
        if not self.stop_sent:
            await self.tasks.stop_task(self.region, self.cluster, self.arn, reason)
            self.stop_sent = True

    def last_lines(self, count: int = TAIL_LINES) -> list[str]:
        return list(self.tail)[-count:]


def code_block(lines: list[str]) -> str:
    """Log lines as Slack shows text only: a code block (no mentions, no links, no markup).
    A backtick inside could close the block; it is shown as an apostrophe."""
    if not lines:
        return ""
    body = "\n".join(line.replace("`", "'").replace("&", "&amp;") for line in lines)
    body = body.replace("<", "&lt;").replace(">", "&gt;")
    return f"```\n{body}\n```"


def exit_text(state: TaskState) -> str:
    if state.exit_code is None:
        return "no exit code"
    return f"exit code {state.exit_code}"


def verdict(
    name: str, state: TaskState, elapsed: timedelta, *, timed_out: bool, lines: list[str]
) -> str:
    """The outcome line for the card: it starts with succeeded / failed / timed out."""
    took = duration(elapsed)
    reason = f": {state.stopped_reason}" if state.stopped_reason else ""
    tail = ("\n" + code_block(lines)) if lines else ""
    if timed_out:
        return (
            f"timed out after {took} — task {state.id} was stopped by dhanam "
            f"({exit_text(state)}){tail}"
        )
    if state.exit_code == 0:
        return f"succeeded — {name} exited with code 0 after {took} (task {state.id})"
    return f"failed — {name} ended with {exit_text(state)} after {took}{reason}{tail}"
