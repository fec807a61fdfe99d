"""What ECS does with a one-off task, for the sandbox and the tests: moto does not run containers.

moto's RunTask records a task that stays RUNNING until StopTask, and writes no logs. The
`TaskRunner` drives every task started by the bot (`startedBy` begins with `dhanam:`) the way
ECS would: PENDING, then RUNNING while it writes its log lines to the awslogs stream its task
definition names (`<prefix>/<container>/<task id>`), then STOPPED with an exit code after
`run_seconds`. A task whose command is in `failing` exits 1 with an error in its log; one whose
command is in `hanging` runs until someone stops it (StopTask: exit code 137, as ECS's SIGKILL).

It edits moto's in-process backend (as `complete_rollouts` does), so it needs a `MotoServer` of
this process; the log lines go through the CloudWatch Logs API.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.aws_world import _IN_PROCESS, _client

_STARTED_BY = "dhanam:"
# A password in the connection string, as careless scripts print it: the bot masks it.
SANDBOX_DB_PASSWORD = "dhanam-db-pass-0001"  # noqa: S105 - a fake, to show masking
_SUCCESS = (
    "> {name} {command}",
    "Loading configuration (NODE_ENV=production)",
    "Connected to postgresql://dhanam:"
    + SANDBOX_DB_PASSWORD
    + "@dhanam-production.internal:5432/dhanam",
    "Applying 20261201_add_budget_rollover_index … done (412 ms)",
    "Applying 20261203_backfill_account_currency … done (1.8 s)",
    "2 migrations applied, schema at 20261203_backfill_account_currency",
)
_STATUS = (
    "> {name} {command}",
    "Loading configuration (NODE_ENV=production)",
    "Connected to postgresql://dhanam@dhanam-production.internal:5432/dhanam",
    "Schema at 20261130_add_goal_deadlines (41 applied)",
    "Pending: 20261201_add_budget_rollover_index, 20261203_backfill_account_currency",
)
_FAILURE = (
    "> {name} {command}",
    "Loading configuration (NODE_ENV=production)",
    "Connected to postgresql://dhanam@dhanam-production.internal:5432/dhanam",
    "Applying 20261201_add_budget_rollover_index … failed",
    'ERROR: relation "budget_rollover_idx" already exists (SQLSTATE 42P07)',
    "Migration failed: 0 of 2 applied; the schema is unchanged",
)


@dataclass
class _Seen:
    first: float
    lines_written: int = 0
    stream: str | None = None
    killed: bool = False


@dataclass
class TaskRunner:
    endpoint_url: str
    region: str = "us-east-1"
    run_seconds: float = 1.5  # from RunTask to STOPPED
    failing: set[tuple[str, ...]] = field(default_factory=set)  # commands that exit 1
    hanging: set[tuple[str, ...]] = field(default_factory=set)  # commands that never end
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def _backend(self) -> Any:
        if self.endpoint_url not in _IN_PROCESS:
            raise RuntimeError(f"{self.endpoint_url} is not a moto server of this process")
        from moto.backends import get_backend  # noqa: PLC0415 - moto internals, only here
        from moto.moto_api import state_manager  # noqa: PLC0415

        # The runner decides every task's status; moto must not advance it by itself.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        account = _client("sts", self.endpoint_url, self.region).get_caller_identity()["Account"]
        return get_backend("ecs")[account][self.region]

    def step(self) -> int:
        """Move every bot-started task along; returns how many are not stopped yet."""
        backend = self._backend()
        logs = _client("logs", self.endpoint_url, self.region)
        now = time.monotonic()
        active = 0
        for tasks in list(backend.tasks.values()):
            for task in list(tasks.values()):
                if not str(task.started_by).startswith(_STARTED_BY):
                    continue
                seen = self._seen.setdefault(task.task_arn, _Seen(first=now))
                if task.desired_status == "STOPPED" or task._status == "STOPPED":
                    self._stopped(task, seen)
                    continue
                active += 1
                self._advance(backend, task, seen, logs, now - seen.first)
        return active

    def _command(self, task: Any) -> tuple[str, ...]:
        for override in task.overrides.get("containerOverrides", []):
            if override.get("command"):
                return tuple(override["command"])
        return ()

    def _advance(self, backend: Any, task: Any, seen: _Seen, logs: Any, age: float) -> None:
        command = self._command(task)
        failing = command in self.failing
        script = _FAILURE if failing else _STATUS if "db:status" in command else _SUCCESS
        if age < self.run_seconds * 0.2:
            task._status = "PENDING"
            return
        task._status = "RUNNING"
        share = 1.0 if command in self.hanging else min(age / self.run_seconds, 1.0)
        due = max(1, int(len(script) * share))
        self._write(backend, task, seen, logs, script, due, command)
        if command in self.hanging or age < self.run_seconds:
            return
        self._stop(task, exit_code=1 if failing else 0, reason="Essential container in task exited")

    def _write(  # noqa: PLR0917 - one task's state, passed along
        self,
        backend: Any,
        task: Any,
        seen: _Seen,
        logs: Any,
        script: tuple[str, ...],
        due: int,
        command: tuple[str, ...],
    ) -> None:
        if seen.lines_written >= due:
            return
        where = self._stream(backend, task, logs, seen)
        if where is None:
            return
        group, stream = where
        base = int(time.time() * 1000)
        name = command[0] if command else "task"
        events = [
            {
                "timestamp": base + i,
                "message": line.format(name=name, command=" ".join(command[1:])),
            }
            for i, line in enumerate(script[seen.lines_written : due])
        ]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        seen.lines_written = due

    def _stream(self, backend: Any, task: Any, logs: Any, seen: _Seen) -> tuple[str, str] | None:
        definition = backend.describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        options = (container.get("logConfiguration") or {}).get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        if not group or not prefix:
            return None
        stream = f"{prefix}/{container['name']}/{task.id}"
        if seen.stream is None:
            groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
            if not any(g["logGroupName"] == group for g in groups):
                logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            seen.stream = stream
        return group, stream

    def _stop(self, task: Any, *, exit_code: int, reason: str) -> None:
        task._status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        for container in task.containers:
            container.exitCode = exit_code
            container.last_status = "STOPPED"

    def _stopped(self, task: Any, seen: _Seen) -> None:
        """A task stopped through StopTask: ECS kills it (exit 137), once."""
        if seen.killed:
            return
        task._status = "STOPPED"
        for container in task.containers:
            if container.last_status != "STOPPED":
                container.exitCode = 137
                container.last_status = "STOPPED"
        seen.killed = True
