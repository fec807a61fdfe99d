"""What the AWS gateway returns: small frozen values, parsed from boto3's response dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EVENTS_KEPT = 10


def short(task_definition: str) -> str:
    """`arn:…:task-definition/dhanam-api:4` -> `dhanam-api:4`."""
    return task_definition.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    rollout_state: str | None  # IN_PROGRESS | COMPLETED | FAILED
    rollout_state_reason: str | None
    running: int
    desired: int
    pending: int
    failed_tasks: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ServiceEvent:
    at: datetime | None
    message: str


@dataclass(frozen=True)
class ServiceState:
    region: str
    cluster: str
    name: str
    arn: str
    status: str
    task_definition_arn: str
    desired: int
    running: int
    pending: int
    deployments: tuple[Deployment, ...]
    circuit_breaker_enabled: bool
    circuit_breaker_rollback: bool
    events: tuple[ServiceEvent, ...]  # newest first, at most EVENTS_KEPT

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    @property
    def rolling_out(self) -> bool:
        """A deployment is still in progress, or an older one still has tasks."""
        return len(self.deployments) > 1 or any(
            d.rollout_state == "IN_PROGRESS" for d in self.deployments
        )


@dataclass(frozen=True)
class ResolvedImage:
    repository_uri: str
    tag: str
    digest: str | None  # None when the registry is not ECR: the image is pinned by tag only
    image_with_tag: str  # repo:tag
    image_pinned: str  # repo@sha256:… when the digest is known, else repo:tag


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str
    updated: datetime | None


def _deployment(raw: Mapping[str, Any]) -> Deployment:
    return Deployment(
        id=str(raw.get("id", "")),
        status=str(raw.get("status", "")),
        task_definition=str(raw.get("taskDefinition", "")),
        rollout_state=raw.get("rolloutState"),
        rollout_state_reason=raw.get("rolloutStateReason"),
        running=int(raw.get("runningCount", 0)),
        desired=int(raw.get("desiredCount", 0)),
        pending=int(raw.get("pendingCount", 0)),
        failed_tasks=int(raw.get("failedTasks", 0)),
        created_at=raw.get("createdAt"),
        updated_at=raw.get("updatedAt"),
    )


def service_state(region: str, cluster: str, raw: Mapping[str, Any]) -> ServiceState:
    """Parse one element of DescribeServices' (or UpdateService's) `service`."""
    breaker = (raw.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    events = tuple(
        ServiceEvent(at=e.get("createdAt"), message=str(e.get("message", "")))
        for e in list(raw.get("events") or [])[:EVENTS_KEPT]
    )
    return ServiceState(
        region=region,
        cluster=cluster,
        name=str(raw.get("serviceName", "")),
        arn=str(raw.get("serviceArn", "")),
        status=str(raw.get("status", "")),
        task_definition_arn=str(raw.get("taskDefinition", "")),
        desired=int(raw.get("desiredCount", 0)),
        running=int(raw.get("runningCount", 0)),
        pending=int(raw.get("pendingCount", 0)),
        deployments=tuple(_deployment(d) for d in raw.get("deployments") or []),
        circuit_breaker_enabled=bool(breaker.get("enable", False)),
        circuit_breaker_rollback=bool(breaker.get("rollback", False)),
        events=events,
    )
