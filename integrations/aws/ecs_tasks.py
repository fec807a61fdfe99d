"""One-off ECS tasks (`/dhanam run`, a deploy's `before_deploy`): how the service runs its tasks,
RunTask, finding a request's task again, StopTask, and the tail of a task's awslogs stream.

Every call goes through `call_aws` (errors become AwsError; RunTask and StopTask pass the
execution's checkpoint first, as every mutation does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError, call_aws

# ECS keeps a STOPPED task listable for at least an hour: long enough for a replay to find it.
_LISTED_STATES = ("RUNNING", "STOPPED")
_MAX_PAGES = 5


@dataclass(frozen=True)
class Placement:
    """How the service starts its tasks, copied for a one-off task of the same service."""

    launch_type: str | None = None
    capacity_provider_strategy: list[dict[str, Any]] = field(default_factory=list)
    platform_version: str | None = None
    network: dict[str, Any] = field(default_factory=dict)  # networkConfiguration, as ECS has it

    def run_task_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.capacity_provider_strategy:
            fields["capacityProviderStrategy"] = self.capacity_provider_strategy
        elif self.launch_type:
            fields["launchType"] = self.launch_type
        if self.platform_version:
            fields["platformVersion"] = self.platform_version
        if self.network:
            fields["networkConfiguration"] = self.network
        return fields

    def describe(self) -> list[str]:
        """What the plan shows: launch type or strategy, then the network."""
        if self.capacity_provider_strategy:
            parts = [
                f"{s.get('capacityProvider')} weight {s.get('weight', 0)} base {s.get('base', 0)}"
                for s in self.capacity_provider_strategy
            ]
            launch = "capacity providers " + ", ".join(parts)
        else:
            launch = f"launch type {self.launch_type or 'default (EC2)'}"
        if self.platform_version:
            launch += f", platform {self.platform_version}"
        vpc = self.network.get("awsvpcConfiguration")
        if not vpc:
            return [launch, "network: none (bridge or host mode, as the service)"]
        subnets = ", ".join(vpc.get("subnets", [])) or "none"
        groups = ", ".join(vpc.get("securityGroups", [])) or "none"
        public = vpc.get("assignPublicIp", "DISABLED")
        return [launch, f"awsvpc subnets {subnets}; security groups {groups}; public IP {public}"]


def placement_of(service: dict[str, Any]) -> Placement:
    """The placement of a DescribeServices `service` dict."""
    return Placement(
        launch_type=service.get("launchType"),
        capacity_provider_strategy=[dict(s) for s in service.get("capacityProviderStrategy", [])],
        platform_version=service.get("platformVersion"),
        network=dict(service.get("networkConfiguration") or {}),
    )


@dataclass(frozen=True)
class TaskState:
    """One task as DescribeTasks shows it."""

    arn: str
    last_status: str  # PROVISIONING, PENDING, ACTIVATING, RUNNING, …, STOPPED
    started_by: str
    task_definition: str
    desired_status: str = "RUNNING"  # STOPPED once StopTask was sent (or ECS decided to stop it)
    exit_code: int | None = None  # of the overridden container, once it stopped
    stopped_reason: str = ""
    created: datetime | None = None
    started: datetime | None = None
    stopped: datetime | None = None

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def done(self) -> bool:
        return self.last_status == "STOPPED"


def task_state(task: dict[str, Any], container: str) -> TaskState:
    containers: list[dict[str, Any]] = task.get("containers", [])
    found: dict[str, Any] = next((c for c in containers if c.get("name") == container), {})
    exit_code = found.get("exitCode")
    return TaskState(
        arn=str(task["taskArn"]),
        last_status=str(task.get("lastStatus", "PROVISIONING")),
        started_by=str(task.get("startedBy", "")),
        desired_status=str(task.get("desiredStatus", "RUNNING")),
        task_definition=str(task.get("taskDefinitionArn", "")),
        exit_code=int(exit_code) if exit_code is not None else None,
        stopped_reason=str(task.get("stoppedReason") or found.get("reason") or ""),
        created=task.get("createdAt"),
        started=task.get("startedAt"),
        stopped=task.get("stoppedAt"),
    )


@dataclass(frozen=True)
class LogPage:
    lines: list[str]
    next_token: str | None  # GetLogEvents' nextForwardToken: where the next read starts


class EcsTasks:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def describe_service_raw(self, region: str, cluster: str, service: str) -> dict[str, Any]:
        ecs = self.clients.client("ecs", region)
        response = await call_aws(
            "DescribeServices", ecs.describe_services, cluster=cluster, services=[service]
        )
        found = [s for s in response.get("services", []) if s.get("status") != "INACTIVE"]
        if not found:
            message = f'ECS service "{service}" not found in cluster "{cluster}" ({region})'
            raise AwsError(
                operation="DescribeServices",
                code="ServiceNotFoundException",
                message=message,
                user_message=message,
            )
        return dict(found[0])

    async def run_task(
        self,
        region: str,
        cluster: str,
        *,
        task_definition: str,
        container: str,
        command: list[str],
        started_by: str,
        placement: Placement,
    ) -> str:
        """Start one task with `container`'s command overridden; its ARN."""
        ecs = self.clients.client("ecs", region)
        response = await call_aws(
            "RunTask",
            ecs.run_task,
            cluster=cluster,
            taskDefinition=task_definition,
            count=1,
            startedBy=started_by,
            overrides={"containerOverrides": [{"name": container, "command": list(command)}]},
            **placement.run_task_fields(),
        )
        tasks = response.get("tasks", [])
        if not tasks:
            failures = "; ".join(
                f"{f.get('reason', 'unknown')}"
                + (f" ({f.get('detail')})" if f.get("detail") else "")
                for f in response.get("failures", [])
            )
            message = f"ECS started no task: {failures or 'no reason given'}"
            raise AwsError(
                operation="RunTask",
                code="RunTaskFailure",
                message=message,
                user_message=message,
                answered=True,
            )
        return str(tasks[0]["taskArn"])

    async def find_started_by(
        self, region: str, cluster: str, started_by: str, container: str
    ) -> TaskState | None:
        """The task an earlier attempt started with this `startedBy`, running or stopped."""
        ecs = self.clients.client("ecs", region)
        for status in _LISTED_STATES:
            listed = await call_aws(
                "ListTasks",
                ecs.list_tasks,
                cluster=cluster,
                startedBy=started_by,
                desiredStatus=status,
            )
            arns = listed.get("taskArns", [])
            if arns:
                tasks = await self.describe(region, cluster, arns[:1], container)
                if tasks:
                    return tasks[0]
        return None

    async def describe(
        self, region: str, cluster: str, arns: list[str], container: str
    ) -> list[TaskState]:
        if not arns:
            return []
        ecs = self.clients.client("ecs", region)
        response = await call_aws("DescribeTasks", ecs.describe_tasks, cluster=cluster, tasks=arns)
        return [task_state(dict(t), container) for t in response.get("tasks", [])]

    async def running_started_by_prefix(
        self, region: str, cluster: str, family: str, prefix: str, container: str
    ) -> list[TaskState]:
        """Tasks of the family not yet stopped — running, or stopping after StopTask — whose
        startedBy begins with `prefix`. Reads at most `_MAX_PAGES` pages of 100 per state (the
        service's own tasks are in the family too)."""
        ecs = self.clients.client("ecs", region)
        found: list[TaskState] = []
        for status in _LISTED_STATES:
            token: str | None = None
            for _ in range(_MAX_PAGES):
                kwargs: dict[str, Any] = {"cluster": cluster, "family": family}
                kwargs["desiredStatus"] = status
                if token:
                    kwargs["nextToken"] = token
                listed = await call_aws("ListTasks", ecs.list_tasks, **kwargs)
                tasks = await self.describe(region, cluster, listed.get("taskArns", []), container)
                found += [t for t in tasks if t.started_by.startswith(prefix) and not t.done]
                token = listed.get("nextToken")
                if not token:
                    break
        return found

    async def stop_task(self, region: str, cluster: str, arn: str, reason: str) -> None:
        ecs = self.clients.client("ecs", region)
        await call_aws("StopTask", ecs.stop_task, cluster=cluster, task=arn, reason=reason[:255])

    async def log_page(
        self, region: str, group: str, stream: str, token: str | None, limit: int = 1000
    ) -> LogPage:
        """The stream's lines after `token` (the first read: its newest `limit` lines). A stream
        not written yet reads as no lines."""
        logs = self.clients.client("logs", region)
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "limit": limit}
        if token:
            kwargs["nextToken"] = token
            kwargs["startFromHead"] = True
        else:
            kwargs["startFromHead"] = False
        try:
            response = await call_aws("GetLogEvents", logs.get_log_events, **kwargs)
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return LogPage(lines=[], next_token=token)
            raise
        lines = [str(e.get("message", "")).rstrip("\n") for e in response.get("events", [])]
        return LogPage(lines=lines, next_token=response.get("nextForwardToken") or token)
